"""Transcript ingest (chat platform) and read-back (compliance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.params import FromPath

from api.auth import requires
from api.deps import Caller, Rt
from archive import ingest, transcripts
from archive.models import BatchResult, ConversationOut, IngestResult
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


class TranscriptController(Controller):
    path = "/v1/transcripts"
    tags = ["archive"]

    @post(
        "/",
        guards=[requires("ingest")],
        operation_class=IngestOperation,
        summary="Archive finished conversations (idempotent on external_id)",
    )
    async def ingest_transcripts(self, request: Request[Principal, Any, Any], rt: Rt, principal: Caller) -> Response[IngestResult | BatchResult]:
        results, is_batch = await ingest.ingest_body(rt, principal, await request.body())
        status = 201 if any(r.status == "created" for r in results) else 200
        if is_batch:
            return Response(BatchResult(results=results), status_code=status)
        return Response(results[0], status_code=status)

    @get("/{conversation_id:str}", guards=[requires("compliance")], summary="Read one conversation (ledgered)")
    async def read_transcript(self, rt: Rt, principal: Caller, conversation_id: FromPath[UUID]) -> ConversationOut:
        return await transcripts.read(rt, principal, conversation_id)
