"""Backtests: a site's stored events replayed through the live engine's own code.

Nothing is re-implemented for the replay. Each stored batch is applied at the time the server
received it, with the tab, title, referrer and UTM parameters the live engine saw (they are
stored, redacted the same way), timers fire at their due times exactly as the live engine decides
them, holdout and variants hash the same stored visitor key, visits end after the same gap, and
invitation ids are derived the same way so the browser's reports about them replay too. Rules of
the site other than the one tested take part as they do live (an open invitation of another rule
holds a visitor back).

What is not simulated: agent capacity and pacing (they depend on live agent load), and whatever a
visitor did before the replayed window.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import msgspec

from archive.clock import ManualClock
from proactive.engine import Engine
from proactive.model import Decision, RuleEntry, SiteConfig
from proactive.store import Batch


class BacktestOut(msgspec.Struct):
    rule: str
    days: int
    events: int
    visitors: int
    invitations: int
    visitors_invited: int
    suppressed: dict[str, int]
    goals: int = 0  # goals credited to the rule (its goal and attribution, as live)
    note: str = "capacity and pacing are not simulated: they depend on live agent load"


class Replay(msgspec.Struct):
    decisions: list[Decision]
    counters: Counter[tuple[str, str, str]]
    events: int
    visitors: int


def replay(entries: list[RuleEntry], site: Any, config: SiteConfig, batches: list[Batch], until: float) -> Replay:
    """Every visitor's batches in order, timers up to ``until``. Visitors do not affect each other
    without capacity and pacing, so each gets an engine of its own (memory stays bounded)."""
    by_visitor: dict[str, list[Batch]] = defaultdict(list)
    for batch in batches:
        by_visitor[batch.visitor_hash].append(batch)
    decisions: list[Decision] = []
    counters: Counter[tuple[str, str, str]] = Counter()
    for visitor_hash, items in by_visitor.items():
        clock = ManualClock(items[0].received)
        engine = Engine(clock=clock.time, gate_capacity=False, pace=False, journal=False)
        engine.set_site(site, config)
        engine.set_rules(site, entries)
        state = engine.new_visitor(items[0].tenant, site, visitor_hash)
        for batch in items:
            _run_timers(engine, clock, batch.received)
            clock.set(batch.received)
            engine.apply_events(state, batch.events)
        _run_timers(engine, clock, until)
        decisions.extend(engine.decisions)
        counters.update(engine.counters)
    return Replay(decisions, counters, sum(len(b.events) for b in batches), len(by_visitor))


def _run_timers(engine: Engine, clock: ManualClock, until: float) -> None:
    while (due := engine.next_due()) is not None and due <= until:
        clock.set(due)
        engine.tick()


def summary(entry: RuleEntry, days: int, result: Replay) -> BacktestOut:
    mine = [d for d in result.decisions if d.rule_id == entry.id]
    suppressed: Counter[str] = Counter()
    goals = 0
    for (rule_id, _, name), count in result.counters.items():
        if rule_id == entry.id and name.startswith("suppressed_"):
            suppressed[name.removeprefix("suppressed_")] += count
        elif rule_id == entry.id and name == "goals":
            goals += count
    sent = [d for d in mine if d.outcome == "sent"]
    return BacktestOut(
        rule=entry.rule.name, days=days, events=result.events, visitors=result.visitors, invitations=len(sent),
        visitors_invited=len({d.visitor_hash for d in sent}), suppressed=dict(suppressed), goals=goals,
    )
