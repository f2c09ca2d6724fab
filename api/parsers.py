"""JSON bodies: a malformed one is a 400 problem document, whatever makes it malformed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO


class JSONParser(parsers.JSONParser):
    """DRF's parser turns ValueError into a 400, but a body nested a few thousand
    levels deep (`[[[[...]]]]`, a few kilobytes) makes `json` raise RecursionError,
    which would be a 500."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
