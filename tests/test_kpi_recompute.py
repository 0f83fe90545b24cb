"""``parley kpi recompute``: figures written by an older version, or never written (conversations
archived before reports existed), are brought in line with what this version computes — batch
by batch, each whole, resumable after a kill -9, and ledgered."""
# ruff: noqa: F811  (the report fixtures are imported from tests.kpi_support)

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import msgspec
import pytest

from archive.db import json_column
from archive.metrics import recompute
from archive.metrics.tables import ConversationMetrics, MetricsCell
from archive.tables import Conversation, LedgerEntry
from tests.factories import conversation
from tests.kpi_support import client, oslo, report, runtime  # noqa: F401  (fixtures)
from tests.servers import PARLEY, Deployment


async def _id_of(tenant, external_id: str):
    row = await Conversation.select(Conversation.id).where(
        (Conversation.tenant == tenant.id) & (Conversation.external_id == external_id)).first()
    return row["id"]


async def test_figures_an_older_version_wrote_or_never_wrote_are_computed_again(client, oslo, runtime):
    true_figures = await report(client, oslo, group_by="agent")
    c1, c3 = await _id_of(oslo, "c1"), await _id_of(oslo, "c3")
    # What an older version left: c1's first reply and CSAT computed differently, and c3 archived
    # before its figures were kept at all.
    await ConversationMetrics.update({ConversationMetrics.first_reply_s: 9999, ConversationMetrics.csat: None}).where(
        ConversationMetrics.conversation == c1)
    await ConversationMetrics.delete().where(ConversationMetrics.conversation == c3)
    await MetricsCell.delete(force=True)  # as if those figures had been reported from the start
    assert await report(client, oslo, group_by="agent") != true_figures

    done = await recompute.recompute(runtime, oslo.id, "cli:ops", batch=3)

    assert (done.conversations, done.changed, done.unreadable) == (7, 2, 0)
    assert await report(client, oslo, group_by="agent") == true_figures  # cached cells included
    [entry] = await LedgerEntry.select(LedgerEntry.actor, LedgerEntry.details).where(
        (LedgerEntry.tenant == oslo.id) & (LedgerEntry.action == recompute.ACTION))
    assert entry["actor"] == "cli:ops"
    assert json_column(entry["details"]) == {"conversations": 7, "changed": 2, "unreadable": 0}


async def test_a_second_recompute_changes_nothing(client, oslo, runtime):
    await recompute.recompute(runtime, oslo.id, "cli:ops")
    before = await report(client, oslo, group_by="day")
    again = await recompute.recompute(runtime, oslo.id, "cli:ops")
    assert (again.conversations, again.changed) == (7, 0)
    assert await report(client, oslo, group_by="day") == before


async def test_a_conversation_that_cannot_be_decrypted_keeps_its_figures_and_is_counted(client, oslo, runtime):
    c2 = await _id_of(oslo, "c2")
    rows_before = await ConversationMetrics.count().where(ConversationMetrics.conversation == c2)
    await Conversation.update({Conversation.ciphertext: b"\x00" * 64}).where(Conversation.id == c2)

    done = await recompute.recompute(runtime, oslo.id, "cli:ops")

    assert (done.conversations, done.unreadable) == (6, 1)
    assert await ConversationMetrics.count().where(ConversationMetrics.conversation == c2) == rows_before


# --- kill -9 ------------------------------------------------------------------------------------

CONVERSATIONS = 120


@pytest.fixture
async def deployment(tmp_path):
    deployed = Deployment(tmp_path / "deployment", scheduler=False)
    await deployed.create()
    try:
        yield deployed
    finally:
        await deployed.drop()


async def test_a_recompute_killed_with_kill_9_leaves_whole_batches_and_the_next_run_finishes(deployment):
    keys = await deployment.tenant("acme")
    await deployment.start()
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
        for start in range(0, CONVERSATIONS, 40):
            batch = {"conversations": [conversation(f"k-{i}", "hei, hvor er pakken min?", "den kommer i morgen") for i in range(start, start + 40)]}
            created = await http.post("/v1/transcripts", json=batch, headers={"Authorization": f"Bearer {keys['ingest']}"})
            assert created.status_code == 201, created.text
    deployment.kill()
    # An archive from before reports existed: no figures at all.
    await deployment.sql("DELETE FROM conversation_metrics")

    command = [PARLEY, "kpi", "recompute", "--tenant", "acme", "--batch-size", "5"]
    process = await asyncio.create_subprocess_exec(
        *command, env=deployment.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    assert process.stderr is not None
    first = (await process.stderr.readline()).decode()  # a batch has committed
    os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
    assert "recomputed 5 conversations" in first, first
    [(with_figures,)] = await deployment.sql("SELECT COUNT(DISTINCT conversation) FROM conversation_metrics")
    assert 5 <= with_figures < CONVERSATIONS and with_figures % 5 == 0  # whole batches only

    finished = await deployment.cli("kpi", "recompute", "--tenant", "acme", "--json")

    assert finished.returncode == 0, finished.stderr
    assert msgspec.json.decode(finished.stdout)["acme"] == {"conversations": CONVERSATIONS, "changed": CONVERSATIONS - with_figures, "unreadable": 0}
    assert await deployment.sql("SELECT COUNT(DISTINCT conversation) FROM conversation_metrics") == [(CONVERSATIONS,)]
    verified = await deployment.cli("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
