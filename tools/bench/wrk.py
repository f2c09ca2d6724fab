"""The HTTP load tool of `make bench`: wrk (Debian package `wrk`), driven by a Lua
script this module writes, the same for the baseline and the service.

wrk is a C event loop: at 2 threads it costs the 2-core machine far less CPU than
Python clients would, so more of the machine is left to the server being measured.
The script varies POST bodies (unique descriptions) and GET paths (detail ids), can
stop each thread after a number of responses (the end-to-end phase creates a fixed
number of payouts), and prints one machine-readable line from wrk's `done()` hook,
which `parse_output` reads.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "WRK_JSON "
INSTALL_HINT = (
    "wrk is not installed: `apt-get install wrk` (Debian package `wrk`); "
    "`make bench` needs it for the side-by-side figures"
)

# `body_template` gets `{n}`, a number unique across threads and requests.
_LUA = r"""
local method = __METHOD__
local paths = __PATHS__
local body_template = __BODY__
local limit = __LIMIT__
wrk.headers = __HEADERS__
local counter = 0
local responses = 0
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local path = paths[(counter + id * 7919) % #paths + 1]
  if body_template == nil then
    return wrk.format(method, path)
  end
  local n = tostring(id * 100000000 + counter)
  local cents = (id * 7919 + counter) % 990000 + 10000
  local body = body_template:gsub("{n}", n)
  body = body:gsub("{amount}", string.format("%d.%02d", math.floor(cents / 100), cents % 100))
  return wrk.format(method, path, nil, body)
end

if limit > 0 then
  function response(status, headers, body)
    responses = responses + 1
    if responses >= limit then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '__MARKER__{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class Load:
    """What one wrk run sends: `paths` cycled (GET) or one path with a body built
    from `body_template` ({n}: unique number, {amount}: a varying decimal)."""

    method: str
    paths: tuple[str, ...]
    headers: dict[str, str]
    body_template: str | None = None


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal


def lua_script(load: Load, limit_per_thread: int = 0) -> str:
    headers = (
        "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in load.headers.items()) + "}"
    )  # fmt: skip
    paths = "{" + ", ".join(_lua_string(p) for p in load.paths) + "}"
    body = "nil" if load.body_template is None else _lua_string(load.body_template)
    return (
        _LUA.replace("__METHOD__", _lua_string(load.method))
        .replace("__PATHS__", paths)
        .replace("__BODY__", body)
        .replace("__LIMIT__", str(int(limit_per_thread)))
        .replace("__HEADERS__", headers)
        .replace("__MARKER__", MARKER)
    )


def parse_output(stdout: str) -> dict[str, Any]:
    """The figures of one run from wrk's stdout: requests, seconds, rps (responses
    with a 2xx/3xx status per second), errors by kind, latencies in ms. ValueError
    when the `done()` line is missing (wrk failed before the end)."""
    line = next(
        (x for x in reversed(stdout.splitlines()) if x.startswith(MARKER)), None
    )
    if line is None:
        raise ValueError(f"no {MARKER.strip()} line in wrk output: {stdout[-500:]!r}")
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    errors = {
        k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]
    }
    # wrk counts non-2xx/3xx answers in `requests` too; they are not throughput.
    ok = raw["requests"] - raw["status"]
    return {
        "requests": raw["requests"],
        "ok": ok,
        "seconds": round(seconds, 3),
        "rps": round(ok / seconds, 1) if seconds else None,
        "errors": errors,
        **{
            f"{q}_ms": round(raw[f"{q}_us"] / 1000, 2)
            for q in ("p50", "p90", "p99", "max", "mean")
        },
    }


def available() -> bool:
    return shutil.which("wrk") is not None


class Running:
    """A wrk process started by `start`; `finish()` waits for it (or, with
    `interrupt`, stops it first: wrk reports what it measured until then)."""

    def __init__(self, process: subprocess.Popen[str], script: Path, wait: float):
        self.process, self.script, self.wait = process, script, wait

    def finish(self, *, interrupt: bool = False) -> dict[str, Any]:
        if interrupt and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = self.process.communicate(timeout=self.wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
        finally:
            self.script.unlink(missing_ok=True)
        if self.process.returncode != 0:
            raise RuntimeError(
                f"wrk exited {self.process.returncode}: {stderr[-1000:]}"
            )
        return parse_output(stdout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        self.script.unlink(missing_ok=True)


def start(
    url: str,
    load: Load,
    *,
    connections: int,
    seconds: float,
    threads: int = 2,
    limit_per_thread: int = 0,
    timeout_s: float = 30.0,
) -> Running:
    """Start wrk against `url` (scheme://host:port) for `seconds`. With
    `limit_per_thread`, each thread stops sending after that many responses; wrk
    itself still runs until `seconds` or an interrupting `finish`."""
    threads = max(1, min(threads, connections))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(load, limit_per_thread))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        script.name,
        url + load.paths[0],
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return Running(process, Path(script.name), seconds + timeout_s + 30)


def run(url: str, load: Load, **options: Any) -> dict[str, Any]:
    """One wrk run to its end (see `start` for the options): its figures."""
    return start(url, load, **options).finish()
