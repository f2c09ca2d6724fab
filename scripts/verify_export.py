#!/usr/bin/env python3
"""Check an event export offline:  python scripts/verify_export.py events.ndjson

Standard library only (Python 3.8+): no Django, nothing of the project. The export is
what `manage.py export_events` writes: one JSON event per line in position order, each
with `chain_fields`, the exact fields its `hash` covers, and nothing else. Its integrity
data is a separate file, by default beside it as `<export>.integrity.json` (what the
command wrote to stderr when it exported to stdout; name it with --integrity FILE):
{"count": N, "after": A, "until": U, "digest": ..., "digest_of": ...} for the positions
(A, U].

Checked, stopping at the first problem:
- the integrity file: the export has `count` lines, and `digest` = sha256 of every line,
  newline included, followed by "count:after:until" (catches truncation and stray
  edits; anyone can recompute it, so it is no seal: the checks below are what ties the
  lines together);
- each line's `hash` is sha256 of canonical(chain_fields), as the ledger computed it;
- what a line shows (payout_id, version, type, occurred_at, actor, request_id,
  previous_hash, data but the masked card number) agrees with its chain_fields;
- positions strictly increase, within (after, until];
- a payout's versions are contiguous, and its `previous_hash` is the hash of its
  previous line (for version 1: the stream seed, sha256 of
  "payout-ledger/stream/v1:<payout_id>", or GENESIS, 64 zeros, in streams written
  before seeding), so a Created copied under another payout id is caught here too. The first line of a payout at a
  version above 1 is "unlinked (starts before the export)" when after > 0, an error
  otherwise. Events written before the chain existed carry "" and are reported.

The file proves itself consistent, not that it is the ledger's: compare a
few payouts' last `hash` with GET /api/v1/payouts/<id>/history/, or run verify_ledger.

Exit 0 with a summary when valid; 1 with the first problem (line, payout id); 2 on
usage or an unreadable file (the export or its integrity file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
UNCHAINED = ""  # previous_hash of events written before the ledger had a hash chain
SIDECAR_SUFFIX = ".integrity.json"


def stream_seed(payout_id: str) -> str:
    """The previous_hash of a payout's Created (ledger/chain.py stream_seed)."""
    return hashlib.sha256(f"payout-ledger/stream/v1:{payout_id}".encode()).hexdigest()


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes an event's hash covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


class Problem(Exception):
    def __init__(self, line: int, payout: Any, message: str) -> None:
        super().__init__(f"line {line} (payout {payout}): {message}")


class IntegrityProblem(Problem):
    def __init__(self, path: str, message: str) -> None:
        Exception.__init__(self, f"integrity file {path}: {message}")


def shown(f: dict[str, Any]) -> dict[str, Any]:
    """What an export line shows, rebuilt from its hashed fields."""
    kind = f["topic"].rsplit(".", 1)[-1]
    data: dict[str, Any] = {}
    if kind == "Created":
        recipient = {"type": f["recipient_type"], "holder": f["holder"]}
        if f["recipient_type"] != "card":
            recipient.update(iban=f["iban"], bic=f["bic"])
        data = {"amount": f["amount"], "currency": f["currency"]}
        data.update(recipient_details=recipient, description=f["description"])
    elif kind == "Completed":
        data = {"gateway_reference": f["gateway_reference"]}
    elif kind == "Failed":
        data = {"failure_reason": {"code": f["code"], "message": f["message"]}}
    elif kind == "Cancelled":
        data = {"reason": f["reason"]}
    actor = {"type": f["actor_type"], "id": f["actor_id"]}
    return {
        "payout_id": f["originator_id"],
        "version": f["originator_version"],
        "type": kind,
        "occurred_at": f["timestamp"],
        "actor": actor,
        "request_id": f["request_id"],
        "previous_hash": f["previous_hash"],
        "data": data,
    }


@dataclass
class Walk:
    """The lines read so far: each payout's last (version, hash, chained), and counts."""

    after: int
    until: int
    heads: dict[str, tuple[int, str, bool]] = field(default_factory=dict)
    unlinked: int = 0
    unchained: int = 0

    def __post_init__(self) -> None:
        self.position = self.after

    def check(self, line: dict[str, Any]) -> None:
        """One event line against the ones before it; ValueError on a problem."""
        position, fields = line["position"], line["chain_fields"]
        if not self.position < position <= self.until:
            raise ValueError(f"position {position} not in ({self.position}, until]")
        self.position = position
        if hashlib.sha256(canonical(fields)).hexdigest() != line["hash"]:
            raise ValueError("hash does not match chain_fields")
        seen = dict(line)
        if _card(fields):  # all but the masked number, which cannot be checked
            details = dict(seen["data"]["recipient_details"])
            del details["number"]
            seen["data"] = {**seen["data"], "recipient_details": details}
        for key, value in shown(fields).items():
            if seen[key] != value:
                raise ValueError(f"{key} disagrees with chain_fields")
        self._link(line["payout_id"], line["version"], line["previous_hash"])
        self.heads[line["payout_id"]] = (
            line["version"],
            line["hash"],
            line["previous_hash"] != UNCHAINED,
        )

    def _link(self, payout: str, version: int, link: str) -> None:
        head = self.heads.get(payout)
        if head is None and version != 1:
            if self.after == 0:
                raise ValueError(f"starts at version {version}: earlier ones missing")
            self.unlinked += 1  # unlinked (starts before the export)
            expected = link
        elif head is None:
            expected = GENESIS if link == GENESIS else stream_seed(payout)
        elif version != head[0] + 1:
            raise ValueError(f"version {version} follows {head[0]}: not contiguous")
        else:
            expected = head[1]
        if link == UNCHAINED and not (head and head[2]):
            self.unchained += 1
        elif link != expected:
            raise ValueError("previous_hash is not the hash of its previous event")


def _card(fields: dict[str, Any]) -> bool:
    return fields.get("recipient_type") == "card"


def read_integrity(path: str) -> tuple[int, int, int, str]:
    """count, after, until and digest from an integrity file; OSError if unreadable."""
    with open(path, "rb") as file:
        raw = file.read()
    try:
        document = json.loads(raw)
        count, after, until, digest = (
            document[k] for k in ("count", "after", "until", "digest")
        )
        if not all(type(n) is int for n in (count, after, until)):
            raise TypeError
        if not isinstance(digest, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise IntegrityProblem(
            path, "not an integrity document (count, after, until, digest)"
        ) from None
    return count, after, until, digest


def verify(path: str, integrity: str | None = None) -> str:
    """A summary of a valid export; raises Problem at the first problem."""
    integrity = integrity or path + SIDECAR_SUFFIX
    count, after, until, digest = read_integrity(integrity)
    walk, hasher, total = Walk(after, until), hashlib.sha256(), 0
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            total = number
            hasher.update(raw)
            line: Any = None
            try:
                line = json.loads(raw)
                walk.check(line)
            except (
                ValueError,
                KeyError,
                TypeError,
                AttributeError,
                RecursionError,
            ) as exc:
                payout = line.get("payout_id") if isinstance(line, dict) else None
                message = f"missing {exc}" if isinstance(exc, KeyError) else exc
                raise Problem(number, payout, f"{message}") from None
    if count != total:
        raise IntegrityProblem(integrity, f"count says {count}, the export has {total}")
    hasher.update(f"{count}:{after}:{until}".encode())
    if hasher.hexdigest() != digest:
        raise IntegrityProblem(integrity, "digest does not match the export's lines")
    return (
        f"OK: {count} events of {len(walk.heads)} payouts, positions ({after}, "
        f"{until}]: hashes, links, versions, positions, count and digest check out\n"
        f"{walk.unlinked} unlinked (starts before the export)\n"
        f"{walk.unchained} unchained (written before the hash chain)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_export.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("export", help="the NDJSON file export_events wrote")
    parser.add_argument(
        "--integrity",
        metavar="FILE",
        help=f"its integrity data (default: the export's name + {SIDECAR_SUFFIX})",
    )
    args = parser.parse_args(argv[1:])  # exits 2 on bad usage
    try:
        summary = verify(args.export, args.integrity)
    except Problem as problem:
        print(f"INVALID: {problem}")
        return 1
    except OSError as exc:
        print(f"cannot read {exc.filename or args.export}: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
