"""The matchers a user would really pick instead of careerbot, and what they get right.

Each one indexes the knowledge base's example questions (topics' and out-of-scope
groups'), answers with the nearest example's topic, and declines below a threshold
(or when the nearest example is an out-of-scope one). Each threshold is tuned on the
base's own examples, leave-one-out, never on the dev set's wording: the one that
maximises the mean of "topic right" over topic examples and "declined" over
out-of-scope examples.

- BM25 (bm25s) over words without English stopwords;
- rapidfuzz QRatio (plain edit similarity of the whole text);
- rapidfuzz WRatio, the one the old bench used: it falls back to partial matching,
  so one long example story wins most questions. Reported as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    LABELLED,
    Report,
    examples,
    fresh,
    labelled,
    median,
    ms,
    pct,
    rate,
    ratio,
    say,
)

__all__ = ["Baseline", "accuracy", "build_baselines", "engine_predict", "run"]

_WORD = re.compile(r"\w\w+")


@dataclass
class Baseline:
    name: str
    #: question -> (index of the nearest example, its score), the example `skip` left out
    nearest: Callable[[str, int], tuple[int, float]]
    owners: list[str | None]
    threshold: float = 0.0

    def predict(self, text: str) -> str | None:
        i, score = self.nearest(text, -1)
        return self.owners[i] if i >= 0 and score >= self.threshold else None

    def tune(self, texts: Sequence[str]) -> None:
        """The threshold with the best mean of in-scope and decline rates, leave-one-out."""
        scored = []  # (score, owner of the nearest other example, own owner)
        for k, text in enumerate(texts):
            i, score = self.nearest(text, k)
            scored.append((score, self.owners[i] if i >= 0 else None, self.owners[k]))
        best = (-1.0, 0.0)
        for threshold in sorted({s for s, _, _ in scored}):
            right_in = right_out = n_in = n_out = 0
            for score, got, want in scored:
                got = got if score >= threshold else None
                if want is None:
                    n_out += 1
                    right_out += got is None
                else:
                    n_in += 1
                    right_in += got == want
            mean = (right_in / max(n_in, 1) + right_out / max(n_out, 1)) / 2
            if mean > best[0]:
                best = (mean, threshold)
        self.threshold = best[1]


def _rapidfuzz(texts: list[str], scorer_name: str) -> Callable[[str, int], tuple[int, float]]:
    from rapidfuzz import fuzz, process, utils

    scorer = getattr(fuzz, scorer_name)
    processed = [utils.default_process(t) for t in texts]

    def nearest(text: str, skip: int) -> tuple[int, float]:
        query = utils.default_process(text)
        for _, score, i in process.extract(query, processed, scorer=scorer, processor=None,
                                           limit=2):
            if i != skip:
                return i, score
        return -1, 0.0
    return nearest


def _bm25(texts: list[str]) -> Callable[[str, int], tuple[int, float]]:
    import bm25s
    import numpy as np
    from bm25s.stopwords import STOPWORDS_EN

    stop = frozenset(STOPWORDS_EN)

    def tokens(text: str) -> list[str]:
        return [w for w in _WORD.findall(text.lower()) if w not in stop]

    retriever = bm25s.BM25()
    retriever.index([tokens(t) or [""] for t in texts], show_progress=False)
    vocab = retriever.vocab_dict

    def nearest(text: str, skip: int) -> tuple[int, float]:
        words = [w for w in tokens(text) if w in vocab]
        if not words:
            return -1, 0.0
        scores = retriever.get_scores(words)
        if skip >= 0:
            scores[skip] = -1.0
        i = int(np.argmax(scores))
        return i, float(scores[i])
    return nearest


def build_baselines(knowledge: Any, tune: bool = True) -> list[Baseline]:
    """BM25, QRatio, WRatio over `knowledge`'s examples; thresholds tuned unless not
    `tune` (then only BM25, for its speed: a large base's leave-one-out takes long)."""
    texts, owners = examples(knowledge)
    out = [Baseline("BM25 (bm25s)", _bm25(texts), owners)]
    if tune:
        out += [Baseline("rapidfuzz QRatio", _rapidfuzz(texts, "QRatio"), owners),
                Baseline("rapidfuzz WRatio", _rapidfuzz(texts, "WRatio"), owners)]
        for baseline in out:
            baseline.tune(texts)
    return out


def engine_predict(engine: Any, new: bool = False) -> Callable[[str], str | None]:
    """The engine as a matcher; `new`: every message as one never seen before (its
    per-message caches emptied first), as the baselines, which keep none, see them."""
    from bot.core import Query

    def predict(text: str) -> str | None:
        if new:
            fresh(engine)
        reply = engine.answer(Query(text=text))
        return reply.topic if reply.kind in ("answer", "smalltalk") else None
    return predict


def accuracy(predict: Callable[[str], str | None], items: list[tuple[str, str | None]]
             ) -> tuple[str, str]:
    """(topic right on in-scope questions, declined on out-of-scope ones), as rates."""
    inside = [predict(t) == want for t, want in items if want is not None]
    outside = [predict(t) is None for t, want in items if want is None]
    return rate(sum(inside), len(inside)), rate(sum(outside), len(outside))


def _speed(predict: Callable[[str], Any], questions: Sequence[str], rounds: int
           ) -> list[float]:
    import time

    clock = time.perf_counter
    seconds = []
    for _ in range(rounds):
        for q in questions:
            t0 = clock()
            predict(q)
            seconds.append(clock() - t0)
    return seconds


def run(report: Report, engine: Any, questions: Sequence[str]) -> None:
    """Every matcher's accuracy on the labelled sets beside its speed on `questions`."""
    say(f"baselines: tuning thresholds, then {len(questions)} questions each")
    matchers: list[tuple[str, Callable[[str], str | None], str]] = [
        ("careerbot Engine", engine_predict(engine, new=True),
         "fitted by careerbot eval --fit; each message new")]
    for b in build_baselines(engine.knowledge):
        matchers.append((b.name, b.predict, f"threshold {b.threshold:.3g}"))
    sets = {name: labelled(path) for name, path in LABELLED.items()}
    engine_median = 0.0
    figures: dict[str, Any] = {}
    for name, predict, how in matchers:
        _speed(predict, questions[:20], 1)  # warm what each keeps
        seconds = _speed(predict, questions, report.plan.rounds)
        med, p99 = median(seconds), pct(seconds, 99)
        acc = {set_name: accuracy(predict, items) for set_name, items in sets.items()}
        figures[name] = {"median_ms": med * 1000, "p99_ms": p99 * 1000, "how": how,
                         **{f"{k}_in_scope": v[0] for k, v in acc.items()},
                         **{f"{k}_declined": v[1] for k, v in acc.items()}}
        shown = "; ".join(f"{k} {v[0]} / {v[1]}" for k, v in acc.items())
        if not engine_median:
            engine_median = med
            report.row("baselines", f"{name}: topic right / declined", shown,
                       f"median {ms(med)}, p99 {ms(p99)}", how)
        else:
            report.row("baselines", f"{name}: topic right / declined", shown,
                       f"median {ms(med)}, p99 {ms(p99)}",
                       f"{how}; engine median {ratio(engine_median, med)} this")
    report.results["baselines"] = {"questions": len(questions), "matchers": figures,
                                   "sets": {k: str(v) for k, v in LABELLED.items()}}
