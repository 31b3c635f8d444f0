"""The shipped knowledge base loads, and covers every topic and role of the label set."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EVAL

from bot.core import load_knowledge

sys.path.insert(0, str(EVAL))
from fingerprint import digest, figure_value, figures, fingerprint, runs  # noqa: E402

CONTRACT = yaml.safe_load((EVAL / "topics.yaml").read_text(encoding="utf-8"))
LABELS = CONTRACT["topics"]
FINGERPRINT = json.loads((EVAL / "seed_fingerprint.json").read_text(encoding="utf-8"))
SMALL_TALK = {"greeting", "thanks", "help"}
TOPIC_IDS = sorted(load_knowledge().topics)  # the shipped topics, in the contract or not


def test_the_contract_names_the_three_roles():
    assert set(CONTRACT["roles"]) == {"data_scientist", "ml_engineer", "both"}


def test_the_handover_check_passes_on_copies_and_names_what_drifted(tmp_path):
    """eval/handover.py compares eval/ with a handed-over folder (the team's machines
    run it; a clone needs no such folder). Here the folder is built from eval/ itself."""
    from handover import drift

    (tmp_path / "eval").mkdir()
    (tmp_path / "topics.yaml").write_bytes((EVAL / "topics.yaml").read_bytes())
    (tmp_path / "eval" / "dev.jsonl").write_bytes((EVAL / "dev.jsonl").read_bytes())
    assert drift(tmp_path) == []
    (tmp_path / "eval" / "dev.jsonl").write_text("{}\n", encoding="utf-8")
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "000.txt").write_text("not the article " * 20, encoding="utf-8")
    found = drift(tmp_path)
    assert len(found) == 2 and "dev.jsonl" in found[0] and "make fingerprint" in found[1]


def test_every_contract_topic_has_a_file_with_exactly_its_roles(knowledge):
    """Every topic of the contract is shipped; a topic added to knowledge/ before it
    joins the contract is not an error (knowledge/README.md says how it joins)."""
    assert set(LABELS) <= set(knowledge.topics)
    for topic_id, spec in LABELS.items():
        assert set(knowledge.topics[topic_id].answers) == set(spec["roles"]), topic_id


@pytest.mark.parametrize("topic_id", TOPIC_IDS)
def test_topic_cites_existing_articles_and_offers_follow_ups(knowledge, topic_id):
    topic = knowledge.topics[topic_id]
    if topic_id not in SMALL_TALK:
        assert topic.sources, "answers must cite their article"
        sources = yaml.safe_load((knowledge.directory / "sources.yaml").read_text())
        for sid in topic.sources:
            assert sources[sid]["file"] in FINGERPRINT["files"], sid
    assert len(topic.examples) >= 8
    assert topic.follow_ups


def test_every_answer_has_a_short_answer_of_its_own(knowledge):
    """Each role's answer opens with one or two sentences of its own, not its first line."""
    for topic in knowledge.topics.values():
        assert set(topic.short) == set(topic.answers), topic.id
        for role, short in topic.short.items():
            assert not topic.answers[role].startswith(short), (topic.id, role)


def test_answers_are_written_in_our_own_words(knowledge):
    """No run of 12 words is copied from an article (figures and names carry over);
    the articles' runs are known by their hashes (eval/seed_fingerprint.json)."""
    article_runs = set(FINGERPRINT["runs"])
    assert FINGERPRINT["run_words"] == 12 and len(article_runs) > 10_000
    copied = {
        (topic.id, field, role): run
        for topic in knowledge.topics.values()
        for field, texts in (("answers", topic.answers), ("short", topic.short))
        for role, text in texts.items()
        for run in runs(text) if digest(run) in article_runs
    }
    assert not copied


def test_the_fingerprint_catches_a_copied_sentence(tmp_path):
    """The check above can fail: a run of 12 words taken from an article is found."""
    article = tmp_path / "a.txt"
    article.write_text("Ours: the quick brown fox jumps over the lazy dog and then runs "
                       "far away home.", encoding="utf-8")
    marks = fingerprint(tmp_path)
    answer = "As one article says, the quick brown fox jumps over the lazy dog and then runs"
    assert any(digest(r) in marks["runs"] for r in runs(answer))
    assert not any(digest(r) in marks["runs"] for r in runs("a sentence of our own " * 3))


#: how answers may name an article that its id's word starts ("Bluebird's FAQ" is a name,
#: "bluebird's FAQ" an id); every other use of an id as a word is internal jargon
READER_NAMES = ("Bluebird", "Novus Tech World", "Clarifying the Critical Roles")


def _shown_text(knowledge) -> dict[str, str]:
    """Everything a reader sees of each topic: answers and every comparison label and cell."""
    shown = {}
    for topic in knowledge.topics.values():
        for role, text in topic.answers.items():
            shown[f"{topic.id}.answers.{role}"] = text
        for role, text in topic.short.items():
            shown[f"{topic.id}.short.{role}"] = text
        for i, row in enumerate(topic.comparison.rows if topic.comparison else ()):
            shown[f"{topic.id}.comparison.rows[{i}]"] = " | ".join(
                (row.label, row.data_scientist, row.ml_engineer))
    return shown


def test_answers_name_articles_as_a_reader_would_never_by_id(knowledge):
    """"bluebird singles out" or "(novus)" means nothing to a reader: answers name the
    Bluebird Blog comparison, the Novus Tech World guide, and so on."""
    ids = re.compile(rf"\b({'|'.join(map(re.escape, knowledge.sources))})\b", re.IGNORECASE)
    named = {}
    for where, text in _shown_text(knowledge).items():
        for name in READER_NAMES:
            text = text.replace(name, "")
        if found := ids.findall(text):
            named[where] = found
    assert not named


def test_the_id_check_catches_an_id(knowledge):
    ids = re.compile(rf"\b({'|'.join(map(re.escape, knowledge.sources))})\b", re.IGNORECASE)
    assert ids.search("as the workshop guide says") and ids.search("(novus, main table)")


#: the name an answer credits each article by (knowledge/README.md lists them)
CITED_AS = {"clarifying": "Clarifying the Critical Roles", "bluebird": "Bluebird",
            "mlopsnow": "MLOps Now", "workshop": "AI Solutions wiki",
            "novus": "Novus Tech World"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*•(\"'])")
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[•-])\s+")  # "1." numbers an item: no figure


def _credited(text: str) -> set[str]:
    return {sid for sid, name in CITED_AS.items() if name in text}


def _claims(knowledge) -> list[tuple[str, str, set[str]]]:
    """Every sentence or list item a reader sees, with the articles it rests on: those
    it credits; else those the sentences before it in its paragraph last credited (a
    list after "the guide gives:"); else the topic's sources. A comparison cell rests
    on what it or its row's label credits, else on the topic's sources."""
    claims = []
    for topic in knowledge.topics.values():
        cited = set(topic.sources)
        texts = [(f"answers.{role}", text) for role, text in topic.answers.items()]
        texts += [(f"short.{role}", text) for role, text in topic.short.items()]
        for field, text in texts:
            for p, paragraph in enumerate(text.split("\n\n")):
                credit = cited
                for unit in (u for line in paragraph.split("\n")
                             for u in _SENTENCE_END.split(_LIST_MARK.sub("", line))):
                    credit = _credited(unit) or credit
                    claims.append((f"{topic.id}.{field}[{p}]", unit, credit))
        for i, row in enumerate(topic.comparison.rows if topic.comparison else ()):
            for cell in (row.data_scientist, row.ml_engineer):
                credit = _credited(cell) or _credited(row.label) or cited
                claims.append((f"{topic.id}.comparison.rows[{i}]", cell, credit))
    return claims


def _article_figures(knowledge) -> dict[str, set[str]]:
    """Each source's figures by value, from the fingerprint (the articles need not be here)."""
    sources = yaml.safe_load((knowledge.directory / "sources.yaml").read_text())
    return {sid: {figure_value(f) for f in FINGERPRINT["figures"][entry["file"]]}
            for sid, entry in sources.items()}


def _unsupported(claims, article_figures) -> list[tuple[str, str, str]]:
    """(where, figure, sentence) for each figure no article the sentence rests on gives."""
    return [(where, figure, text) for where, text, credit in claims
            for figure in figures(text)
            if not any(figure_value(figure) in article_figures[sid] for sid in credit)]


def test_every_source_has_the_name_answers_credit_it_by(knowledge):
    assert set(CITED_AS) == set(knowledge.sources)
    assert FINGERPRINT["figures"].keys() == set(FINGERPRINT["files"]), \
        "run: make fingerprint SEEDS=DIR"


def test_each_figure_is_one_its_credited_article_gives(knowledge):
    """$140k in a sentence crediting the Novus Tech World guide must be in that guide
    ($140,000 counts); a figure no credited article gives has moved, or is made up."""
    claims = _claims(knowledge)
    assert sum(bool(figures(text)) for _, text, _ in claims) >= 12
    assert not _unsupported(claims, _article_figures(knowledge))


def test_each_credit_is_one_of_the_topics_sources(knowledge):
    """A sentence crediting an article the topic does not cite has a credit that moved."""
    strays = [(where, sorted(credit - set(knowledge.topics[where.split(".")[0]].sources)))
              for where, _, credit in _claims(knowledge)
              if credit - set(knowledge.topics[where.split(".")[0]].sources)]
    assert not strays


def test_the_figure_check_catches_a_figure_that_moved(knowledge):
    found = _article_figures(knowledge)
    moved = [("salary", "Bluebird puts data scientists at $120k–$170k.", {"bluebird"})]
    assert [f for _, f, _ in _unsupported(moved, found)] == ["$120k", "$170k"]
    kept = [("salary", "The Novus Tech World guide says $120K–$170,000.", {"novus"})]
    assert not _unsupported(kept, found)
    [(_, unit, credit), *rest] = [c for c in _claims(knowledge) if "Its FAQ" in c[1]]
    assert credit == {"novus"}  # a list item rests on the sentence that introduced it


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


# Labelled sets that measure generalisation: their lines never become examples
DATA = EVAL.parent / "tests" / "data"
REAL = DATA / "real"
APART = DATA / "apart"  # written apart from the base: diagnose.jsonl is read, heldout.jsonl not
HELD_OUT = [*sorted(EVAL.glob("*.jsonl")), REAL / "heldout.jsonl", APART / "heldout.jsonl"]


def _held_out_texts(paths: list[Path] = HELD_OUT) -> list[str]:
    texts = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            texts += [t["text"] for t in item["turns"]] if "turns" in item else [item["text"]]
    return texts


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", s.lower()).split())


def _examples(knowledge) -> list[str]:
    return ([e for t in knowledge.topics.values() for e in t.examples]
            + [e for g in knowledge.out_of_scope for e in g.examples])


def test_held_out_lines_are_not_copied_into_examples(knowledge):
    """The dev set and the held-out real questions measure generalisation; their lines
    must never become training data. Greetings and thanks are a few words long and
    said the same way by everyone, so only lines of five words or more count."""
    held = {_norm(t) for t in _held_out_texts() if len(t.split()) >= 5}
    assert len(held) > 300
    assert not held & {_norm(e) for e in _examples(knowledge)}


@pytest.mark.parametrize(("paths", "words", "cutoff"), [
    (sorted(EVAL.glob("*.jsonl")), 4, 90),
    # real questions as short as "Who is a data scientist?" are what anyone would write,
    # and "...a data scientist and a data engineer?" is another question than "...and an
    # ML engineer": an exact copy is caught above, a copy a letter or two off here
    ([REAL / "heldout.jsonl"], 8, 95),
    ([APART / "heldout.jsonl", APART / "diagnose.jsonl"], 8, 95),
], ids=["dev set", "real held-out", "written apart"])
def test_no_example_is_a_near_copy_of_a_held_out_line(knowledge, paths, words, cutoff):
    """Not even reworded by a letter or two."""
    from rapidfuzz import fuzz, process, utils

    examples = _examples(knowledge)
    near = []
    for text in _held_out_texts(paths):
        if len(text.split()) < words:
            continue
        hit = process.extractOne(text, examples, scorer=fuzz.ratio,
                                 processor=utils.default_process, score_cutoff=cutoff)
        if hit:
            near.append((text, hit[0]))
    assert not near


def test_the_real_questions_are_split_by_page():
    """No source page gives questions to both the training and the held-out part."""
    pages = {part: {json.loads(line)["url"] for line in
                    (REAL / f"{part}.jsonl").read_text(encoding="utf-8").splitlines()}
             for part in ("train", "heldout")}
    assert len(pages["heldout"]) > 100 and not pages["train"] & pages["heldout"]


@pytest.mark.parametrize("path", [*sorted(EVAL.glob("*.jsonl")), *sorted(DATA.glob("*.jsonl")),
                                  *sorted(REAL.glob("*.jsonl")), *sorted(APART.glob("*.jsonl"))],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_label_is_one_the_contract_allows(path):
    """A topic of `roles: [both]` is labelled both, whichever role a question names: a
    label the contract rules out counts a right answer as a miss."""
    wrong = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        item = json.loads(line) if line.strip() else {}
        for turn in item.get("turns", [item]):
            topic = turn.get("topic")
            if topic in LABELS and turn.get("role") not in LABELS[topic]["roles"]:
                wrong.append((n, topic, turn.get("role")))
    assert not wrong


def test_knowledge_readme_documents_the_schema():
    readme = (Path(__file__).resolve().parents[1] / "knowledge" / "README.md").read_text()
    for word in ("examples", "comparison", "follow_ups", "careerbot validate", "reload"):
        assert word in readme
