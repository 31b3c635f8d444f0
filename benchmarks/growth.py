"""Growth: knowledge bases 10x and 100x the shipped one, whose synthetic topics speak
the shipped examples' own vocabulary, so new topics compete with the real ones for
real questions. Accuracy at each size is reported as it is.

A real base grows by topics about roles and subjects next to the ones it has (data
analyst, data engineer, MLOps...): a few times the shipped one, and its new topics
share words with the old ones as these do.
"""

from __future__ import annotations

import itertools
import random
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.baselines import build_baselines
from benchmarks.common import (
    DEV,
    HELDOUT,
    KNOWLEDGE,
    Report,
    dev_texts,
    every,
    median,
    ms,
    say,
    with_variants,
)

__all__ = ["generate_knowledge", "grown", "run"]

# Example frames: the synthetic topic's words fill them; both are the shipped base's.
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
_BASES: dict[tuple[Path, int], Path] = {}


def _shipped_words(shipped: Path) -> list[str]:
    """The content words of the shipped topics' examples, as often as they are used
    (a word common there is common in the synthetic topics too)."""
    import yaml

    vocabulary = yaml.safe_load((shipped / "synonyms.yaml").read_text(encoding="utf-8")) or {}
    stop = {str(w).lower() for w in vocabulary.get("stopwords") or []}
    words: list[str] = []
    for path in sorted((shipped / "topics").glob("*.yaml")):
        topic = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for example in topic.get("examples") or []:
            words += [w for w in re.findall(r"[a-z]+", str(example).lower())
                      if len(w) >= 4 and w not in stop]
    return words


def _key(text: str) -> str:
    """An example as validation compares them (bot.core.knowledge)."""
    return " ".join(re.sub(r"[^a-z0-9+#]+", " ", text.lower()).split())


def _all_examples(node: Any) -> list[Any]:
    """Every `examples` list's items in a parsed YAML file (a topic, the decline groups)."""
    if isinstance(node, dict):
        return [*(node.get("examples") or []), *(e for v in node.values()
                                                  for e in _all_examples(v))]
    if isinstance(node, list):
        return [e for v in node for e in _all_examples(v)]
    return []


def generate_knowledge(shipped: Path, target: Path, factor: int, seed: int = 5) -> Path:
    """A copy of `shipped` with synthetic topics added until it has `factor` times its
    topics, each with six words drawn from the shipped examples' words (by how often
    they are used) and as many example questions as a shipped topic has on average."""
    import yaml

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(shipped, target)
    shipped_topics = sorted((shipped / "topics").glob("*.yaml"))
    per_topic = max(8, round(statistics.mean(
        len((yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("examples") or [])
        for p in shipped_topics)))
    sources = yaml.safe_load((shipped / "sources.yaml").read_text(encoding="utf-8"))
    source = sorted(sources)[0]
    pool = _shipped_words(shipped)
    rng = random.Random(seed)
    extra = len(shipped_topics) * (factor - 1)
    ids = [f"synthetic_{i:05d}" for i in range(extra)]
    # no example twice, nor one of the shipped base's, as validation wants
    taken = {_key(str(e)) for path in [*shipped_topics, shipped / "out_of_scope.yaml"]
             for e in _all_examples(yaml.safe_load(path.read_text(encoding="utf-8")))}
    for i, topic_id in enumerate(ids):
        own: list[str] = []
        while len(own) < 6:
            word = rng.choice(pool)
            if word not in own:
                own.append(word)
        picks = list(itertools.permutations(own, 3))
        rng.shuffle(picks)
        examples: list[str] = []
        for k in range(len(picks) * len(_FRAMES)):
            if len(examples) >= per_topic:
                break
            x, y, z = picks[k % len(picks)]
            text = _FRAMES[k % len(_FRAMES)].format(x=x, y=y, z=z)
            key = _key(text)
            if key not in taken:
                taken.add(key)
                examples.append(text)
        n1, n2, a1, a2, a3, a4 = own
        topic = {
            "id": topic_id,
            "title": f"Synthetic {i}: {n1} {n2}",
            "summary": f"What {n1} {n2} is and how its {a1} works.",
            "sources": [source],
            "short": {"both": f"A synthetic topic about {n1} {n2}."},
            "answers": {"both": f"A synthetic benchmark topic about {n1}, {n2}, {a1}, {a2}, "
                                f"{a3} and {a4}."},
            "examples": examples,
            "keywords": [f"{n1} {a1} {i}"],
            "follow_ups": [ids[(i + 1) % len(ids)]] if len(ids) > 1 else [],
        }
        (target / "topics" / f"{topic_id}.yaml").write_text(
            yaml.safe_dump(topic, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def grown(report: Report, factor: int) -> Path:
    """The shipped base (1), or one generated `factor` times its size (once a run)."""
    if factor == 1:
        return KNOWLEDGE
    key = (report.tmp, factor)
    if key not in _BASES:
        say(f"generating a knowledge base {factor}x the shipped one")
        _BASES[key] = generate_knowledge(KNOWLEDGE, report.tmp / f"knowledge_{factor}x", factor)
    return _BASES[key]


def run(report: Report) -> None:
    from bot.core import Engine, Query, load_knowledge
    from bot.evaluate import evaluate_files

    sample = every(with_variants(dev_texts()), report.plan.growth_sample)
    sizes: dict[str, Any] = {}
    for factor in (1, *report.plan.growth_factors):
        say(f"growth: {factor}x: load, build, time {len(sample)} questions, score")
        t0 = time.perf_counter()
        knowledge = load_knowledge(grown(report, factor))
        t1 = time.perf_counter()
        engine = Engine(knowledge)
        t2 = time.perf_counter()
        bm25 = build_baselines(knowledge, tune=False)[0]
        ours, theirs = [], []
        for text in sample:
            s0 = time.perf_counter()
            engine.answer(Query(text=text))
            s1 = time.perf_counter()
            bm25.predict(text)
            ours.append(s1 - s0)
            theirs.append(time.perf_counter() - s1)
        scores = {name: evaluate_files(engine, [path]).as_dict()
                  for name, path in (("dev", DEV), ("heldout", HELDOUT))}
        sizes[f"{factor}x"] = {
            "topics": len(knowledge.topics),
            "examples": sum(len(t.examples) for t in knowledge.topics.values()),
            "load_s": t1 - t0, "build_s": t2 - t1, "median_ms": median(ours) * 1000,
            "bm25_median_ms": median(theirs) * 1000,
            **{f"{k}_{m}": v[m] for k, v in scores.items() for m in ("in_scope", "out_of_scope")}}
    report.results["growth"] = sizes
    base = sizes["1x"]

    def shown(size: dict[str, Any]) -> str:
        return "; ".join(f"{k} {100 * size[f'{k}_in_scope']:.1f}% / "
                         f"{100 * size[f'{k}_out_of_scope']:.1f}%" for k in ("dev", "heldout"))

    for key, size in sizes.items():
        label = f"{key} ({size['topics']} topics, {size['examples']} examples)"
        report.row("growth", f"{label}: topic+role right / declined", shown(size),
                   "" if key == "1x" else f"1x: {shown(base)}",
                   "" if key == "1x" else
                   f"dev in scope {100 * (size['dev_in_scope'] - base['dev_in_scope']):+.1f} "
                   "points")
        report.row("growth", f"{key}: answer median; load, build", ms(size["median_ms"] / 1000),
                   f"BM25 {ms(size['bm25_median_ms'] / 1000)}; 1x {ms(base['median_ms'] / 1000)}",
                   f"load {size['load_s']:.2f} s, build {size['build_s']:.2f} s")
    report.notes.append(
        "growth: the synthetic topics use the shipped examples' own words, so they compete "
        "with real questions. A real base grows a few times over (roles and subjects next "
        "to the shipped ones), not 100x; what it costs there is nearer the 10x row.")
