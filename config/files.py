"""Files Parley writes are private to its user: data directory 0700, files 0600.

The database, the blind index, sealed exports and attachment files hold nothing in clear, but
they are still the archive: another local user should not be able to copy it. A restrictive
umask set once at start-up, before anything is created, covers every writer (SQLite and its WAL,
the index, exports, signals) without each remembering a mode. Modes loosened later by hand are
not changed back — an operator may have reasons — but each start-up warns about them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

PRIVATE_UMASK = 0o077
# How many entries the start-up check looks at (a data directory with years of exports is large;
# the directory itself and the files at its top are what matter most and come first).
CHECK_LIMIT = 10_000


def restrict_umask() -> None:
    """New files 0600 and directories 0700 in this process, from here on."""
    os.umask(PRIVATE_UMASK)


def ensure_private_dir(path: Path) -> list[Path]:
    """Create ``path`` (0700) if needed; warn about, and return, what group or others can read."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    loose = loosened(path)
    if loose:
        log.warning(
            "data_files_not_private", count=len(loose), paths=[str(p) for p in loose[:10]],
            fix=f"chmod -R go-rwx {path}",
        )
    return loose


def loosened(root: Path) -> list[Path]:
    """``root`` and what is under it whose mode lets group or others in, breadth first."""
    found: list[Path] = []
    queue, seen = [root], 0
    while queue and seen < CHECK_LIMIT:
        current = queue.pop(0)
        seen += 1
        try:
            mode = current.lstat().st_mode
        except OSError:
            continue  # removed while we looked
        if stat.S_ISLNK(mode):
            continue
        if mode & 0o077:
            found.append(current)
        if stat.S_ISDIR(mode):
            try:
                queue.extend(sorted(current.iterdir()))
            except OSError:
                continue
    return found
