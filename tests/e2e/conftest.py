"""One supervised stack for the e2e modules that only use it: starting one takes
10-15 s and stopping it 3-5 s, per module.

A test takes `shared_stack` when it kills no process and reads back only what it made
itself (its own payouts, its own charges). Modules that kill processes, or need a
setting of their own, start a stack of their own. The tests on the shared stack run
one after another, and the stack is destroyed after the last of them, so that it does
not load the machine while other modules start stacks of their own.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

from tools.stack import Stack

if TYPE_CHECKING:
    from collections.abc import Iterator

SHARED = "shared_stack"
# Every setting some user of the shared stack needs; none changes what another sees.
SHARED_OVERRIDES = {
    # test_checkpointer: a few ticks of the schedule in seconds
    "CHECKPOINT_INTERVAL": "2",
    # test_test_cards: the SPEC's holds and windows ten times shorter, against an
    # adapter that reads for 0.8 s, so each card meets the timeouts it meets at full
    # scale; a payout whose task died is swept again after 10 s, not 30
    "GATEWAY_TIME_SCALE": "0.1",
    "GATEWAY_READ_TIMEOUT": "0.8",
    "GATEWAY_LATENCY_MS": "0",
    "STUCK_PAYOUT_AFTER": "10",
    "SWEEP_INTERVAL": "2",
}


class SharedStack:
    """The shared stack, started when first asked for, destroyed by `close`."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.running = contextlib.ExitStack()
        self.stack: Stack | None = None

    def get(self) -> Stack:
        if self.stack is None:
            workdir = self.factory.mktemp("shared")
            self.stack = self.running.enter_context(
                Stack.running(workdir, "shared", overrides=SHARED_OVERRIDES)
            )
        return self.stack

    def close(self) -> None:
        self.stack = None
        self.running.close()


_HOLDER = pytest.StashKey[SharedStack]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the shared stack move up to the first of them, in their order."""
    shared = [item for item in items if SHARED in getattr(item, "fixturenames", ())]
    if not shared:
        return
    first = items.index(shared[0])
    moved = set(shared)
    others = [item for item in items if item not in moved]
    items[:] = [*others[:first], *shared, *others[first:]]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Iterator[None]:
    """After the last test in a row on the shared stack (and its fixtures' teardown)."""
    yield
    holder = item.config.stash.get(_HOLDER, None)
    if holder is not None and SHARED not in getattr(nextitem, "fixturenames", ()):
        holder.close()


@pytest.fixture(scope="session")
def _shared_stacks(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedStack]:
    holder = request.config.stash[_HOLDER] = SharedStack(tmp_path_factory)
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture(scope="module")
def shared_stack(_shared_stacks: SharedStack) -> Stack:
    """The stack every test that kills nothing shares (started if it is not running)."""
    return _shared_stacks.get()
