"""`make chaos`: money safety under faults (RELIABILITY.md §3, "Game days").

The real processes run on PostgreSQL and Redis while a client creates payouts and the
harness kills workers and followers with SIGKILL, empties the broker, cuts Redis off,
restarts PostgreSQL and switches on gateway faults; once the faults stop and the
recovery deadline has passed, it checks the invariants of money safety and exits
non-zero if one fails. `python -m tools.chaos --help` lists the options.
"""
