"""Transcript ingest (chat platform) and read-back (compliance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Reference, RequestBody, Schema
from litestar.params import FromPath, QueryParameter

from api.auth import requires
from api.deps import Caller, Rt
from archive import ingest, transcripts
from archive.ingest import OnConflict
from archive.models import BatchResult, ConversationOut, IngestResult, RevisionsOut
from archive.tenancy import Principal


@dataclass
class IngestOperation(Operation):
    """The body is one conversation or a batch; msgspec cannot type an untagged union of objects,
    so the handler decodes the body itself and the schema is declared here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="One conversation, or {\"conversations\": [...]} (at most PARLEY_MAX_BATCH).",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        one_of=[
                            Reference(ref="#/components/schemas/ConversationIn"),
                            Reference(ref="#/components/schemas/BatchIn"),
                        ]
                    )
                )
            },
        )
        # The handler answers 201 when anything was stored and 200 when the request only repeated
        # what is archived (the same content under the same external_id): same body either way.
        created = (self.responses or {}).get("201")
        if isinstance(created, OpenAPIResponse):
            self.responses = {
                **(self.responses or {}),
                "200": OpenAPIResponse(description="Nothing new: every conversation was already archived with this content",
                                       content=created.content),
            }


class TranscriptController(Controller):
    path = "/v1/transcripts"
    tags = ["archive"]

    @post(
        "/",
        guards=[requires("ingest")],
        operation_class=IngestOperation,
        summary="Archive finished conversations (idempotent on external_id)",
    )
    async def ingest_transcripts(
        self, request: Request[Principal, Any, Any], rt: Rt, principal: Caller,
        on_conflict: Annotated[OnConflict, QueryParameter(
            description=(
                "What different content under an archived external_id does: 'reject' (409, the default) or "
                "'revise' (stored as that conversation's next revision; every revision stays readable)."
            ),
        )] = "reject",
    ) -> Response[IngestResult | BatchResult]:
        results, is_batch = await ingest.ingest_body(rt, principal, await request.body(), on_conflict)
        status = 201 if any(r.status in ("created", "revised") for r in results) else 200
        if is_batch:
            return Response(BatchResult(results=results), status_code=status)
        return Response(results[0], status_code=status)

    @get("/{conversation_id:str}", guards=[requires("compliance")], summary="Read one conversation, latest revision unless ?revision=N (ledgered)")
    async def read_transcript(
        self, rt: Rt, principal: Caller, conversation_id: FromPath[UUID],
        revision: Annotated[int | None, QueryParameter(ge=1, description="an earlier revision (see /revisions)")] = None,
    ) -> ConversationOut:
        return await transcripts.read(rt, principal, conversation_id, revision)

    @get("/{conversation_id:str}/revisions", guards=[requires("compliance")], summary="Every revision of a conversation, oldest first")
    async def list_revisions(self, rt: Rt, principal: Caller, conversation_id: FromPath[UUID]) -> RevisionsOut:
        return await transcripts.list_revisions(rt, principal, conversation_id)

    @get(
        "/{conversation_id:str}/files/{sha256:str}", guards=[requires("compliance")],
        summary="An attachment file a connector stored, by its SHA-256 (ledgered)", media_type="application/octet-stream",
    )
    async def read_file(self, rt: Rt, principal: Caller, conversation_id: FromPath[UUID], sha256: FromPath[str]) -> Response[bytes]:
        data, attachment = await transcripts.read_file(rt, principal, conversation_id, sha256.lower())
        name = attachment.name or sha256
        fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_").replace("?", "_")
        return Response(
            data, media_type=attachment.content_type or "application/octet-stream",
            headers={
                "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}",
                "X-Content-Type-Options": "nosniff",
            },
        )
