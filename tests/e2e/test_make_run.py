"""`make run` itself, as a user types it: on PostgreSQL and Redis, the real
environment wins over `.env` for every step (migrate, the demo admin, each process),
and a Ctrl-C or a SIGTERM to its process group leaves no process behind."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest

from tests.builders import card_payout
from tests.support import EVERY_PROCESS
from tools.stack import ROOT, Stack, free_port, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

STOPPED_WITHIN = 30.0


def processes_of(run_dir: Path) -> list[int]:
    """Every live process started for this run: each inherits its RUN_DIR."""
    marker = f"RUN_DIR={run_dir}\0".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes() + b"\0":
                found.append(int(environ.parent.name))
        except OSError:  # gone, or a zombie
            continue
    return found


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Stack]]:
    stack = Stack.fresh(tmp_path, "makerun")
    stack.create_database()
    env = {k: v for k, v in stack.env.items() if k != "PROCESS_LOG_DIR"}
    # .env says otherwise for what the environment sets, and adds one setting: the
    # environment must win everywhere, and .env fill in only what it leaves unset.
    Path(env["ENV_FILE"]).write_text(
        "DATABASE_URL=postgres://postgres@127.0.0.1:1/not_this_one\n"
        "REDIS_URL=redis://127.0.0.1:1/0\n"
        f"PORT={free_port()}\n"
        "GATEWAY_URL=http://127.0.0.1:1\n"
        "DEMO_ADMIN_USERNAME=operator-from-dotenv\n"
    )
    output = (tmp_path / "make-run.out").open("wb")
    make = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a group of its own, as a terminal gives it
    )
    try:
        wait_for(
            lambda: httpx.get(f"{stack.web_url}/readyz").status_code == 200,
            120,
            "make run to serve /readyz",
            interval=0.5,
        )
        yield make, stack
    finally:
        for pid in processes_of(stack.run_dir):  # only after a failed test
            os.kill(pid, signal.SIGKILL)
        make.wait(10)
        output.close()
        stack.drop_database()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_make_run_stops_every_process_it_started(
    make_run: tuple[subprocess.Popen[bytes], Stack], sig: signal.Signals
) -> None:
    # given
    make, stack = make_run
    wait_for(
        lambda: httpx.get(f"{stack.gateway_url}/healthz").status_code == 200,
        30,
        "the bundled gateway",
    )
    # make, supervisord, gateway, gunicorn and its 2 workers, celery and its 2 pool
    # children, run_followers, beat
    wait_for(
        lambda: len(processes_of(stack.run_dir)) >= 11, 30, "every process to start"
    )
    # when: Ctrl-C in the terminal, or `kill -TERM -<pgid>`
    started = time.monotonic()
    os.killpg(make.pid, sig)
    # then
    wait_for(
        lambda: not processes_of(stack.run_dir),
        STOPPED_WITHIN,
        f"every process of make run to exit after {sig.name}",
        interval=0.2,
    )
    print(f"stopped in {time.monotonic() - started:.1f}s after {sig.name}")
    out = (stack.workdir / "make-run.out").read_bytes()
    for name in sorted(EVERY_PROCESS):
        assert f"stopped: {name} (".encode() in out, name


def test_the_environment_wins_over_dotenv_in_every_step(
    make_run: tuple[subprocess.Popen[bytes], Stack],
) -> None:
    # given: make run serves on the environment's PORT (the fixture waited on it)
    _, stack = make_run
    # then: migrate and the demo admin used the environment's database, with the
    # admin's name taken from .env, which the environment leaves unset
    with psycopg.connect(stack.database_url) as conn:
        users = [r[0] for r in conn.execute("SELECT username FROM auth_user")]
    assert users == ["operator-from-dotenv"]
    # and the processes did too: a payout goes through the environment's gateway
    stack.api_key = stack.manage("create_api_key", users[0]).splitlines()[-1]
    with stack.client() as client:
        response = client.post(
            "/api/v1/payouts/",
            json=card_payout(amount="5.00"),
            headers={"Idempotency-Key": secrets.token_hex(8)},
        )
        assert response.status_code == 201, response.text
        payout = f"/api/v1/payouts/{response.json()['id']}/"
        wait_for(
            lambda: client.get(payout).json()["status"] == "completed",
            60,
            "the payout to complete",
        )
