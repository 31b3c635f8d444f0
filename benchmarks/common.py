"""What every section shares: the plan (full or quick), the table, the labelled data,
percentiles and the few helpers that time things.

Only the standard library is imported here, so a child process measures what it
loads itself.
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import sys
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = ROOT / "knowledge"
DEV = ROOT / "eval" / "dev.jsonl"
DEV_DIALOGUES = ROOT / "eval" / "dev_dialogues.jsonl"
HELDOUT = ROOT / "tests" / "data" / "real" / "heldout.jsonl"
#: the labelled sets accuracy is reported on: the dev set and real questions held out
LABELLED = {"dev": DEV, "heldout": HELDOUT}


@dataclass(frozen=True)
class Plan:
    """How much of everything: the full run, or --quick (the smoke test, make bench-quick)."""

    quick: bool
    rounds: int                 # timed passes over the latency sample
    growth_factors: tuple[int, ...]
    growth_sample: int          # questions timed per knowledge size
    reloads: int                # timed reloads of each kind
    startup_runs: int
    adversarial_rounds: int
    requests: int               # Slack load: slash commands sent
    concurrency: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(quick=True, rounds=1, growth_factors=(10,), growth_sample=40, reloads=3,
                       startup_runs=3, adversarial_rounds=1, requests=60, concurrency=20)
        return cls(quick=False, rounds=3, growth_factors=(10, 100), growth_sample=200,
                   reloads=10, startup_runs=7, adversarial_rounds=5, requests=600,
                   concurrency=50)


@dataclass
class Row:
    section: str
    label: str
    value: str
    baseline: str = ""
    note: str = ""
    target: str = ""
    ok: bool | None = None

    @property
    def mark(self) -> str:
        return "" if self.ok is None else ("met" if self.ok else "MISSED")


@dataclass
class Report:
    """The rows printed, and the figures written as JSON."""

    plan: Plan
    tmp: Path
    rows: list[Row] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self, section: str, label: str, value: str, baseline: str = "", note: str = "",
            target: str = "", ok: bool | None = None) -> None:
        self.rows.append(Row(section, label, value, baseline, note, target, ok))

    def table(self) -> str:
        head = ("section", "figure", "careerbot", "baseline (same run)", "", "target", "")
        rows = [(r.section, r.label, r.value, r.baseline, r.note, r.target, r.mark)
                for r in self.rows]
        widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        section = None
        for row in rows:
            if section is not None and row[0] != section:
                lines.append("")
            section = row[0]
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)

    @property
    def targets(self) -> list[Row]:
        return [r for r in self.rows if r.ok is not None]


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not xs:
        return float("nan")
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "n/a"
    value = seconds * 1000
    return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms" if value < 100 else \
        f"{value:.0f} ms"


def rate(hits: int, total: int) -> str:
    return f"{100 * hits / total:.1f}%" if total else "n/a"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def timed(fn: Any, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def labelled(path: Path) -> list[tuple[str, str | None]]:
    """The single questions of a labelled file: (text, topic or None for a decline)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            if "turns" not in item:
                out.append((item["text"], item.get("topic")))
    return out


def dev_texts() -> list[str]:
    """Every question of the dev sets (single questions and dialogue turns), in order."""
    texts = [t for t, _ in labelled(DEV)]
    for line in DEV_DIALOGUES.read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts += [turn["text"] for turn in json.loads(line)["turns"]]
    return list(dict.fromkeys(texts))


def _typo(text: str) -> str | None:
    """The same question with one slip: two letters swapped (or one dropped) in a long word."""
    rng = random.Random(zlib.crc32(text.encode()))
    words = re.findall(r"[A-Za-z]{5,}", text)
    if not words:
        return None
    word = rng.choice(words)
    i = rng.randrange(1, len(word) - 2)
    slipped = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if slipped == word:
        slipped = word[:i] + word[i + 1:]
    return text.replace(word, slipped, 1)


def with_variants(texts: Iterable[str]) -> list[str]:
    """Each question, lowercased, without punctuation, and with a typo (distinct texts)."""
    out: list[str] = []
    for text in texts:
        out += [text, text.lower(), re.sub(r"[^\w\s]", "", text)]
        typo = _typo(text)
        if typo:
            out.append(typo)
    return list(dict.fromkeys(t for t in out if t.strip()))


def every(xs: Sequence[str], count: int) -> list[str]:
    """About `count` items spread evenly over `xs`."""
    if count >= len(xs):
        return list(xs)
    step = len(xs) / count
    return [xs[int(i * step)] for i in range(count)]


def examples(knowledge: Any) -> tuple[list[str], list[str | None]]:
    """All example questions of a knowledge base, and the topic each belongs to (None: an
    out-of-scope group's, which a matcher declines)."""
    texts: list[str] = []
    owners: list[str | None] = []
    for topic in knowledge.topics.values():
        texts += topic.examples
        owners += [topic.id] * len(topic.examples)
    for group in knowledge.out_of_scope:
        texts += group.examples
        owners += [None] * len(group.examples)
    return texts, owners


def fresh(engine: Any) -> None:
    """Forget the per-message caches (analyses, scored windows) of the engine's matcher."""
    matcher = engine._state.matcher
    for name in ("_analyses", "_window_scores"):
        cache = getattr(matcher, name, None)
        if cache is not None:
            cache.clear()


def peak_rss_kb() -> int:
    """Peak RSS of this process in KiB (VmHWM, reset on exec; ru_maxrss elsewhere)."""
    import contextlib
    import resource

    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss
