"""Schemathesis over the served OpenAPI document, with a key of every role (and none): no request
it generates — valid or deliberately invalid — gets a 5xx, and every answer is one the document
declares: its status, its media type, its headers and its body schema (problem+json included);
a request the document calls invalid is refused, a missing required header too, and an operation
that declares the bearer scheme does not answer without it.

It runs against a real ``parley serve`` (tests/servers.py), one test per operation, bounded by
``EXAMPLES`` generated requests per operation and mode, each sent once per role, so the whole
run takes two to three minutes per database. Every finding has a regression test in
tests/test_fuzz_regressions.py. Not run: ``positive_data_acceptance`` (see docs/errors.md).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from config.settings import Settings
from tests.servers import Deployment

ROLES = ["admin", "compliance", "marketing", "ingest", "anonymous"]
EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, missing_required_header, ignored_auth]
# The invitation stream never ends by design (server-sent events): not a request/response.
NOT_FUZZED = {("GET", "/v1/invitations/stream")}

_DOCUMENT = create_app(Settings(demo=False)).openapi_schema.to_schema()
OPERATIONS = sorted(
    (method.upper(), path, GenerationMode.POSITIVE)
    for path, methods in _DOCUMENT["paths"].items()
    for method in methods
    if (method.upper(), path) not in NOT_FUZZED
)


def _can_be_invalid(operation: dict[str, Any]) -> bool:
    """Is there something to get wrong: a declared body with a schema that constrains it (rule
    validation takes any text), or a parameter with a type or constraint (any string is a valid
    unconstrained string parameter)?"""
    bodies = operation.get("requestBody", {}).get("content", {}).values()
    return (any(set(body.get("schema", {})) - {"description"} for body in bodies)
            or any(p.get("schema", {}) != {"type": "string"} for p in operation.get("parameters", [])))


OPERATIONS += sorted(
    (method.upper(), path, GenerationMode.NEGATIVE)
    for path, methods in _DOCUMENT["paths"].items()
    for method, operation in methods.items()
    if (method.upper(), path) not in NOT_FUZZED and _can_be_invalid(operation)
)


@pytest.fixture(scope="module")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    deployment = Deployment(tmp_path_factory.mktemp("fuzz") / "deployment", scheduler=False)
    await deployment.create()
    keys = await deployment.tenant("fuzz")
    await deployment.start()
    try:
        yield deployment, keys
    finally:
        await deployment.drop()


@pytest.fixture(scope="module")
def served(fuzzed: Any) -> Any:
    deployment, _ = fuzzed
    schema = schemathesis.openapi.from_url(f"{deployment.url}/schema/openapi.json")
    # Each role's key is sent by the test itself (a generated or removed Authorization header
    # would only be overwritten, and make a valid request look invalid).
    schema.config.generation.update(with_security_parameters=False)
    return schema


@pytest.fixture(scope="module")
def callers(fuzzed: Any) -> dict[str, dict[str, str]]:
    """The Authorization header of a key of each role (none for anonymous)."""
    _, keys = fuzzed
    return {role: {"Authorization": f"Bearer {keys[role]}"} if role in keys else {} for role in ROLES}


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS,
                         ids=[f"{'valid' if g is GenerationMode.POSITIVE else 'invalid'} {m} {p}" for m, p, g in OPERATIONS])
def test_no_request_gets_a_server_error_or_an_undeclared_response(
    served: Any, callers: dict[str, dict[str, str]], method: str, path: str, mode: GenerationMode,
) -> None:
    operation = served[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def every_role(case: Any) -> None:
        for headers in callers.values():
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    every_role()
