"""The process table (deploy/processes.py) is the one definition: the supervisor's
configuration and the systemd units are both rendered from it."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from django.core.management import call_command

from deploy.processes import processes
from deploy.supervisor import PROVIDER_PRIORITY, SERVICE_PRIORITY, render
from deploy.systemd import exec_arg
from tests.support import EVERY_PROCESS


def supervisord_config(tmp_path: Path, **kwargs: object) -> configparser.ConfigParser:
    text = render(
        processes(),
        run_dir=tmp_path,
        root=tmp_path,
        log_dir=None,
        environment={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")},
        password="secret",
        **kwargs,  # type: ignore[arg-type]
    )
    # supervisord's own reading: %% is a literal %.
    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
    parser.read_string(text)
    return parser


def test_the_supervisor_runs_each_process_of_the_table_as_the_table_says(
    tmp_path: Path,
) -> None:
    # given
    table = processes(fake_gateway=True)
    # when
    config = supervisord_config(tmp_path)
    # then
    assert {p.name for p in table} == EVERY_PROCESS
    for process in table:
        program = config[f"program:{process.name}"]
        assert shlex.split(program["command"]) == list(process.command)
        assert program["autorestart"] == "true"
        assert program["autostart"] == "true"
        assert int(program["stopwaitsecs"]) == process.stop_seconds
        # TERM to the main process for a graceful stop, SIGKILL to the group after.
        assert (program["stopasgroup"], program["killasgroup"]) == ("false", "true")
        assert program["environment"].startswith("PROCESS_NAME=")
    assert config["program:worker"]["command"].count("worker@%h") == 1


def test_the_bundled_gateway_starts_first_and_stops_after_the_service(
    tmp_path: Path,
) -> None:
    config = supervisord_config(tmp_path)
    service = config["group:service"]
    assert set(service["programs"].split(",")) == EVERY_PROCESS - {"gateway"}
    assert int(config["program:gateway"]["priority"]) == PROVIDER_PRIORITY
    assert int(service["priority"]) == SERVICE_PRIORITY > PROVIDER_PRIORITY


def test_only_the_named_processes_start_with_the_supervisor(tmp_path: Path) -> None:
    config = supervisord_config(tmp_path, autostart={"web"})
    started = {
        name.removeprefix("program:")
        for name in config.sections()
        if name.startswith("program:") and config[name]["autostart"] == "true"
    }
    assert started == {"web"}


def test_without_the_fake_gateway_the_table_has_only_the_service() -> None:
    assert {p.name for p in processes(fake_gateway=False)} == EVERY_PROCESS - {
        "gateway"
    }


def test_systemd_units_are_generated_from_the_same_table(tmp_path: Path) -> None:
    # when
    call_command("export_systemd", output=str(tmp_path), env_file="/etc/payouts.env")
    # then
    table = processes()
    target = (tmp_path / "payouts.target").read_text()
    for process in table:
        unit = configparser.ConfigParser(interpolation=None, strict=False)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read(tmp_path / f"payouts-{process.name}.service")
        service = unit["Service"]
        exec_start = shlex.split(service["ExecStart"].replace("%%", "%"))
        assert exec_start == list(process.command)
        assert service["Restart"] == "always"
        assert service["KillMode"] == "mixed"
        assert int(service["TimeoutStopSec"]) == process.stop_seconds
        assert service["EnvironmentFile"] == "/etc/payouts.env"
        assert f"payouts-{process.name}.service" in target
    units = {p.name for p in tmp_path.glob("payouts-*.service")}
    assert units == {f"payouts-{p.name}.service" for p in table}


@pytest.mark.parametrize("arg", ["web@%h", "100%", "$HOME", 'say "hi"'])
def test_systemd_arguments_keep_their_meaning(arg: str) -> None:
    quoted = exec_arg(arg)
    assert shlex.split(quoted.replace("%%", "%").replace("$$", "$")) == [arg]
