"""The engagement engine: rule evaluation, level-triggered decisions, waiting queues, timers.

Evaluation happens for one visitor at a time: on each event batch, when a timer says time alone
could change something (time on page, idle, a sliding window, a rule's delay, a wait running out,
business hours opening), and when something that held the visitor back lifts. Timers live in one
heap; ``tick()`` pops only what is due, so its cost grows with due timers, never with the number
of visitors or rules. The runtime fires ``tick()`` on time with the event loop (``call_at`` on the
heap's head), not by polling.

Decisions are level-triggered. A rule *holds* for a visitor from the moment its condition becomes
true until it becomes false — an *episode*, which sends at most once. While it holds the engine
tries to send, and each attempt meets, in order:

* blocks that end the episode, counted as ``suppressed_<reason>``: ``goal_reached`` and ``cap``
  (per visit, per calendar day in the site's time zone, cooldown after a dismissal);
* blocks that lift, during which the visitor *waits* (``invite.max_wait``, default 2 minutes):
  ``active_chat``, ``open_invitation`` (one invitation at a time per visitor), ``absent`` (no
  visible tab heard from lately), ``hours``, ``capacity`` (free slots = online agents × max chats −
  active chats − open invitations − accepted invitations the platform has not reported yet; a
  group that never reported capacity is not gated) and ``pacing`` (invitations per site per
  minute). Waiting visitors are queued per agent group, best first: rule priority, then how long
  they have qualified. Whenever a block lifts — a capacity report, an invitation accepted,
  dismissed, expired or withdrawn, a chat ending, hours opening, the pacing window moving, a rule
  edited — the engine decides again at once and invites the next visitors who still qualify and
  are present. A wait that runs out, or a condition that stops holding while waiting, is counted
  as ``suppressed_<the reason that held it back>``;
* the holdout: a visitor in the rule's control group is recorded as an exposure (``control``) at
  the moment they would have been invited, so control and treatment meet the same blocks.

Equal priorities are broken by rule name, so which of two rules goes first is decided by what a
marketer can see, not by creation order; the other rule waits for the first invitation to close.

Every change the engine makes is recorded in ``changes`` for the journal (proactive.journal),
which writes it durably before any invitation reaches a browser.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
import time
from collections import Counter, deque
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from proactive.model import Decision, GroupCapacity, GroupKey, Invitation, OpenInvitation, Outcome, RuleEntry, SiteConfig, VisitorKey
from proactive.rules import AllOf, Compare, Rule, UrlGoal, evaluate, evaluate_timed, goals_reached, targets, url_goals
from proactive.state import DONE, PENDING, VISIT_GAP, WAITING, Episode, EventCodes, VisitorState

VISITOR_IDLE_EXPIRY = VISIT_GAP  # evicted from memory (never forgotten: see proactive.store)
DEFAULT_SITE = SiteConfig()
TICK_BUDGET = 5_000  # timers handled per tick; the rest on the next turn of the event loop
MAX_PACING = 10_000  # invitations per site per minute, at most (the window keeps one entry per send)
OPEN_STATUSES = ("sent", "shown")
EXPOSED = ("sent", "control")  # history entries that count toward caps and goal attribution
# Blocks that lift: the visitor waits for them (in this order of checking).
WAIT_WORDS = {
    "active_chat": "the chat to end", "open_invitation": "the open invitation to close", "absent": "the visitor to return",
    "hours": "business hours", "capacity": "capacity", "pacing": "pacing",
}
# Wait-time histogram for stats: bucket upper bounds in seconds (counter names wait_le_<bound>).
WAIT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 86400, 31_622_400)


def _bucket(*parts: str) -> float:
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_variant(rule: Rule, rule_id: str, visitor_hash: str) -> str:
    """Deterministic per visitor (keyed on the stored visitor hash, so live and backtest agree):
    the holdout share goes to "control", the rest by weight. Raising the holdout share keeps
    everyone already in control there."""
    if rule.holdout and _bucket("holdout", rule_id, visitor_hash) < rule.holdout:
        return "control"
    point = _bucket("variant", rule_id, visitor_hash) * sum(v.weight for v in rule.variants)
    for variant in rule.variants:
        point -= variant.weight
        if point < 0:
            return variant.name
    return rule.variants[-1].name


def invitation_id(rule_id: str, visitor_hash: str, at: float) -> str:
    """Deterministic: a replay of the same events names its invitations as the live engine did,
    so the browser's reports about them (shown, dismissed) replay too."""
    return hashlib.blake2b(f"{rule_id}|{visitor_hash}|{at!r}".encode(), digest_size=16).hexdigest()


def server_time(seconds: float) -> float:
    """A time as the store keeps it (microseconds): the engine decides on stored times, so reading
    them back (restart, backtest) decides the same."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).timestamp()


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def wait_bucket(seconds: float) -> str:
    for bound in WAIT_BUCKETS:
        if seconds <= bound:
            return f"wait_le_{bound:g}"
    return f"wait_le_{WAIT_BUCKETS[-1]:g}"


class WaitItem(tuple[int, float, str, str, str, Any]):
    """(−priority, qualifying since, rule name, rule id, visitor hash, site): sorts best first."""

    __slots__ = ()


class WaitQueue:
    """Visitors held back for one agent group, in the order they will be served."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[WaitItem] = []

    def add(self, item: WaitItem) -> None:
        index = bisect.bisect_left(self.items, item)
        if index == len(self.items) or self.items[index] != item:
            self.items.insert(index, item)

    def remove(self, item: WaitItem) -> None:
        index = bisect.bisect_left(self.items, item)
        if index < len(self.items) and self.items[index] == item:
            del self.items[index]

    def __len__(self) -> int:
        return len(self.items)


class Changes:
    """What changed since the journal last wrote: written together, in one transaction."""

    __slots__ = ("visitors", "invitations", "capacity", "deliveries", "forgotten")

    def __init__(self) -> None:
        self.visitors: set[VisitorKey] = set()
        self.invitations: dict[str, OpenInvitation] = {}
        self.capacity: set[GroupKey] = set()
        self.deliveries: list[tuple[VisitorKey, Invitation]] = []
        self.forgotten: set[tuple[Any, str]] = set()  # (tenant, visitor hash): erased visitors

    def __bool__(self) -> bool:
        return bool(self.visitors or self.invitations or self.capacity or self.deliveries or self.forgotten)


class Engine:
    def __init__(
        self, clock: Callable[[], float] = time.time, gate_capacity: bool = True, pace: bool = True, journal: bool = True,
    ) -> None:
        self.clock = clock
        self.gate_capacity = gate_capacity
        self.pace = pace
        self.journal = journal  # False: nothing is recorded for writing (backtests, benchmarks)
        self.codes = EventCodes()
        self.visitors: dict[VisitorKey, VisitorState] = {}
        self.rules: dict[Any, list[RuleEntry]] = {}  # site id → rules, best first
        self._gates: dict[Any, list[tuple[tuple[Any, ...], Compare] | None]] = {}  # site id → per rule, see _gates_of
        self.sites: dict[Any, SiteConfig] = {}
        self.url_goals: dict[Any, tuple[UrlGoal, ...]] = {}  # site id → its rules' distinct URL goals
        self._timers: list[tuple[float, int, tuple[str, Any]]] = []
        self._scheduled: dict[VisitorKey, float] = {}
        self._paced: dict[Any, float] = {}  # site → when its pacing window next moves
        self._seq = itertools.count()
        self.open: dict[str, OpenInvitation] = {}
        self.capacity: dict[GroupKey, GroupCapacity] = {}
        self.outstanding: Counter[GroupKey] = Counter()  # open invitations per group
        # When the invitations the group's last capacity report does not count yet were accepted
        # (a report's as_of counts those accepted before it; each holds a slot until then).
        self.accepted: dict[GroupKey, list[float]] = {}
        self.queues: dict[GroupKey, WaitQueue] = {}
        self._sent_times: dict[Any, deque[float]] = {}
        self._to_drain: set[GroupKey] = set()
        self.counters: Counter[tuple[str, str, str]] = Counter()
        self.decisions: deque[Decision] = deque(maxlen=MAX_PACING)
        self.changes = Changes()
        self.on_change: Callable[[], None] = lambda: None  # the journal has something to write
        self.on_earlier_timer: Callable[[float], None] = lambda due: None  # the heap's head moved earlier
        self.on_missing: Callable[[VisitorKey, float], None] | None = None  # a timer for a visitor not in memory

    # --- configuration -----------------------------------------------------------------------

    def set_rules(self, site: Any, entries: list[RuleEntry]) -> None:
        """A site's rules, replacing what was there: deleted rules give back the capacity their
        open invitations held; every visitor of the site is decided again on the next tick."""
        old = {e.id for e in self.rules.get(site, ())}
        self.rules[site] = sorted(entries, key=lambda e: (-e.rule.priority, e.rule.name, e.id))
        self._gates[site] = self._gates_of(site, self.rules[site])
        self.url_goals[site] = url_goals([e.rule for e in entries])
        kept = {e.id for e in entries}
        for record in [r for r in self.open.values() if r.key[0] == site and r.rule_id in old - kept]:
            self._close(record, "withdrawn", self.clock())
        now = self.clock()
        delays = {e.id: e.rule.delay for e in entries}
        for key, state in self.visitors.items():
            if key[0] != site:
                continue
            for rule_id in [r for r in (state.episodes or ()) if r not in kept]:
                self._drop_episode(state, rule_id)
            for rule_id, episode in (state.episodes or {}).items():
                # An edited invite.delay applies to visitors already counting it down, as an edited
                # time condition does: the invitation goes at since + the delay now in force.
                if episode.status == PENDING and episode.due != episode.since + delays[rule_id]:
                    episode.due = episode.since + delays[rule_id]
                    self._dirty(state)
            self._poke(key, now)
        self._finish()

    def set_site(self, site: Any, config: SiteConfig) -> None:
        changed = self.sites.get(site, DEFAULT_SITE) != config
        self.sites[site] = config
        if changed:
            self._release_pacing(site)
            self._finish()

    def set_capacity(self, tenant: Any, groups: dict[str, GroupCapacity]) -> set[str]:
        """A report from the chat platform: its active chats now include the invitations accepted
        up to the moment it describes. Returns the groups it was applied to: a group whose current
        report describes a later moment than this one's ``as_of`` keeps it (GroupCapacity.supersedes)."""
        flipped = False
        applied = set()
        for name, capacity in groups.items():
            key = (tenant, name)
            before = self.capacity.get(key)
            if not capacity.supersedes(before):
                continue
            applied.add(name)
            flipped = flipped or before is None or (before.online_agents > 0) != (capacity.online_agents > 0)
            self.capacity[key] = capacity
            # Chats accepted after the moment the report describes are not in its active chats yet.
            since = capacity.describes.timestamp()
            later = [at for at in self.accepted.pop(key, ()) if at > since] if capacity.as_of is not None else []
            self._set_accepted(key, later)
            if self.journal:
                self.changes.capacity.add(key)
            self._to_drain.add(key)
        if flipped:  # agents.online changed: the rules reading it are decided again on the next tick
            now = self.clock()
            sites = {site for site, entries in self.rules.items() if any(e.tenant == tenant and e.rule.reads_rule_fields for e in entries)}
            for key_ in self.visitors:
                if key_[0] in sites:
                    self._poke(key_, now)
        self._finish()
        return applied

    def restore_capacity(self, key: GroupKey, capacity: GroupCapacity, accepted_at: Sequence[float]) -> None:
        """The group's last report, and when the invitations it does not count yet were accepted."""
        self.capacity[key] = capacity
        self._set_accepted(key, list(accepted_at))

    def _set_accepted(self, key: GroupKey, times: list[float]) -> None:
        if times:
            self.accepted[key] = times
        else:
            self.accepted.pop(key, None)

    def free_slots(self, tenant: Any, group: str | None) -> int | None:
        capacity = self.capacity.get((tenant, group))
        if capacity is None:
            return None
        total = capacity.online_agents * capacity.max_chats_per_agent
        key = (tenant, group)
        return total - capacity.active_chats - self.outstanding[key] - len(self.accepted.get(key, ()))

    # --- visitors ----------------------------------------------------------------------------

    def new_visitor(self, tenant: Any, site: Any, visitor_hash: str) -> VisitorState:
        state = VisitorState(tenant, site, visitor_hash, self.clock(), self.codes)
        self.visitors[state.key] = state
        return state

    def state_for(self, tenant: Any, site: Any, visitor_hash: str) -> VisitorState:
        """The visitor in memory, or a new one (callers that can load from the store do so first)."""
        return self.visitors.get((site, visitor_hash)) or self.new_visitor(tenant, site, visitor_hash)

    def adopt(self, state: VisitorState) -> None:
        """A visitor loaded from the store: rejoin the queues and timers it was in."""
        self.visitors[state.key] = state
        known = {e.id: e for e in self.rules.get(state.site, ())}
        for rule_id, episode in list((state.episodes or {}).items()):
            entry = known.get(rule_id)
            if entry is None:
                self._drop_episode(state, rule_id)
            elif episode.status == WAITING:
                self._enqueue(state, entry, episode)
            elif episode.status == PENDING:
                episode.due = episode.since + entry.rule.delay  # the delay in force (edited while it was stored)
        if state.outstanding is not None and state.outstanding not in self.open:
            state.outstanding = None  # closed while the visitor was not in memory
        self._scheduled.pop(state.key, None)
        self._schedule(state, state.due)

    def resume(self, state: VisitorState, due: float) -> None:
        """A visitor loaded because its timer fired while it was not in memory: decided as of the
        timer's due time, as if it had never left."""
        self.adopt(state)
        self._scheduled.pop(state.key, None)
        self.evaluate(state, max(due, state.last_seen))
        self._finish(due)

    def restore_invitation(self, record: OpenInvitation) -> None:
        if record.status in OPEN_STATUSES:
            self.open[record.invitation.id] = record
            if record.invitation.group:
                self.outstanding[(record.tenant, record.invitation.group)] += 1
            self._timer(record.expires, ("x", record.invitation.id))

    def withdraw_orphans(self, tenant: Any = None) -> int:
        """After a read-back: open invitations of rules no longer loaded (deleted while this process
        was not running, or not owning the tenant, so it never heard of it) are withdrawn, as
        ``set_rules`` withdraws them live — their slots go to the visitors waiting. Returns how many."""
        now = self.clock()
        orphans = [r for r in self.open.values() if (tenant is None or r.tenant == tenant)
                   and r.rule_id not in {e.id for e in self.rules.get(r.key[0], ())}]
        for record in orphans:
            self._close(record, "withdrawn", now)
        self._finish()
        return len(orphans)

    def restore_send(self, site: Any, at: float) -> None:
        """A send within the last minute (pacing survives a restart)."""
        self._sent_times.setdefault(site, deque(maxlen=MAX_PACING)).append(at)

    def restore_timer(self, key: VisitorKey, due: float) -> None:
        """A visitor not in memory with a decision due (loaded when it is)."""
        self._scheduled[key] = due
        self._timer(due, ("v", key))

    def forget(self, tenant: Any, visitor_hash: str) -> None:
        """Erasure: the visitor's state on every site of the tenant, queue places, timers and open
        invitations go (the invitations' capacity is given back)."""
        for key in [k for k, s in self.visitors.items() if k[1] == visitor_hash and s.tenant == tenant]:
            state = self.visitors.pop(key)
            for rule_id in list(state.episodes or ()):
                self._drop_episode(state, rule_id)
        for key in [k for k in self._scheduled if k[1] == visitor_hash]:
            del self._scheduled[key]
        now = self.clock()
        for record in [r for r in self.open.values() if r.key[1] == visitor_hash and r.tenant == tenant]:
            self._close(record, "withdrawn", now)
        if self.journal:
            self.changes.visitors = {k for k in self.changes.visitors if k[1] != visitor_hash}
            self.changes.forgotten.add((tenant, visitor_hash))
            self.on_change()
        self._finish()

    def drop_tenant(self, tenant: Any, sites: set[Any]) -> None:
        """Another process owns the tenant now (engine replicas): its visitors, queues, timers, open
        invitations and capacity leave memory without a trace in the journal — the store keeps
        them for the new owner. Timers already in the heap find nothing and are skipped."""
        for key in [k for k, s in self.visitors.items() if s.tenant == tenant or k[0] in sites]:
            del self.visitors[key]
        for key in [k for k in self._scheduled if k[0] in sites]:
            del self._scheduled[key]
        for invitation_id in [i for i, r in self.open.items() if r.tenant == tenant]:
            del self.open[invitation_id]
        for group in [g for g in self.outstanding if g[0] == tenant]:
            del self.outstanding[group]
        for mapping in (self.capacity, self.queues, self.accepted):
            for group in [g for g in mapping if g[0] == tenant]:
                del mapping[group]
        self._to_drain = {g for g in self._to_drain if g[0] != tenant}
        for site in sites:
            self._sent_times.pop(site, None)
            self._paced.pop(site, None)
        changes = self.changes
        changes.visitors = {k for k in changes.visitors if k[0] not in sites}
        changes.invitations = {i: r for i, r in changes.invitations.items() if r.tenant != tenant}
        changes.capacity = {g for g in changes.capacity if g[0] != tenant}
        changes.deliveries = [(k, i) for k, i in changes.deliveries if k[0] not in sites]

    def unwind(self, changes: Changes) -> None:
        """A write of ``changes`` failed: evict the visitors it held (they are read back from the
        store on their next event) and take back invitations nobody has seen."""
        for _, invitation in changes.deliveries:
            record = self.open.pop(invitation.id, None)
            if record is not None and invitation.group:
                self.outstanding[(record.tenant, invitation.group)] -= 1
        for key in changes.visitors:
            state = self.visitors.pop(key, None)
            if state is not None:
                for episode in (state.episodes or {}).values():
                    self._dequeue(episode)
            self._scheduled.pop(key, None)

    def expire_idle(self) -> int:
        """Evict visitors idle longer than the expiry (memory only: they are in the store). A visitor
        with an invitation open, a wait under way or a write pending stays; one with a timer keeps
        the timer and is loaded again when it fires."""
        cutoff = self.clock() - VISITOR_IDLE_EXPIRY
        pending = self.changes.visitors
        gone = [
            k for k, s in self.visitors.items()
            if s.last_seen < cutoff and s.outstanding is None and k not in pending
            and not any(e.status == WAITING for e in (s.episodes or {}).values())
        ]
        for key in gone:
            del self.visitors[key]
        return len(gone)

    # --- events ------------------------------------------------------------------------------

    def apply_events(self, state: VisitorState, events: Iterable[dict[str, Any]]) -> None:
        """A batch from one visitor, ordered by the browser's clock, received now."""
        now = self.clock()
        goals = self.url_goals.get(state.site)
        for event in events:
            state.apply(event, now)
            kind = event["type"]
            if kind in ("invitation_shown", "invitation_accepted", "invitation_dismissed"):
                self._invitation_status(state, event, kind.split("_", 1)[1], now)
            elif kind == "goal":
                self._attribute_goal(state, ("event", event.get("name") or "goal"), now)
            elif kind == "pageview" and goals:
                pages = state.session.pages if state.session is not None else None  # the path this pageview appended
                for glob in goals_reached(goals, event.get("url"), pages[-1] if pages else None):
                    state.url_goals = (state.url_goals or set()) | {glob}
                    self._attribute_goal(state, ("url", glob), now)
        self._dirty(state)
        # A slot this batch gave back (an invitation dismissed) goes to the visitors waiting for it,
        # best first, before this visitor's own rules are decided: this visitor takes it only when
        # first in the queue, not for being the one whose browser reported the dismissal.
        self._finish()
        self.evaluate(state)
        self._finish()

    def _invitation_status(self, state: VisitorState, event: dict[str, Any], status: str, now: float) -> None:
        record = self.open.get(str((event.get("props") or {}).get("invitation_id", "")))
        if record is None or record.key != state.key:
            return  # unknown, closed, or another visitor's
        if status == "shown":
            if record.status == "sent":
                record.status = "shown"
                self.counters[(record.rule_id, record.invitation.variant, "shown")] += 1
                self._record(record)
                state.remember(record.rule_id, "shown", now, record.invitation.variant)
                self._dirty(state)
            return
        self._close(record, status, now)
        if status in ("dismissed", "accepted"):  # cooldowns and caps.until read them
            state.remember(record.rule_id, status, now, record.invitation.variant)

    def _close(self, record: OpenInvitation, status: str, now: float) -> None:
        """accepted | dismissed | expired | withdrawn. An accepted invitation keeps its slot until
        the chat platform's next report counts the chat; the others free it at once."""
        if record.status not in OPEN_STATUSES:
            return
        record.status = status
        record.closed_at = now
        if status != "withdrawn":
            self.counters[(record.rule_id, record.invitation.variant, status)] += 1
        group = record.invitation.group
        if group:
            key = (record.tenant, group)
            self.outstanding[key] -= 1
            if status == "accepted":
                self.accepted.setdefault(key, []).append(now)
            else:
                self._to_drain.add(key)
        self.open.pop(record.invitation.id, None)
        self._record(record)
        state = self.visitors.get(record.key)
        if state is not None and state.outstanding == record.invitation.id:
            state.outstanding = None
            self._dirty(state)
            self._poke(state.key, now)  # its other rules may go now

    def _attribute_goal(self, state: VisitorState, key: tuple[str, str], at: float) -> None:
        """A goal reached at ``at``: the *touches* are the exposures (invitations sent and holdout
        exposures) of the site's rules with this same goal, each within its rule's window. A rule
        is credited — once per touch — when the touch its attribution picks is its own: the latest
        (``last``) or the earliest (``first``); the goal counts for that touch's variant."""
        entries = [e for e in self.rules.get(state.site, ()) if e.rule.goal_key == key]
        if not entries or not state.history:
            return
        history = state.history
        windows = {e.id: e.rule.goal_within for e in entries}
        touches = [h for h in history if h[1] in EXPOSED and h[0] in windows and at - h[2] <= windows[h[0]]]
        if not touches:
            return
        for entry in entries:
            pick = touches[-1] if entry.rule.goal_attribution == "last" else touches[0]
            if pick[0] != entry.id or any(h[0] == entry.id and h[1] == "goal" and h[2] >= pick[2] for h in history):
                continue
            self.counters[(entry.id, pick[3], "goals")] += 1
            state.remember(entry.id, "goal", at, pick[3])

    # --- evaluation --------------------------------------------------------------------------

    def evaluate(self, state: VisitorState, now: float | None = None) -> None:
        """Decide every rule of the visitor's site as of ``now`` (default: the clock), and when to
        look again."""
        if now is None:
            now = self.clock()
        soonest: float | None = None
        url = state.field("page.url", now)

        def get(field: str) -> Any:
            return state.field(field, now)

        def count(event: str, within: float) -> int:
            return state.count(event, within, now)

        def expiry(event: str, within: float) -> float | None:
            return state.count_expiry(event, within, now)

        memo: dict[Any, tuple[bool, float | None]] = {}
        group_memos: dict[str | None, tuple[dict[Any, tuple[bool, float | None]], Callable[[str], Any]]] = {}
        present: bool | None = None
        entries = self.rules.get(state.site, ())
        gates = self._gates.get(state.site, [])
        for index, entry in enumerate(entries):
            gate = gates[index]
            if gate is not None:
                # Most rules of a site fail on their first time-invariant comparison (a page glob):
                # decide that once per evaluation, and skip the rule outright when it fails and
                # the visitor has no episode of it to end — exactly what the full path would do.
                episodes = state.episodes
                if not (episodes and entry.id in episodes):
                    hit = memo.get(gate[0])
                    if hit is None:
                        hit = memo[gate[0]] = (gate[1].test(state.field(gate[1].field, now)), None)
                    if not hit[0]:
                        continue
            rule = entry.rule
            if rule.enabled and (rule.url_glob is None or targets(rule, url)):
                if rule.reads_rule_fields:
                    # agents.online depends on the rule's group: one memo per group, not one per rule
                    group_memo = group_memos.get(rule.group)
                    if group_memo is None:
                        group_memo = group_memos[rule.group] = ({}, self.getter(state, rule, now))
                    holds, change = evaluate_timed(rule.when, now, group_memo[1], count, state.grows_at, expiry, group_memo[0])
                else:
                    holds, change = evaluate_timed(rule.when, now, get, count, state.grows_at, expiry, memo)
                if change is not None and (soonest is None or change < soonest):
                    soonest = change
            else:
                holds = False
            episodes = state.episodes
            episode = episodes.get(entry.id) if episodes else None
            if not holds:
                if episode is not None:
                    self._end_episode(state, entry, episode, now)
                continue
            if episode is None:
                episode = self._begin_episode(state, entry, now)
            if episode.status == DONE:
                continue
            if now < episode.due:
                soonest = episode.due if soonest is None else min(soonest, episode.due)
                continue
            if present is None:
                present = state.present(now)
            wake = self._attempt(state, entry, episode, now, present)
            if wake is not None and (soonest is None or wake < soonest):
                soonest = wake
        if soonest is not None and soonest <= now:
            soonest = None  # every source is strictly later; a timer due now would repeat this forever
        self._schedule(state, soonest)

    def _gates_of(self, site: Any, entries: Sequence[RuleEntry]) -> list[tuple[tuple[Any, ...], Compare] | None]:
        """Per rule, the comparison that alone makes it false until the next event, if it has one.

        The first of an ``all``'s time-invariant comparisons (``timed_order`` puts them first),
        or a rule that is one such comparison; never ``agents.online``, which differs by group.
        Worked out by ``set_rules``, the only place a site's rules change."""
        gates: list[tuple[tuple[Any, ...], Compare] | None] = []
        for entry in entries:
            when = entry.rule.when
            first = (when.timed_order or when.children)[0] if isinstance(when, AllOf) and when.children else when
            if isinstance(first, Compare) and not first.grows and first.field != "agents.online":
                gates.append((first.key, first))
            else:
                gates.append(None)
        return gates

    def getter(self, state: VisitorState, rule: Rule, now: float) -> Callable[[str], Any]:
        """The fields as this rule reads them: the visitor's, and ``agents.online`` for its group."""

        def get(field: str) -> Any:
            if field == "agents.online":
                return self.agents_online(state.tenant, rule.group)
            return state.field(field, now)

        return get

    def agents_online(self, tenant: Any, group: str | None) -> bool | None:
        """An agent of the group was online at its last capacity report (any group's, for a rule
        without one); None when no report says (a group that never reported)."""
        if group is not None:
            capacity = self.capacity.get((tenant, group))
            return None if capacity is None else capacity.online_agents > 0
        reports = [c for (t, _), c in self.capacity.items() if t == tenant]
        return any(c.online_agents > 0 for c in reports) if reports else None

    def _begin_episode(self, state: VisitorState, entry: RuleEntry, now: float) -> Episode:
        episode = Episode(now, now + entry.rule.delay)
        if state.episodes is None:
            state.episodes = {}
        state.episodes[entry.id] = episode
        self.counters[(entry.id, assign_variant(entry.rule, entry.id, state.visitor_hash), "matched")] += 1
        self._dirty(state)
        return episode

    def _end_episode(self, state: VisitorState, entry: RuleEntry, episode: Episode, now: float) -> None:
        """The condition stopped holding. A visitor who was waiting is lost: counted by what held
        them back."""
        if episode.status == WAITING:
            self._suppressed(state, entry, episode.reason or "capacity", now)
        self._drop_episode(state, entry.id)

    def _drop_episode(self, state: VisitorState, rule_id: str) -> None:
        episodes = state.episodes
        if not episodes or rule_id not in episodes:
            return
        self._dequeue(episodes.pop(rule_id))
        if not episodes:
            state.episodes = None
        self._dirty(state)

    def block(self, entry: RuleEntry, state: VisitorState, now: float, present: bool) -> tuple[str | None, bool]:
        """What holds the invitation back now, and whether it lifts (the visitor then waits)."""
        rule = entry.rule
        if state.chat_active:
            return "active_chat", True
        if (rule.goal_event and rule.goal_event in (state.goals or ())) or (rule.goal_url and rule.goal_url in (state.url_goals or ())):
            return "goal_reached", False
        caps = rule.caps
        session = state.session
        if caps.per_session and session and (session.invited or {}).get(entry.id, 0) >= caps.per_session:
            return "cap", False
        history = state.history or ()
        if caps.per_visitor_per_day:
            day_start = self.day_start(state.site, now)
            # Control exposures count like invitations: the holdout must meet the same caps, or
            # its visitors would be exposed again and again and the comparison would be skewed.
            if sum(1 for h in history if h[0] == entry.id and h[1] in EXPOSED and h[2] >= day_start) >= caps.per_visitor_per_day:
                return "cap", False
        if caps.cooldown_after_dismiss and any(
            h[0] == entry.id and h[1] == "dismissed" and now - h[2] < caps.cooldown_after_dismiss for h in history
        ):
            return "cap", False
        if caps.until is not None:
            ends = ("shown", "accepted") if caps.until == "seen" else ("accepted", "dismissed")
            if any(h[0] == entry.id and h[1] in ends for h in history):
                return "cap", False
        if state.outstanding is not None:
            return "open_invitation", True
        if not present:
            return "absent", True
        if rule.hours is not None:
            config = self.sites.get(state.site, DEFAULT_SITE)
            if not rule.hours.open_at(now, config.timezone, config.holidays):
                return "hours", True
        if self.gate_capacity and rule.group is not None:
            free = self.free_slots(state.tenant, rule.group)
            if free is not None and free <= 0:
                return "capacity", True
        if self.pace and self._pacing_full(state.site, now):
            return "pacing", True
        return None, False

    def day_start(self, site: Any, now: float) -> float:
        """Local midnight in the site's time zone: caps per day are calendar days."""
        zone = ZoneInfo(self.sites.get(site, DEFAULT_SITE).timezone)
        local = datetime.fromtimestamp(now, zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def _pacing_full(self, site: Any, now: float) -> bool:
        recent = self._sent_times.get(site)
        if not recent:
            return False
        while recent and now - recent[0] >= 60:
            recent.popleft()
        return len(recent) >= self.sites.get(site, DEFAULT_SITE).pacing_per_minute

    def _attempt(self, state: VisitorState, entry: RuleEntry, episode: Episode, now: float, present: bool) -> float | None:
        """Try to send; returns when to try again (a wait running out, hours opening) or None."""
        reason, lifts = self.block(entry, state, now, present)
        if reason is None:
            variant = assign_variant(entry.rule, entry.id, state.visitor_hash)
            if episode.status == WAITING:
                waited = now - (episode.waited_since or now)
                self.counters[(entry.id, variant, "served_after_wait")] += 1
                self.counters[(entry.id, variant, wait_bucket(waited))] += 1
            if variant == "control":
                self._suppressed(state, entry, "holdout", now)
                self._count_exposure(state, entry.id)
                state.remember(entry.id, "control", now, variant)
            else:
                self._send(entry, state, now, variant)
                self._finish_episode(state, episode, "sent")
            return None
        if not lifts:
            self._suppressed(state, entry, reason, now)
            return None
        if episode.status != WAITING:
            episode.status = WAITING
            episode.waited_since = now
            self.counters[(entry.id, assign_variant(entry.rule, entry.id, state.visitor_hash), "waits")] += 1
        episode.reason = reason
        self._enqueue(state, entry, episode)
        self._dirty(state)
        deadline = (episode.waited_since or now) + entry.rule.max_wait
        if now >= deadline:
            self._suppressed(state, entry, reason, now)
            return None
        if reason == "hours" and entry.rule.hours is not None:
            config = self.sites.get(state.site, DEFAULT_SITE)
            opening = entry.rule.hours.next_open(now, config.timezone, config.holidays)
            if opening is not None:
                return min(deadline, opening)
        if reason == "pacing":
            self._pacing_wake(state.site)
        return deadline

    @staticmethod
    def _count_exposure(state: VisitorState, rule_id: str) -> None:
        """Toward the per-visit cap: an invitation sent, or a control exposure in its place."""
        session = state.session
        if session is not None:
            session.invited = {**(session.invited or {}), rule_id: (session.invited or {}).get(rule_id, 0) + 1}

    def _suppressed(self, state: VisitorState, entry: RuleEntry, reason: str, now: float) -> None:
        variant = assign_variant(entry.rule, entry.id, state.visitor_hash)
        self.counters[(entry.id, variant, f"suppressed_{reason}")] += 1
        self.decisions.append(Decision(now, state.visitor_hash, entry.id, "control" if reason == "holdout" else f"suppressed_{reason}"))
        episode = (state.episodes or {}).get(entry.id)
        if episode is not None:
            self._finish_episode(state, episode, reason)

    def _finish_episode(self, state: VisitorState, episode: Episode, outcome: str) -> None:
        self._dequeue(episode)
        episode.status = DONE
        episode.reason = outcome
        self._dirty(state)

    def _send(self, entry: RuleEntry, state: VisitorState, now: float, variant: str) -> Invitation:
        rule = entry.rule
        message = next((v.message for v in rule.variants if v.name == variant and v.message), rule.message)
        invitation = Invitation(
            id=invitation_id(entry.id, state.visitor_hash, now), rule=rule.name, variant=variant, message=message, group=rule.group, expires_at=_utc(now + rule.expires),
        )
        record = OpenInvitation(invitation=invitation, rule_id=entry.id, key=state.key, tenant=state.tenant, sent_at=now,
                                expires=now + rule.expires)
        self.open[invitation.id] = record
        state.outstanding = invitation.id
        if rule.group:
            self.outstanding[(state.tenant, rule.group)] += 1
        self._count_exposure(state, entry.id)
        state.remember(entry.id, "sent", now, variant)
        self._sent_times.setdefault(state.site, deque(maxlen=MAX_PACING)).append(now)
        self.counters[(entry.id, variant, "sent")] += 1
        self.decisions.append(Decision(now, state.visitor_hash, entry.id, "sent"))
        self._record(record)
        if self.journal:
            self.changes.deliveries.append((state.key, invitation))
        self._timer(record.expires, ("x", invitation.id))
        return invitation

    # --- waiting -----------------------------------------------------------------------------

    def _enqueue(self, state: VisitorState, entry: RuleEntry, episode: Episode) -> None:
        rule = entry.rule
        key = (state.tenant, rule.group)
        item = WaitItem((-rule.priority, episode.since, rule.name, entry.id, state.visitor_hash, state.site))
        if episode.queue is not None:
            if episode.queue == (key, item):
                return
            self._dequeue(episode)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = WaitQueue()
        queue.add(item)
        episode.queue = (key, item)

    def _dequeue(self, episode: Episode) -> None:
        if episode.queue is None:
            return
        key, item = episode.queue
        queue = self.queues.get(key)
        if queue is not None:
            queue.remove(item)
            if not queue:
                del self.queues[key]
        episode.queue = None

    def waiting(self, tenant: Any, group: str | None) -> int:
        """Visitors queued for the group: each once, however many of its rules they wait on."""
        queue = self.queues.get((tenant, group))
        return len({(item[5], item[4]) for item in queue.items}) if queue else 0

    def _waiting_alike(self, key: GroupKey, reason: str | None, site: Any) -> list[WaitItem]:
        """The group's queue as one waiting for ``reason`` sees it, best first: the visitors waiting
        for the same thing (a visitor waiting for their chat to end, or for business hours, is not
        ahead of one waiting for a slot — the slot goes past them), and for pacing, which is per
        site, those of the same site."""
        queue = self.queues.get(key)
        if queue is None:
            return []
        alike = []
        for item in queue.items:
            if reason == "pacing" and item[5] != site:
                continue
            other = self.visitors.get((item[5], item[4]))
            episode = (other.episodes or {}).get(item[3]) if other is not None else None
            if episode is None or episode.reason == reason:
                alike.append(item)
        return alike

    def _drain(self, key: GroupKey, now: float | None = None) -> None:
        """Capacity freed in a group: decide its waiting visitors again, best first, while slots last."""
        queue = self.queues.get(key)
        if not queue:
            return
        tenant, group = key
        for item in list(queue.items):
            if self.gate_capacity and group is not None:
                free = self.free_slots(tenant, group)
                if free is not None and free <= 0:
                    return
            state = self.visitors.get((item[5], item[4]))
            if state is not None:
                self.evaluate(state, now)

    def _pacing_wake(self, site: Any) -> None:
        recent = self._sent_times.get(site)
        if not recent:
            return
        due = recent[0] + 60
        if self._paced.get(site) != due:
            self._paced[site] = due
            self._timer(due, ("p", site))

    def _release_pacing(self, site: Any, now: float | None = None) -> None:
        """The site's pacing window moved: its waiting visitors, best first across groups."""
        self._paced.pop(site, None)
        items = sorted(item for queue in self.queues.values() for item in queue.items if item[5] == site)
        if now is None:
            now = self.clock()
        for item in items:
            if self._pacing_full(site, now):
                return
            state = self.visitors.get((site, item[4]))
            if state is not None:
                self.evaluate(state, now)

    def _finish(self, now: float | None = None) -> None:
        """After each public call: decide again wherever capacity was freed."""
        while self._to_drain:
            self._drain(self._to_drain.pop(), now)

    # --- time --------------------------------------------------------------------------------

    def _timer(self, due: float, item: tuple[str, Any]) -> None:
        earlier = not self._timers or due < self._timers[0][0]
        heapq.heappush(self._timers, (due, next(self._seq), item))
        if earlier:
            self.on_earlier_timer(due)

    def _schedule(self, state: VisitorState, due: float | None) -> None:
        if state.due != due:
            state.due = due
            self._dirty(state)
        key = state.key
        if due is None:
            self._scheduled.pop(key, None)
            return
        if self._scheduled.get(key) == due:
            return
        self._scheduled[key] = due
        self._timer(due, ("v", key))

    def _poke(self, key: VisitorKey, now: float) -> None:
        """Decide this visitor again on the next tick (without touching its stored due time)."""
        if self._scheduled.get(key, now + 1) > now:
            self._scheduled[key] = now
            self._timer(now, ("v", key))

    def next_due(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def tick(self, budget: int = TICK_BUDGET) -> int:
        """Handle what is due now (at most ``budget`` timers); returns how many fired.

        Each timer is decided as of its due time, not of the moment the tick ran: a timer handled
        a few milliseconds late decides exactly what it would have decided on time, so the live
        engine and a replay of the same events agree to the microsecond."""
        now = self.clock()
        fired = 0
        timers = self._timers
        while timers and timers[0][0] <= now and fired < budget:
            due, _, (kind, arg) = heapq.heappop(timers)
            if kind == "v":
                if self._scheduled.get(arg) != due:
                    continue  # superseded by a later evaluation
                del self._scheduled[arg]
                state = self.visitors.get(arg)
                if state is not None:
                    self.evaluate(state, max(due, state.last_seen))
                elif self.on_missing is not None:
                    self.on_missing(arg, due)
            elif kind == "x":
                record = self.open.get(arg)
                if record is not None:
                    self._close(record, "expired", due)
            elif kind == "p":
                if self._paced.get(arg) == due:
                    self._release_pacing(arg, due)
            fired += 1
            self._finish(due)
        return fired

    # --- the journal's side ------------------------------------------------------------------

    def _dirty(self, state: VisitorState) -> None:
        if self.journal:
            self.changes.visitors.add(state.key)
            self.on_change()

    def _record(self, record: OpenInvitation) -> None:
        if self.journal:
            self.changes.invitations[record.invitation.id] = record
            self.on_change()

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes

    def take_counters(self) -> Counter[tuple[str, str, str]]:
        counters, self.counters = self.counters, Counter()
        return counters

    # --- explanations ------------------------------------------------------------------------

    def explain(self, state: VisitorState | None, site: Any) -> list[Outcome]:
        now = self.clock()
        out = []
        zone = ZoneInfo(self.sites.get(site, DEFAULT_SITE).timezone)

        def clock_time(at: float) -> str:
            return datetime.fromtimestamp(at, zone).strftime("%H:%M:%S")

        for entry in self.rules.get(site, []):
            rule = entry.rule
            if state is None:
                out.append(Outcome(rule.name, entry.id, False, False, [], "no activity from this visitor"))
                continue
            trace: list[str] = []
            url = state.field("page.url", now)
            targeted = targets(rule, url)
            get = self.getter(state, rule, now)
            holds = evaluate(rule.when, get, lambda e, w: state.count(e, w, now), trace)
            episode = (state.episodes or {}).get(entry.id)
            if not rule.enabled:
                decision = "not targeted: the rule is disabled"
            elif not targeted:
                decision = f"not targeted: page {url!r} does not match {rule.url_glob!r}"
            elif not holds:
                decision = "not matched"
            elif episode is not None and episode.status == DONE:
                sent = [h[2] for h in state.history or () if h[0] == entry.id and h[1] == "sent" and h[2] >= episode.since]
                decision = f"sent at {clock_time(sent[-1])}" if episode.reason == "sent" and sent else f"suppressed: {episode.reason}"
            elif episode is not None and episode.status == WAITING:
                position = ""
                if episode.queue is not None:
                    rivals = self._waiting_alike(episode.queue[0], episode.reason, state.site)
                    position = f": position {bisect.bisect_left(rivals, episode.queue[1]) + 1} of {len(rivals)}"
                decision = f"waiting for {WAIT_WORDS.get(episode.reason or '', episode.reason)}{position} since {clock_time(episode.waited_since or now)}"
            elif episode is not None and episode.status == PENDING and now < episode.due:
                decision = f"delayed until {clock_time(episode.due)}"
            else:
                reason, lifts = self.block(entry, state, now, state.present(now))
                if reason is None:
                    decision = "would send"
                elif lifts:
                    decision = f"would wait for {WAIT_WORDS.get(reason, reason)}"
                else:
                    decision = f"suppressed: {reason}"
            _, change = evaluate_timed(rule.when, now, get, lambda e, w: state.count(e, w, now),
                                       state.grows_at, lambda e, w: state.count_expiry(e, w, now))
            due = state.due if state.due is not None and (change is None or state.due < change) else change
            goal = self._goal_status(state, entry, clock_time) if rule.goal_key is not None else None
            out.append(Outcome(rule.name, entry.id, targeted, holds, trace, decision, _utc(due) if due else None, goal))
        return out

    @staticmethod
    def _goal_status(state: VisitorState, entry: RuleEntry, clock_time: Callable[[float], str]) -> str:
        rule = entry.rule
        model = f"{rule.goal_attribution} touch"
        credited = [h for h in state.history or () if h[0] == entry.id and h[1] == "goal"]
        if credited:
            return f"reached at {clock_time(credited[-1][2])}, counted for variant {credited[-1][3]} ({model})"
        if rule.goal_event in (state.goals or ()) or rule.goal_url in (state.url_goals or ()):
            return (f"reached, not counted for this rule ({model}: no invitation of it in the {rule.goal_within:g} s before, "
                    f"or another rule's with this goal was the {rule.goal_attribution})")
        return "not reached"
