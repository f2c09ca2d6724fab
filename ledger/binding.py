"""The ledger's mapper: every stored event is bound to its row.

The stream id, version and topic of a stored event are plaintext columns, so the
library's mapper would decode a ciphertext copied to another stream (a cloned Created
is a second payout), moved to another version, or relabelled with another topic.
BoundMapper seals each event with those three values as AES-GCM associated data
(RotatingCipher format 2): a blob decrypts only in the row it was written for.

Blobs of the older format (RotatingCipher format 1) carry no binding and stay
readable; `verify_ledger` counts their streams as legacy.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from ledger.cipher import InvalidBlob, RotatingCipher
from ledger.errors import TamperedEvent

if TYPE_CHECKING:
    from eventsourcing.domain import DomainEventProtocol
    from eventsourcing.persistence import Cipher, Compressor, Transcoder

_CONTEXT = "payout-ledger/event/v1"


def binding(originator_id: UUID | str, version: int, topic: str) -> bytes:
    """An unambiguous encoding of a row's identity (JSON: no separator to forge)."""
    return json.dumps(
        [_CONTEXT, str(originator_id), int(version), topic], separators=(",", ":")
    ).encode()


class BoundMapper(Mapper[UUID]):
    """The library's mapper with a bound cipher. Without a RotatingCipher (no cipher
    at all, as in-memory tests run) it is the library's mapper unchanged."""

    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor, cipher)
        self.bound = isinstance(cipher, RotatingCipher)
        # Encoding and decoding without the cipher are the library's own.
        self._plain: Mapper[UUID] = Mapper(transcoder, compressor)

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if not self.bound:
            return super().to_stored_event(domain_event)
        stored = self._plain.to_stored_event(domain_event)
        assert isinstance(self.cipher, RotatingCipher)
        return replace(
            stored, state=self.cipher.seal(stored.state, _binding_of(stored))
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        if not self.bound:
            return super().to_domain_event(stored_event)
        assert isinstance(self.cipher, RotatingCipher)
        try:
            state = self.cipher.unseal(stored_event.state, _binding_of(stored_event))
        except InvalidBlob as invalid:
            # UnknownCipherKey is not caught: a key removed too early is a
            # configuration error to fix, not an event to give up on.
            raise TamperedEvent(
                stored_event.originator_id,
                stored_event.originator_version,
                stored_event.topic,
                str(invalid),
            ) from None
        return self._plain.to_domain_event(replace(stored_event, state=state))


def _binding_of(stored: StoredEvent) -> bytes:
    return binding(stored.originator_id, stored.originator_version, stored.topic)
