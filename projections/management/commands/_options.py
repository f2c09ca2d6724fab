"""What the auditing commands share: a range of positions read in batches, and a
progress bar. (A leading underscore: Django does not take it for a command.)"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from django.core.management.base import CommandParser


def add_position_range(parser: CommandParser, *, after: str, until: str) -> None:
    """--after and --until (positions, each described as the command reads it) and
    --batch-size."""
    parser.add_argument("--after", type=int, help=after)
    parser.add_argument("--until", type=int, help=until)
    parser.add_argument("--batch-size", type=int, default=500)


def progress_bar(total: int, unit: str) -> tqdm[Any]:
    """On stderr, and only when it is a terminal."""
    return tqdm(total=total, unit=unit, disable=not sys.stderr.isatty())
