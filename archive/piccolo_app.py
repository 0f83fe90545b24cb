"""Piccolo app registration: the tables and their migrations."""

from __future__ import annotations

import os

from piccolo.conf.apps import AppConfig

from archive.metrics.tables import METRICS_TABLES
from archive.supervision.tables import SUPERVISION_TABLES
from archive.tables import APP_TABLES

APP_CONFIG = AppConfig(
    app_name="parley",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[*APP_TABLES, *METRICS_TABLES, *SUPERVISION_TABLES],
    migration_dependencies=[],
    commands=[],
)
