"""A process that stops the way a Granian worker does, with database work still under way.

Run as ``python -m tests.abandoned_work DATA_DIR``. Granian runs the lifespan shutdown and then
simply returns from the worker: the event loop is neither closed nor drained, so a task that was
still inside a query is abandoned where it stood. Here one task is inside a write transaction and
another connection was opened and never closed. The process must still exit (tests/test_daemon).
"""

from __future__ import annotations

import asyncio
import sys

from api.composition import build_runtime
from archive import db
from archive.tables import Tenant
from config.settings import load_settings


async def _inside_a_transaction(started: asyncio.Event) -> None:
    async with db.write_transaction():
        await Tenant.count()
        started.set()
        await asyncio.sleep(3600)


def main(data_dir: str) -> None:
    settings = load_settings({"PARLEY_DATA_DIR": data_dir})
    rt = build_runtime(settings, create_keyring=True)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(rt.start())
    started = asyncio.Event()
    abandoned = loop.create_task(_inside_a_transaction(started))
    loop.run_until_complete(started.wait())
    leaked = loop.run_until_complete(db.engine().get_connection())
    loop.run_until_complete(rt.stop())
    print("stopped", abandoned.done(), leaked is not None, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
