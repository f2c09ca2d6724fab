"""manage.py export_events: the event feed as NDJSON, for scripts/verify_export.py."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ledger.apps import get_payouts
from projections.eventtable import EventTable
from projections.export import UnreadableEvent, export_events, export_range

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from django.core.management.base import OutputWrapper


class Command(BaseCommand):
    help = (
        "Write every event in (--after, --until] as NDJSON, with the fields each hash "
        "covers and a final count and digest line. Check it with "
        "`python scripts/verify_export.py FILE`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--after", type=int, help="start after this position (default 0)"
        )
        parser.add_argument(
            "--until",
            type=int,
            help="stop at this position, included (default: the last one now)",
        )
        parser.add_argument(
            "--output", help="file to write (default stdout); replaced only when done"
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        payouts = get_payouts()
        after, until = export_range(payouts, options["after"], options["until"])
        total = EventTable(payouts).count_events(after, until)
        output = options["output"]
        try:
            with (
                _target(output, self.stdout) as write,
                tqdm(total=total, unit="event", disable=not sys.stderr.isatty()) as bar,
            ):
                summary = export_events(
                    payouts,
                    write,
                    after=after,
                    until=until,
                    batch=options["batch_size"],
                    progress=bar.update,
                )
        except UnreadableEvent as exc:
            raise CommandError(f"export failed: {exc}", returncode=1) from None
        if output:  # stdout carries the export itself otherwise
            self.stdout.write(
                f"exported {summary.count} events, positions ({after}, {until}], "
                f"to {output}\ndigest {summary.digest}"
            )


@contextlib.contextmanager
def _target(output: str | None, stdout: OutputWrapper) -> Iterator[Callable[..., Any]]:
    """A bytes writer: the file named (written aside, renamed once complete) or stdout."""
    if not output:
        buffer = getattr(stdout, "buffer", None)  # a StringIO (call_command) has none
        yield (
            buffer.write if buffer else (lambda b: stdout.write(b.decode(), ending=""))
        )
        (buffer or stdout).flush()
        return
    path = Path(output)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file.write
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
