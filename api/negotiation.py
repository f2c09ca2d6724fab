"""Content negotiation: an unknown `?format=` is a 400 naming it, not DRF's 404."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rest_framework.renderers import BaseRenderer


class ContentNegotiation(DefaultContentNegotiation):
    def filter_renderers(
        self, renderers: Iterable[BaseRenderer], wanted: str
    ) -> list[BaseRenderer]:
        matching = [r for r in renderers if r.format == wanted]
        if not matching:
            names = ", ".join(str(r.format) for r in renderers)
            raise ValidationError(
                {self.settings.URL_FORMAT_OVERRIDE: [f"Must be one of {names}."]}
            )
        return matching
