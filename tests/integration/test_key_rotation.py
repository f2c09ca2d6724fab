"""Cipher key rotation on the test event store, and `manage.py rotate_cipher_key`."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from base64 import b64decode, b64encode
from io import StringIO
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from psycopg import sql

from api.management.commands.rotate_cipher_key import env_file_keys
from ledger.application import Payouts
from ledger.cipher import key_id_of, parse_keys
from tests.builders import TEST_ACTOR, WORKER, new_payout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from uuid import UUID

    from pytest_django.fixtures import SettingsWrapper

VISA = "4242424242424242"
KEY_A = b64encode(b"a" * 32).decode()
KEY_B = b64encode(b"b" * 32).decode()
ROTATING = "ledger.cipher:RotatingCipher"


def store_env(**cipher: str) -> dict[str, str]:
    """The ledger's event store on the test database, with only the given keys."""
    env = dict(settings.EVENT_STORE)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        env["POSTGRES_DBNAME"] = connection.settings_dict["NAME"]
    env.update({"CIPHER_TOPIC": ROTATING, "CIPHER_KEYS": ""})
    env.update(cipher)
    return env


@pytest.fixture
def make_app(ledger: Payouts) -> Iterator[Callable[..., Payouts]]:
    """Another process's application with its own cipher keys (`ledger` empties the
    store first)."""
    built: list[Payouts] = []

    def make(**cipher: str) -> Payouts:
        app = Payouts(env=store_env(**cipher))
        built.append(app)
        return app

    yield make
    for app in built:
        app.close()


def key_ids(app: Payouts, payout_id: UUID) -> list[str | None]:
    return [key_id_of(e.state) for e in app.recorder.select_events(payout_id)]


def raw_states(app: Payouts, payout_id: UUID) -> list[bytes]:
    return [e.state for e in app.recorder.select_events(payout_id)]


def test_a_rotation_keeps_old_events_readable_and_encrypts_new_ones_with_the_new_key(
    make_app: Callable[..., Payouts],
) -> None:
    # given: events under key A
    before = make_app(CIPHER_KEYS=f"a:{KEY_A}")
    closed = before.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    before.cancel(closed, reason="asked", actor=TEST_ACTOR)
    ongoing = before.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    closed_before = before.get_payout(closed)
    # when: rotated to A,B
    after = make_app(CIPHER_KEYS=f"a:{KEY_A},b:{KEY_B}")
    fresh = after.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    after.start_processing(ongoing, actor=WORKER)
    # then
    assert after.get_payout(closed) == closed_before
    assert [r.type for r in after.history(closed)] == ["Created", "Cancelled"]
    assert after.repository.get(ongoing).recipient.number.reveal() == VISA
    assert key_ids(after, closed) == ["a", "a"]
    assert key_ids(after, ongoing) == ["a", "b"]
    assert key_ids(after, fresh) == ["b"]
    states = [s for p in (closed, ongoing, fresh) for s in raw_states(after, p)]
    assert all(VISA.encode() not in state for state in states)


def test_a_process_without_the_new_key_names_it_when_it_cannot_read(
    make_app: Callable[..., Payouts],
) -> None:
    # given
    after = make_app(CIPHER_KEYS=f"a:{KEY_A},b:{KEY_B}")
    payout_id = after.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    # when
    with pytest.raises(ValueError, match="Unknown cipher key id 'b'") as error:
        make_app(CIPHER_KEYS=f"a:{KEY_A}").get_payout(payout_id)
    # then
    assert VISA not in str(error.value)


@pytest.mark.postgres
def test_no_full_card_number_is_in_the_raw_event_table_across_a_rotation(
    make_app: Callable[..., Payouts],
) -> None:
    # given
    before = make_app(CIPHER_KEYS=f"a:{KEY_A}")
    first = before.create_payout(new_payout(), actor=TEST_ACTOR).payout.id
    after = make_app(CIPHER_KEYS=f"a:{KEY_A},b:{KEY_B}")
    after.create_payout(new_payout(), actor=TEST_ACTOR)
    after.cancel(first, reason="asked", actor=TEST_ACTOR)
    # when
    query = sql.SQL("SELECT state FROM {}.payouts_events").format(
        sql.Identifier(settings.EVENT_STORE["POSTGRES_SCHEMA"])
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(connection.connection))
        states = [bytes(row[0]) for row in cursor.fetchall()]
    # then
    assert sorted(key_id_of(state) or "" for state in states) == ["a", "b", "b"]
    assert all(VISA.encode() not in state for state in states)
    assert all(b"Ada Lovelace" not in state for state in states)


@pytest.mark.parametrize(
    ("cipher", "refusal"),
    [
        ({}, "CIPHER_KEYS must be set"),
        ({"CIPHER_KEYS": f"a:{KEY_A},{KEY_B}"}, "Cipher keys: CIPHER_KEYS entry 2"),
        ({"PAYOUTS_CIPHER_KEYS": f"a:{KEY_A}"}, "CIPHER_KEYS must be set"),
        ({"CIPHER_KEYS": f"a:{KEY_A}"}, None),
    ],
    ids=["no key", "malformed", "prefixed keys only", "keys"],
)
@pytest.mark.parametrize("debug", ["false", "true"])
def test_settings_need_well_formed_keys_even_in_debug(
    cipher: dict[str, str], refusal: str | None, debug: str
) -> None:
    # given: empty variables shadow the ones a local .env would add; DEBUG turns
    # nothing off
    env = {
        **os.environ,
        "DEBUG": debug,
        "SECRET_KEY": "s" * 50,
        "CIPHER_KEYS": "",
        **cipher,
    }
    # when
    result = subprocess.run(
        [sys.executable, "-c", "import settings.base"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # then
    if refusal is None:
        assert result.returncode == 0, result.stderr
    else:
        assert "ImproperlyConfigured" in result.stderr
        assert refusal in result.stderr
        assert KEY_A not in result.stderr
        assert KEY_B not in result.stderr


# manage.py rotate_cipher_key


@pytest.fixture
def configured(settings: SettingsWrapper) -> Any:
    """Set the keys in effect: settings.EVENT_STORE's, all the ledger reads."""

    def configure(**cipher: str) -> None:
        settings.EVENT_STORE = {
            **settings.EVENT_STORE,
            "CIPHER_TOPIC": ROTATING,
            "CIPHER_KEYS": "",
            **cipher,
        }

    return configure


def dotenv(directory: Path, text: str) -> Path:
    path = directory / ".env"
    path.write_text(text)
    return path


def rotate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rotate_cipher_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_rotate_cipher_key_prints_the_old_keys_and_a_new_last_one(
    configured: Any, ledger: Payouts, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    configured(CIPHER_KEYS=f"a:{KEY_A},k7:{KEY_B}")
    ledger.create_payout(new_payout(), actor=TEST_ACTOR)
    caplog.set_level(logging.DEBUG)
    # when
    out, err = rotate()
    # then
    name, _, value = out.strip().partition("=")
    keys = parse_keys(value)
    assert name == "CIPHER_KEYS"
    assert list(keys) == ["a", "k7", "k8"]
    assert keys["a"] == b64decode(KEY_A)
    assert keys["k7"] == b64decode(KEY_B)
    assert len(keys["k8"]) == 32
    assert "'k8'" in err
    assert "Keep every old key" in err
    assert VISA not in out + err + caplog.text


def test_rotate_cipher_key_write_env_updates_the_file_and_keeps_every_key(
    configured: Any, tmp_path: Path
) -> None:
    # given: a .env as `make run` writes it, whose keys are in effect
    env_file = dotenv(tmp_path, f"SECRET_KEY=s\nCIPHER_KEYS=k1:{KEY_A}\n")
    configured(CIPHER_KEYS=f"k1:{KEY_A}")
    # when
    out, _ = rotate("--write-env", "--env-file", str(env_file))
    configured(CIPHER_KEYS=out.strip().partition("=")[2])
    rotate("--write-env", "--env-file", str(env_file))
    # then
    lines = env_file.read_text().splitlines()
    assert lines[0] == "SECRET_KEY=s"
    assert len([line for line in lines if line.startswith("CIPHER_KEYS=")]) == 1
    keys = env_file_keys(env_file)
    assert list(keys) == ["k1", "k2", "k3"]
    assert keys["k1"] == b64decode(KEY_A)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_rotate_cipher_key_write_env_refuses_keys_it_would_not_be_read_over(
    configured: Any, tmp_path: Path
) -> None:
    # given: keys in effect from the process environment, not from this file
    env_file = dotenv(tmp_path, f"CIPHER_KEYS=x:{KEY_B}\n")
    configured(CIPHER_KEYS=f"a:{KEY_A}")
    # when
    with pytest.raises(CommandError, match="Nothing was written"):
        rotate("--write-env", "--env-file", str(env_file))
    # then
    assert env_file.read_text() == f"CIPHER_KEYS=x:{KEY_B}\n"
