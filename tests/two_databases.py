"""One process, two data directories one after the other (the bench gives its search part a
directory of its own): ``python -m tests.two_databases DIR1 DIR2``. Each runtime migrates its own
database; prints the tables of the second."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from api.composition import build_runtime
from config.settings import load_settings


async def main(first: str, second: str) -> None:
    for data_dir in (first, second):
        rt = build_runtime(load_settings({"PARLEY_DATA_DIR": data_dir}), create_keyring=True)
        await rt.start()
        await rt.stop()
    tables = sqlite3.connect(Path(second) / "parley.sqlite3").execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    print(sorted(t[0] for t in tables))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
