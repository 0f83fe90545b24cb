"""The languages each tenant has archived (search reads query words in them); the next migration
fills it from the conversations already stored, and ingest keeps it current."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import OnDelete, OnUpdate
from piccolo.columns.column_types import UUID, ForeignKey, Varchar
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table


class Tenant(Table, tablename="tenant", schema=None):
    id = UUID(
        default=UUID4(), null=False, primary_key=True, unique=False, index=False,
        index_method=IndexMethod.btree, choices=None, db_column_name=None, secret=False,
    )


ID = "2026-11-24T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenant languages"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parley", description=DESCRIPTION)
    manager.add_table(class_name="TenantLanguage", tablename="tenant_language", schema=None, columns=None)
    manager.add_column(
        table_class_name="TenantLanguage", tablename="tenant_language", column_name="tenant", db_column_name="tenant",
        column_class_name="ForeignKey", column_class=ForeignKey,
        params={
            "references": Tenant, "on_delete": OnDelete.cascade, "on_update": OnUpdate.cascade, "target_column": None,
            "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree,
            "choices": None, "db_column_name": None, "secret": False,
        },
        schema=None,
    )
    manager.add_column(
        table_class_name="TenantLanguage", tablename="tenant_language", column_name="language", db_column_name="language",
        column_class_name="Varchar", column_class=Varchar,
        params={
            "length": 35, "default": "", "null": False, "primary_key": False, "unique": False, "index": False,
            "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False,
        },
        schema=None,
    )

    return manager
