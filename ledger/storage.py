"""How the ledger's events are stored: the library's hooks the use cases never see.

The environment is only what the caller passes (never os.environ), the options that
would break the log's order are refused, events are bound to their rows, and card
numbers are transcoded for the cipher to encrypt.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Transcoding
from eventsourcing.utils import Environment, strtobool

from ledger import errors
from ledger.binding import BoundMapper
from ledger.values import CardNumber

if TYPE_CHECKING:
    from collections.abc import Mapping

    from eventsourcing.persistence import JSONTranscoder
    from eventsourcing.utils import EnvType

# Options the ledger refuses: with database functions, the PostgreSQL recorder
# inserts without its table lock, notification ids commit out of order, and the
# followers (projector, dispatcher) skip late commits for good.
UNSAFE_OPTIONS = ("POSTGRES_ENABLE_DB_FUNCTIONS",)


def unsafe_options(env: Mapping[str, str], name: str = "payouts") -> list[str]:
    """The names in `env` (plain or application-prefixed) that turn an unsafe
    option on."""
    return [
        key
        for option in UNSAFE_OPTIONS
        for key in Environment(name).create_keys(option)
        if strtobool(env.get(key) or "no")
    ]


class CardNumberAsStr(Transcoding):
    type = CardNumber
    name = "card_number"

    def encode(self, obj: CardNumber) -> str:
        return obj.reveal()

    def decode(self, data: str) -> CardNumber:
        return CardNumber(data)


class PayoutStore(Application[uuid.UUID]):
    """The library's application with the ledger's storage rules; `Payouts` adds the
    use cases."""

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Only what the caller passes: the library would merge os.environ, where
        any PAYOUTS_-prefixed variable overrides the settings (persistence module,
        cipher, the insert lock)."""
        merged = Environment(name, {**type(self).env, **(env or {})})
        if unsafe := unsafe_options(merged, name):
            raise errors.UnsafeConfiguration(
                f"{', '.join(unsafe)} is on: the event store would insert without "
                "its table lock and the log followers would skip late commits"
            )
        return merged

    def construct_mapper(self) -> Mapper[uuid.UUID]:
        # Not MAPPER_TOPIC: binding events to their rows is not an option.
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=BoundMapper
        )

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(CardNumberAsStr())
