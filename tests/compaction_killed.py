"""A compaction killed mid-way, the way ``kill -9`` would: ``python -m tests.compaction_killed
INDEX_FILE WRITES`` compacts an existing index file and SIGKILLs itself at its WRITES-th write to
the file system (a WAL frame of the merged segments, most of them written at commit) — inside
FTS5's optimize or its commit (tests/test_search_index.py). ``WRITES`` 0: count the writes a
whole compaction makes instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import apsw

from archive.search.sqlite_fts import SqliteFtsBackend


class _File(apsw.VFSFile):  # type: ignore[misc]  # apsw's VFS classes are untyped
    def __init__(self, vfs: "_KillingVFS", name: Any, flags: list[int]) -> None:
        super().__init__("", name, flags)
        self.vfs = vfs

    def xWrite(self, data: bytes, offset: int) -> None:
        self.vfs.writes += 1
        if self.vfs.writes == self.vfs.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        super().xWrite(data, offset)


class _KillingVFS(apsw.VFS):  # type: ignore[misc]
    def __init__(self, kill_at: int) -> None:
        self.kill_at, self.writes = kill_at, 0
        super().__init__("killing", "")

    def xOpen(self, name: Any, flags: list[int]) -> _File:
        return _File(self, name, flags)


def main(path: str, kill_at: int) -> None:
    vfs = _KillingVFS(kill_at)
    plain = apsw.Connection
    apsw.Connection = lambda filename, **kw: plain(filename, vfs="killing", **kw)  # the backend opens through it
    asyncio.run(SqliteFtsBackend(Path(path)).compact())
    print(f"compaction finished after {vfs.writes} writes", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
