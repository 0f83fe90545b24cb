"""ASGI entry point for servers: ``granian --interface asgi --factory api.asgi:create``."""

from __future__ import annotations

from litestar import Litestar

from config.log import configure_logging
from config.settings import load_settings


def create() -> Litestar:
    from api.app import create_app

    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)
