"""core.age_stream against pyrage's encryption (the reference age CLI is driven in tests/interop)."""

from __future__ import annotations

import io
import os

import pyrage
import pytest
from pyrage import x25519

from core.age_stream import CHUNK, AgeError, decrypt_stream, encrypt_stream, identity_key, recipient_key


def _encrypt(data: bytes, *recipients: x25519.Recipient) -> bytes:
    out = io.BytesIO()
    pyrage.encrypt_io(io.BytesIO(data), out, list(recipients))
    return out.getvalue()


def _decrypt(blob: bytes, *identities: x25519.Identity) -> bytes:
    out = io.BytesIO()
    size = decrypt_stream(io.BytesIO(blob), out, [str(i) for i in identities])
    assert size == len(out.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    me = x25519.Identity.generate()
    data = os.urandom(size)
    assert _decrypt(_encrypt(data, me.to_public()), me) == data


def test_any_matching_identity_among_several_recipients() -> None:
    a, b, c = (x25519.Identity.generate() for _ in range(3))
    blob = _encrypt(b"hello", a.to_public(), b.to_public())
    assert _decrypt(blob, c, b) == b"hello"
    with pytest.raises(AgeError, match="no identity matched"):
        _decrypt(blob, c)


def test_tampering_is_refused_and_nothing_unauthenticated_is_written() -> None:
    me = x25519.Identity.generate()
    data = os.urandom(2 * CHUNK + 5)
    blob = bytearray(_encrypt(data, me.to_public()))
    header_end = blob.index(b"\n---") + 1
    flipped = bytearray(blob)
    flipped[-3] ^= 1  # the last chunk
    out = io.BytesIO()
    with pytest.raises(AgeError, match="chunk 2 fails authentication"):
        decrypt_stream(io.BytesIO(bytes(flipped)), out, [str(me)])
    assert len(out.getvalue()) == 2 * CHUNK  # the two authenticated chunks only
    with pytest.raises(AgeError):
        _decrypt(bytes(blob[: len(blob) - CHUNK]), me)  # cut at a chunk boundary: the last flag is missing
    mac = bytearray(blob)
    mac[header_end + 5] = ord("A") if mac[header_end + 5] != ord("A") else ord("B")
    with pytest.raises(AgeError, match=r"MAC|base64"):
        _decrypt(bytes(mac), me)
    with pytest.raises(AgeError, match="not an age v1 file"):
        _decrypt(b"not age at all\n", me)


def test_identity_parsing_checks_the_bech32_checksum() -> None:
    me = x25519.Identity.generate()
    key = identity_key(str(me))
    assert len(key.private_bytes_raw()) == 32
    text = str(me)
    broken = text[:-1] + ("Q" if text[-1] != "Q" else "P")
    with pytest.raises(AgeError, match="checksum"):
        identity_key(broken)
    with pytest.raises(AgeError):
        identity_key("age1notanidentity")


def test_passphrase_files_are_left_to_pyrage() -> None:
    blob = pyrage.passphrase.encrypt(b"x", "secret")
    with pytest.raises(AgeError, match="no identity matched"):
        _decrypt(blob, x25519.Identity.generate())


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 9])
def test_our_encryption_decrypts_with_pyrage_and_with_ours(size: int) -> None:
    a, b = x25519.Identity.generate(), x25519.Identity.generate()
    data = os.urandom(size)
    out = io.BytesIO()
    assert encrypt_stream(io.BytesIO(data), out, [str(a.to_public()), str(b.to_public())]) == size
    blob = out.getvalue()
    assert pyrage.decrypt(blob, [b]) == data
    assert _decrypt(blob, a) == data
    again = io.BytesIO()
    encrypt_stream(io.BytesIO(data), again, [str(a.to_public())])
    assert again.getvalue() != blob  # fresh file key and nonce every time


def test_recipient_parsing() -> None:
    me = x25519.Identity.generate()
    assert len(recipient_key(str(me.to_public())).public_bytes_raw()) == 32
    with pytest.raises(AgeError):
        recipient_key(str(me))  # an identity is not a recipient
    with pytest.raises(AgeError, match="at least one recipient"):
        encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), [])
