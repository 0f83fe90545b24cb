"""Retention's own tables: policies, legal holds, exports, and the cases (matters) gathering them."""

from __future__ import annotations

from piccolo.columns import JSON, UUID, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from archive.tables import Tenant


class RetentionPolicy(Table, tablename="retention_policy"):
    tenant = UUID(primary_key=True)
    document = JSON(default="{}")
    version = Integer(default=1)
    updated_at = Timestamptz(default=TimestamptzNow())


class LegalHold(Table, tablename="legal_hold"):
    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    name = Varchar(length=200)
    reason = Varchar(length=1000)
    # Criteria with the query sealed under the tenant key and visitor ids as keyed hashes.
    criteria = JSON(default="{}")
    status = Varchar(length=16, default="active")
    created_by = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    released_at = Timestamptz(null=True, default=None)
    release_reason = Varchar(length=1000, null=True, default=None)
    case_id = UUID(null=True, default=None)  # the case (retention.cases) this hold belongs to


class Export(Table, tablename="export"):
    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    requested_by = Varchar(length=64)
    format = Varchar(length=8)
    criteria = JSON(default="{}")
    status = Varchar(length=16, default="queued")  # queued | running | done | failed | expired
    progress = Integer(default=0)
    total = Integer(default=0)
    file_sha256 = Varchar(length=64, default="")
    error = Varchar(length=300, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    case_id = UUID(null=True, default=None)  # the case (retention.cases) this export belongs to


class LegalCase(Table, tablename="legal_case"):
    """A matter: one dispute's saved searches, holds, review items and exports, in one place."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    name = Varchar(length=200)
    description = Text(default="")
    status = Varchar(length=16, default="open")  # open | closed
    created_by = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    closed_by = Varchar(length=64, null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    close_reason = Varchar(length=1000, null=True, default=None)


class CaseSearch(Table, tablename="case_search"):
    """A saved search of a case: the query sealed under the tenant key, filters, last run."""

    id = UUID(primary_key=True)
    tenant = UUID()
    legal_case = ForeignKey(references=LegalCase, null=False, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=200)
    query_sealed = Text(default="")
    filters = JSON(default="{}")
    created_by = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    last_run_at = Timestamptz(null=True, default=None)
    last_total = Integer(null=True, default=None)


RETENTION_TABLES: list[type[Table]] = [RetentionPolicy, LegalHold, Export, LegalCase, CaseSearch]
