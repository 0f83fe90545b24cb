"""What each support figure of a conversation means (archive/metrics/compute.py): one definition
per test, on conversations built by hand."""

from __future__ import annotations

from typing import Any

import msgspec

from archive.metrics import compute
from archive.metrics.cells import Values
from archive.metrics.compute import Busy, Visit
from archive.metrics.report import Distribution
from archive.models import StoredConversation

T = "2026-11-02T10:"


def _m(minute_second: str, role: str, sender: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"at": f"{T}{minute_second}Z", "sender": {"role": role, "id": sender}, "text": "words", **extra}


def _figures(*messages: dict[str, Any], agents: tuple[str, ...] = ("a-1",), **fields: Any) -> compute.Figures:
    body = {
        "external_id": "x", "site": "shop", "channel": "web", "language": "en",
        "started_at": f"{T}00:00Z", "ended_at": f"{T}30:00Z", "visitor": {"id": "v"},
        "agents": [{"id": a} for a in agents], "tags": [], "metadata": {}, "messages": list(messages), **fields,
    }
    return compute.figures(msgspec.convert(body, StoredConversation))


def _part(f: compute.Figures, agent: str) -> compute.AgentPart:
    return next(p for p in f.parts if p.agent == agent)


def test_first_reply_runs_from_the_visitors_first_message_to_the_next_agent_message():
    f = _figures(_m("00:05", "agent", "a-1"), _m("01:00", "visitor", "v"), _m("01:20", "visitor", "v"), _m("02:10", "agent", "a-1"))
    assert f.first_reply_s == 70  # the greeting before the visitor wrote does not answer anything


def test_a_bot_does_not_answer_for_an_agent():
    f = _figures(_m("01:00", "visitor", "v"), _m("01:01", "bot", "b"), _m("03:00", "agent", "a-1"))
    assert f.first_reply_s == 120


def test_notes_and_events_are_not_replies():
    f = _figures(
        _m("01:00", "visitor", "v"), _m("01:30", "agent", "a-1", kind="note"),
        _m("01:40", "system", "a-1", kind="event", event="join"), _m("02:00", "agent", "a-1"),
    )
    assert (f.first_reply_s, f.agent_messages) == (60, 1)


def test_later_versions_of_edited_or_deleted_messages_are_not_counted_again():
    f = _figures(
        _m("01:00", "visitor", "v", id="m1"), _m("01:00", "visitor", "v", id="m1", edited_at=f"{T}05:00Z"),
        _m("02:00", "agent", "a-1", id="m2"), _m("02:00", "agent", "a-1", id="m2", deleted=True),
    )
    assert (f.visitor_messages, f.agent_messages, f.first_reply_s) == (1, 1, 60)


def test_an_edited_or_deleted_message_seen_only_once_is_the_message_itself():
    # Rocket.Chat sends a chat's messages as they are now (an edited one once, editedAt set);
    # Intercom a redacted part in place of the original: the agent did answer, the visitor did write.
    f = _figures(
        _m("01:00", "visitor", "v", id="m1", deleted=True), _m("01:30", "agent", "a-1", id="m2", edited_at=f"{T}05:00Z"),
        _m("06:00", "agent", "a-1", id="m3"),
    )
    assert (f.visitor_messages, f.agent_messages, f.first_reply_s) == (1, 2, 30)


def test_without_ids_an_edited_entry_after_the_senders_message_is_its_later_version():
    f = _figures(
        _m("01:00", "visitor", "v"), _m("01:00", "visitor", "v", edited_at=f"{T}02:00Z"),
        _m("01:40", "agent", "a-1", edited_at=f"{T}03:00Z"),
    )
    assert (f.visitor_messages, f.agent_messages, f.first_reply_s) == (1, 1, 40)


def test_every_answer_counts_as_a_reply_time_from_the_first_message_that_waited():
    f = _figures(
        _m("01:00", "visitor", "v"), _m("01:30", "agent", "a-1"), _m("02:00", "agent", "a-1"),
        _m("03:00", "visitor", "v"), _m("03:40", "visitor", "v"), _m("04:00", "agent", "a-1"),
    )
    assert (_part(f, "a-1").replies, _part(f, "a-1").reply_total_s) == (2, 30 + 60)


def test_a_chat_nobody_answered_waited_and_has_no_first_reply():
    f = _figures(_m("01:00", "visitor", "v"))
    assert (f.awaited, f.first_reply_s) == (True, None)


def test_a_conversation_the_visitor_never_wrote_in_awaits_nothing():
    f = _figures(_m("01:00", "agent", "a-1"))
    assert (f.awaited, f.first_reply_s) == (False, None)


def test_resolution_is_the_whole_conversation_in_whole_seconds():
    f = _figures(_m("01:00", "visitor", "v"), started_at=f"{T}00:00.4Z", ended_at=f"{T}10:00.9Z")
    assert f.resolution_s == 601  # 600.5 rounds half up


def test_handovers_count_changes_of_the_agent_writing():
    f = _figures(
        _m("01:00", "visitor", "v"), _m("02:00", "agent", "a-1"), _m("03:00", "agent", "a-2"),
        _m("04:00", "agent", "a-2"), _m("05:00", "agent", "a-1"), agents=("a-1", "a-2"),
    )
    assert f.handovers == 2


def test_the_primary_agent_is_who_sent_the_first_reply():
    f = _figures(_m("01:00", "visitor", "v"), _m("02:00", "agent", "a-2"), agents=("a-1", "a-2"))
    assert [(p.agent, p.primary) for p in f.parts] == [("a-1", False), ("a-2", True)]


def test_an_agent_who_handed_over_is_busy_until_their_last_action_the_last_one_until_the_end():
    f = _figures(
        _m("01:00", "visitor", "v"), _m("02:00", "agent", "a-1"),
        _m("03:00", "system", "a-1", kind="event", event="transfer"), _m("05:00", "agent", "a-2"), agents=("a-1", "a-2"),
    )
    start = f.started_at
    assert (_part(f, "a-1").busy_from - start, _part(f, "a-1").busy_to - start) == (120, 180)
    assert (_part(f, "a-2").busy_from - start, _part(f, "a-2").busy_to - start) == (300, 1800)


def test_a_listed_agent_who_never_acted_is_busy_for_the_whole_conversation():
    f = _figures(_m("01:00", "visitor", "v"))
    assert (_part(f, "a-1").busy_to - _part(f, "a-1").busy_from) == 1800


def test_busy_time_is_capped():
    f = _figures(_m("01:00", "visitor", "v"), started_at="2026-11-01T00:00:00Z", ended_at="2026-11-02T10:30:00Z")
    assert _part(f, "a-1").busy_to - _part(f, "a-1").busy_from == compute.MAX_BUSY_SECONDS


def test_an_agent_message_without_an_id_is_the_only_agents():
    f = _figures(_m("01:00", "visitor", "v"), _m("01:10", "agent", None))
    assert (_part(f, "a-1").replies, f.first_reply_s, _part(f, "a-1").primary) == (1, 10, True)


def test_a_conversation_without_agents_has_one_unnamed_part():
    f = _figures(_m("01:00", "visitor", "v"), agents=())
    assert [(p.agent, p.primary, p.busy_from) for p in f.parts] == [("", True, None)]


def test_ratings_and_untagged_topics():
    f = _figures(_m("01:00", "visitor", "v"), ratings={"csat": 2, "nps": 9, "ces": 7, "comment": "slow"})
    assert (f.csat, f.nps, f.ces, f.topics) == (2, 9, 7, [""])


def test_group_and_invitation_come_from_metadata_keys():
    plain = _figures(_m("01:00", "visitor", "v"), metadata={"group": "sales", "invitation_id": "abc123"})
    assert (plain.group, plain.invitation_id) == ("sales", "abc123")
    connector = _figures(_m("01:00", "visitor", "v"), metadata={"department_id": "d-7", "field.invitation_id": "def456"})
    assert (connector.group, connector.invitation_id) == ("d-7", "def456")


# --- FCR -----------------------------------------------------------------------------------------


def test_next_contact_is_the_nearest_later_conversation_about_a_shared_topic():
    nexts = compute.next_contacts([
        Visit("a", 0, 100, ("billing",)), Visit("b", 500, 600, ("shipping",)),
        Visit("c", 1000, 1100, ("billing", "refund")), Visit("d", 5000, 5100, ("refund",)),
    ])
    assert nexts == {"a": 900, "b": None, "c": 3900, "d": None}


def test_a_return_while_the_first_conversation_was_open_is_a_gap_of_zero():
    assert compute.next_contacts([Visit("a", 0, 100, ("x",)), Visit("b", 50, 80, ("x",))])["a"] == 0


def test_a_return_beyond_the_horizon_is_no_return():
    assert compute.next_contacts([Visit("a", 0, 100, ("x",)), Visit("b", 1000, 1100, ("x",))], horizon=899)["a"] is None


# --- concurrency --------------------------------------------------------------------------------


def test_concurrency_shares_add_up_to_the_agents_time_at_each_level():
    loads = compute.loads([Busy("a", 0, 100), Busy("b", 50, 150), Busy("c", 60, 70), Busy("d", 60, 70), Busy("e", 200, 200)])
    # 0-50: a alone; 50-60: a, b; 60-70: a, b, c, d; 70-100: a, b; 100-150: b alone; e lasts no time.
    assert loads["a"].shares == (50.0, 20.0, 0.0, 2.5) and loads["a"].peak == 4
    assert loads["b"].shares == (50.0, 20.0, 0.0, 2.5)
    assert loads["c"].shares == (0.0, 0.0, 0.0, 2.5) and loads["c"].peak == 4
    assert loads["e"] == compute.Load((0.0, 0.0, 0.0, 0.0), 1)
    total = [sum(load.shares[i] for load in loads.values()) for i in range(4)]
    assert total == [100.0, 40.0, 0.0, 10.0]  # wall-clock seconds at 1, 2, 3 and 4+ open


def test_an_interval_ending_as_another_starts_does_not_overlap_it():
    loads = compute.loads([Busy("a", 0, 100), Busy("b", 100, 200)])
    assert (loads["a"].peak, loads["b"].peak) == (1, 1)


# --- how cells keep values ------------------------------------------------------------------


def test_values_are_kept_counted_when_that_is_shorter_and_read_the_same_either_way():
    repeated = Values.of([30] * 6 + [45, 45, 120])
    distinct = Values.of([120, 30, 45])
    assert repeated.counts and not distinct.counts
    assert [repeated.count_at_most(limit) for limit in (29, 30, 45, 200)] == [0, 6, 8, 9]
    merged = Distribution([repeated, distinct])  # 30 ×7, 45 ×3, 120 ×2
    assert merged.size == 12 and merged.count_at_most(45) == 10
    assert (merged.percentile(0.5), merged.percentile(0.9)) == (30.0, 112.5)
    plain = Distribution([Values.of([30] * 7 + [45] * 3 + [120] * 2)])
    assert (plain.percentile(0.5), plain.percentile(0.9)) == (merged.percentile(0.5), merged.percentile(0.9))


def test_a_rocketchat_chat_whose_visitor_edited_a_message_counts_it_once():
    """The closed chat as Rocket.Chat pushes it (tests/connectors/rocketchat): the visitor's
    09:02:40 message carries editedAt and comes once; Ola answers it (and the file after it) at
    09:04:30."""
    from tests.test_connectors_rocketchat import closed_chat

    conversation = closed_chat()
    f = compute.figures(msgspec.convert(msgspec.to_builtins(conversation), StoredConversation))
    ola = _part(f, "Bn4Ws9Kx2Lp7Qr3Tv")
    assert f.visitor_messages == 4  # 08:59:41, 09:02:40 (edited), 09:02:51 (a file), 09:13:02
    assert f.first_reply_s == 91  # 08:59:41.219 → 09:01:12.554
    assert (ola.replies, ola.reply_total_s) == (2, 91 + 110)  # from 09:02:40.008, the edited one, to 09:04:30.112
