"""The languages a query word is read in follow what the tenant archives, kept at ingest (no scan
of the tenant's conversations at search time)."""

from __future__ import annotations

from api.composition import build_runtime
from archive.clock import ManualClock
from archive.search import indexing
from archive.search.languages import REFRESH_SECONDS
from archive.search.service import SearchRequest, search
from archive.tables import TenantLanguage
from archive.tenancy import Principal
from tests.factories import conversation


async def _ingest_slovenian(client, runtime, tenant) -> None:
    body = conversation("sl-order", "Kje je moje naročilo?", "Vaše naročilo je na poti.", language="sl-SI")
    response = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    await indexing.drain_all(runtime)


async def _ids(client, tenant, q: str) -> set[str]:
    response = await client.post("/v1/search", json={"q": q}, headers=tenant.headers("compliance"))
    assert response.status_code == 200, response.text
    return {hit["external_id"] for hit in response.json()["hits"]}


async def test_ingest_records_each_language_once(client, runtime, tenant):
    await _ingest_slovenian(client, runtime, tenant)
    rows = await TenantLanguage.select(TenantLanguage.language).where(TenantLanguage.tenant == tenant.id)
    assert [r["language"] for r in rows] == ["sl"]


async def test_a_language_first_archived_here_is_read_in_at_once(client, runtime, tenant):
    assert await _ids(client, tenant, "naročil") == set()  # caches the tenant's languages: en only
    await _ingest_slovenian(client, runtime, tenant)
    # "naročil" is a Slovene form of naročilo only when read as Slovene.
    assert await _ids(client, tenant, "naročil") == {"sl-order"}


async def test_another_process_reads_a_new_language_within_its_refresh(client, runtime, settings, tenant):
    clock = ManualClock()
    other = build_runtime(settings, clock=clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await other.start(migrate=False)
    try:
        key = tenant.keys["compliance"]
        principal = Principal(key_id=key.id, key_prefix=key.prefix, tenant_id=tenant.id, tenant_slug=tenant.slug, role="compliance")
        request = SearchRequest(q="naročil")
        assert (await search(other, principal, request)).total == 0
        await _ingest_slovenian(client, runtime, tenant)
        assert (await search(other, principal, request)).total == 0  # its cached languages: en only
        clock.advance(REFRESH_SECONDS)
        assert (await search(other, principal, request)).total == 1
    finally:
        await other.stop()
