"""The checkpoint chain on its own: numbered, linked, signed; checked with the public
key alone. No database: the checkpoints are built in memory."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured

from projections.checkpoints import (
    GENESIS_DIGEST,
    ChainError,
    check_anchors,
    check_chain,
    check_fresh,
    message,
    parse_anchor,
    public_keys,
    read_anchors,
    seal,
    signing_key,
)
from projections.models import LedgerCheckpoint
from projections.signing import (
    SigningKeyError,
    encode_public_key,
    load_signing_key,
    public_key_pem,
    write_signing_key,
)

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build_chain(key: Ed25519PrivateKey, length: int = 3) -> list[LedgerCheckpoint]:
    chain: list[LedgerCheckpoint] = []
    for n in range(length):
        checkpoint = LedgerCheckpoint(
            position=10 * (n + 1),
            streams=n + 1,
            events=3 * (n + 1),
            digest=hashlib.sha256(f"heads {n}".encode()).hexdigest(),
            heads=b"",
            created_at=T0 + timedelta(minutes=15 * n),
        )
        seal(checkpoint, chain[-1] if chain else None, key)
        chain.append(checkpoint)
    return chain


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def keys(key: Ed25519PrivateKey) -> dict[str, object]:
    return public_keys(encode_public_key(key.public_key()))


def test_a_sealed_chain_is_numbered_from_one_and_linked(
    key: Ed25519PrivateKey, keys: dict[str, object]
) -> None:
    # when
    chain = build_chain(key)
    # then
    assert [c.sequence for c in chain] == [1, 2, 3]
    assert chain[0].previous_digest == GENESIS_DIGEST
    assert [c.previous_digest for c in chain[1:]] == [
        c.checkpoint_digest for c in chain[:-1]
    ]
    check_chain(chain, keys)  # type: ignore[arg-type]


def test_the_digest_covers_sequence_position_counts_heads_link_and_time(
    key: Ed25519PrivateKey,
) -> None:
    checkpoint = build_chain(key, 1)[0]
    text = message(checkpoint).decode()
    for part in (
        "sequence=1",
        "position=10",
        "streams=1",
        "events=3",
        f"heads={checkpoint.digest}",
        f"previous={GENESIS_DIGEST}",
        "taken_at=2026-01-01T00:00:00.000000+00:00",
    ):
        assert part in text


def test_a_forged_signature_is_caught(
    key: Ed25519PrivateKey, keys: dict[str, object]
) -> None:
    # given: checkpoint #2 signed by a key that is not the checkpointer's
    chain = build_chain(key)
    chain[1].signature = Ed25519PrivateKey.generate().sign(message(chain[1])).hex()
    # then
    with pytest.raises(ChainError, match="checkpoint #2 has a bad signature"):
        check_chain(chain, keys)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("position", 11), ("events", 99), ("created_at", T0 + timedelta(days=1))],
)
def test_an_altered_checkpoint_no_longer_matches_its_digest(
    key: Ed25519PrivateKey, keys: dict[str, object], field: str, value: object
) -> None:
    chain = build_chain(key)
    setattr(chain[1], field, value)
    with pytest.raises(ChainError, match="checkpoint #2 no longer matches its digest"):
        check_chain(chain, keys)  # type: ignore[arg-type]


def test_reordered_checkpoints_are_caught_even_with_digests_recomputed(
    key: Ed25519PrivateKey, keys: dict[str, object]
) -> None:
    # given: #2 and #3 swap numbers; the intruder recomputes the digests (sha256
    # needs no key) but cannot sign them
    chain = build_chain(key)
    second, third = chain[1], chain[2]
    second.sequence, third.sequence = 3, 2
    for checkpoint in (second, third):
        checkpoint.checkpoint_digest = hashlib.sha256(message(checkpoint)).hexdigest()
    # then
    with pytest.raises(ChainError, match="checkpoint #2 has a bad signature"):
        check_chain([chain[0], third, second], keys)  # type: ignore[arg-type]


def test_a_removed_checkpoint_leaves_a_gap(
    key: Ed25519PrivateKey, keys: dict[str, object]
) -> None:
    chain = build_chain(key, 4)
    with pytest.raises(ChainError, match=r"#2 to #3 missing between #1 and #4"):
        check_chain([chain[0], chain[3]], keys)  # type: ignore[arg-type]


def test_a_chain_whose_first_checkpoints_were_removed_is_caught(
    key: Ed25519PrivateKey, keys: dict[str, object]
) -> None:
    chain = build_chain(key)
    with pytest.raises(ChainError, match="#1 missing between the start and #2"):
        check_chain(chain[1:], keys)  # type: ignore[arg-type]


def test_a_checkpoint_from_another_chain_does_not_link(
    key: Ed25519PrivateKey, keys: dict[str, object]
) -> None:
    # given: a genuine #2, signed by the same key, from a chain the store no longer has
    ours, theirs = build_chain(key, 2), build_chain(key, 2)
    theirs[0].digest = "f" * 64
    seal(theirs[0], None, key)
    seal(theirs[1], theirs[0], key)
    # then
    with pytest.raises(ChainError, match="checkpoint #2 does not link to #1"):
        check_chain([ours[0], theirs[1]], keys)  # type: ignore[arg-type]


def test_the_public_key_alone_verifies_as_pem_or_base64(
    key: Ed25519PrivateKey,
) -> None:
    chain = build_chain(key)
    for text in (public_key_pem(key.public_key()), encode_public_key(key.public_key())):
        check_chain(chain, public_keys(text))


def test_a_rotated_key_verifies_the_checkpoints_it_signed(
    key: Ed25519PrivateKey,
) -> None:
    # given: #1-#2 under the old key, #3 under the new one, both keys listed
    new = Ed25519PrivateKey.generate()
    chain = build_chain(key, 2)
    third = build_chain(key, 3)[2]
    seal(third, chain[1], new)
    listed = ",".join(encode_public_key(k.public_key()) for k in (new, key))
    # then
    check_chain([*chain, third], public_keys(listed))
    with pytest.raises(ChainError, match="checkpoint #3 is signed by key"):
        check_chain([*chain, third], public_keys(encode_public_key(key.public_key())))


def test_checkpoints_without_any_public_key_cannot_be_verified(
    key: Ed25519PrivateKey,
) -> None:
    with pytest.raises(ImproperlyConfigured, match="no public key"):
        check_chain(build_chain(key), {})


def test_an_anchor_must_still_be_in_the_chain(key: Ed25519PrivateKey) -> None:
    chain = build_chain(key)
    check_anchors(chain, [(2, chain[1].checkpoint_digest)])
    with pytest.raises(ChainError, match=r"anchored checkpoint #4 is missing"):
        check_anchors(chain, [(4, "a" * 64)])
    with pytest.raises(ChainError, match="checkpoint #2 differs from its anchor"):
        check_anchors(chain, [(2, "a" * 64)])


def test_the_newest_checkpoint_must_be_recent(key: Ed25519PrivateKey) -> None:
    newest = build_chain(key)[-1]
    check_fresh(newest, None, now=newest.created_at + timedelta(seconds=60), max_age=60)
    with pytest.raises(ChainError, match="the checkpoint chain ends at #3"):
        check_fresh(
            newest, None, now=newest.created_at + timedelta(seconds=61), max_age=60
        )


def test_events_with_no_checkpoint_are_allowed_only_while_young() -> None:
    check_fresh(None, None, now=T0, max_age=60)
    check_fresh(None, T0, now=T0 + timedelta(seconds=60), max_age=60)
    with pytest.raises(ChainError, match="no checkpoint, yet events exist since"):
        check_fresh(None, T0, now=T0 + timedelta(seconds=61), max_age=60)


def test_anchors_are_read_from_the_checkpointers_log_lines(
    key: Ed25519PrivateKey,
) -> None:
    chain = build_chain(key, 2)
    lines = [
        "# published 2026-01-01",
        f"1:{chain[0].checkpoint_digest} position=10 taken_at=2026-01-01T00:00:00",
        f"2:{chain[1].checkpoint_digest.upper()}",
    ]
    assert read_anchors(lines) == [
        (1, chain[0].checkpoint_digest),
        (2, chain[1].checkpoint_digest),
    ]


@pytest.mark.parametrize("text", ["2", "x:" + "a" * 64, "2:abc", "2:" + "z" * 64])
def test_a_malformed_anchor_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_anchor(text)


def test_a_signing_key_is_written_for_its_owner_alone_and_never_replaced(
    tmp_path: Path,
) -> None:
    # given
    path = tmp_path / "key.pem"
    public = write_signing_key(path)
    # then
    assert path.stat().st_mode & 0o777 == 0o600
    assert encode_public_key(load_signing_key(path).public_key()) == public
    with pytest.raises(FileExistsError):
        write_signing_key(path)


def test_a_signing_key_open_to_other_users_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="open to other users"):
        load_signing_key(path)


def test_a_process_not_given_the_key_path_refuses_to_sign(settings: object) -> None:
    # given: what the web, worker, followers and beat processes see
    settings.CHECKPOINT_SIGNING_KEY_FILE = ""  # type: ignore[attr-defined]
    # then
    with pytest.raises(ImproperlyConfigured, match="may not sign checkpoints"):
        signing_key()
