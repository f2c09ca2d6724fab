"""The checker: the invariants of money safety over the event store, the projection,
the gateway's charges and the client's history, read after the faults have stopped.

The event store is read with plain SQL (topics, versions and positions are stored in
clear; only event state is encrypted) and the state machine is SPEC.md's, written out
again here rather than imported from `ledger/`: the checker must not share a bug with
what it checks. `manage.py verify_ledger` adds the hash chains and the projection
fields a replay gives.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from tools.chaos.load import History

# SPEC.md: the event that moves a payout into each status, and the legal moves.
STATUS_AFTER = {
    "Created": "pending",
    "ProcessingStarted": "processing",
    "Completed": "completed",
    "Failed": "failed",
    "Cancelled": "cancelled",
}
LEGAL = {
    None: {"pending"},
    "pending": {"processing", "cancelled"},
    "processing": {"completed", "failed"},
    "completed": set(),
    "failed": set(),
    "cancelled": set(),
}
TERMINAL = {"completed", "failed", "cancelled"}
IN_FLIGHT = {"pending", "processing"}


@dataclass
class Stream:
    events: list[tuple[int, str, int]] = field(
        default_factory=list
    )  # version, type, id

    @property
    def status(self) -> str | None:
        return STATUS_AFTER.get(self.events[-1][1]) if self.events else None

    @property
    def version(self) -> int:
        return self.events[-1][0] if self.events else 0

    def legal(self) -> bool:
        versions = [v for v, _, _ in self.events]
        if versions != list(range(1, len(versions) + 1)):
            return False
        positions = [p for _, _, p in self.events]
        if positions != sorted(positions):
            return False
        status: str | None = None
        for _, kind, _ in self.events:
            target = STATUS_AFTER.get(kind)
            if target not in LEGAL[status]:
                return False
            status = target
        return True


@dataclass
class Row:
    status: str
    version: int
    amount: Decimal
    currency: str
    failure_code: str | None


@dataclass
class Snapshot:
    streams: dict[str, Stream]
    rows: dict[str, Row]
    positions: dict[str, int]
    max_position: int
    in_doubt: set[str] = field(default_factory=set)

    def statuses(self) -> Counter[str]:
        return Counter(s.status or "?" for s in self.streams.values())

    def projection_lag(self) -> int:
        return self.max_position - self.positions.get("payout_view", 0)


def snapshot(database_url: str, schema: str = "eventstore") -> Snapshot:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        streams: dict[str, Stream] = {}
        for ident, version, topic, position in conn.execute(
            f"SELECT originator_id, originator_version, topic, notification_id "
            f"FROM {schema}.payouts_events ORDER BY originator_id, originator_version"
        ):
            kind = str(topic).rsplit(".", 1)[-1]
            streams.setdefault(str(ident), Stream()).events.append(
                (int(version), kind, int(position))
            )
        rows = {
            str(ident): Row(status, int(version), amount, currency, code)
            for ident, status, version, amount, currency, code in conn.execute(
                "SELECT id, status, version, amount, currency, failure_code "
                "FROM projections_payoutview"
            )
        }
        positions = {
            str(name): int(position)
            for name, position in conn.execute(
                "SELECT name, position FROM projections_position"
            )
        }
        row = conn.execute(
            f"SELECT coalesce(max(notification_id), 0) FROM {schema}.payouts_events"
        ).fetchone()
        in_doubt = {
            str(ident)
            for (ident,) in conn.execute(
                # As /readyz counts them: in processing, last call unanswered.
                "SELECT a.payout_id FROM projections_payoutattempt a "
                "JOIN projections_payoutview v ON v.id = a.payout_id "
                "WHERE a.in_doubt_since IS NOT NULL AND v.status = 'processing'"
            )
        }
    return Snapshot(streams, rows, positions, int(row[0]) if row else 0, in_doubt)


def settled(snap: Snapshot) -> bool:
    """Nothing left to do: every stream final, every follower at the log's head."""
    return (
        all(s.status in TERMINAL for s in snap.streams.values())
        and snap.projection_lag() == 0
        and snap.positions.get("payout_dispatcher", 0) >= _last_created(snap)
    )


def _last_created(snap: Snapshot) -> int:
    return max(
        (
            p
            for s in snap.streams.values()
            for _, kind, p in s.events
            if kind == "Created"
        ),
        default=0,
    )


@dataclass
class Result:
    name: str
    line: str
    ok: bool
    details: list[str] = field(default_factory=list)


def verify_ledger(manage: list[str], env: dict[str, str], cwd: str) -> tuple[int, str]:
    result = subprocess.run(
        [*manage, "verify_ledger"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def check(
    snap: Snapshot,
    history: History,
    charges: list[dict[str, Any]],
    *,
    recovery_seconds: float,
    verify: tuple[int, str],
    later_charges: list[dict[str, Any]] | None = None,
) -> list[Result]:
    """`later_charges`: the provider's charges again, once every request it may
    still have held has ended (a failed payout must have none, ever)."""
    acked = history.acknowledged()
    results: list[Result] = []

    # 1. Every 201 is in the event store.
    lost = sorted(i for i in acked if i not in snap.streams)
    results.append(
        Result("lost", f"acknowledged creates lost: {len(lost)}", not lost, lost[:5])
    )

    # 2. Every acknowledged payout is final, or in flight where the sweeper sees it.
    def accounted(ident: str) -> bool:
        stream = snap.streams.get(ident)
        if stream is None or stream.status is None:
            return False
        if stream.status in TERMINAL:
            return True
        row = snap.rows.get(ident)
        return row is not None and row.status in IN_FLIGHT

    bad = sorted(i for i in acked if not accounted(i))
    results.append(
        Result(
            "accounted",
            f"terminal or in flight: {len(acked) - len(bad)}/{len(acked)}",
            not bad,
            bad[:5],
        )
    )

    # 3-5. Charges: one per completed payout, none for anything else, right amounts.
    per_payout = Counter(str(c.get("payout_id")) for c in charges)
    doubles = sorted(i for i, n in per_payout.items() if n > 1)
    wrong_keys = [c for c in charges if c.get("idempotency_key") != c.get("payout_id")]
    results.append(
        Result(
            "double",
            f"double charges: {len(doubles) + len(wrong_keys)}",
            not doubles and not wrong_keys,
            [f"{i}: {per_payout[i]} charges" for i in doubles[:5]]
            + [f"charge under key {c.get('idempotency_key')}" for c in wrong_keys[:5]],
        )
    )
    completed = {i for i, s in snap.streams.items() if s.status == "completed"}
    uncharged = sorted(i for i in completed if per_payout.get(i, 0) != 1)
    results.append(
        Result(
            "completed",
            f"completed without exactly one charge: {len(uncharged)}",
            not uncharged,
            [f"{i}: {per_payout.get(i, 0)} charges" for i in uncharged[:5]],
        )
    )
    stray = []
    for charge in charges:
        ident = str(charge.get("payout_id"))
        stream, row = snap.streams.get(ident), snap.rows.get(ident)
        if stream is not None and stream.status == "processing":
            continue  # in doubt until it settles: counted as stuck if it never does
        if stream is None or stream.status != "completed":
            stray.append(
                f"{ident}: charged, payout {stream.status if stream else 'unknown'}"
            )
        elif row is not None and (
            _decimal(charge.get("amount")) != row.amount
            or charge.get("currency") != row.currency
        ):
            stray.append(
                f"{ident}: charged {charge.get('amount')} {charge.get('currency')}, "
                f"payout {row.amount} {row.currency}"
            )
    results.append(
        Result(
            "stray",
            f"charges for a payout not completed, or of another amount: {len(stray)}",
            not stray,
            stray[:5],
        )
    )

    # 6. Nothing left in flight once the recovery deadline has passed.
    stuck = sorted(i for i, s in snap.streams.items() if s.status not in TERMINAL)
    results.append(
        Result(
            "stuck",
            f"stuck after {recovery_seconds:g} s: {len(stuck)}",
            not stuck,
            [
                f"{i}: {snap.streams[i].status} v{snap.streams[i].version}"
                for i in stuck[:5]
            ],
        )
    )

    # 7. Versions and transitions (plus verify_ledger's chains and replay).
    code, output = verify
    discrepancy = next(
        (line for line in output.splitlines() if "DISCREPANCY" in line), ""
    )
    projection_side = "projection" in discrepancy
    illegal = sorted(i for i, s in snap.streams.items() if not s.legal())
    chain_broken = code != 0 and not projection_side
    total = len(snap.streams)
    good = total - len(illegal) - (1 if chain_broken and not illegal else 0)
    results.append(
        Result(
            "streams",
            f"versions contiguous and transitions legal: {good}/{total} streams",
            not illegal and not chain_broken,
            [f"{i}: {[k for _, k, _ in snap.streams[i].events]}" for i in illegal[:5]]
            + (
                [f"verify_ledger: {discrepancy or output[-300:]}"]
                if chain_broken
                else []
            ),
        )
    )

    # 8. The projection equals the replay (and has caught up with the log).
    differences = []
    for ident, stream in snap.streams.items():
        row = snap.rows.get(ident)
        if row is None:
            differences.append(f"{ident}: missing from the projection")
        elif (row.status, row.version) != (stream.status, stream.version):
            differences.append(
                f"{ident}: projection {row.status} v{row.version}, "
                f"events {stream.status} v{stream.version}"
            )
    differences += [
        f"{i}: in the projection, not in the event store"
        for i in snap.rows
        if i not in snap.streams
    ]
    if snap.projection_lag():
        differences.append(f"projection {snap.projection_lag()} events behind the log")
    if projection_side and not differences:
        differences.append(f"verify_ledger: {discrepancy}")
    results.append(
        Result(
            "projection",
            f"projection equals replay: {len(differences)} differences",
            not differences,
            differences[:5],
        )
    )

    # 9. A failed payout never has a charge, not even one a held request made later.
    failed = {i for i, s in snap.streams.items() if s.status == "failed"}
    charged_failed = sorted(
        {str(c.get("payout_id")) for c in (later_charges or charges)} & failed
    )
    results.append(
        Result(
            "failed_charged",
            f"failed payouts with a charge: {len(charged_failed)}",
            not charged_failed,
            charged_failed[:5],
        )
    )

    # 10. Every outcome unknown during the faults was resolved by a definitive one.
    doubtful = sorted(snap.in_doubt)
    results.append(
        Result(
            "in_doubt",
            f"payouts in doubt after recovery: {len(doubtful)}",
            not doubtful,
            [
                f"{i}: {snap.streams[i].status if i in snap.streams else '?'}"
                for i in doubtful[:5]
            ],
        )
    )

    # 11. The same Idempotency-Key never answered with two payouts.
    conflicts = history.key_conflicts()
    results.append(
        Result(
            "keys",
            f"idempotency keys answered with two payouts: {conflicts}",
            conflicts == 0,
        )
    )
    return results


def check_webhooks(snap: Snapshot, receiver: dict[str, Any]) -> Result:
    """12. Every status event of every payout reached the deduplicating receiver,
    exactly once after dedup (one `webhook-id` per event), signed, and in order per
    payout; each payout's last delivery carries its final status."""
    expected = {
        (ident, version): STATUS_AFTER[kind]
        for ident, stream in snap.streams.items()
        for version, kind, _ in stream.events
        if kind in STATUS_AFTER
    }
    accepted = receiver["accepted"]
    counters = receiver["counters"]
    arrived = Counter((a["payout_id"], a["version"]) for a in accepted)
    problems = [
        f"{i} v{v}: never delivered" for i, v in sorted(set(expected) - set(arrived))
    ]
    problems += [
        f"{i} v{v}: delivered, not in the log"
        for i, v in sorted(set(arrived) - set(expected))
    ]
    problems += [
        f"{i} v{v}: under {n} ids" for (i, v), n in sorted(arrived.items()) if n > 1
    ]
    problems += [
        f"{a['payout_id']} v{a['version']}: status {a['status']}, "
        f"the log says {expected[(a['payout_id'], a['version'])]}"
        for a in accepted
        if (a["payout_id"], a["version"]) in expected
        and a["status"] != expected[(a["payout_id"], a["version"])]
    ]
    problems += [
        f"{i} v{v} after v{previous}" for i, v, previous in counters["out_of_order"]
    ]
    if counters["bad_signatures"]:
        problems.append(f"{counters['bad_signatures']} bad signatures")
    return Result(
        "webhooks",
        f"webhook events delivered once, signed, in order: "
        f"{len(set(arrived) & set(expected))}/{len(expected)} "
        f"({counters['duplicates']} redeliveries deduplicated, "
        f"{counters['failed']} refused by the receiver)",
        not problems,
        problems[:5],
    )


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
