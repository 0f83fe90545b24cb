"""Offline verification of an export zip: no database, no server, just the file and a public key."""

from __future__ import annotations

import hashlib
import json
import zipfile
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
        repeated = sorted(name for name, n in Counter(listed).items() if n > 1)
        if repeated:
            return ExportVerification(ok=False, problems=[
                f"{name} is in the zip {Counter(listed)[name]} times (a tool may show a copy other than the one verified)"
                for name in repeated
            ])
        if not {"manifest.json", "signature.json"} <= names:
            return ExportVerification(ok=False, problems=["manifest.json or signature.json is missing"])
        manifest_bytes = archive.read("manifest.json")
        try:
            signature = json.loads(archive.read("signature.json"))
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            return ExportVerification(ok=False, problems=[f"unreadable manifest or signature: {exc}"])
        key_hex = public_key_hex or signature.get("public_key", "")
        source = "given" if public_key_hex else "embedded (compare it with GET /v1/audit/public-key)"
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(bytes.fromhex(signature["signature"]), manifest_bytes)
        except (InvalidSignature, ValueError, KeyError):
            problems.append("the manifest signature does not verify with this public key")
        for name, digest in manifest.get("files", {}).items():
            if name not in names:
                problems.append(f"{name} is listed in the manifest but missing")
            elif hashlib.sha256(archive.read(name)).hexdigest() != digest:
                problems.append(f"{name} does not match its SHA-256 in the manifest")
        unlisted = names - set(manifest.get("files", {})) - {"manifest.json", "signature.json"}
        problems.extend(f"{name} is not listed in the manifest" for name in sorted(unlisted))
    return ExportVerification(ok=not problems, problems=problems, count=manifest.get("count"), key_source=source)
