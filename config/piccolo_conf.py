"""Piccolo's configuration module (found through PICCOLO_CONF=config.piccolo_conf).

Piccolo looks up ``DB`` and ``APP_REGISTRY`` here, for the ORM and for its migration commands.
The engine follows the Parley settings, so ``PARLEY_DATABASE_URL`` alone picks SQLite or PostgreSQL.
"""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry

from config.database import build_engine
from config.settings import load_settings

DB = build_engine(load_settings())

APP_REGISTRY = AppRegistry(apps=["archive.piccolo_app", "retention.piccolo_app", "proactive.piccolo_app"])
