"""verify_ledger catches every kind of tampering with the PostgreSQL event table, and
names the payout; on an untouched ledger it exits 0."""

from __future__ import annotations

from io import StringIO
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from ledger.chain import event_hash, stream_seed
from projections.audit import take_checkpoint, verify
from projections.models import PayoutView
from tests.builders import TEST_ACTOR, new_payout
from tests.support import service_connection

if TYPE_CHECKING:
    from uuid import UUID

    from ledger.application import Payouts


def completed_payout(ledger: Payouts) -> UUID:
    payout_id = ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    ledger.start_processing(payout_id, actor=TEST_ACTOR)
    ledger.complete(payout_id, gateway_reference="ch_1", actor=TEST_ACTOR)
    return payout_id


@pytest.fixture
def ledger_of_three(ledger: Payouts, project: Any) -> dict[str, Any]:
    ids = [completed_payout(ledger) for _ in range(3)]
    project()
    return {"ids": ids, "target": ids[1]}


def run_verify() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_ledger", stdout=out)
    except CommandError as failed:
        return failed.returncode, out.getvalue()
    return 0, out.getvalue()


def tamper(query: str, *params: Any) -> None:
    with service_connection() as conn:
        conn.execute(
            query.replace("EVENTS", f"{settings.EVENT_STORE_SCHEMA}.payouts_events"),
            params,
        )


def test_an_untouched_ledger_verifies_with_exit_code_zero(
    ledger_of_three: dict[str, Any],
) -> None:
    # when
    code, output = run_verify()
    # then
    assert code == 0
    assert "verified 3 streams, 9 events" in output
    assert "OK" in output


def test_every_event_links_to_the_hash_of_the_one_before_it(ledger: Payouts) -> None:
    # given
    payout_id = completed_payout(ledger)
    # when
    events = list(ledger.events.get(payout_id))
    # then
    assert events[0].previous_hash == stream_seed(payout_id)
    assert [e.previous_hash for e in events[1:]] == [event_hash(e) for e in events[:-1]]


def test_history_entries_carry_the_chain_hashes(ledger: Payouts) -> None:
    # given
    payout_id = completed_payout(ledger)
    # when
    history = ledger.history(payout_id)
    # then
    assert [h.previous_hash for h in history[1:]] == [h.hash for h in history[:-1]]


def test_the_projection_must_equal_the_replay(ledger_of_three: dict[str, Any]) -> None:
    # given: a read model edited behind the ledger's back
    PayoutView.objects.filter(id=ledger_of_three["target"]).update(status="failed")
    # when
    code, output = run_verify()
    # then
    assert code == 1
    assert str(ledger_of_three["target"]) in output
    assert "projection status" in output


@pytest.mark.postgres
class TestTamperingWithThePostgresEventTable:
    def test_altered_state_bytes_are_caught(
        self, ledger_of_three: dict[str, Any]
    ) -> None:
        target = ledger_of_three["target"]
        tamper(
            "UPDATE EVENTS SET state = overlay(state placing '\\x00'::bytea from 30 for 1) "
            "WHERE originator_id = %s AND originator_version = 2",
            target,
        )
        code, output = run_verify()
        assert code == 1
        assert f"payout {target}" in output and "cannot be decrypted" in output

    def test_an_event_deleted_in_the_middle_is_caught(
        self, ledger_of_three: dict[str, Any]
    ) -> None:
        target = ledger_of_three["target"]
        tamper(
            "DELETE FROM EVENTS WHERE originator_id = %s AND originator_version = 2",
            target,
        )
        code, output = run_verify()
        assert code == 1
        assert f"payout {target}" in output and "not contiguous" in output

    def test_a_streams_last_event_deleted_is_caught(
        self, ledger_of_three: dict[str, Any]
    ) -> None:
        target = ledger_of_three["target"]
        tamper(
            "DELETE FROM EVENTS WHERE originator_id = %s AND originator_version = 3",
            target,
        )
        code, output = run_verify()
        assert code == 1
        assert f"payout {target}" in output

    def test_a_whole_stream_deleted_is_caught_by_the_checkpoint(
        self, ledger: Payouts, ledger_of_three: dict[str, Any]
    ) -> None:
        # given: a checkpoint, then a stream removed from the store and the read model
        target = ledger_of_three["target"]
        take_checkpoint(ledger)
        tamper("DELETE FROM EVENTS WHERE originator_id = %s", target)
        PayoutView.objects.filter(id=target).delete()
        # when
        code, output = run_verify()
        # then
        assert code == 1
        assert f"payout {target}" in output and "checkpoint" in output

    def test_two_events_with_swapped_versions_are_caught(
        self, ledger_of_three: dict[str, Any]
    ) -> None:
        target = ledger_of_three["target"]
        for old, new in (
            (2, 99),
            (3, 2),
            (99, 3),
        ):  # the primary key forbids a direct swap
            tamper(
                "UPDATE EVENTS SET originator_version = %s "
                "WHERE originator_id = %s AND originator_version = %s",
                new,
                target,
                old,
            )
        code, output = run_verify()
        assert code == 1
        assert f"payout {target}" in output

    def test_a_forged_event_is_caught(self, ledger_of_three: dict[str, Any]) -> None:
        # given: a real, decryptable event of another payout copied in as the next one
        target, donor = ledger_of_three["target"], ledger_of_three["ids"][0]
        tamper(
            "INSERT INTO EVENTS (originator_id, originator_version, topic, state) "
            "SELECT %s, 4, topic, state FROM EVENTS WHERE originator_id = %s AND originator_version = 3",
            target,
            donor,
        )
        code, output = run_verify()
        assert code == 1
        assert f"payout {target}" in output

    def test_a_checkpoint_with_a_forged_signature_is_caught(
        self, ledger: Payouts, ledger_of_three: dict[str, Any]
    ) -> None:
        checkpoint = take_checkpoint(ledger)
        checkpoint.signature = "0" * 64
        checkpoint.save()
        code, output = run_verify()
        assert code == 1
        assert "bad signature" in output


def test_a_checkpoint_is_verified_on_the_next_run(
    ledger: Payouts, ledger_of_three: dict[str, Any]
) -> None:
    # given
    checkpoint = take_checkpoint(ledger)
    # when
    report = verify(ledger)
    # then
    assert report.ok, report.discrepancy
    assert (checkpoint.streams, checkpoint.events, report.checkpoints) == (3, 9, 1)


def test_a_range_verifies_only_streams_with_events_in_it(
    ledger: Payouts, ledger_of_three: dict[str, Any]
) -> None:
    # given: the last payout's events are the last positions
    last = ledger.recorder.max_notification_id()
    # when
    report = verify(ledger, after=last - 3)
    # then
    assert report.ok, report.discrepancy
    assert report.streams == 1
