"""`careerbot bench`: how fast careerbot answers, how its cost grows, how it holds under load.

Six sections, each timing printed beside a baseline measured in the same run
(these machines are noisy), each target of issue 5 beside its figure:

1. answer latency of `Engine.answer` against the naive rapidfuzz matcher;
2. growth: generated knowledge bases 10x and 100x the shipped one;
3. reload: validate-and-swap time, and answers served while reloading;
4. start-up of `careerbot ask` against importing its two libraries;
5. peak memory of the console bot on the shipped and the largest base;
6. Slack HTTP mode under load: signed slash commands from a second process.

Figures are printed and written as JSON, never asserted. Child processes (the
Slack app, the load generator, the memory probe) run `python -m bot.bench
_<role> <json>`. Only loopback, ephemeral ports and bounded loops are used.

This module imports only the standard library at the top, so the child roles
measure what they load themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["generate_knowledge", "run_bench"]

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT / "eval"
FAKE_SLACK = ROOT / "tests" / "fakes" / "slack.py"
SECTIONS = {1: "latency", 2: "growth", 3: "reload", 4: "startup", 5: "memory", 6: "slack"}
# Modules the console CLI must not load (issue 5, section 4).
PLATFORM_MODULES = ("slack_bolt", "slack_sdk", "discord", "aiohttp", "bot.adapters.slack",
                    "bot.adapters.discord")
ASK = "typical MLE compensation"
SIGNING_SECRET = "bench-signing-secret"


@dataclass(frozen=True)
class Plan:
    """How much of everything: the full run, or --quick (for a test)."""

    quick: bool
    latency_every: int          # section 1 uses every n-th question-or-variant
    latency_rounds: int         # timed passes after the first (cold) one
    growth_factors: tuple[int, ...]
    growth_sample: int          # questions timed per knowledge size
    reloads: int                # timed reloads of the shipped base
    large_reloads: int
    reload_loop: int            # reloads while threads answer
    reload_threads: int
    startup_runs: int
    requests: int               # section 6
    concurrency: int
    time_limit: float           # section 6: the load generator stops sending after this

    @classmethod
    def make(cls, quick: bool, requests: int | None = None) -> Plan:
        if quick:
            return cls(quick=True, latency_every=4, latency_rounds=1, growth_factors=(10,),
                       growth_sample=30, reloads=3, large_reloads=1, reload_loop=5,
                       reload_threads=2, startup_runs=3,
                       requests=max(1, min(requests or 100, 10_000)), concurrency=50,
                       time_limit=30.0)
        return cls(quick=False, latency_every=1, latency_rounds=3, growth_factors=(10, 100),
                   growth_sample=120, reloads=10, large_reloads=1, reload_loop=20,
                   reload_threads=3, startup_runs=5,
                   requests=max(1, min(requests or 1000, 10_000)), concurrency=50,
                   time_limit=120.0)

    @property
    def largest(self) -> int:
        return self.growth_factors[-1]


@dataclass
class Row:
    section: int
    label: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None

    @property
    def mark(self) -> str:
        return "" if self.ok is None else ("pass" if self.ok else "MISS")


@dataclass
class Bench:
    plan: Plan
    shipped: Path
    eval_files: list[Path]
    tmp: Path
    #: what `careerbot ask` is given: nothing for the shipped base, else --knowledge DIR
    knowledge_args: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _bases: dict[int, Path] = field(default_factory=dict)

    def row(self, section: int, label: str, value: str, baseline: str = "", ratio: str = "",
            target: str = "", ok: bool | None = None, figure: float | None = None) -> None:
        self.rows.append(Row(section, label, value, baseline, ratio, target, ok))
        if target:
            self.targets.append({"section": section, "figure": label, "target": target,
                                 "value": figure, "pass": ok})

    def base(self, factor: int) -> Path:
        """The shipped knowledge directory (1), or a generated one `factor` times its size."""
        if factor == 1:
            return self.shipped
        if factor not in self._bases:
            _say(f"generating a knowledge base {factor}x the shipped one")
            self._bases[factor] = generate_knowledge(
                self.shipped, self.tmp / f"knowledge_{factor}x", factor,
                asked=dev_texts(self.eval_files))
        return self._bases[factor]


# ---------------------------------------------------------------------- helpers


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _pct(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not xs:
        return float("nan")
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _ms(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "n/a"
    ms = seconds * 1000
    return f"{ms:.3f} ms" if ms < 1 else f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def _x(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _fmt_x(r: float) -> str:
    return f"{r:.2f}x"


def _r(value: float, digits: int = 6) -> float:
    return round(value, digits)


def dev_texts(files: Iterable[Path]) -> list[str]:
    """Every question of the labelled sets (single questions and dialogue turns), in order."""
    texts: list[str] = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if "turns" in item:
                texts += [t["text"] for t in item["turns"]]
            else:
                texts.append(item["text"])
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


def _examples(knowledge: Any) -> tuple[list[str], list[str | None]]:
    """All example questions of a knowledge base, and the topic each one belongs to."""
    texts: list[str] = []
    owners: list[str | None] = []
    for topic in knowledge.topics.values():
        texts += topic.examples
        owners += [topic.id] * len(topic.examples)
    for group in knowledge.out_of_scope:
        texts += group.examples
        owners += [None] * len(group.examples)
    return texts, owners


def _naive(examples: list[str]) -> Callable[[str], Any]:
    from rapidfuzz import fuzz, process, utils

    def match(question: str) -> Any:
        return process.extractOne(question, examples, scorer=fuzz.WRatio,
                                  processor=utils.default_process)
    return match


def _time_pass(questions: Sequence[str], engine: Any, naive: Callable[[str], Any] | None
               ) -> tuple[list[float], list[float]]:
    """One pass: each question through the engine then (if given) the naive matcher."""
    from bot.core import Query

    ours: list[float] = []
    theirs: list[float] = []
    clock = time.perf_counter
    for q in questions:
        query = Query(text=q)
        t0 = clock()
        engine.answer(query)
        t1 = clock()
        ours.append(t1 - t0)
        if naive is not None:
            t0 = clock()
            naive(q)
            theirs.append(clock() - t0)
    return ours, theirs


def _every(xs: Sequence[str], count: int) -> list[str]:
    """About `count` items spread evenly over `xs`."""
    if count >= len(xs):
        return list(xs)
    step = len(xs) / count
    return [xs[int(i * step)] for i in range(count)]


def _child(role: str, config: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "bot.bench", role, json.dumps(config)]


def _careerbot() -> list[str]:
    script = Path(sys.executable).with_name("careerbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


# ---------------------------------------------------------------------- knowledge generator

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "t", "v", "z", "br", "dr", "gr",
           "kl", "pr", "tr", "vl", "zh", "sk", "th", "qu")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ei")
_CODAS = ("", "", "n", "r", "l", "k", "m", "x", "nd", "rt")
# Example frames: stopwords and the topic's own made-up words only, so the synthetic
# topics share nothing with the real ones but the grammar of a question.
_FRAMES = (
    "what is {x} {y}",
    "how does {x} {y} {z}",
    "tell me about {x} {y}",
    "explain {x} {z} to me",
    "why {x} {y}",
    "can you describe the {x} of {y}",
    "which {x} for {y} {z}",
    "{x} {y} vs {z}",
    "give me the {x} {y} of {z} please",
    "what about {x} {y} in {z}",
    "how much {x} is there in {y}",
    "where do i get {x} {y}",
    "is {x} more {y} than {z}",
    "quick question: what is the {x} {y} like",
    "i am curious about {x} and {y}. what is the {z} of it, and which one should i get?",
    "{x} {y}?",
    "when would you {x} the {y}",
    "who does {x} {z} for {y}",
)


def _real_words(shipped: Path, asked: Iterable[str] = ()) -> list[str]:
    """Every word of the shipped base and of the questions asked of it."""
    words: set[str] = set()
    for text in (*(p.read_text(encoding="utf-8") for p in shipped.rglob("*.yaml")), *asked):
        words.update(re.findall(r"[a-z]+", text.lower()))
    return sorted(words)


def _made_up_words(count: int, avoid: list[str], seed: int) -> list[str]:
    """`count` distinct pronounceable non-words, each 3+ edits from every word in `avoid`."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    rng = random.Random(seed)
    avoid_set = set(avoid)
    out: dict[str, None] = {}
    while len(out) < count:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS)
                       for _ in range(rng.randint(2, 3))) + rng.choice(_CODAS)
        if (len(word) < 6 or word in out or word in avoid_set or word.endswith("s")
                or process.extractOne(word, avoid, scorer=OSA.distance, score_cutoff=2)):
            continue
        out[word] = None
    return list(out)


def generate_knowledge(shipped: Path, target: Path, factor: int, seed: int = 5,
                       asked: Iterable[str] = ()) -> Path:
    """A copy of `shipped` with synthetic topics added until it has `factor` times its topics.

    Each synthetic topic has its own made-up vocabulary (3+ edits from every word of the
    shipped base and of the questions `asked`: a made-up word one slip from "brazil"
    would be a typo target no real base has), as many example questions as a
    shipped topic has on average (so the examples grow with the topics), the shipped
    topics' schema (id, title, summary, sources, answers, examples, keywords, follow_ups)
    and passes `careerbot validate`.
    """
    import itertools

    import yaml

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(shipped, target)
    shipped_topics = sorted((shipped / "topics").glob("*.yaml"))
    per_topic = max(8, round(statistics.mean(
        len((yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("examples") or [])
        for p in shipped_topics)))
    extra = len(shipped_topics) * (factor - 1)
    sources = yaml.safe_load((shipped / "sources.yaml").read_text(encoding="utf-8"))
    source = sorted(sources)[0]
    words = _made_up_words(extra * 6, _real_words(shipped, asked), seed)
    ids = [f"synthetic_{i:05d}" for i in range(extra)]
    for i, topic_id in enumerate(ids):
        own = words[i * 6:(i + 1) * 6]
        n1, n2, a1, a2, a3, a4 = own
        picks = list(itertools.permutations(own, 3))
        random.Random(seed + i).shuffle(picks)
        examples: dict[str, None] = {}
        for k in range(len(picks) * len(_FRAMES)):
            if len(examples) >= per_topic:
                break
            x, y, z = picks[k % len(picks)]
            examples[_FRAMES[k % len(_FRAMES)].format(x=x, y=y, z=z)] = None
        topic = {
            "id": topic_id,
            "title": f"{n1.capitalize()} {n2}",
            "summary": f"What {n1} {n2} is and how its {a1} works.",
            "sources": [source],
            "answers": {"both": (f"{n1.capitalize()} {n2} is a synthetic benchmark topic. "
                                 f"It covers {a1}, {a2}, {a3} and {a4}.")},
            "examples": list(examples),
            "keywords": [*own, f"{n1} {a1}", f"{n2} {a2}"],
            "follow_ups": [ids[(i + 1) % len(ids)]] if len(ids) > 1 else [],
        }
        (target / "topics" / f"{topic_id}.yaml").write_text(
            yaml.safe_dump(topic, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


# ---------------------------------------------------------------------- 1. latency


def adversarial_messages(limit: int, seed: int) -> dict[str, str]:
    """Legal messages (under the length cap) built to cost the matcher most: many
    sentences and questions to score, long runs of words every topic uses, words that
    send every token through typo correction."""
    rng = random.Random(seed)
    ours = ("data scientist ml engineer salary tools python switch career what how which "
            "skills education deploy models").split()

    def made_up() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 9)))

    return {kind: text[:limit] for kind, text in {
        "one question, 500 times": "ds? " * 500,
        "80 questions": " ".join(f"what do {rng.choice(ours)} {rng.choice(ours)} earn?"
                                 for _ in range(80)),
        "200 two-word sentences": ". ".join(f"{rng.choice(ours)} {rng.choice(ours)}"
                                            for _ in range(200)),
        "400 topic words, one sentence": " ".join(rng.choice(ours) for _ in range(400)),
        "250 made-up words": " ".join(made_up() for _ in range(250)),
        "one letter": "z" * limit,
        "punctuation": "?!." * limit,
    }.items()}


def _adversarial(engine: Any, limit: int, rounds: int) -> dict[str, float]:
    """Each kind's slowest answer over `rounds` fresh messages, with the matcher's
    per-message caches emptied first: the cost of a message never seen before."""
    from bot.core import Query

    slowest: dict[str, float] = {}
    for seed in range(rounds):
        for kind, text in adversarial_messages(limit, seed).items():
            matcher = engine._state.matcher
            matcher._analyses.clear()
            matcher._window_scores.clear()
            t0 = time.perf_counter()
            engine.answer(Query(text=text))
            slowest[kind] = max(slowest.get(kind, 0.0), time.perf_counter() - t0)
    return slowest


def bench_latency(b: Bench) -> None:
    from bot.core import Engine, Query

    questions = with_variants(dev_texts(b.eval_files))[::b.plan.latency_every]
    engine = Engine(knowledge_dir=b.shipped)
    examples, owners = _examples(engine.knowledge)
    naive = _naive(examples)
    _say(f"1. latency: {len(questions)} questions and variants, "
         f"{1 + b.plan.latency_rounds} passes")
    cold_ours, cold_naive = _time_pass(questions, engine, naive)  # typo cache cold
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(b.plan.latency_rounds):
        o, t = _time_pass(questions, engine, naive)
        ours += o
        theirs += t

    # What the extra work buys: topic right on the dev set's single questions.
    single = [json.loads(line) for f in b.eval_files
              for line in f.read_text(encoding="utf-8").splitlines()
              if line.strip() and "turns" not in json.loads(line)]
    naive_right = engine_right = 0
    for item in single:
        hit = naive(item["text"])
        naive_right += (owners[hit[2]] if hit else None) == item.get("topic")
        reply = engine.answer(Query(text=item["text"]))
        got = reply.topic if reply.kind in ("answer", "smalltalk") else None
        engine_right += got == item.get("topic")

    med, p99 = _median(ours), _pct(ours, 99)
    nmed, np99 = _median(theirs), _pct(theirs, 99)
    ratio = _x(med, nmed)
    b.results["latency"] = {
        "questions": len(questions), "samples": len(ours), "examples": len(examples),
        "engine": {"median_ms": _r(med * 1000), "p99_ms": _r(p99 * 1000),
                   "cold_median_ms": _r(_median(cold_ours) * 1000),
                   "cold_p99_ms": _r(_pct(cold_ours, 99) * 1000)},
        "naive": {"median_ms": _r(nmed * 1000), "p99_ms": _r(np99 * 1000),
                  "cold_median_ms": _r(_median(cold_naive) * 1000)},
        "ratio_median": _r(ratio, 3), "ratio_p99": _r(_x(p99, np99), 3),
        "topic_right": {"engine": engine_right / len(single) if single else None,
                        "naive": naive_right / len(single) if single else None,
                        "questions": len(single)},
    }
    b.row(1, f"Engine.answer median ({len(ours)} answers)", _ms(med), f"naive {_ms(nmed)}",
          _fmt_x(ratio), "<= 3x naive", ratio <= 3, figure=ratio)
    b.row(1, "Engine.answer p99", _ms(p99), f"naive {_ms(np99)}", _fmt_x(_x(p99, np99)))
    b.row(1, "first pass median (typo cache cold)", _ms(_median(cold_ours)),
          f"naive {_ms(_median(cold_naive))}", _fmt_x(_x(_median(cold_ours),
                                                          _median(cold_naive))))
    worst = _adversarial(engine, engine.settings.max_message_chars,
                         2 if b.plan.quick else 5)
    kind = max(worst, key=worst.__getitem__)
    b.results["latency"]["adversarial_ms"] = {k: _r(v * 1000) for k, v in worst.items()}
    b.row(1, f"worst message under the length cap ({len(worst)} adversarial kinds)",
          _ms(worst[kind]), f"({kind})", "", "<= 20 ms", worst[kind] <= 0.020,
          figure=_r(worst[kind] * 1000))
    if single:
        b.row(1, f"topic right, dev single questions ({len(single)})",
              f"{100 * engine_right / len(single):.1f}%",
              f"naive {100 * naive_right / len(single):.1f}%")


# ---------------------------------------------------------------------- 2. growth


def bench_growth(b: Bench) -> None:
    from bot.core import Engine, load_knowledge
    from bot.evaluate import evaluate_files

    sample = _every(with_variants(dev_texts(b.eval_files)), b.plan.growth_sample)
    sizes: dict[str, Any] = {}
    for factor in (1, *b.plan.growth_factors):
        directory = b.base(factor)
        _say(f"2. growth: {factor}x: loading and building the matcher")
        t0 = time.perf_counter()
        knowledge = load_knowledge(directory)  # what `careerbot validate` runs
        t1 = time.perf_counter()
        engine = Engine(knowledge)
        t2 = time.perf_counter()
        examples, _ = _examples(knowledge)
        naive = _naive(examples)
        _say(f"2. growth: {factor}x: timing {len(sample)} questions")
        cold, _ = _time_pass(sample, engine, None)
        ours, theirs = _time_pass(sample, engine, naive)
        _say(f"2. growth: {factor}x: accuracy on the dev sets")
        # the timed passes left no follow-up context (no conversation): the same engine serves
        accuracy = evaluate_files(engine, b.eval_files).as_dict()
        sizes[f"{factor}x"] = {
            "factor": factor, "valid": True, "topics": len(knowledge.topics),
            "examples": len(examples), "load_s": _r(t1 - t0), "matcher_s": _r(t2 - t1),
            "engine_median_ms": _r(_median(ours) * 1000),
            "engine_p99_ms": _r(_pct(ours, 99) * 1000),
            "engine_cold_median_ms": _r(_median(cold) * 1000),
            "naive_median_ms": _r(_median(theirs) * 1000),
            "naive_p99_ms": _r(_pct(theirs, 99) * 1000),
            "in_scope": accuracy["in_scope"], "out_of_scope": accuracy["out_of_scope"],
            "followups": accuracy["followups"],
        }
    b.results["growth"] = {"sample": len(sample), "sizes": sizes}
    base = sizes["1x"]
    for key, size in sizes.items():
        growth = _x(size["engine_median_ms"], base["engine_median_ms"])
        naive_growth = _x(size["naive_median_ms"], base["naive_median_ms"])
        size["growth_median"] = _r(growth, 3)
        size["naive_growth_median"] = _r(naive_growth, 3)
        label = f"{key}: {size['topics']} topics, {size['examples']} examples"
        target, ok = ("", None)
        if size["factor"] == 100:
            target, ok = "<= 10x the 1x median", growth <= 10
        b.row(2, f"{label}, median", _ms(size["engine_median_ms"] / 1000),
              f"naive {_ms(size['naive_median_ms'] / 1000)}",
              f"{growth:.1f}x vs 1x (naive {naive_growth:.1f}x)", target, ok, figure=growth)
        b.row(2, f"{key}: p99 / first-pass median", _ms(size["engine_p99_ms"] / 1000),
              f"naive p99 {_ms(size['naive_p99_ms'] / 1000)}",
              f"first pass {_ms(size['engine_cold_median_ms'] / 1000)}")
        b.row(2, f"{key}: load + validate, build matcher", f"{size['load_s']:.2f} s",
              f"matcher {size['matcher_s']:.2f} s")
        shown = " / ".join(f"{100 * size[k]:.1f}%" if size[k] is not None else "n/a"
                           for k in ("in_scope", "out_of_scope", "followups"))
        target, ok = ("", None)
        if size["factor"] > 1:
            drops = [k for k in ("in_scope", "out_of_scope", "followups")
                     if size[k] is not None and base[k] is not None and size[k] < base[k]]
            size["accuracy_drops"] = drops
            target, ok = "no drop vs 1x", not drops
        b.row(2, f"{key}: accuracy in scope / declines / follow-ups", shown,
              "" if size["factor"] == 1 else "1x: " + " / ".join(
                  f"{100 * base[k]:.1f}%" if base[k] is not None else "n/a"
                  for k in ("in_scope", "out_of_scope", "followups")),
              "", target, ok)


# ---------------------------------------------------------------------- 3. reload


def _parse_only(directory: Path) -> float:
    """The baseline: read and parse every YAML file of the directory (libyaml when there)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    t0 = time.perf_counter()
    for path in sorted(directory.rglob("*.yaml")):
        yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    return time.perf_counter() - t0


def _reload_times(engine: Any, times: int) -> tuple[list[float], int]:
    seconds: list[float] = []
    failed = 0
    for _ in range(times):
        t0 = time.perf_counter()
        report = engine.reload()
        seconds.append(time.perf_counter() - t0)
        failed += not report.ok
    return seconds, failed


def _reload_after_edits(b: Bench) -> list[float]:
    """An admin's edit, then a reload: one new example question in a topic file each time."""
    from bot.core import Engine

    copy = b.tmp / "knowledge_edited"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(b.shipped, copy)
    engine = Engine(knowledge_dir=copy)
    topic = sorted((copy / "topics").glob("*.yaml"))[0]
    seconds = []
    for i in range(b.plan.reloads):
        text = topic.read_text(encoding="utf-8")
        topic.write_text(text.replace("examples:\n", f"examples:\n  - benchmark edit number "
                                      f"{i} of this example question\n", 1), encoding="utf-8")
        t0 = time.perf_counter()
        report = engine.reload()
        seconds.append(time.perf_counter() - t0)
        if not report.ok:
            raise RuntimeError(f"the edited knowledge did not load: {report.summary()}")
    return seconds


def _reload_under_load(b: Bench) -> dict[str, Any]:
    from bot.core import Engine, Query

    engine = Engine(knowledge_dir=b.shipped)
    texts = dev_texts(b.eval_files)[:60]
    expected = {t: engine.answer(Query(text=t)).topic for t in texts}
    stop = threading.Event()
    lock = threading.Lock()
    tally = {"answers": 0, "errors": 0, "inconsistent": 0}
    worst: list[float] = [0.0]
    error_kinds: dict[str, int] = {}

    def answer_loop(offset: int) -> None:
        n = answers = errors = inconsistent = 0
        slowest = 0.0
        while not stop.is_set() and n < 1_000_000:
            text = texts[(offset + n) % len(texts)]
            n += 1
            t0 = time.perf_counter()
            try:
                reply = engine.answer(Query(text=text))
            except Exception as exc:  # noqa: BLE001 - counted, and the loop goes on
                errors += 1
                with lock:
                    error_kinds[type(exc).__name__] = error_kinds.get(type(exc).__name__, 0) + 1
                continue
            slowest = max(slowest, time.perf_counter() - t0)
            answers += 1
            inconsistent += reply.topic != expected[text]
        with lock:
            tally["answers"] += answers
            tally["errors"] += errors
            tally["inconsistent"] += inconsistent
            worst[0] = max(worst[0], slowest)

    threads = [threading.Thread(target=answer_loop, args=(i * 7,), daemon=True)
               for i in range(b.plan.reload_threads)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    seconds, failed = _reload_times(engine, b.plan.reload_loop)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.perf_counter() - started
    return {"threads": len(threads), "reloads": len(seconds), "reload_failures": failed,
            "reload_median_ms": _r(_median(seconds) * 1000), "seconds": _r(elapsed),
            "answers": tally["answers"], "errors": tally["errors"],
            "error_kinds": error_kinds, "inconsistent": tally["inconsistent"],
            "answers_per_s": _r(tally["answers"] / elapsed, 1),
            "slowest_answer_ms": _r(worst[0] * 1000),
            "stuck_threads": sum(t.is_alive() for t in threads)}


def bench_reload(b: Bench) -> None:
    from bot.core import Engine, load_knowledge
    from bot.core.matcher import Matcher

    _say(f"3. reload: the shipped base, {b.plan.reloads} times")
    engine = Engine(knowledge_dir=b.shipped)
    shipped, failed = _reload_times(engine, b.plan.reloads)
    parse = [_parse_only(b.shipped) for _ in range(b.plan.reloads)]
    load = []
    build = []
    for _ in range(b.plan.reloads):
        t0 = time.perf_counter()
        knowledge = load_knowledge(b.shipped)
        t1 = time.perf_counter()
        Matcher(knowledge, engine.settings)
        load.append(t1 - t0)
        build.append(time.perf_counter() - t1)
    large_dir = b.base(b.plan.largest)
    _say(f"3. reload: the {b.plan.largest}x base, {b.plan.large_reloads} times")
    large: list[float] = []
    large_failed = 0
    for _ in range(b.plan.large_reloads):  # from the shipped base to the large one
        swap = Engine(knowledge_dir=b.shipped)
        t0 = time.perf_counter()
        large_failed += not swap.reload(large_dir).ok
        large.append(time.perf_counter() - t0)
        del swap
    large_parse = _parse_only(large_dir)
    _say(f"3. reload: {b.plan.reload_loop} reloads while {b.plan.reload_threads} threads answer")
    _say(f"3. reload: after adding an example question, {b.plan.reloads} times")
    edited = _reload_after_edits(b)
    loop = _reload_under_load(b)
    med = _median(shipped)
    b.results["reload"] = {
        "shipped": {"reloads": len(shipped), "failures": failed, "median_ms": _r(med * 1000),
                    "max_ms": _r(max(shipped) * 1000),
                    "parse_only_median_ms": _r(_median(parse) * 1000),
                    "load_knowledge_median_ms": _r(_median(load) * 1000),
                    "matcher_median_ms": _r(_median(build) * 1000),
                    "after_an_edit_median_ms": _r(_median(edited) * 1000)},
        "large": {"factor": b.plan.largest, "reloads": len(large), "failures": large_failed,
                  "median_ms": _r(_median(large) * 1000),
                  "parse_only_ms": _r(large_parse * 1000)},
        "under_load": loop,
    }
    b.row(3, "reload, shipped base (median)", _ms(med), f"YAML parse only {_ms(_median(parse))}",
          _fmt_x(_x(med, _median(parse))), "< 100 ms", med < 0.1 and not failed, figure=med * 1000)
    b.row(3, "  of which load + validate / matcher", _ms(_median(load)),
          f"matcher {_ms(_median(build))}")
    b.row(3, "reload after adding an example question (median)", _ms(_median(edited)),
          f"YAML parse only {_ms(_median(parse))}", _fmt_x(_x(_median(edited), _median(parse))),
          "< 100 ms", _median(edited) < 0.1, figure=_median(edited) * 1000)
    b.row(3, f"reload, {b.plan.largest}x base (median)", _ms(_median(large)),
          f"YAML parse only {_ms(large_parse)}", _fmt_x(_x(_median(large), large_parse)), "", None)
    ok = (loop["errors"] == 0 and loop["reload_failures"] == 0 and loop["inconsistent"] == 0
          and loop["answers"] > 0 and not loop["stuck_threads"])
    b.row(3, f"answers during {loop['reloads']} reloads ({loop['threads']} threads)",
          f"{loop['answers']} answers, {loop['errors']} errors",
          f"{loop['inconsistent']} changed answers",
          f"slowest {_ms(loop['slowest_answer_ms'] / 1000)}", "0 errors", ok,
          figure=loop["errors"])


# ---------------------------------------------------------------------- 4. start-up

_IMPORTS_PROBE = """
import contextlib, io, json, sys
from bot.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

# Where `careerbot ask` spends its time, in one process: the imports it needs, building
# the engine (load, validate, matcher), and the answer itself.
_SPLIT_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import bot.cli, bot.core, bot.adapters.console
t1 = time.perf_counter()
engine = bot.core.Engine(knowledge_dir=sys.argv[1] or None)
t2 = time.perf_counter()
bot.adapters.console.render_text(engine.answer(bot.core.Query(text=sys.argv[2])))
t3 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "engine_s": t2 - t1, "answer_s": t3 - t2}))
"""


def _wall(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120, check=True)
    return time.perf_counter() - t0


def _importtime(args: list[str], cwd: Path, top: int = 8) -> list[dict[str, Any]]:
    """The slowest imports of a `careerbot` run (python -X importtime), by cumulative time."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c",
                          "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))",
                          *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    rows: list[dict[str, Any]] = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level imports (and their direct children)
            rows.append({"module": m.group(4), "self_ms": int(m.group(1)) / 1000,
                         "cumulative_ms": int(m.group(2)) / 1000, "depth": len(m.group(3)) // 2})
    return sorted(rows, key=lambda r: -r["cumulative_ms"])[:top]


def bench_startup(b: Bench) -> None:
    ask = [*_careerbot(), *b.knowledge_args, "ask", ASK]
    baseline = [sys.executable, "-c", "import yaml, rapidfuzz"]
    cwd = b.tmp  # no .env from the working directory
    _say(f"4. start-up: {b.plan.startup_runs} runs each")
    _wall(ask, cwd)  # warm the file cache for both
    _wall(baseline, cwd)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(b.plan.startup_runs):
        ours.append(_wall(ask, cwd))
        theirs.append(_wall(baseline, cwd))
    probe = subprocess.run([sys.executable, "-c", _IMPORTS_PROBE, *b.knowledge_args, "ask", ASK],
                           cwd=cwd, capture_output=True, text=True, timeout=120)
    modules = json.loads(probe.stdout.strip().splitlines()[-1])["modules"] if (
        probe.returncode == 0) else []
    imported = {name: any(m == name or m.startswith(name + ".") for m in modules)
                for name in PLATFORM_MODULES}
    slowest = _importtime([*b.knowledge_args, "ask", ASK], cwd)
    splits = []
    for _ in range(b.plan.startup_runs):
        out = subprocess.run([sys.executable, "-c", _SPLIT_PROBE, b.knowledge_args[-1]
                              if b.knowledge_args else "", ASK], cwd=cwd, capture_output=True,
                             text=True, timeout=120, check=True)
        splits.append(json.loads(out.stdout.strip().splitlines()[-1]))
    split = {k: _r(_median([s[k] for s in splits])) for k in ("imports_s", "engine_s", "answer_s")}
    med, base = _median(ours), _median(theirs)
    b.results["startup"] = {
        "command": " ".join([Path(ask[0]).name, *ask[1:-1], json.dumps(ASK)]),
        "runs": len(ours), "ask_median_s": _r(med), "baseline_median_s": _r(base),
        "ratio": _r(_x(med, base), 3), "probe_ok": probe.returncode == 0,
        "modules_loaded": len(modules), "platform_imports": imported,
        "slowest_imports": slowest, "in_process": split,
    }
    b.row(4, f'careerbot ask "{ASK}" (median of {len(ours)})', f"{med * 1000:.0f} ms",
          f"import yaml, rapidfuzz {base * 1000:.0f} ms", _fmt_x(_x(med, base)))
    b.row(4, "  in the process: imports / engine build / answer",
          f"{split['imports_s'] * 1000:.0f} ms / {split['engine_s'] * 1000:.0f} ms / "
          f"{split['answer_s'] * 1000:.0f} ms")
    leaked = [name for name, hit in imported.items() if hit]
    b.row(4, "slack / discord / aiohttp imported by the CLI",
          ", ".join(leaked) if leaked else "none" if probe.returncode == 0 else "probe failed",
          f"{len(modules)} modules loaded", "", "none imported",
          probe.returncode == 0 and not leaked, figure=len(leaked))
    for row in slowest[:4]:
        b.row(4, f"  import {row['module']} (with what it imports)",
              f"{row['cumulative_ms']:.1f} ms", f"itself {row['self_ms']:.1f} ms")


# ---------------------------------------------------------------------- 5. memory

def _peak_rss_kb() -> int:
    """Peak RSS of this process in KiB.

    Linux keeps ru_maxrss across exec, so a child of a big parent reports the parent's
    size; VmHWM (reset on exec) is read instead where it exists.
    """
    import resource

    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss


def _child_rss_baseline(config: dict[str, Any]) -> None:
    import rapidfuzz.process  # noqa: F401
    import yaml  # noqa: F401

    print(json.dumps({"maxrss_kb": _peak_rss_kb()}))


def _child_memory(config: dict[str, Any]) -> None:
    from bot.adapters.console import render_text
    from bot.core import Engine, Query

    engine = Engine(knowledge_dir=config["knowledge"])
    texts = dev_texts(Path(p) for p in config["eval"])
    for text in texts:
        render_text(engine.answer(Query(text=text, conversation="console")))
    print(json.dumps({"maxrss_kb": _peak_rss_kb(), "answers": len(texts)}))


def bench_memory(b: Bench) -> None:
    def probe(directory: Path) -> dict[str, Any]:
        out = subprocess.run(_child("_memory", {"knowledge": str(directory),
                                                "eval": [str(p) for p in b.eval_files]}),
                             capture_output=True, text=True, timeout=900, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    _say("5. memory: shipped base")
    base_kb = int(json.loads(subprocess.run(
        _child("_rss-baseline", {}), capture_output=True, text=True, timeout=60,
        check=True).stdout.strip().splitlines()[-1])["maxrss_kb"])
    shipped = probe(b.shipped)
    large_dir = b.base(b.plan.largest)
    _say(f"5. memory: {b.plan.largest}x base")
    large = probe(large_dir)
    b.results["memory"] = {"baseline_kb": base_kb, "shipped_kb": shipped["maxrss_kb"],
                           "large_kb": large["maxrss_kb"], "large_factor": b.plan.largest,
                           "answers": shipped["answers"]}
    b.row(5, f"peak RSS, shipped base, {shipped['answers']} answers",
          f"{shipped['maxrss_kb'] / 1024:.1f} MiB",
          f"python + yaml + rapidfuzz {base_kb / 1024:.1f} MiB",
          f"+{(shipped['maxrss_kb'] - base_kb) / 1024:.1f} MiB")
    b.row(5, f"peak RSS, {b.plan.largest}x base", f"{large['maxrss_kb'] / 1024:.1f} MiB",
          f"shipped {shipped['maxrss_kb'] / 1024:.1f} MiB",
          f"+{(large['maxrss_kb'] - base_kb) / 1024:.1f} MiB over baseline")


# ---------------------------------------------------------------------- 6. Slack under load


async def _child_slack_server(config: dict[str, Any]) -> None:
    """The real Slack app in HTTP mode on an ephemeral loopback port, until stdin closes."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    from bot.adapters.slack.app import build_app, start_http
    from bot.core import Engine
    from bot.ops import start_server
    from bot.settings import Settings

    engine = Engine(knowledge_dir=config["knowledge"])
    settings = Settings(slack_bot_token=config["bot_token"],
                        slack_signing_secret=config["secret"],
                        slack_api_url=config["api_url"])
    app = build_app(engine, settings)
    runner = await start_http(app, "127.0.0.1", 0)
    ops = await start_server(app.runtime, "127.0.0.1", 0)  # /healthz, as serve runs it
    try:
        print(json.dumps({"port": runner.addresses[0][1], "ops_port": ops.addresses[0][1]}),
              flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(), config["lifetime"])
    finally:
        await ops.cleanup()
        await runner.cleanup()


def _sign(secret: str, body: str) -> dict[str, str]:
    import hashlib
    import hmac

    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


async def _child_slack_load(config: dict[str, Any]) -> None:
    """Send N signed /careerbot commands (or GET /healthz) at a fixed concurrency."""
    from urllib.parse import urlencode

    import aiohttp

    n, concurrency, limit = config["n"], config["concurrency"], config["time_limit"]
    texts: list[str] = config["texts"]
    results: list[dict[str, Any]] = []
    numbers = iter(range(n))
    started = time.monotonic()
    deadline = started + limit

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        key = f"r{i:06d}"
        sent = time.monotonic()
        try:
            if config["health"]:
                async with session.get(config["url"]) as response:
                    await response.read()
                    ok = response.status == 200
                    status = response.status
            else:
                form = urlencode({
                    "token": "legacy", "team_id": "T0TEAM", "team_domain": "bench",
                    "channel_id": "C0BENCH", "channel_name": "general",
                    "user_id": f"U{i:06d}", "user_name": f"user{i}", "command": "/careerbot",
                    "text": texts[i % len(texts)], "api_app_id": "A0APP",
                    "response_url": config["response_base"] + key, "trigger_id": f"{i}.1.2"})
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           **_sign(config["secret"], form)}
                async with session.post(config["url"], data=form.encode(),
                                        headers=headers) as response:
                    body = await response.text()
                    ok = response.status == 200 and body == ""
                    status = response.status
            results.append({"key": key, "ok": ok, "status": status, "sent": sent,
                            "ack": time.monotonic() - sent})
        except (aiohttp.ClientError, TimeoutError) as exc:
            results.append({"key": key, "ok": False, "status": None, "sent": sent,
                            "ack": time.monotonic() - sent, "error": type(exc).__name__})

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in numbers:
            if time.monotonic() > deadline:
                break
            await one(session, i)

    timeout = aiohttp.ClientTimeout(total=config["request_timeout"])
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.wait_for(asyncio.gather(*(worker(session) for _ in range(concurrency))),
                               limit + config["request_timeout"] + 10)
    print(json.dumps({"elapsed": time.monotonic() - started, "results": results}))


def _load_fake_slack() -> Any:
    """tests/fakes/slack.py's FakeSlack, subclassed to time each response_url post."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("careerbot_bench_fake_slack", FAKE_SLACK)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the Slack stand-in from {FAKE_SLACK}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)

    class TimedSlack(module.FakeSlack):  # type: ignore[name-defined,misc]
        def __post_init__(self) -> None:
            super().__post_init__()
            self.answered: dict[str, list[float]] = {}
            self.refused: list[str] = []

        async def _response_url(self, request: Any) -> Any:
            arrived = time.monotonic()
            response = await super()._response_url(request)
            body = json.dumps(await request.json())  # aiohttp keeps the body once read
            if "Slow down" in body:  # the rate limit's notice is not an answer
                self.refused.append(request.match_info["key"])
            else:
                self.answered.setdefault(request.match_info["key"], []).append(arrived)
            return response

    return TimedSlack


async def _run_child(cmd: list[str], timeout: float) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"{cmd[3]} did not finish in {timeout:.0f} s") from None
    if process.returncode != 0:
        raise RuntimeError(f"{cmd[3]} failed ({process.returncode}): {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def _slack_load(b: Bench) -> dict[str, Any]:
    plan = b.plan
    texts = [t for t in dev_texts(b.eval_files)
             if not t.lower().startswith(("help", "topics", "reload", "compare"))]
    async with _load_fake_slack()() as slack:
        server_log = b.tmp / "slack-server.log"
        with server_log.open("wb") as log:
            server = await asyncio.create_subprocess_exec(
                *_child("_slack-server", {"knowledge": str(b.shipped),
                                          "bot_token": slack.bot_token,
                                          "secret": SIGNING_SECRET, "api_url": slack.api_url,
                                          "lifetime": 2 * plan.time_limit + 120}),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log)
        try:
            assert server.stdout is not None and server.stdin is not None
            line = await asyncio.wait_for(server.stdout.readline(), 60)
            if not line:
                raise RuntimeError("the Slack app did not start: "
                                   + server_log.read_text(errors="replace")[-2000:])
            ports = json.loads(line)
            base = f"http://127.0.0.1:{ports['port']}"
            ops = f"http://127.0.0.1:{ports['ops_port']}"
            common = {"n": plan.requests, "concurrency": plan.concurrency,
                      "time_limit": plan.time_limit, "request_timeout": 10.0,
                      "secret": SIGNING_SECRET, "texts": texts,
                      "response_base": slack.response_url("")}
            _say(f"6. slack: baseline, {plan.requests} GET /healthz")
            health = await _run_child(_child("_slack-load", {**common, "health": True,
                                                             "url": ops + "/healthz"}),
                                      plan.time_limit + 60)
            _say(f"6. slack: {plan.requests} signed /careerbot commands at concurrency "
                 f"{plan.concurrency}")
            load = await _run_child(_child("_slack-load", {**common, "health": False,
                                                           "url": base + "/slack/events"}),
                                    plan.time_limit + 60)
            sent = {r["key"]: r for r in load["results"]}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(sent) <= (
                    set(slack.answered) | set(slack.refused)):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a late duplicate would land by now
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                await asyncio.wait_for(server.wait(), 15)
            except TimeoutError:
                server.kill()
                await server.wait()
        answered = dict(slack.answered)
        refused = list(slack.refused)
        auth_tests = len(slack.of("auth.test"))
    logged = server_log.read_text(encoding="utf-8", errors="replace").splitlines()
    logged_errors = [line for line in logged if "ERROR" in line or line.startswith("Traceback")]
    acks = [r["ack"] for r in load["results"] if r["ok"]]
    health_acks = [r["ack"] for r in health["results"] if r["ok"]]
    answer_times = [answered[k][0] - r["sent"] for k, r in sent.items() if k in answered]
    errors = [r for r in load["results"] if not r["ok"]]
    return {
        "requested": plan.requests, "sent": len(sent), "concurrency": plan.concurrency,
        "elapsed_s": _r(load["elapsed"]), "requests_per_s": _r(len(acks) / load["elapsed"], 1),
        "ack_p50_ms": _r(_pct(acks, 50) * 1000), "ack_p99_ms": _r(_pct(acks, 99) * 1000),
        "ack_max_ms": _r(max(acks, default=float("nan")) * 1000),
        "errors": len(errors) + len(logged_errors),
        "error_kinds": sorted({str(r.get("error") or r["status"]) for r in errors}
                              | ({"logged by the app"} if logged_errors else set())),
        "app_logged_errors": logged_errors[:20],
        "answered_once": sum(len(answered.get(k, ())) == 1 for k in sent),
        "not_answered": sum(k not in answered for k in sent),
        "answered_twice_or_more": sum(len(answered.get(k, ())) > 1 for k in sent),
        "stray_answers": sum(k not in sent for k in answered),
        "rate_limited": len(refused),
        "auth_test_calls": auth_tests,
        "answer_p50_ms": _r(_pct(answer_times, 50) * 1000),
        "answer_p99_ms": _r(_pct(answer_times, 99) * 1000),
        "baseline_healthz": {
            "sent": len(health["results"]), "errors": len(health["results"]) - len(health_acks),
            "requests_per_s": _r(len(health_acks) / health["elapsed"], 1),
            "p50_ms": _r(_pct(health_acks, 50) * 1000),
            "p99_ms": _r(_pct(health_acks, 99) * 1000)},
    }


def bench_slack(b: Bench) -> None:
    if not FAKE_SLACK.exists():
        raise RuntimeError(f"the local Slack stand-in {FAKE_SLACK} is missing (a source checkout "
                           "is needed for this section)")
    # the stand-in Slack lives in this process: let it not carry the large bases'
    # leftovers (a collector sweeping them would stall it, as no real Slack stalls)
    from bot.core.matcher import forget_reload_caches

    forget_reload_caches()
    gc.collect()
    r = asyncio.run(_slack_load(b))
    b.results["slack"] = r
    h = r["baseline_healthz"]
    b.row(6, f"throughput ({r['sent']}/{r['requested']} sent, concurrency {r['concurrency']})",
          f"{r['requests_per_s']:.0f} req/s", f"GET /healthz {h['requests_per_s']:.0f} req/s",
          _fmt_x(_x(r["requests_per_s"], h["requests_per_s"])))
    b.row(6, "time to ack, p50", _ms(r["ack_p50_ms"] / 1000), f"/healthz {_ms(h['p50_ms'] / 1000)}",
          _fmt_x(_x(r["ack_p50_ms"], h["p50_ms"])))
    b.row(6, "time to ack, p99", _ms(r["ack_p99_ms"] / 1000), f"/healthz {_ms(h['p99_ms'] / 1000)}",
          _fmt_x(_x(r["ack_p99_ms"], h["p99_ms"])), "< 100 ms", r["ack_p99_ms"] < 100,
          figure=r["ack_p99_ms"])
    b.row(6, "errors (non-200, bad ack, timeouts, app errors)", str(r["errors"]),
          ", ".join(r["error_kinds"]), "", "0", r["errors"] == 0, figure=r["errors"])
    once = r["answered_once"] == r["sent"] == r["requested"] and not r["stray_answers"]
    b.row(6, "answered exactly once on the stand-in", f"{r['answered_once']}/{r['sent']}",
          f"missing {r['not_answered']}, repeated {r['answered_twice_or_more']}, "
          f"rate-limited {r['rate_limited']}", "",
          "every request", once, figure=r["answered_once"])
    b.row(6, "auth.test calls (the token checked)", str(r["auth_test_calls"]),
          f"{r['concurrency']} requests arrive at once", "", "1", r["auth_test_calls"] == 1,
          figure=r["auth_test_calls"])
    b.row(6, "time to answer (response_url post), p50 / p99",
          f"{_ms(r['answer_p50_ms'] / 1000)} / {_ms(r['answer_p99_ms'] / 1000)}")


# ---------------------------------------------------------------------- profile (--profile)


def profile(b: Bench, top: int = 18) -> str:
    """cProfile of Engine.answer over the dev questions and of Engine.reload, shipped base."""
    import cProfile
    import io
    import pstats

    from bot.core import Engine, Query

    engine = Engine(knowledge_dir=b.shipped)
    questions = with_variants(dev_texts(b.eval_files))
    out = io.StringIO()
    for title, run in (
        (f"Engine.answer x {len(questions)} (shipped base)",
         lambda: [engine.answer(Query(text=q)) for q in questions]),
        ("Engine.reload x 5 (shipped base)", lambda: [engine.reload() for _ in range(5)]),
    ):
        profiler = cProfile.Profile()
        profiler.runcall(run)
        out.write(f"\n== {title}, by internal time\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------------- the table


def _table(b: Bench) -> str:
    head = ("§", "figure", "careerbot", "baseline (same run)", "ratio", "target", "")
    rows = [(str(r.section), r.label, r.value, r.baseline, r.ratio, r.target, r.mark)
            for r in b.rows]
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    section = None
    for row, raw in zip(rows, b.rows, strict=True):
        if section is not None and raw.section != section:
            lines.append("")
        section = raw.section
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"system": f"{platform.system()} {platform.release()}", "cpu": cpu,
            "cpus": os.cpu_count(), "python": platform.python_version()}


_RUNNERS: dict[int, Callable[[Bench], None]] = {
    1: bench_latency, 2: bench_growth, 3: bench_reload, 4: bench_startup, 5: bench_memory,
    6: bench_slack,
}


def _sections(spec: str) -> list[int]:
    chosen = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) not in SECTIONS:
            raise ValueError(f"unknown section {part!r} (known: 1-6)")
        chosen.append(int(part))
    return sorted(set(chosen))


def run_bench(args: argparse.Namespace) -> int:
    """Run the chosen sections, print the table, write the JSON; 1 if a section failed."""
    try:
        sections = _sections(getattr(args, "sections", None) or "1,2,3,4,5,6")
    except ValueError as exc:
        print(f"careerbot bench: {exc}", file=sys.stderr)
        return 2
    from bot.core.knowledge import default_knowledge_dir

    eval_files = sorted(EVAL_DIR.glob("*.jsonl"))
    if not eval_files:
        print(f"careerbot bench: no labelled questions in {EVAL_DIR}", file=sys.stderr)
        return 2
    plan = Plan.make(bool(getattr(args, "quick", False)), getattr(args, "requests", None))
    knowledge = getattr(args, "knowledge", None)
    shipped = Path(knowledge).resolve() if knowledge else default_knowledge_dir()
    json_path = Path(getattr(args, "json", None) or "bench-results.json")
    failed: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="careerbot-bench-") as tmp:
        b = Bench(plan, shipped, eval_files, Path(tmp),
                  ["--knowledge", str(shipped)] if knowledge else [])
        for number in sections:
            name = SECTIONS[number]
            try:
                _RUNNERS[number](b)
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the rest
                failed[name] = f"{type(exc).__name__}: {exc}"
                b.row(number, f"{name}: FAILED", f"{type(exc).__name__}: {str(exc)[:120]}")
        profile_text = profile(b) if getattr(args, "profile", False) else ""
    machine = _machine()
    header = (f"careerbot bench ({'quick' if plan.quick else 'full'}) on {machine['cpu']}, "
              f"{machine['cpus']} CPUs, {machine['system']}, Python {machine['python']}")
    print(header)
    print(_table(b))
    misses = [t for t in b.targets if t["pass"] is False]
    print(f"\n{len(b.targets) - len(misses)}/{len(b.targets)} targets met "
          f"({time.perf_counter() - started:.0f} s); figures in {json_path}")
    if profile_text:
        print(profile_text)
    payload = {"machine": machine, "quick": plan.quick, "sections": sections,
               "seconds": _r(time.perf_counter() - started, 1), "results": b.results,
               "targets": b.targets, "failed": failed}
    json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    for name, why in failed.items():
        print(f"careerbot bench: section {name} failed: {why}", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------------- child processes


def _child_main(argv: list[str]) -> int:
    role, config = argv[0], json.loads(argv[1])
    if role == "_memory":
        _child_memory(config)
    elif role == "_rss-baseline":
        _child_rss_baseline(config)
    elif role == "_slack-server":
        asyncio.run(_child_slack_server(config))
    elif role == "_slack-load":
        asyncio.run(_child_slack_load(config))
    else:
        print(f"bot.bench: unknown role {role!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
