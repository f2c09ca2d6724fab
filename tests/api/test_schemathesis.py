"""Schemathesis against a live server on the test database: every operation of the
OpenAPI schema, through its examples, coverage, fuzzing and stateful phases, must
answer without a server error and as its schema says."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ledger.application import NewPayout
from tests.builders import TEST_ACTOR, bank_payout, new_payout

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_django.live_server_helper import LiveServer

    from ledger.application import Payouts

CONFIG = Path(__file__).with_name("schemathesis.toml")
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Fixed so that a failure in CI replays on a laptop: `--seed` with the same number.
SEED = 20260901
# The examples per operation and phase, the checks (all but those
# tests/api/schemathesis.toml turns off, each with its reason) and the other settings
# are in that file.


def schemathesis_command(base_url: str, api_key: str, report_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/api/v1/schema/?format=json",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {api_key}",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        "--no-color",
        "--request-timeout",
        "30",
    ]


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    live_server: LiveServer,
    ledger: Payouts,
    project: Callable[[], int],
    staff_api_key: str,
    tmp_path: Path,
    settings: Any,
) -> None:
    # given: its ignored_auth check sends wrong credentials from this one address,
    # which would lock the address out (AUTH_FAILURE_LIMIT) and its staff key with it
    settings.AUTH_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 1_000_000
    # and room for every webhook endpoint its create operations make
    settings.WEBHOOK_MAX_ENDPOINTS = 1_000_000
    # and a few payouts in the projection, so that list pages have rows and cursors
    ledger.create_payout(new_payout(), actor=TEST_ACTOR)
    ledger.create_payout(new_payout(amount="9.99", currency="USD"), actor=TEST_ACTOR)
    bank = bank_payout()
    ledger.create_payout(
        NewPayout(bank["amount"], bank["currency"], bank["recipient_details"], ""),
        actor=TEST_ACTOR,
    )
    project()
    # when
    command = schemathesis_command(live_server.url, staff_api_key, tmp_path)
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the work tree
        check=False,
    )
    # then
    shown = shlex.join(command).replace(staff_api_key, "<key>")
    # schemathesis prints each failing case with a curl line and `--seed` to replay it
    assert run.returncode == 0, f"$ {shown}\n{run.stdout}{run.stderr}"
