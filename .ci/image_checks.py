"""The image test's checks, in Python's standard library only (they run on the host's python3).

    image_checks.py config INSPECT.json ROOTFS        the image's start-up settings as shell lines
    image_checks.py contents INSPECT.json ROOTFS     what the image holds, its size and user
    image_checks.py wait URL                         wait until /healthz answers
    image_checks.py api URL KEYS.json MARKER         readyz, an ingest, a search and a read
    image_checks.py inside                           run in the image: bytecode, lemmatizers, redaction

Each check prints one line, ``PASS name`` or ``FAIL name: why``; the exit status is 1 if any failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

SIZE_BUDGET_BYTES = 250_000_000
REPO = Path(__file__).resolve().parent.parent
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "cpp", "make", "ld", "as", "uv", "git")
BUILD_PACKAGES = ("build-essential", "gcc", "binutils", "libc6-dev", "python3-dev", "python3-venv")

failures = 0


def report(name: str, ok: bool, why: str = "") -> None:
    global failures
    failures += not ok
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)


def load_image(inspect_json: str) -> dict[str, Any]:
    return json.loads(Path(inspect_json).read_text())[0]


def passwd_entry(rootfs: Path, user: str) -> list[str] | None:
    """The image's /etc/passwd line for a user given by name or uid, as an engine resolves it."""
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if user in (fields[0], fields[2]):
            return fields
    return None


def group_id(rootfs: Path, group: str) -> str:
    if group.isdigit():
        return group
    for line in (rootfs / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return fields[2]
    raise SystemExit(f"image_checks: group {group!r} is not in the image's /etc/group")


def identity(image: dict[str, Any], rootfs: Path) -> tuple[str, str, str]:
    """(uid, gid, home) of the image's USER."""
    user, _, group = (image["Config"].get("User") or "0").partition(":")
    entry = passwd_entry(rootfs, user)
    uid = user if user.isdigit() else (entry[2] if entry else "")
    if not uid:
        raise SystemExit(f"image_checks: user {user!r} is not in the image's /etc/passwd")
    gid = group_id(rootfs, group) if group else (entry[3] if entry else "0")
    return uid, gid, entry[5] if entry else "/"


def image_path(image: dict[str, Any]) -> list[str]:
    for entry in image["Config"].get("Env") or []:
        if entry.startswith("PATH="):
            return entry.removeprefix("PATH=").split(":")
    return []


def cmd_config(inspect_json: str, rootfs: str) -> None:
    image, root = load_image(inspect_json), Path(rootfs)
    config = image["Config"]
    uid, gid, home = identity(image, root)
    health = image.get("Healthcheck") or config.get("Healthcheck") or {}  # podman, docker
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])

    def array(name: str, items: list[str]) -> str:
        return f"{name}=(" + " ".join(shlex.quote(i) for i in items) + ")"

    print(f"image_user={shlex.quote(config.get('User') or '')}")
    print(f"image_uid={uid} image_gid={gid} image_home={shlex.quote(home)}")
    print(f"image_workdir={shlex.quote(config.get('WorkingDir') or '/')}")
    print(array("image_env", config.get("Env") or []))
    print(array("image_cmd", command))
    print(array("image_health", health.get("Test") or []))
    port = next((e.split("=", 1)[1] for e in config.get("Env") or [] if e.startswith("PARLEY_PORT=")), "8000")
    print(f"image_port={shlex.quote(port)}")


def same_files(rootfs: Path, originals: list[Path]) -> list[str]:
    """Paths in the image whose bytes equal one of ``originals``."""
    wanted: dict[int, set[str]] = {}
    for path in originals:
        wanted.setdefault(path.stat().st_size, set()).add(hashlib.sha256(path.read_bytes()).hexdigest())
    found = []
    for directory, _, names in os.walk(rootfs):
        for name in names:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            digests = wanted.get(path.stat().st_size)
            if digests and hashlib.sha256(path.read_bytes()).hexdigest() in digests:
                found.append("/" + str(path.relative_to(rootfs)))
    return found


def cmd_contents(inspect_json: str, rootfs: str) -> None:
    image, root = load_image(inspect_json), Path(rootfs)
    config = image["Config"]

    size = image["Size"]
    report(f"image size {size / 1e6:.1f} MB ({size / 2**20:.1f} MiB) is within 250 MB", size <= SIZE_BUDGET_BYTES,
           f"{size - SIZE_BUDGET_BYTES} bytes over")

    uid, gid, _ = identity(image, root)
    report(f"runs as a non-root user (USER {config.get('User')!r} = uid {uid})", uid != "0", "uid 0")

    volumes = sorted(config.get("Volumes") or {})
    data = root / "data"
    report("/data is the only volume and belongs to that user",
           volumes == ["/data"] and data.is_dir() and str(data.stat().st_uid) == uid,
           f"volumes {volumes}, /data owned by uid {data.stat().st_uid if data.exists() else 'missing'}")

    tools = [t for t in BUILD_TOOLS for d in image_path(image) if (root / d.lstrip("/") / t).exists()]
    status = root / "var/lib/dpkg/status"
    installed = {line.removeprefix("Package: ") for line in status.read_text().splitlines()
                 if line.startswith("Package: ")} if status.exists() else set()
    packages = sorted(installed.intersection(BUILD_PACKAGES))
    report("no build tools (compilers, make, binutils, uv, git)", not tools and not packages,
           f"on PATH: {sorted(set(tools))}, packages: {packages}")

    git = [str(p.relative_to(root)) for p in root.rglob(".git")]
    report("no .git", not git, f"found {git}")

    ours = sorted((REPO / "tests").rglob("*.py"))
    copies = same_files(root, ours)
    site = next(root.glob("app/.venv/lib/python3*/site-packages"), None)
    strays = [p.name for p in site.iterdir() if p.name == "tests" or p.name.startswith("pytest")] if site else []
    report(f"no tests (none of Parley's {len(ours)} test files, no pytest, no top-level tests package)",
           bool(ours) and not copies and not strays, f"found {copies + strays}")

    app = sorted(p.name for p in (root / "app").iterdir())
    report("/app holds only the virtual environment (no source tree)", app == [".venv"], f"found {app}")


# --- HTTP ------------------------------------------------------------------------------------


def call(method: str, url: str, body: Any = None, key: str = "") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def until(deadline_seconds: float, attempt: Callable[[], Any]) -> Any:
    """Poll ``attempt`` until it returns something truthy or the deadline passes (then: None)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            result = attempt()
        except OSError:
            result = None
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def cmd_wait(base: str) -> None:
    started = time.monotonic()
    answer = until(120, lambda: call("GET", f"{base}/healthz"))
    report(f"GET /healthz answers 200 {{'status': 'ok'}} ({time.monotonic() - started:.1f} s after start)",
           answer == (200, {"status": "ok"}), f"last answer {answer!r}")


def conversation(marker: str) -> dict[str, Any]:
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    texts = [f"Hello, my {marker} order never arrived.", "Sorry to hear that. Which card did you pay with?",
             "The card 4111 1111 1111 1111, thanks."]
    return {
        "external_id": f"image-test-{os.getpid()}-{int(time.time())}", "site": "shop", "channel": "web", "language": "en",
        "started_at": at(0), "ended_at": at(10),
        "visitor": {"id": "visitor-1", "name": "Ola Nordmann", "email": "ola@example.no"},
        "agents": [{"id": "agent-7", "name": "Kari"}],
        "messages": [{"at": at(i + 1), "sender": {"role": "visitor" if i % 2 == 0 else "agent",
                                                  "id": "visitor-1" if i % 2 == 0 else "agent-7"}, "text": text}
                     for i, text in enumerate(texts)],
    }


def cmd_api(base: str, keys_json: str, marker: str) -> None:
    keys = json.loads(Path(keys_json).read_text())

    status, body = call("GET", f"{base}/readyz")
    database = body.get("checks", {}).get("database", {}) if isinstance(body, dict) else {}
    report("GET /readyz answers 200, ready, database ok",
           status == 200 and body.get("ready") is True and database.get("ok") is True, f"{status} {body!r}")

    status, body = call("POST", f"{base}/v1/transcripts", conversation(marker), keys["ingest"])
    created = status == 201 and isinstance(body, dict) and body.get("status") == "created"
    report("POST /v1/transcripts stores a conversation (201 created, card redacted)",
           created and body.get("redactions", {}).get("card") == 1, f"{status} {body!r}")
    if not created:
        return
    conversation_id = body["id"]

    def found() -> Any:
        status, result = call("POST", f"{base}/v1/search", {"q": marker}, keys["compliance"])
        return result if status == 200 and result.get("total", 0) >= 1 else None

    started = time.monotonic()
    result = until(30, found)
    hit_ids = [hit["id"] for hit in result["hits"]] if result else []
    report(f"POST /v1/search finds it ({time.monotonic() - started:.1f} s after ingest)",
           hit_ids == [conversation_id], f"hits {hit_ids}, wanted [{conversation_id}]")

    status, body = call("GET", f"{base}/v1/transcripts/{conversation_id}", key=keys["compliance"])
    text = json.dumps(body)
    report("GET /v1/transcripts/{id} reads it back, card number masked",
           status == 200 and marker in text and "4111 1111 1111 1111" not in text, f"{status} {text[:300]}")


# --- inside the image ---------------------------------------------------------------------------

# One number of every kind redaction finds, every national identity number included (valid check
# digits; from tests/test_redaction.py).
REDACTION_SAMPLE = (
    "fødselsnummer 15076500565, personnummer 880320-0016, CPR 211062-5629, henkilötunnus 131052-308T, "
    "EMŠO 0101006500006, СНИЛС 112-233-445 95, IBAN NO93 8601 1117 947, card 4111 1111 1111 1111, "
    "call +47 412 34 567 or mail ola.nordmann@example.no"
)


def cmd_inside() -> None:
    """Run by the image's Python as the image's user (the sandbox copies this file into the
    image's /tmp): what the image trimmed must not be missed."""
    import importlib
    import importlib.machinery
    import importlib.metadata
    import pkgutil

    # The loader compiles a module from source only when it has no valid bytecode for it.
    from_source: list[str] = []
    source_to_code = importlib.machinery.SourceFileLoader.source_to_code

    def counting_source_to_code(self: Any, data: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        from_source.append(str(path))
        return source_to_code(self, data, path, *args, **kwargs)

    importlib.machinery.SourceFileLoader.source_to_code = counting_source_to_code  # type: ignore[method-assign]
    packages = sorted({str(f).split("/")[0] for f in importlib.metadata.files("parley") or []
                       if str(f).endswith(".py") and "/" in str(f)})
    count = 0
    for package in packages:
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            importlib.import_module(info.name)
            count += 1
    importlib.import_module("api.asgi").create()
    importlib.import_module("granian")
    ours = [p for p in from_source if p.startswith("/app/")]
    report(f"Parley's {count} modules and the app start from bytecode (nothing in /app compiled at start)",
           count > 0 and not ours, f"compiled from source: {ours[:10]}")

    # The build strips the compiled modules: each must still load with every symbol resolved.
    import ctypes
    import sysconfig

    site = Path(sysconfig.get_path("purelib"))
    shared = sorted(site.rglob("*.so"))
    broken = {}
    for path in shared:
        try:
            ctypes.CDLL(str(path), mode=os.RTLD_NOW)
        except OSError as error:
            broken[str(path.relative_to(site))] = str(error)
    report(f"all {len(shared)} compiled modules in the venv load (dlopen, every symbol resolved)",
           bool(shared) and not broken, f"{broken}")

    wordforms = importlib.import_module("archive.wordforms")
    failed = {}
    for language in sorted(wordforms.LEMMATIZERS):
        try:
            wordforms.normal_form("test", language)
        except Exception as error:  # a missing model or dictionary: name it, check the others
            failed[language] = repr(error)
    report(f"every language in archive.wordforms.LEMMATIZERS lemmatizes ({', '.join(sorted(wordforms.LEMMATIZERS))})",
           not failed, f"failed: {failed}")

    redaction = importlib.import_module("archive.redaction")
    options = importlib.import_module("archive.redaction.options")
    redactor = redaction.Redactor(redaction.RedactionOptions(national_ids=list(options.NATIONAL_IDS)))
    redactor.redact(REDACTION_SAMPLE)
    wanted = {f"national_id_{country}" for country in options.NATIONAL_IDS} | {"iban", "card", "phone", "email"}
    report(f"redaction finds every national id ({', '.join(options.NATIONAL_IDS)}), an IBAN, a card, a phone number and an e-mail",
           set(redactor.counts) == wanted, f"found {dict(redactor.counts)}")


def main(argv: list[str]) -> int:
    commands: dict[str, Callable[..., None]] = {
        "config": cmd_config, "contents": cmd_contents, "wait": cmd_wait, "api": cmd_api, "inside": cmd_inside,
    }
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    commands[argv[1]](*argv[2:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
