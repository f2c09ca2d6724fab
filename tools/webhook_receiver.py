"""A webhook receiver on loopback, for the e2e tests and `make chaos`: it verifies
every signature with the `standardwebhooks` library, deduplicates on `webhook-id`,
checks that each payout's versions arrive in order, and can be told to fail.

    python -m tools.webhook_receiver --port 9000 --dir DIR [--fail-first 3]
        [--hang-request 5 --hang-seconds 3]

Its state lives in DIR, so a receiver killed and started again goes on where it was:
`secret` (written by the test: the endpoint's signing secret), `accepted.jsonl` (one
line per first delivery of an id, appended before the 2xx) and `counters.json`.
`GET /state` answers all of it as JSON. Requests are numbered from 1 across restarts:
the first `--fail-first` answer 500, request number `--hang-request` (once) is held
`--hang-seconds` before its answer (it is processed: a receiver that did its work and
answered too late), and every request with a bad signature answers 401.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tools.stack import ROOT, wait_for


class Receiver:
    def __init__(self, directory: Path, fail_first: int, hang: int, hang_s: float):
        self.dir = directory
        self.fail_first, self.hang, self.hang_s = fail_first, hang, hang_s
        self.lock = threading.Lock()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.accepted: list[dict[str, Any]] = []
        path = self.dir / "accepted.jsonl"
        if path.exists():
            self.accepted = [json.loads(x) for x in path.read_text().splitlines() if x]
        self.seen = {a["id"] for a in self.accepted}
        self.last_version: dict[str, int] = {}
        for a in self.accepted:
            self.last_version[a["payout_id"]] = a["version"]
        counters = self.dir / "counters.json"
        self.counters: dict[str, Any] = (
            json.loads(counters.read_text())
            if counters.exists()
            else {"requests": 0, "duplicates": 0, "bad_signatures": 0, "failed": 0}
        )
        self.counters.setdefault("out_of_order", [])

    def _save(self) -> None:
        tmp = self.dir / "counters.json.tmp"
        tmp.write_text(json.dumps(self.counters))
        tmp.replace(self.dir / "counters.json")

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
        """(status, seconds to hold the answer)."""
        with self.lock:
            self.counters["requests"] += 1
            number = self.counters["requests"]
            if number <= self.fail_first:
                self.counters["failed"] += 1
                self._save()
                return 500, 0.0
            secret_file = self.dir / "secret"
            try:
                message = Webhook(secret_file.read_text().strip()).verify(body, headers)
            except (OSError, WebhookVerificationError, ValueError):
                self.counters["bad_signatures"] += 1
                self._save()
                return 401, 0.0
            message_id = headers["webhook-id"]
            if message_id in self.seen:
                self.counters["duplicates"] += 1
            else:
                data = message["data"]
                payout_id = data["payout"]["id"]
                version = data["version"]
                previous = self.last_version.get(payout_id, 0)
                if version != previous + 1:
                    self.counters["out_of_order"].append([payout_id, version, previous])
                self.last_version[payout_id] = max(previous, version)
                entry = {
                    "id": message_id,
                    "type": message["type"],
                    "payout_id": payout_id,
                    "version": version,
                    "position": data["position"],
                    "status": data["payout"]["status"],
                }
                with (self.dir / "accepted.jsonl").open("a") as log:
                    log.write(json.dumps(entry) + "\n")
                self.accepted.append(entry)
                self.seen.add(message_id)
            self._save()
            return 200, self.hang_s if number == self.hang else 0.0

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"counters": self.counters, "accepted": self.accepted}


def serve(port: int, receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            status, hold = receiver.handle(body, dict(self.headers.items()))
            time.sleep(hold)
            self._answer(status, b"ok" if status == 200 else b"no")

        def do_GET(self) -> None:
            self._answer(200, json.dumps(receiver.state()).encode())

        def _answer(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the sender gave up waiting (its read timeout)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


@dataclass
class ReceiverProcess:
    """This receiver as its own process on loopback, for a test or `make chaos`."""

    directory: Path
    port: int
    options: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.webhook_receiver",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                *self.options,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        wait_for(self.state, 15, "the webhook receiver")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def use_secret(self, secret: str) -> None:
        (self.directory / "secret").write_text(secret)

    def state(self) -> dict[str, Any]:
        return json.loads(httpx.get(f"http://127.0.0.1:{self.port}/", timeout=5).text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--hang-request", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=0.0)
    args = parser.parse_args()
    receiver = Receiver(args.dir, args.fail_first, args.hang_request, args.hang_seconds)
    server = serve(args.port, receiver)
    sys.stdout.write(f"receiving webhooks on 127.0.0.1:{args.port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
