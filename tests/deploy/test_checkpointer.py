"""The checkpoint signing key reaches the checkpointer alone: the supervisor and the
systemd units name it to no other process, and the other processes' settings refuse
it even when their environment holds it."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from deploy.management.commands.supervise import supervisor_environment
from deploy.processes import processes
from deploy.supervisor import render
from tools.stack import ROOT

KEY = "/etc/payouts/checkpoint-signing-key.pem"
OTHERS = ("web", "worker", "followers", "webhooks", "beat", "gateway")


def test_the_supervisor_names_the_signing_key_to_the_checkpointer_alone(
    tmp_path: Path,
) -> None:
    # when
    text = render(
        processes(fake_gateway=True),
        run_dir=tmp_path,
        root=tmp_path,
        log_dir=None,
        environment={},
        password="secret",
        signing_key_file=KEY,
    )
    # then
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(text)
    assert KEY in config["program:checkpointer"]["environment"]
    for name in OTHERS:
        assert KEY not in config[f"program:{name}"]["environment"], name
        assert (
            "CHECKPOINT_SIGNING_KEY_FILE"
            not in config[f"program:{name}"]["environment"]
        ), name
    assert text.count(KEY) == 1


def test_the_supervisor_itself_does_not_pass_the_key_path_on() -> None:
    # given: an operator who exported the path before `manage.py supervise`
    environ = {"PATH": "/usr/bin", "CHECKPOINT_SIGNING_KEY_FILE": KEY}
    # when
    inherited = supervisor_environment(environ)
    # then: what every program would inherit from supervisord
    assert inherited == {"PATH": "/usr/bin"}


def test_systemd_gives_the_key_to_the_checkpointer_unit_alone(tmp_path: Path) -> None:
    # when
    call_command(
        "export_systemd",
        output=str(tmp_path),
        env_file="/etc/payouts.env",
        signing_key=KEY,
    )
    # then
    checkpointer = (tmp_path / "payouts-checkpointer.service").read_text()
    assert f"LoadCredential=checkpoint-signing-key:{KEY}" in checkpointer
    assert (
        "Environment=CHECKPOINT_SIGNING_KEY_FILE=%d/checkpoint-signing-key"
        in checkpointer
    )
    for name in ("web", "worker", "followers", "webhooks", "beat"):
        unit = (tmp_path / f"payouts-{name}.service").read_text()
        assert KEY not in unit and "CHECKPOINT_SIGNING_KEY_FILE" not in unit, name


def settings_of(process: str, tmp_path: Path) -> str:
    """CHECKPOINT_SIGNING_KEY_FILE as a process of that name sees it, with the
    variable set in its environment all the same."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(repr(settings.CHECKPOINT_SIGNING_KEY_FILE))",
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "settings.base",
            "ENV_FILE": str(tmp_path / "absent.env"),
            "RUN_DIR": str(tmp_path / "run"),
            "SECRET_KEY": "x" * 50,
            "CIPHER_KEYS": "k1:" + "A" * 43 + "=",
            "CHECKPOINT_SIGNING_KEY_FILE": KEY,
            "PROCESS_NAME": process,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.parametrize("process", ["web", "worker", "followers", "beat"])
def test_other_processes_never_see_the_key_path(process: str, tmp_path: Path) -> None:
    assert settings_of(process, tmp_path) == "''"


def test_the_checkpointer_sees_the_key_path(tmp_path: Path) -> None:
    assert settings_of("checkpointer", tmp_path) == repr(KEY)
