"""Where the CPU goes during a round: user + system seconds of each supervised
process (with its children: gunicorn's workers, Celery's pool), of PostgreSQL and
Redis, from /proc, before and after. Linux only; elsewhere it reports nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.stack import Stack

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Shared by both sides (and the load tool): read while only one side is loaded.
SERVERS = {"postgres": "postgres", "redis": "redis-server", "wrk": "wrk"}


def _seconds(pid: int) -> float:
    """CPU seconds of a process so far; 0 when it is gone (or was never there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / TICKS


def _by_command(command: str) -> list[int]:
    listed = subprocess.run(
        ["ps", "-C", command, "-o", "pid="], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in listed.stdout.split()]


class CpuMeter:
    """`start()`, then `stop(per=n)`: milliseconds of CPU per unit of work, by part."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.before: dict[str, dict[int, float]] = {}

    def _pids(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for name in self.stack.names():
            pid = self.stack.pid(name)
            if pid is not None:
                found[name] = [pid, *self.stack.children(name)]
        for part, command in SERVERS.items():
            found[part] = _by_command(command)
        return found

    def _read(self) -> dict[str, dict[int, float]]:
        return {
            part: {pid: _seconds(pid) for pid in pids}
            for part, pids in self._pids().items()
        }

    def start(self) -> None:
        self.before = self._read()

    def stop(self, *, per: int) -> dict[str, float]:
        """CPU ms per unit, by part, and "total"; a process started during the round
        counts from zero, one that ended during it is lost (none should)."""
        after = self._read()
        spent = {
            part: sum(
                now - self.before.get(part, {}).get(pid, 0.0)
                for pid, now in pids.items()
            )
            for part, pids in after.items()
        }
        used = {part: round(1000 * s / per, 2) for part, s in spent.items() if s > 0}
        used["total"] = round(sum(used.values()), 2)
        return used
