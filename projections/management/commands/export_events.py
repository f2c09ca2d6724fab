"""manage.py export_events: the event feed as NDJSON, for scripts/verify_export.py.

Every line of the export is one event; its integrity data (count, range, digest) goes
to `<output>.integrity.json` beside the file, or to stderr when the export goes to
stdout.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.apps import get_payouts
from projections.database import EventTable
from projections.export import (
    UnreadableEvent,
    export_events,
    export_range,
    sidecar_path,
)
from projections.management.commands._options import (
    add_position_range,
    progress_bar,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

    from django.core.management.base import OutputWrapper

    from projections.export import Integrity

    Writer = tuple[Callable[[bytes], Any], Callable[[Integrity], None]]


class Command(BaseCommand):
    help = (
        "Write every event in (--after, --until] as NDJSON, one event per line with "
        "the fields its hash covers; the count, range and digest go to "
        "<output>.integrity.json (to stderr when writing to stdout). Check both with "
        "`python scripts/verify_export.py FILE`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_position_range(
            parser,
            after="start after this position (default 0)",
            until="stop at this position, included (default: the last one now)",
        )
        parser.add_argument(
            "--output",
            help="file to write (default stdout), and its integrity data to "
            "<output>.integrity.json beside it; both replaced only when done",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        payouts = get_payouts()
        after, until = export_range(payouts, options["after"], options["until"])
        total = EventTable(payouts).count_events(after, until)
        output = options["output"]
        try:
            with (
                _target(output, self.stdout) as (write, seal),
                progress_bar(total, "event") as bar,
            ):
                summary = export_events(
                    payouts,
                    write,
                    after=after,
                    until=until,
                    batch=options["batch_size"],
                    progress=bar.update,
                )
                seal(summary)
        except UnreadableEvent as exc:
            raise CommandError(f"export failed: {exc}", returncode=1) from None
        if output:
            self.stdout.write(
                f"exported {summary.count} events, positions ({after}, {until}], "
                f"to {output}\nintegrity {sidecar_path(Path(output))}\n"
                f"digest {summary.digest}"
            )
        else:  # stdout carries the events and nothing else
            self.stderr.write(
                summary.document().decode(), style_func=lambda text: text, ending=""
            )


@contextlib.contextmanager
def _target(output: str | None, stdout: OutputWrapper) -> Iterator[Writer]:
    """A bytes writer for the events, and one for their integrity data: the file named
    and its sidecar (each written aside, renamed once complete), or stdout and none
    (the command prints the integrity data to stderr)."""
    if not output:
        buffer = getattr(stdout, "buffer", None)  # a StringIO (call_command) has none
        yield (
            buffer.write if buffer else (lambda b: stdout.write(b.decode(), ending="")),
            lambda integrity: None,
        )
        (buffer or stdout).flush()
        return
    path = Path(output)
    sealed: list[Integrity] = []
    with _aside(path) as events:
        yield events.write, sealed.append
    if sealed:
        # After the export: a sidecar never describes a file that was not renamed in
        # (a crash between the two renames leaves an export its old sidecar fails).
        with _aside(sidecar_path(path)) as sidecar:
            sidecar.write(sealed[0].document())


@contextlib.contextmanager
def _aside(path: Path) -> Iterator[BinaryIO]:
    """A file written beside `path` under a temporary name, renamed to it once
    complete; removed instead on any error."""
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
