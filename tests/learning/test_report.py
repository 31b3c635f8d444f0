"""Clustering, the report in its three formats, --suggest, and `careerbot report` itself."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.core import Knowledge
from bot.learning import (
    QuestionRecord,
    Report,
    SQLiteStorage,
    Storage,
    VoteRecord,
    build_report,
    cluster,
    parse_since,
    render_csv,
    render_json,
    render_table,
    suggest,
)
from bot.learning._clusters import reduce
from tests.learning.helpers import as_records, declined_set

NOW = time.time()
DAY = 86400.0


# ---------------------------------------------------------------------- clustering


@pytest.mark.parametrize("text, reduced", [
    ("Do MLEs need LeetCode?", "leetcod"),
    ("do machine learning engineers really need leetcode", "leetcod"),
    ("is a data science bootcamp worth it", "bootcamp worth"),
    ("can ML engineers work from home", "remot"),
    ("are data scientists' jobs remote-friendly", "job remot friend"),
    ("what's the weather today", "weather today"),
])
def test_reduce_keeps_the_words_that_carry_the_subject(text: str, reduced: str) -> None:
    assert reduce(text) == reduced


def test_realistic_declined_questions_cluster_by_intent() -> None:
    rows = declined_set()
    groups = cluster([r["text"] for r in rows])
    intents = [Counter(rows[i]["intent"] for i in g) for g in groups]

    assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)
    assert sorted(i for g in groups for i in g) == list(range(len(rows)))
    # each cluster of three or more is (nearly) one intent ...
    for counts in intents:
        if sum(counts.values()) >= 3:
            assert counts.most_common(1)[0][1] / sum(counts.values()) >= 0.75, counts
    # ... and each real intent mostly lands in one cluster (burnout is asked in two
    # unlike wordings, "stressful" and "work-life balance": two clusters are right there)
    sizes = Counter(r["intent"] for r in rows)
    coverage = {intent: max(counts[intent] for counts in intents) / size
                for intent, size in sizes.items() if intent != "noise"}
    assert min(coverage.values()) >= 0.5, coverage
    assert sum(coverage.values()) / len(coverage) >= 0.8, coverage
    # the one-off, off-topic messages do not form clusters of their own
    assert all(counts["noise"] <= 1 for counts in intents)
    assert intents[0] == Counter({"leetcode": 11})  # the largest: "do MLEs need leetcode"


def test_identical_questions_count_fully_and_ties_keep_their_order() -> None:
    texts = ["remote ds jobs?", "kaggle worth it?", "Remote DS jobs", "remote ds jobs?"]
    assert cluster(texts) == [[0, 2, 3], [1]]
    assert cluster([]) == []


# ---------------------------------------------------------------------- the report


def realistic_report() -> tuple[Report, list[dict[str, object]]]:
    rows = declined_set()
    answered = [QuestionRecord(NOW - i * 3600, "discord", "answer", None, "salary", 0.8)
                for i in range(30)]
    votes = ([VoteRecord(NOW - i * 600, "slack", "salary", "ml_engineer", i % 4 != 0)
              for i in range(8)]
             + [VoteRecord(NOW - 300, "discord", "tools", "both", False)]
             + [VoteRecord(NOW - 20 * DAY, "slack", "tools", "both", True)])  # too old
    report = build_report(as_records(rows, NOW) + answered, votes, since=NOW - 7 * DAY,
                          until=NOW)
    return report, rows  # type: ignore[return-value]


def test_report_counts_clusters_votes_and_days() -> None:
    report, rows = realistic_report()
    assert (report.questions, report.unsure) == (len(rows) + 30, len(rows))
    assert [c.count for c in report.clusters] == sorted(
        (c.count for c in report.clusters), reverse=True)
    top = report.clusters[0]
    assert top.count == 11 and "leetcode" in top.label.lower()
    assert len(top.examples) == 3 and len(set(top.examples)) == 3
    assert (top.topic, top.declined_as) == ("coding", "interviews")
    assert top.agreement == 1.0 and 0.19 < top.score < 0.25

    salary, tools = report.votes
    assert (salary.topic, salary.helpful, salary.not_helpful, salary.share) == (
        "salary", 6, 2, 0.75)
    assert (tools.topic, tools.total, tools.share) == ("tools", 1, 0.0)
    assert (report.voted, report.helpful) == (9, 6)

    assert sum(d.questions for d in report.days) == report.questions
    assert sum(d.unsure for d in report.days) == report.unsure
    assert [d.date for d in report.days] == sorted(d.date for d in report.days)


def test_unsure_questions_without_text_are_grouped_by_nearest_topic() -> None:
    records = ([QuestionRecord(NOW - 60, "slack", "decline", None, "salary", 0.2,
                               "low_confidence")] * 3
               + [QuestionRecord(NOW - 60, "slack", "decline", None, None, 0.0, "too_long")])
    report = build_report(records, [], since=NOW - DAY, until=NOW)
    assert [(c.count, c.topic, c.questions) for c in report.clusters] == [
        (3, "salary", ()), (1, None, ())]
    assert "3 questions (text not recorded) were declined; nearest topic: salary" in (
        render_table(report))


def test_table_reads_like_the_issue_asks() -> None:
    report, _ = realistic_report()
    table = render_table(report)
    assert table.startswith("careerbot report: ")
    assert f"{report.questions} questions; {report.unsure} declined or unsure" in table
    assert "11 questions like “" in table
    assert "were declined (as interviews); nearest topic: coding (0.2" in table
    assert "salary        6            2            75%" in table
    assert "Questions per day:" in table


def test_json_has_everything() -> None:
    report, _ = realistic_report()
    data = json.loads(render_json(report))
    assert data["questions"] == report.questions
    first = data["clusters"][0]
    assert first["count"] == 11 and len(first["examples"]) == 3
    assert first["nearest_topic"] == "coding" and first["declined_as"] == "interviews"
    assert data["votes"][0] == {"topic": "salary", "helpful": 6, "not_helpful": 2,
                                "helpful_share": 0.75}
    assert data["helpful_share"] == round(6 / 9, 3)
    assert sum(d["questions"] for d in data["per_day"]) == report.questions
    assert data["since"] < data["until"]


def test_csv_is_one_table_with_a_section_column() -> None:
    report, _ = realistic_report()
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    sections = Counter(r["section"] for r in rows)
    assert sections == {"cluster": len(report.clusters), "votes": 2, "day": len(report.days)}
    first = rows[0]
    assert (first["count"], first["nearest_topic"], first["declined_as"]) == (
        "11", "coding", "interviews")
    assert len(first["examples"].split(" | ")) == 3
    salary = next(r for r in rows if r["section"] == "votes")
    assert (salary["name"], salary["helpful"], salary["helpful_share"]) == ("salary", "6", "0.75")


@pytest.mark.parametrize("since, seconds", [
    ("7d", 7 * DAY), ("24h", DAY), ("2w", 14 * DAY), ("30m", 1800), ("1.5d", 1.5 * DAY),
])
def test_since_takes_an_age(since: str, seconds: float) -> None:
    assert parse_since(since, NOW) == NOW - seconds


def test_since_takes_a_date_and_refuses_nonsense() -> None:
    assert parse_since("2024-05-01", NOW) == 1714521600.0
    with pytest.raises(ValueError, match="7d, 24h or 2w"):
        parse_since("last week", NOW)


# ---------------------------------------------------------------------- --suggest


def test_suggest_is_yaml_for_topic_files_that_fit(knowledge: Knowledge) -> None:
    report, _ = realistic_report()
    text = suggest(report, knowledge)
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert docs and all(set(d) == {"examples"} for d in docs)
    files = [line.split(":")[0].removeprefix("# ") for line in text.splitlines()
             if line.startswith("# knowledge/topics/")]
    assert len(files) == len(docs)
    by_file = dict(zip(files, (d["examples"] for d in docs), strict=True))
    for name in files:
        assert (knowledge.directory / "topics" / Path(name).name).is_file()

    tools = by_file["knowledge/topics/tools.yaml"]
    assert "do data scientists need to know docker" in tools and len(tools) == 6
    assert any("portfolio" in q for q in by_file["knowledge/topics/project_types.yaml"])
    assert any("dashboards" in q for q in by_file["knowledge/topics/eda.yaml"])
    suggested = [q for d in docs for q in d["examples"]]
    assert not any("leetcode" in q.lower() for q in suggested)  # declined on purpose ...
    assert "declined on purpose (out_of_scope.yaml, group interviews)" in text  # ... and said
    assert not any(q in {"what's the weather today", "mle interview tips?"} for q in suggested)
    assert len(suggested) == len(set(suggested))


def test_suggest_never_repeats_what_the_knowledge_has(knowledge: Knowledge) -> None:
    known = knowledge.topics["tools"].examples[:2]
    records = [QuestionRecord(NOW - 60, "slack", "low", q, "tools", 0.35)
               for q in [*known, *["do data scientists really use docker"] * 3, *known]]
    text = suggest(build_report(records, [], since=NOW - DAY, until=NOW), knowledge)
    [doc] = [d for d in yaml.safe_load_all(text) if d]
    assert doc == {"examples": ["do data scientists really use docker"]}


def test_suggest_quotes_what_yaml_would_misread(knowledge: Knowledge) -> None:
    tricky = ["docker: needed for ds?", "#docker for ds work", "- is docker for ds a must",
              "docker for ds? yes", "'docker' for ds teams", "docker for ds"]
    records = [QuestionRecord(NOW - 60, "slack", "low", q, "tools", 0.35) for q in tricky]
    text = suggest(build_report(records, [], since=NOW - DAY, until=NOW), knowledge)
    suggested = [q for d in yaml.safe_load_all(text) if d for q in d["examples"]]
    assert sorted(suggested) == sorted(tricky)


def test_nothing_to_suggest_is_still_yaml(knowledge: Knowledge) -> None:
    text = suggest(build_report([], [], since=NOW - DAY, until=NOW), knowledge)
    assert "Nothing to suggest" in text
    assert [d for d in yaml.safe_load_all(text) if d is not None] == []


# ---------------------------------------------------------------------- careerbot report


@pytest.fixture
async def seeded(new_storage: Callable[[], Storage], monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> None:
    """The realistic set in this test's storage, and the environment that points at it."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    for name in ("REDIS_URL", "CAREERBOT_LEARNING_DB", "CAREERBOT_KNOWLEDGE_DIR"):
        monkeypatch.delenv(name, raising=False)
    storage = new_storage()
    if isinstance(storage, SQLiteStorage):
        monkeypatch.setenv("CAREERBOT_LEARNING_DB", str(storage.path))
    else:
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
        monkeypatch.setattr("bot.learning._command.RedisStorage",
                            lambda url: new_storage())  # with this test's key prefix
    await storage.open()
    await storage.write(as_records(declined_set(), NOW),
                        [VoteRecord(NOW - 60, "slack", "salary", "both", True)], {})
    await storage.close()


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_careerbot_report_prints_each_format(seeded: None, fmt: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "7d", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        assert json.loads(out)["clusters"][0]["count"] == 11
    elif fmt == "csv":
        assert next(csv.DictReader(io.StringIO(out)))["count"] == "11"
    else:
        assert "11 questions like “" in out


def test_careerbot_report_suggest(seeded: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--suggest"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert any("do data scientists need to know docker" in d["examples"] for d in docs)


def test_careerbot_report_since_narrows(seeded: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "2h", "--format", "json"]) == 0
    narrow = json.loads(capsys.readouterr().out)
    assert 0 < narrow["questions"] < len(declined_set())


def test_report_before_anything_was_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("CAREERBOT_LEARNING_DB", str(tmp_path / "data" / "learning.sqlite3"))
    assert main(["report", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["questions"] == 0
    assert "nothing recorded yet" in captured.err
    assert not (tmp_path / "data").exists()


def test_report_with_a_bad_since_or_unreachable_redis(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--since", "yesterday-ish"]) == 2
    assert "--since takes" in capsys.readouterr().err
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    assert main(["report"]) == 1
    err = capsys.readouterr().err
    assert "cannot read the learning records from Redis at 127.0.0.1:1/0" in err
    assert "hunter2" not in err and "Traceback" not in err
