"""Connector bookkeeping survives kill -9: expired delivery rows move into the counters in the
transaction that deletes them, so a process killed in the middle loses and doubles nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from archive.connectors import store as connector_store
from archive.tables import ConnectorDelivery
from tests.test_connectors_http import ROCKETCHAT_TOKEN, connector, stats

PUSHES = 4
# Runs the roll-up and stops inside the transaction of the first connector it rolls up: prints
# that connector's id, then waits (the test kills it there).
ROLL_UP = """
import asyncio, sys
from datetime import datetime

async def main():
    from api.composition import build_runtime
    from archive.connectors import store
    from config.settings import load_settings

    rt = build_runtime(load_settings())
    await rt.start(migrate=False)

    def rolling_up(connector_id):
        print(connector_id, flush=True)
        sys.stdin.readline()

    await store.expire(datetime.fromisoformat(sys.argv[1]), rolling_up=rolling_up)

asyncio.run(main())
"""


async def test_a_roll_up_killed_inside_its_transaction_loses_and_doubles_no_count(client, tenant, runtime):
    now = runtime.clock.now()
    mine = [(await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN))["id"] for _ in range(3)]
    for connector_id in mine:
        await ConnectorDelivery.insert(*[
            ConnectorDelivery(key=f"{connector_id}|old-{i}", connector=connector_id, received_at=now - timedelta(days=10), outcome="archived")
            for i in range(PUSHES)
        ])
    child = subprocess.Popen(  # noqa: ASYNC220 - the child is killed, not awaited
        [sys.executable, "-c", ROLL_UP, now.isoformat()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=os.environ.copy(), cwd=Path(__file__).resolve().parents[1],  # noqa: ASYNC240
    )
    assert child.stdout is not None and child.stdin is not None
    killed_in = None
    while killed_in is None:  # other tests' old deliveries may come first: let those commit
        line = (await asyncio.to_thread(child.stdout.readline)).decode().strip()
        assert line, "the roll-up ended without reaching this test's connectors"
        if line in mine:
            killed_in = line
        else:
            child.stdin.write(b"\n")
            child.stdin.flush()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    for connector_id in mine:
        counted = await stats(client, tenant, {"id": connector_id})
        assert (counted["accepted"], counted["archived"]) == (PUSHES, PUSHES), connector_id
    assert await ConnectorDelivery.count().where(ConnectorDelivery.connector == killed_in) == PUSHES  # rolled back whole
    await connector_store.expire(now)
    for connector_id in mine:
        counted = await stats(client, tenant, {"id": connector_id})
        assert (counted["accepted"], counted["archived"]) == (PUSHES, PUSHES), connector_id
        assert await ConnectorDelivery.count().where(ConnectorDelivery.connector == connector_id) == 0
