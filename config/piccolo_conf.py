"""Piccolo's configuration module (found through PICCOLO_CONF=config.piccolo_conf).

Piccolo looks up ``DB`` and ``APP_REGISTRY`` here, for the ORM and for its migration commands.
Parley's runtime sets ``DB`` when it binds its database (``archive.db.Database.bind``); nothing
is built at import time. Only when Piccolo's own command line uses this module without a Parley
runtime is the engine built on first access, from the same settings (``PARLEY_DATABASE_URL``).
"""

from __future__ import annotations

from typing import Any

from piccolo.conf.apps import AppRegistry

APP_REGISTRY = AppRegistry(apps=["archive.piccolo_app", "retention.piccolo_app", "proactive.piccolo_app"])


def __getattr__(name: str) -> Any:
    if name != "DB":
        raise AttributeError(name)
    from config.database import build_engine
    from config.settings import load_settings

    engine = build_engine(load_settings())
    globals()["DB"] = engine
    return engine
