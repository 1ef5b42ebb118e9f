"""Streaming age encryption and decryption for X25519 recipients (the age v1 format, https://c2sp.org/age).

pyrage moves 8 KiB at a time and runs at 0.6-0.8 of the age CLI's speed, so bundle payloads are encrypted
and decrypted here, with ``cryptography``'s X25519, HKDF-SHA-256, HMAC-SHA-256 and ChaCha20-Poly1305 over
whole 64 KiB chunks. The output is plain age: the reference CLI decrypts it and we decrypt the CLI's
(tests/interop/test_mirror_age.py); ``stella verify --identity`` and ``stella mirror import --identity``
both read identity files with :func:`read_identities` and decrypt with :func:`decrypt_stream`. Passphrase
(scrypt) files still go through pyrage.

Format, as the specification gives it:

* header: ``age-encryption.org/v1``, then stanzas ``-> TYPE ARGS`` each followed by its body in unpadded
  base64 wrapped at 64 columns (the last line shorter than 64, possibly empty), then ``--- MAC``;
* an X25519 stanza's argument is the sender's ephemeral share; ``HKDF(shared secret, salt = share ||
  recipient, info = "age-encryption.org/v1/X25519")`` is the key that ChaCha20-Poly1305 (zero nonce) used to
  wrap the 16-byte file key;
* the MAC is HMAC-SHA-256 under ``HKDF(file key, info = "header")`` of the header through ``---``;
* the payload is a 16-byte nonce, then chunks of 64 KiB plaintext sealed with ChaCha20-Poly1305 under
  ``HKDF(file key, salt = nonce, info = "payload")``, each nonce an 11-byte big-endian counter and a last-chunk
  flag byte.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from typing import IO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.errors import UsageError

VERSION_LINE = b"age-encryption.org/v1"
CHUNK = 64 * 1024
TAG = 16
_MAX_HEADER = 1 << 20
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_IDENTITY_HRP = "age-secret-key-"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...
    def readline(self, limit: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class AgeError(Exception):
    """The file is not age, no identity opens it, or its header or payload fails authentication."""


_RECIPIENT_HRP = "age"


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _bech32(text: str, hrp: str, what: str) -> bytes:
    """The 32-byte payload of a Bech32 string (BIP 173) with human-readable part ``hrp``."""
    lowered = text.strip().lower()
    got, sep, data = lowered.rpartition("1")
    if not sep or got != hrp or len(data) < 6 or any(c not in _BECH32 for c in data):
        raise AgeError(f"not an age {what}")
    values = [_BECH32.index(c) for c in data]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _polymod(expanded + values) != 1:
        raise AgeError(f"age {what} checksum is wrong")
    acc, bits, out = 0, 0, bytearray()
    for v in values[:-6]:
        acc = (acc << 5) | v
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or (acc << (8 - bits)) & 0xFF or len(out) != 32:
        raise AgeError(f"age {what} has the wrong length or padding")
    return bytes(out)


def identity_key(text: str) -> X25519PrivateKey:
    """The X25519 private key of an ``AGE-SECRET-KEY-1...`` identity."""
    return X25519PrivateKey.from_private_bytes(_bech32(text, _IDENTITY_HRP, "X25519 identity (AGE-SECRET-KEY-1...)"))


def read_identities(path: Path) -> list[str]:
    """The X25519 identities of an age identity file (one ``AGE-SECRET-KEY-1...`` per line, ``#`` comments), as
    :func:`decrypt_stream` takes them; an unreadable or malformed file is a :class:`~core.errors.UsageError`."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read identity file: {exc.strerror}", path=str(path)) from None
    out = []
    for n, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identity_key(line)
        except (AgeError, ValueError):
            raise UsageError(f"line {n} is not an age X25519 identity", path=str(path)) from None
        out.append(line)
    if not out:
        raise UsageError("no identity in the file", path=str(path))
    return out


def recipient_key(text: str) -> X25519PublicKey:
    """The X25519 public key of an ``age1...`` recipient."""
    return X25519PublicKey.from_public_bytes(_bech32(text, _RECIPIENT_HRP, "X25519 recipient (age1...)"))


def _read_full(src: Readable | IO[bytes], n: int) -> bytes:
    """``n`` bytes, fewer only at the end of ``src`` (pipes and readers may return short reads)."""
    data = src.read(n)
    while data and len(data) < n:
        more = src.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _b64_encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def encrypt_stream(src: IO[bytes], dst: Writable, recipients: Sequence[str]) -> int:
    """Encrypt ``src`` into ``dst`` as an age file for the X25519 ``recipients``; returns the plaintext size.

    A fresh file key, a fresh ephemeral share per recipient and a fresh payload nonce each time: ciphertexts
    of the same plaintext differ, as age's do.
    """
    keys = [recipient_key(r) for r in recipients]
    if not keys:
        raise AgeError("age encryption needs at least one recipient")
    file_key = os.urandom(16)
    header = bytearray(VERSION_LINE + b"\n")
    for key in keys:
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        theirs = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        wrap = _hkdf(ephemeral.exchange(key), share + theirs, b"age-encryption.org/v1/X25519")
        body = ChaCha20Poly1305(wrap).encrypt(bytes(12), file_key, None)
        header += b"-> X25519 " + _b64_encode(share) + b"\n" + _b64_encode(body) + b"\n"  # 43 columns: one line
    header += b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), bytes(header), sha256).digest()
    dst.write(bytes(header) + b" " + _b64_encode(mac) + b"\n")
    nonce = os.urandom(16)
    dst.write(nonce)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    size = 0
    counter = 0
    chunk = _read_full(src, CHUNK)
    while True:
        following = _read_full(src, CHUNK) if len(chunk) == CHUNK else b""
        last = not following
        dst.write(aead.encrypt(counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), chunk, None))
        size += len(chunk)
        if last:
            return size
        counter += 1
        chunk = following


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64(text: bytes) -> bytes:
    if b"=" in text or b"\r" in text:
        raise AgeError("age header has padded or non-canonical base64")
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise AgeError("age header has invalid base64") from None


def _read_line(src: Readable, header: bytearray) -> bytes:
    line = src.readline(_MAX_HEADER)
    if not line.endswith(b"\n"):
        raise AgeError("age header is truncated")
    header += line
    if len(header) > _MAX_HEADER:
        raise AgeError("age header is too large")
    return line[:-1]


def _file_key(src: Readable, keys: Sequence[X25519PrivateKey]) -> tuple[bytes, bytes, bytes]:
    """(file key, header bytes through ``---``, header MAC) from the header at the start of ``src``."""
    header = bytearray()
    if _read_line(src, header) != VERSION_LINE:
        raise AgeError("not an age v1 file")
    stanzas: list[tuple[list[bytes], bytes]] = []
    line = _read_line(src, header)
    while line.startswith(b"-> "):
        args = line[3:].split(b" ")
        wrapped = bytearray()
        while True:
            part = _read_line(src, header)
            wrapped += _b64(part)
            if len(part) < 64:
                break
        stanzas.append((args, bytes(wrapped)))
        line = _read_line(src, header)
    if not line.startswith(b"--- "):
        raise AgeError("age header lacks its MAC line")
    mac = _b64(line[4:])
    signed = bytes(header[: len(header) - len(line) - 1]) + b"---"
    for args, body in stanzas:
        if args[0] != b"X25519" or len(args) != 2:
            continue
        share = _b64(args[1])
        if len(share) != 32 or len(body) != 32:
            raise AgeError("malformed X25519 stanza")
        for key in keys:
            shared = key.exchange(X25519PublicKey.from_public_bytes(share))
            if shared == bytes(32):
                raise AgeError("X25519 stanza has a low-order share")
            ours = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            wrap = _hkdf(shared, share + ours, b"age-encryption.org/v1/X25519")
            try:
                return ChaCha20Poly1305(wrap).decrypt(bytes(12), body, None), signed, mac
            except InvalidTag:
                continue
    raise AgeError("no identity matched any of the file's recipients")


def decrypt_stream(src: Readable, dst: Writable, identities: Sequence[str]) -> int:
    """Decrypt the age file ``src`` into ``dst`` with X25519 ``identities``; returns the plaintext size.

    Nothing unauthenticated is written: each chunk is checked before it goes out, and a file cut short, a
    reordered or altered chunk, or a wrong header MAC raises :class:`AgeError`.
    """
    keys = [identity_key(i) for i in identities]
    file_key, signed, mac = _file_key(src, keys)
    expected = hmac.new(_hkdf(file_key, b"", b"header"), signed, sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise AgeError("age header MAC does not verify")
    nonce = _read_full(src, 16)
    if len(nonce) != 16:
        raise AgeError("age payload is truncated (no nonce)")
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    size = 0
    counter = 0
    chunk = _read_full(src, CHUNK + TAG)
    while True:
        following = _read_full(src, CHUNK + TAG) if len(chunk) == CHUNK + TAG else b""
        last = not following
        if len(chunk) < TAG or (last and len(chunk) == TAG and counter > 0):
            raise AgeError("age payload is truncated or has an empty final chunk")
        if counter >= 1 << 88:
            raise AgeError("age payload has too many chunks")
        try:
            plain = aead.decrypt(counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00"), chunk, None)
        except InvalidTag:
            raise AgeError(f"age payload chunk {counter} fails authentication") from None
        dst.write(plain)
        size += len(plain)
        if last:
            return size
        counter += 1
        chunk = following
