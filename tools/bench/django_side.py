"""The parts of the benchmark that run inside Django, in a subprocess with the bench
environment (never in the orchestrating process, which must not read anyone's .env).

    python -m tools.bench.django_side prepare --rows 100000   # user + API key, seed, project
    python -m tools.bench.django_side catch-up                # project, skip dispatch backlog
    python -m tools.bench.django_side seed --rows 500000 --rng-seed 1   # events only
    python -m tools.bench.django_side read-ceiling --seconds 5  # decoded notifications/s

Each command prints one JSON object on its last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from typing import Any

# Seeded currencies and their weights; JPY has no minor unit, the others two.
CURRENCIES = (("USD", 50), ("EUR", 30), ("RUB", 15), ("JPY", 5))
# Share of seeded payouts moved past `pending`, by real events.
MIX = (
    ("completed", 0.20),
    ("failed", 0.04),
    ("cancelled", 0.04),
    ("processing", 0.02),
)
# The side-by-side list database: the baseline's seed.sql mix (20% pending, 5%
# processing, 70% completed, 5% failed).
LIST_MIX = (
    ("completed", 0.70),
    ("failed", 0.05),
    ("processing", 0.05),
)
SEED_CARD = "4242424242424242"
SEED_IBAN = "DE89370400440532013000"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
    import django

    django.setup()


def issue_key(username: str) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from api.models import ApiKey

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_staff = user.is_active = True
    user.set_unusable_password()
    user.save()
    key, plain = ApiKey.issue(user, name="bench")
    return {"api_key": plain, "prefix": key.prefix, "username": username}


def seed(
    rows: int,
    batch: int,
    rng_seed: int,
    mix: tuple[tuple[str, float], ...] = MIX,
) -> dict[str, Any]:
    """Write `rows` payouts through the ledger application, `batch` aggregates per
    save; then move a share of them on (start_processing/complete/fail/cancel, shares
    as in `mix`) with a second bulk save, so their status events come later in the
    log, as in real life."""
    from ledger.apps import get_payouts
    from ledger.payout import Actor, Payout
    from ledger.values import bank_account_recipient, card_recipient

    payouts = get_payouts()
    policy = payouts.policy
    rng = random.Random(rng_seed)
    system = Actor("system", "bench-seed")
    worker = Actor("worker", "bench-seed")
    card = card_recipient(SEED_CARD, "Bench Seed")
    bank = bank_account_recipient(SEED_IBAN, "Bench Seed", None)
    codes = [c for c, _ in CURRENCIES]
    weights = [w for _, w in CURRENCIES]
    thresholds: list[tuple[float, str]] = []
    acc = 0.0
    for status, share in mix:
        acc += share
        thresholds.append((acc, status))

    created = status_events = 0
    started = time.perf_counter()
    for offset in range(0, rows, batch):
        size = min(batch, rows - offset)
        aggregates = []
        for i in range(offset, offset + size):
            currency = rng.choices(codes, weights)[0]
            cents = rng.randint(100, 10_000_000)
            amount = str(cents // 100) if currency == "JPY" else f"{cents / 100:.2f}"
            aggregates.append(
                Payout.open(
                    payout_id=uuid.uuid4(),
                    money=policy.money(amount, currency),
                    recipient=bank if i % 10 == 9 else card,
                    description=f"bench seed {i}",
                    actor=system,
                )
            )
        payouts.save(*aggregates)
        created += size
        moved = []
        for i, payout in enumerate(aggregates, start=offset):
            draw = rng.random()
            target = next((s for t, s in thresholds if draw < t), None)
            if target is None:
                continue
            if target == "cancelled":
                payout.cancel(reason="bench seed", actor=system)
            else:
                payout.start_processing(actor=worker)
                if target == "completed":
                    payout.complete(gateway_reference=f"ch_seed{i:08x}", actor=worker)
                elif target == "failed":
                    payout.fail(
                        code="card_declined",
                        message="The card was declined.",
                        actor=worker,
                    )
            status_events += len(payout.pending_events)
            moved.append(payout)
        if moved:
            payouts.save(*moved)
        if offset and offset % (batch * 20) == 0:
            rate = created / (time.perf_counter() - started)
            print(f"seeded {created}/{rows} ({rate:.0f} payouts/s)", file=sys.stderr)
    return {
        "rows": created,
        "events": created + status_events,
        "status_events": status_events,
        "seconds": time.perf_counter() - started,
    }


def read_ceiling(seconds: float, batch: int = 500) -> dict[str, Any]:
    """How fast the library reads and decodes (decrypts, decompresses, builds the
    domain event) the service's own notification log: from the start of the log, in
    `batch`es, for `seconds` (wrapping round at the end). No Django in the loop."""
    from ledger.apps import get_payouts

    payouts = get_payouts()
    recorder, mapper = payouts.recorder, payouts.mapper
    read = decoded = 0
    select_seconds = decode_seconds = 0.0
    start = 1
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        notifications = recorder.select_notifications(start, batch)
        selected = time.perf_counter()
        for notification in notifications:
            mapper.to_domain_event(notification)
        decode_seconds += time.perf_counter() - selected
        select_seconds += selected - began
        if not notifications:
            if start == 1:
                break
            start = 1
            continue
        read += len(notifications)
        decoded += len(notifications)
        start = notifications[-1].id + 1
    total = select_seconds + decode_seconds
    return {
        "events": decoded,
        "seconds": round(total, 3),
        "decoded_per_s": round(decoded / total, 1) if total else None,
        "selected_per_s": round(read / select_seconds, 1) if select_seconds else None,
    }


def project(batch_size: int) -> dict[str, Any]:
    from ledger.apps import get_payouts
    from projections.projectors import PayoutViewProjection
    from projections.runner import drain

    started = time.perf_counter()
    applied = drain(get_payouts(), PayoutViewProjection(), batch_size=batch_size)
    return {"events": applied, "seconds": time.perf_counter() - started}


def skip_dispatch_backlog() -> int:
    """Move the dispatcher past every event already in the log, so the seeded and the
    create-phase payouts are not sent to the workers when the e2e phase starts."""
    from django.db import transaction
    from eventsourcing.persistence import Tracking

    from ledger.apps import get_payouts
    from projections.tracking import DjangoTrackingRecorder
    from workers.dispatcher import PayoutDispatcher

    payouts = get_payouts()
    recorder = DjangoTrackingRecorder(PayoutDispatcher.name)
    with transaction.atomic():
        current = recorder.lock()
        top = payouts.recorder.max_notification_id() or 0
        if top > current:
            recorder.insert_tracking(Tracking(payouts.name, top))
    return top


def projection_facts() -> dict[str, Any]:
    """Counts by status and by currency, and a created_after value for the list phase
    that keeps about the newest tenth of the rows."""
    from django.db.models import Count

    from projections.models import PayoutView

    total = PayoutView.objects.count()
    by_status = dict(
        PayoutView.objects.values_list("status").annotate(n=Count("id")).order_by()
    )
    by_currency = dict(
        PayoutView.objects.values_list("currency").annotate(n=Count("id")).order_by()
    )
    created_after = (
        PayoutView.objects.order_by("-created_at")
        .values_list("created_at", flat=True)[
            max(total // 10, 1) - 1 : max(total // 10, 1)
        ]
        .first()
        if total
        else None
    )
    return {
        "rows": total,
        "by_status": by_status,
        "by_currency": by_currency,
        "created_after": created_after.isoformat() if created_after else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.django_side")
    sub = parser.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare", help="API key, seed and projection")
    prepare.add_argument("--rows", type=int, default=100_000)
    prepare.add_argument("--batch", type=int, default=1000)
    prepare.add_argument("--seed", type=int, default=42)
    prepare.add_argument("--username", default="bench")
    sub.add_parser("catch-up", help="project everything, skip the dispatch backlog")
    seeding = sub.add_parser("seed", help="LIST_MIX payouts as events, no projection")
    seeding.add_argument("--rows", type=int, required=True)
    seeding.add_argument("--batch", type=int, default=1000)
    seeding.add_argument("--rng-seed", type=int, default=42)
    ceiling = sub.add_parser("read-ceiling", help="decoded notifications/s")
    ceiling.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)

    _setup_django()
    result: dict[str, Any] = {}
    if args.command == "prepare":
        result["key"] = issue_key(args.username)
        if args.rows > 0:
            result["seed"] = seed(args.rows, args.batch, args.seed)
            result["projection"] = project(batch_size=args.batch)
        result["facts"] = projection_facts()
    elif args.command == "seed":
        result["seed"] = seed(args.rows, args.batch, args.rng_seed, mix=LIST_MIX)
    elif args.command == "read-ceiling":
        result["read_ceiling"] = read_ceiling(args.seconds)
    else:
        result["projection"] = project(batch_size=1000)
        result["dispatcher_position"] = skip_dispatch_backlog()
        result["facts"] = projection_facts()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
