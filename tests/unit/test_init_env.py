"""scripts/init_env.py: a local .env gets every local secret once, never replaced."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "init_env.py"
SECRETS = (
    "SECRET_KEY",
    "CIPHER_KEYS",
    "CHECKPOINT_PUBLIC_KEY",
    "IDEMPOTENCY_FINGERPRINT_KEY",
)


def init_env(env_file: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT)],
        # RUN_DIR too: the checkpoint signing key is written there.
        env={
            "PATH": "/usr/bin:/bin",
            "ENV_FILE": str(env_file),
            "RUN_DIR": str(env_file.parent / "run"),
        },
        check=True,
        capture_output=True,
        timeout=60,
    )


def values(env_file: Path) -> dict[str, str]:
    lines = env_file.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_a_new_env_file_gets_every_local_secret(tmp_path: Path) -> None:
    # when
    init_env(tmp_path / ".env")
    # then
    written = values(tmp_path / ".env")
    assert set(SECRETS) <= written.keys()
    assert len(written["IDEMPOTENCY_FINGERPRINT_KEY"]) >= 32


def test_an_older_env_file_gets_the_fingerprint_key_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    # given: a .env from before the fingerprint key existed
    env_file = tmp_path / ".env"
    init_env(env_file)
    before = values(env_file)
    del before["IDEMPOTENCY_FINGERPRINT_KEY"]
    env_file.write_text("".join(f"{k}={v}\n" for k, v in before.items()))
    # when
    init_env(env_file)
    init_env(env_file)
    # then
    after = values(env_file)
    assert {k: after[k] for k in before} == before
    assert env_file.read_text().count("IDEMPOTENCY_FINGERPRINT_KEY=") == 1
