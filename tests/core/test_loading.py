"""Broken knowledge is reported whole: every problem, with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.core import KnowledgeError, load_knowledge


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def problems_of(directory: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(directory)
    return [(p.file, p.field, p.why) for p in info.value.problems]


def has(problems, file: str, field: str, why: str) -> bool:
    return any(f == file and fld == field and why in w for f, fld, w in problems)


def test_the_shipped_knowledge_loads(knowledge):
    assert len(knowledge.topics) >= 30
    assert len(knowledge.version) == 12


def test_invalid_yaml_names_the_file_and_line(knowledge_copy):
    (knowledge_copy / "topics" / "salary.yaml").write_text("id: salary\nanswers: [unclosed\n")
    problems = problems_of(knowledge_copy)
    assert any(f == "topics/salary.yaml" and "line" in why for f, _, why in problems)


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (lambda d: d.pop("title"), "title", "is missing"),
        (lambda d: d.update(id="pay"), "id", "must match the file name"),
        (lambda d: d["answers"].update(data_scientist=""), "answers.data_scientist",
         "non-empty"),
        (lambda d: d["answers"].update(analyst="x"), "answers.analyst", "unknown role"),
        (lambda d: d.update(sources=["nature"]), "sources[0]", "unknown source"),
        (lambda d: d.update(follow_ups=["interviews"]), "follow_ups[0]", "unknown topic"),
        (lambda d: d.update(examples=["pay?"]), "examples", "at least 8"),
        (lambda d: d["comparison"]["rows"][0].pop("ml_engineer"),
         "comparison.rows[0].ml_engineer", "is missing"),
        (lambda d: d.update(embed={"color": 1}), "embed", "platform-specific"),
        (lambda d: d.update(colour="red"), "colour", "unknown field"),
        (lambda d: d.pop("short"), "short", "is missing"),
        (lambda d: d["short"].pop("ml_engineer"), "short.ml_engineer", "is missing"),
        (lambda d: d["short"].update(both=42), "short.both", "must be text"),
        (lambda d: d["short"].update(both="One. Two. Three."), "short.both", "3 sentences"),
        (lambda d: d["short"].update(both="Pay " * 80), "short.both", "at most 300"),
        (lambda d: d["short"].update(both="ML engineers earn **more**."), "short.both",
         "plain text"),
        (lambda d: d["short"].update(analyst="x"), "short.analyst", "has no answer"),
    ],
)
def test_each_kind_of_error_names_file_and_field(knowledge_copy, change, field, why):
    edit(knowledge_copy / "topics" / "salary.yaml", change)
    assert has(problems_of(knowledge_copy), "topics/salary.yaml", field, why)


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["synonyms"].update({"and": ["n", "&"]}), "synonyms.and[1]"),
    (lambda d: d["synonyms"].update({"!!": ["wow"]}), "synonyms.!!"),
    (lambda d: d["stopwords"].insert(0, "..."), "stopwords[0]"),
    (lambda d: d["other_roles"].insert(0, "—"), "other_roles[0]"),
])
def test_a_name_with_nothing_to_match_is_a_problem_not_a_crash(knowledge_copy, change, field):
    """A synonym, stopword or role name of only punctuation would match nothing (and once
    built an empty phrase the matcher could not index)."""
    edit(knowledge_copy / "synonyms.yaml", change)
    assert has(problems_of(knowledge_copy), "synonyms.yaml", field, "no letters or digits")


@pytest.mark.parametrize("url", [
    "bluebirdinternational.com/machine-learning-engineer-vs-data-scientist/",  # no scheme
    "ftp://example.com/article",
    "javascript:alert(1)",
    "https://",
    "https://example.com/a b",
    "https://example.com/a|b",
    "https://example.com/<b>",
    42,
    "",
])
def test_a_source_url_that_is_not_http_names_the_file_and_field(knowledge_copy, url):
    edit(knowledge_copy / "sources.yaml", lambda d: d["bluebird"].update(url=url))
    assert has(problems_of(knowledge_copy), "sources.yaml", "bluebird.url",
               "must be an http(s) URL")


def test_a_short_answer_of_two_sentences_is_loaded_on_one_line(knowledge_copy):
    edit(knowledge_copy / "topics" / "salary.yaml",
         lambda d: d["short"].update(both="ML engineers earn a bit more.\nBoth pay well!"))
    topic = load_knowledge(knowledge_copy).topics["salary"]
    assert topic.short["both"] == "ML engineers earn a bit more. Both pay well!"


def test_a_missing_short_answer_is_reported_with_its_line(knowledge_copy):
    edit(knowledge_copy / "topics" / "tools.yaml", lambda d: d["short"].pop("data_scientist"))
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(knowledge_copy)
    [problem] = [p for p in info.value.problems if p.file == "topics/tools.yaml"]
    assert (problem.field, problem.why) == ("short.data_scientist", "is missing")
    assert "topics/tools.yaml: short.data_scientist: is missing" in str(problem)


def test_source_urls_are_optional_and_loaded(knowledge_copy):
    edit(knowledge_copy / "sources.yaml", lambda d: d["bluebird"].pop("url"))
    edit(knowledge_copy / "sources.yaml",
         lambda d: d["novus"].update(url="HTTPS://Example.com/guide?x=1#faq"))
    sources = load_knowledge(knowledge_copy).sources
    assert sources["bluebird"].url == ""
    assert sources["novus"].url == "HTTPS://Example.com/guide?x=1#faq"


def test_the_shipped_sources_carry_a_title_an_author_and_where_shown_a_url(knowledge):
    for source in knowledge.sources.values():
        assert source.title and source.by, source.id
        assert "guide with" not in source.title  # a title, not a description of one
    assert knowledge.sources["bluebird"].url.startswith("https://bluebirdinternational.com/")


def test_an_example_under_two_topics_is_flagged(knowledge_copy):
    shared = "what do these people actually do all week long"
    edit(knowledge_copy / "topics" / "salary.yaml", lambda d: d["examples"].append(shared))
    edit(knowledge_copy / "topics" / "tools.yaml", lambda d: d["examples"].append(shared))
    problems = problems_of(knowledge_copy)
    assert any("also an example of topic" in why for _, _, why in problems)


def test_every_problem_is_listed_at_once(knowledge_copy):
    edit(knowledge_copy / "topics" / "salary.yaml", lambda d: d.pop("title"))
    edit(knowledge_copy / "topics" / "tools.yaml", lambda d: d.update(sources=["nope"]))
    (knowledge_copy / "synonyms.yaml").write_text("roles: 3\n")
    problems = problems_of(knowledge_copy)
    files = {f for f, _, _ in problems}
    assert {"topics/salary.yaml", "topics/tools.yaml", "synonyms.yaml"} <= files


def test_missing_directory_is_a_clear_error(tmp_path):
    problems = problems_of(tmp_path / "nowhere")
    assert problems[0][2] == "does not exist"


def test_hard_wrapped_answers_become_paragraphs_and_keep_their_lists(knowledge_copy):
    def wrap(d):
        d["answers"]["both"] = "One line\nwrapped here.\n\nA list:\n• first\n  item\n• second\n"
    edit(knowledge_copy / "topics" / "salary.yaml", wrap)
    text = load_knowledge(knowledge_copy).topics["salary"].answers["both"]
    assert text == "One line wrapped here.\n\nA list:\n• first item\n• second"


def test_validate_says_where_and_what_it_meant(knowledge_copy):
    """A problem carries its line; an unknown id gets a 'did you mean'; a wrong type says
    which; and one broken file is one problem, not one more per file that names it."""
    tools = knowledge_copy / "topics" / "tools.yaml"
    tools.write_text(tools.read_text().replace("follow_ups: [", "follow_ups: [skils, ", 1))
    salary = knowledge_copy / "topics" / "salary.yaml"
    salary.write_text(salary.read_text().replace("summary:", "summary: 42\nold_summary:", 1))
    (knowledge_copy / "topics" / "coding.yaml").write_text("id: [\n")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(knowledge_copy)
    found = {(p.file, p.field): p for p in info.value.problems}
    skils = found["topics/tools.yaml", "follow_ups[0]"]
    assert "(did you mean 'skills'?)" in skils.why
    assert tools.read_text().splitlines()[skils.line - 1].startswith("follow_ups:")
    summary = found["topics/salary.yaml", "summary"]
    assert summary.why == "must be text, not int" and summary.line == 4
    assert str(summary).endswith("(line 4)")
    # coding.yaml is named as follow-up by other topics: only its own problem is reported
    assert [p.file for p in info.value.problems].count("topics/coding.yaml") == 1
    assert not any("'coding'" in p.why for p in info.value.problems)
