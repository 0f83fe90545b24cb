"""The review queue over HTTP: list, read (ledgered), act on one item or many, reveal."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import requires
from api.deps import Caller, Rt
from api.openapi import problems
from archive.supervision import reviews
from archive.validation import convert


def _listed(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class ReviewController(Controller):
    path = "/v1/reviews"
    tags = ["supervision"]
    guards = [requires("reviewer", "compliance")]

    @get("/", summary="The review queue, oldest first, with filters, counts per status and a cursor", responses=problems(422))
    async def list_reviews(
        self,
        principal: Caller,
        status: Annotated[str | None, QueryParameter(description="comma list: open,claimed,escalated,resolved,false_positive")] = None,
        policy: FromQuery[str | None] = None,
        severity: Annotated[str | None, QueryParameter(description="comma list: low,medium,high")] = None,
        assignee: Annotated[str | None, QueryParameter(description="me, none, or key:<prefix>")] = None,
        site: FromQuery[str | None] = None,
        channel: FromQuery[str | None] = None,
        case: FromQuery[str | None] = None,
        from_: Annotated[str | None, QueryParameter(name="from", description="flagged at or after (RFC 3339)")] = None,
        to: Annotated[str | None, QueryParameter(description="flagged before (RFC 3339)")] = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[str | None] = None,
        sort: Annotated[str | None, QueryParameter(description="oldest (default) or newest")] = None,
    ) -> reviews.ReviewPage:
        raw = {"status": _listed(status), "severity": _listed(severity), "policy": policy, "assignee": assignee, "site": site,
               "channel": channel, "case": case, "from": from_, "to": to, "cursor": cursor, "limit": int(limit) if limit and limit.isdigit() else limit,
               "sort": sort}
        query = convert({k: v for k, v in raw.items() if v not in (None, [])}, reviews.ListQuery, "the query parameters are invalid")
        return await reviews.list_reviews(principal, query)

    @post("/actions", status_code=200, summary="One action on many items at once: all of them or none", responses=problems(404))
    async def bulk_action(self, rt: Rt, principal: Caller, data: JSONBody[reviews.BulkActionIn]) -> reviews.BulkResult:
        return reviews.BulkResult(items=await reviews.act(rt, principal, data.ids, data, bulk=True))

    @get("/{review_id:str}", summary="One item: its conversation with the matches marked, participants pseudonymised (ledgered as a read)")
    async def get_review(self, rt: Rt, principal: Caller, review_id: FromPath[UUID]) -> reviews.ReviewView:
        return await reviews.view(rt, principal, review_id)

    @post("/{review_id:str}/actions", status_code=200, summary="claim, assign, comment, escalate, resolve, false_positive or reopen (ledgered)")
    async def action(self, rt: Rt, principal: Caller, review_id: FromPath[UUID], data: JSONBody[reviews.ActionIn]) -> reviews.ReviewOut:
        return (await reviews.act(rt, principal, [review_id], data))[0]

    @post("/{review_id:str}/reveal", status_code=200, guards=[requires("compliance")],
          summary="The item with the participants' real names, e-mails and ids (compliance; the reason is ledgered)")
    async def reveal(self, rt: Rt, principal: Caller, review_id: FromPath[UUID], data: JSONBody[reviews.RevealIn]) -> reviews.ReviewView:
        return await reviews.view(rt, principal, review_id, reveal_reason=data.reason)
