"""RotatingCipher: key ids in every blob, old keys readable, tampering detected."""

from __future__ import annotations

from base64 import b64encode

import pytest
from eventsourcing.utils import Environment

from ledger.cipher import (
    MAGIC,
    InvalidBlob,
    RotatingCipher,
    UnknownCipherKey,
    format_keys,
    key_id_of,
    parse_keys,
)

KEY_A = b64encode(b"A" * 32).decode()
KEY_B = b64encode(b"B" * 32).decode()
KEY_C = b64encode(b"C" * 16).decode()
PLAINTEXT = b'{"number": "4242424242424242"}'


def cipher(**env: str) -> RotatingCipher:
    return RotatingCipher(Environment("payouts", env))


def test_a_blob_round_trips_and_hides_the_plaintext() -> None:
    # given
    rotating = cipher(CIPHER_KEYS=f"a:{KEY_A}")
    # when
    blob = rotating.encrypt(PLAINTEXT)
    # then
    assert rotating.decrypt(blob) == PLAINTEXT
    assert b"4242424242424242" not in blob
    assert blob.startswith(MAGIC)


def test_new_blobs_name_the_last_key() -> None:
    # given
    rotating = cipher(CIPHER_KEYS=f"a:{KEY_A}, b:{KEY_B}")
    # when
    blob = rotating.encrypt(PLAINTEXT)
    # then
    assert rotating.current_key_id == "b"
    assert key_id_of(blob) == "b"
    assert cipher(CIPHER_KEYS=f"b:{KEY_B}").decrypt(blob) == PLAINTEXT


def test_blobs_of_an_older_key_stay_readable_after_rotation() -> None:
    # given
    old_blob = cipher(CIPHER_KEYS=f"a:{KEY_A}").encrypt(PLAINTEXT)
    # when
    rotated = cipher(CIPHER_KEYS=f"a:{KEY_A},b:{KEY_B},c:{KEY_C}")
    # then
    assert key_id_of(old_blob) == "a"
    assert rotated.decrypt(old_blob) == PLAINTEXT


def test_an_unknown_key_id_is_named_in_the_error() -> None:
    # given
    blob = cipher(CIPHER_KEYS=f"a:{KEY_A},new-key_2:{KEY_B}").encrypt(PLAINTEXT)
    # when
    with pytest.raises(UnknownCipherKey, match="'new-key_2'") as error:
        cipher(CIPHER_KEYS=f"a:{KEY_A}").decrypt(blob)
    # then
    assert "4242" not in str(error.value)


# The blob of key id "a": header 0-5, nonce 6-17, tag 18-33, ciphertext from 34.
@pytest.mark.parametrize(
    "position", [5, 8, 20, -1], ids=["key id", "nonce", "tag", "ciphertext"]
)
def test_a_tampered_blob_fails(position: int) -> None:
    # given
    rotating = cipher(CIPHER_KEYS=f"a:{KEY_A}")
    blob = bytearray(rotating.encrypt(PLAINTEXT))
    blob[position] ^= 0x01
    # then
    with pytest.raises(ValueError, match="cipher tag"):
        rotating.decrypt(bytes(blob))


def test_a_blob_relabelled_with_another_key_id_fails() -> None:
    # given: the same key under two ids, so only the header binding can tell
    rotating = cipher(CIPHER_KEYS=f"a:{KEY_A},b:{KEY_A}")
    blob = rotating.encrypt(PLAINTEXT)
    relabelled = blob.replace(MAGIC + b"\x01b", MAGIC + b"\x01a", 1)
    # then
    with pytest.raises(ValueError, match="cipher tag"):
        rotating.decrypt(relabelled)


def test_a_wrong_key_under_the_right_id_fails() -> None:
    blob = cipher(CIPHER_KEYS=f"a:{KEY_A}").encrypt(PLAINTEXT)
    with pytest.raises(ValueError, match=r"cipher tag \(key id 'a'\)"):
        cipher(CIPHER_KEYS=f"a:{KEY_B}").decrypt(blob)


def test_a_blob_without_a_key_id_header_is_refused() -> None:
    # given: AES-GCM under a configured key, but no header naming the key
    rotating = cipher(CIPHER_KEYS=f"a:{KEY_A}")
    headerless = rotating.encrypt(PLAINTEXT)[len(MAGIC) + 2 :]
    # then
    with pytest.raises(InvalidBlob, match="Invalid cipher tag"):
        rotating.decrypt(headerless)


def test_the_prefixed_variable_wins_as_everywhere_in_the_library() -> None:
    rotating = cipher(CIPHER_KEYS=f"a:{KEY_A}", PAYOUTS_CIPHER_KEYS=f"p:{KEY_B}")
    assert rotating.key_ids == ["p"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "'CIPHER_KEYS' not in env"),
        ({"CIPHER_KEYS": ""}, "'CIPHER_KEYS' not in env"),
        ({"CIPHER_KEYS": " , "}, "'CIPHER_KEYS' not in env"),
        ({"CIPHER_KEYS": KEY_A}, "id:base64key"),
        ({"CIPHER_KEYS": f"a:{KEY_B},bad id:{KEY_A}"}, "entry 2 is not"),
        ({"CIPHER_KEYS": f"a:{KEY_A},a:{KEY_B}"}, "'a' twice"),
        ({"CIPHER_KEYS": "a:not-base64!"}, "'a' is not valid base64"),
        ({"CIPHER_KEYS": f"a:{b64encode(b'short').decode()}"}, "16, 24 or 32"),
    ],
)
def test_bad_configuration_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises((OSError, ValueError), match=message) as error:
        cipher(**env)
    assert KEY_A not in str(error.value)


def test_keys_format_back_to_what_they_were_parsed_from() -> None:
    value = f"a:{KEY_A},k1:{KEY_B}"
    assert format_keys(parse_keys(value)) == value
