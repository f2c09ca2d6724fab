"""Closed-loop load: N threads, each with its own keep-alive httpx.Client, pulling
request numbers from a shared counter until the total is reached."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Callable


# Set when the bench is interrupted: every client thread stops at its next request.
STOP = threading.Event()


@dataclass
class Sample:
    index: int
    started: float  # time.time(), comparable with server timestamps on this machine
    latency: float  # seconds, from time.perf_counter()
    status: int  # HTTP status, 0 for a transport error
    body: Any = None


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if 200 <= s.status < 300]

    @property
    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.samples:
            if not 200 <= s.status < 300:
                key = str(s.status or "transport")
                counts[key] = counts.get(key, 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        latencies = [s.latency for s in self.ok]
        return {
            "requests": len(self.samples),
            "ok": len(latencies),
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rps": round(len(latencies) / self.seconds, 1) if self.seconds else None,
            **latency_summary(latencies),
        }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    # Linear interpolation between closest ranks (numpy's default).
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: list[float]) -> dict[str, float | None]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "p50_ms": ms(percentile(seconds, 50)),
        "p90_ms": ms(percentile(seconds, 90)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds) if seconds else None),
        "mean_ms": ms(statistics.fmean(seconds) if seconds else None),
    }


def new_client(base_url: str, api_key: str, timeout: float = 60.0) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        timeout=timeout,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


def run_load(
    *,
    clients: int,
    total: int,
    base_url: str,
    api_key: str,
    request: Callable[[httpx.Client, int], httpx.Response],
    keep_body: Callable[[httpx.Response], Any] | None = None,
    pace: float = 0.0,
) -> Run:
    """Send `total` requests from `clients` threads; `request(client, i)` sends the
    i-th one. With `pace` > 0 (requests/s), request i is not sent before
    start + i/pace (an open-loop schedule); otherwise as fast as the server answers."""
    counter = iter(range(total))
    lock = threading.Lock()
    results: list[list[Sample]] = [[] for _ in range(clients)]
    sessions = [new_client(base_url, api_key) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    origin = [0.0]

    def work(slot: int) -> None:
        client, out = sessions[slot], results[slot]
        barrier.wait()
        while not STOP.is_set():
            with lock:
                index = next(counter, None)
            if index is None:
                return
            if pace:
                delay = origin[0] + index / pace - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            wall = time.time()
            started = time.perf_counter()
            try:
                response = request(client, index)
            except httpx.HTTPError:
                out.append(Sample(index, wall, time.perf_counter() - started, 0))
                continue
            latency = time.perf_counter() - started
            body = keep_body(response) if keep_body and response.is_success else None
            out.append(Sample(index, wall, latency, response.status_code, body))

    threads = [
        threading.Thread(target=work, args=(i,), daemon=True, name=f"client-{i}")
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        origin[0] = time.perf_counter()
        barrier.wait()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - origin[0]
    finally:
        for session in sessions:
            session.close()
    samples = sorted((s for chunk in results for s in chunk), key=lambda s: s.index)
    return Run(samples=samples, seconds=seconds)
