"""Webhook fixtures: a real receiver process, and settings that let it be reached."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tools.stack import free_port
from tools.webhook_receiver import ReceiverProcess

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def receiver_factory(tmp_path: Path) -> Iterator[Callable[..., ReceiverProcess]]:
    started: list[ReceiverProcess] = []

    def start(*options: str) -> ReceiverProcess:
        receiver = ReceiverProcess(
            tmp_path / f"receiver{len(started)}", free_port(), options
        )
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.kill()


@pytest.fixture
def allow_loopback(settings: Any) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_RETRY_BASE = 0.05
    settings.WEBHOOK_RETRY_MAX_DELAY = 0.2
    settings.WEBHOOK_READ_TIMEOUT = 1.0
    settings.WEBHOOK_CONNECT_TIMEOUT = 1.0
    return settings
