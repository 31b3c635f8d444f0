"""From records to what admins read: clusters of unanswered questions, votes, daily counts.

`build_report` is pure (records in, a `Report` out); the renderers turn a report
into a table, JSON or CSV, `suggest` into YAML example questions for topic files,
and `stats_reply` into the short summary admins get in chat.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from rapidfuzz import fuzz

from bot.core.knowledge import Knowledge
from bot.core.models import Reply
from bot.core.text import quote
from bot.learning._clusters import cluster, reduce
from bot.learning._records import QuestionRecord, VoteRecord

__all__ = [
    "FIT",
    "Cluster",
    "Day",
    "Report",
    "TopicVotes",
    "build_report",
    "parse_since",
    "render_csv",
    "render_json",
    "render_table",
    "stats_reply",
    "suggest",
]

#: a cluster fits its nearest topic when it has at least this many questions, ...
FIT_COUNT = 2
#: ... this share of them points at the topic, ...
AGREEMENT = 0.6
#: ... with at least this score on average (declines score under the decline line, 0.42)
FIT = 0.2
#: example questions suggested per cluster at most
SUGGESTED = 8


@dataclass(frozen=True)
class Cluster:
    """Declined or unsure questions of similar wording."""

    count: int
    #: distinct wordings, the most frequent first (empty when text is not recorded)
    questions: tuple[str, ...]
    topic: str | None           # the nearest topic most of them had
    score: float                # their mean score for it
    agreement: float            # the share of the cluster whose nearest topic it is
    declined_as: str | None     # the most common reason for declining, if declined

    @property
    def examples(self) -> tuple[str, ...]:
        return self.questions[:3]

    @property
    def label(self) -> str:
        return self.questions[0] if self.questions else "(text not recorded)"

    @property
    def fits(self) -> bool:
        return (self.topic is not None and self.count >= FIT_COUNT
                and self.agreement >= AGREEMENT and self.score >= FIT)


@dataclass(frozen=True)
class TopicVotes:
    topic: str
    helpful: int
    not_helpful: int

    @property
    def total(self) -> int:
        return self.helpful + self.not_helpful

    @property
    def share(self) -> float:
        return self.helpful / self.total if self.total else 0.0


@dataclass(frozen=True)
class Day:
    date: str       # YYYY-MM-DD, UTC
    questions: int
    unsure: int     # declined, "did you mean", or answered with low confidence


@dataclass(frozen=True)
class Report:
    since: float
    until: float
    questions: int
    unsure: int
    clusters: tuple[Cluster, ...]
    votes: tuple[TopicVotes, ...]
    days: tuple[Day, ...]

    @property
    def helpful(self) -> int:
        return sum(v.helpful for v in self.votes)

    @property
    def voted(self) -> int:
        return sum(v.total for v in self.votes)

    @property
    def helpful_share(self) -> float:
        return self.helpful / self.voted if self.voted else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "questions": self.questions,
            "declined_or_unsure": self.unsure,
            "clusters": [{
                "count": c.count, "label": c.label, "examples": list(c.examples),
                "nearest_topic": c.topic, "nearest_score": round(c.score, 3),
                "agreement": round(c.agreement, 3), "declined_as": c.declined_as,
            } for c in self.clusters],
            "votes": [{"topic": v.topic, "helpful": v.helpful, "not_helpful": v.not_helpful,
                       "helpful_share": round(v.share, 3)} for v in self.votes],
            "helpful_share": round(self.helpful_share, 3),
            "per_day": [{"date": d.date, "questions": d.questions, "declined_or_unsure": d.unsure}
                        for d in self.days],
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


# ---------------------------------------------------------------------- building


def _central_first(wordings: Counter[str]) -> tuple[str, ...]:
    """Most asked first; among equals, the wording most like the others (the best label)."""
    texts = list(wordings)
    reduced = [reduce(t) for t in texts]
    sample = reduced[:50]

    def centrality(i: int) -> float:
        return sum(fuzz.token_set_ratio(reduced[i], other) for other in sample)

    order = sorted(range(len(texts)), key=lambda i: (-wordings[texts[i]], -centrality(i), i))
    return tuple(texts[i] for i in order)


def _cluster_of(records: Sequence[QuestionRecord]) -> Cluster:
    wordings = Counter(r.text for r in records if r.text)
    topics = Counter(r.topic for r in records if r.topic)
    topic, n = topics.most_common(1)[0] if topics else (None, 0)
    scores = [r.score for r in records if r.topic == topic] if topic else []
    reasons = Counter(r.reason for r in records if r.kind == "decline" and r.reason)
    return Cluster(
        count=len(records),
        questions=_central_first(wordings),
        topic=topic,
        score=sum(scores) / len(scores) if scores else 0.0,
        agreement=n / len(records),
        declined_as=reasons.most_common(1)[0][0] if reasons else None,
    )


def build_report(questions: Iterable[QuestionRecord], votes: Iterable[VoteRecord], *,
                 since: float, until: float) -> Report:
    asked = sorted((q for q in questions if since <= q.at <= until), key=lambda q: q.at)
    unsure = [q for q in asked if q.unsure]
    worded = [q for q in unsure if q.text]
    groups = [[worded[i] for i in g] for g in cluster([q.text or "" for q in worded])]
    # questions kept without their text (the switch was off, or too long): by nearest topic
    unworded: dict[str | None, list[QuestionRecord]] = defaultdict(list)
    for q in unsure:
        if not q.text:
            unworded[q.topic].append(q)
    clusters = [_cluster_of(g) for g in [*groups, *unworded.values()]]
    clusters.sort(key=lambda c: -c.count)  # stable: among equals, worded ones first

    # one vote a voter per answer: the last they cast (records before answers were kept
    # count one each)
    latest: dict[object, VoteRecord] = {}
    for n, v in enumerate(sorted(votes, key=lambda v: v.at)):
        if since <= v.at <= until:
            latest[(v.platform, v.user, v.answer) if v.answer and v.user else n] = v
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for v in latest.values():
        tally[v.topic][0 if v.helpful else 1] += 1
    by_topic = sorted((TopicVotes(t, h, n) for t, (h, n) in tally.items()),
                      key=lambda v: (-v.total, v.topic))

    per_day: dict[str, list[int]] = {}
    for q in asked:
        counts = per_day.setdefault(_day(q.at), [0, 0])
        counts[0] += 1
        counts[1] += q.unsure
    return Report(since, until, len(asked), len(unsure), tuple(clusters), tuple(by_topic),
                  tuple(Day(d, n, u) for d, (n, u) in sorted(per_day.items())))


_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float) -> float:
    """"7d", "24h", "2w", "30m", or a date (2024-05-01, UTC): the time it means."""
    match = _SINCE.match(text)
    if match:
        return now - float(match[1]) * _UNITS[match[2].lower()]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since takes an age such as 7d, 24h or 2w, or a date such as "
                         f"2024-05-01; got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


# ---------------------------------------------------------------------- rendering


def _pct(share: float) -> str:
    return f"{share:.0%}"


def _nearest(c: Cluster) -> str:
    if c.topic is None:
        return "nearest topic: none"
    return f"nearest topic: {c.topic} ({c.score:.2f})"


def _sentence(c: Cluster) -> str:
    one = c.count == 1
    verb = ("was" if one else "were") + (" declined" if c.declined_as else " answered unsure")
    reason = (f" (as {c.declined_as})" if c.declined_as not in (None, "low_confidence")
              else "")
    many = "question" if one else "questions"
    like = f"like “{c.label}”" if c.questions else "(text not recorded)"
    return f"{c.count} {many} {like} {verb}{reason}; {_nearest(c)}"


def render_table(report: Report, clusters: int = 20) -> str:
    days = max(1, round((report.until - report.since) / 86400))
    lines = [f"careerbot report: {_day(report.since)} to {_day(report.until)} "
             f"({days} day{'s' if days != 1 else ''})",
             f"{report.questions} questions; {report.unsure} declined or unsure"
             + (f" ({_pct(report.unsure / report.questions)})" if report.questions else ""),
             "", "Declined or unsure, by similar wording:"]
    if not report.clusters:
        lines.append("  none")
    for c in report.clusters[:clusters]:
        lines.append(f"  {_sentence(c)}")
        more = [f"“{q}”" for q in c.examples[1:]]
        if more:
            lines.append(f"      also: {', '.join(more)}")
    if len(report.clusters) > clusters:
        lines.append(f"  ... and {len(report.clusters) - clusters} smaller clusters "
                     "(--format json lists them all)")
    lines += ["", "Votes per topic:"]
    if report.votes:
        width = max(len("topic"), *(len(v.topic) for v in report.votes))
        lines.append(f"  {'topic':<{width}}  helpful  not helpful  helpful share")
        for v in report.votes:
            lines.append(f"  {v.topic:<{width}}  {v.helpful:>7}  {v.not_helpful:>11}  "
                         f"{_pct(v.share):>13}")
        lines.append(f"  {'all':<{width}}  {report.helpful:>7}  "
                     f"{report.voted - report.helpful:>11}  {_pct(report.helpful_share):>13}")
    else:
        lines.append("  none")
    lines += ["", "Questions per day:"]
    if report.days:
        lines.append("  date        questions  declined or unsure")
        lines += [f"  {d.date}  {d.questions:>9}  {d.unsure:>18}" for d in report.days]
    else:
        lines.append("  none")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS = ("section", "name", "count", "declined_or_unsure", "helpful", "not_helpful",
               "helpful_share", "nearest_topic", "nearest_score", "declined_as", "examples")


def render_csv(report: Report) -> str:
    """One table, a `section` column telling clusters, votes and days apart."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for c in report.clusters:
        writer.writerow({"section": "cluster", "name": c.label, "count": c.count,
                         "nearest_topic": c.topic or "", "nearest_score": round(c.score, 3),
                         "declined_as": c.declined_as or "",
                         "examples": " | ".join(c.examples)})
    for v in report.votes:
        writer.writerow({"section": "votes", "name": v.topic, "count": v.total,
                         "helpful": v.helpful, "not_helpful": v.not_helpful,
                         "helpful_share": round(v.share, 3)})
    for d in report.days:
        writer.writerow({"section": "day", "name": d.date, "count": d.questions,
                         "declined_or_unsure": d.unsure})
    return out.getvalue()


# ---------------------------------------------------------------------- --suggest


class _Indented(yaml.SafeDumper):
    """Lists indented under their key, as the knowledge files write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _key(text: str) -> str:
    """The knowledge loader's notion of "the same question"."""
    return " ".join(re.sub(r"[^a-z0-9+#]+", " ", text.lower()).split())


def suggest(report: Report, knowledge: Knowledge) -> str:
    """YAML, one document per topic file: new example questions to paste under `examples:`.

    Only clusters that fit their nearest topic well are used, never one that the
    knowledge declines on purpose (an out-of-scope group), and never a question
    the knowledge already has.
    """
    known = {_key(e) for t in knowledge.topics.values() for e in t.examples}
    known |= {_key(e) for g in knowledge.out_of_scope for e in g.examples}
    on_purpose = {g.id for g in knowledge.out_of_scope}
    picked: dict[str, list[str]] = defaultdict(list)
    sources: dict[str, list[Cluster]] = defaultdict(list)
    skipped: list[str] = []
    for c in report.clusters:
        if not c.questions or c.topic is None or c.topic not in knowledge.topics:
            continue
        if c.declined_as in on_purpose:
            if c.count >= FIT_COUNT:
                skipped.append(f"{c.count} like “{c.label}”: declined on purpose "
                               f"(out_of_scope.yaml, group {c.declined_as})")
            continue
        if not c.fits:
            continue
        fresh = []
        for q in c.questions:
            if _key(q) and _key(q) not in known:
                known.add(_key(q))
                fresh.append(q)
        if fresh:
            picked[c.topic] += fresh[:SUGGESTED]
            sources[c.topic].append(c)
    header = [
        f"# careerbot report --suggest: declined or unsure questions, {_day(report.since)} "
        f"to {_day(report.until)}",
        "# One document per topic file. Review each question, paste the ones that fit",
        "# under that file's `examples:`, then run `careerbot validate` and reload",
        "# (/careerbot reload on Slack, /reload on Discord).",
    ]
    if not picked:
        header.append("# Nothing to suggest: no cluster fits a topic well enough.")
    header += [f"# not suggested: {s}" for s in skipped]
    docs = ["\n".join(header)]
    for topic in sorted(picked, key=lambda t: -sum(c.count for c in sources[t])):
        path = knowledge.directory / "topics" / f"{topic}.yaml"
        try:
            shown = path.relative_to(knowledge.directory.parent)
        except ValueError:
            shown = path
        about = "; ".join(f"{c.count} like “{c.label}” (score {c.score:.2f})"
                          for c in sources[topic])
        body = yaml.dump({"examples": picked[topic]}, Dumper=_Indented, allow_unicode=True,
                         sort_keys=False, default_flow_style=False, width=1000)
        docs.append(f"---\n# {shown}: {about}\n{body.rstrip()}")
    return "\n".join(docs) + "\n"


# ---------------------------------------------------------------------- chat


def stats_reply(report: Report, top: int = 5) -> Reply:
    """The admins' summary in chat: top clusters, helpful share, questions this week."""
    lines = [f"**Questions this week:** {report.questions} "
             f"({report.unsure} declined or unsure)"]
    if report.voted:
        lines.append(f"**Helpful share:** {_pct(report.helpful_share)} of {report.voted} "
                     f"vote{'s' if report.voted != 1 else ''}")
    else:
        lines.append("**Helpful share:** no votes yet")
    if report.clusters:
        lines += ["", "**Most asked of what I could not answer well:**"]
        for n, c in enumerate(report.clusters[:top], 1):
            where = f"nearest topic: {c.topic}" if c.topic else "no nearest topic"
            what = f"“{quote(c.label)}”" if c.questions else "questions (text not recorded)"
            lines.append(f"{n}. {c.count} × {what} ({where})")
        lines += ["", "For new example questions to add, run `careerbot report --suggest`."]
    return Reply(title="careerbot stats: the last 7 days", text="\n".join(lines),
                 kind="notice")
