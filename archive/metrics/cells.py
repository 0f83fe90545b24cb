"""Report cells: one tenant's metrics rows of one local day (or of one UTC hour of it),
aggregated per dimension, and the cache that keeps them.

A report is a merge of cells. Counts and sums merge by addition; medians and percentiles cannot,
so a cell keeps the *values* of first reply, resolution and next contact, sorted and packed (four
bytes each, or each distinct value with its count where that is shorter): merging is a
concatenation and one sort per group, and a threshold (the SLA target, the FCR window) is a
binary search — exact figures, with the tenant's current settings, without touching the metrics
rows again.

Why cells at all: reading a million metrics rows costs seconds on SQLite whatever the SQL (the
aggregates alone are about a microsecond per row), and a 30-day report over a million
conversations must answer within one. A whole local day that has not changed since its cell was
computed is read from the cell. A day that changed (or today) is merged from the cells of its
UTC hours, and only the hours that changed are computed from the metrics rows — a live system
changes an hour or two of a day between two reports, and a day's rows cost SQLite half a second.
Complete hours and whole past days are written back; the edges of a range that does not start at
midnight are computed from the rows. A cell is valid while its ``fingerprint`` equals the sum of
the change counters of the UTC hours it overlaps (archive/metrics/store.py bumps them in the
transaction of every change), so a late ingest, a revision or a deletion is seen by the next
report, in every process.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from archive import db
from archive.metrics.tables import ConversationMetrics, MetricsCell, MetricsChange

# The layout of a stored cell; cells of another layout are ignored (computed again).
FORMAT = 2  # 2: values kept as Values (plain or counted)
# The cells of one UTC hour (or the part of one in a local day) are kept under their dimension's
# name with this prefix, keyed by the part's start: a day that changed is merged again from its
# hours, of which only the changed ones are computed from the rows.
HOUR = "h:"
# Hour cells are kept for the days that ended less than this many days ago: the days a live
# system still changes. An older day that changes (a late import, a deletion) is computed whole,
# and older hour cells are deleted whenever hour cells are stored (they would cost several times
# the day cells' space for a whole archive).
HOURS_FOR_DAYS = 7
# Dimensions a cell is kept for. "day" has one group per day (the conversations counted once),
# "hour" one per local hour (keyed by the hour's start, epoch seconds), "funnel" one per site,
# rule and variant (uninvited chats under an empty rule, chats from an invitation nobody knows
# under UNKNOWN_RULE).
DIMS = ("agent", "group", "site", "channel", "day", "hour", "funnel")
FUNNEL_SEPARATOR = "\x1f"
UNKNOWN_RULE = "?"


def values_of(packed: bytes) -> Sequence[int]:
    """Packed four-byte values (a view of the bytes: nothing is copied)."""
    return memoryview(packed).cast("I")


# Cells hold only numbers and bytes (no reference cycles can form): their structs are not tracked
# by the garbage collector (msgspec's gc=False), which otherwise runs over the tens of thousands
# of groups a report decodes and merges.
class Values(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """A group's values of one figure, sorted and packed: every value as it came, or — when
    that is at most half as long — each distinct value once with its count (a day of a busy
    site has thousands of conversations but a few hundred distinct first-reply times)."""

    values: bytes = b""
    counts: bytes = b""  # empty: each entry of ``values`` counts once

    @classmethod
    def of(cls, items: list[int]) -> Values:
        if 2 * len(set(items)) > len(items):
            items.sort()
            return cls(array("I", items).tobytes())
        tally = sorted(Counter(items).items())
        return cls(array("I", [v for v, _ in tally]).tobytes(), array("I", [n for _, n in tally]).tobytes())

    @classmethod
    def merged(cls, parts: Sequence[Values]) -> Values:
        """The values of several parts as one (the same bytes as ``of`` over all their values)."""
        if len(parts) == 1:
            return parts[0]
        if not any(part.counts for part in parts):
            return cls.of(list(values_of(b"".join(part.values for part in parts))))
        items: list[int] = []
        for part in parts:
            if part.counts:
                for value, count in zip(values_of(part.values), values_of(part.counts), strict=True):
                    items.extend(itertools.repeat(value, count))
            else:
                items.extend(values_of(part.values))
        return cls.of(items)

    def count_at_most(self, limit: int) -> int:
        values = values_of(self.values)
        index = bisect.bisect_right(values, limit)
        return sum(values_of(self.counts)[:index]) if self.counts else index


class Group(msgspec.Struct, array_like=True, gc=False):
    """What one group of one cell holds. ``conversations`` counts rows: conversations, except in
    the agent dimension, where it is the conversations each agent took part in."""

    conversations: int = 0
    awaited: int = 0
    first_reply: Values = msgspec.field(default_factory=Values)
    resolution: Values = msgspec.field(default_factory=Values)
    next_contact: Values = msgspec.field(default_factory=Values)
    csat_sum: int = 0
    csat_n: int = 0
    csat_satisfied: int = 0
    nps_n: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    ces_sum: int = 0
    ces_n: int = 0
    replies: int = 0
    reply_total: int = 0
    handovers: int = 0
    concurrency: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


Cell = dict[str, Group]

_SUMS = tuple(name for name in Group.__struct_fields__ if name not in ("first_reply", "resolution", "next_contact", "concurrency"))


def merged_group(groups: Sequence[Group]) -> Group:
    """One group holding what several hold (counts and sums added, values pooled)."""
    if len(groups) == 1:
        return groups[0]
    columns = dict(zip(Group.__struct_fields__, zip(*map(msgspec.structs.astuple, groups), strict=True), strict=True))
    c1, c2, c3, c4 = (sum(level) for level in zip(*columns["concurrency"], strict=True))
    return Group(
        **{name: sum(columns[name]) for name in _SUMS},
        first_reply=Values.merged(columns["first_reply"]), resolution=Values.merged(columns["resolution"]),
        next_contact=Values.merged(columns["next_contact"]), concurrency=(c1, c2, c3, c4),
    )


def merged_cell(parts: Sequence[Cell]) -> Cell:
    """One cell for the conversations of several (hours into their day)."""
    found: dict[str, list[Group]] = {}
    for part in parts:
        for key, group in part.items():
            found.setdefault(key, []).append(group)
    return {key: merged_group(groups) for key, groups in found.items()}


# --- local time ----------------------------------------------------------------------------------


def day_start(day: date, zone: ZoneInfo) -> int:
    """The first instant of a local date (epoch seconds); a midnight skipped by a clock change
    starts the day at the first local time that exists."""
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


def local_day(moment: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(moment, zone).date()


def days_between(lo: int, hi: int, zone: ZoneInfo) -> list[tuple[date, int, int]]:
    """The local days that [lo, hi) touches, each with its own bounds (epoch seconds)."""
    found: list[tuple[date, int, int]] = []
    day = local_day(lo, zone)
    while True:
        start = day_start(day, zone)
        if start >= hi:
            return found
        end = day_start(day + timedelta(days=1), zone)
        found.append((day, start, end))
        day += timedelta(days=1)


class HourKeys:
    """The start of the local hour a moment falls in (epoch seconds), DST included: the two 02:00
    hours of a night the clocks go back are two hours. The offsets in [lo, hi) are found once
    (sampled hourly; a change between two samples is located by binary search)."""

    def __init__(self, zone: ZoneInfo, lo: int, hi: int) -> None:
        self.zone = zone
        self.cuts: list[int] = []
        self.offsets: list[int] = [self._offset(lo)]
        previous = lo
        for sample in [*range(lo - lo % 3600 + 3600, hi, 3600), hi - 1]:
            if sample <= previous or self._offset(sample) == self.offsets[-1]:
                previous = max(previous, sample)
                continue
            a, b = previous, sample  # offset(a) is the current one, offset(b) the next
            while b - a > 1:
                mid = (a + b) // 2
                if self._offset(mid) == self.offsets[-1]:
                    a = mid
                else:
                    b = mid
            self.cuts.append(b)
            self.offsets.append(self._offset(b))
            previous = sample

    def _offset(self, moment: int) -> int:
        offset = datetime.fromtimestamp(moment, self.zone).utcoffset()
        return int(offset.total_seconds()) if offset else 0

    def __call__(self, moment: int) -> int:
        offset = self.offsets[bisect.bisect_right(self.cuts, moment)]
        return moment - (moment + offset) % 3600


# --- building cells from metrics rows --------------------------------------------------------------


def _key_sql(dim: str, hours: HourKeys) -> str:
    """The SQL expression of a dimension's group key (the same on SQLite and PostgreSQL)."""
    if dim == "agent":
        return "agent"
    if dim == "group":
        return "agent_group"
    if dim in ("site", "channel"):
        return dim
    if dim == "day":
        return "''"
    if dim == "hour":
        # The start of the local hour: the offset is constant between the day's clock changes.
        offset = f"{hours.offsets[-1]}"
        for cut, before in reversed(list(zip(hours.cuts, hours.offsets, strict=False))):
            offset = f"CASE WHEN started_at < {cut} THEN {before} ELSE {offset} END"
        return f"started_at - ((started_at + {offset}) % 3600)"
    if dim == "funnel":
        return (
            "site || {sep} || COALESCE(CAST(rule AS TEXT), CASE WHEN invitation_id IS NULL THEN '' ELSE '" + UNKNOWN_RULE + "' END)"
            " || {sep} || COALESCE(variant, '')"
        )
    raise ValueError(f"no dimension {dim!r}")


# One row per group key and ``is_primary``: conversation-wide figures then count on the primary
# rows (every row of an agent), the agent's own figures (replies, concurrency) on all rows; and
# the day's single group comes from the same rows, so a day costs one query whatever it needs.
# Values that medians and thresholds need come back as one list per row ({values}: comma-separated
# text, which the database builds faster than a driver hands over rows, and Python parses in C).
_CELL = """
SELECT {unit} AS u, {key} AS k, is_primary AS p, COUNT(*) AS n, SUM(awaited) AS awaited, SUM(handovers) AS handovers,
  SUM(csat) AS csat_sum, COUNT(csat) AS csat_n, SUM(CASE WHEN csat >= 4 THEN 1 ELSE 0 END) AS csat_satisfied,
  COUNT(nps) AS nps_n, SUM(CASE WHEN nps >= 9 THEN 1 ELSE 0 END) AS nps_promoters,
  SUM(CASE WHEN nps <= 6 THEN 1 ELSE 0 END) AS nps_detractors, SUM(ces) AS ces_sum, COUNT(ces) AS ces_n,
  SUM(replies) AS replies, SUM(reply_total_s) AS reply_total,
  SUM(conc1) AS c1, SUM(conc2) AS c2, SUM(conc3) AS c3, SUM(conc4) AS c4,
  {first_reply} AS first_reply, {resolution} AS resolution, {next_contact} AS next_contact
FROM conversation_metrics WHERE tenant = {{}} AND started_at >= {{}} AND started_at < {{}}
GROUP BY {group}
"""


def _values_sql(column: str) -> str:
    return f"group_concat({column}, ',')" if db.is_sqlite() else f"string_agg(CAST({column} AS TEXT), ',')"


def _parsed(texts: list[str]) -> Values:
    text = ",".join(t for t in texts if t)
    return Values.of(list(map(int, text.split(",")))) if text else Values()


def _group(whole: list[dict[str, Any]], own: list[dict[str, Any]]) -> Group:
    """A group from the query rows whose conversations it counts (``whole``) and those whose
    agent figures it adds (``own``)."""
    def total(name: str, rows: list[dict[str, Any]] = whole) -> int:
        return sum(int(r[name] or 0) for r in rows)

    return Group(
        conversations=total("n"), awaited=total("awaited"),
        first_reply=_parsed([r["first_reply"] for r in whole]), resolution=_parsed([r["resolution"] for r in whole]),
        next_contact=_parsed([r["next_contact"] for r in whole]),
        csat_sum=total("csat_sum"), csat_n=total("csat_n"), csat_satisfied=total("csat_satisfied"),
        nps_n=total("nps_n"), nps_promoters=total("nps_promoters"), nps_detractors=total("nps_detractors"),
        ces_sum=total("ces_sum"), ces_n=total("ces_n"),
        replies=total("replies", own), reply_total=total("reply_total", own), handovers=total("handovers"),
        concurrency=(
            sum(float(r["c1"] or 0) for r in own), sum(float(r["c2"] or 0) for r in own),
            sum(float(r["c3"] or 0) for r in own), sum(float(r["c4"] or 0) for r in own),
        ),
    )


async def build(tenant_id: UUID, zone: ZoneInfo, lo: int, hi: int, dims: Sequence[str] = DIMS) -> dict[str, Cell]:
    """The groups of each dimension for the conversations that started in [lo, hi), computed by
    SQL over the metrics rows (one grouped query per dimension; "day" rides along)."""
    return (await _build(tenant_id, zone, lo, hi, dims, by_hour=False)).get(lo) or {dim: {} for dim in dims}


async def build_hours(tenant_id: UUID, zone: ZoneInfo, lo: int, hi: int, dims: Sequence[str]) -> dict[int, dict[str, Cell]]:
    """``build`` for each UTC hour of [lo, hi) at once (by the hour's start, or ``lo`` for the
    part of an hour before it; hours without conversations are left out): the same queries,
    grouped by the hour too."""
    return await _build(tenant_id, zone, lo, hi, dims, by_hour=True)


async def _build(tenant_id: UUID, zone: ZoneInfo, lo: int, hi: int, dims: Sequence[str], by_hour: bool) -> dict[int, dict[str, Cell]]:
    hours = HourKeys(zone, lo, hi)
    built: dict[int, dict[str, Cell]] = {}
    for dim in [d for d in dims if d != "day"] or ["day"]:
        rows = await _rows(tenant_id, dim, _key_sql(dim, hours), lo, hi, by_hour)
        by_unit: dict[int, dict[str, list[dict[str, Any]]]] = {}
        for row in rows:
            by_unit.setdefault(max(int(row["u"]), lo), {}).setdefault(str(row["k"]), []).append(row)
        for unit, by_key in by_unit.items():
            cells = built.setdefault(unit, {})
            if dim == "agent":
                cells[dim] = {key: _group(found, found) for key, found in by_key.items()}
            else:
                cells[dim] = {key: _group([r for r in found if r["p"]], found) for key, found in by_key.items()}
            if "day" in dims and "day" not in cells:
                unit_rows = [r for found in by_key.values() for r in found]
                cells["day"] = {"": _group([r for r in unit_rows if r["p"]], unit_rows)}
    for cells in built.values():
        for dim in dims:
            cells.setdefault(dim, {})
    return built


async def _rows(tenant_id: UUID, dim: str, key: str, lo: int, hi: int, by_hour: bool) -> list[dict[str, Any]]:
    # The funnel key joins parts with a separator passed as a parameter (it is not printable).
    args: list[Any] = [FUNNEL_SEPARATOR, FUNNEL_SEPARATOR] if dim == "funnel" else []
    sql = _CELL.format(
        unit="started_at - (started_at % 3600)" if by_hour else str(int(lo)), group="1, 2, 3" if by_hour else "2, 3",
        key=key.replace("{sep}", "{}"), first_reply=_values_sql("first_reply_s"), resolution=_values_sql("resolution_s"),
        next_contact=_values_sql("next_contact_s"),
    )
    rows: list[dict[str, Any]] = await ConversationMetrics.raw(sql, *args, tenant_id, lo, hi)
    return rows


# --- the cache ---------------------------------------------------------------------------------


async def versions(tenant_id: UUID, lo: int, hi: int) -> dict[int, int]:
    """Change counters of the UTC hours overlapping [lo, hi), by hour start."""
    rows = await MetricsChange.select(MetricsChange.hour, MetricsChange.version).where(
        (MetricsChange.tenant == tenant_id) & (MetricsChange.hour >= lo - lo % 3600) & (MetricsChange.hour < hi)
    )
    return {r["hour"]: r["version"] for r in rows}


def fingerprint(counters: dict[int, int], lo: int, hi: int) -> int:
    return sum(v for hour, v in counters.items() if lo - lo % 3600 <= hour < hi)


async def cached(tenant_id: UUID, zone_name: str, days: list[int], dims: Sequence[str]) -> dict[tuple[int, str], tuple[int, Cell]]:
    """Stored cells of these days (by day start) and dimensions, with their fingerprints."""
    if not days:
        return {}
    c = MetricsCell
    rows = await c.select(c.day, c.dim, c.fingerprint, c.data).where(
        (c.tenant == tenant_id) & (c.time_zone == zone_name) & (c.format == FORMAT)
        & c.day.is_in(days) & c.dim.is_in(list(dims))
    )
    decoder = msgspec.msgpack.Decoder(dict[str, Group])
    return {(r["day"], r["dim"]): (r["fingerprint"], decoder.decode(r["data"])) for r in rows}


UPSERT = (
    "INSERT INTO metrics_cell (tenant, time_zone, day, dim, format, fingerprint, data) VALUES ({}, {}, {}, {}, {}, {}, {}) "
    "ON CONFLICT (tenant, time_zone, day, dim) DO UPDATE SET format = excluded.format, "
    "fingerprint = excluded.fingerprint, data = excluded.data"
)


async def store(tenant_id: UUID, zone_name: str, day: int, fingerprint_: int, cells: dict[str, Cell]) -> None:
    await store_many(tenant_id, zone_name, [(day, fingerprint_, cells)])


async def store_many(tenant_id: UUID, zone_name: str, found: list[tuple[int, int, dict[str, Cell]]], prefix: str = "",
                     forget_before: int | None = None) -> None:
    """Cells of several days (or, with ``HOUR`` as ``prefix``, hours) in one transaction; with
    ``forget_before``, the tenant's hour cells of hours before it are deleted in it too."""
    if not found:
        return
    encoder = msgspec.msgpack.Encoder()
    rows = [(tenant_id, zone_name, start, prefix + dim, FORMAT, fingerprint_, encoder.encode(cell))
            for start, fingerprint_, cells in found for dim, cell in cells.items()]
    async with db.write_transaction():
        await db.execute_many(UPSERT.replace("{}", "?"), rows)
        if forget_before is not None:
            await MetricsCell.delete().where(
                (MetricsCell.tenant == tenant_id) & (MetricsCell.day < forget_before) & MetricsCell.dim.like(HOUR + "%"))


def hours_of(start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut at UTC hours: each part lies in one hour, whose change counter it follows
    (a day of a zone half an hour off UTC starts and ends with half hours)."""
    cuts = [start, *range(start - start % 3600 + 3600, end, 3600), end]
    return list(zip(cuts, cuts[1:], strict=False))


def _runs(starts: list[int], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges [a, b) of consecutive spans whose start is in ``starts``."""
    wanted, runs = set(starts), list[tuple[int, int]]()
    for a, b in spans:
        if a not in wanted:
            continue
        if runs and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


async def _day_from_hours(tenant_id: UUID, zone: ZoneInfo, start: int, end: int, dims: Sequence[str], counters: dict[int, int],
                          now: int) -> dict[str, Cell]:
    """A day's cells merged from its hours' cells: those still valid are read, the others built
    from the rows (one pass per run of consecutive hours) and stored once complete."""
    zone_name = str(zone.key)
    spans = hours_of(start, end)
    stored = await cached(tenant_id, zone_name, [a for a, _ in spans], [HOUR + dim for dim in dims])
    hours: dict[int, dict[str, Cell]] = {}
    missing = []
    for a, b in spans:
        expected = fingerprint(counters, a, b)
        valid = {dim: hit[1] for dim in dims if (hit := stored.get((a, HOUR + dim))) is not None and hit[0] == expected}
        if len(valid) == len(dims):
            hours[a] = valid
        else:
            missing.append(a)
    fresh = []
    for lo, hi in _runs(missing, spans):
        built = await build_hours(tenant_id, zone, lo, hi, dims)
        for a, b in spans:
            if lo <= a < hi:
                hours[a] = built.get(a) or {dim: {} for dim in dims}
                if b <= now:
                    fresh.append((a, fingerprint(counters, a, b), hours[a]))
    if fresh:
        await store_many(tenant_id, zone_name, fresh, HOUR, forget_before=now - (HOURS_FOR_DAYS + 1) * 86_400)
    return {dim: merged_cell([hours[a][dim] for a, _ in spans]) for dim in dims}


async def collect(tenant_id: UUID, zone: ZoneInfo, lo: int, hi: int, dims: Sequence[str], now: int) -> list[dict[str, Cell]]:
    """The cells covering [lo, hi) for ``dims``: cached whole days where still valid; other
    whole days of the last ``HOURS_FOR_DAYS`` merged from their hours' cells (see
    ``_day_from_hours``), older ones computed from the metrics rows (past days are stored for
    next time); the part days at the edges of a range computed from the metrics rows."""
    zone_name = str(zone.key)
    days = days_between(lo, hi, zone)
    counters = await versions(tenant_id, days[0][1] if days else lo, hi)
    whole = [(start, end) for _, start, end in days if lo <= start and end <= hi]
    stored = await cached(tenant_id, zone_name, [start for start, _ in whole], dims)
    parts: list[dict[str, Cell]] = []
    for _, start, end in days:
        a, b = max(start, lo), min(end, hi)
        if (a, b) != (start, end):
            parts.append(await build(tenant_id, zone, a, b, dims))
            continue
        expected = fingerprint(counters, start, end)
        part = {dim: found[1] for dim in dims if (found := stored.get((start, dim))) is not None and found[0] == expected}
        stale = [dim for dim in dims if dim not in part]
        if stale:
            if end > now - HOURS_FOR_DAYS * 86_400:
                built = await _day_from_hours(tenant_id, zone, start, end, stale, counters, now)
            else:
                built = await build(tenant_id, zone, start, end, stale)
            if end <= now:
                await store(tenant_id, zone_name, start, expected, built)
            part.update(built)
        parts.append(part)
    return parts
