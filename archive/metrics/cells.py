"""Report cells: one tenant's metrics rows of one local day, aggregated per dimension, and the
cache that keeps them.

A report is a merge of cells. Counts and sums merge by addition; medians and percentiles cannot,
so a cell keeps the *values* of first reply, resolution and next contact, sorted and packed (four
bytes each): merging is a concatenation and one sort per group, and a threshold (the SLA target,
the FCR window) is a binary search — exact figures, with the tenant's current settings, without
touching the metrics rows again.

Why cells at all: reading a million metrics rows costs seconds on SQLite whatever the SQL (the
aggregates alone are about a microsecond per row), and a 30-day report over a million
conversations must answer within one. A whole local day that has not changed since its cell was
computed is read from the cell; any other part of the range (today, the edges of a range that
does not start at midnight, a day that changed) is computed from the metrics rows, and whole
past days are written back. A cell is valid while its ``fingerprint`` equals the sum of the
change counters of the UTC hours the day overlaps (archive/metrics/store.py bumps them in the
transaction of every change), so a late ingest, a revision or a deletion is seen by the next
report, in every process.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from archive import db
from archive.metrics.tables import ConversationMetrics, MetricsCell, MetricsChange

FORMAT = 1
# Dimensions a cell is kept for. "day" has one group per day (the conversations counted once),
# "hour" one per local hour (keyed by the hour's start, epoch seconds), "funnel" one per site,
# rule and variant (uninvited chats under an empty rule, chats from an invitation nobody knows
# under UNKNOWN_RULE).
DIMS = ("agent", "group", "site", "channel", "day", "hour", "funnel")
FUNNEL_SEPARATOR = "\x1f"
UNKNOWN_RULE = "?"
_ROW_COLUMNS = (
    "agent", "is_primary", "started_at", "site", "channel", "agent_group", "awaited", "first_reply_s", "resolution_s",
    "next_contact_s", "csat", "nps", "ces", "replies", "reply_total_s", "handovers", "conc1", "conc2", "conc3", "conc4",
    "rule", "variant", "invitation_id",
)


def _packed(values: list[int]) -> bytes:
    values.sort()
    return array("I", values).tobytes()


def values_of(packed: bytes) -> array[int]:
    found = array("I")
    found.frombytes(packed)
    return found


class Group(msgspec.Struct, array_like=True):
    """What one group of one cell holds. ``conversations`` counts rows: conversations, except in
    the agent dimension, where it is the conversations each agent took part in."""

    conversations: int = 0
    awaited: int = 0
    first_reply: bytes = b""
    resolution: bytes = b""
    next_contact: bytes = b""
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


class _Acc:
    """A group being built from metrics rows."""

    __slots__ = ("group", "first_reply", "resolution", "next_contact", "concurrency")

    def __init__(self) -> None:
        self.group = Group()
        self.first_reply: list[int] = []
        self.resolution: list[int] = []
        self.next_contact: list[int] = []
        self.concurrency = [0.0, 0.0, 0.0, 0.0]

    def add(self, row: dict[str, Any], whole: bool) -> None:
        """``whole``: the row counts its conversation (every row in the agent dimension, the
        primary row elsewhere); the agent's own figures (replies, concurrency) always add."""
        g = self.group
        g.replies += row["replies"]
        g.reply_total += row["reply_total_s"]
        for level, column in enumerate(("conc1", "conc2", "conc3", "conc4")):
            self.concurrency[level] += row[column]
        if not whole:
            return
        g.conversations += 1
        g.awaited += row["awaited"]
        g.handovers += row["handovers"]
        if row["first_reply_s"] is not None:
            self.first_reply.append(row["first_reply_s"])
        self.resolution.append(row["resolution_s"])
        if row["next_contact_s"] is not None:
            self.next_contact.append(row["next_contact_s"])
        if row["csat"] is not None:
            g.csat_sum += row["csat"]
            g.csat_n += 1
            g.csat_satisfied += row["csat"] >= 4
        if row["nps"] is not None:
            g.nps_n += 1
            g.nps_promoters += row["nps"] >= 9
            g.nps_detractors += row["nps"] <= 6
        if row["ces"] is not None:
            g.ces_sum += row["ces"]
            g.ces_n += 1

    def freeze(self) -> Group:
        g = self.group
        g.first_reply, g.resolution, g.next_contact = _packed(self.first_reply), _packed(self.resolution), _packed(self.next_contact)
        g.concurrency = (self.concurrency[0], self.concurrency[1], self.concurrency[2], self.concurrency[3])
        return g


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


def funnel_key(site: str, rule: UUID | str | None, variant: str | None, invited: bool = True) -> str:
    return FUNNEL_SEPARATOR.join((site, str(rule) if rule else (UNKNOWN_RULE if invited else ""), variant or ""))


async def build(tenant_id: UUID, zone: ZoneInfo, lo: int, hi: int, dims: Sequence[str] = DIMS) -> dict[str, Cell]:
    """The groups of each dimension for the conversations that started in [lo, hi), computed
    from the metrics rows (one query)."""
    m = ConversationMetrics
    rows = await m.select(*[getattr(m, c) for c in _ROW_COLUMNS]).where(
        (m.tenant == tenant_id) & (m.started_at >= lo) & (m.started_at < hi)
    )
    return aggregate(rows, zone, lo, hi, dims)


def aggregate(rows: Iterable[dict[str, Any]], zone: ZoneInfo, lo: int, hi: int, dims: Sequence[str] = DIMS) -> dict[str, Cell]:
    hour = HourKeys(zone, lo, hi)
    accs: dict[str, dict[str, _Acc]] = {dim: {} for dim in dims}

    def acc(dim: str, key: str) -> _Acc:
        found = accs[dim].get(key)
        if found is None:
            found = accs[dim][key] = _Acc()
        return found

    keys: dict[str, Callable[[dict[str, Any]], str]] = {
        "group": lambda r: r["agent_group"],
        "site": lambda r: r["site"],
        "channel": lambda r: r["channel"],
        "day": lambda r: "",
        "hour": lambda r: str(hour(r["started_at"])),
        "funnel": lambda r: funnel_key(r["site"], r["rule"], r["variant"], r["invitation_id"] is not None),
    }
    shared = [(dim, keys[dim]) for dim in dims if dim != "agent"]
    per_agent = "agent" in dims
    for row in rows:
        if per_agent:
            acc("agent", row["agent"]).add(row, True)
        whole = bool(row["is_primary"])
        for dim, key in shared:
            acc(dim, key(row)).add(row, whole)
    return {dim: {key: a.freeze() for key, a in groups.items()} for dim, groups in accs.items()}


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
    encoder = msgspec.msgpack.Encoder()
    async with db.write_transaction():
        for dim, cell in cells.items():
            await MetricsCell.raw(UPSERT, tenant_id, zone_name, day, dim, FORMAT, fingerprint_, encoder.encode(cell))


async def collect(tenant_id: UUID, zone: ZoneInfo, lo: int, hi: int, dims: Sequence[str], now: int) -> list[dict[str, Cell]]:
    """The cells covering [lo, hi) for ``dims``: cached whole days where still valid; the rest
    computed from the metrics rows (whole past days are stored for next time)."""
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
        found = {dim: stored.get((start, dim)) for dim in dims}
        if all(f is not None and f[0] == expected for f in found.values()):
            parts.append({dim: f[1] for dim, f in found.items() if f is not None})
            continue
        # Everything of the day at once: the other dimensions come for free with the one query.
        built = await build(tenant_id, zone, start, end)
        if end <= now:
            await store(tenant_id, zone_name, start, expected, built)
        parts.append({dim: built[dim] for dim in dims})
    return parts
