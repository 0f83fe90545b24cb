"""``make bench``: every benchmark in one run, printed as a table with same-run baselines.

Each run uses a fresh data directory (SQLite, the embedded default) unless PARLEY_DATABASE_URL
points elsewhere. Sizes can be reduced for a quick look: ``python -m bench --quick``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--only", help="comma list: http,daemon,ingest,connectors,redaction,rescan,search,console,retention,proactive,supervision,kpi,replicas")
    parser.add_argument("--search-conversations", type=int, help="corpus size for the search and console benches (default 50,000)")
    parser.add_argument("--out", default="bench/results/latest.md", help="also write the table here")
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="parley-bench-")
    os.environ.setdefault("PARLEY_DATA_DIR", data)
    os.environ.setdefault("PICCOLO_CONF", "config.piccolo_conf")
    os.environ["PARLEY_LOG_LEVEL"] = os.environ.get("PARLEY_LOG_LEVEL", "warning")

    from bench import connectors, console, daemon, http_auth, ingest, kpi, proactive, redaction, replicas, rescan, retention, search, supervision
    from bench.harness import Table

    only = set((args.only or "http,daemon,ingest,connectors,redaction,rescan,search,console,retention,proactive,supervision,kpi,replicas").split(","))
    table = Table()
    print(f"bench data dir: {data}", flush=True)
    if "http" in only:
        http_auth.run(table, seconds=3 if args.quick else 8)
    if "daemon" in only:
        daemon.run(table)
    if "ingest" in only:
        ingest.run(table, conversations=1000 if args.quick else 5000)
    if "connectors" in only:
        connectors.run(table, conversations=300 if args.quick else 1500)
    if "redaction" in only:
        redaction.run(table, messages=5000 if args.quick else 20_000)
    if "rescan" in only:
        rescan.run(table, conversations=1000 if args.quick else 5000)
    if "search" in only:
        search.run(table, conversations=args.search_conversations or (5000 if args.quick else 50_000))
    if "console" in only:
        console.run(table, conversations=args.search_conversations or (5000 if args.quick else 50_000))
    if "retention" in only:
        retention.run(table, conversations=5000 if args.quick else 100_000)
    if "proactive" in only:
        proactive.run(table, quick=args.quick)
    if "supervision" in only:
        supervision.run(table, conversations=1000 if args.quick else 5000, backfill_conversations=10_000 if args.quick else 100_000)
    if "kpi" in only:
        kpi.run(table, conversations=100_000 if args.quick else 1_000_000)
    if "replicas" in only:
        replicas.run(table, quick=args.quick)
    rendered = table.render()
    print()
    print(rendered)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(rendered + "\n", encoding="utf-8")
    return 0 if all(r.passed is not False for r in table.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
