"""An intruder with the service's database role clones a Created row under a fresh
payout id (a second payout, paid under a new idempotency key, if nothing stops it):
verify_ledger names it, the followers skip it without stalling, the worker refuses
to pay it before any gateway call."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from prometheus_client import REGISTRY

from ledger import payout as payout_module
from ledger.application import Payouts
from ledger.chain import GENESIS
from ledger.cipher import is_bound
from projections.models import PayoutView
from projections.projectors import PayoutViewProjection
from projections.runner import drain
from tests.builders import create
from tests.support import as_intruder, run_command
from workers import tasks
from workers.dispatcher import PayoutDispatcher
from workers.gateway.fake import FakeGateway

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from eventsourcing.persistence import Mapper

pytestmark = pytest.mark.postgres


def clone_created(source: UUID) -> tuple[UUID, int]:
    """INSERT a copy of the source's Created under a fresh id; the notification id
    comes from the table's own sequence, as for any insert."""
    clone = uuid.uuid4()
    rows = as_intruder(
        "INSERT INTO EVENTS (originator_id, originator_version, topic, state) "
        "SELECT %s, originator_version, topic, state FROM EVENTS "
        "WHERE originator_id = %s AND originator_version = 1 "
        "RETURNING notification_id",
        clone,
        source,
    )
    return clone, rows[0][0]


def run_verify() -> tuple[int, str]:
    return run_command("verify_ledger")


def tampered_count(follower: str) -> float:
    labels = {"follower": follower}
    return REGISTRY.get_sample_value("ledger_tampered_events_total", labels) or 0.0


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The payout ids the dispatcher enqueues, instead of sending them to a broker."""
    sent: list[str] = []
    monkeypatch.setattr(
        tasks.process_payout, "apply_async", lambda args, **_: sent.append(args[0])
    )
    return sent


class UnboundPayouts(Payouts):
    """Payouts as written before binding: the library's mapper, which encrypts with
    RotatingCipher format 1, bound to no row."""

    name = Payouts.name  # the same tables

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(transcoder=self.construct_transcoder())


@pytest.fixture
def legacy_app(ledger: Payouts) -> Iterator[Payouts]:
    """A process of an install from before binding and seeding: unbound events under
    the current key, and Created events seeded with GENESIS."""
    env = {
        **settings.EVENT_STORE,
        "POSTGRES_DBNAME": settings.DATABASES["default"]["NAME"],
    }
    app = UnboundPayouts(env=env)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(payout_module, "stream_seed", lambda _: GENESIS)
        yield app
    app.close()


def test_verify_ledger_names_a_created_cloned_under_a_new_id(
    ledger: Payouts, project: Callable[[], int]
) -> None:
    # given: an honest ledger that verifies
    source = create(ledger)
    project()
    assert run_verify()[0] == 0
    # when
    clone, position = clone_created(source)
    code, output = run_verify()
    # then
    assert code == 1
    assert f"payout {clone}: event v1 (Created) at position {position}" in output
    assert "cannot be decrypted under its stream id, version and topic" in output
    assert "copied, moved or relabelled" in output


def test_the_worker_refuses_to_pay_a_cloned_payout_before_any_gateway_call(
    ledger: Payouts, use_gateway: Callable[[Any], None]
) -> None:
    # given
    gateway = FakeGateway()
    use_gateway(gateway)
    source = create(ledger)
    clone, _ = clone_created(source)
    # when: its task runs, however it got queued (a sweep, a forged message)
    result = tasks.process_payout.apply(args=[str(clone)])
    # then: no charge; parked for an operator at once, out of the sweeps
    assert result.failed()
    assert gateway.calls == []
    assert gateway.charges == {}
    assert tasks.attempts.unavailable([clone]) == {clone}
    assert ledger.get_payout(source).status == "pending"


def test_followers_skip_a_clone_and_keep_dispatching_the_payouts_after_it(
    ledger: Payouts, dispatched: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # given: a clone between two honest payouts
    source = create(ledger)
    clone, position = clone_created(source)
    later = create(ledger)
    skipped = tampered_count(PayoutDispatcher.name)
    # when
    with caplog.at_level(logging.CRITICAL, logger="projections.runner"):
        drain(ledger, PayoutDispatcher())
        drain(ledger, PayoutViewProjection())
    # then: the honest ones are dispatched and projected, the clone neither
    assert dispatched == [str(source), str(later)]
    assert set(PayoutView.objects.values_list("id", flat=True)) == {source, later}
    assert tampered_count(PayoutDispatcher.name) == skipped + 1
    assert f"skipped the event at position {position}" in caplog.text
    assert str(clone) in caplog.text


def test_a_clone_of_a_legacy_format_created_is_named_and_refused(
    ledger: Payouts,
    legacy_app: Payouts,
    project: Callable[[], int],
    use_gateway: Callable[[Any], None],
) -> None:
    # given: a payout written before binding and seeding, which still verifies
    gateway = FakeGateway()
    use_gateway(gateway)
    source = create(legacy_app)
    found = as_intruder("SELECT state FROM EVENTS WHERE originator_id = %s", source)
    (state,) = found[0]
    assert not is_bound(bytes(state))
    project()
    code, output = run_verify()
    assert code == 0, output
    assert "1 legacy-format streams" in output
    # when: its Created is cloned; unbound, it decrypts anywhere
    clone, position = clone_created(source)
    project()
    code, output = run_verify()
    result = tasks.process_payout.apply(args=[str(clone)])
    original = tasks.process_payout.apply(args=[str(source)])
    # then
    assert code == 1
    assert (
        f"payout {clone}: event v1 at position {position} is a byte-for-byte copy"
        in output
    )
    assert result.failed()
    # bytes alone cannot tell the original from its copy: both wait for an operator
    assert original.failed()
    assert gateway.calls == []
