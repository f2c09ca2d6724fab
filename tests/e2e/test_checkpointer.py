"""The supervised stack signs checkpoints on beat's schedule through the checkpointer,
the only process whose environment names the signing key; the chain it builds passes
verify_ledger with the checkpointer's log as anchors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tools.stack import Stack, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

BODY = {
    "amount": "12.50",
    "currency": "EUR",
    "recipient_details": {
        "type": "card",
        "number": "4242424242424242",
        "holder": "Ada Lovelace",
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack.running(
        tmp_path_factory.mktemp("checkpointer"),
        "checkpointer",
        overrides={"CHECKPOINT_INTERVAL": "2"},
    ) as stack:
        yield stack


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_beat_has_the_checkpointer_sign_a_chain_that_verifies(stack: Stack) -> None:
    # given
    with stack.client() as client:
        assert client.post("/api/v1/payouts/", json=BODY).status_code == 201
    # when: a few ticks of the schedule
    wait_for(
        lambda: (
            stack.sql(
                "SELECT count(*) FROM projections_ledgercheckpoint "
                "WHERE sequence IS NOT NULL AND streams >= 1"
            )[0][0]
            >= 2
        ),
        60,
        "two checkpoints over the payout",
    )
    # then
    output = stack.manage(
        "verify_ledger", "--anchors", str(stack.run_dir / "checkpoints.log")
    )
    assert "OK: no discrepancy" in output


def test_only_the_checkpointers_environment_names_the_signing_key(
    stack: Stack,
) -> None:
    key = str(stack.run_dir / "checkpoint-signing-key.pem")
    checkpointer = stack.pid("checkpointer")
    assert checkpointer is not None
    assert environment_of(checkpointer)["CHECKPOINT_SIGNING_KEY_FILE"] == key
    for name in ("web", "worker", "followers", "beat", "gateway"):
        pid = stack.pid(name)
        assert pid is not None, name
        assert "CHECKPOINT_SIGNING_KEY_FILE" not in environment_of(pid), name
