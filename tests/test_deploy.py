"""Deployment files: the compose file, the Dockerfile and what the image leaves out.

``make image-test`` builds and runs the image itself (it needs root and podman); these tests check
the files on every run, and run Parley the way the image holds it: without the packages and
standard-library parts it leaves out, on lemmagen3, simplemma and python-stdnum trimmed by the
image's own build step (``deploy/slim_venv.py data``). The Compose Specification's JSON schema is vendored as
``tests/data/compose-spec.json``: file ``schema/compose-spec.json`` of the compose-spec/compose-spec
repository (Apache-2.0), as of commit a08f8d51631b7127ddac3d2c65537db429d0f1d0 (2025-10-28).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from archive.redaction import RedactionOptions, Redactor
from archive.redaction.options import NATIONAL_IDS
from archive.wordforms import LEMMATIZERS, normal_form
from config.settings import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"
COMPOSE_SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"
SLIM_VENV = ROOT / "deploy" / "slim_venv.py"
# The distributions whose data the image trims, by import name.
TRIMMED_PACKAGES = ("lemmagen3", "simplemma", "stdnum")
# An inflected word per lemmatized language (its normal form differs from it).
LEMMA_SAMPLES = {
    "sl": "hiše", "hr": "kuće", "bs": "kuće", "sh": "kuće", "sk": "domy", "uk": "книги",
    "bg": "книги", "is": "hestar", "lv": "mājas", "mk": "книги",
}
# One of everything redaction finds, every national identity number included (valid check digits).
REDACTION_SAMPLE = (
    "fødselsnummer 15076500565, personnummer 880320-0016, CPR 211062-5629, henkilötunnus 131052-308T, "
    "EMŠO 0101006500006, СНИЛС 112-233-445 95, IBAN NO93 8601 1117 947, card 4111 1111 1111 1111, "
    "call +47 412 34 567 or mail ola.nordmann@example.no"
)
PROJECT_PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
    "packages"
]
# Stand-ins for the variables an operator sets (compose refuses to start without them).
OPERATOR_VARIABLES = {
    "POSTGRES_PASSWORD": "postgres-secret",
    "OPENSEARCH_PASSWORD": "Opensearch-secret-1",
    "PARLEY_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}


def compose_errors(document: Any) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, from either of the forms the specification allows."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {name: "" if value is None else str(value) for name, value in environment.items()}


class MissingVariable(Exception):
    """A ${VAR:?message} whose variable is not set: compose refuses to start."""


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in variables and (variables[name] or not operator.startswith(":")):
            return variables[name]
        if operator.endswith("?"):
            raise MissingVariable(f"{name}: {argument}")
        return argument if operator.endswith("-") else ""

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", replace, value)


def dockerfile_instructions(keyword: str) -> list[str]:
    """Arguments of every instruction ``keyword`` in the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.upper().startswith(keyword + " ")]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in dockerfile_instructions("ENV"):
        for pair in arguments.split():
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def dockerfile_arg(name: str) -> str:
    for arguments in dockerfile_instructions("ARG"):
        key, _, value = arguments.partition("=")
        if key == name:
            return value.strip('"')
    raise AssertionError(f"the Dockerfile has no ARG {name}")


def stdlib_left_out() -> list[str]:
    return dockerfile_arg("STDLIB_LEAVE_OUT").split()


def left_out_modules() -> dict[str, str]:
    """Top-level module -> distribution, for every distribution the image leaves out."""
    by_module = importlib.metadata.packages_distributions()
    wanted = {re.sub(r"[-_.]+", "-", name).lower() for name in dockerfile_arg("LEAVE_OUT").split()}
    return {
        module: dist
        for module, dists in by_module.items()
        for dist in dists
        if re.sub(r"[-_.]+", "-", dist).lower() in wanted
    }


# --- compose ---------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification():
    assert compose_errors(load_compose()) == []


def test_compose_schema_rejects_a_misspelt_key():
    broken = load_compose()
    broken["services"]["parley"]["depend_on"] = broken["services"]["parley"].pop("depends_on")
    assert any("depend_on" in error for error in compose_errors(broken))


def test_compose_sets_only_parley_settings_that_exist():
    known = {ENV_PREFIX + field.upper() for field in Settings.__struct_fields__}
    for name, service in load_compose()["services"].items():
        unknown = sorted(v for v in service_environment(service) if v.startswith(ENV_PREFIX) and v not in known)
        assert unknown == [], f"service {name} sets {unknown}, which config.settings.Settings does not know"


def test_compose_parley_settings_are_valid_values():
    environment = service_environment(load_compose()["services"]["parley"])
    settings = load_settings({name: interpolate(value, OPERATOR_VARIABLES) for name, value in environment.items()})
    assert settings.engine == "postgres" and settings.search_backend == "opensearch"


def test_compose_runs_exactly_one_scheduler():
    services = load_compose()["services"]
    with_scheduler = [
        name
        for name, service in services.items()
        if service_environment(service).get("PARLEY_SCHEDULER", "true").lower() in ("true", "1", "yes")
        and (service.get("build") or "parley" in str(service.get("image", "")))
    ]
    assert with_scheduler == ["parley"]


@pytest.mark.parametrize("missing", sorted(OPERATOR_VARIABLES))
def test_compose_refuses_to_start_without_each_secret(missing):
    others = {name: value for name, value in OPERATOR_VARIABLES.items() if name != missing}
    values = [v for service in load_compose()["services"].values() for v in service_environment(service).values()]
    with pytest.raises(MissingVariable, match=f"^{missing}: "):
        for value in values:
            interpolate(value, others)


# --- Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_sets_only_valid_parley_settings():
    parley = {k: v for k, v in dockerfile_env().items() if k.startswith(ENV_PREFIX)}
    known = {ENV_PREFIX + field.upper() for field in Settings.__struct_fields__}
    assert sorted(set(parley) - known) == []
    settings = load_settings(parley)
    assert (settings.data_dir, settings.host, settings.log_format) == ("/data", "0.0.0.0", "json")


def test_dockerfile_copies_every_package_of_the_project():
    copied = {arguments.split()[0] for arguments in dockerfile_instructions("COPY") if "--from" not in arguments}
    assert set(PROJECT_PACKAGES) <= copied
    allowed = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    assert set(PROJECT_PACKAGES) <= allowed, ".dockerignore keeps a package out of the build context"


def test_dockerignore_lets_through_everything_the_dockerfile_copies():
    allowed = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    sources = {source for arguments in dockerfile_instructions("COPY") if "--from" not in arguments
               for source in arguments.split()[:-1]}
    assert sources and sorted(sources - allowed) == []
    assert all((ROOT / source).exists() for source in sources)


def test_dockerfile_installs_the_uv_the_makefile_pins():
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned and dockerfile_arg("UV_VERSION") == pinned.group(1)


def test_image_leaves_out_only_locked_packages():
    locked = {re.sub(r"[-_.]+", "-", p["name"]).lower() for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    left_out = {re.sub(r"[-_.]+", "-", name).lower() for name in dockerfile_arg("LEAVE_OUT").split()}
    assert sorted(left_out - locked) == []
    assert set(left_out_modules().values()), "none of the left-out packages is installed to check against"


def test_image_leaves_out_only_parts_of_the_standard_library_or_its_test_suite():
    # sys.stdlib_module_names lists everything but CPython's test suite and test extensions.
    test_suite = re.compile(r"test|_test\w*|_ctypes_test|_xxtestfuzz|xxlimited\w*")
    strays = [name for name in stdlib_left_out() if name not in sys.stdlib_module_names and not test_suite.fullmatch(name)]
    assert stdlib_left_out() and strays == []


def test_parley_code_never_imports_what_the_image_leaves_out():
    modules = left_out_modules()
    found = []
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in modules or n.split(".")[0] in stdlib_left_out()]
    assert found == []


# --- the data the image trims -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trimmed_site(tmp_path_factory):
    """lemmagen3, simplemma and python-stdnum copied from the venv and trimmed by the image's
    build step, in a directory that goes first on a subprocess's sys.path."""
    site = tmp_path_factory.mktemp("trimmed-site")
    for name in TRIMMED_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec and spec.submodule_search_locations, name
        shutil.copytree(list(spec.submodule_search_locations)[0], site / name, ignore=shutil.ignore_patterns("__pycache__"))
    environment = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, str(SLIM_VENV), "data", str(site)], capture_output=True, text=True,
                            cwd=ROOT, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return site


def data_files(package_dir: Path, pattern: str) -> set[str]:
    return {str(p.relative_to(package_dir).with_suffix("")) for p in package_dir.glob(pattern)}


def installed(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


def test_image_keeps_exactly_the_lemmagen3_models_parley_names(trimmed_site):
    named = {code for library, code in LEMMATIZERS.values() if library == "lemmagen3"}
    assert data_files(trimmed_site / "lemmagen3" / "models", "*.bin") == named
    assert data_files(installed("lemmagen3") / "models", "*.bin") > named


def test_image_keeps_exactly_the_simplemma_dictionaries_parley_names(trimmed_site):
    named = {code for library, code in LEMMATIZERS.values() if library == "simplemma"}
    folder = Path("strategies") / "dictionaries" / "data"
    assert data_files(trimmed_site / "simplemma" / folder, "*.plzma") == named
    assert data_files(installed("simplemma") / folder, "*.plzma") > named


def test_image_keeps_the_stdnum_databases_redaction_opens_and_drops_the_rest(trimmed_site):
    kept = data_files(trimmed_site / "stdnum", "**/*.dat")
    assert "iban" in kept  # detectors.IBAN_LENGTH and stdnum.iban read it
    assert {"oui", "imsi", "cn/loc"} <= data_files(installed("stdnum"), "**/*.dat") - kept


def test_every_lemmatized_language_has_a_sample_word_that_changes():
    assert sorted(LEMMA_SAMPLES) == sorted(LEMMATIZERS)
    assert [lang for lang, word in LEMMA_SAMPLES.items() if normal_form(word, lang) == word] == []


# Runs in a fresh interpreter in which every left-out package fails to import, as in the image.
WITHOUT_LEFT_OUT = textwrap.dedent(
    """
    import contextlib, importlib, importlib.abc, io, json, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))
    TRIMMED = sys.argv[3]
    SAMPLES = json.loads(sys.argv[4])

    class LeftOut(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (left out of the image)", name=name)
            return None

    sys.meta_path.insert(0, LeftOut())
    for name in BLOCKED:
        assert name not in sys.modules, name
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        raise AssertionError(f"{name} imported although blocked")
    for package in sys.argv[2].split(","):
        for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
            importlib.import_module(module.name)

    from api.cli import main
    for argv in (["tenants", "create", "acme"], ["sites", "create", "--tenant", "acme", "--name", "shop",
                                                  "--origin", "https://shop.example.com"]):
        assert main(argv) == 0, argv
    keys = {}
    for role in ("ingest", "compliance"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["keys", "create", "--tenant", "acme", "--role", role, "--json"]) == 0
        keys[role] = json.loads(out.getvalue())["key"]

    from litestar.testing import TestClient
    from api.asgi import create
    with TestClient(create()) as client:
        for path in ("/healthz", "/readyz", "/schema/openapi.json", "/schema", "/v1/snippet.js", "/demo"):
            assert client.get(path).status_code == 200, path
        conversation = {
            "external_id": "c-1", "site": "shop", "channel": "web", "language": "en",
            "started_at": "2026-01-01T10:00:00Z", "ended_at": "2026-01-01T10:05:00Z",
            "visitor": {"id": "v-1"}, "agents": [{"id": "a-1"}],
            "messages": [{"at": "2026-01-01T10:01:00Z", "sender": {"role": "visitor", "id": "v-1"},
                          "text": "card 4111 1111 1111 1111"}],
        }
        response = client.post("/v1/transcripts", json=conversation, headers={"authorization": "Bearer " + keys["ingest"]})
        assert response.status_code == 201, response.text
        read = client.get("/v1/transcripts/" + response.json()["id"], headers={"authorization": "Bearer " + keys["compliance"]})
        assert read.status_code == 200, read.text
        bad = client.post("/v1/transcripts", json={"site": 1}, headers={"authorization": "Bearer " + keys["ingest"]})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json"), bad.text

    import structlog
    try:
        raise RuntimeError("logged with a traceback")
    except RuntimeError:
        structlog.get_logger().exception("traceback_rendered")

    # Every lemmatizer language and every national id, on the trimmed packages.
    import lemmagen3, simplemma, stdnum
    for module in (lemmagen3, simplemma, stdnum):
        assert module.__file__.startswith(TRIMMED), module.__file__
    from archive.redaction import RedactionOptions, Redactor
    from archive.redaction.options import NATIONAL_IDS
    from archive.wordforms import normal_form
    forms = {lang: normal_form(word, lang) for lang, word in SAMPLES["words"].items()}
    redactor = Redactor(RedactionOptions(national_ids=list(NATIONAL_IDS)))
    text = redactor.redact(SAMPLES["redaction"])
    print(json.dumps({"forms": forms, "redacted": text, "counts": dict(redactor.counts)}))
    """
)


def test_parley_runs_without_what_the_image_leaves_out(tmp_path, trimmed_site):
    blocked = sorted(left_out_modules()) + stdlib_left_out()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.update(
        PARLEY_DATA_DIR=str(tmp_path), PARLEY_MASTER_KEY=OPERATOR_VARIABLES["PARLEY_MASTER_KEY"],
        PARLEY_SCHEDULER="false", PARLEY_DEMO="true", PYTHONPATH=str(trimmed_site),
    )
    samples = json.dumps({"words": LEMMA_SAMPLES, "redaction": REDACTION_SAMPLE})
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LEFT_OUT, ",".join(blocked), ",".join(PROJECT_PACKAGES), str(trimmed_site), samples],
        capture_output=True, text=True, cwd=ROOT, env=environment, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "traceback_rendered" in result.stderr and "RuntimeError: logged with a traceback" in result.stderr

    # What the full installation says, word for word and mask for mask.
    ran = json.loads(result.stdout.strip().splitlines()[-1])
    assert ran["forms"] == {lang: normal_form(word, lang) for lang, word in LEMMA_SAMPLES.items()}
    redactor = Redactor(RedactionOptions(national_ids=list(NATIONAL_IDS)))
    assert (ran["redacted"], ran["counts"]) == (redactor.redact(REDACTION_SAMPLE), dict(redactor.counts))
    assert set(ran["counts"]) == {f"national_id_{c}" for c in NATIONAL_IDS} | {"iban", "card", "phone", "email"}
