"""``parley export verify`` on zips an attacker or a damaged disk produced: whatever the zip holds,
the verdict is OK only when what any tool would show is what the signed manifest lists, and a
damaged zip is reported as FAILED with the member named, never as a crash."""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retention.verify import verify_export

TRANSCRIPTS = b'{"id": "c-1", "messages": [{"text": "I want a refund for order 118"}]}\n' * 50


def _signed_members(transcripts: bytes = TRANSCRIPTS) -> tuple[list[tuple[str, bytes]], str]:
    key = Ed25519PrivateKey.generate()
    manifest = json.dumps({"format": "parley-export/v1", "count": 50,
                           "files": {"transcripts.jsonl": hashlib.sha256(transcripts).hexdigest()}}).encode()
    public = key.public_key().public_bytes_raw().hex()
    signature = json.dumps({"algorithm": "Ed25519", "key_version": 1, "public_key": public,
                            "signature": key.sign(manifest).hex(), "signed": "manifest.json"}).encode()
    return [("transcripts.jsonl", transcripts), ("manifest.json", manifest), ("signature.json", signature)], public


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name; writing one is the point
        for name, data in members:
            archive.writestr(name, data)
    return path


def test_an_untouched_export_verifies(tmp_path):
    members, public = _signed_members()
    result = verify_export(_zip(tmp_path / "ok.zip", members), public)
    assert result.ok and result.problems == [] and result.count == 50


def test_a_second_copy_of_a_signed_file_is_refused(tmp_path):
    # unzip, Java's ZipInputStream and file managers show the first copy of a name; Python reads the
    # last. A forged transcripts.jsonl put before the genuine one must not pass as verified.
    members, public = _signed_members()
    forged = [("transcripts.jsonl", b'{"id": "c-1", "messages": [{"text": "nothing to see"}]}\n'), *members]
    result = verify_export(_zip(tmp_path / "twice.zip", forged), public)
    assert not result.ok
    assert result.problems == [
        "transcripts.jsonl is in the zip 2 times (a tool may show a copy other than the one verified)"
    ]


def test_a_second_manifest_is_refused(tmp_path):
    members, public = _signed_members()
    other = ("manifest.json", json.dumps({"format": "parley-export/v1", "count": 1, "files": {}}).encode())
    result = verify_export(_zip(tmp_path / "manifests.zip", [other, *members]), public)
    assert not result.ok and "manifest.json is in the zip 2 times" in result.problems[0]


def _damage(path: Path, member: str) -> Path:
    """Flip one byte inside ``member``'s compressed data, as a bad disk or a cut download does."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_member_fails_verification_naming_it_instead_of_crashing(tmp_path):
    members, public = _signed_members()
    result = verify_export(_damage(_zip(tmp_path / "damaged.zip", members), "transcripts.jsonl"), public)
    assert not result.ok
    assert len(result.problems) == 1 and result.problems[0].startswith("transcripts.jsonl is damaged and cannot be read")


def test_a_damaged_manifest_fails_verification_naming_it(tmp_path):
    members, public = _signed_members()
    result = verify_export(_damage(_zip(tmp_path / "damaged.zip", members), "manifest.json"), public)
    assert not result.ok and result.problems[0].startswith("manifest.json is damaged and cannot be read")


def test_a_signature_file_of_the_wrong_shape_fails_verification(tmp_path):
    members, public = _signed_members()
    for name, body in (("signature.json", b"[1, 2]"), ("signature.json", b'{"signature": 7}'), ("manifest.json", b'"x"')):
        changed = [(n, body if n == name else data) for n, data in members]
        result = verify_export(_zip(tmp_path / "shape.zip", changed), public)
        assert not result.ok and result.problems, (name, body)
