"""Truncation: an intruder with the service's database role deletes the end of a
stream together with the checkpoints that cover it, or truncates the event table and
the checkpoints; `verify_ledger` fails and says what happened, and the checkpointer
refuses to sign over it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from projections.audit import take_checkpoint
from projections.models import LedgerCheckpoint
from projections.signing import load_signing_key, public_key_pem, write_signing_key
from tests.builders import TEST_ACTOR, new_payout
from tests.support import as_intruder, run_command

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import Payouts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def failing(command: str, *args: str) -> str:
    """What a command that must exit 1 wrote, and the error it failed with."""
    code, output = run_command(command, *args)
    assert code == 1, output
    return output


def long_ago() -> Any:
    return timezone.now() - timedelta(seconds=2 * settings.CHECKPOINT_MAX_AGE)


@pytest.fixture
def cut_ledger(ledger: Payouts, project: Any) -> dict[str, Any]:
    """Checkpoint #1 long ago covers a pending payout; its processing and completion
    came later and are covered by checkpoint #2, taken just now."""
    others = [
        ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id for _ in range(2)
    ]
    target: UUID = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    project()
    first = take_checkpoint(ledger, now=long_ago())
    ledger.start_processing(target, actor=TEST_ACTOR)
    ledger.complete(target, gateway_reference="ch_1", actor=TEST_ACTOR)
    project()
    second = take_checkpoint(ledger)
    return {"target": target, "others": others, "first": first, "second": second}


def delete_the_tail(target: UUID) -> None:
    """The target's events after v1 deleted."""
    as_intruder(
        "DELETE FROM EVENTS WHERE originator_id = %s AND originator_version > 1",
        target,
    )


def cut_the_tail(target: UUID) -> None:
    """The target's events after v1 deleted, with every checkpoint that covers them
    (#2)."""
    as_intruder(
        "DELETE FROM CHECKPOINTS WHERE position >= (SELECT min(notification_id) "
        "FROM EVENTS WHERE originator_id = %s AND originator_version > 1)",
        target,
    )
    delete_the_tail(target)
    # and the read model made to agree, so that only the checkpoints can tell
    as_intruder(
        "UPDATE projections_payoutview SET status = 'pending', version = 1, "
        "updated_at = created_at WHERE id = %s",
        target,
    )


def truncate(*tables: str) -> None:
    for table in tables:
        as_intruder(f"TRUNCATE {table}")


def test_an_unbroken_recent_chain_verifies(cut_ledger: dict[str, Any]) -> None:
    # when
    code, output = run_command("verify_ledger")
    # then
    assert code == 0, output
    assert "3 streams, 5 events, 2 checkpoints" in output
    assert "OK: no discrepancy" in output


def test_a_streams_tail_deleted_with_the_checkpoints_covering_it_is_caught(
    cut_ledger: dict[str, Any],
) -> None:
    # given
    cut_the_tail(cut_ledger["target"])
    # when
    output = failing("verify_ledger")
    # then
    assert "FIRST DISCREPANCY: the checkpoint chain ends at #1" in output
    assert "later checkpoints were deleted" in output


def test_the_same_cut_is_named_by_the_anchor_of_a_removed_checkpoint(
    cut_ledger: dict[str, Any],
) -> None:
    # given: the auditor published checkpoint #2's digest
    second = cut_ledger["second"]
    anchor = f"{second.sequence}:{second.checkpoint_digest}"
    cut_the_tail(cut_ledger["target"])
    # when
    output = failing("verify_ledger", "--anchor", anchor)
    # then
    assert "anchored checkpoint #2 is missing (the chain has #1)" in output


def test_a_streams_tail_deleted_under_its_checkpoint_is_caught(
    cut_ledger: dict[str, Any],
) -> None:
    # given: the events deleted, the checkpoints left alone
    target = cut_ledger["target"]
    delete_the_tail(target)
    # when
    output = failing("verify_ledger")
    # then
    assert f"payout {target}: differs from checkpoint #2" in output
    assert "events after v1 were deleted (stream shortened)" in output


def test_a_checkpoint_deleted_from_the_middle_of_the_chain_is_caught(
    ledger: Payouts, cut_ledger: dict[str, Any]
) -> None:
    # given
    take_checkpoint(ledger)
    as_intruder("DELETE FROM CHECKPOINTS WHERE sequence = 2")
    # when
    output = failing("verify_ledger")
    # then
    assert "checkpoint(s) #2 missing between #1 and #3" in output


def test_truncating_the_events_and_the_checkpoints_is_caught_by_an_anchor(
    cut_ledger: dict[str, Any],
) -> None:
    # given: everything gone, the read model too
    second = cut_ledger["second"]
    truncate("EVENTS", "CHECKPOINTS", "projections_payoutview")
    # when
    output = failing("verify_ledger", "--anchor", f"2:{second.checkpoint_digest}")
    # then
    assert "verified 0 streams, 0 events" in output
    assert "anchored checkpoint #2 is missing (the chain has none at all)" in output


def test_the_checkpointers_log_serves_as_the_anchors(
    cut_ledger: dict[str, Any],
) -> None:
    # given: a copy of the checkpointer's log, kept outside the database
    log = settings.CHECKPOINT_LOG_FILE
    truncate("EVENTS", "CHECKPOINTS", "projections_payoutview")
    # when
    output = failing("verify_ledger", "--anchors", log)
    # then
    assert "anchored checkpoint #1 is missing" in output


def test_truncating_the_events_and_the_checkpoints_leaves_orphan_rows_named(
    cut_ledger: dict[str, Any],
) -> None:
    # given: the read model left as it was
    truncate("EVENTS", "CHECKPOINTS")
    # when
    output = failing("verify_ledger")
    # then
    assert "in the projection but has no events: its stream was removed" in output


def test_events_without_any_checkpoint_fail_once_older_than_the_maximum_age(
    cut_ledger: dict[str, Any],
) -> None:
    # given: every checkpoint deleted
    as_intruder("DELETE FROM CHECKPOINTS")
    # when: the first event is older than the schedule allows
    with override_settings(CHECKPOINT_MAX_AGE=0):
        output = failing("verify_ledger")
    # then
    assert "no checkpoint, yet events exist since" in output


def test_the_checkpointer_refuses_to_extend_a_chain_cut_back(
    cut_ledger: dict[str, Any],
) -> None:
    # given
    cut_the_tail(cut_ledger["target"])
    # when
    output = failing("checkpoint")
    # then: it would otherwise sign a fresh #2 over the cut ledger
    assert "checkpoint #2, recorded in" in output and "is missing from" in output
    assert LedgerCheckpoint.objects.filter(sequence=2).count() == 0


def test_the_checkpointer_refuses_to_sign_over_events_deleted_behind_its_back(
    cut_ledger: dict[str, Any],
) -> None:
    # given: the newest checkpoint kept, the events it covers deleted
    target = cut_ledger["target"]
    delete_the_tail(target)
    # when
    output = failing("checkpoint")
    # then
    assert "the ledger no longer matches checkpoint #2" in output
    assert LedgerCheckpoint.objects.filter(sequence=3).count() == 0


def test_verify_ledger_needs_only_the_public_key(
    cut_ledger: dict[str, Any], tmp_path: Path
) -> None:
    # given: an auditor with the public key in a file, and no other key
    public = tmp_path / "checkpoint.pub"
    public.write_text(
        public_key_pem(
            _public_key_of(settings.CHECKPOINT_SIGNING_KEY_FILE),
        )
    )
    # when
    with override_settings(CHECKPOINT_PUBLIC_KEY="", CHECKPOINT_SIGNING_KEY_FILE=""):
        code, output = run_command("verify_ledger", "--public-key", str(public))
    # then
    assert code == 0, output
    assert "2 checkpoints" in output


def test_checkpoints_signed_by_another_key_are_refused(
    cut_ledger: dict[str, Any], tmp_path: Path
) -> None:
    # given: a public key that did not sign the chain
    other = tmp_path / "other.pub"
    other.write_text(write_signing_key(tmp_path / "other.pem"))
    # when
    output = failing("verify_ledger", "--public-key", str(other))
    # then
    assert "checkpoint #1 is signed by key" in output


def _public_key_of(path: str) -> Any:
    return load_signing_key(Path(path)).public_key()
