"""BoundMapper: a stored event decrypts only in the row it was written for; the
older blob format stays readable; a Created seeded for another payout is refused."""

from __future__ import annotations

import uuid
from base64 import b64encode
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from eventsourcing.utils import Environment, get_topic

from ledger.application import Payouts
from ledger.binding import binding
from ledger.cipher import (
    BOUND_MAGIC,
    MAGIC,
    BindingMismatch,
    RotatingCipher,
    key_id_of,
)
from ledger.errors import TamperedEvent
from ledger.payout import Payout
from tests.builders import TEST_ACTOR, new_payout

if TYPE_CHECKING:
    from collections.abc import Iterator

    from eventsourcing.persistence import StoredEvent

KEY = b64encode(b"K" * 32).decode()
SEALED = {
    "PERSISTENCE_MODULE": "eventsourcing.popo",
    "CIPHER_TOPIC": "ledger.cipher:RotatingCipher",
    "CIPHER_KEYS": f"k1:{KEY}",
}


@pytest.fixture
def app() -> Iterator[Payouts]:
    payouts = Payouts(env=SEALED)
    yield payouts
    payouts.close()


def stored_events(app: Payouts) -> list[StoredEvent]:
    """A payout's Created and Cancelled, as stored."""
    payout_id = app.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    app.cancel(payout_id, reason="asked", actor=TEST_ACTOR)
    return list(app.recorder.select_events(payout_id))


def test_stored_events_are_of_the_bound_format_and_read_back(app: Payouts) -> None:
    # given
    created, cancelled = stored_events(app)
    # when
    decoded = [app.mapper.to_domain_event(s) for s in (created, cancelled)]
    # then
    assert created.state.startswith(BOUND_MAGIC)
    assert key_id_of(created.state) == "k1"
    assert [type(e) for e in decoded] == [Payout.Created, Payout.Cancelled]


@pytest.mark.parametrize(
    "relabel",
    [
        pytest.param({"originator_id": uuid.uuid4()}, id="another stream id"),
        pytest.param({"originator_version": 3}, id="another version"),
        pytest.param({"topic": get_topic(Payout.Cancelled)}, id="another topic"),
    ],
)
def test_an_event_moved_to_another_row_is_refused(
    app: Payouts, relabel: dict[str, object]
) -> None:
    # given
    created, _ = stored_events(app)
    moved = replace(created, **relabel)
    # when
    with pytest.raises(TamperedEvent) as refused:
        app.mapper.to_domain_event(moved)
    # then
    assert refused.value.version == moved.originator_version
    assert "another stream id, version or topic" in str(refused.value)


def test_a_later_event_swapped_into_another_version_is_refused(app: Payouts) -> None:
    # given
    created, cancelled = stored_events(app)
    # when / then: the Cancelled blob under the Created's version and topic
    with pytest.raises(TamperedEvent):
        app.mapper.to_domain_event(replace(created, state=cancelled.state))


def test_a_bound_blob_cannot_be_read_without_its_binding() -> None:
    # given
    cipher = RotatingCipher(Environment("payouts", {"CIPHER_KEYS": f"k1:{KEY}"}))
    blob = cipher.seal(b"{}", b"row-1")
    # then
    assert cipher.unseal(blob, b"row-1") == b"{}"
    with pytest.raises(BindingMismatch):
        cipher.unseal(blob, b"row-2")
    with pytest.raises(BindingMismatch):
        cipher.decrypt(blob)


def test_blobs_of_the_older_format_stay_readable(app: Payouts) -> None:
    # given: an event as RotatingCipher format 1 wrote it
    format_1 = unbound(app, stored_events(app)[0])
    # when
    event = app.mapper.to_domain_event(format_1)
    # then
    assert format_1.state.startswith(MAGIC)
    assert key_id_of(format_1.state) == "k1"
    assert isinstance(event, Payout.Created)


def test_a_created_seeded_for_another_payout_is_refused_on_load(app: Payouts) -> None:
    # given: an unbound (format 1) Created copied to another stream id decrypts,
    # but its chain seed names the payout it was written for
    clone = replace(unbound(app, stored_events(app)[0]), originator_id=uuid.uuid4())
    app.recorder.insert_events([clone])
    # when
    with pytest.raises(TamperedEvent, match="seeded for another payout") as refused:
        app.get_payout(clone.originator_id)  # type: ignore[arg-type]
    # then
    assert refused.value.payout_id == clone.originator_id


def unbound(app: Payouts, stored: StoredEvent) -> StoredEvent:
    """The event as RotatingCipher format 1 writes it: bound to no row."""
    cipher = app.mapper.cipher
    assert isinstance(cipher, RotatingCipher)
    return replace(
        stored, state=cipher.encrypt(cipher.unseal(stored.state, _binding(stored)))
    )


def _binding(stored: StoredEvent) -> bytes:
    return binding(stored.originator_id, stored.originator_version, stored.topic)
