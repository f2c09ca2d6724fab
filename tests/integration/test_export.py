"""export_events writes the event feed as NDJSON, one event per line, and its integrity
data to a sidecar file; scripts/verify_export.py checks both offline, as an auditor
would run it; any altered, removed or reordered line fails."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from io import BytesIO, StringIO, TextIOWrapper
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core.management import call_command

from api.idempotency import fingerprint
from ledger.chain import stream_seed
from projections.export import export_events, export_range
from tests.builders import TEST_ACTOR, card_payout, new_payout

if TYPE_CHECKING:
    from collections.abc import Callable
    from uuid import UUID

    from ledger.application import Payouts

VERIFY = Path(__file__).resolve().parents[2] / "scripts" / "verify_export.py"
CARD = "4242424242424242"


@pytest.fixture
def interleaved(ledger: Payouts, project: Any) -> list[UUID]:
    """Three payouts whose events interleave: C1 C2 C3 S1 S2 S3 K1 K2 K3."""
    ids = [
        ledger.create_payout(new_payout(), actor=TEST_ACTOR).payout.id for _ in range(3)
    ]
    for payout_id in ids:
        ledger.start_processing(payout_id, actor=TEST_ACTOR)
    for payout_id in ids:
        ledger.complete(payout_id, gateway_reference="ch_1", actor=TEST_ACTOR)
    project()
    return ids


def export(tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "events.ndjson"
    call_command("export_events", "--output", str(path), *args, stdout=StringIO())
    return path


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".integrity.json")


def run_verify(path: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        # -I: no project on sys.path
        [sys.executable, "-I", str(VERIFY), str(path), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def events_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines_of(path)]


def integrity_of(path: Path) -> dict[str, Any]:
    return json.loads(sidecar(path).read_bytes())


def edit(line: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    record = json.loads(line)
    change(record)
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


def flip(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def rewrite(path: Path, events: list[bytes], *, reseal: bool = False) -> None:
    """Replace the export's lines; with `reseal`, also what a forger would do: a
    count and digest recomputed over the edited lines in the sidecar."""
    path.write_bytes(b"".join(events))
    if reseal:
        integrity = integrity_of(path)
        integrity["count"] = len(events)
        sealed = f"{len(events)}:{integrity['after']}:{integrity['until']}".encode()
        integrity["digest"] = hashlib.sha256(b"".join(events) + sealed).hexdigest()
        sidecar(path).write_text(json.dumps(integrity))


def test_an_export_verifies_offline_with_exit_code_zero(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # when
    path = export(tmp_path)
    code, output = run_verify(path)
    # then
    assert code == 0, output
    assert "OK: 9 events of 3 payouts" in output
    assert "0 unlinked" in output


def test_each_line_carries_the_fields_its_hash_covers_and_links_to_the_one_before(
    interleaved: list[UUID], ledger: Payouts, tmp_path: Path
) -> None:
    # when
    events = events_of(export(tmp_path))
    # then
    first = events[0]
    assert list(first) == [
        "position",
        "payout_id",
        "version",
        "type",
        "occurred_at",
        "actor",
        "request_id",
        "data",
        "previous_hash",
        "hash",
        "chain_fields",
    ]
    assert first["previous_hash"] == stream_seed(first["payout_id"])
    assert first["data"]["recipient_details"]["number"] == "424242******4242"
    history = ledger.history(interleaved[0])
    assert [e["hash"] for e in events if e["payout_id"] == str(interleaved[0])] == [
        r.hash for r in history
    ]
    assert [e["position"] for e in events] == [
        r.position for r in ledger.feed(after=0, limit=100)
    ]


def mutate_amount(lines: list[bytes]) -> list[bytes]:
    lines[0] = edit(lines[0], lambda r: r["data"].update(amount="1600.00"))
    return lines


def mutate_hash(lines: list[bytes]) -> list[bytes]:
    lines[1] = edit(lines[1], lambda r: r.update(hash=flip(r["hash"])))
    return lines


def mutate_chain_field(lines: list[bytes]) -> list[bytes]:
    lines[2] = edit(
        lines[2], lambda r: r["chain_fields"].update(currency="EUX", amount="1500.01")
    )
    return lines


def mutate_previous_hash(lines: list[bytes]) -> list[bytes]:
    lines[6] = edit(
        lines[6], lambda r: r.update(previous_hash=flip(r["previous_hash"]))
    )
    return lines


def delete_line(lines: list[bytes]) -> list[bytes]:
    del lines[4]
    return lines


def reorder_lines(lines: list[bytes]) -> list[bytes]:
    lines[3], lines[4] = lines[4], lines[3]
    return lines


EVENT_TAMPERING = [
    mutate_amount,
    mutate_hash,
    mutate_chain_field,
    mutate_previous_hash,
    delete_line,
    reorder_lines,
]


@pytest.mark.parametrize("resealed", [False, True], ids=["as-is", "digest-redone"])
@pytest.mark.parametrize("tamper", EVENT_TAMPERING, ids=lambda f: f.__name__)
def test_tampering_with_events_fails_even_with_a_recomputed_digest(
    interleaved: list[UUID],
    tmp_path: Path,
    tamper: Callable[[list[bytes]], list[bytes]],
    resealed: bool,
) -> None:
    # given
    path = export(tmp_path)
    # when
    rewrite(path, tamper(lines_of(path)), reseal=resealed)
    code, output = run_verify(path)
    # then
    assert code == 1
    assert output.startswith("INVALID: line ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"digest": "0" * 64}, "digest does not match the export's lines"),
        ({"count": 8}, "count says 8, the export has 9"),
        ({"count": "9"}, "not an integrity document"),
    ],
)
def test_altered_integrity_data_fails(
    interleaved: list[UUID], tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    # given
    path = export(tmp_path)
    # when
    sidecar(path).write_text(json.dumps(integrity_of(path) | change))
    code, output = run_verify(path)
    # then
    assert code == 1
    assert output.startswith(f"INVALID: integrity file {sidecar(path)}: {message}")


def test_one_character_changed_anywhere_in_any_line_fails(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # given
    exported = export(tmp_path)
    original, integrity = lines_of(exported), sidecar(exported).read_bytes()
    for index, line in enumerate(original):
        for at in (len(line) // 3, len(line) // 2, len(line) - 3):
            lines = list(original)
            swapped = b"0" if line[at : at + 1] != b"0" else b"1"
            lines[index] = line[:at] + swapped + line[at + 1 :]
            path = tmp_path / f"altered-{index}-{at}.ndjson"
            path.write_bytes(b"".join(lines))
            sidecar(path).write_bytes(integrity)
            # when
            code, output = run_verify(path)
            # then
            assert code == 1, (index, at, output)


def test_the_first_problem_names_its_line_and_payout(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # given
    path = export(tmp_path)
    lines = mutate_hash(lines_of(path))
    path.write_bytes(b"".join(lines))
    # when
    code, output = run_verify(path)
    # then
    assert code == 1
    assert output.strip() == (
        f"INVALID: line 2 (payout {interleaved[1]}): hash does not match chain_fields"
    )


def test_after_and_until_select_positions_and_streams_started_before_are_unlinked(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # given
    positions = [e["position"] for e in events_of(export(tmp_path))]
    # when
    path = export(tmp_path, "--after", str(positions[3]), "--until", str(positions[7]))
    code, output = run_verify(path)
    # then: S2 S3 K1 K2 are in; S2, S3 and K1 start before the export
    assert [e["position"] for e in events_of(path)] == positions[4:8]
    integrity = integrity_of(path)
    assert (integrity["count"], integrity["after"], integrity["until"]) == (
        4,
        positions[3],
        positions[7],
    )
    assert code == 0, output
    assert "3 unlinked (starts before the export)" in output


def test_a_full_export_missing_a_streams_first_events_fails(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # given: an export from the start whose Created line was dropped and resealed
    path = export(tmp_path)
    rewrite(path, lines_of(path)[1:], reseal=True)
    # when
    code, output = run_verify(path)
    # then
    assert code == 1
    assert "starts at version 2" in output


def test_the_export_holds_no_card_number_nor_a_hash_that_gives_it_away(
    ledger: Payouts, tmp_path: Path
) -> None:
    # given: created through an idempotency key, as the API does
    body = card_payout()
    request_fingerprint = fingerprint(body)
    ledger.create_payout(
        new_payout(),
        actor=TEST_ACTOR,
        idempotency_key="key-1",
        request_fingerprint=request_fingerprint,
    )
    ledger.create_payout(new_payout(), actor=TEST_ACTOR)
    # when
    path = export(tmp_path)
    text = path.read_text()
    code, output = run_verify(path)
    # then
    unkeyed = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert CARD not in text
    assert unkeyed not in text  # what could be brute-forced from the masked number
    assert code == 0, output


def test_the_export_streams_in_batches_writing_each_event_once(
    interleaved: list[UUID], ledger: Payouts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a spy on the reads, noting how many lines were written before each
    written: list[bytes] = []
    reads: list[int] = []
    select = ledger.recorder.select_notifications

    def spy(*args: Any, **kwargs: Any) -> Any:
        reads.append(len(written))
        return select(*args, **kwargs)

    monkeypatch.setattr(ledger.recorder, "select_notifications", spy)
    after, until = export_range(ledger, None, None)
    # when
    summary = export_events(ledger, written.append, after=after, until=until, batch=2)
    # then
    positions = [json.loads(line)["position"] for line in written]
    assert positions == sorted(set(positions)) and len(positions) == 9
    assert summary.count == 9
    assert reads == [0, 2, 4, 6, 8]  # each batch written before the next is read


def test_every_line_of_the_export_is_an_event_and_the_integrity_data_is_beside_it(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # when
    path = export(tmp_path)
    # then
    events = events_of(path)
    assert len(events) == 9
    assert all(
        {"position", "payout_id", "type", "chain_fields"} <= e.keys() for e in events
    )
    integrity = integrity_of(path)
    assert integrity.keys() == {"count", "after", "until", "digest", "digest_of"}
    assert (integrity["count"], integrity["after"]) == (9, 0)
    assert integrity["until"] == events[-1]["position"]


def test_verification_needs_the_integrity_file(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # given
    path = export(tmp_path)
    sidecar(path).unlink()
    # when
    code, output = run_verify(path)
    # then
    assert code == 2
    assert str(sidecar(path)) in output


def test_the_integrity_file_can_be_named(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # given: the sidecar moved elsewhere, and a wrong one beside the export
    path = export(tmp_path)
    moved = tmp_path / "kept-apart.json"
    sidecar(path).rename(moved)
    sidecar(path).write_text(json.dumps(json.loads(moved.read_bytes()) | {"count": 1}))
    # when
    code, output = run_verify(path, "--integrity", str(moved))
    # then
    assert code == 0, output


@pytest.mark.parametrize("binary", [True, False], ids=["bytes", "text"])
def test_without_output_stdout_has_only_events_and_stderr_the_integrity_data(
    interleaved: list[UUID], tmp_path: Path, binary: bool
) -> None:
    # given
    out: Any = TextIOWrapper(BytesIO(), encoding="utf-8") if binary else StringIO()
    err = StringIO()
    # when
    call_command("export_events", stdout=out, stderr=err)
    # then
    out.flush()
    data = out.buffer.getvalue() if binary else out.getvalue().encode()
    path = tmp_path / "stdout.ndjson"
    path.write_bytes(data)
    (tmp_path / "stderr.json").write_text(err.getvalue())
    assert [json.loads(line)["type"] for line in lines_of(path)].count("Created") == 3
    assert len(lines_of(path)) == 9
    assert json.loads(err.getvalue())["count"] == 9
    code, output = run_verify(path, "--integrity", str(tmp_path / "stderr.json"))
    assert code == 0, output


def test_an_empty_range_exports_an_empty_file_that_verifies(
    ledger: Payouts, tmp_path: Path
) -> None:
    # when
    path = export(tmp_path)
    code, output = run_verify(path)
    # then
    assert path.read_bytes() == b""
    assert integrity_of(path)["count"] == 0
    assert code == 0, output


def test_an_exports_hashes_are_those_the_history_api_shows(
    interleaved: list[UUID], auditor_client: Any, tmp_path: Path
) -> None:
    # given
    payout_id = interleaved[0]
    exported = [
        e for e in events_of(export(tmp_path)) if e["payout_id"] == str(payout_id)
    ]
    # when
    history = auditor_client.get(f"/api/v1/payouts/{payout_id}/history/").json()
    # then: what lets an auditor anchor an offline export to the live ledger
    assert [(h["previous_hash"], h["hash"]) for h in history] == [
        (e["previous_hash"], e["hash"]) for e in exported
    ]


def test_a_changed_range_in_the_integrity_file_fails(
    interleaved: list[UUID], tmp_path: Path
) -> None:
    # given: the integrity file claims a wider range than was exported
    path = export(tmp_path)
    integrity = integrity_of(path)
    integrity["until"] += 1
    sidecar(path).write_text(json.dumps(integrity))
    # when
    code, output = run_verify(path)
    # then
    assert code == 1
    assert "digest" in output
