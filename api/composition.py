"""The composition root: the one place that knows every part of Parley and puts them together.

``build_runtime`` turns ``Settings`` into a ``Runtime``; nothing is built at import time, and
nothing else in the code base decides which implementation of a part is used. What ingest does
besides storing (retention, indexing), which jobs run, and where behaviour events are mirrored
are all visible here, in order.
"""

from __future__ import annotations

from archive import jobs as archive_jobs
from archive import leases, rescan, sessions
from archive.clock import Clock, SystemClock
from archive.connectors import service as connectors
from archive.connectors.store import ConnectorDirectory
from archive.db import Database
from archive.ingest import IngestStep
from archive.keyring import FileKeyProvider, Keys, MasterKeyring, load_keyring
from archive.metrics.store import MetricsStep
from archive.rotation import ConversationKeys, KeyringCheck, MasterKeyUser, SigningKeyHistory, TenantSecrets
from archive.runtime import Runtime
from archive.search import indexing
from archive.search.backend import SearchBackend
from archive.search.languages import LanguagesStep
from archive.signals import KEYRING_CHANGED, Signals
from archive.signing import SigningKeys
from archive.supervision import backfill as supervision_backfill
from archive.supervision.evaluation import SupervisionStep
from archive.supervision.guard import ReviewGuard
from archive.tenancy import TenantDirectory
from archive.workers import Workers
from config.database import build_engine
from config.files import ensure_private_dir, restrict_umask
from config.settings import Settings
from proactive import funnel
from proactive import jobs as proactive_jobs
from proactive.geo import locator_for
from proactive.runtime import Engagement
from proactive.sink import EventSink, IndexEventSink, NullEventSink
from retention import jobs as retention_jobs
from retention.deletion import DeletionGuard
from retention.exports import ExportFiles
from retention.holds import HoldGuard
from retention.policies import ComplianceFloorGuard, RetainUntilStep


def ingest_steps() -> list[IngestStep]:
    """What happens to every ingested conversation besides being stored, in order."""
    return [RetainUntilStep(), SupervisionStep(), indexing.OutboxStep(), LanguagesStep(), MetricsStep(resolve=funnel.resolve)]


def deletion_guards() -> list[DeletionGuard]:
    """What keeps a conversation from being deleted — by a sweep or an erasure — asked in this
    order inside every deletion transaction; the first to protect names the reason."""
    return [HoldGuard(), ComplianceFloorGuard(), ReviewGuard()]


def master_key_users() -> list[MasterKeyUser]:
    """Everything kept wrapped under a master version: rotation re-wraps each, retirement asks each."""
    return [TenantSecrets(), ConversationKeys(), SigningKeyHistory(), ExportFiles()]


def event_sink(search: SearchBackend) -> EventSink:
    if hasattr(search, "index_events"):
        return IndexEventSink(search)  # type: ignore[arg-type]
    return NullEventSink()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    keyring: MasterKeyring | None = None,
    search: SearchBackend | None = None,
    database: Database | None = None,
    workers: Workers | None = None,
    create_keyring: bool = False,
) -> Runtime:
    """Everything a Parley process needs, from its settings. ``clock``, ``keyring`` and
    ``search`` replace the parts the settings would choose (tests, benchmarks); ``database``
    shares another runtime's connections (several runtimes in one test process);
    ``create_keyring`` allows a new key file (only on an empty data directory)."""
    # Keys first: a command pointed at the wrong directory stops here, before it creates anything.
    restrict_umask()
    clock = clock or SystemClock()
    if keyring is not None:
        keys = Keys(lambda: keyring, monotonic=clock.monotonic)
    else:
        # Only the first load may create the key file; a reload never does.
        first = load_keyring(settings.master_key, settings.data_path, create=create_keyring)
        stamp = None if settings.master_key else FileKeyProvider(settings.data_path).stamp
        keys = Keys(lambda: load_keyring(settings.master_key, settings.data_path), initial=first,
                    monotonic=clock.monotonic, stamp=stamp)
    ensure_private_dir(settings.data_path)
    if database is None:
        database = Database(build_engine(settings, application_name=leases.session_tag(leases.holder_id())), pool_size=settings.db_pool_size)
        database.bind()
    signals = Signals(settings.data_path)
    # Rotation and retirement in any process reach this one at once (and a lost listener, which
    # may have missed the signal, reloads too).
    key_check = KeyringCheck(keys, clock)
    signals.subscribe(KEYRING_CHANGED, keys.on_changed)
    signals.subscribe(KEYRING_CHANGED, key_check.invalidate)
    signals.on_reset(keys.on_changed)
    search = search or indexing.make_backend(settings)
    tenants = TenantDirectory(keys, signals, clock, settings.auth_cache_seconds)
    return Runtime(
        settings=settings,
        clock=clock,
        database=database,
        keys=keys,
        signals=signals,
        tenants=tenants,
        search=search,
        workers=workers or Workers(settings.worker_threads),
        ingest_steps=ingest_steps(),
        events=event_sink(search),
        # A manual clock (tests, replays) arms no timers: the caller drives the ticks.
        engagement=Engagement(clock, realtime=isinstance(clock, SystemClock), live=settings.engagement_engine,
                              locator=locator_for(settings.geoip_database), replicas=settings.engagement_replicas, tenants=tenants),
        jobs=[*archive_jobs.jobs(), *sessions.jobs(), *indexing.jobs(), *rescan.jobs(), *retention_jobs.jobs(),
              *proactive_jobs.jobs(), *connectors.jobs(), *supervision_backfill.jobs()],
        connectors=ConnectorDirectory(signals, clock, settings.auth_cache_seconds),
        signing=SigningKeys(keys, clock),
        master_key_users=master_key_users(),
        key_check=key_check,
        deletion_guards=deletion_guards(),
    )
