"""Deployment files: the compose file, the Dockerfile and what the image leaves out.

``make image-test`` builds and runs the image itself (it needs root and podman); these tests check
the files on every run. The Compose Specification's JSON schema is vendored as
``tests/data/compose-spec.json``: file ``schema/compose-spec.json`` of the compose-spec/compose-spec
repository (Apache-2.0), as of commit a08f8d51631b7127ddac3d2c65537db429d0f1d0 (2025-10-28).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from config.settings import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"
COMPOSE_SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
DOCKERFILE = ROOT / "Dockerfile"
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


def test_dockerfile_installs_the_uv_the_makefile_pins():
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned and dockerfile_arg("UV_VERSION") == pinned.group(1)


def test_image_leaves_out_only_locked_packages():
    locked = {re.sub(r"[-_.]+", "-", p["name"]).lower() for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    left_out = {re.sub(r"[-_.]+", "-", name).lower() for name in dockerfile_arg("LEAVE_OUT").split()}
    assert sorted(left_out - locked) == []
    assert set(left_out_modules().values()), "none of the left-out packages is installed to check against"


def test_parley_code_never_imports_what_the_image_leaves_out():
    modules = left_out_modules()
    found = []
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in modules]
    assert found == []


# Runs in a fresh interpreter in which every left-out package fails to import, as in the image.
WITHOUT_LEFT_OUT = textwrap.dedent(
    """
    import contextlib, importlib, importlib.abc, io, json, pkgutil, sys

    BLOCKED = set(sys.argv[1].split(","))

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
    print("parley ran without", ",".join(sorted(BLOCKED)))
    """
)


def test_parley_runs_without_what_the_image_leaves_out(tmp_path):
    modules = left_out_modules()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    environment.update(
        PARLEY_DATA_DIR=str(tmp_path), PARLEY_MASTER_KEY=OPERATOR_VARIABLES["PARLEY_MASTER_KEY"],
        PARLEY_SCHEDULER="false", PARLEY_DEMO="true",
    )
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LEFT_OUT, ",".join(sorted(modules)), ",".join(PROJECT_PACKAGES)],
        capture_output=True, text=True, cwd=ROOT, env=environment, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "traceback_rendered" in result.stderr and "RuntimeError: logged with a traceback" in result.stderr
