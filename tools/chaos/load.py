"""The client load: payouts created through the API, and a record of every answer.

Like a Jepsen client, it writes down every operation with what came back (a 201 and
its id, an error status, or no answer at all), so the checker can tell acknowledged
creates from unknown ones. A request carrying an Idempotency-Key is retried with the
same key when it fails, as a payment client would.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from workers.gateway.fakeserver import OUTCOMES

# The SPEC's test cards: number -> (final status, failure code); every one but the
# degraded card, whose 200 s outlast a chaos run's recovery.
CARDS = OUTCOMES
# How often each card is drawn: the held and pending cards tie a worker up for
# seconds each, so they are rarer than the rest.
WEIGHTS = {"4000000000000259": 0.1, "4000000000003238": 0.3, "4000000000003410": 0.3}
IBAN = "DE89370400440532013000"


@dataclass
class Spec:
    """One create the client wants, decided from the seed before the run starts."""

    index: int
    body: dict[str, Any]
    key: str | None
    sends: (
        int  # 2: the same create sent twice (a replay with a key, a duplicate without)
    )
    cancel: bool  # DELETE it right after its 201


@dataclass
class Attempt:
    index: int
    key: str | None
    kind: str  # "create", "replay", "duplicate", "retry", "cancel"
    started: float
    seconds: float
    status: int | None  # None: no answer (connection error, timeout)
    payout_id: str | None = None
    replayed: bool = False
    error: str = ""


@dataclass
class History:
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attempt: Attempt) -> None:
        with self.lock:
            self.attempts.append(attempt)

    def acknowledged(self) -> dict[str, int]:
        """Payout id -> index of the create the API answered 201 for."""
        return {
            a.payout_id: a.index
            for a in self.attempts
            if a.kind != "cancel" and a.status == 201 and a.payout_id
        }

    def key_conflicts(self) -> int:
        """Idempotency keys whose 201 answers named more than one payout."""
        ids: dict[str, set[str]] = {}
        for a in self.attempts:
            if a.key and a.kind != "cancel" and a.status == 201 and a.payout_id:
                ids.setdefault(a.key, set()).add(a.payout_id)
        return sum(1 for found in ids.values() if len(found) > 1)

    def summary(self) -> dict[str, Any]:
        creates = [a for a in self.attempts if a.kind != "cancel"]
        failures: dict[str, int] = {}
        for a in creates:
            if a.status != 201:
                label = str(a.status) if a.status is not None else a.error
                failures[label] = failures.get(label, 0) + 1
        cancels: dict[str, int] = {}
        for a in self.attempts:
            if a.kind == "cancel":
                label = str(a.status) if a.status is not None else a.error
                cancels[label] = cancels.get(label, 0) + 1
        return {
            "requests": len(creates),
            "acknowledged": sum(1 for a in creates if a.status == 201),
            "replayed": sum(1 for a in creates if a.replayed),
            "failures": failures,
            "cancels": cancels,
        }


def plan(
    rng: random.Random,
    payouts: int,
    *,
    keyed: float = 0.5,
    twice: float = 0.15,
    cancel: float = 0.03,
) -> list[Spec]:
    numbers = list(CARDS)
    weights = [WEIGHTS.get(number, 1.0) for number in numbers]
    specs = []
    for index in range(payouts):
        if rng.random() < 1 / 6:
            recipient = {"type": "bank_account", "iban": IBAN, "holder": f"H {index}"}
            currency = "EUR"
        else:
            recipient = {
                "type": "card",
                "number": rng.choices(numbers, weights)[0],
                "holder": f"Holder {index}",
            }
            currency = rng.choice(("EUR", "USD", "JPY"))
        units = rng.randint(1, 99_999)
        amount = (
            str(units) if currency == "JPY" else f"{units}.{rng.randint(0, 99):02d}"
        )
        key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        specs.append(
            Spec(
                index=index,
                body={
                    "amount": amount,
                    "currency": currency,
                    "recipient_details": recipient,
                    "description": f"chaos {index}",
                },
                key=key if rng.random() < keyed else None,
                sends=2 if rng.random() < twice else 1,
                cancel=rng.random() < cancel,
            )
        )
    return specs


def expected_outcome(body: dict[str, Any]) -> tuple[str, str | None]:
    recipient = body["recipient_details"]
    if recipient["type"] == "bank_account":
        return "completed", None
    return CARDS[recipient["number"]]


class Load:
    """Sends the planned creates at `rate` per second from `clients` threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        specs: list[Spec],
        *,
        rate: float,
        clients: int = 4,
        seed: int = 0,
        timeout: float = 10.0,
        retries: int = 4,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.specs = specs
        self.rate = rate
        self.clients = clients
        self.timeout = timeout
        self.retries = retries
        self.seed = seed
        self.history = History()
        self.queue: queue.Queue[Spec | None] = queue.Queue()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.started = 0.0
        self.finished = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        feeder = threading.Thread(target=self._feed, name="load-feed", daemon=True)
        self.threads = [feeder] + [
            threading.Thread(
                target=self._client, args=(n,), name=f"load-{n}", daemon=True
            )
            for n in range(self.clients)
        ]
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        self.finished = time.monotonic()

    def _feed(self) -> None:
        # Open-loop pacing: the n-th create is due at n / rate, whatever the answers.
        for n, spec in enumerate(self.specs):
            due = self.started + n / self.rate
            if self.stop.wait(max(0.0, due - time.monotonic())):
                break
            self.queue.put(spec)
        for _ in range(self.clients):
            self.queue.put(None)

    def _client(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        with httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=self.timeout,
        ) as client:
            while (spec := self.queue.get()) is not None:
                self._run(client, rng, spec)

    def _run(self, client: httpx.Client, rng: random.Random, spec: Spec) -> None:
        payout_id = self._create(client, rng, spec, "create")
        if spec.sends == 2:
            time.sleep(rng.uniform(0, 0.2))
            again = self._create(
                client, rng, spec, "replay" if spec.key else "duplicate"
            )
            payout_id = payout_id or again
        if spec.cancel and payout_id:
            cancel = self._send(
                client, spec, "cancel", "DELETE", f"payouts/{payout_id}/"
            )
            cancel.payout_id = payout_id

    def _create(
        self, client: httpx.Client, rng: random.Random, spec: Spec, kind: str
    ) -> str | None:
        attempt = self._send(client, spec, kind, "POST", "payouts/")
        tries = 0
        # Only a keyed request may be retried safely: without a key, a retry after a
        # lost answer could create a second payout.
        while (
            spec.key
            and attempt.status != 201
            and (
                attempt.status is None or attempt.status >= 500 or attempt.status == 429
            )
            and tries < self.retries
            and not self.stop.is_set()
        ):
            tries += 1
            time.sleep(min(4.0, 0.25 * 2**tries) * rng.uniform(0.5, 1.0))
            attempt = self._send(client, spec, "retry", "POST", "payouts/")
        return attempt.payout_id

    def _send(
        self, client: httpx.Client, spec: Spec, kind: str, method: str, path: str
    ) -> Attempt:
        headers = {"Idempotency-Key": spec.key} if spec.key and method == "POST" else {}
        started = time.monotonic()
        attempt = Attempt(spec.index, spec.key, kind, started, 0.0, None)
        try:
            response = client.request(
                method,
                f"/api/v1/{path}",
                json=spec.body if method == "POST" else None,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            attempt.error = type(exc).__name__
        else:
            attempt.status = response.status_code
            if method == "POST" and response.status_code == 201:
                try:
                    attempt.payout_id = str(response.json()["id"])
                except (ValueError, KeyError, TypeError):
                    attempt.error = "201 without an id"
                attempt.replayed = response.headers.get("Idempotent-Replayed") == "true"
        attempt.seconds = time.monotonic() - started
        self.history.add(attempt)
        return attempt
