"""Shared fixtures. Services: PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set.

With REQUIRE_SERVICES=1 (CI), a test that would be skipped for a missing service fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from api.models import ApiKey
from api.permissions import AUDITORS_GROUP
from ledger.application import Payouts
from ledger.apps import get_payouts, reset_payouts
from projections.projectors import PayoutViewProjection
from projections.runner import drain
from tests.fakes import POPO_ENV, in_memory_broker
from tests.support import REQUIRE_SERVICES, wipe_event_store
from workers import tasks

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


def pytest_runtest_setup(item: pytest.Item) -> None:
    missing = []
    if item.get_closest_marker("postgres") and not settings.IS_POSTGRES:
        missing.append("PostgreSQL (DATABASE_URL)")
    if item.get_closest_marker("redis") and not settings.REDIS_URL:
        missing.append("Redis (REDIS_URL)")
    if missing:
        message = f"needs {' and '.join(missing)}"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}, and REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)


@pytest.fixture
def payouts() -> Payouts:
    """The ledger on in-memory (POPO) persistence: no database."""
    return Payouts(env=POPO_ENV)


@pytest.fixture(scope="session")
def _ledger_session(django_db_setup: Any) -> Iterator[None]:
    yield
    # Close the event store's pool before pytest-django drops the test database.
    reset_payouts()


@pytest.fixture
def ledger(_ledger_session: None, db: Any, settings: Any, tmp_path: Path) -> Payouts:
    """The process's ledger application on the test database, emptied first."""
    app = get_payouts()
    wipe_event_store()
    # The checkpointer's log lives outside the database, which each test empties.
    settings.CHECKPOINT_LOG_FILE = str(tmp_path / "checkpoints.log")
    return app


@pytest.fixture
def project(ledger: Payouts) -> Any:
    """Catch the projection up with the event store (what the projector process does)."""

    def run() -> int:
        return drain(ledger, PayoutViewProjection())

    return run


@pytest.fixture
def staff_user(db: Any) -> User:
    return User.objects.create_user("staff", password="staff-pass", is_staff=True)


@pytest.fixture
def auditor_user(db: Any) -> User:
    user = User.objects.create_user("auditor", password="auditor-pass")
    group, _ = Group.objects.get_or_create(name=AUDITORS_GROUP)
    user.groups.add(group)
    return user


@pytest.fixture
def plain_user(db: Any) -> User:
    return User.objects.create_user("someone", password="someone-pass")


@pytest.fixture
def staff_client(staff_user: User, ledger: Payouts) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def auditor_client(auditor_user: User, ledger: Payouts) -> APIClient:
    client = APIClient()
    client.force_authenticate(auditor_user)
    return client


@pytest.fixture
def staff_api_key(staff_user: User) -> str:
    _, plain = ApiKey.issue(staff_user, "tests")
    return plain


@pytest.fixture
def use_gateway(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    """Make the worker tasks call this gateway (get_gateway() builds it otherwise)."""

    def use(gateway: Any) -> None:
        monkeypatch.setattr(tasks, "get_gateway", lambda: gateway)

    return use


@pytest.fixture
def memory_broker() -> Iterator[None]:
    """An in-process broker: the developer's queue never sees a test message."""
    with in_memory_broker():
        yield
