"""``parley``: the command line. Its verbs and ``--json`` shapes are a public contract."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any, Awaitable, Callable
from uuid import UUID

import msgspec

from archive.tenancy import ROLES
from config.files import restrict_umask
from config.settings import ConfigError, Settings, load_settings

EXIT_USAGE = 2
EXIT_FAILED = 1


def _print(value: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    if as_json:
        print(msgspec.json.encode(value).decode())
    else:
        print(human(value))


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


async def _with_db(settings: Settings, work: Callable[[Any], Awaitable[int]], *, create: bool = False, migrate: bool = True) -> int:
    """Run ``work`` with a started runtime. ``create``: this command may start a new data
    directory (serve, migrate) — allowed only where no data exists yet."""
    from api.composition import build_runtime
    from archive.keyring import KEY_FILE_NAME, KeyringError, missing_keyring_message

    key_file = settings.data_path / KEY_FILE_NAME
    had_key_file = key_file.exists()
    if create and settings.engine == "sqlite" and settings.sqlite_path.exists() and not had_key_file and not settings.master_key:
        raise KeyringError(
            f"the data directory {settings.data_path.resolve()} holds a database but no {KEY_FILE_NAME}: "
            "restore the key file from your backup (or set PARLEY_MASTER_KEY); a new key could not read that data"
        )
    runtime = build_runtime(settings, create_keyring=create)
    await runtime.start(migrate=migrate)
    try:
        if create and not had_key_file and key_file.exists() and await _has_tenants():
            key_file.unlink()
            raise KeyringError(missing_keyring_message(settings.data_path))
        return await work(runtime)
    finally:
        await runtime.stop()


async def _has_tenants() -> bool:
    from archive.tables import Tenant

    # Before the first migration there is no tenant table, and no data to protect.
    return bool(await Tenant.table_exists()) and bool(await Tenant.exists())


def _port_in_use(host: str, port: int) -> OSError | None:
    """Granian listens with SO_REUSEPORT, so a second server on the same port would silently
    share it; a plain bind first tells the operator instead."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections of a previous run lingering in TIME_WAIT are no obstacle;
        # a listening socket still is (Linux refuses the bind), which is what we want to know.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


# --- commands ------------------------------------------------------------------------------------


# How long after a stop signal the server kills a worker that has not exited.
WORKER_KILL_SECONDS = 20


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import os

    from granian import Granian

    host = args.host or settings.host
    port = args.port or settings.port
    in_use = _port_in_use(host, port)
    if in_use is not None:
        print(f"parley: cannot listen on {host}:{port}: {in_use.strerror or in_use} "
              "(is another 'parley serve' running?); stop it or choose another --port", file=sys.stderr)
        return EXIT_FAILED
    os.environ["PARLEY_HOST"], os.environ["PARLEY_PORT"] = host, str(port)
    settings.data_path.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def banner(_: Any) -> int:
        from archive.tenancy import list_tenants

        print(f"Parley {'on ' + settings.engine}: data in {settings.data_path.resolve()}", file=sys.stderr)
        from proactive.demo import DEMO_TENANT

        if not [t for t in await list_tenants() if t.slug != DEMO_TENANT]:
            print(
                "No tenants yet. Create one and an admin key:\n"
                "  parley tenants create acme\n"
                "  parley keys create --tenant acme --role admin",
                file=sys.stderr,
            )
        print(f"Listening on http://{host}:{port}  (OpenAPI: /schema, health: /healthz"
              + (f", demo shop: http://{host}:{port}/demo)" if settings.demo else ")"), file=sys.stderr)
        return 0

    asyncio.run(_with_db(settings, banner, create=True))
    from api.shutdown import SUPERVISOR_ENV

    os.environ[SUPERVISOR_ENV] = str(os.getpid())  # the worker stops if this process is killed (api.shutdown)
    Granian(
        target="api.asgi:create", factory=True, address=host, port=port, interface="asgi",  # type: ignore[arg-type]
        workers=1, log_enabled=False, loop="asyncio",  # type: ignore[arg-type]  # api.shutdown chains asyncio's signal handlers
        # The last resort if a worker still does not exit (it should within 5 s): kill it. Every
        # write is a transaction that commits whole or not at all, so a kill loses nothing that
        # was acknowledged (tests/test_durability).
        workers_kill_timeout=WORKER_KILL_SECONDS,
    ).serve()
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def work(rt: Any) -> int:
        for line in await rt.database.migrate():
            print(line.strip())
        return 0

    return asyncio.run(_with_db(settings, work, create=True, migrate=False))


def cmd_tenants_create(settings: Settings, args: argparse.Namespace) -> int:
    from archive.tenancy import create_tenant

    async def work(rt: Any) -> int:
        tenant = await create_tenant(rt, args.slug, args.name, actor=_cli_actor())
        _print(tenant, args.json, lambda t: f"created tenant {t.slug} ({t.id})")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_tenants_list(settings: Settings, args: argparse.Namespace) -> int:
    from archive.tenancy import list_tenants

    async def work(_: Any) -> int:
        tenants = await list_tenants()
        _print(tenants, args.json, lambda ts: "\n".join(f"{t.slug}\t{t.id}\t{t.name}" for t in ts) or "no tenants")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from archive import ledger
    from archive.tenancy import create_api_key, tenant_by_slug

    async def work(_: Any) -> int:
        tenant = await tenant_by_slug(args.tenant)
        created = await create_api_key(tenant["id"], args.role, args.name or "", _names(args.sites), _names(args.channels))
        scope = {"sites": created.sites, "channels": created.channels} if created.sites else {}
        await ledger.append(tenant["id"], ledger.Entry(actor=_cli_actor(), action="key.create", subject=created.prefix,
                                                       details={"role": created.role, **scope}))
        if args.json:
            print(json.dumps({"id": str(created.id), "key": created.key, "role": created.role, "tenant": created.tenant, "prefix": created.prefix,
                              **scope}))
        else:
            print(created.key)
            where = f", sites {','.join(created.sites)}" + (f", channels {','.join(created.channels)}" if created.channels else "") if created.sites else ""
            print(f"(role {created.role}{where}, tenant {created.tenant}, id {created.id}) — shown once; store it now.", file=sys.stderr)
        return 0

    return asyncio.run(_with_db(settings, work))


def _names(value: str | None) -> list[str]:
    """A comma list from the command line (``--sites shop,b2b``)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from archive.tenancy import list_api_keys, tenant_by_slug

    async def work(_: Any) -> int:
        tenant = await tenant_by_slug(args.tenant)
        keys = await list_api_keys(tenant["id"])
        _print(
            keys, args.json,
            lambda ks: "\n".join(
                f"{k.id}\tprl_{k.prefix}_…\t{k.role}\t{'revoked' if k.revoked_at else 'active'}\t{k.name}"
                + (f"\tsites={','.join(k.sites)}" if k.sites else "") + (f"\tchannels={','.join(k.channels)}" if k.channels else "")
                for k in ks
            ) or "no keys",
        )
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from archive import ledger
    from archive.tables import ApiKey
    from archive.tenancy import revoke_api_key

    async def work(rt: Any) -> int:
        revoked = await revoke_api_key(rt, args.id)
        row = await ApiKey.select(ApiKey.tenant).where(ApiKey.id == args.id).first()
        assert row is not None  # revoke_api_key raised NotFound otherwise
        await ledger.append(row["tenant"], ledger.Entry(actor=_cli_actor(), action="key.revoke", subject=revoked.prefix))
        _print(revoked, args.json, lambda k: f"revoked prl_{k.prefix}_… ({k.role}, tenant {k.tenant})")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_keys_rotate_master(settings: Settings, args: argparse.Namespace) -> int:
    from archive.rotation import rotate_master

    async def work(rt: Any) -> int:
        report = await rotate_master(rt, actor=_cli_actor())
        others = "".join(f", {n} {name}" for name, n in report.other_rewrapped.items())
        resumed = "finished an interrupted rotation: " if report.resumed else ""
        _print(report, args.json, lambda r: f"{resumed}master key version {r.active_version} is active; re-wrapped {r.data_keys_rewrapped} data keys, {r.tenant_secrets_rewrapped} tenant secrets{others}"
               + (f"\n{len(r.unreadable)} data keys do not unwrap (tampered rows?): {', '.join(r.unreadable[:20])}" if r.unreadable else "")
               + (f"\nthe tenant secret of {', '.join(r.unreadable_tenant_secrets)} does not unwrap (tampered row?)" if r.unreadable_tenant_secrets else ""))
        return EXIT_FAILED if report.unreadable or report.unreadable_tenant_secrets else 0

    return asyncio.run(_with_db(settings, work))


def cmd_keys_retire_master(settings: Settings, args: argparse.Namespace) -> int:
    from archive.rotation import retire_master

    async def work(rt: Any) -> int:
        report = await retire_master(rt, args.version, actor=_cli_actor())
        if report.destroyed:
            print(f"master key version {report.version} retired and destroyed")
        else:
            print(f"nothing needs master key version {report.version} any more: remove it from PARLEY_MASTER_KEY "
                  "in every process's environment")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_keys_rotate_signing(settings: Settings, args: argparse.Namespace) -> int:
    from archive import ledger
    from archive.tables import Tenant

    async def work(rt: Any) -> int:
        key = await rt.signing.rotate()
        for tenant in await Tenant.select(Tenant.id):
            await ledger.append(tenant["id"], ledger.Entry(actor=_cli_actor(), action="key.rotate_signing",
                                                           details={"signing_key_version": key.version, "public_key": key.public_key}))
        _print(key, args.json, lambda k: f"signing key {k.version} is active (public key {k.public_key}); earlier keys stay published for verification")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_keys_signing(settings: Settings, args: argparse.Namespace) -> int:
    async def work(rt: Any) -> int:
        history = await rt.signing.history()
        _print(history, args.json, lambda ks: "\n".join(
            f"{k.version}\t{k.public_key}\t{k.origin}\t{k.valid_from.isoformat(timespec='seconds')} .. "
            f"{k.valid_until.isoformat(timespec='seconds') if k.valid_until else 'now (active)'}" for k in ks))
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_sites_create(settings: Settings, args: argparse.Namespace) -> int:
    from archive import ledger
    from archive.tenancy import create_site, embed_tag, tenant_by_slug

    async def work(_: Any) -> int:
        tenant = await tenant_by_slug(args.tenant)
        site = await create_site(tenant["id"], args.name, args.origin or [])
        site.embed = embed_tag(_public_url(settings, args.public_url), site.site_key)
        await ledger.append(tenant["id"], ledger.Entry(actor=_cli_actor(), action="site.create", subject=site.name))
        _print(site, args.json, lambda s: f"created site {s.name} ({s.id})\nsite key: {s.site_key}\nembed on your pages:\n  {s.embed}")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_sites_list(settings: Settings, args: argparse.Namespace) -> int:
    from archive.tenancy import list_sites, tenant_by_slug

    async def work(_: Any) -> int:
        tenant = await tenant_by_slug(args.tenant)
        sites = await list_sites(tenant["id"])
        _print(sites, args.json, lambda ss: "\n".join(f"{s.id}\t{s.name}\t{s.site_key}\t{' '.join(s.allowed_origins)}" for s in ss) or "no sites")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_sites_update(settings: Settings, args: argparse.Namespace) -> int:
    from archive.tables import Site
    from archive.tenancy import tenant_by_slug
    from proactive import service

    async def work(rt: Any) -> int:
        tenant = await tenant_by_slug(args.tenant)
        site = await Site.select(Site.id).where((Site.tenant == tenant["id"]) & (Site.name == args.name)).first()
        if site is None:
            print(f"parley: no site {args.name!r} in tenant {args.tenant!r}", file=sys.stderr)
            return EXIT_FAILED
        raw: dict[str, Any] = {k: v for k, v in (("pacing_per_minute", args.pacing_per_minute), ("timezone", args.timezone)) if v is not None}
        if args.holidays is not None:
            raw["holidays"] = _names(args.holidays)
        if args.attributes is not None:
            raw["attributes"] = _declarations(args.attributes)
        out = await service.update_site_engagement(rt, tenant["id"], _cli_actor(), site["id"], service.parse_site_engagement(raw))
        _print(out, args.json, _site_engagement_text)
        return 0

    return asyncio.run(_with_db(settings, work))


def _declarations(text: str) -> dict[str, str]:
    """``plan:str,seats:number,trial:bool`` → {"plan": "str", …}; a name without a type is text.
    Whatever is wrong (a type that is none of str, number, bool) is named by the site settings' check."""
    declared = {}
    for item in _names(text):
        name, _, kind = item.partition(":")
        declared[name.strip()] = kind.strip() or "str"
    return declared


def _site_engagement_text(out: Any) -> str:
    lines = [f"site {out.site}: {out.pacing_per_minute} invitations a minute at most, days in {out.timezone}"]
    lines.append(f"holidays: {', '.join(out.holidays)}" if out.holidays else "holidays: none")
    lines.append(f"attributes: {', '.join(f'{n}:{k}' for n, k in out.attributes.items())}" if out.attributes else "attributes: none declared")
    return "\n".join(lines)


def _public_url(settings: Settings, given: str | None) -> str:
    return (given or f"http://{settings.host}:{settings.port}").rstrip("/")


def cmd_connectors_create(settings: Settings, args: argparse.Namespace) -> int:
    from archive.connectors.store import ConnectorIn, create
    from archive.tenancy import tenant_by_slug
    from archive.validation import convert

    async def work(rt: Any) -> int:
        tenant = await tenant_by_slug(args.tenant)
        files: dict[str, Any] = {"fetch": args.fetch_files, "hosts": args.file_host or []}
        if args.max_file_bytes is not None:
            files["max_bytes"] = args.max_file_bytes
        raw = {"platform": args.platform, "secret": args.secret, "api_url": args.api_url, "api_token": args.api_token,
               "site": args.site, "channel": args.channel, "files": files}
        data = convert({k: v for k, v in raw.items() if v is not None}, ConnectorIn, "the connector settings are invalid; nothing was created")
        created = await create(await rt.tenants.context(tenant["id"]), data, _cli_actor(), _public_url(settings, args.public_url))
        if args.json:
            print(msgspec.json.encode(created).decode())
        else:
            print(f"created {created.platform} connector {created.id}")
            print(f"webhook URL: {created.webhook_url}")
            print(f"secret:      {created.secret}")
            print("The secret is shown once; enter both on the platform (docs/connectors.md).", file=sys.stderr)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_connectors_list(settings: Settings, args: argparse.Namespace) -> int:
    from archive.connectors.store import list_connectors
    from archive.tenancy import tenant_by_slug

    async def work(rt: Any) -> int:
        tenant = await tenant_by_slug(args.tenant)
        found = await list_connectors(await rt.tenants.context(tenant["id"]), _public_url(settings, args.public_url))
        _print(found, args.json, lambda cs: "\n".join(
            f"{c.id}\t{c.platform}\t{c.webhook_url}\t{'api ' + c.api_url if c.api_url else 'no api'}"
            f"{chr(9) + 'files from ' + ','.join(c.files.hosts) if c.files.fetch else ''}" for c in cs
        ) or "no connectors")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_connectors_delete(settings: Settings, args: argparse.Namespace) -> int:
    from archive.connectors.store import delete, tenant_of

    async def work(rt: Any) -> int:
        dropped = await delete(rt, await tenant_of(args.id), args.id, _cli_actor())
        _print({"id": str(args.id), "deleted": True, **dropped}, args.json,
               lambda d: f"deleted connector {d['id']} ({d['drafts_dropped']} pending drafts, {d['jobs_dropped']} queued pushes dropped)")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_connectors_stats(settings: Settings, args: argparse.Namespace) -> int:
    from archive.connectors.store import stats, tenant_of

    async def work(_: Any) -> int:
        found = await stats(await tenant_of(args.id), args.id)
        def by_reason(counts: dict[str, int]) -> str:
            return ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items())) or "none"

        _print(found, args.json, lambda s: (
            f"received {s.received}: accepted {s.accepted} (archived {s.archived}), duplicates {s.duplicates}, ignored {s.ignored}, "
            f"rejected {sum(s.rejected.values())} ({by_reason(s.rejected)})\n"
            f"queued {s.queued}, failed {s.failed} ({by_reason(s.failures)}); files {by_reason(s.files)}\n"
            f"last received {s.last_received_at.isoformat() if s.last_received_at else 'never'}"
        ))
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> int:
    from archive import ledger
    from archive.tenancy import list_tenants

    async def work(rt: Any) -> int:
        failed = False
        reports = {}
        tenants = await list_tenants()
        if args.tenant and args.tenant not in {t.slug for t in tenants}:
            known = ", ".join(t.slug for t in tenants) or "none yet"
            print(f"parley: no tenant {args.tenant!r}; tenants are: {known}", file=sys.stderr)
            return EXIT_FAILED
        for tenant in tenants:
            if args.tenant and tenant.slug != args.tenant:
                continue
            report = await ledger.verify(rt, tenant.id)
            reports[tenant.slug] = report
            failed |= not report.ok
            if not args.json:
                if report.ok:
                    print(f"{tenant.slug}: ok — {report.entries_checked} entries, {report.checkpoints_verified} signed checkpoints verified")
                else:
                    print(f"{tenant.slug}: TAMPERED — first bad seq {report.first_bad_seq}: {report.problem}")
        if args.json:
            print(msgspec.json.encode(reports).decode())
        return EXIT_FAILED if failed else 0

    return asyncio.run(_with_db(settings, work))


def cmd_ledger_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    from archive import ledger

    async def work(rt: Any) -> int:
        print(f"signed {await ledger.checkpoint_all(rt)} checkpoint(s)")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_index_compact(settings: Settings, args: argparse.Namespace) -> int:
    from archive.search import indexing

    async def work(rt: Any) -> int:
        result = await indexing.compact(rt)
        print(f"compacted the {rt.search.name} index in {result['seconds']:.1f} s: "
              f"{result['bytes_before'] / 1e6:.1f} MB before, {result['bytes_after'] / 1e6:.1f} MB after")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_index_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from archive.search import indexing

    async def work(rt: Any) -> int:
        def progress(done: int, total: int) -> None:
            print(f"\rindexed {done}/{total} conversations", end="", file=sys.stderr, flush=True)

        count = await indexing.rebuild(rt, progress)
        print(file=sys.stderr)
        print(f"rebuilt the {rt.search.name} index from the store: {count} conversations")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_index_status(settings: Settings, args: argparse.Namespace) -> int:
    from archive.search import indexing
    from archive.search.backend import BackendStatus

    async def work(rt: Any) -> int:
        try:
            status = await rt.search.status()
        except Exception as exc:  # report, do not crash: this is a diagnostic command
            status = BackendStatus(ok=False, detail=type(exc).__name__)
        lag = await indexing.lag(rt)
        print(f"backend: {rt.search.name} — {'ok' if status.ok else 'UNAVAILABLE'} ({status.detail})")
        print(f"outbox: {lag.pending} pending, oldest {lag.oldest_seconds}s")
        return 0 if status.ok else EXIT_FAILED

    return asyncio.run(_with_db(settings, work))


def cmd_retention_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from archive.tenancy import tenant_by_slug
    from retention.sweep import sweep_all

    async def work(rt: Any) -> int:
        only = [(await tenant_by_slug(args.tenant))["id"]] if args.tenant else None
        reports = await sweep_all(rt, dry_run=args.dry_run, tenant_ids=only)
        if args.json:
            print(msgspec.json.encode(reports).decode())
        busy = False
        for slug, r in reports.items():
            if r.running_id is not None:
                busy = True
                if not args.json:
                    print(f"{slug}: skipped — a sweep of this tenant is already running (id {r.running_id})")
                continue
            if not args.json:
                done = r.expired - r.held - r.waiting_for_index if r.dry_run else r.deleted
                verb = "would delete" if r.dry_run else "deleted"
                print(f"{slug}: {verb} {done} of {r.expired} expired; "
                      f"{r.held} held {r.protected_by_hold or ''}; by rule {r.by_rule or '{}'}"
                      + (f"; {r.waiting_for_index} waiting for the index" if r.waiting_for_index else ""))
        return EXIT_FAILED if busy else 0

    return asyncio.run(_with_db(settings, work))


def cmd_redaction_rescan(settings: Settings, args: argparse.Namespace) -> int:
    from archive import leases, rescan

    since = rescan.parse_since(args.since, "--since")

    async def work(rt: Any) -> int:
        tenants = await rescan.tenant_ids(args.tenant)
        if args.tenant and not tenants:
            print(f"parley: no tenant {args.tenant!r}", file=sys.stderr)
            return EXIT_FAILED
        reports: dict[str, list[rescan.RescanOut]] = {}
        busy = False
        for tenant_id, slug in tenants:

            async def progress(r: rescan.RescanOut, slug: str = slug) -> None:
                verb = "would change" if r.dry_run else "changed"
                print(f"{slug}: scanned {r.scanned}/{r.total} conversations, {verb} {r.changed}", file=sys.stderr, flush=True)

            runs = reports.setdefault(slug, [])
            try:
                interrupted = None if args.dry_run else await rescan.active(tenant_id)
                if interrupted is not None:  # finish what a killed or queued run left first
                    state = "queued" if interrupted["status"] == "queued" else f"interrupted after {interrupted['scanned']} conversations"
                    print(f"{slug}: resuming rescan {interrupted['id']} ({state}) first", file=sys.stderr, flush=True)
                    runs.append(await rescan.run(rt, interrupted["id"], batch=args.batch_size, progress=progress))
                    if interrupted["since"] == since:
                        continue
                created = await rescan.create(rt, tenant_id, _cli_actor(), since=since, dry_run=args.dry_run)
                runs.append(await rescan.run(rt, created.id, batch=args.batch_size, progress=progress))
            except (rescan.RescanBusy, leases.LeaseBusy) as exc:
                busy = True
                print(f"{slug}: skipped — {exc.detail}", file=sys.stderr)
        if args.json:
            print(msgspec.json.encode(reports).decode())
            return EXIT_FAILED if busy else 0
        for slug, runs in reports.items():
            for r in runs:
                verb = "would change" if r.dry_run else "rewrote"
                kinds = ", ".join(f"{kind} {n}" for kind, n in r.redactions.items()) or "nothing new"
                print(f"{slug}: rescan {r.id} {r.status}: scanned {r.scanned}, {verb} {r.changed} conversation(s)"
                      f" ({r.revisions_changed} earlier revision(s)); newly masked: {kinds}")
        return EXIT_FAILED if busy else 0

    return asyncio.run(_with_db(settings, work))


def cmd_kpi_recompute(settings: Settings, args: argparse.Namespace) -> int:
    from archive import rescan
    from archive.metrics import recompute

    async def work(rt: Any) -> int:
        tenants = await rescan.tenant_ids(args.tenant)
        if args.tenant and not tenants:
            print(f"parley: no tenant {args.tenant!r}", file=sys.stderr)
            return EXIT_FAILED
        reports: dict[str, recompute.RecomputeReport] = {}
        for tenant_id, slug in tenants:

            async def progress(r: recompute.RecomputeReport, slug: str = slug) -> None:
                print(f"{slug}: recomputed {r.conversations} conversations, {r.changed} changed", file=sys.stderr, flush=True)

            reports[slug] = await recompute.recompute(rt, tenant_id, _cli_actor(), batch=args.batch_size, progress=progress)
        if args.json:
            print(msgspec.json.encode(reports).decode())
        else:
            for slug, r in reports.items():
                print(f"{slug}: recomputed the figures of {r.conversations} conversation(s), {r.changed} changed"
                      + (f"; {r.unreadable} could not be decrypted (left as they were; see the log)" if r.unreadable else ""))
        return EXIT_FAILED if any(r.unreadable for r in reports.values()) else 0

    return asyncio.run(_with_db(settings, work))


def cmd_export_verify(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from retention.verify import verify_export

    result = verify_export(Path(args.file), args.public_key)
    if result.ok:
        print(f"{args.file}: OK — signature and {result.count} conversation(s) verified; public key {result.key_source}")
        return 0
    print(f"{args.file}: FAILED")
    for problem in result.problems:
        print(f"  {problem}")
    return EXIT_FAILED


# --- parser --------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _public_key_hex(text: str) -> str:
    """An Ed25519 public key as published: 64 hex digits. Anything else is a usage error, not a
    failed verification: a key cut short when copied says nothing about the export."""
    key = text.strip().lower()
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise argparse.ArgumentTypeError(
            f"expected the 64 hex digits of an Ed25519 public key (GET /v1/audit/public-key, parley keys signing), got {text!r}"
        )
    return key


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parley",
        description="Parley: compliance archive for chat transcripts and proactive engagement engine.",
        epilog="Settings come from PARLEY_* environment variables or a TOML file named by PARLEY_CONFIG; see README.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the HTTP service (migrates the database first)")
    p.add_argument("--host", help="address to bind (default PARLEY_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default PARLEY_PORT or 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="apply pending database migrations")
    p.set_defaults(func=cmd_migrate)

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = tenants.add_parser("create", help="create a tenant")
    p.add_argument("slug", help="short name: lowercase letters, digits, '-'")
    p.add_argument("--name", help="display name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_tenants_create)
    p = tenants.add_parser("list", help="list tenants")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tenants_list)

    keys = sub.add_parser("keys", help="API keys and master keys").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = keys.add_parser("create", help="create an API key (the secret is printed once)")
    p.add_argument("--tenant", required=True, help="tenant slug")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--name", help="label shown in key lists")
    p.add_argument("--sites", help="reviewer keys: the sites they review, comma-separated (e.g. shop,b2b)")
    p.add_argument("--channels", help="reviewer keys: only these channels, comma-separated (default: all)")
    p.add_argument("--json", action="store_true", help='print {"id","key","role","tenant"}')
    p.set_defaults(func=cmd_keys_create)
    p = keys.add_parser("list", help="list a tenant's API keys")
    p.add_argument("--tenant", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_list)
    p = keys.add_parser("revoke", help="revoke an API key by id")
    p.add_argument("id", type=UUID)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_revoke)
    p = keys.add_parser("rotate-master", help="add a master key version and re-wrap data keys (payloads untouched)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_rotate_master)
    p = keys.add_parser("retire-master", help="destroy an old master key version (refused while anything needs it)")
    p.add_argument("version", type=int)
    p.set_defaults(func=cmd_keys_retire_master)
    p = keys.add_parser("rotate-signing", help="start a new signing key for checkpoints and exports (old ones stay published)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_rotate_signing)
    p = keys.add_parser("signing", help="list every signing key that ever signed, with validity periods")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_signing)

    sites = sub.add_parser("sites", help="manage sites").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sites.add_parser("create", help="create a site; prints its site key and embed tag")
    p.add_argument("--tenant", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--origin", action="append", help="allowed origin, e.g. https://shop.example.com (repeatable)")
    p.add_argument("--public-url", help="where browsers reach Parley, for the embed tag (default http://PARLEY_HOST:PARLEY_PORT)")
    p.add_argument("--json", action="store_true", help='print {"id","site_key",…}')
    p.set_defaults(func=cmd_sites_create)
    p = sites.add_parser("list", help="list a tenant's sites")
    p.add_argument("--tenant", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sites_list)
    p = sites.add_parser("update", help="a site's engagement settings: pacing, time zone, holidays, declared visitor attributes")
    p.add_argument("--tenant", required=True)
    p.add_argument("--name", required=True, help="the site's name")
    p.add_argument("--pacing-per-minute", type=int, help="at most this many invitations a minute on the site (default 60)")
    p.add_argument("--timezone", help="IANA time zone for per-day caps, e.g. Europe/Oslo (default UTC)")
    p.add_argument("--holidays", metavar="DATES",
                   help="the site's holidays, replacing the list: comma-separated local dates, e.g. 2026-12-24,2026-12-25 ('' clears); "
                        "schedules are closed on them")
    p.add_argument("--attributes", metavar="NAME:TYPE,...",
                   help="the visitor attributes rules may read, replacing the declarations: e.g. plan:str,seats:number,trial:bool "
                        "('' clears; a declaration rules still read cannot be dropped)")
    p.add_argument("--json", action="store_true", help='print {"site","pacing_per_minute","timezone","holidays","attributes"}')
    p.set_defaults(func=cmd_sites_update)

    connectors_p = sub.add_parser("connectors", help="chat platforms pushing to the archive").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = connectors_p.add_parser("create", help="create a connector; prints its webhook URL and secret (once)")
    p.add_argument("--tenant", required=True, help="tenant slug")
    p.add_argument("--platform", required=True, choices=["rocketchat", "chatwoot", "intercom", "crisp", "livechat", "generic"])
    p.add_argument("--secret", help="the platform's webhook secret (Chatwoot, Intercom and Crisp Plugin Hooks give one); generated if omitted (Crisp Website Hooks: enter the webhook URL with ?key=<secret>)")
    p.add_argument("--api-url", help="the platform's API, for fetching conversations back")
    p.add_argument("--api-token", help="an API token for fetch-back (never shown again)")
    p.add_argument("--site", help="site of the archived conversations (default: from the payload)")
    p.add_argument("--channel", help="channel of the archived conversations (default: from the payload)")
    p.add_argument("--fetch-files", action="store_true", help="also fetch and archive attachment files (needs --file-host)")
    p.add_argument("--file-host", action="append", help="host files may be fetched from (repeatable): files.example.com, .example.com or http://host:port")
    p.add_argument("--max-file-bytes", type=int, help="largest file fetched (default 10 MiB)")
    p.add_argument("--public-url", help="where platforms reach Parley (default http://PARLEY_HOST:PARLEY_PORT)")
    p.add_argument("--json", action="store_true", help='print {"id","platform","webhook_url","secret"}')
    p.set_defaults(func=cmd_connectors_create)
    p = connectors_p.add_parser("list", help="list a tenant's connectors (secrets are never shown)")
    p.add_argument("--tenant", required=True)
    p.add_argument("--public-url", help="where platforms reach Parley (for the webhook URLs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_connectors_list)
    p = connectors_p.add_parser("delete", help="delete a connector by id (archived conversations stay)")
    p.add_argument("id", type=UUID)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_connectors_delete)
    p = connectors_p.add_parser("stats", help="pushes received, accepted, rejected by reason, duplicates")
    p.add_argument("id", type=UUID)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_connectors_stats)

    ledger_p = sub.add_parser("ledger", help="the audit ledger").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ledger_p.add_parser("verify", help="recompute the hash chain; exit 1 and name the first bad seq if tampered")
    p.add_argument("--tenant", help="only this tenant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ledger_verify)
    p = ledger_p.add_parser("checkpoint", help="sign the chain heads now")
    p.set_defaults(func=cmd_ledger_checkpoint)
    index_p = sub.add_parser("index", help="the search index").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = index_p.add_parser("rebuild", help="recreate the search index from the store, with progress")
    p.set_defaults(func=cmd_index_rebuild)
    p = index_p.add_parser("compact", help="merge the search index's segments and return the space deletes freed (runs nightly)")
    p.set_defaults(func=cmd_index_compact)
    p = index_p.add_parser("status", help="backend health and outbox lag")
    p.set_defaults(func=cmd_index_status)
    retention_p = sub.add_parser("retention", help="retention policies").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = retention_p.add_parser("sweep", help="delete expired, unheld conversations (crypto-shredding, receipts)")
    p.add_argument("--dry-run", action="store_true", help="report what would be deleted, change nothing")
    p.add_argument("--tenant", help="only this tenant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_retention_sweep)

    redaction_p = sub.add_parser("redaction", help="redaction of stored conversations").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = redaction_p.add_parser(
        "rescan", help="apply the current detectors to stored conversations (re-encrypts changed ones, ledgered); resumable")
    p.add_argument("--tenant", help="only this tenant (default: every tenant, one after another)")
    p.add_argument("--since", metavar="DATE", help="only conversations archived or revised on or after DATE (2026-11-01 or ISO 8601 time)")
    p.add_argument("--dry-run", action="store_true", help="report per kind what would change, change nothing")
    p.add_argument("--batch-size", type=_positive, default=100, help="conversations per transaction (default 100)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_redaction_rescan)

    kpi_p = sub.add_parser("kpi", help="support figures (reports)").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = kpi_p.add_parser(
        "recompute", help="compute the figures of archived conversations again, as this version computes them (after an upgrade)")
    p.add_argument("--tenant", help="only this tenant (default: every tenant, one after another)")
    p.add_argument("--batch-size", type=_positive, default=200, help="conversations per transaction (default 200)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kpi_recompute)

    export_p = sub.add_parser("export", help="eDiscovery exports").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = export_p.add_parser("verify", help="verify an export zip offline (signature and every file hash)")
    p.add_argument("file")
    p.add_argument("--public-key", type=_public_key_hex, help="hex Ed25519 key from GET /v1/audit/public-key (default: the one in the zip)")
    p.set_defaults(func=cmd_export_verify, offline=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    from archive.errors import DomainError
    from archive.keyring import KeyringError
    from config.log import configure_logging

    args = build_parser().parse_args(argv)
    if getattr(args, "offline", False):  # needs no settings, database or keys
        return int(args.func(Settings(), args))
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings)
    restrict_umask()  # before any command creates a file
    try:
        return int(args.func(settings, args))
    except (DomainError, KeyringError) as exc:
        detail = getattr(exc, "detail", str(exc))
        for error in getattr(exc, "errors", []):
            detail += f"\n  {error.path}: {error.message}"
        print(f"parley: {detail}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
