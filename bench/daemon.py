"""Stopping a server with open invitation streams: SIGTERM to exit, with 100 streams open, against
the same server stopped with none open (same run). Target: <= 5 s."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

from bench.harness import VENV_BIN, Row, Table, free_port

STREAMS = 100


def _start() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PARLEY_PORT": str(port), "PARLEY_DEMO": "true", "PARLEY_LOG_LEVEL": "warning",
           "PARLEY_DATA_DIR": tempfile.mkdtemp(prefix="parley-bench-daemon-")}
    proc = subprocess.Popen([str(VENV_BIN / "parley"), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("parley serve did not start")


def _open_streams(url: str, count: int) -> list[threading.Thread]:
    page = urllib.request.urlopen(f"{url}/demo").read().decode()
    site_key = re.search(r'data-site="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    opened = threading.Semaphore(0)

    def listen(i: int) -> None:
        request = urllib.request.Request(f"{url}/v1/invitations/stream?site_key={site_key}&visitor_id=b{i}", headers={"Origin": url})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                opened.release()
                while response.read(1024):
                    pass
        except OSError:
            opened.release()

    threads = [threading.Thread(target=listen, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for _ in range(count):
        opened.acquire(timeout=30)
    return threads


def _stop_seconds(streams: int) -> float:
    proc, url = _start()
    try:
        _open_streams(url, streams) if streams else None
        time.sleep(0.5)  # let the server settle into serving the streams before the signal
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        return time.perf_counter() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def run(table: Table) -> None:
    idle = _stop_seconds(0)
    busy = _stop_seconds(STREAMS)
    table.add(Row(f"shutdown (SIGTERM to exit) with {STREAMS} open invitation streams", busy, "s", idle, target="<= 5 s",
                  passed=busy <= 5.0, note="baseline: the same server with no stream open"))



