"""The supervised stack on PostgreSQL and Redis survives a kill -9 of each of its
processes: the supervisor (not this test) brings each back, /readyz answers 200
again, and payouts created before, during and after every kill complete."""

from __future__ import annotations

import secrets
import signal
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.builders import card_payout
from tools.stack import Stack, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

BACK_WITHIN = 10.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A payout whose task died with its worker is swept again after 8 s, not 30.
    # The prefork pool, for its children to kill (a threaded worker has none: its
    # crash is the main-process kill, which chaos runs on the default pool).
    with Stack.running(
        tmp_path_factory.mktemp("supervision"),
        "supervision",
        overrides={
            "STUCK_PAYOUT_AFTER": "8",
            "SWEEP_INTERVAL": "2",
            "WORKER_POOL": "prefork",
        },
    ) as stack:
        yield stack


def create(client: httpx.Client, count: int) -> list[str]:
    """Create payouts as a careful client does: a refused connection (the web tier
    restarting) is retried with the same Idempotency-Key."""
    ids = []
    for _ in range(count):
        key = secrets.token_hex(8)

        def post(key: str = key) -> str | None:
            response = client.post(
                "/api/v1/payouts/", json=card_payout(), headers={"Idempotency-Key": key}
            )
            return response.json()["id"] if response.status_code == 201 else None

        ids.append(wait_for(post, 20, "a create to be answered 201", interval=0.2))
    return ids


def kill_main(stack: Stack, name: str) -> Callable[[], bool]:
    old, offset = stack.pid(name), len(stack.log_of(name))
    assert old is not None
    stack.kill(name)
    return lambda: stack.wait_restarted(name, old, offset, BACK_WITHIN) > 0


def kill_child(stack: Stack, name: str) -> Callable[[], bool]:
    before = stack.children(name)
    assert before, f"{name} has no children"
    assert stack.kill_child(name, before[0], signal.SIGKILL)
    return lambda: (
        len(now := stack.children(name)) == len(before) and before[0] not in now
    )


KILLS = {
    "celery worker main process": lambda s: kill_main(s, "worker"),
    "celery pool child": lambda s: kill_child(s, "worker"),
    "gunicorn worker": lambda s: kill_child(s, "web"),
    "gunicorn master": lambda s: kill_main(s, "web"),
    "run_followers": lambda s: kill_main(s, "followers"),
    "run_webhooks": lambda s: kill_main(s, "webhooks"),
    "celery beat": lambda s: kill_main(s, "beat"),
}


def test_each_process_killed_is_brought_back_and_every_payout_completes(
    stack: Stack,
) -> None:
    # given
    created: list[str] = []
    back_after: dict[str, float] = {}
    with stack.client() as client:
        for what, kill in KILLS.items():
            created += create(client, 3)
            # when
            started = time.monotonic()
            is_back = kill(stack)
            created += create(client, 2)  # while it is down or coming back
            # then
            wait_for(is_back, BACK_WITHIN, f"{what} to be back")
            wait_for(
                lambda: httpx.get(f"{stack.web_url}/readyz").status_code == 200,
                BACK_WITHIN,
                f"/readyz after the kill of the {what}",
            )
            back_after[what] = round(time.monotonic() - started, 1)
        created += create(client, 5)

        def all_completed() -> bool:
            return all(
                client.get(f"/api/v1/payouts/{i}/").json()["status"] == "completed"
                for i in created
            )

        wait_for(all_completed, 90, "every payout to complete", interval=1)
    # Every process the supervisor runs is up at the end, each restarted by it.
    assert all(stack.alive(name) for name in stack.names())
    print(f"back after (s): {back_after}")
