"""Running the ``parley`` command as a user would: a separate process with the test environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

PARLEY = str(Path(sys.executable).with_name("parley"))


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    merged = {**os.environ, **(env or {})}
    return await asyncio.to_thread(
        subprocess.run, [PARLEY, *args], capture_output=True, text=True, env=merged, timeout=timeout
    )
