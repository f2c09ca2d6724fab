"""The supervised stack signs checkpoints on beat's schedule through the checkpointer,
the only process whose environment names the signing key; the chain it builds passes
verify_ledger with the checkpointer's log as anchors."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.builders import card_payout
from tools.stack import wait_for

if TYPE_CHECKING:
    from tools.stack import Stack

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_beat_has_the_checkpointer_sign_a_chain_that_verifies(
    shared_stack: Stack,
) -> None:
    # given
    with shared_stack.client() as client:
        payout = client.post("/api/v1/payouts/", json=card_payout())
        assert payout.status_code == 201, payout.text
    (position,) = shared_stack.sql(
        "SELECT notification_id FROM eventstore.payouts_events "
        "WHERE originator_id = %s AND originator_version = 1",
        uuid.UUID(payout.json()["id"]),
    )[0]
    # when: a few ticks of the schedule
    wait_for(
        lambda: (
            shared_stack.sql(
                "SELECT count(*) FROM projections_ledgercheckpoint "
                "WHERE sequence IS NOT NULL AND position >= %s",
                position,
            )[0][0]
            >= 2
        ),
        60,
        "two checkpoints over the payout",
    )
    # then
    output = shared_stack.manage(
        "verify_ledger", "--anchors", str(shared_stack.run_dir / "checkpoints.log")
    )
    assert "OK: no discrepancy" in output


def test_only_the_checkpointers_environment_names_the_signing_key(
    shared_stack: Stack,
) -> None:
    key = str(shared_stack.run_dir / "checkpoint-signing-key.pem")
    checkpointer = shared_stack.pid("checkpointer")
    assert checkpointer is not None
    assert environment_of(checkpointer)["CHECKPOINT_SIGNING_KEY_FILE"] == key
    for name in ("web", "worker", "followers", "beat", "gateway"):
        pid = shared_stack.pid(name)
        assert pid is not None, name
        assert "CHECKPOINT_SIGNING_KEY_FILE" not in environment_of(pid), name
