"""`make bench`: the payout ledger beside the baseline, side by side, in one run.

The baseline (../shared/baseline, `--baseline-dir`: the seed-shaped CRUD service
this project replaces) runs from this project's .venv as its README says (gunicorn
`-w 4 -k sync`, Celery prefork `-c 2` with CELERY_DB_REUSE_MAX=1000), on databases
and a Redis database of its own; requests carry a session cookie from a real login
through /api-auth/login/ (HTTP Basic would cost every request a PBKDF2 hash). The
service runs as `make run` starts it (tools/stack.py: the process table of deploy/
under supervisord), with API keys. Both get the same load tool, wrk (Debian package
`wrk`), and the same create body.

Phases, each figure measured in `--rounds` (3) alternating rounds, baseline then
service, and reported as the median of its rounds:
  list db   `--list-rows` (1,000,000) payouts each side, 20% pending, 5% processing,
            70% completed, 5% failed: the baseline by its seed.sql, the service by
            real events through the ledger application (bulk saves, parallel
            processes), its projection built by `manage.py rebuild_projections`
            (timed: the rebuild figure). Both databases are kept and reused while
            complete, with their migrations current (`--reseed` forces a new seed).
            Web tiers only: no dispatcher may see the seeded pending payouts;
  list      `status=pending&ordering=-created_at&limit=50` at 8 connections and at 1;
  detail    GET of 1,000 random seeded payouts at 8 connections;
  create    POST at 8 and at 16 connections (web tiers only), on fresh databases;
  e2e       `--payouts` (2000) created from 8 connections until all are final,
            gateway at 0 ms; the service's projection lag sampled from /metrics;
            then the service alone with the gateway at 100 ms, and with
            `--scaling 1,2,4,8` one round per worker concurrency;
  ceilings  the library alone: raw `eventsourcing` appends/s with 1 and 4 writers on
            a database of its own, and decoded notification reads/s over the
            service's seeded log.

    make bench                                            # the full run
    make bench BENCH_ARGS="--list-rows 20000 --rounds 1 --duration 3 --payouts 200"
    .venv/bin/python -m tools.bench --help

Results are printed as a table (figure | baseline | service | ratio) and written to
bench-results/latest.json. This is a benchmark, never a test: nothing asserts on
timings.
"""

from __future__ import annotations
