"""The languages a tenant's query words are read in: its default languages and every language it
has archived conversations in. The second is kept current at ingest (``LanguagesStep``), so a
search reads a few rows — at most once a minute per process — instead of scanning the tenant's
conversations; a language this process ingests is added to its cache at once."""

from __future__ import annotations

from uuid import UUID

from archive import ingest
from archive.analysis import primary_language
from archive.runtime import Runtime
from archive.tables import TenantLanguage
from archive.tenancy import TenantContext

REFRESH_SECONDS = 60.0  # how soon another process's first conversation in a language is read in


class LanguagesStep(ingest.IngestStep):
    """Records each new language in the ingest transaction (a no-op for languages already seen)."""

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[ingest.Prepared]) -> None:
        languages = sorted({primary_language(p.stored.language) for p in items} - {""})
        if not languages:
            return
        added = await TenantLanguage.raw(
            "INSERT INTO tenant_language (tenant, language) VALUES "
            + ", ".join("({}, {})" for _ in languages) + " ON CONFLICT DO NOTHING RETURNING language",
            *[value for language in languages for value in (tenant_id, language)],
        )
        if added:
            # Before the commit: should the ingest roll back, a query word is read in one more
            # language, which finds nothing that is not there.
            ctx = await rt.tenants.context(tenant_id)
            if ctx.languages is not None:
                ctx.languages = (ctx.languages[0], sorted({*ctx.languages[1], *(r["language"] for r in added)}))


async def tenant_languages(rt: Runtime, ctx: TenantContext) -> list[str]:
    """Languages a query word is expanded into: the tenant's defaults and those it has archived."""
    cached = ctx.languages
    if cached and rt.clock.monotonic() - cached[0] < REFRESH_SECONDS:
        return cached[1]
    rows = await TenantLanguage.select(TenantLanguage.language).where(TenantLanguage.tenant == ctx.tenant_id)
    languages = sorted(({r["language"] for r in rows} | {primary_language(x) for x in ctx.settings.default_languages}) - {""})
    ctx.languages = (rt.clock.monotonic(), languages)
    return languages
