"""The versioned master keyring and where it comes from.

Sources, in order: ``PARLEY_MASTER_KEY`` (``BASE64`` or ``1:BASE64,2:BASE64``), a key provider
plugged in by the deployment (the ``KeyProvider`` protocol is the seam where a KMS fits), or a
key file created on first run in the data directory (mode 0600). The file is fine for a laptop
and for the demo; production should use a managed key, and start-up says so.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from pathlib import Path
from typing import Callable, Protocol

import msgspec
import structlog

from archive.errors import Unavailable

log = structlog.get_logger(__name__)

KEY_BYTES = 32
KEY_FILE_NAME = "master.keyring"


class KeyringError(Unavailable):
    """The keyring cannot be loaded or lacks a version. Over HTTP a 503: the data is intact, this
    process just cannot reach its key (an operator adds the version; see docs/operations.md)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class KeyFile(msgspec.Struct):
    active: int
    versions: dict[int, str]  # version -> base64 key
    retired: list[int] = []


class MasterKeyring(msgspec.Struct, frozen=True):
    """Master key versions; ``active`` is used for new wraps, the others stay readable."""

    active: int
    keys: dict[int, bytes]
    source: str

    def key(self, version: int) -> bytes:
        try:
            return self.keys[version]
        except KeyError:
            raise KeyringError(
                f"master key version {version} is not in this process's keyring; "
                "add it to the keyring every process reads (see docs/operations.md)"
            ) from None

    def __repr__(self) -> str:
        return f"MasterKeyring(active={self.active}, versions={sorted(self.keys)}, source={self.source!r})"


class KeyProvider(Protocol):
    """Where a KMS or HSM integration plugs in: return the keyring, keep the keys wherever you like."""

    def load(self) -> MasterKeyring: ...


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{where}: not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"{where}: a master key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def parse_env_keyring(value: str) -> MasterKeyring:
    keys: dict[int, bytes] = {}
    for index, part in enumerate(p for p in value.split(",") if p.strip()):
        version_text, sep, key_text = part.partition(":")
        if not sep:
            version_text, key_text = str(index + 1), part
        if not version_text.strip().isdigit():
            raise KeyringError("PARLEY_MASTER_KEY: versions must be positive integers ('1:KEY,2:KEY')")
        keys[int(version_text)] = _decode_key(key_text, f"PARLEY_MASTER_KEY version {version_text}")
    if not keys:
        raise KeyringError("PARLEY_MASTER_KEY is empty")
    return MasterKeyring(active=max(keys), keys=keys, source="PARLEY_MASTER_KEY")


class FileKeyProvider:
    """A JSON key file in the data directory, created with mode 0600 when ``create`` allows it
    (``parley serve`` / ``parley migrate`` on an empty data directory, never anywhere else: a new
    keyring beside existing data would make that data unreadable)."""

    def __init__(self, data_dir: Path, create: bool = False) -> None:
        self.path = data_dir / KEY_FILE_NAME
        self.create = create

    def load(self) -> MasterKeyring:
        if not self.path.exists():
            if not self.create:
                raise KeyringError(missing_keyring_message(self.path.parent))
            self._create()
        kf = self._read()
        keys = {v: _decode_key(k, f"{self.path} version {v}") for v, k in kf.versions.items() if v not in kf.retired}
        return MasterKeyring(active=kf.active, keys=keys, source=str(self.path))

    def stamp(self) -> tuple[int, int, int] | None:
        """What changes when the file is replaced (inode, size, mtime): one ``stat``."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def add_version(self) -> int:
        kf = self._read()
        version = max(kf.versions) + 1
        kf.versions[version] = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
        kf.active = version
        self._write(kf)
        return version

    def retire(self, version: int) -> None:
        kf = self._read()
        if version == kf.active:
            raise KeyringError(f"master key version {version} is active; rotate first")
        if version not in kf.versions:
            raise KeyringError(f"master key version {version} does not exist")
        kf.retired = sorted(set(kf.retired) | {version})
        # The key material is destroyed, not just flagged: that is what retiring means.
        kf.versions[version] = base64.b64encode(b"\0" * KEY_BYTES).decode()
        self._write(kf)

    def _read(self) -> KeyFile:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=KeyFile)
        except (OSError, msgspec.DecodeError) as exc:
            raise KeyringError(f"cannot read master key file {self.path}: {exc}") from None

    def _write(self, kf: KeyFile) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(msgspec.json.encode(kf))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write(KeyFile(active=1, versions={1: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}))
        log.warning(
            "master_key_file_created",
            path=str(self.path),
            advice="fine for evaluation; in production set PARLEY_MASTER_KEY from a secret store or plug in a KMS",
        )


def load_keyring(master_key: str, data_dir: Path, provider: KeyProvider | None = None, create: bool = False) -> MasterKeyring:
    if master_key:
        return parse_env_keyring(master_key)
    return (provider or FileKeyProvider(data_dir, create=create)).load()


def missing_keyring_message(data_dir: Path) -> str:
    """What an operator needs to hear when a command finds no master key: where it looked, what
    it found there instead, and how to point it at the right place."""
    resolved = data_dir.resolve()
    try:
        found = sorted(p.name for p in resolved.iterdir())
    except OSError:
        found = []
    what = f"it holds {', '.join(found[:8])}{' …' if len(found) > 8 else ''}" if found else "it is empty or does not exist"
    return (
        f"no master key file {KEY_FILE_NAME} in the data directory {resolved} ({what}). "
        "Point PARLEY_DATA_DIR (or data_dir in the PARLEY_CONFIG file) at the directory 'parley serve' uses, "
        "or set PARLEY_MASTER_KEY. A new keyring is only created by 'parley serve' or 'parley migrate' "
        "on an empty data directory."
    )


class Keys:
    """The process's current keyring, kept current without a restart.

    ``rotate-master`` announces ``keyring_changed`` and every process reloads (the composition
    root subscribes ``reload``). A signal can be missed — a listener reconnecting, a process that
    has not polled yet — so a version that is missing triggers one reload before failing: data a
    rotation re-wrapped a moment ago is readable here even before the signal arrives.
    """

    # A burst of reads for a version that really is gone reloads the file at most this often.
    MISS_RELOAD_SECONDS = 1.0

    def __init__(self, load: Callable[[], MasterKeyring], initial: MasterKeyring | None = None,
                 monotonic: Callable[[], float] | None = None, stamp: Callable[[], object] | None = None) -> None:
        self._load = load
        self._monotonic = monotonic or time.monotonic
        self._last_miss_reload = -self.MISS_RELOAD_SECONDS
        # A key file is re-read as soon as it changes (one stat per use), so no process wraps a
        # new key under a version another process has just rotated away from.
        self._stamp = stamp
        self._seen = stamp() if stamp else None
        self.current = initial if initial is not None else load()

    def reload(self) -> MasterKeyring:
        if self._stamp is not None:
            self._seen = self._stamp()
        self.current = self._load()
        return self.current

    def fresh(self) -> MasterKeyring:
        if self._stamp is not None and self._stamp() != self._seen:
            try:
                self.reload()
            except KeyringError as exc:  # a half-written file cannot happen (atomic replace); be safe anyway
                log.error("keyring_reload_failed", error=exc.detail)
        return self.current

    @property
    def active(self) -> int:
        return self.fresh().active

    def key(self, version: int) -> bytes:
        """The key of ``version``; reloads once if this process does not know it yet."""
        try:
            return self.fresh().key(version)
        except KeyringError:
            now = self._monotonic()
            if now - self._last_miss_reload < self.MISS_RELOAD_SECONDS:
                raise
            self._last_miss_reload = now
            try:
                self.reload()
            except KeyringError as exc:
                log.warning("keyring_reload_failed", error=exc.detail)
                raise
            log.info("keyring_reloaded_for_missing_version", version=version, active=self.current.active)
            return self.current.key(version)

    def on_changed(self, _arg: str = "") -> None:
        """The keyring-changed signal: another process rotated or retired a master version."""
        try:
            ring = self.reload()
        except KeyringError as exc:  # keep serving with what we have; reads fail loudly if needed
            log.error("keyring_reload_failed", error=exc.detail)
            return
        log.info("keyring_reloaded", active=ring.active, versions=sorted(ring.keys))


class KeySource(Protocol):
    """What encryption needs of a keyring: the active version and a key by version. Both a
    fixed ``MasterKeyring`` and the live ``Keys`` fit."""

    @property
    def active(self) -> int: ...

    def key(self, version: int) -> bytes: ...
