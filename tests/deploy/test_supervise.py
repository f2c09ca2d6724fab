"""manage.py supervise on the embedded defaults (no PostgreSQL, no Redis needed):
the environment wins over .env, and a process that keeps dying is given up on and
said so in the output, not restarted in a silent loop."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from tools.stack import ROOT, wait_for

SHOW = (
    "from django.conf import settings; "
    "print(settings.PORT, settings.DEMO_ADMIN_USERNAME, settings.PAYMENT_GATEWAY['URL'])"
)


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "CIPHER_", "PAYOUTS_"))
    }
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "settings.base",
        "DEBUG": "true",
        "CIPHER_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "ENV_FILE": str(tmp_path / ".env"),
        "RUN_DIR": str(tmp_path / "run"),
        **extra,
    }


def test_the_environment_wins_over_dotenv_which_fills_in_the_rest(
    tmp_path: Path,
) -> None:
    # given
    (tmp_path / ".env").write_text(
        "PORT=1111\nGATEWAY_URL=http://127.0.0.1:1\nDEMO_ADMIN_USERNAME=from-dotenv\n"
    )
    env = isolated_env(tmp_path, PORT="2222", GATEWAY_URL="http://127.0.0.1:2")
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHOW],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # then
    assert result.stdout.splitlines()[-1].split() == [
        "2222",
        "from-dotenv",
        "http://127.0.0.1:2",
    ]


def test_a_process_that_keeps_dying_is_given_up_on_and_reported(
    tmp_path: Path,
) -> None:
    # given: a gateway that cannot start (its latency setting is not a number)
    env = isolated_env(tmp_path, GATEWAY_LATENCY_MS="not-a-number")
    output = tmp_path / "supervise.out"
    with output.open("wb") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "manage.py", "supervise", "--only", "gateway"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # then: five quick retries with a growing pause (1 + 2 + ... + 5 s), then
        # the supervisor gives up and says so
        wait_for(
            lambda: b"gave up: gateway entered FATAL state" in output.read_bytes(),
            60,
            "the supervisor to give up on the gateway",
            interval=0.5,
        )
        text = output.read_text()
        assert text.count("spawned: 'gateway'") == 6
        assert supervisor.poll() is None  # the supervisor itself stays up
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        supervisor.wait(30)
