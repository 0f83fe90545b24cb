"""The review queue: a list with counts and filters, one item at a time, actions by key.

Everything goes through ``archive.supervision.reviews``, as ``/v1/reviews`` does: the domain
functions scope every query to the caller (a reviewer's session never lists, opens or acts on an
item outside its key's sites and channels), pseudonymise participants for reviewers, ledger the
read of an item's conversation and every action. Acting does not re-read the conversation: the
response updates the item's head, its history, its row and the counts, so the ledger records one
read per item opened, as the API's does.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from api.auth import requires
from api.console.render import day_bound, is_htmx, page
from api.deps import Caller, Rt
from archive.errors import DomainError, FieldError, InvalidInput
from archive.supervision import reviews
from archive.tenancy import Principal
from archive.validation import convert

PAGE_SIZE = 50
# What "to do" means for each role: reviewers work open and claimed items; escalated ones wait for compliance.
TO_DO = {"reviewer": "open,claimed", "compliance": "open,claimed,escalated"}
TABS = (("open", "Open"), ("claimed", "Claimed"), ("escalated", "Escalated"), ("resolved", "Resolved"), ("false_positive", "False positive"))
CLOSING = ("resolved", "false_positive", "escalated")


class Queue:
    """The queue a page shows, from its address."""

    FIELDS = ("status", "severity", "site", "channel", "assignee", "from", "to", "sort")

    def __init__(self, principal: Principal, values: dict[str, str | None]) -> None:
        self.principal = principal
        self.values = {k: (values.get(k) or "") for k in self.FIELDS}
        if not self.values["status"]:
            self.values["status"] = TO_DO.get(principal.role, "open")

    @property
    def statuses(self) -> list[str]:
        return [] if self.values["status"] == "all" else [s for s in self.values["status"].split(",") if s]

    def params(self, **changes: str | None) -> dict[str, str]:
        merged: dict[str, str | None] = {**self.values, **changes}
        return {k: v for k, v in merged.items() if v}

    def url(self, path: str = "/console/reviews", **changes: str | None) -> str:
        return f"{path}?{urlencode(self.params(**changes))}"

    def query(self, cursor: str | None = None, limit: int = PAGE_SIZE) -> reviews.ListQuery:
        """The API's list query, validated as ``GET /v1/reviews`` validates it."""
        errors: list[FieldError] = []
        start, end = day_bound(self.values["from"], "from", errors), day_bound(self.values["to"], "to", errors, end=True)
        if errors:
            raise InvalidInput("the queue filters are invalid", errors)
        raw: dict[str, Any] = {
            "status": self.statuses, "severity": [s for s in self.values["severity"].split(",") if s],
            "site": self.values["site"] or None, "channel": self.values["channel"] or None, "assignee": self.values["assignee"] or None,
            "from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
            "sort": self.values["sort"] or None, "cursor": cursor, "limit": limit,
        }
        return convert({k: v for k, v in raw.items() if v not in (None, [])}, reviews.ListQuery, "the queue filters are invalid")


def _queue(principal: Principal, status: str | None, severity: str | None, site: str | None, channel: str | None,
           assignee: str | None, date_from: str | None, date_to: str | None, sort: str | None) -> Queue:
    return Queue(principal, {"status": status, "severity": severity, "site": site, "channel": channel, "assignee": assignee,
                             "from": date_from, "to": date_to, "sort": sort})


async def _form_queue(request: Request[Any, Any, Any], principal: Principal) -> tuple[Queue, Any]:
    form = await request.form()
    return Queue(principal, {k: str(form.get(f"queue_{k}") or "") for k in Queue.FIELDS}), form


class ReviewPages(Controller):
    path = "/reviews"
    guards = [requires("reviewer", "compliance")]
    include_in_schema = False

    @get("/")
    async def queue_page(
        self, request: Request[Any, Any, Any], rt: Rt, principal: Caller,
        status: FromQuery[str | None] = None, severity: FromQuery[str | None] = None, site: FromQuery[str | None] = None,
        channel: FromQuery[str | None] = None, assignee: FromQuery[str | None] = None,
        date_from: Annotated[str | None, QueryParameter(name="from")] = None,
        date_to: Annotated[str | None, QueryParameter(name="to")] = None,
        sort: FromQuery[str | None] = None, cursor: FromQuery[str | None] = None,
    ) -> Template:
        queue = _queue(principal, status, severity, site, channel, assignee, date_from, date_to, sort)
        listing = await reviews.list_reviews(principal, queue.query(cursor))
        target = request.headers.get("hx-target", "") if is_htmx(request) else ""
        if target.startswith("more"):
            return page(request, "review_rows.html", section="reviews", queue=queue, listing=listing, selected=None)
        item = await reviews.view(rt, principal, listing.items[0].id) if listing.items and not cursor else None
        return _queue_page(request, queue, listing, item)

    @get("/{review_id:str}")
    async def item_page(
        self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, review_id: FromPath[UUID],
        status: FromQuery[str | None] = None, severity: FromQuery[str | None] = None, site: FromQuery[str | None] = None,
        channel: FromQuery[str | None] = None, assignee: FromQuery[str | None] = None,
        date_from: Annotated[str | None, QueryParameter(name="from")] = None,
        date_to: Annotated[str | None, QueryParameter(name="to")] = None,
        sort: FromQuery[str | None] = None,
    ) -> Template:
        """One item (a ledgered read of its conversation): the pane alone for htmx, else the queue with it."""
        queue = _queue(principal, status, severity, site, channel, assignee, date_from, date_to, sort)
        item = await reviews.view(rt, principal, review_id)
        if is_htmx(request) and request.headers.get("hx-target") == "item":
            return page(request, "review_item.html", section="reviews", queue=queue, item=item, problem=None)
        listing = await reviews.list_reviews(principal, queue.query())
        return _queue_page(request, queue, listing, item)

    @post("/{review_id:str}/actions", status_code=200)
    async def act(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, review_id: FromPath[UUID]) -> Template | Redirect:
        """One action on the item shown; answers with its new head, row, history and counts (a
        plain form post, without JavaScript, is sent back to the item's page instead)."""
        queue, form = await _form_queue(request, principal)
        action = str(form.get("action") or "")
        note = str(form.get("note") or "").strip() or None
        raw = {"action": action, "note": note, "assignee": str(form.get("assignee") or "") or None}
        try:
            data = convert({k: v for k, v in raw.items() if v is not None}, reviews.ActionIn, "the action is invalid")
            (done,) = await reviews.act(rt, principal, [review_id], data)
        except DomainError as exc:
            if not is_htmx(request):
                raise
            current = await reviews.get_item(principal, review_id)
            return page(request, "review_head.html", section="reviews", status=exc.status, queue=queue, item_out=current,
                        problem=exc, note=note or "", history_entry=None)
        if not is_htmx(request):
            return Redirect(queue.url(f"/console/reviews/{review_id}"), status_code=303)
        counted = await reviews.list_reviews(principal, queue.query(limit=1))  # for its counts
        headers = {"HX-Trigger-After-Settle": f'{{"reviewDone": "{review_id}"}}'} if done.status in CLOSING and action != "comment" else None
        return page(
            request, "review_head.html", section="reviews", headers=headers, queue=queue, item_out=done, problem=None, note="",
            history_entry={"actor": principal.actor, "action": data.action, "status": done.status, "at": done.updated_at, "note": note},
            counts=counted.counts, tabs=TABS, to_do=TO_DO.get(principal.role, "open"),
        )

    @post("/actions", status_code=200)
    async def act_on_many(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller) -> Template | Redirect:
        """One action on every selected item, all of them or none (the domain decides)."""
        queue, form = await _form_queue(request, principal)
        ids: list[str] = [str(v) for v in form.getall("ids")] if "ids" in form else []
        action = str(form.get("action") or "")
        raw = {"ids": ids, "action": action, "note": str(form.get("note") or "").strip() or None}
        problem: DomainError | None = None
        try:
            data = convert({k: v for k, v in raw.items() if v is not None}, reviews.BulkActionIn, "the bulk action is invalid")
            await reviews.act(rt, principal, data.ids, data, bulk=True)
        except DomainError as exc:
            if not is_htmx(request):
                raise
            problem = exc
        if not is_htmx(request):
            return Redirect(queue.url(), status_code=303)
        listing = await reviews.list_reviews(principal, queue.query())
        return page(request, "review_list.html", section="reviews", status=problem.status if problem else 200, queue=queue,
                    listing=listing, selected=None, bulk_problem=problem, bulk_done=None if problem else (len(ids), action))

    @post("/{review_id:str}/reveal", guards=[requires("compliance")], status_code=200)
    async def reveal(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, review_id: FromPath[UUID]) -> Template:
        """The participants' real names, for compliance, with a reason (ledgered)."""
        queue, form = await _form_queue(request, principal)
        reason = str(form.get("reason") or "").strip()
        if not reason:  # (the field is required, but spaces satisfy the browser)
            problem = InvalidInput("say why the names are needed", [FieldError("reason", "a reason is needed: it is ledgered with the reveal")])
            if not is_htmx(request):
                raise problem
            # Next to the form: the item stays as it was, nothing revealed, nothing read again.
            return page(request, "error_fragment.html", section="reviews", status=problem.status, title="Not revealed", status_code=problem.status,
                        detail=problem.detail, errors=problem.errors, headers={"HX-Retarget": "#reveal-problem", "HX-Reswap": "innerHTML"})
        data = convert({"reason": reason}, reviews.RevealIn, "say why the names are needed")
        item = await reviews.view(rt, principal, review_id, reveal_reason=data.reason)
        if not is_htmx(request):
            return _queue_page(request, queue, await reviews.list_reviews(principal, queue.query()), item)
        return page(request, "review_item.html", section="reviews", queue=queue, item=item, problem=None)


def _queue_page(request: Request[Any, Any, Any], queue: Queue, listing: reviews.ReviewPage, item: reviews.ReviewView | None) -> Template:
    return page(request, "reviews.html", section="reviews", queue=queue, listing=listing, item=item,
                selected=item.item.id if item else None, problem=None, tabs=TABS, to_do=TO_DO.get(queue.principal.role, "open"),
                bulk_problem=None, bulk_done=None)
