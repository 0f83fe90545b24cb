"""Offline verification of an export zip: no database, no server, just the file and a public key."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class ExportVerification(msgspec.Struct):
    ok: bool
    problems: list[str]
    count: int | None = None
    key_source: str = ""


class _Damaged(Exception):
    pass


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes; a damaged member (bad CRC, broken deflate stream, cut short, a method or
    encryption this zip reader lacks) is a verification failure naming it, not a crash."""
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _Damaged(f"{name} is damaged and cannot be read: {exc}") from exc


def verify_export(path: Path, public_key_hex: str | None = None) -> ExportVerification:
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return ExportVerification(ok=False, problems=[f"not a readable zip: {exc}"])
    with archive:
        listed = archive.namelist()
        names = set(listed)
        # A name stored twice: Python reads its last copy, unzip and other tools may show the first,
        # so what was verified is not what a reviewer reads. Parley never writes one.
        repeated = sorted((name, n) for name, n in Counter(listed).items() if n > 1)
        if repeated:
            return ExportVerification(ok=False, problems=[
                f"{name} is in the zip {n} times (a tool may show a copy other than the one verified)" for name, n in repeated
            ])
        if not {"manifest.json", "signature.json"} <= names:
            return ExportVerification(ok=False, problems=["manifest.json or signature.json is missing"])
        try:
            manifest_bytes = _read(archive, "manifest.json")
            signature = json.loads(_read(archive, "signature.json"))
            manifest = json.loads(manifest_bytes)
        except _Damaged as exc:
            return ExportVerification(ok=False, problems=[str(exc)])
        except ValueError as exc:
            return ExportVerification(ok=False, problems=[f"unreadable manifest or signature: {exc}"])
        if not isinstance(signature, dict) or not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
            return ExportVerification(ok=False, problems=["unreadable manifest or signature: not the objects an export holds"])
        key_hex = public_key_hex or signature.get("public_key", "")
        source = "given" if public_key_hex else "embedded (compare it with GET /v1/audit/public-key)"
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(bytes.fromhex(signature["signature"]), manifest_bytes)
        except (InvalidSignature, ValueError, KeyError, TypeError):
            problems.append("the manifest signature does not verify with this public key")
        for name, digest in manifest.get("files", {}).items():
            if name not in names:
                problems.append(f"{name} is listed in the manifest but missing")
                continue
            try:
                data = _read(archive, name)
            except _Damaged as exc:
                problems.append(str(exc))
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                problems.append(f"{name} does not match its SHA-256 in the manifest")
        unlisted = names - set(manifest.get("files", {})) - {"manifest.json", "signature.json"}
        problems.extend(f"{name} is not listed in the manifest" for name in sorted(unlisted))
    return ExportVerification(ok=not problems, problems=problems, count=manifest.get("count"), key_source=source)
