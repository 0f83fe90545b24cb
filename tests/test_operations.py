"""What operators rely on: health, readiness, OpenAPI offline, request ids, problem+json, jobs."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from archive.jobs import build_scheduler


async def test_healthz_answers_without_a_key(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_each_check(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True and body["checks"]["database"]["ok"] is True


async def test_openapi_schema_is_served_offline_and_documents_ingest(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert "/v1/transcripts" in schema["paths"]
    body = schema["paths"]["/v1/transcripts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {ref["$ref"] for ref in body["oneOf"]} == {"#/components/schemas/ConversationIn", "#/components/schemas/BatchIn"}
    assert "ConversationIn" in schema["components"]["schemas"]


async def test_request_ids_are_echoed_or_generated(client):
    echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert echoed.headers["x-request-id"] == "trace-abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


async def test_errors_are_problem_json_with_request_id(client, tenant):
    response = await client.get("/v1/no-such-endpoint", headers=tenant.headers("admin"))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= set(body)
    assert body["request_id"] == response.headers["x-request-id"]


def test_jobs_have_fixed_ids_and_never_overlap(runtime):
    ids = [spec.id for spec in runtime.jobs]
    assert "ledger.checkpoint" in ids and len(ids) == len(set(ids))
    scheduler = build_scheduler(runtime)
    assert isinstance(scheduler, AsyncIOScheduler)
    for job in scheduler.get_jobs():
        assert job.id in ids
        assert job.max_instances == 1 and job.coalesce is True


async def test_scheduler_runs_in_the_lifespan_and_stops_with_it(settings, runtime):
    import msgspec

    from api.app import create_app

    app = create_app(msgspec.structs.replace(settings, scheduler=True), runtime)
    async with app.lifespan():
        scheduler = app.state.scheduler
        assert scheduler.running and {j.id for j in scheduler.get_jobs()} == {spec.id for spec in runtime.jobs}
    assert not scheduler.running
