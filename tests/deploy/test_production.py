"""APP_ENV=production: the deployed process model. With its documented settings it
passes `check --deploy`, runs no fake gateway and creates no demo user; without them
it refuses to start."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

from projections.signing import encode_public_key
from tools.stack import ROOT

# README, "Running in production": what a deployment must set.
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "CIPHER_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    "IDEMPOTENCY_FINGERPRINT_KEY": secrets.token_urlsafe(32),
    "CHECKPOINT_PUBLIC_KEY": encode_public_key(
        Ed25519PrivateKey.generate().public_key()
    ),
    "ALLOWED_HOSTS": "payouts.example.com",
    "DATABASE_URL": "postgres://payouts@db.internal:5432/payouts",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "GATEWAY_URL": "https://provider.example.com",
    # Not required: without it, check --deploy warns (payouts.W001).
    "METRICS_TOKEN": secrets.token_urlsafe(32),
}
OPTIONAL = ("APP_ENV", "GATEWAY_URL", "METRICS_TOKEN")


def manage(
    *args: str, env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        # Nothing of this machine's environment or .env: only what is given.
        env={
            "PATH": "/usr/bin:/bin",
            "ENV_FILE": str(tmp_path / "absent.env"),
            "RUN_DIR": str(tmp_path / "run"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_passes_check_deploy_with_no_warning(tmp_path: Path) -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=PRODUCTION,
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_metrics_token_fails_check_deploy_with_a_warning(
    tmp_path: Path,
) -> None:
    # given
    env = {k: v for k, v in PRODUCTION.items() if k != "METRICS_TOKEN"}
    # when
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path
    )
    # then
    assert result.returncode != 0
    assert "payouts.W001" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "missing", [name for name in PRODUCTION if name not in OPTIONAL]
)
def test_production_refuses_to_start_without_each_setting(
    tmp_path: Path, missing: str
) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"needs {missing}" in result.stderr


def test_production_refuses_a_plain_http_gateway_unless_allowed(
    tmp_path: Path,
) -> None:
    env = {**PRODUCTION, "GATEWAY_URL": "http://127.0.0.1:8001"}
    refused = manage("check", env=env, tmp_path=tmp_path)
    allowed = manage(
        "check", env={**env, "GATEWAY_ALLOW_HTTP": "true"}, tmp_path=tmp_path
    )
    assert refused.returncode != 0
    assert "GATEWAY_URL must be https://" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr


def test_production_refuses_debug(tmp_path: Path) -> None:
    result = manage("check", env={**PRODUCTION, "DEBUG": "true"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


def test_production_supervises_the_service_without_the_fake_gateway(
    tmp_path: Path,
) -> None:
    result = manage(
        "supervise",
        "--print",
        env={**PRODUCTION, "RUN_FAKE_GATEWAY": "true"},
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    programs = [
        line for line in result.stdout.splitlines() if line.startswith("[program:")
    ]
    assert programs == [
        "[program:web]",
        "[program:worker]",
        "[program:followers]",
        "[program:webhooks]",
        "[program:checkpointer]",
        "[program:beat]",
    ]


@pytest.mark.django_db
@override_settings(PRODUCTION=True)
def test_production_creates_no_demo_admin() -> None:
    call_command("ensure_demo_admin")
    assert not User.objects.exists()


def test_a_malformed_checkpoint_public_key_fails_the_checks(tmp_path: Path) -> None:
    env = {**PRODUCTION, "CHECKPOINT_PUBLIC_KEY": "not-a-key"}
    result = manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "CHECKPOINT_PUBLIC_KEY" in result.stderr
