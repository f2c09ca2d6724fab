"""Log context shared by every process: request and payout ids in, card numbers out."""

from __future__ import annotations

import contextvars
import logging
import re
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ledger.values import MAX_CARD_DIGITS, MIN_CARD_DIGITS, luhn_valid, mask_pan

if TYPE_CHECKING:
    from collections.abc import Iterator

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default=""
)
payout_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "payout_id", default=""
)

_DIGIT_RUN = re.compile(rf"(?<!\d)\d{{{MIN_CARD_DIGITS},{MAX_CARD_DIGITS}}}(?!\d)")


@contextmanager
def bound(*, payout_id: object = None, request_id: str | None = None) -> Iterator[None]:
    tokens = []
    if payout_id is not None:
        tokens.append((payout_id_var, payout_id_var.set(str(payout_id))))
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def redact(text: str) -> str:
    """Mask every Luhn-valid run of card-number length: the last defence for logs."""
    return _DIGIT_RUN.sub(
        lambda m: mask_pan(m.group()) if luhn_valid(m.group()) else m.group(), text
    )


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "payout_id", None):
            record.payout_id = payout_id_var.get() or None
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or None
        return True


class RedactCardNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A malformed call must not raise at the call site, nor leak its arguments.
            message = f"{record.msg} {record.args!r}"
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            # Formatters that format exc_info afresh (python-json-logger does) would
            # skip the redacted text: leave them the text alone.
            record.exc_info = None
        return True
