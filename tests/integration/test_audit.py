"""verify_ledger catches every kind of tampering with the PostgreSQL event table, and
names the payout; on an untouched ledger it exits 0."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ledger.chain import event_hash, stream_seed
from projections.audit import take_checkpoint, verify
from projections.models import PayoutView
from tests.builders import TEST_ACTOR, new_payout
from tests.support import as_intruder, run_command

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
    return run_command("verify_ledger")


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


# Each rewrites the event table as the service's role could; %(target)s is the payout
# tampered with, %(donor)s another one.
TAMPERING = {
    "altered-state-bytes": (
        [
            "UPDATE EVENTS SET state = overlay(state placing '\\x00'::bytea from 30 "
            "for 1) WHERE originator_id = %(target)s AND originator_version = 2"
        ],
        "cannot be decrypted",
    ),
    "an-event-deleted-in-the-middle": (
        [
            "DELETE FROM EVENTS "
            "WHERE originator_id = %(target)s AND originator_version = 2"
        ],
        "not contiguous",
    ),
    "a-streams-last-event-deleted": (
        [
            "DELETE FROM EVENTS "
            "WHERE originator_id = %(target)s AND originator_version = 3"
        ],
        "",
    ),
    # The primary key forbids a direct swap.
    "two-events-with-swapped-versions": (
        [
            f"UPDATE EVENTS SET originator_version = {new} "
            f"WHERE originator_id = %(target)s AND originator_version = {old}"
            for old, new in ((2, 99), (3, 2), (99, 3))
        ],
        "",
    ),
    # A real, decryptable event of another payout copied in as the next one.
    "a-forged-event": (
        [
            "INSERT INTO EVENTS (originator_id, originator_version, topic, state) "
            "SELECT %(target)s, 4, topic, state FROM EVENTS "
            "WHERE originator_id = %(donor)s AND originator_version = 3"
        ],
        "",
    ),
}


@pytest.mark.postgres
class TestTamperingWithThePostgresEventTable:
    @pytest.mark.parametrize(
        ("statements", "named"), TAMPERING.values(), ids=TAMPERING.keys()
    )
    def test_tampering_is_caught_and_names_the_payout(
        self, ledger_of_three: dict[str, Any], statements: list[str], named: str
    ) -> None:
        # given
        target, donor = ledger_of_three["target"], ledger_of_three["ids"][0]
        for statement in statements:
            as_intruder(statement, target=target, donor=donor)
        # when
        code, output = run_verify()
        # then
        assert code == 1
        assert f"payout {target}" in output and named in output

    def test_a_whole_stream_deleted_is_caught_by_the_checkpoint(
        self, ledger: Payouts, ledger_of_three: dict[str, Any]
    ) -> None:
        # given: a checkpoint, then a stream removed from the store and the read model
        target = ledger_of_three["target"]
        take_checkpoint(ledger)
        as_intruder("DELETE FROM EVENTS WHERE originator_id = %s", target)
        PayoutView.objects.filter(id=target).delete()
        # when
        code, output = run_verify()
        # then
        assert code == 1
        assert f"payout {target}" in output and "checkpoint" in output

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
