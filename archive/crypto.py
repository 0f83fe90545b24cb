"""Envelope encryption, Fernet-style: callers seal and open, never touch nonces, AAD or wrapping.

Key hierarchy::

    master key (version v, keyring)  --HKDF(tenant id)-->  tenant KEK_v
    tenant KEK_v  --AES-GCM wrap-->  per-conversation data key (random, 256-bit)
    data key      --AES-GCM-->       conversation payload

The associated data binds every ciphertext to its tenant and conversation id, so a ciphertext or
a wrapped key copied to another row (or another tenant) fails to decrypt instead of being read as
someone else's conversation. A random per-tenant secret, wrapped by the KEK, is the root of the
keys that must stay stable across master rotations: the identity-hash key and the blind-index key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from archive.keyring import KeySource

NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """The ciphertext does not belong here, was altered, or its key is gone."""


def hkdf(key: bytes, info: str, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info.encode()).derive(key)


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise DecryptionError("ciphertext does not verify for this tenant and conversation") from None


class Sealed:
    __slots__ = ("ciphertext", "wrapped_key", "master_version")

    def __init__(self, ciphertext: bytes, wrapped_key: bytes, master_version: int) -> None:
        self.ciphertext = ciphertext
        self.wrapped_key = wrapped_key
        self.master_version = master_version


class TenantCrypto:
    """Everything one tenant encrypts, decrypts or hashes goes through here."""

    def __init__(self, keyring: KeySource, tenant_id: UUID, wrapped_secret: bytes, secret_version: int) -> None:
        self._keyring = keyring
        self.tenant_id = tenant_id
        self._keks: dict[int, bytes] = {}
        secret = _decrypt(self._kek_bytes(secret_version), wrapped_secret, self._aad("tenant-secret", tenant_id))
        self._identity_key = hkdf(secret, "parley/identity-hash/v1")
        self.index_key = hkdf(secret, "parley/blind-index/v1")
        self._note_key = hkdf(secret, "parley/ledger-notes/v1")
        # Behaviour events are many and small: one key per tenant (derived, like the note key, so
        # it survives master rotations), its cipher built once — a collect seals every event.
        self._event_aead = AESGCM(hkdf(secret, "parley/behaviour-events/v1"))

    @staticmethod
    def new_tenant_secret(keyring: KeySource, tenant_id: UUID) -> tuple[bytes, int]:
        """A fresh random tenant secret, wrapped for storage in the tenant row."""
        active = keyring.active
        kek = hkdf(keyring.key(active), f"parley/kek/v1/{tenant_id}")
        return _encrypt(kek, secrets.token_bytes(KEY_BYTES), TenantCrypto._aad("tenant-secret", tenant_id)), active

    @staticmethod
    def _aad(kind: str, tenant_id: UUID, subject: UUID | None = None) -> bytes:
        return f"parley/{kind}/v1|{tenant_id}|{subject or ''}".encode()

    def _kek_bytes(self, version: int) -> bytes:
        if version not in self._keks:
            self._keks[version] = hkdf(self._keyring.key(version), f"parley/kek/v1/{self.tenant_id}")
        return self._keks[version]

    def seal(self, conversation_id: UUID, plaintext: bytes) -> Sealed:
        data_key = secrets.token_bytes(KEY_BYTES)
        ciphertext = _encrypt(data_key, plaintext, self._aad("conversation", self.tenant_id, conversation_id))
        # The active version is read once: a keyring reload between the wrap and the record
        # must not store a key under a version it was not wrapped with.
        version = self._keyring.active
        return Sealed(ciphertext, self.wrap_data_key(conversation_id, data_key, version), version)

    def open(self, conversation_id: UUID, ciphertext: bytes, wrapped_key: bytes, master_version: int) -> bytes:
        data_key = self.unwrap_data_key(conversation_id, wrapped_key, master_version)
        return _decrypt(data_key, ciphertext, self._aad("conversation", self.tenant_id, conversation_id))

    def seal_part(self, conversation_id: UUID, wrapped_key: bytes, master_version: int, part: str, plaintext: bytes) -> bytes:
        """More data under a conversation's existing data key — a later revision, an earlier
        one moved aside, an attachment file, a connector's pending draft — bound to ``part`` in
        the associated data, so pieces cannot be swapped. ``part=""`` is the conversation row
        itself (what ``open`` reads). Destroying the one key shreds every part."""
        data_key = self.unwrap_data_key(conversation_id, wrapped_key, master_version)
        return _encrypt(data_key, plaintext, self._part_aad(conversation_id, part))

    def open_part(self, conversation_id: UUID, wrapped_key: bytes, master_version: int, part: str, ciphertext: bytes) -> bytes:
        data_key = self.unwrap_data_key(conversation_id, wrapped_key, master_version)
        return _decrypt(data_key, ciphertext, self._part_aad(conversation_id, part))

    def _part_aad(self, conversation_id: UUID, part: str) -> bytes:
        aad = self._aad("conversation", self.tenant_id, conversation_id)
        return aad + b"|part|" + part.encode() if part else aad

    def wrap_data_key(self, conversation_id: UUID, data_key: bytes, version: int | None = None) -> bytes:
        version = self._keyring.active if version is None else version
        return _encrypt(self._kek_bytes(version), data_key, self._aad("data-key", self.tenant_id, conversation_id))

    def unwrap_data_key(self, conversation_id: UUID, wrapped_key: bytes, master_version: int) -> bytes:
        return _decrypt(self._kek_bytes(master_version), wrapped_key, self._aad("data-key", self.tenant_id, conversation_id))

    def rewrap_tenant_secret(self, wrapped_secret: bytes, secret_version: int) -> tuple[bytes, int]:
        secret = _decrypt(self._kek_bytes(secret_version), wrapped_secret, self._aad("tenant-secret", self.tenant_id))
        active = self._keyring.active
        return _encrypt(self._kek_bytes(active), secret, self._aad("tenant-secret", self.tenant_id)), active

    def seal_stream(self, subject_id: UUID, out: Any) -> SealingWriter:
        """A writer that encrypts everything written to it into ``out`` (see SealingWriter)."""
        data_key = secrets.token_bytes(KEY_BYTES)
        version = self._keyring.active
        header = _stream_header(version, self.wrap_data_key(subject_id, data_key, version))
        return SealingWriter(out, data_key, self._aad("stream", self.tenant_id, subject_id), header)

    def open_stream(self, subject_id: UUID, source: Any) -> Iterator[bytes]:
        """The plaintext of a file written by ``seal_stream``, in chunks; DecryptionError on any change."""
        version, wrapped, chunk = read_stream_header(source)
        data_key = self.unwrap_data_key(subject_id, wrapped, version)
        return open_stream_chunks(source, data_key, self._aad("stream", self.tenant_id, subject_id), chunk)

    def stream_version(self, path: Path) -> int:
        """The master version a sealed file's data key is wrapped under (reads the header only)."""
        with open(path, "rb") as source:
            return read_stream_header(source)[0]

    def rewrap_stream_file(self, subject_id: UUID, path: Path) -> bool:
        """Re-wrap a sealed file's data key under the active master version (master rotation).
        Only the header line changes; the file is replaced atomically. False if already current."""
        active = self._keyring.active
        with open(path, "rb") as source:
            version, wrapped, chunk = read_stream_header(source)
            if version == active:
                return False
            data_key = self.unwrap_data_key(subject_id, wrapped, version)
            header = _stream_header(active, self.wrap_data_key(subject_id, data_key, active), chunk)
            tmp = path.with_name(path.name + ".rewrap")
            with open(tmp, "wb") as target:
                target.write(header + b"\n")
                shutil.copyfileobj(source, target)
                target.flush()
                os.fsync(target.fileno())
        os.replace(tmp, path)
        return True

    def seal_note(self, plaintext: bytes) -> str:
        """Small tenant-scoped secrets kept in the ledger (search terms): base64 AES-GCM under a
        key derived from the tenant secret, so they survive master rotations."""
        return base64.b64encode(_encrypt(self._note_key, plaintext, self._aad("note", self.tenant_id))).decode()

    def open_note(self, sealed: str) -> bytes:
        return _decrypt(self._note_key, base64.b64decode(sealed), self._aad("note", self.tenant_id))

    def seal_event(self, subject: str, plaintext: bytes) -> bytes:
        """A behaviour event's payload (or a visitor's engine memory), bound to ``subject`` (the
        visitor hash) so a payload copied to another visitor's row does not open."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._event_aead.encrypt(nonce, plaintext, self._aad("event", self.tenant_id) + subject.encode())

    def open_event(self, subject: str, sealed: bytes) -> bytes:
        try:
            return self._event_aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._aad("event", self.tenant_id) + subject.encode())
        except (InvalidTag, ValueError):
            raise DecryptionError("event payload failed authentication") from None

    def identity_hash(self, value: str) -> str:
        """Keyed hash of an identifier (visitor id, e-mail) so filters and erasure work without it."""
        return hmac.new(self._identity_key, value.encode(), hashlib.sha256).hexdigest()

    def mac(self, data: bytes) -> str:
        return hmac.new(self._identity_key, b"submission|" + data, hashlib.sha256).hexdigest()


# --- signing keys (ledger checkpoints, exports) -----------------------------------------------
# Signing keys are Ed25519 keys of their own with a versioned history (archive/signing.py); the
# master key only wraps their private halves and attests their records, so retiring a master
# version never makes a past signature unverifiable.


def legacy_signing_key(master_key: bytes) -> Ed25519PrivateKey:
    """The key that signed before signing keys had a history: derived from a master version.
    Only used to record its public half while that master version still exists."""
    return Ed25519PrivateKey.from_private_bytes(hkdf(master_key, "parley/ledger-signing/v1"))


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _signing_aad(version: int) -> bytes:
    return f"parley/signing-key/v1|{version}".encode()


def wrap_signing_key(master_key: bytes, version: int, key: Ed25519PrivateKey) -> bytes:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return _encrypt(hkdf(master_key, "parley/signing-key-wrap/v1"), raw, _signing_aad(version))


def unwrap_signing_key(master_key: bytes, version: int, wrapped: bytes) -> Ed25519PrivateKey:
    raw = _decrypt(hkdf(master_key, "parley/signing-key-wrap/v1"), wrapped, _signing_aad(version))
    return Ed25519PrivateKey.from_private_bytes(raw)


def attest(master_key: bytes, record: bytes) -> str:
    """HMAC-SHA256 of a key record under a master-derived key (who may add signing keys)."""
    return hmac.new(hkdf(master_key, "parley/signing-key-attestation/v1"), record, hashlib.sha256).hexdigest()


def attestation_ok(master_key: bytes, record: bytes, attestation: str) -> bool:
    return hmac.compare_digest(attest(master_key, record), attestation)


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- streamed sealing (exports and other large files) ----------------------------------------

STREAM_CHUNK = 64 * 1024
_STREAM_MAGIC = b"parley-sealed-stream/v1"


class SealingWriter:
    """A write-only file object that encrypts as it goes, for files too large to hold in memory.

    The STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár): the plaintext is cut into
    fixed-size chunks, each sealed with AES-GCM under one data key and a nonce made of a random
    prefix, the chunk's counter and a last-chunk flag. Reordering, dropping or truncating chunks
    therefore fails to decrypt, like tampering with one. The header line carries the wrapped data
    key, so the file is opened like a conversation: with the tenant's keys, never alone.
    """

    def __init__(self, out: Any, data_key: bytes, aad: bytes, header: bytes) -> None:
        self._out = out
        self._aead = AESGCM(data_key)
        self._aad = aad
        self._prefix = secrets.token_bytes(7)
        self._buffer = bytearray()
        self._counter = 0
        self._written = 0
        self._digest = hashlib.sha256()
        self.closed = False
        out.write(header + b"\n" + self._prefix)

    def _nonce(self, last: bool) -> bytes:
        return self._prefix + self._counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._written += len(data)
        self._digest.update(data)
        while len(self._buffer) > STREAM_CHUNK:  # keep at least one byte back for the last chunk
            self._seal(bytes(self._buffer[:STREAM_CHUNK]), last=False)
            del self._buffer[:STREAM_CHUNK]
        return len(data)

    def _seal(self, chunk: bytes, last: bool) -> None:
        self._out.write(self._aead.encrypt(self._nonce(last), chunk, self._aad))
        self._counter += 1

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()
            self.closed = True

    @property
    def sha256(self) -> str:
        """SHA-256 of the plaintext written so far."""
        return self._digest.hexdigest()


def _stream_header(master_version: int, wrapped_key: bytes, chunk: int = STREAM_CHUNK) -> bytes:
    return json.dumps({"format": _STREAM_MAGIC.decode(), "v": master_version, "k": wrapped_key.hex(), "chunk": chunk}).encode()


def read_stream_header(source: Any) -> tuple[int, bytes, int]:
    """(master version, wrapped data key, chunk size) from a sealed file's first line."""
    try:
        meta = json.loads(source.readline())
        if meta.get("format") != _STREAM_MAGIC.decode():
            raise ValueError("not a sealed stream")
        return int(meta["v"]), bytes.fromhex(meta["k"]), int(meta["chunk"])
    except (ValueError, KeyError, TypeError):
        raise DecryptionError("the file is not a Parley sealed stream") from None


def open_stream_chunks(source: Any, data_key: bytes, aad: bytes, chunk: int, batch: int = 16) -> Iterator[bytes]:
    """Plaintext of a sealed stream (after its header), ``batch`` chunks at a time."""
    aead = AESGCM(data_key)
    prefix = source.read(7)
    counter = 0
    sealed_size = chunk + 16
    pending = source.read(sealed_size)
    out = bytearray()
    while True:
        following = source.read(sealed_size)
        last = not following
        nonce = prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        try:
            out += aead.decrypt(nonce, pending, aad)
        except (InvalidTag, ValueError):
            raise DecryptionError("the sealed file was altered or truncated") from None
        counter += 1
        if last or counter % batch == 0:
            yield bytes(out)
            out.clear()
        if last:
            return
        pending = following
