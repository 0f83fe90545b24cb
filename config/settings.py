"""Typed settings for Parley.

Sources, later ones winning: built-in defaults, an optional TOML file (``PARLEY_CONFIG``, keys are
the setting names below without the prefix, e.g. ``port = 8080``), then ``PARLEY_*`` environment
variables. An invalid value stops start-up with one line that names the variable and what it
accepts, because an operator reading a crash loop should not have to open the source.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

import msgspec

ENV_PREFIX = "PARLEY_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: str = "./var"
    database_url: str = ""  # empty: an SQLite file inside data_dir
    search_backend: Literal["sqlite", "opensearch"] = "sqlite"
    opensearch_url: str = "http://localhost:9200"
    opensearch_username: str = ""
    opensearch_password: str = ""
    opensearch_verify_certs: bool = True
    opensearch_ca_certs: str = ""
    opensearch_index_prefix: str = "parley"
    master_key: str = ""  # empty: a key file inside data_dir
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    scheduler: bool = True
    auth_cache_seconds: float = 2.0
    max_body_bytes: int = 10_000_000
    max_batch: int = 100
    max_messages: int = 5_000
    # Above the longest message any supported platform accepts (Chatwoot: 150,000). Applies to
    # the ingest API; connectors never refuse a message for its length (docs/connectors.md).
    max_message_chars: int = 200_000
    clock_skew_seconds: int = 300
    db_pool_size: int = 10
    retention_sweep_cron: str = "0 3 * * *"  # daily at 03:00 UTC
    # When the search index is compacted (segments merged, freed space returned): after the
    # retention sweep, whose deletes it clears out of the index.
    index_compact_cron: str = "30 3 * * *"
    export_ttl_hours: int = 72
    event_retention_days: int = 30
    collect_per_ip_per_minute: int = 600
    collect_per_site_per_second: int = 1000
    # Comma list of proxy addresses (IPs or CIDRs) whose X-Forwarded-For (the visitor's address for
    # collect rate limits) and X-Forwarded-Proto (behind TLS termination, console cookies are Secure)
    # are believed.
    trusted_proxies: str = ""
    # visitor.country / visitor.region (proactive/geo.py): "builtin" (the RIR table shipped in the
    # iptocc wheel, country only), "off", or the path of a MaxMind-format .mmdb file.
    geoip_database: str = "builtin"
    engagement_engine: bool = True  # this process runs the live engagement engine (false on API-only replicas)
    # PostgreSQL: several engine processes share the sites (leases per tenant, hand-off of events
    # and invitations through the database; docs/replicas.md). Ignored on SQLite (one process owns all).
    engagement_replicas: bool = False
    demo: bool = True  # serve /demo with a demo tenant, site and rule
    worker_threads: int = 4  # threads for CPU-heavy work kept off the event loop
    # The review console (docs/console.md): a session ends after this much inactivity, and after
    # console_session_hours whatever happens.
    console_idle_minutes: int = 30
    console_session_hours: int = 12

    def __repr__(self) -> str:
        # Settings end up in tracebacks and debug logs; secrets must not.
        shown = {f: ("<hidden>" if f in SECRET_FIELDS and getattr(self, f) else getattr(self, f)) for f in self.__struct_fields__}
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_path / 'parley.sqlite3').resolve()}"

    @property
    def engine(self) -> Literal["sqlite", "postgres"]:
        return "postgres" if self.effective_database_url.startswith(("postgres://", "postgresql://")) else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        url = self.effective_database_url
        return Path(url.removeprefix("sqlite:///").removeprefix("sqlite://"))


# What each setting accepts, in words an operator can act on.
ACCEPTS: dict[str, str] = {
    "database_url": "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB",
    "search_backend": "'sqlite' or 'opensearch'",
    "opensearch_url": "an http:// or https:// URL",
    "opensearch_verify_certs": "true or false",
    "master_key": "base64 of 32 random bytes (openssl rand -base64 32), optionally 'VERSION:KEY,VERSION:KEY'",
    "port": "an integer from 1 to 65535",
    "log_format": "'auto' (console lines on a terminal, JSON lines otherwise), 'console' or 'json'",
    "log_level": "'debug', 'info', 'warning' or 'error'",
    "scheduler": "true or false",
    "auth_cache_seconds": "a number of seconds from 0 to 60",
    "max_body_bytes": "a positive integer (bytes)",
    "max_batch": "an integer from 1 to 1000",
    "max_messages": "a positive integer",
    "max_message_chars": "a positive integer",
    "clock_skew_seconds": "an integer from 0 to 86400",
    "db_pool_size": "an integer from 1 to 100",
    "retention_sweep_cron": "a five-field crontab expression, e.g. '0 3 * * *'",
    "index_compact_cron": "a five-field crontab expression, e.g. '30 3 * * *'",
    "export_ttl_hours": "an integer number of hours from 1 to 8760",
    "event_retention_days": "an integer number of days from 1 to 3650",
    "collect_per_ip_per_minute": "a positive integer",
    "collect_per_site_per_second": "a positive integer",
    "trusted_proxies": "comma-separated IP addresses or networks, e.g. '10.0.0.0/8,192.168.1.5'",
    "geoip_database": "builtin, off, or the path of a readable MaxMind-format .mmdb file",
    "engagement_engine": "true or false",
    "engagement_replicas": "true or false",
    "demo": "true or false",
    "worker_threads": "an integer from 1 to 64",
    "console_idle_minutes": "an integer number of minutes from 1 to 1440",
    "console_session_hours": "an integer number of hours from 1 to 168",
}


class ConfigError(Exception):
    """A setting is invalid; ``str()`` is the one line shown to the operator."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


SECRET_FIELDS = frozenset({"master_key", "opensearch_password"})


def _bad(field: str, value: Any) -> ConfigError:
    accepts = ACCEPTS.get(field, "a valid value")
    shown = "<hidden>" if field in SECRET_FIELDS else repr(value)
    return ConfigError(f"{env_name(field)}={shown} is invalid: expected {accepts}")


def _check_ranges(s: Settings) -> None:
    checks: dict[str, bool] = {
        "port": 1 <= s.port <= 65535,
        "auth_cache_seconds": 0 <= s.auth_cache_seconds <= 60,
        "max_body_bytes": s.max_body_bytes > 0,
        "max_batch": 1 <= s.max_batch <= 1000,
        "max_messages": s.max_messages > 0,
        "max_message_chars": s.max_message_chars > 0,
        "clock_skew_seconds": 0 <= s.clock_skew_seconds <= 86400,
        "db_pool_size": 1 <= s.db_pool_size <= 100,
        "database_url": not s.database_url
        or s.database_url.startswith(("sqlite://", "postgres://", "postgresql://")),
        "opensearch_url": s.opensearch_url.startswith(("http://", "https://")),
        "retention_sweep_cron": _valid_cron(s.retention_sweep_cron),
        "index_compact_cron": _valid_cron(s.index_compact_cron),
        "export_ttl_hours": 1 <= s.export_ttl_hours <= 8760,
        "event_retention_days": 1 <= s.event_retention_days <= 3650,
        "collect_per_ip_per_minute": s.collect_per_ip_per_minute > 0,
        "collect_per_site_per_second": s.collect_per_site_per_second > 0,
        "worker_threads": 1 <= s.worker_threads <= 64,
        "console_idle_minutes": 1 <= s.console_idle_minutes <= 1440,
        "console_session_hours": 1 <= s.console_session_hours <= 168,
        "trusted_proxies": _valid_networks(s.trusted_proxies),
        "geoip_database": s.geoip_database in ("builtin", "off") or Path(s.geoip_database).is_file(),
    }
    for field, ok in checks.items():
        if not ok:
            raise _bad(field, getattr(s, field))


def _valid_networks(text: str) -> bool:
    try:
        trusted_networks(text)
    except ValueError:
        return False
    return True


def trusted_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``trusted_proxies`` parsed: each item an address (a /32 or /128) or a network."""
    return [ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()]


def _valid_cron(expression: str) -> bool:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError:
        return False
    return True


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the TOML file named by PARLEY_CONFIG (if any) and PARLEY_* variables."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    config_file = environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        try:
            raw.update(tomllib.loads(Path(config_file).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"PARLEY_CONFIG={config_file!r} cannot be read as TOML: {exc}") from None
    known = set(Settings.__struct_fields__)
    for key in raw:
        if key not in known:
            raise ConfigError(f"PARLEY_CONFIG: unknown setting {key!r}; known settings: {', '.join(sorted(known))}")
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            field = key[len(ENV_PREFIX):].lower()
            if field in known:
                raw[field] = value
    for field, value in raw.items():
        try:
            msgspec.convert({field: value}, Settings, strict=False)
        except msgspec.ValidationError:
            raise _bad(field, value) from None
    settings = msgspec.convert(raw, Settings, strict=False)
    _check_ranges(settings)
    return settings
