"""The languages a tenant's query words are read in: its default languages and every language it
has archived conversations in — the second kept current at ingest (``LanguagesStep``), so a
search reads a handful of rows instead of scanning the tenant's conversations."""

from __future__ import annotations

from uuid import UUID

from archive import ingest
from archive.analysis import primary_language
from archive.runtime import Runtime
from archive.tables import TenantLanguage
from archive.tenancy import TenantContext


class LanguagesStep(ingest.IngestStep):
    """Records each new language in the ingest transaction (a no-op for languages already seen)."""

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[ingest.Prepared]) -> None:
        languages = sorted({primary_language(p.stored.language) for p in items} - {""})
        if languages:
            await TenantLanguage.raw(
                "INSERT INTO tenant_language (tenant, language) VALUES "
                + ", ".join("({}, {})" for _ in languages) + " ON CONFLICT DO NOTHING",
                *[value for language in languages for value in (tenant_id, language)],
            )


async def tenant_languages(ctx: TenantContext) -> list[str]:
    """Languages a query word is expanded into: the tenant's defaults and those it has archived."""
    rows = await TenantLanguage.select(TenantLanguage.language).where(TenantLanguage.tenant == ctx.tenant_id)
    return sorted({r["language"] for r in rows} | {primary_language(x) for x in ctx.settings.default_languages} - {""})
