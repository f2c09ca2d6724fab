"""`make bench`: throughput and latency of the payout ledger on its production stack.

PostgreSQL + Redis, gunicorn (gthread), Celery workers, the projector/dispatcher
(`manage.py run_followers`) and the bundled fake gateway, started as `make run`
starts them (tools/stack.py: the process table under supervisord), all on a private
database (`payouts_bench`, dropped and recreated) and Redis database
(`/9`, flushed), so no one else's data is touched.

Phases:
  seed    N payouts written as real events through the ledger application in bulk,
          a share of them moved on by real status events, then projected by the real
          projector (nothing is inserted into the read model by hand);
  list    p50/p99 of filtered, ordered list requests over the projected rows;
  create  POST /api/v1/payouts/ at 16 concurrent API-key clients (gunicorn only);
  e2e     create -> completed through dispatcher, Celery, gateway and projector.

    make bench BENCH_ARGS="--list-rows 20000 --payouts 200"
    .venv/bin/python -m bench --help

Results are printed as a table and written to bench-results/latest.json. This is a
benchmark, never a test: nothing here asserts on timings.
"""
