"""The engagement engine: visitor state, rule evaluation, timers, pacing by real agent capacity.

Evaluation happens for one visitor at a time: on each event batch, and when a timer says a
time-driven condition (time on page, idle, a sliding window) could flip. Each visitor has at most
one pending timer in a heap; ``tick()`` pops only what is due, so its cost grows with due timers,
never with the number of visitors or rules.

A rule fires when its condition *becomes* true. Then, in order, it can be suppressed by: an
active chat, a goal already reached, business hours, caps (per session, per visitor per day,
cooldown after a dismissal, an invitation already open), the holdout control group, agent
capacity (free slots = online agents × max chats − active chats − open invitations; a group that
never reported capacity is not gated), and pacing (invitations per site per minute). Every
outcome is counted per rule and variant.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import time
import uuid
from collections import Counter, defaultdict, deque
from datetime import datetime, timezone
from typing import Any, Callable

from proactive.delivery import InvitationDelivery
from proactive.model import GroupCapacity, Invitation, OpenInvitation, Outcome, RuleEntry
from proactive.rules import Rule, evaluate, evaluate_timed, targets
from proactive.state import EventCodes, VisitorState

VISITOR_IDLE_EXPIRY = 30 * 60.0
DEFAULT_PACING_PER_MINUTE = 60
DAY = 86400.0


def _bucket(*parts: str) -> float:
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_variant(rule: Rule, rule_id: str, visitor_id: str) -> str:
    """Deterministic per visitor: the holdout share goes to "control", the rest by weight."""
    if rule.holdout and _bucket("holdout", rule_id, visitor_id) < rule.holdout:
        return "control"
    point = _bucket("variant", rule_id, visitor_id) * sum(v.weight for v in rule.variants)
    for variant in rule.variants:
        point -= variant.weight
        if point < 0:
            return variant.name
    return rule.variants[-1].name


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


class Engine:
    def __init__(
        self, clock: Callable[[], float] = time.time, gate_capacity: bool = True, pace: bool = True,
        delivery: InvitationDelivery | None = None,
    ) -> None:
        self.clock = clock
        self.gate_capacity = gate_capacity
        self.pace = pace
        self.delivery = delivery or InvitationDelivery()
        self.codes = EventCodes()
        self.visitors: dict[tuple[Any, str], VisitorState] = {}
        self.rules: dict[Any, list[RuleEntry]] = {}  # site id → rules, highest priority first
        self.pacing_limit: dict[Any, int] = {}
        self._timers: list[tuple[float, int, Any]] = []
        self._scheduled: dict[Any, float] = {}
        self._seq = itertools.count()
        self._delayed: dict[tuple[tuple[Any, str], str], float] = {}
        self.open: dict[str, OpenInvitation] = {}
        self.capacity: dict[tuple[Any, str], GroupCapacity] = {}
        self.outstanding: Counter[tuple[Any, str]] = Counter()
        self._sent_times: dict[Any, deque[float]] = defaultdict(lambda: deque(maxlen=1000))
        self.counters: Counter[tuple[str, str, str]] = Counter()
        self.sent_log: list[tuple[str, str, float]] = []  # (rule id, visitor hash, at): backtests read it

    # --- rules and capacity ------------------------------------------------------------------

    def set_rules(self, site: Any, entries: list[RuleEntry], pacing_per_minute: int | None = None) -> None:
        self.rules[site] = sorted(entries, key=lambda e: -e.rule.priority)
        if pacing_per_minute is not None:
            self.pacing_limit[site] = pacing_per_minute
        for state in self.visitors.values():
            if state.site == site and state.matched:
                state.matched &= {e.id for e in entries}

    def set_capacity(self, tenant: Any, groups: dict[str, GroupCapacity]) -> None:
        for name, capacity in groups.items():
            self.capacity[(tenant, name)] = capacity

    def free_slots(self, tenant: Any, group: str) -> int | None:
        capacity = self.capacity.get((tenant, group))
        if capacity is None:
            return None
        total = capacity.online_agents * capacity.max_chats_per_agent
        return total - capacity.active_chats - self.outstanding[(tenant, group)]

    # --- events ------------------------------------------------------------------------------

    def state_for(self, tenant: Any, site: Any, visitor_id: str, visitor_hash: str) -> VisitorState:
        key = (site, visitor_id)
        state = self.visitors.get(key)
        if state is None:
            # State rebuilt from stored events after a restart is keyed by the visitor's hash (the
            # id is never stored); the visitor's first new event re-attaches it under the id.
            state = self.visitors.pop((site, visitor_hash), None)
            if state is not None:
                state.visitor_id = visitor_id
                self._scheduled.pop((site, visitor_hash), None)
            else:
                state = VisitorState(tenant, site, visitor_id, visitor_hash, self.clock(), self.codes)
            self.visitors[key] = state
        return state

    def apply_events(self, state: VisitorState, events: list[dict[str, Any]], replay: bool = False) -> None:
        now = self.clock()
        for event in events:
            at = min(event["at_epoch"], now)
            state.apply(event, at)
            kind = event["type"]
            if kind in ("invitation_shown", "invitation_accepted", "invitation_dismissed") and not replay:
                self._invitation_status(event, kind.split("_", 1)[1], at)
            elif kind == "goal" and not replay:
                self._attribute_goal(state, event.get("name") or "goal", at)
        self.evaluate(state, replay=replay)

    def _invitation_status(self, event: dict[str, Any], status: str, at: float) -> None:
        invitation_id = str((event.get("props") or {}).get("invitation_id", ""))
        record = self.open.get(invitation_id)
        if record is None or record.status in ("accepted", "dismissed", "expired"):
            return
        if status == "shown" and record.status == "shown":
            return
        record.status = status
        self.counters[(record.rule_id, record.invitation.variant, status)] += 1
        state = self.visitors.get(record.key)
        if status in ("accepted", "dismissed"):
            self._close(record)
            if state is not None and status == "dismissed":
                state.remember(record.rule_id, "dismissed", at, record.invitation.variant)

    def _close(self, record: OpenInvitation) -> None:
        if record.invitation.group:
            self.outstanding[(record.tenant, record.invitation.group)] -= 1
        state = self.visitors.get(record.key)
        if state is not None and state.outstanding == record.invitation.id:
            state.outstanding = None
        self.open.pop(record.invitation.id, None)

    def _attribute_goal(self, state: VisitorState, name: str, at: float) -> None:
        for entry in self.rules.get(state.site, []):
            if entry.rule.goal_event != name:
                continue
            history = state.history or ()
            exposures = [h for h in history if h[0] == entry.id and h[1] in ("sent", "control") and at - h[2] <= entry.rule.goal_within]
            already = any(h[0] == entry.id and h[1] == "goal" and exposures and h[2] >= exposures[-1][2] for h in history)
            if exposures and not already:
                self.counters[(entry.id, exposures[-1][3], "goals")] += 1
                state.remember(entry.id, "goal", at, exposures[-1][3])

    # --- evaluation --------------------------------------------------------------------------

    def evaluate(self, state: VisitorState, replay: bool = False) -> None:
        now = self.clock()
        key = (state.site, state.visitor_id)
        soonest: float | None = None
        url = state.field("page.url", now)

        def get(field: str) -> Any:
            return state.field(field, now)

        def count(event: str, within: float) -> int:
            return state.count(event, within, now)

        def expiry(event: str, within: float) -> float | None:
            return state.count_expiry(event, within, now)

        memo: dict[Any, tuple[bool, float | None]] = {}
        matched = state.matched or set()
        for entry in self.rules.get(state.site, ()):
            rule = entry.rule
            if rule.enabled and (rule.url_glob is None or targets(rule, url)):
                holds, change = evaluate_timed(rule.when, now, get, count, state.grows_at, expiry, memo)
            else:
                holds, change = False, None
            was = entry.id in matched
            if holds == was and not self._delayed:
                if change is not None and (soonest is None or change < soonest):
                    soonest = change
                continue
            delayed_key = (key, entry.id)
            if holds and not was:
                matched = state.matched = matched | {entry.id}
                if not replay:
                    variant = assign_variant(rule, entry.id, state.visitor_id)
                    self.counters[(entry.id, variant, "matched")] += 1
                    if rule.delay > 0:
                        self._delayed[delayed_key] = now + rule.delay
                    else:
                        self.fire(entry, state, now)
            elif not holds and was:
                matched.discard(entry.id)
                self._delayed.pop(delayed_key, None)
            due = self._delayed.get(delayed_key)
            if due is not None:
                if holds and due <= now:
                    del self._delayed[delayed_key]
                    self.fire(entry, state, now)
                elif holds:
                    soonest = due if soonest is None else min(soonest, due)
            if change is not None:
                soonest = change if soonest is None else min(soonest, change)
        self._schedule(key, soonest)

    def suppression(self, entry: RuleEntry, state: VisitorState, now: float, variant: str) -> str | None:
        rule = entry.rule
        if state.chat_active:
            return "active_chat"
        if rule.goal_event and rule.goal_event in (state.goals or ()):
            return "goal_reached"
        if rule.hours is not None and not rule.hours.open_at(_utc(now)):
            return "hours"
        caps = rule.caps
        session = state.session
        if state.outstanding is not None:
            return "cap"
        if caps.per_session and session and (session.invited or {}).get(entry.id, 0) >= caps.per_session:
            return "cap"
        history = state.history or ()
        sends = [h for h in history if h[0] == entry.id and h[1] == "sent"]
        if caps.per_visitor_per_day and sum(1 for h in sends if now - h[2] < DAY) >= caps.per_visitor_per_day:
            return "cap"
        if caps.cooldown_after_dismiss and any(h[0] == entry.id and h[1] == "dismissed" and now - h[2] < caps.cooldown_after_dismiss for h in history):
            return "cap"
        if variant == "control":
            return "holdout"
        if self.gate_capacity and rule.group is not None:
            free = self.free_slots(state.tenant, rule.group)
            if free is not None and free <= 0:
                return "capacity"
        if self.pace:
            recent = self._sent_times[state.site]
            limit = self.pacing_limit.get(state.site, DEFAULT_PACING_PER_MINUTE)
            while recent and now - recent[0] > 60:
                recent.popleft()
            if len(recent) >= limit:
                return "pacing"
        return None

    def fire(self, entry: RuleEntry, state: VisitorState, now: float) -> Invitation | None:
        rule = entry.rule
        variant = assign_variant(rule, entry.id, state.visitor_id)
        reason = self.suppression(entry, state, now, variant)
        if reason is not None:
            self.counters[(entry.id, variant, f"suppressed_{reason}")] += 1
            if reason == "holdout":
                state.remember(entry.id, "control", now, variant)
            return None
        message = next((v.message for v in rule.variants if v.name == variant and v.message), rule.message)
        invitation = Invitation(
            id=uuid.uuid4().hex, rule=rule.name, variant=variant, message=message, group=rule.group, expires_at=_utc(now + rule.expires)
        )
        key = (state.site, state.visitor_id)
        record = OpenInvitation(invitation=invitation, rule_id=entry.id, key=key, tenant=state.tenant, expires=now + rule.expires)
        self.open[invitation.id] = record
        state.outstanding = invitation.id
        if rule.group:
            self.outstanding[(state.tenant, rule.group)] += 1
        if state.session is not None:
            state.session.invited = {**(state.session.invited or {}), entry.id: (state.session.invited or {}).get(entry.id, 0) + 1}
        state.remember(entry.id, "sent", now, variant)
        self._sent_times[state.site].append(now)
        self.counters[(entry.id, variant, "sent")] += 1
        self.sent_log.append((entry.id, state.visitor_hash, now))
        if len(self.sent_log) > 10_000:
            del self.sent_log[:5000]
        self.delivery.deliver(key, invitation)
        heapq.heappush(self._timers, (record.expires, next(self._seq), ("expire", invitation.id)))
        return invitation

    # --- time --------------------------------------------------------------------------------

    def _schedule(self, key: tuple[Any, str], due: float | None) -> None:
        # The evaluation that asks for a timer has just seen "now": a timer due now or earlier
        # would only repeat it, and the tick would never finish.
        if due is None or due <= self.clock():
            self._scheduled.pop(key, None)
            return
        if self._scheduled.get(key) == due:
            return
        self._scheduled[key] = due
        heapq.heappush(self._timers, (due, next(self._seq), key))

    def next_due(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def tick(self) -> int:
        """Handle everything due now; returns how many timers fired."""
        now = self.clock()
        fired = 0
        while self._timers and self._timers[0][0] <= now:
            due, _, item = heapq.heappop(self._timers)
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "expire":
                record = self.open.get(item[1])
                if record is not None and record.status in ("sent", "shown"):
                    record.status = "expired"
                    self.counters[(record.rule_id, record.invitation.variant, "expired")] += 1
                    self._close(record)
                fired += 1
                continue
            if self._scheduled.get(item) != due:
                continue  # superseded by a later evaluation
            del self._scheduled[item]
            state = self.visitors.get(item)
            if state is not None:
                self.evaluate(state)
                fired += 1
        return fired

    def expire_idle(self) -> int:
        """Forget visitors idle longer than the expiry (a periodic job, not part of the tick)."""
        cutoff = self.clock() - VISITOR_IDLE_EXPIRY
        gone = [k for k, s in self.visitors.items() if s.last_seen < cutoff and s.outstanding is None]
        for key in gone:
            del self.visitors[key]
            self._scheduled.pop(key, None)
            self.delivery.forget(key)
        return len(gone)

    def take_pending(self, site: Any, visitor_id: str) -> list[Invitation]:
        return self.delivery.take_pending((site, visitor_id), self.clock())

    # --- explanations ------------------------------------------------------------------------

    def explain(self, state: VisitorState | None, site: Any) -> list[Outcome]:
        now = self.clock()
        out = []
        for entry in self.rules.get(site, []):
            rule = entry.rule
            if state is None:
                out.append(Outcome(rule.name, entry.id, False, False, [], "no activity from this visitor (or it expired)"))
                continue
            trace: list[str] = []
            url = state.field("page.url", now)
            targeted = targets(rule, url)
            holds = evaluate(rule.when, lambda f: state.field(f, now), lambda e, w: state.count(e, w, now), trace)
            if not rule.enabled:
                decision = "not targeted: the rule is disabled"
            elif not targeted:
                decision = f"not targeted: page {url!r} does not match {rule.url_glob!r}"
            elif not holds:
                decision = "not matched"
            else:
                reason = self.suppression(entry, state, now, assign_variant(rule, entry.id, state.visitor_id))
                decision = f"suppressed: {reason}" if reason else "would send"
            _, change = evaluate_timed(rule.when, now, lambda f: state.field(f, now), lambda e, w: state.count(e, w, now),
                                       state.grows_at, lambda e, w: state.count_expiry(e, w, now))
            out.append(Outcome(rule.name, entry.id, targeted, holds, trace, decision, _utc(change) if change else None))
        return out
