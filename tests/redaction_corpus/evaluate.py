"""Scores redaction on a corpus in the shape build.py writes, per kind and per language.

``python -m tests.redaction_corpus.evaluate [corpus.jsonl ...]`` prints one table per corpus (by
default the development corpus, the independent held-out corpus and its probes; any corpus of the
same shape is scored the same way) and lists every leak and every altered business number.

Scoring, as issue 11 defines it: a sensitive value leaks when its letters and digits survive, in
order and with everything else removed, in the redacted conversation reduced the same way (so a
card's kept first six and last four digits are no leak, while a phone number with only its
country code masked is). A business number is altered when it no longer appears verbatim.
The corpus is redacted with every national-id detector switched on, the strictest setting for
false positives, and the item's language as phone region hint.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archive.redaction import ChatLine, RedactionOptions, redact_conversation
from archive.redaction.options import NATIONAL_IDS
from archive.redaction.text import fold

CORPUS = Path(__file__).with_name("corpus.jsonl")
HELDOUT = Path(__file__).parent / "heldout" / "redaction_heldout.jsonl"
PROBES = Path(__file__).parent / "heldout" / "probes.jsonl"
OPTIONS = RedactionOptions(national_ids=list(NATIONAL_IDS))  # type: ignore[arg-type]
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def load(path: Path = CORPUS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def reduce(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch.isalnum()).upper()


def redact_item(item: dict[str, Any], options: RedactionOptions = OPTIONS) -> list[str]:
    if "messages" in item:
        lines = [ChatLine(m.get("author", "visitor"), datetime.fromisoformat(m["at"]), m["text"]) for m in item["messages"]]
    else:
        lines = [ChatLine("visitor", _EPOCH, item["text"])]
    return redact_conversation(lines, options, item.get("language")).texts


@dataclass
class Tally:
    sensitive: int = 0
    leaked: int = 0
    business: int = 0
    altered: int = 0

    @property
    def recall(self) -> float:
        return 1 - self.leaked / self.sensitive if self.sensitive else 1.0

    @property
    def altered_rate(self) -> float:
        return self.altered / self.business if self.business else 0.0


@dataclass
class Report:
    total: Tally = field(default_factory=Tally)
    by_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_language: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_category: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))  # business numbers, if labelled
    leaks: list[str] = field(default_factory=list)
    alterations: list[str] = field(default_factory=list)


def evaluate(items: list[dict[str, Any]], options: RedactionOptions = OPTIONS) -> Report:
    report = Report()
    for item in items:
        output = "\n".join(redact_item(item, options))
        reduced = reduce(output)
        language = item.get("language") or "?"
        for expected in item.get("expect", []):
            tallies = (report.total, report.by_kind[expected["kind"]], report.by_language[language])
            leaked = reduce(expected["value"]) in reduced
            for tally in tallies:
                tally.sensitive += 1
                tally.leaked += leaked
            if leaked:
                report.leaks.append(f"{item['id']} {expected['kind']}: {output!r}")
        categories = item.get("keep_category") or [None] * len(item.get("keep", []))
        for value, category in zip(item.get("keep", []), categories, strict=True):
            altered = value not in output
            tallies = (report.total, report.by_kind["business"], report.by_language[language])
            if category:
                tallies += (report.by_category[category],)
            for tally in tallies:
                tally.business += 1
                tally.altered += altered
            if altered:
                report.alterations.append(f"{item['id']} {value!r}: {output!r}")
    return report


def render(report: Report) -> str:
    def row(name: str, t: Tally) -> str:
        sensitive = f"{t.sensitive:>5} {t.leaked:>5} {t.recall:>7.3f}" if t.sensitive else f"{'':>5} {'':>5} {'':>7}"
        business = f"{t.business:>5} {t.altered:>5} {t.altered_rate:>7.1%}" if t.business else f"{'':>5} {'':>5} {'':>7}"
        return f"{name:<18} {sensitive}   {business}"

    lines = [f"{'':<18} {'items':>5} {'leaks':>5} {'recall':>7}   {'keep':>5} {'alter':>5} {'altered':>7}"]
    lines += [row(kind, report.by_kind[kind]) for kind in sorted(report.by_kind)]
    lines.append("-" * len(lines[0]))
    lines += [row(f"lang {lang}", report.by_language[lang]) for lang in sorted(report.by_language)]
    lines.append("-" * len(lines[0]))
    if report.by_category:
        lines += [row(f"keep {category}", report.by_category[category]) for category in sorted(report.by_category)]
        lines.append("-" * len(lines[0]))
    lines.append(row("all", report.total))
    return "\n".join(lines)


def main(paths: list[str]) -> int:
    for path in [Path(p) for p in paths] or [CORPUS, HELDOUT, PROBES]:
        report = evaluate(load(path))
        print(f"\n{path}\n{render(report)}")
        for line in report.leaks:
            print("LEAK   ", line)
        for line in report.alterations:
            print("ALTERED", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
