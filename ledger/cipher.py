"""AES-GCM encryption of event state with several keys, so the key can be rotated.

The ledger is append-only: events are never re-encrypted, so every key that ever
encrypted an event must stay configured for as long as that event is to be read.
Each blob therefore names the key that encrypted it:

    MAGIC (b"RKC" + format) | id length (1 byte) | key id (ASCII)
    | nonce (12) | tag (16) | ciphertext

The nonce/tag/ciphertext layout is the library AESCipher's. The header is AES-GCM
associated data, so a blob cannot be relabelled with another key id. Format 2 (`seal`)
also authenticates a binding given by the caller: the event store binds each blob to
its stream id, version and topic (ledger/binding.py), which are plaintext columns, so
a blob copied or moved to another row no longer decrypts. Format 1 (`encrypt`) binds
the header only, and stays readable: the ledger is never re-encrypted.
"""

from __future__ import annotations

import re
from base64 import b64decode, b64encode
from binascii import Error as Base64Error
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import Cipher

if TYPE_CHECKING:
    from eventsourcing.utils import Environment

MAGIC = b"RKC\x01"
BOUND_MAGIC = b"RKC\x02"
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NONCE, _TAG = 12, 16


class UnknownCipherKey(ValueError):
    """An event names a key id that is not configured (it was removed too early)."""


class InvalidBlob(ValueError):
    """A blob does not authenticate under any configured key: altered or forged (or
    the key under its id is not the one that wrote it)."""


class BindingMismatch(InvalidBlob):
    """A bound blob does not authenticate under the binding it was given: it was
    written for another row, or altered, or the key under its id is not the one
    that wrote it."""


def parse_keys(cipher_keys: str) -> dict[str, bytes]:
    """Keys by id from `id:base64key,...`, oldest first: the last one is the
    current (encrypting) key."""
    keys: dict[str, bytes] = {}
    entries = filter(None, (e.strip() for e in cipher_keys.split(",")))
    for position, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not KEY_ID_PATTERN.fullmatch(key_id):
            # Named by position: a malformed entry may be nothing but key material.
            raise ValueError(
                f"CIPHER_KEYS entry {position} is not id:base64key with an id of "
                "1-32 characters of [A-Za-z0-9_-]"
            )
        if key_id in keys:
            raise ValueError(f"CIPHER_KEYS names key id {key_id!r} twice")
        keys[key_id] = _decode_key(key_id, encoded)
    return keys


def format_keys(keys: dict[str, bytes]) -> str:
    return ",".join(
        f"{key_id}:{b64encode(key).decode()}" for key_id, key in keys.items()
    )


def key_id_of(blob: bytes) -> str | None:
    """The key id a blob names, or None for a blob without a (well-formed) header."""
    header = _parse_header(blob) or _parse_header(blob, BOUND_MAGIC)
    return header[0] if header else None


def is_bound(blob: bytes) -> bool:
    """Whether a blob is of the bound format (written by `seal`)."""
    return _parse_header(blob, BOUND_MAGIC) is not None


def _decode_key(key_id: str, encoded: str) -> bytes:
    try:
        key = b64decode(encoded.strip(), validate=True)
    except Base64Error:
        raise ValueError(f"cipher key {key_id!r} is not valid base64") from None
    if len(key) not in AESCipher.KEY_SIZES:
        raise ValueError(f"cipher key {key_id!r} must be 16, 24 or 32 bytes")
    return key


def _parse_header(blob: bytes, magic: bytes = MAGIC) -> tuple[str, int] | None:
    """(key id, header length), if the blob starts with a well-formed header."""
    if not blob.startswith(magic) or len(blob) <= len(magic):
        return None
    id_length = blob[len(magic)]
    end = len(magic) + 1 + id_length
    if len(blob) < end + _NONCE + _TAG:
        return None
    try:
        key_id = blob[len(magic) + 1 : end].decode("ascii")
    except UnicodeDecodeError:
        return None
    if not KEY_ID_PATTERN.fullmatch(key_id):
        return None
    return key_id, end


def _open(aesgcm: AESGCM, body: bytes, associated: bytes) -> bytes:
    nonce, tag, encrypted = (
        body[:_NONCE],
        body[_NONCE : _NONCE + _TAG],
        body[_NONCE + _TAG :],
    )
    return aesgcm.decrypt(nonce, encrypted + tag, associated)


class RotatingCipher(Cipher):
    """Encrypts with the newest key of CIPHER_KEYS; decrypts with any configured key."""

    CIPHER_KEYS = "CIPHER_KEYS"

    def __init__(self, environment: Environment) -> None:
        keys = parse_keys(environment.get(self.CIPHER_KEYS) or "")
        if not keys:
            raise OSError(f"{self.CIPHER_KEYS!r} not in env")
        self._aesgcm = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = next(reversed(keys))
        encoded_id = self.current_key_id.encode("ascii")
        self._header = MAGIC + bytes([len(encoded_id)]) + encoded_id
        self._bound_header = BOUND_MAGIC + bytes([len(encoded_id)]) + encoded_id

    @property
    def key_ids(self) -> list[str]:
        return list(self._aesgcm)

    def encrypt(self, plaintext: bytes) -> bytes:
        """Format 1: the header alone is authenticated (the library's Mapper calls
        this; the ledger's own mapper seals)."""
        return self._encrypt(plaintext, self._header, self._header)

    def seal(self, plaintext: bytes, binding: bytes) -> bytes:
        """Format 2: the blob decrypts only with the same `binding` (`unseal`)."""
        header = self._bound_header
        return self._encrypt(plaintext, header, header + binding)

    def unseal(self, ciphertext: bytes, binding: bytes) -> bytes:
        """Decrypt a blob of either format; a bound one must match `binding`."""
        header = _parse_header(ciphertext, BOUND_MAGIC)
        if header is None:
            return self.decrypt(ciphertext)
        key_id, end = header
        try:
            return _open(
                self._key(key_id), ciphertext[end:], ciphertext[:end] + binding
            )
        except InvalidTag:
            raise BindingMismatch(
                f"Invalid cipher tag (key id {key_id!r}) under this event's binding: "
                "the blob was written for another stream id, version or topic, or "
                "altered"
            ) from None

    def decrypt(self, ciphertext: bytes) -> bytes:
        if is_bound(ciphertext):
            # Readable only through unseal: without its binding it proves nothing.
            raise BindingMismatch(
                "Invalid cipher tag: a bound blob needs its binding to be decrypted"
            )
        header = _parse_header(ciphertext)
        if header is None:
            if len(ciphertext) < _NONCE + _TAG:
                raise InvalidBlob("Damaged cipher text: too short")
            # The library's wording, which callers and tests already match on.
            raise InvalidBlob("Invalid cipher tag")
        key_id, end = header
        try:
            return _open(self._key(key_id), ciphertext[end:], ciphertext[:end])
        except InvalidTag:
            raise InvalidBlob(f"Invalid cipher tag (key id {key_id!r})") from None

    def _encrypt(self, plaintext: bytes, header: bytes, associated: bytes) -> bytes:
        nonce = AESCipher.random_bytes(_NONCE)
        sealed = self._aesgcm[self.current_key_id].encrypt(nonce, plaintext, associated)
        # Tag before ciphertext, as AESCipher writes it.
        return header + nonce + sealed[-_TAG:] + sealed[:-_TAG]

    def _key(self, key_id: str) -> AESGCM:
        aesgcm = self._aesgcm.get(key_id)
        if aesgcm is None:
            raise UnknownCipherKey(
                f"Unknown cipher key id {key_id!r}: it must stay in CIPHER_KEYS "
                f"while events encrypted with it exist (configured: {self.key_ids})"
            )
        return aesgcm
