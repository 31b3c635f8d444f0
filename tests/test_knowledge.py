"""The shipped knowledge base loads, and covers every topic and role of the label set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import SHARED

LABELS = yaml.safe_load((SHARED / "topics.yaml").read_text())["topics"]
SEEDS = SHARED / "seeds"


def test_every_labelled_topic_has_a_file_with_exactly_its_roles(knowledge):
    assert set(knowledge.topics) == set(LABELS)
    for topic_id, spec in LABELS.items():
        assert set(knowledge.topics[topic_id].answers) == set(spec["roles"]), topic_id


@pytest.mark.parametrize("topic_id", sorted(LABELS))
def test_topic_cites_existing_articles_and_offers_follow_ups(knowledge, topic_id):
    topic = knowledge.topics[topic_id]
    if topic_id not in {"greeting", "thanks", "help"}:
        assert topic.sources, "answers must cite their article"
        for sid in topic.sources:
            file = yaml.safe_load((knowledge.directory / "sources.yaml").read_text())[sid]["file"]
            assert (SEEDS / file).is_file()
    assert len(topic.examples) >= 8
    assert topic.follow_ups


def _sentences(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9$]+", text.lower())
    return {" ".join(words[i:i + 12]) for i in range(len(words) - 11)}


def test_answers_are_written_in_our_own_words(knowledge):
    """No run of 12 words is copied from an article (figures and names carry over)."""
    article_runs: set[str] = set()
    for path in SEEDS.glob("*.txt"):
        article_runs |= _sentences(path.read_text(encoding="utf-8"))
    copied = {
        (topic.id, role): run
        for topic in knowledge.topics.values()
        for role, text in topic.answers.items()
        for run in _sentences(text) & article_runs
    }
    assert not copied


def test_salary_answer_shows_both_articles_figures(knowledge):
    both = knowledge.topics["salary"].answers["both"]
    for figure in ("$120k", "$170k", "$140k", "$200k", "$110k", "$160k", "$180k"):
        assert figure in both


def test_comparisons_have_both_roles_on_every_row(knowledge):
    aspects = [t.comparison for t in knowledge.topics.values() if t.comparison]
    assert len(aspects) >= 8
    for comparison in aspects:
        for row in comparison.rows:
            assert row.label and row.data_scientist and row.ml_engineer


def test_dev_set_lines_are_not_copied_into_examples(knowledge):
    """The dev set measures generalisation; its lines must never become training data.

    Greetings and thanks are a few words long and said the same way by everyone,
    so only lines of five words or more count.
    """
    def norm(s: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9]+", " ", s.lower()).split())

    dev = set()
    for path in (SHARED / "eval").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            item = yaml.safe_load(line)
            texts = [t["text"] for t in item["turns"]] if "turns" in item else [item["text"]]
            dev |= {norm(t) for t in texts if len(t.split()) >= 5}
    examples = {norm(e) for t in knowledge.topics.values() for e in t.examples}
    examples |= {norm(e) for g in knowledge.out_of_scope for e in g.examples}
    assert not dev & examples


def test_no_example_is_a_near_copy_of_a_dev_line(knowledge):
    """Not even reworded by a letter or two: rapidfuzz ratio under 90 for lines of 4+ words."""
    from rapidfuzz import fuzz, process, utils

    examples = [e for t in knowledge.topics.values() for e in t.examples]
    examples += [e for g in knowledge.out_of_scope for e in g.examples]
    near = []
    for path in (SHARED / "eval").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            item = yaml.safe_load(line)
            for text in [t["text"] for t in item["turns"]] if "turns" in item else [item["text"]]:
                if len(text.split()) < 4:
                    continue
                hit = process.extractOne(text, examples, scorer=fuzz.ratio,
                                         processor=utils.default_process, score_cutoff=90)
                if hit:
                    near.append((text, hit[0]))
    assert not near


def test_knowledge_readme_documents_the_schema():
    readme = (Path(__file__).resolve().parents[1] / "knowledge" / "README.md").read_text()
    for word in ("examples", "comparison", "follow_ups", "careerbot validate", "reload"):
        assert word in readme
