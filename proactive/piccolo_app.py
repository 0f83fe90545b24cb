"""Piccolo app for the engagement engine's tables; migrates after the archive app."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from proactive.tables import PROACTIVE_TABLES

APP_CONFIG = AppConfig(
    app_name="proactive",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=PROACTIVE_TABLES,
    migration_dependencies=["archive.piccolo_app"],
    commands=[],
)
