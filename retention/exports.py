"""eDiscovery exports: a signed zip of the conversations a query matches.

A request becomes a job run by the scheduler (``retention.exports``). The zip holds the
transcripts (``transcripts.jsonl``, or one RFC 5322 ``.eml`` per conversation), a ``manifest.json``
(per-file SHA-256, counts, query, requester, the ledger head at export time, and every signing
key that ever signed with its validity period) and ``signature.json`` (Ed25519 over the manifest
bytes, with the signing key's version and public key). ``parley export verify`` checks a zip
offline. The finished zip is kept encrypted at rest (AES-GCM under a fresh key wrapped like a
conversation key; ``rotate-master`` re-wraps it) and deleted when it expires.

An export run holds its lease (archive/leases.py), so two schedulers never build one export
twice; an export whose process died mid-run (status ``running``, lease no longer held) is built
again from the start by the next run of the job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Literal
from uuid import UUID, uuid4

import msgspec
import structlog

from archive import db, leases, ledger, transcripts
from archive.crypto import SealingWriter
from archive.db import json_column
from archive.errors import Conflict, FieldError, InvalidInput, NotFound
from archive.limits import CONTROL_CHARACTERS, MAX_QUERY_CHARS, date_errors
from archive.models import Attachment, Message, StoredConversation
from archive.query import QuerySyntaxError, parse
from archive.rotation import Rewrapped
from archive.runtime import Runtime
from archive.search.service import SearchFilters, all_matching_ids, ledgered_filters, opened_filters, stored_filters
from archive.signing import Signer
from archive.tables import LedgerHead
from archive.tenancy import Principal, TenantContext, tenant_context
from retention.tables import Export

log = structlog.get_logger(__name__)

LOAD_BATCH = 100


class ExportIn(msgspec.Struct, forbid_unknown_fields=True):
    q: Annotated[str, msgspec.Meta(max_length=MAX_QUERY_CHARS)] = ""
    filters: SearchFilters = msgspec.field(default_factory=SearchFilters)
    format: Literal["jsonl", "eml"] = "jsonl"


class ExportOut(msgspec.Struct):
    id: UUID
    status: str
    format: str
    progress: int
    total: int
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None
    file_sha256: str
    error: str
    case: UUID | None = None  # the case (retention.cases) the export belongs to


def _path(rt: Runtime, tenant_id: UUID, export_id: UUID) -> Path:
    return rt.settings.data_path / "exports" / str(tenant_id) / f"{export_id}.zip.sealed"


def _out(row: dict[str, Any]) -> ExportOut:
    return ExportOut(
        id=row["id"], status=row["status"], format=row["format"], progress=row["progress"], total=row["total"],
        requested_by=row["requested_by"], created_at=row["created_at"], finished_at=row["finished_at"],
        expires_at=row["expires_at"], file_sha256=row["file_sha256"], error=row["error"], case=row["case_id"],
    )


async def create(rt: Runtime, principal: Principal, data: ExportIn, case: UUID | None = None) -> ExportOut:
    try:
        parse(data.q)
    except QuerySyntaxError as exc:
        raise InvalidInput("the export query cannot be parsed", [FieldError("q", f"{exc.message} at position {exc.position}")]) from None
    if errors := date_errors("filters.", from_=data.filters.from_, to=data.filters.to):
        raise InvalidInput("the export filters are out of range", errors)
    ctx = await tenant_context(rt, principal.tenant_id)
    export_id = uuid4()
    criteria = {"q_sealed": ctx.crypto.seal_note(data.q.encode()) if data.q else "", "filters": stored_filters(ctx, data.filters)}
    async with db.write_transaction():
        await Export.insert(Export(id=export_id, tenant=principal.tenant_id, requested_by=principal.actor, format=data.format,
                                   criteria=json.dumps(criteria), case_id=case))
        await ledger.append(principal.tenant_id, ledger.Entry(
            actor=principal.actor, action="export.create", subject=str(export_id),
            details={"format": data.format, "filters": ledgered_filters(ctx, data.filters), "query_sealed": criteria["q_sealed"], **({"case": str(case)} if case else {})},
        ))
    return await get(principal, export_id)


async def get(principal: Principal, export_id: UUID) -> ExportOut:
    row = await Export.select().where((Export.id == export_id) & (Export.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no export {export_id}")
    return _out(row)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:100] or "conversation"


def _jsonl_line(
    cid: UUID, stored: StoredConversation, row: dict[str, Any], earlier: list[tuple[dict[str, Any], StoredConversation]],
    files: dict[str, str],
) -> bytes:
    """One conversation per line: its latest revision, with every earlier revision nested and
    the paths of its stored attachment files (by SHA-256) in the zip."""
    line: dict[str, Any] = {"id": str(cid), **msgspec.to_builtins(stored), "content_sha256": row["content_sha256"], "revision": row["revision"]}
    if earlier:
        line["earlier_revisions"] = [
            {"revision": r["revision"], "archived_at": r["archived_at"], **msgspec.to_builtins(s), "content_sha256": r["content_sha256"]}
            for r, s in earlier
        ]
    if files:
        line["files"] = files
    return msgspec.json.encode(line) + b"\n"


def _file_path(cid: UUID, sha256: str) -> str:
    return f"attachments/{cid}/{sha256}"


def _header_text(text: str) -> str:
    """A header value on one line: control characters (CR/LF above all, which would start a new
    header) become spaces. Conversations archived before ingest refused them still export."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())


def _address(name: str | None, email: str | None, who: str, kind: str) -> Address:
    """An address header entry; non-ASCII names are encoded per RFC 2047 when the message is
    written (the email package's default policy). An e-mail that is not an address falls back to
    ``<id@visitor.invalid>``, as does a missing one."""
    display = _header_text(name or who)
    if email:
        try:
            return Address(display_name=display, addr_spec=_header_text(email))
        except (ValueError, IndexError, HeaderParseError):
            pass
    return Address(display_name=display, username=_safe_name(who), domain=f"{kind}.invalid")


def _line(m: Message) -> str:
    who = m.sender.name or m.sender.id or ""
    label = {"note": " (internal note)", "event": f" [event: {m.event or 'other'}]"}.get(m.kind, "")
    change = " [deleted]" if m.deleted else (f" [edited {m.edited_at.isoformat()}]" if m.edited_at else "")
    files = "".join(f" [attachment: {a.name or a.url or 'file'}{f', {a.size} bytes' if a.size is not None else ''}]" for a in m.attachments)
    return f"[{m.at.isoformat()}] {m.sender.role}{' ' + who if who else ''}{label}{change}: {m.text}{files}"


def _eml(
    cid: UUID, stored: StoredConversation, content_sha256: str, revision: int, files: dict[str, tuple[Attachment, bytes]]
) -> bytes:
    """One revision as an RFC 5322 message: agents as recipients (by e-mail where known, the
    custodian identity), notes and events marked, stored files attached."""
    message = EmailMessage()
    visitor = stored.visitor
    message["From"] = _address(visitor.name, visitor.email, visitor.id, "visitor")
    agents = tuple(_address(a.name, a.email, a.id, "agent") for a in stored.agents)
    message["To"] = agents if agents else "undisclosed-recipients:;"
    message["Subject"] = _header_text(f"Chat {stored.external_id} ({stored.site}/{stored.channel})" + (f" revision {revision}" if revision > 1 else ""))
    message["Date"] = format_datetime(stored.started_at)
    message["Message-ID"] = f"<{cid}{f'.r{revision}' if revision > 1 else ''}@parley.invalid>"
    message["X-Parley-Conversation-Id"] = str(cid)
    message["X-Parley-Revision"] = str(revision)
    message["X-Parley-Content-SHA256"] = content_sha256
    message.set_content("\n".join(_line(m) for m in stored.messages))
    attached: set[str] = set()
    for m in stored.messages:
        for a in m.attachments:
            if a.sha256 and a.sha256 in files and a.sha256 not in attached:
                attached.add(a.sha256)
                maintype, _, subtype = (a.content_type or "application/octet-stream").partition("/")
                message.add_attachment(files[a.sha256][1], maintype=maintype, subtype=subtype or "octet-stream",
                                       filename=_header_text(a.name or "") or a.sha256)
    return bytes(message)


class ZipBuilder:
    """Writes the export zip into a sealing writer, one batch of conversations at a time, so an
    export of any size needs memory for one batch only. CPU-only: runs in a worker thread.

    Every revision of a conversation is exported. In jsonl exports, stored attachment files are
    written after ``transcripts.jsonl`` (a zip takes one member at a time): ``with_files`` names
    the conversations whose files ``add_files`` writes in a second pass."""

    def __init__(self, out: SealingWriter, export_format: str) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.format = export_format
        self.files: dict[str, str] = {}
        self.count = 0
        self.revisions = 0
        self.with_files: list[UUID] = []
        # Matched by the query at the manifest's ledger head, but deleted (retention, erasure)
        # before the build read them: listed in the manifest, so the export explains its gaps.
        self.deleted: list[UUID] = []
        self._jsonl: Any = None
        self._jsonl_hash = hashlib.sha256()
        if export_format == "jsonl":
            self._jsonl = self.zip.open("transcripts.jsonl", "w", force_zip64=True)

    def add(self, ctx: TenantContext, ids: list[UUID], sealed: dict[UUID, transcripts.Sealed]) -> None:
        for cid in ids:
            if cid not in sealed:
                self.deleted.append(cid)  # deleted since the query ran
                continue
            item = sealed[cid]
            conv_row = item.row
            stored = transcripts.unseal(ctx, item)
            earlier = transcripts.unseal_earlier(ctx, item)
            self.count += 1
            self.revisions += 1 + len(earlier)
            files = transcripts.stored_files(ctx, item, [stored, *[s for _, s in earlier]])
            if self._jsonl is not None:
                if files:
                    self.with_files.append(cid)
                line = _jsonl_line(cid, stored, conv_row, earlier, {a.sha256: _file_path(cid, a.sha256) for a, _ in files if a.sha256})
                self._jsonl.write(line)
                self._jsonl_hash.update(line)
            else:
                blobs = {a.sha256: (a, data) for a, data in files if a.sha256}
                base = f"conversations/{_safe_name(stored.external_id)}-{str(cid)[:8]}"
                for r, s in earlier:
                    self._write(f"{base}.r{r['revision']}.eml", _eml(cid, s, r["content_sha256"], r["revision"], blobs))
                self._write(f"{base}.eml", _eml(cid, stored, conv_row["content_sha256"], conv_row["revision"], blobs))

    def add_files(self, ctx: TenantContext, sealed: dict[UUID, transcripts.Sealed]) -> None:
        """The stored attachment files of a jsonl export (second pass)."""
        self._close_jsonl()
        for cid, item in sealed.items():
            conversations = [transcripts.unseal(ctx, item), *[s for _, s in transcripts.unseal_earlier(ctx, item)]]
            for attachment, data in transcripts.stored_files(ctx, item, conversations):
                if attachment.sha256:
                    self._write(_file_path(cid, attachment.sha256), data)

    def _write(self, name: str, data: bytes) -> None:
        self.zip.writestr(name, data)
        self.files[name] = hashlib.sha256(data).hexdigest()

    def _close_jsonl(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
            self.files["transcripts.jsonl"] = self._jsonl_hash.hexdigest()

    def finish(self, manifest: dict[str, Any], sign: Any) -> None:
        self._close_jsonl()
        manifest = {**manifest, "count": self.count, "revisions": self.revisions, "files": self.files,
                    "deleted_while_exporting": sorted(str(cid) for cid in self.deleted)}
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
        self.zip.writestr("manifest.json", manifest_bytes)
        self.zip.writestr("signature.json", json.dumps(sign(manifest_bytes), indent=2).encode())
        self.zip.close()


async def build_export(rt: Runtime, ctx: TenantContext, row: dict[str, Any], progress: Any = None) -> tuple[int, int, str]:
    """Write the sealed export file; returns (conversations, conversations the query matched that
    were deleted before they could be read, SHA-256 of the zip)."""
    criteria = json_column(row["criteria"])
    q = ctx.crypto.open_note(criteria["q_sealed"]).decode() if criteria.get("q_sealed") else ""
    filters = msgspec.convert(opened_filters(ctx, criteria.get("filters", {})), SearchFilters)
    ids = await all_matching_ids(rt, ctx, q, filters)
    head = await LedgerHead.select().where(LedgerHead.tenant == ctx.tenant_id).first()
    path = _path(rt, ctx.tenant_id, row["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as raw:  # noqa: ASYNC230 - a local file, opened once per export
        sealed_out = ctx.crypto.seal_stream(row["id"], raw)
        builder = ZipBuilder(sealed_out, row["format"])
        for start in range(0, len(ids), LOAD_BATCH):
            batch = ids[start:start + LOAD_BATCH]
            await rt.workers.run(builder.add, ctx, batch, await transcripts.fetch_sealed(ctx, batch))
            if progress is not None:
                await progress(min(start + LOAD_BATCH, len(ids)), len(ids))
        for start in range(0, len(builder.with_files), LOAD_BATCH):
            batch = builder.with_files[start:start + LOAD_BATCH]
            await rt.workers.run(builder.add_files, ctx, await transcripts.fetch_sealed(ctx, batch))
        manifest = {
            "format": "parley-export/v1",
            "export_id": str(row["id"]),
            "tenant": ctx.slug,
            "requested_by": row["requested_by"],
            "created_at": rt.clock.now().isoformat(),
            "query": q,
            "filters": opened_filters(ctx, criteria.get("filters", {})),
            "export_format": row["format"],
            "ledger_head": {"seq": head["seq"], "hash": head["hash"]} if head else None,
        }
        manifest["signing_keys"] = [msgspec.to_builtins(k) for k in await rt.signing.history()]
        signer = await rt.signing.signer()
        await rt.workers.run(builder.finish, manifest, lambda data: _signature(signer, data))
        sealed_out.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, path)
    return builder.count, len(builder.deleted), sealed_out.sha256


def _signature(signer: Signer, manifest_bytes: bytes) -> dict[str, Any]:
    signature = signer.sign(manifest_bytes)
    return {
        "algorithm": "Ed25519",
        "key_version": signature.key_version,
        "public_key": signature.public_key,
        "signature": signature.signature,
        "signed": "manifest.json",
    }


def _operation(export_id: UUID) -> str:
    return f"export:{export_id}"


async def run_one(rt: Runtime, row: dict[str, Any]) -> None:
    try:
        async with leases.held(rt, row["tenant"], _operation(row["id"]), run_id=row["id"]):
            current = await Export.select(Export.status).where(Export.id == row["id"]).first()
            if current is None or current["status"] not in ("queued", "running"):
                return  # another process built it while this one waited
            await _run(rt, row)
    except leases.LeaseBusy:
        return  # another process is building it


async def _run(rt: Runtime, row: dict[str, Any]) -> None:
    ctx = await tenant_context(rt, row["tenant"])
    await Export.update({Export.status: "running"}).where(Export.id == row["id"])

    async def progress(done: int, total: int) -> None:
        await Export.update({Export.progress: done, Export.total: total}).where(Export.id == row["id"])

    try:
        count, deleted, digest = await build_export(rt, ctx, row, progress)
        now = rt.clock.now()
        await Export.update({
            Export.status: "done", Export.progress: count, Export.total: count, Export.finished_at: now,
            Export.expires_at: now + timedelta(hours=rt.settings.export_ttl_hours), Export.file_sha256: digest,
        }).where(Export.id == row["id"])
        await ledger.append(row["tenant"], ledger.Entry(actor="system:exports", action="export.done", subject=str(row["id"]),
                                                        details={"count": count, "deleted_while_exporting": deleted}))
    except Exception as exc:  # recorded on the export for the requester; the job goes on
        log.exception("export_failed", export=str(row["id"]))
        _path(rt, row["tenant"], row["id"]).with_suffix(".partial").unlink(missing_ok=True)
        # Says why in words a requester can act on; the exception's own text stays in the log (it may quote content).
        reason = (f"the export could not be built ({type(exc).__name__}); the server log has the details "
                  f"(export_failed, export={row['id']}); request a new export or ask your operator")
        await Export.update({Export.status: "failed", Export.error: reason[:300]}).where(Export.id == row["id"])


async def run_pending(rt: Runtime, limit: int = 5, tenant_id: UUID | None = None) -> int:
    """Build queued exports, and those left ``running`` by a process that died (oldest first;
    ``tenant_id`` narrows it to one tenant's, as a test that waits for its own export does)."""
    now = rt.clock.now()
    mine = (Export.tenant == tenant_id) if tenant_id is not None else (Export.id.is_not_null())
    rows = await Export.select().where((Export.status == "queued") & mine).order_by(Export.created_at).limit(limit)
    for orphan in await Export.select().where((Export.status == "running") & mine).order_by(Export.created_at).limit(limit):
        if await leases.running(orphan["tenant"], _operation(orphan["id"]), now) is None:
            log.warning("export_restarted", export=str(orphan["id"]))
            rows.append(orphan)
    for row in rows:
        await run_one(rt, row)
    return len(rows)


async def download(rt: Runtime, principal: Principal, export_id: UUID) -> tuple[AsyncIterator[bytes], str]:
    """The zip's bytes as they are decrypted, chunk by chunk (ledgered before the first byte)."""
    row = await Export.select().where((Export.id == export_id) & (Export.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no export {export_id}")
    if row["status"] != "done":
        raise Conflict(f"the export is {row['status']}, not ready for download", field="status")
    ctx = await tenant_context(rt, principal.tenant_id)
    source = open(_path(rt, principal.tenant_id, export_id), "rb")  # noqa: ASYNC230 - closed by the stream below
    chunks = ctx.crypto.open_stream(export_id, source)
    await ledger.append(principal.tenant_id, ledger.Entry(
        actor=principal.actor, action="export.download", subject=str(export_id), content_hash=row["file_sha256"],
    ))

    async def stream() -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await rt.workers.run(next, chunks, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            source.close()

    return stream(), f"parley-export-{export_id}.zip"


async def expire(rt: Runtime, now: datetime | None = None) -> int:
    now = now or rt.clock.now()
    rows = await Export.select().where((Export.status == "done") & (Export.expires_at <= now))
    for row in rows:
        _path(rt, row["tenant"], row["id"]).unlink(missing_ok=True)
        await Export.update({Export.status: "expired"}).where(Export.id == row["id"])
        await ledger.append(row["tenant"], ledger.Entry(actor="system:exports", action="export.expire", subject=str(row["id"])))
    return len(rows)


class ExportFiles:
    """Finished exports are sealed under a master version: rotation re-wraps their data keys (the
    header line only), retirement waits until none needs the old version."""

    name = "export files"

    async def _files(self, rt: Runtime) -> AsyncIterator[tuple[dict[str, Any], Path]]:
        for row in await Export.select(Export.id, Export.tenant, Export.status).where(Export.status.is_in(["done", "running"])):
            path = _path(rt, row["tenant"], row["id"])
            if row["status"] == "running":
                path = path.with_suffix(".partial")
            if path.exists():
                yield row, path

    async def rewrap(self, rt: Runtime) -> Rewrapped:
        changed = 0
        async for row, path in self._files(rt):
            if row["status"] != "done":
                continue  # still being written; the next rotation (or retire's refusal) covers it
            ctx = await tenant_context(rt, row["tenant"])
            if await rt.workers.run(ctx.crypto.rewrap_stream_file, row["id"], path):
                changed += 1
        return Rewrapped(count=changed)

    async def still_using(self, rt: Runtime, version: int) -> list[str]:
        ids = []
        async for row, path in self._files(rt):
            ctx = await tenant_context(rt, row["tenant"])
            if ctx.crypto.stream_version(path) == version:
                ids.append(f"{ctx.slug}/{str(row['id'])[:8]}{' (being written)' if row['status'] == 'running' else ''}")
        return [f"{len(ids)} export file(s) ({', '.join(ids[:5])}{' …' if len(ids) > 5 else ''})"] if ids else []
