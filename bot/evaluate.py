"""Score labelled question sets (the JSON lines of eval/dev.jsonl) against the engine."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from bot.core import Engine, Query, Reply
from bot.core.context import Turn
from bot.core.knowledge import Knowledge, OutOfScopeGroup, Problem, Topic, located
from bot.core.matcher import Match, Matcher, Weights
from bot.settings import MatchSettings

T = TypeVar("T", Topic, OutOfScopeGroup)

__all__ = ["PERTURBATIONS", "EvalResult", "cross_validate", "evaluate_files", "fit_decline_line",
           "fit_weights", "scope_warnings"]

# Personal context people put before their question, about nothing careerbot answers.
_STORIES = (
    "I've been working in retail for six years and honestly I'm burnt out.",
    "A friend of mine got into tech last year and loves it.",
    "So I just finished my second year at uni, studying economics.",
    "Long time lurker here, first post.",
    "I'm 34, two kids, currently a high school teacher.",
    "My manager keeps telling me to think about my long-term plans.",
    "Quick background: I did a bootcamp last spring and have been applying since.",
    "I work at a small logistics company and we're starting to use data more.",
    "Bit of context: I studied biology, then spent three years in a lab.",
    "I'm a nurse and I've been teaching myself SQL on weekends.",
)


def _typos(text: str, rng: random.Random) -> str:
    """Two slips (a letter dropped, swapped, added or replaced) in longer words, lowercase."""
    words = text.lower().split()
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    for i in rng.sample(long, min(2, len(long))):
        w = words[i]
        for _ in range(10):  # a swap of "ee" or an "a" for an "a" is no slip: again
            k = rng.randrange(len(w) - 1)
            slipped = rng.choice((w[:k] + w[k + 1:], w[:k] + w[k + 1] + w[k] + w[k + 2:],
                                  w[:k] + rng.choice("aeinorst") + w[k:],
                                  w[:k] + rng.choice("aeinorst") + w[k + 1:]))
            if slipped != w:
                words[i] = slipped
                break
    return " ".join(words)


def _story(text: str, rng: random.Random) -> str:
    """Two sentences of unrelated personal context before the question."""
    return " ".join([*rng.sample(_STORIES, 2), text])


#: ways to ask the labelled questions less cleanly (`careerbot eval --perturb NAME`)
PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "typos": _typos, "story": _story}


@dataclass(frozen=True)
class Scored:
    source: str          # the file it came from
    confidence: float
    answered: bool
    right: bool
    in_scope: bool       # labelled with a topic


@dataclass
class EvalResult:
    in_scope: list[bool] = field(default_factory=list)
    out_of_scope: list[bool] = field(default_factory=list)
    followups: list[bool] = field(default_factory=list)
    misses: list[dict[str, object]] = field(default_factory=list)
    #: False when the labels carry no role (cross-validation): in scope is the topic alone
    roles: bool = True
    #: every single question scored (not dialogue turns)
    scored: list[Scored] = field(default_factory=list)

    @staticmethod
    def _rate(xs: list[bool]) -> str:
        return f"{sum(xs)}/{len(xs)} = {100 * sum(xs) / len(xs):.1f}%" if xs else "n/a"

    def reliability(self) -> list[str]:
        """Answers and declines bucketed by confidence, with the share right in each:
        how far a confidence can be trusted, and where the decline line sits."""
        if not self.scored:
            return []
        lines = ["Reliability (single questions, by confidence):",
                 "  confidence    answered  right    declined  right"]
        for low, high in zip(_BUCKETS, [*_BUCKETS[1:], 1.01], strict=True):
            rows = [(q.answered, q.right) for q in self.scored if low <= q.confidence < high]
            if not rows:
                continue
            cells = []
            for answered in (True, False):
                oks = [right for a, right in rows if a is answered]
                cells.append(f"{len(oks):8d}  {100 * sum(oks) / len(oks):5.1f}%" if oks
                             else f"{len(oks):8d}      -")
            lines.append(f"  {low:.2f}-{min(high, 1.0):.2f}  {cells[0]}  {cells[1]}")
        return [*lines, ""]

    def by_file(self) -> list[str]:
        """In scope and declines for each file, when several were scored."""
        files = list(dict.fromkeys(q.source for q in self.scored))
        if len(files) < 2:
            return []
        lines = ["By file:"]
        for name in files:
            inside = [q.right for q in self.scored if q.source == name and q.in_scope]
            outside = [q.right for q in self.scored if q.source == name and not q.in_scope]
            lines.append(f"  {name}: in scope {self._rate(inside)}, "
                         f"out of scope declined {self._rate(outside)}")
        return [*lines, ""]

    def table(self) -> str:
        lines = [*self.reliability(), *self.by_file()]
        if self.misses:
            by_topic: dict[str, list[dict[str, object]]] = defaultdict(list)
            for miss in self.misses:
                by_topic[str(miss["expected_topic"])].append(miss)
            lines.append("Misses by expected topic:")
            for topic, rows in sorted(by_topic.items(), key=lambda kv: -len(kv[1])):
                lines.append(f"  {topic} ({len(rows)})")
                for row in rows:
                    lines.append(f"    {row['id']}: {str(row['text'])[:70]!r} -> "
                                 f"{row['got_topic']}/{row['got_role']} "
                                 f"(want {row['expected_topic']}/{row['expected_role']}, "
                                 f"conf {row['confidence']})")
            lines.append("")
        lines += [
            f"in scope, topic and role right: {self._rate(self.in_scope)}" if self.roles else
            f"in scope, topic right:          {self._rate(self.in_scope)}",
            f"out of scope, declined:         {self._rate(self.out_of_scope)}",
            f"follow-up turns right:          {self._rate(self.followups)}",
        ]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        def rate(xs: list[bool]) -> float | None:
            return sum(xs) / len(xs) if xs else None
        return {"in_scope": rate(self.in_scope), "out_of_scope": rate(self.out_of_scope),
                "followups": rate(self.followups), "misses": self.misses,
                "counts": dict(Counter(str(m["expected_topic"]) for m in self.misses))}


_BUCKETS = (0.0, 0.3, 0.42, 0.5, 0.6, 0.7, 0.8, 0.9)


def _check(engine: Engine, result: EvalResult, item_id: str, text: str,
           topic: str | None, role: str | None, previous: Turn | None,
           bucket: list[bool] | None, source: str = "") -> Reply:
    """Score one message; `previous` is the dialogue's turn so far (None: a fresh start)."""
    reply = engine.answer(Query(text=text, platform="eval"), previous)
    got_topic = reply.topic if reply.kind in ("answer", "smalltalk") else None
    got_role = reply.role if got_topic else None
    ok = got_topic == topic and (topic is None or got_role == role)
    if bucket is not None:
        bucket.append(ok)
    else:
        (result.out_of_scope if topic is None else result.in_scope).append(ok)
        result.scored.append(Scored(source, reply.confidence, got_topic is not None, ok,
                                    topic is not None))
    if not ok:
        result.misses.append({"id": item_id, "text": text, "expected_topic": topic,
                              "expected_role": role, "got_topic": got_topic,
                              "got_role": got_role, "confidence": reply.confidence})
    return reply


def evaluate_files(engine: Engine, paths: list[Path], perturb: str | None = None,
                   variants: int = 3) -> EvalResult:
    """Score labelled files; with `perturb`, each single question is asked instead in
    `variants` perturbed copies (seeded: the same run gives the same figures)."""
    result = EvalResult()
    change = PERTURBATIONS[perturb] if perturb else None
    rng = random.Random(7)
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            item = json.loads(line)
            item_id = str(item.get("id", f"{path.name}:{n}"))
            if "turns" in item:
                # a dialogue is one conversation, played at once: its context is the last
                # answer's turn, as a store would keep it between messages
                previous: Turn | None = None
                for i, turn in enumerate(item["turns"]):
                    reply = _check(engine, result, f"{item_id}#{i}", turn["text"],
                                   turn.get("topic"), turn.get("role"), previous,
                                   result.followups if i else None, path.name)
                    previous = Turn.of(reply) or previous
            elif change is None:
                _check(engine, result, item_id, item["text"], item.get("topic"),
                       item.get("role"), None, None, path.name)
            else:
                for v in range(variants):
                    _check(engine, result, f"{item_id}~{v}", change(item["text"], rng),
                           item.get("topic"), item.get("role"), None, None, path.name)
    return result


def _hold_out(owner: T, label: str | None, fold: int, folds: int,
              held: list[tuple[str, str | None]]) -> T:
    """`owner` (a topic or decline group) without this fold's examples, which go to `held`."""
    held.extend((x, label) for i, x in enumerate(owner.examples) if i % folds == fold)
    return replace(owner, examples=tuple(
        x for i, x in enumerate(owner.examples) if i % folds != fold))


def _folds(knowledge: Knowledge, settings: MatchSettings, folds: int,
           weights: Weights | None = None
           ) -> Iterator[tuple[int, Matcher, list[tuple[str, str | None]]]]:
    """Each fold: a matcher built without that slice of every topic's and decline
    group's examples, and the slice, labelled (None for a decline group's)."""
    for fold in range(folds):
        held: list[tuple[str, str | None]] = []
        topics = {topic_id: _hold_out(topic, topic_id, fold, folds, held)
                  for topic_id, topic in knowledge.topics.items()}
        groups = tuple(_hold_out(group, None, fold, folds, held)
                       for group in knowledge.out_of_scope)
        yield fold, Matcher(replace(knowledge, topics=topics, out_of_scope=groups),
                            settings, weights), held


def cross_validate(knowledge: Knowledge, settings: MatchSettings, folds: int = 5) -> EvalResult:
    """How well the knowledge base's own example questions generalise: each of `folds`
    slices of every topic's and decline group's examples is held out in turn and asked of
    a matcher built from the rest. Examples carry no role, so in scope counts the topic."""
    result = EvalResult(roles=False)
    for fold, matcher, held in _folds(knowledge, settings, folds):
        for n, (text, want) in enumerate(held):
            match = matcher.match(text)
            ok = match.topic == want
            (result.in_scope if want else result.out_of_scope).append(ok)
            if not ok:
                result.misses.append({"id": f"fold{fold}:{n}", "text": text,
                                      "expected_topic": want, "expected_role": None,
                                      "got_topic": match.topic, "got_role": match.role,
                                      "confidence": match.confidence})
    return result


def scope_warnings(knowledge: Knowledge, settings: MatchSettings, folds: int = 5
                   ) -> list[Problem]:
    """Topic examples that sit closer to an out-of-scope group than to their topic: each
    is held out (as in `cross_validate`) and asked, and it is reported when a decline
    group comes out best and declines it. Most often a new topic that such a group also
    covers: the group is to be edited, or the bot keeps declining what the topic answers.
    Each names the file, the example (with its line) and the group."""
    warnings: list[Problem] = []
    for _, matcher, held in _folds(knowledge, settings, folds):
        for text, topic_id in held:
            if topic_id is None:
                continue  # a decline group's own example
            match = matcher.match(text)
            best = match.best
            if best is None or not best.out_of_scope or match.decline_reason != best.id:
                continue
            index = knowledge.topics[topic_id].examples.index(text)
            warnings.append(located(Problem(
                f"topics/{topic_id}.yaml", f"examples[{index}]",
                f"{text!r} is closer to the out-of-scope group {best.id!r} than to this "
                f"topic, and is declined with it (held out, {match.confidence:.2f}); if the "
                "topic answers such questions, edit that group in out_of_scope.yaml"),
                knowledge.directory))
    return sorted(warnings, key=lambda w: (w.file, w.line or 0))


#: decline lines the fits try
LINES = tuple(round(0.30 + 0.02 * k, 2) for k in range(11))


@dataclass(frozen=True)
class _Asked:
    """One question matched with no decline line: how sure, and whether it was right."""

    confidence: float
    answered: bool
    right: bool
    in_scope: bool
    leads: bool  # answered below any decline line: far ahead of every rival


def _ask_all(knowledge: Knowledge, settings: MatchSettings, folds: int,
             paths: tuple[Path, ...], weights: Weights | None = None
             ) -> list[list[_Asked]]:
    """Every question matched once with no line: the base's examples held out fold by
    fold (the topic counts: examples carry no role), then each labelled file (topic and
    role). Every line is then a cut of the same confidences."""
    open_line = replace(settings, decline_below=0.0)

    def asked(match: Match, topic: str | None, role: str | None) -> _Asked:
        right = match.topic == topic and (not topic or not role or match.role == role)
        return _Asked(match.confidence, match.topic is not None, right, bool(topic),
                      match.leads)

    examples = [asked(matcher.match(text), want, None)
                for _, matcher, held in _folds(knowledge, open_line, folds, weights)
                for text, want in held]
    groups = [examples]
    if paths:
        matcher = Matcher(knowledge, open_line, weights)
        for path in paths:
            items = [json.loads(row) for row in path.read_text(encoding="utf-8").splitlines()
                     if row.strip()]
            groups.append([asked(matcher.match(it["text"]), it.get("topic"), it.get("role"))
                           for it in items if "text" in it])
    return groups


def _rates(asked: list[_Asked], line: float) -> tuple[float, float]:
    """In scope right, and out of scope declined, with this decline line."""
    inside = [a.right and (a.confidence >= line or a.leads) for a in asked if a.in_scope]
    outside = [not a.answered or (a.confidence < line and not a.leads)
               for a in asked if not a.in_scope]
    return sum(inside) / max(len(inside), 1), sum(outside) / max(len(outside), 1)


def _mean(groups: list[list[_Asked]], line: float) -> float:
    """The mean of every group's two rates: the examples and each file count alike."""
    rates = [r for group in groups for r in _rates(group, line)]
    return sum(rates) / len(rates)


def _best_line(groups: list[list[_Asked]], start: float) -> tuple[float, float]:
    """The line (and its mean) placing most right; it moves from `start` only to do
    better, not to tie."""
    best, best_mean = start, _mean(groups, start)
    for line in LINES:
        if (mean := _mean(groups, line)) > best_mean + 0.001:
            best, best_mean = line, mean
    return best, best_mean


def fit_decline_line(knowledge: Knowledge, settings: MatchSettings, folds: int = 5,
                     paths: tuple[Path, ...] = ()) -> tuple[float, list[str]]:
    """The decline line that places most questions right, in scope and out alike, on the
    base's own examples held out fold by fold and on any labelled `paths`, each set
    counting alike. Returns the line and a table."""
    groups = _ask_all(knowledge, settings, folds, paths)
    table = ["line   " + "   ".join(["examples in/out", *(f"{p.name} in/out" for p in paths)])]
    for line in LINES:
        cells = [f"{100 * i:.1f}/{100 * o:.1f}" for i, o in (_rates(g, line) for g in groups)]
        table.append(f"{line:.2f}   " + "   ".join(cells)
                     + f"   mean {100 * _mean(groups, line):5.1f}%")
    best, _ = _best_line(groups, settings.decline_below)
    return best, [f"{sum(map(len, groups))} questions ({folds} folds of the examples"
                  + (f", {len(paths)} labelled file(s))" if paths else ")"), *table,
                  f"fitted decline line: {best:.2f} (CAREERBOT_DECLINE_BELOW; now "
                  f"{settings.decline_below:.2f})"]


#: what `fit_weights` tries for each weight: its value scaled by these
STEPS = (0.6, 1.5)
#: a weight moves only when the mean rises by this much (half a question in a hundred
#: is noise on sets this size)
_GAIN = 0.005


def fit_weights(knowledge: Knowledge, settings: MatchSettings, paths: tuple[Path, ...],
                folds: int = 5, rounds: int = 2, names: tuple[str, ...] = ()
                ) -> tuple[Weights, list[str]]:
    """The scoring weights, fitted by coordinate descent: each weight in turn (`names`,
    else all) is scaled by each of STEPS, and a change is kept when the mean of the
    rates (see fit_decline_line, each with its own best line) rises by _GAIN or more.
    Score only on training data: the held-out part must stay unseen."""
    current = Weights()
    line, score = _best_line(_ask_all(knowledge, settings, folds, paths, current),
                             settings.decline_below)
    table = [f"start: mean {100 * score:.2f}% at line {line:.2f}  {current}"]
    for round_ in range(1, rounds + 1):
        moved = False
        for name in names or tuple(f.name for f in fields(Weights)):
            value = getattr(current, name)
            for step in STEPS:
                # a count stays a whole number, at least one
                tried = (round(value * step, 3) if isinstance(value, float)
                         else max(1, round(value * step)))
                if tried == value:
                    continue
                change: dict[str, Any] = {name: tried}
                candidate = replace(current, **change)
                cline, cscore = _best_line(
                    _ask_all(knowledge, settings, folds, paths, candidate), line)
                kept = cscore >= score + _GAIN
                table.append(f"round {round_}  {name:>13} {value!s:>6} -> {tried!s:<6} "
                             f"mean {100 * cscore:.2f}% at {cline:.2f}"
                             + ("  kept" if kept else ""))
                if kept:
                    current, score, line, moved = candidate, cscore, cline, True
                    break
        if not moved:
            break
    table.append(f"fitted: mean {100 * score:.2f}% at line {line:.2f}  {current}")
    return current, table
