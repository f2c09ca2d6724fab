"""scripts/verify_export.py, loaded by path as an auditor's copy would be: it encodes
exactly as the ledger hashes, reads every event type, and needs the stdlib only."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import sys
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ledger.chain import UNCHAINED, canonical, chain_fields, hash_fields
from projections.export import export_events, export_range, sidecar_path
from tests.builders import TEST_ACTOR, bank_payout, new_payout

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from ledger.application import Payouts

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_export.py"


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("verify_export", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through it
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture
def every_kind_of_event(payouts: Payouts) -> Payouts:
    """Card and bank payouts through every event type, non-ASCII text included."""
    bank = bank_payout()
    card = payouts.create_payout(
        new_payout(description='Café \u2013 東京 ✓ "quoted" \\ \u2028'),
        actor=TEST_ACTOR,
    ).payout.id
    wire = payouts.create_payout(
        new_payout(
            amount=bank["amount"],
            currency=bank["currency"],
            recipient_details=bank["recipient_details"],
        ),
        actor=TEST_ACTOR,
    ).payout.id
    cancelled = payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    for payout_id in (card, wire):
        payouts.start_processing(payout_id, actor=TEST_ACTOR)
    payouts.complete(card, gateway_reference="ch_ü", actor=TEST_ACTOR)
    payouts.fail(wire, code="insufficient_funds", message="Nope — ø", actor=TEST_ACTOR)
    payouts.cancel(cancelled, reason="Asked by ☎", actor=TEST_ACTOR)
    return payouts


def all_events(payouts: Payouts) -> list[Any]:
    return [
        payouts.mapper.to_domain_event(n)
        for n in payouts.recorder.select_notifications(start=1, limit=100)
    ]


def test_the_scripts_canonical_encoding_is_the_ledgers(
    script: ModuleType, every_kind_of_event: Payouts
) -> None:
    # given
    events = all_events(every_kind_of_event)
    # then: on the fields themselves and on what an auditor parses back from a line
    assert len(events) == 8
    for event in events:
        fields = chain_fields(event)
        assert script.canonical(fields) == canonical(fields)
        assert script.canonical(json.loads(json.dumps(fields))) == canonical(fields)


def test_an_export_of_every_event_type_verifies(
    script: ModuleType, every_kind_of_event: Payouts, tmp_path: Path
) -> None:
    # given
    out = BytesIO()
    after, until = export_range(every_kind_of_event, None, None)
    integrity = export_events(every_kind_of_event, out.write, after=after, until=until)
    path = tmp_path / "events.ndjson"
    path.write_bytes(out.getvalue())
    sidecar_path(path).write_bytes(integrity.document())
    # when
    summary = script.verify(str(path))
    # then
    assert summary.startswith("OK: 8 events of 3 payouts, positions (0, 8]")


def test_events_written_before_the_chain_are_reported_not_rejected(
    script: ModuleType, payouts: Payouts, tmp_path: Path
) -> None:
    # given: a stream whose first two events predate the chain (previous_hash "")
    payout_id = payouts.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    payouts.start_processing(payout_id, actor=TEST_ACTOR)
    payouts.complete(payout_id, gateway_reference="ch_1", actor=TEST_ACTOR)
    out = BytesIO()
    export_events(payouts, out.write, after=0, until=3)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    previous = ""
    for index, line in enumerate(lines):
        link = UNCHAINED if index < 2 else previous
        line["previous_hash"] = line["chain_fields"]["previous_hash"] = link
        previous = hash_fields(line["chain_fields"])
        line["hash"] = previous
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    end = {
        "count": 3,
        "digest": hashlib.sha256(body + b"3:0:3").hexdigest(),
        "after": 0,
        "until": 3,
    }
    path = tmp_path / "legacy.ndjson"
    path.write_bytes(body)
    sidecar_path(path).write_text(json.dumps(end))
    # when
    summary = script.verify(str(path))
    # then
    assert "2 unchained (written before the hash chain)" in summary


def test_the_script_imports_the_standard_library_only() -> None:
    # given
    tree = ast.parse(SCRIPT.read_text())
    # when
    roots = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    # then
    assert roots - {"__future__"} <= sys.stdlib_module_names
