"""``GET /v1/reports/support``: support KPIs per agent, group, site, channel, local day or hour.

The report merges cells (archive/metrics/cells.py); every figure follows from the definitions in
archive/metrics/compute.py and the tenant's settings (``time_zone``, ``sla_first_reply_seconds``,
``fcr_days``), applied when the report is made — changing a setting changes every report, past
periods included. Conversations belong to the bucket their start falls in, in the tenant's time
zone; a range is ``[from, to)``.

Reading a report is ledgered (``report.support``): agent performance figures are personal data
about the agents, and who looked at them is worth knowing.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import math
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import msgspec

from archive import ledger
from archive.errors import FieldError, InvalidInput
from archive.limits import date_problem
from archive.metrics import cells
from archive.metrics.cells import Cell, Group, Values, values_of

if TYPE_CHECKING:
    from archive.runtime import Runtime
    from archive.tenancy import Principal, TenantSettings

GroupBy = Literal["agent", "group", "site", "channel", "day", "hour"]
GROUP_BYS: tuple[str, ...] = ("agent", "group", "site", "channel", "day", "hour")
MAX_DAYS = 400
DEFAULT_DAYS = 30
LEVELS = ("1", "2", "3", "4+")


class Span(msgspec.Struct):
    median: float | None
    p90: float | None


class Csat(msgspec.Struct):
    mean: float | None
    responses: int
    satisfied_rate: float | None  # share of 4 and 5


class Nps(msgspec.Struct):
    score: float | None  # % promoters (9-10) minus % detractors (0-6)
    responses: int


class Ces(msgspec.Struct):
    mean: float | None
    responses: int


class Figures(msgspec.Struct, kw_only=True):
    """One group's figures (the totals: every conversation once)."""

    conversations: int
    first_reply_s: Span
    resolution_s: Span
    fcr_rate: float | None
    sla_rate: float | None
    csat: Csat
    nps: Nps
    ces: Ces
    concurrency_s: dict[str, float]
    # Beyond the shape: conversations a visitor waited in without an agent's reply, the
    # mean of every agent reply time, and handovers between agents.
    missed: int
    avg_reply_s: float | None
    handovers: int


class GroupOut(Figures, kw_only=True):
    """A group: its key (null for conversations without one: no agent, no group) and figures."""

    key: str | None


class ReportOut(msgspec.Struct, kw_only=True):
    from_: str = msgspec.field(name="from")
    to: str
    group_by: str
    time_zone: str
    sla_first_reply_seconds: int
    fcr_days: int
    groups: list[GroupOut]
    totals: Figures


# --- figures from groups ----------------------------------------------------------------------


class Distribution:
    """The values of one figure over many cells' groups, merged: sorted values, or — when any
    part came counted — the distinct values with cumulative counts."""

    def __init__(self, parts: list[Values]) -> None:
        plain = sorted(values_of(b"".join(p.values for p in parts if not p.counts)))
        counted = [p for p in parts if p.counts]
        self.cumulative: list[int] | None = None
        if not counted:
            self.keys = plain
            self.size = len(plain)
            return
        tally = Counter(plain)
        for part in counted:
            for value, count in zip(values_of(part.values), values_of(part.counts), strict=True):
                tally[value] += count
        self.keys = sorted(tally)
        self.cumulative = list(itertools.accumulate(tally[k] for k in self.keys))
        self.size = self.cumulative[-1] if self.cumulative else 0

    def at(self, rank: int) -> int:
        """The value of 0-based rank ``rank``."""
        if self.cumulative is None:
            return self.keys[rank]
        return self.keys[bisect.bisect_right(self.cumulative, rank)]

    def count_at_most(self, limit: int) -> int:
        index = bisect.bisect_right(self.keys, limit)
        if self.cumulative is None:
            return index
        return self.cumulative[index - 1] if index else 0

    def percentile(self, fraction: float) -> float | None:
        """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
        if not self.size:
            return None
        rank = fraction * (self.size - 1)
        low = math.floor(rank)
        value = float(self.at(low))
        if rank > low:
            value += (self.at(low + 1) - value) * (rank - low)
        return round(value, 1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


_SUMMED = tuple(name for name in Group.__struct_fields__ if name not in ("first_reply", "resolution", "next_contact", "concurrency"))


def figures(groups: list[Group], settings: TenantSettings) -> Figures:
    """One group's figures, from its cells' groups."""
    first_reply = Distribution([g.first_reply for g in groups])
    resolution = Distribution([g.resolution for g in groups])
    fcr_window = settings.fcr_days * 86_400
    # The sums, column by column (a group is a tuple underneath: this is the fast way through
    # thousands of them).
    t, concurrency, returned = Group(), [0.0] * 4, 0
    if groups:
        columns = dict(zip(Group.__struct_fields__, zip(*map(msgspec.structs.astuple, groups), strict=True), strict=True))
        t = Group(**{name: sum(columns[name]) for name in _SUMMED})
        concurrency = [sum(level) for level in zip(*columns["concurrency"], strict=True)]
        returned = sum(v.count_at_most(fcr_window) for v in columns["next_contact"] if v.values)
    return Figures(
        conversations=t.conversations,
        first_reply_s=Span(first_reply.percentile(0.5), first_reply.percentile(0.9)),
        resolution_s=Span(resolution.percentile(0.5), resolution.percentile(0.9)),
        fcr_rate=_rate(t.conversations - returned, t.conversations),
        sla_rate=_rate(first_reply.count_at_most(settings.sla_first_reply_seconds), t.awaited),
        csat=Csat(
            mean=round(t.csat_sum / t.csat_n, 2) if t.csat_n else None,
            responses=t.csat_n,
            satisfied_rate=_rate(t.csat_satisfied, t.csat_n),
        ),
        nps=Nps(score=round(100 * (t.nps_promoters - t.nps_detractors) / t.nps_n, 1) if t.nps_n else None, responses=t.nps_n),
        ces=Ces(mean=round(t.ces_sum / t.ces_n, 2) if t.ces_n else None, responses=t.ces_n),
        concurrency_s={level: round(concurrency[i], 1) for i, level in enumerate(LEVELS)},
        missed=t.awaited - first_reply.size,
        avg_reply_s=round(t.reply_total / t.replies, 1) if t.replies else None,
        handovers=t.handovers,
    )


# --- the request ----------------------------------------------------------------------------


class BadQuery(InvalidInput):
    """A query parameter that cannot be used: 400, like Litestar's own parameter problems."""

    status = 400
    title = "Malformed request"


class Range(msgspec.Struct, frozen=True):
    lo: int
    hi: int


def _moment(text: str, zone: ZoneInfo, field: str, end: bool) -> int:
    """A date (the start of that local day; for ``to``, the end of it) or an RFC 3339 time (one
    without an offset is read in the tenant's time zone)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=zone)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(
            f"{field} is not a date or time", [FieldError(field, "a date (2026-11-01) or an RFC 3339 time (2026-11-01T08:00:00+01:00)")]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if problem := date_problem(moment):  # before adding a day or converting (archive.limits)
        raise BadQuery(f"{field} {problem}", [FieldError(field, problem)])
    if len(value) == 10:
        return cells.day_start(day + timedelta(days=1) if end else day, zone)
    return math.floor(moment.timestamp())


def parse_range(from_: str | None, to: str | None, zone: ZoneInfo, now: int) -> Range:
    """``[from, to)``; by default the last 30 local days, today included."""
    hi = _moment(to, zone, "to", end=True) if to else now
    if from_:
        lo = _moment(from_, zone, "from", end=False)
    else:
        lo = cells.day_start(cells.local_day(hi - 1, zone) - timedelta(days=DEFAULT_DAYS - 1), zone)
    if hi <= lo:
        raise BadQuery("the range is empty", [FieldError("to", "must be later than from")])
    # Days on the tenant's calendar: a range across more nights the clocks go back than forward
    # is a few hours longer than 400 × 24 h and still 400 days.
    wall = datetime.fromtimestamp(hi, zone).replace(tzinfo=None) - datetime.fromtimestamp(lo, zone).replace(tzinfo=None)
    if wall > timedelta(days=MAX_DAYS):
        raise BadQuery(f"a report covers at most {MAX_DAYS} days", [FieldError("from", f"at most {MAX_DAYS} days before to")])
    return Range(lo, hi)


def check_group_by(value: str) -> str:
    if value not in GROUP_BYS:
        raise BadQuery(f"cannot group by {value!r}", [FieldError("group_by", f"one of {', '.join(GROUP_BYS)}")])
    return value


# --- the report -----------------------------------------------------------------------------


async def support(rt: Runtime, principal: Principal, from_: str | None, to: str | None, group_by: str) -> ReportOut:
    check_group_by(group_by)
    ctx = await rt.tenants.context(principal.tenant_id)
    settings = ctx.settings
    zone = ZoneInfo(settings.time_zone)
    now = math.floor(rt.clock.now().timestamp())
    span = parse_range(from_, to, zone, now)
    dims = [group_by] if group_by == "day" else [group_by, "day"]
    parts = await cells.collect(principal.tenant_id, zone, span.lo, span.hi, dims, now)
    grouped = _grouped(parts, group_by, zone, span)
    totals = figures([g for part in parts for g in part["day"].values()], settings)
    await ledger.append(principal.tenant_id, ledger.Entry(
        actor=principal.actor, action="report.support", subject=group_by,
        details={"from": _iso(span.lo, zone), "to": _iso(span.hi, zone)},
    ))
    return ReportOut(
        from_=_iso(span.lo, zone), to=_iso(span.hi, zone), group_by=group_by, time_zone=settings.time_zone,
        sla_first_reply_seconds=settings.sla_first_reply_seconds, fcr_days=settings.fcr_days,
        groups=[GroupOut(key=key, **msgspec.structs.asdict(figures(groups, settings))) for key, groups in grouped],
        totals=totals,
    )


def _iso(moment: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(moment, zone).isoformat()


def _grouped(parts: list[dict[str, Cell]], group_by: str, zone: ZoneInfo, span: Range) -> list[tuple[str | None, list[Group]]]:
    """Each group's cell groups, in report order: time buckets in time order (empty ones
    included, so a chart has no holes), other keys alphabetically, the unnamed one ("") last."""
    if group_by == "day":
        days = cells.days_between(span.lo, span.hi, zone)
        return [(day.isoformat(), list(part["day"].values())) for (day, _, _), part in zip(days, parts, strict=True)]
    found: dict[str, list[Group]] = defaultdict(list)
    for part in parts:
        for key, group in part[group_by].items():
            found[key].append(group)
    if group_by == "hour":
        keys = cells.HourKeys(zone, span.lo, span.hi)
        hours = sorted({keys(t) for t in range(span.lo, span.hi, 3600)} | {keys(span.hi - 1)} | {int(k) for k in found})
        return [(_iso(hour, zone)[:16] + _iso(hour, zone)[19:], found.get(str(hour), [])) for hour in hours]
    ordered = sorted((k for k in found if k), key=str.casefold)
    return [(k, found[k]) for k in ordered] + ([(None, found[""])] if "" in found else [])


# --- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "scope", "key", "conversations", "first_reply_median_s", "first_reply_p90_s", "resolution_median_s", "resolution_p90_s",
    "fcr_rate", "sla_rate", "csat_mean", "csat_responses", "csat_satisfied_rate", "nps_score", "nps_responses", "ces_mean",
    "ces_responses", "concurrency_1_s", "concurrency_2_s", "concurrency_3_s", "concurrency_4plus_s", "missed",
    "avg_reply_s", "handovers",
)


def _csv_row(scope: str, key: str | None, f: Figures | GroupOut) -> list[object]:
    values: list[object] = [
        scope, key, f.conversations, f.first_reply_s.median, f.first_reply_s.p90, f.resolution_s.median, f.resolution_s.p90,
        f.fcr_rate, f.sla_rate, f.csat.mean, f.csat.responses, f.csat.satisfied_rate, f.nps.score, f.nps.responses, f.ces.mean,
        f.ces.responses, *(f.concurrency_s[level] for level in LEVELS), f.missed, f.avg_reply_s, f.handovers,
    ]
    return ["" if v is None else v for v in values]


def to_csv(report: ReportOut) -> str:
    """One row per group, then the totals (``scope`` tells them apart); empty cells for figures
    that have no data. Group names are written as text, never as formulas."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for group in report.groups:
        writer.writerow(_csv_row("group", _no_formula(group.key), group))
    writer.writerow(_csv_row("total", None, report.totals))
    return out.getvalue()


def _no_formula(key: str | None) -> str | None:
    """Spreadsheets run a cell starting with = + - @ as a formula (CSV injection); an agent id or
    group name comes from the chat platform, so such a key is quoted with a leading apostrophe."""
    if key and key[0] in "=+-@\t\r":
        return "'" + key
    return key
