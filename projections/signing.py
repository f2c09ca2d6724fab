"""Ed25519 keys for ledger checkpoints. No Django here: scripts/init_env.py and the
test settings create keys with it before Django is set up."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

if TYPE_CHECKING:
    from pathlib import Path


class SigningKeyError(ValueError):
    """A key that cannot be used: absent, unreadable, malformed or too exposed."""


def write_signing_key(path: Path) -> str:
    """A new private key at `path` (PEM, readable by its owner alone, never replaced);
    returns its public key as CHECKPOINT_PUBLIC_KEY spells it."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: an existing key is never overwritten; 0600 from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return encode_public_key(key.public_key())


def ensure_signing_key(path: Path) -> tuple[str, bool]:
    """The public key of the private key at `path`, created first if there is none;
    and whether it was created."""
    if path.exists():
        return encode_public_key(load_signing_key(path).public_key()), False
    return write_signing_key(path), True


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc}") from None
    # Group read is left to the deployer (systemd credentials may be 0440).
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise SigningKeyError(
            f"the signing key {path} is open to other users "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} holds no usable private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    return key


def encode_public_key(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def parse_public_keys(text: str) -> list[Ed25519PublicKey]:
    """PEM blocks, or base64 raw keys separated by commas, spaces or new lines."""
    if "-----BEGIN" in text:
        blocks = [
            "-----BEGIN" + block
            for block in text.split("-----BEGIN")[1:]
            if block.strip()
        ]
        keys = []
        for block in blocks:
            try:
                key = serialization.load_pem_public_key(block.encode())
            except ValueError as exc:
                raise SigningKeyError(f"not a public key: {exc}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise SigningKeyError("not an Ed25519 public key")
            keys.append(key)
        return keys
    keys = []
    for item in text.replace(",", " ").split():
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(base64.b64decode(item)))
        except ValueError:
            raise SigningKeyError(
                f"{item[:12]}… is not a base64 Ed25519 public key"
            ) from None
    return keys


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def is_valid(key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
