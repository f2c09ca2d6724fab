"""The bundled fake payment provider: an HTTP server on loopback, for runs and tests.

It behaves like a provider's test mode: one charge per idempotency key whatever the
retries, outcomes chosen by documented test card numbers, and `GET /charges` listing
what it accepted. It never logs or returns a full card number.

    python -m workers.gateway.fakeserver            # listens on GATEWAY_URL's host:port
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ledger.values import PayoutStatus

logger = logging.getLogger("fakegateway")

DECLINES = {
    "4000000000000002": ("card_declined", "The card was declined."),
    "4000000000009995": ("insufficient_funds", "The card has insufficient funds."),
}
# Answers 503 this many times per idempotency key, then accepts.
FLAKY = {"4000000000000119": 2}
# Holds every charge request this long (beyond the adapter's read timeout), then
# charges and answers.
HOLD = {"4000000000000259": 15.0}
# Accepted as `pending`; settles after SETTLE_SECONDS as succeeded (None) or declined.
PENDING = {
    "4000000000003238": None,
    "4000000000003410": ("account_closed", "The recipient's account is closed."),
}
SETTLE_SECONDS = 10.0
# Degraded: for DEGRADED_SECONDS after the first request for a key, every charge
# request is held DEGRADED_HOLD seconds and answered 503 without charging.
DEGRADED = {"4000000000005225"}
DEGRADED_SECONDS, DEGRADED_HOLD = 200.0, 15.0
# What a payout paid with each test card ends as (SPEC.md), for tests and make chaos;
# the degraded card ends either way, so it is not here.
_COMPLETED, _FAILED = PayoutStatus.COMPLETED.value, PayoutStatus.FAILED.value
OUTCOMES: dict[str, tuple[str, str | None]] = {
    "4242424242424242": (_COMPLETED, None),
    "4111111111111111": (_COMPLETED, None),
    **{number: (_FAILED, code) for number, (code, _) in DECLINES.items()},
    **{number: (_COMPLETED, None) for number in [*FLAKY, *HOLD]},
    **{
        number: (_COMPLETED, None) if decline is None else (_FAILED, decline[0])
        for number, decline in PENDING.items()
    },
}
# Injected faults, each with a probability per charge request (fault tests only):
#   error: 503 without charging;  reset: drop the connection without charging;
#   slow: charge, then answer after `slow_seconds` (beyond the adapter's timeout);
#   accept_reset: charge, then drop the connection: the outcome is unknown to the caller;
#   slow_before: wait `slow_seconds`, then charge: the caller has timed out by then.
FAULTS = ("error", "reset", "slow", "accept_reset", "slow_before")


class Faults:
    def __init__(self, spec: str = "") -> None:
        self.lock = threading.Lock()
        self.rates: dict[str, float] = {}
        self.slow_seconds = 3.0
        self.configure(_parse(spec))

    def configure(self, settings: dict[str, float]) -> dict[str, float]:
        with self.lock:
            self.slow_seconds = float(settings.pop("slow_seconds", self.slow_seconds))
            unknown = set(settings) - set(FAULTS)
            if unknown:
                raise ValueError(f"unknown faults: {sorted(unknown)}")
            self.rates = {k: float(v) for k, v in settings.items() if float(v) > 0}
            return {**self.rates, "slow_seconds": self.slow_seconds}

    def draw(self) -> str | None:
        with self.lock:
            roll, total = random.random(), 0.0
            for name, rate in self.rates.items():
                total += rate
                if roll < total:
                    return name
        return None


def _parse(spec: str) -> dict[str, float]:
    pairs = (item.split(":", 1) for item in spec.split(",") if item.strip())
    return {name.strip(): float(rate) for name, rate in pairs}


class Ledger:
    """What the provider remembers: one record per idempotency key (the result of its
    first completed request), the keys voided, and the charges that moved money."""

    def __init__(self, clock: Any = time.monotonic, time_scale: float = 1.0) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        # GATEWAY_TIME_SCALE: every hold, settle delay and degraded window, scaled.
        self.scale = time_scale
        self.results: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.settle_at: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self.attempts: dict[str, int] = {}
        self.first_seen: dict[str, float] = {}
        self.in_progress: set[str] = set()
        self.voided: set[str] = set()
        self.charges: list[dict[str, Any]] = []

    def begin(
        self, key: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]] | float:
        """Before a charge request is worked on: an answer that ends it now (key in
        use, voided, degraded), or the seconds to hold it first."""
        number = str(body["destination"].get("number") or "")
        with self.lock:
            if key in self.voided and key not in self.results:
                return 409, _error("key_voided", "This idempotency key was voided.")
            if key in self.in_progress:
                return 409, _error(
                    "request_in_progress",
                    "A request with this idempotency key is still being processed.",
                )
            first = self.first_seen.setdefault(key, self.clock())
            self.in_progress.add(key)
        if number in DEGRADED and self.clock() - first < DEGRADED_SECONDS * self.scale:
            return DEGRADED_HOLD * self.scale
        return HOLD.get(number, 0.0) * self.scale

    def end(self, key: str) -> None:
        with self.lock:
            self.in_progress.discard(key)

    def degraded(self, key: str, body: dict[str, Any]) -> bool:
        number = str(body["destination"].get("number") or "")
        with self.lock:
            first = self.first_seen.get(key, self.clock())
        return (
            number in DEGRADED and self.clock() - first < DEGRADED_SECONDS * self.scale
        )

    def charge(
        self, key: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], bool]:
        fingerprint = hashlib.sha256(
            json.dumps(body, sort_keys=True).encode()
        ).hexdigest()
        number = str(body["destination"].get("number") or "")
        with self.lock:
            self._settle(key)
            if key in self.results:
                stored_fingerprint, status, stored = self.results[key]
                if stored_fingerprint != fingerprint:
                    return (
                        422,
                        _error(
                            "idempotency_mismatch", "Key reused with other parameters."
                        ),
                        False,
                    )
                return status, stored, True
            if key in self.voided:  # voided while this request was held
                return (
                    409,
                    _error("key_voided", "This idempotency key was voided."),
                    False,
                )
            attempts = self.attempts.get(key, 0)
            if attempts < FLAKY.get(number, 0):
                self.attempts[key] = attempts + 1
                return 503, _error("temporarily_unavailable", "Try again later."), False
            result: dict[str, Any] = {
                "id": f"ch_{secrets.token_hex(8)}",
                "payout_id": body["payout_id"],
                "amount": body["amount"],
                "currency": body["currency"],
                "idempotency_key": key,
                "created_at": _now(),
            }
            if number in DECLINES:
                code, message = DECLINES[number]
                status = 402
                result.update(_error(code, message), status="declined")
            elif number in PENDING:
                status = 202
                result["status"] = "pending"
                self.settle_at[key] = (
                    self.clock() + SETTLE_SECONDS * self.scale,
                    PENDING[number],
                )
            else:
                status = 201
                result["status"] = "succeeded"
                self.charges.append(result)
            self.results[key] = (fingerprint, status, result)
            return status, result, False

    def void(self, key: str) -> tuple[int, dict[str, Any]]:
        """Promise that `key` will never charge: 200 unless it already has."""
        with self.lock:
            self._settle(key)
            found = self.results.get(key)
            if found and found[2]["status"] == "succeeded":
                return 409, {
                    **_error("charge_exists", "The charge has succeeded."),
                    "charge": found[2],
                }
            if found and found[2]["status"] == "pending":
                found[2].update(
                    _error("voided", "Voided before it settled."), status="declined"
                )
                self.settle_at.pop(key, None)
            self.voided.add(key)
            return 200, {"voided": True}

    def lookup(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            self._settle(key)
            found = self.results.get(key)
            return dict(found[2]) if found else None

    def accepted(self) -> list[dict[str, Any]]:
        fields = ("payout_id", "amount", "currency", "idempotency_key", "created_at")
        with self.lock:
            for key in list(self.settle_at):
                self._settle(key)
            return [{k: c[k] for k in fields} for c in self.charges]

    def _settle(self, key: str) -> None:
        """A pending charge whose time has come becomes final (lock held)."""
        due = self.settle_at.get(key)
        if due is None or self.clock() < due[0]:
            return
        del self.settle_at[key]
        record = self.results[key][2]
        if due[1] is None:
            record.update(status="succeeded", created_at=_now())
            self.charges.append(record)
        else:
            record.update(_error(*due[1]), status="declined")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _valid(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    destination = body.get("destination")
    return (
        all(isinstance(body.get(k), str) for k in ("payout_id", "amount", "currency"))
        and isinstance(destination, dict)
        and destination.get("type") in ("card", "bank_account")
    )


def make_handler(
    ledger: Ledger, latency: float, faults: Faults | None = None
) -> type[BaseHTTPRequestHandler]:
    injected = faults or Faults()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeGateway/1.0"
        # Headers and body go out as two writes: with Nagle's algorithm the body
        # waits for the client's delayed ACK, ~20 ms a call that no provider adds.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            path = urlsplit(self.path).path.rstrip("/")
            if path == "/charges":
                self._send(200, ledger.accepted())
            elif path.startswith("/charges/"):
                found = ledger.lookup(path.removeprefix("/charges/"))
                self._send(200, found) if found else self._send(
                    404, _error("not_found", "No such charge.")
                )
            elif path == "/healthz":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, _error("not_found", "No such route."))

        def do_PUT(self) -> None:
            # Test-only control of injected faults: {"error": 0.1, "slow_seconds": 2}.
            if urlsplit(self.path).path.rstrip("/") != "/_control/faults":
                self._send(404, _error("not_found", "No such route."))
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                self._send(
                    200, injected.configure(dict(json.loads(self.rfile.read(length))))
                )
            except (ValueError, TypeError) as exc:
                self._send(400, _error("invalid_request", str(exc)))

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path.rstrip("/")
            if path.startswith("/charges/") and path.endswith("/void"):
                key = path.removeprefix("/charges/").removesuffix("/void")
                self._send(*ledger.void(key))
                return
            if path != "/charges":
                self._send(404, _error("not_found", "No such route."))
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                body = None
            key = self.headers.get("Idempotency-Key", "")
            if not key or not _valid(body):
                self._send(
                    400,
                    _error(
                        "invalid_request",
                        "Idempotency-Key and a charge body are required.",
                    ),
                )
                return
            if latency:
                time.sleep(latency)
            begun = ledger.begin(key, body)
            if isinstance(begun, tuple):
                self._send(*begun)
                return
            try:
                self._charge(key, body, hold=begun)
            finally:
                ledger.end(key)

        def _charge(self, key: str, body: dict[str, Any], *, hold: float) -> None:
            time.sleep(hold)
            if ledger.degraded(key, body):
                self._send(503, _error("temporarily_unavailable", "Degraded."))
                return
            fault = injected.draw()
            if fault == "error":
                self._send(503, _error("temporarily_unavailable", "Injected fault."))
                return
            if fault == "reset":
                self._drop()
                return
            if fault == "slow_before":
                # Charges only after the caller has given up waiting.
                time.sleep(injected.slow_seconds)
            status, result, replayed = ledger.charge(key, body)
            if fault == "accept_reset":
                self._drop()
                return
            if fault == "slow":
                time.sleep(injected.slow_seconds)
            self._send(
                status, result, {"Idempotent-Replayed": "true"} if replayed else {}
            )

        def _send(
            self, status: int, payload: Any, headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # Paths and status codes only: request bodies (card numbers) are never logged.
            logger.info(
                json.dumps(
                    {
                        "time": self.log_date_time_string(),
                        "request": self.requestline,
                        "status": args[1] if len(args) > 1 else "",
                    }
                )
            )

    return Handler


def serve(
    host: str,
    port: int,
    latency_ms: float = 0.0,
    faults: str = "",
    time_scale: float = 1.0,
) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(
        (host, port),
        make_handler(Ledger(time_scale=time_scale), latency_ms / 1000, Faults(faults)),
    )
    server.daemon_threads = True
    return server


def main() -> None:
    # Here, not at the top: tests and tools import this module's tables and handler,
    # and must not load the environment (or .env) into theirs.
    from settings import fakegateway as config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = serve(
        config.HOST, config.PORT, config.LATENCY_MS, config.FAULTS, config.TIME_SCALE
    )
    logger.info(
        "fake gateway listening on %s (latency %s ms)", config.URL, config.LATENCY_MS
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
