"""RedactCardNumbers: no full card number reaches a log line, whatever carries it."""

from __future__ import annotations

import io
import logging
import uuid
from typing import TYPE_CHECKING

import pytest
from pythonjsonlogger.json import JsonFormatter

from ledger.logcontext import ContextFilter, RedactCardNumbers, bound, redact
from ledger.values import CardNumber, luhn_valid

if TYPE_CHECKING:
    from collections.abc import Iterator

VISA = "4242424242424242"
MASKED = "424242******4242"
AMEX = "378282246310005"


class Log:
    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(formatter)
        handler.addFilter(ContextFilter())
        handler.addFilter(RedactCardNumbers())
        self.handler = handler
        self.logger = logging.getLogger(f"test.redact.{uuid.uuid4().hex}")
        self.logger.addHandler(handler)
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)

    @property
    def output(self) -> str:
        return self.stream.getvalue()


@pytest.fixture(params=["text", "json"])
def log(request: pytest.FixtureRequest) -> Iterator[Log]:
    formatter = (
        logging.Formatter("%(levelname)s %(message)s")
        if request.param == "text"
        else JsonFormatter("%(levelname)s %(message)s")
    )
    log = Log(formatter)
    yield log
    log.logger.removeHandler(log.handler)


def test_a_card_number_in_the_message_is_masked(log: Log) -> None:
    # when
    log.logger.info(f"paying card {VISA} now")  # noqa: G004
    # then
    assert VISA not in log.output
    assert MASKED in log.output


def test_a_card_number_in_the_arguments_is_masked(log: Log) -> None:
    # when
    log.logger.info("paying card %s for %s", VISA, "Ada")
    # then
    assert VISA not in log.output
    assert f"paying card {MASKED} for Ada" in log.output


def test_a_card_number_in_exception_text_is_masked(log: Log) -> None:
    # when
    try:
        raise ValueError(f"gateway refused {VISA}")
    except ValueError:
        log.logger.exception("charge failed")
    # then
    assert VISA not in log.output
    assert f"gateway refused {MASKED}" in log.output
    assert "Traceback" in log.output


def test_every_card_number_of_a_line_is_masked(log: Log) -> None:
    # when
    log.logger.warning("%s then %s", VISA, AMEX)
    # then
    assert VISA not in log.output
    assert AMEX not in log.output
    assert "378282*****0005" in log.output


def test_a_masked_card_number_object_stays_masked(log: Log) -> None:
    # when
    log.logger.info("card %s / %r", CardNumber(VISA), CardNumber(VISA))
    # then
    assert VISA not in log.output
    assert log.output.count(MASKED) == 2


def test_a_digit_run_that_fails_the_luhn_check_is_left_alone(log: Log) -> None:
    # given
    order_number = "4242424242424241"
    # when
    log.logger.info("order %s", order_number)
    # then
    assert order_number in log.output


@pytest.mark.parametrize(
    "digits",
    [
        "42424242424",  # 11 digits
        "4242424242424242420",  # 19 digits, Luhn-invalid
        "42424242424242424242",  # 20 digits: not one card number
    ],
)
def test_a_digit_run_that_cannot_be_a_card_number_is_left_alone(digits: str) -> None:
    # when
    shown = redact(f"id {digits}")
    # then
    assert shown == f"id {digits}"


@pytest.mark.parametrize("length", range(12, 20))
def test_luhn_valid_runs_of_12_to_19_digits_are_masked(length: int) -> None:
    # given
    body = "4" * (length - 1)
    number = next(body + d for d in "0123456789" if luhn_valid(body + d))
    # when
    shown = redact(f"pan={number};")
    # then
    assert number not in shown
    assert shown.endswith(number[-4:] + ";")


def test_a_malformed_log_call_does_not_raise_and_leaks_nothing(log: Log) -> None:
    # when
    log.logger.error("card %s and %s", VISA)
    # then
    assert VISA not in log.output
    assert MASKED in log.output


def test_the_payout_id_bound_to_the_context_is_on_the_record() -> None:
    # given
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.addFilter(ContextFilter())
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(f"test.context.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    payout_id = uuid.uuid4()
    # when
    with bound(payout_id=payout_id, request_id="req-7"):
        logger.warning("inside")
    logger.warning("outside")
    # then
    assert (records[0].payout_id, records[0].request_id) == (str(payout_id), "req-7")
    assert (records[1].payout_id, records[1].request_id) == (None, None)
