"""Piccolo app for retention's tables; migrates after the archive app."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from retention.tables import RETENTION_TABLES

APP_CONFIG = AppConfig(
    app_name="retention",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=RETENTION_TABLES,
    migration_dependencies=["archive.piccolo_app"],
    commands=[],
)
