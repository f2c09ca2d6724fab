"""manage.py rotate_cipher_key [--write-env]: add a new event-store key, keep the old ones.

Prints the new CIPHER_KEYS value on stdout (its last key encrypts from now on) and what
to do with it on stderr. Events are never re-encrypted (the ledger is append-only), so
the old keys stay in the value: they are what old events are read with.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from eventsourcing.utils import Environment

from ledger.application import Payouts
from ledger.cipher import format_keys, parse_keys

_NAME = "CIPHER_KEYS"
_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


class Command(BaseCommand):
    help = (
        "Generate a new 32-byte cipher key with a fresh id and print the new "
        "CIPHER_KEYS value: old keys kept, the new one last (it encrypts new events)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--write-env",
            action="store_true",
            help="also set CIPHER_KEYS in the local .env (old keys are kept)",
        )
        parser.add_argument(
            "--env-file",
            type=Path,
            default=Path(settings.BASE_DIR) / ".env",
            help="the .env file --write-env updates (default: the project's)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        current = configured_keys()
        keys = dict(current)
        key_id = fresh_key_id(keys)
        keys[key_id] = secrets.token_bytes(32)
        value = format_keys(keys)
        if options["write_env"]:
            path: Path = options["env_file"]
            in_file = env_file_keys(path)
            if list(in_file.items()) != list(current.items()):
                # Writing would either be ignored (the process environment wins over
                # .env) or drop the keys in effect: both leave events unreadable.
                raise CommandError(
                    f"The cipher keys in effect are not the ones in {path}: they come "
                    "from the process environment. Run without --write-env and set "
                    f"{_NAME} where it is defined. Nothing was written."
                )
            write_env_line(path, _NAME, value)
            self.stderr.write(f"Wrote {_NAME} to {path}.")
        old = ", ".join(current) or "none"
        self.stderr.write(
            f"New key id {key_id!r} (old key ids: {old}). Set {_NAME} to the value "
            "below in the environment of every process (web, workers, followers) and "
            "restart them together: a process still on the old value cannot read "
            f"events encrypted with {key_id!r}. Keep every old key for as long as an "
            "event encrypted with it exists, that is, for the life of the ledger: "
            "events are never re-encrypted."
        )
        self.stdout.write(f"{_NAME}={value}")


def configured_keys() -> dict[str, bytes]:
    """The keys the ledger reads with: those of settings.EVENT_STORE, its whole
    environment."""
    return parse_keys(Environment(Payouts.name, settings.EVENT_STORE).get(_NAME) or "")


def fresh_key_id(keys: dict[str, bytes]) -> str:
    numbers = [int(m.group(1)) for k in keys if (m := re.fullmatch(r"k(\d+)", k))]
    n = max(numbers, default=0) + 1
    while f"k{n}" in keys:
        n += 1
    return f"k{n}"


def env_file_keys(path: Path) -> dict[str, bytes]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            match = _ENV_LINE.fullmatch(line)
            if match and not line.lstrip().startswith("#"):
                # The first definition wins, as when django-environ reads the file.
                values.setdefault(match.group(1), match.group(2).strip("'\""))
    return parse_keys(values.get(_NAME, ""))


def write_env_line(path: Path, name: str, value: str) -> None:
    """Set `name=value` in the file, replacing its line or appending one; every
    other line is kept."""
    lines = path.read_text().splitlines() if path.exists() else []
    new_line = f"{name}={value}"
    for index, line in enumerate(lines):
        match = _ENV_LINE.fullmatch(line)
        if match and match.group(1) == name and not line.lstrip().startswith("#"):
            lines[index] = new_line
            break
    else:
        lines.append(new_line)
    # Written beside and renamed over: an interrupted write never truncates the keys.
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    temporary.chmod(0o600)
    temporary.replace(path)
