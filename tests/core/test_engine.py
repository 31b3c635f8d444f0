"""Engine behaviour: follow-ups, comparisons, reload, hostile input, the core's boundary."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import weakref

import pytest

from bot.core import Engine, Query
from bot.core.context import Turn
from bot.store import InProcessStore

# each engine (a fresh one per test) keeps its conversations in a store of its own
_stores: weakref.WeakKeyDictionary[Engine, InProcessStore] = weakref.WeakKeyDictionary()


def ask(engine, text, conversation="c1", store=None):
    """One message in a conversation, through the store as every front end does."""
    store = store or _stores.setdefault(engine, InProcessStore())
    reply = asyncio.run(engine.converse(Query(text=text, conversation=conversation), store))
    return reply.topic if reply.kind in ("answer", "smalltalk") else None, reply.role


def test_follow_up_changes_the_role_and_keeps_the_topic(engine):
    assert ask(engine, "what do data scientists earn?") == ("salary", "data_scientist")
    assert ask(engine, "how about for MLEs") == ("salary", "ml_engineer")


def test_follow_up_changes_the_topic_and_keeps_the_role(engine):
    assert ask(engine, "what does an ML engineer do all week?") == ("day_to_day", "ml_engineer")
    assert ask(engine, "and their tooling?") == ("tools", "ml_engineer")
    assert ask(engine, "pay?") == ("salary", "ml_engineer")


@pytest.mark.parametrize(("first", "second", "want"), [
    # a message that names its own subject stands alone, whatever came before
    ("is ML engineering dying because of chatgpt?", "data engineer vs ml engineer?",
     (None, None)),
    ("what do data scientists earn?", "What is a data scientist?",
     ("role_definition", "data_scientist")),
    # one that leans on the conversation keeps its subject
    ("what do data scientists earn?", "ML engineers?", ("salary", "ml_engineer")),
    ("how do models get deployed?", "is that the ml engineers job?", ("deployment", "both")),
    ("what is exploratory data analysis?", "do data scientists do something like that?",
     ("eda", "both")),
    # ... and "it" is the topic in hand, though alone it reads as another one
    ("tell me about mlops", "who owns it", ("mlops", "both")),
    # ... unless the message names what "it" is by the name of its own topic
    ("what's an ml engineer responsible for?", "so mlops, what is it?", ("mlops", "both")),
    # a fragment unsure on its own is read after the topic in hand
    ("what do data scientists earn?", "at fintech firms?", ("salary", "data_scientist")),
    ("should a startup hire a data scientist or an ml engineer first?",
     "what if we only have a prototype so far?", ("hiring", "both")),
    # ... and one unsure alone that leans on the conversation goes where it comes closest
    ("when should a startup hire its first ML engineer?", "how would that person deploy it?",
     ("deployment", "both")),
    # asking what the bot said is no question about its past
    ("what tools do ML engineers use?", "what did you mean by mlops?", ("mlops", "both")),
    # a follow-up in chat spelling leans as it would spelt out
    ("what do data scientists earn?", "wat abt ml engineers", ("salary", "ml_engineer")),
    ("which languages does a data scientist code in?", "n for ml engineers?",
     ("coding", "ml_engineer")),
    # nothing but asking for more: the answer in hand, for the same role
    ("what tools do ML engineers use?", "why?", ("tools", "ml_engineer")),
    ("what do data scientists earn?", "tell me more", ("salary", "data_scientist")),
    ("what do ML engineers earn?", "can you elaborate?", ("salary", "ml_engineer")),
    ("what do ML engineers earn?", "ok but y tho", ("salary", "ml_engineer")),
    # ... but asking which is a new question
    ("what do ML engineers earn?", "so which should i go for?", ("which_to_choose", "both")),
    # a new subject framed by a participle is still that subject, for the same role
    ("what tools do data scientists use?", "and how much coding is involved?",
     ("coding", "data_scientist")),
    # a role narrowed by an adverb: the topic in hand ("both" is all it answers for)
    ("how does genai change these roles?", "what about for data scientists specifically?",
     ("generative_ai", "both")),
    # "the two" are both roles, not the last one named
    ("who do ML engineers work with?", "how does the handoff between the two work?",
     ("collaboration", "both")),
    # more on the subject in hand, naming no role, is still about the role in hand
    ("I'm an ML engineer, how do I become a data scientist?",
     "is it easier if I'm early in my career?", ("crossover", "data_scientist")),
    # asking what a role is names the subject, however it is led in and out
    ("what is machine learning?", "ok so what's an ML engineer then?",
     ("role_definition", "ml_engineer")),
    # ... while naming the role alone asks the answer in hand for it
    ("what is machine learning?", "and for ML engineers?", ("what_is_ml", "both")),
    # a longer message pointing back ("it") is on a subject of its own, for the role in hand
    ("what does the career ladder look like for ML engineers?", "does it pay well at the top?",
     ("salary", "ml_engineer")),
    # two things set side by side, neither of them our roles, are still for the role in hand
    ("What degree do data scientists usually have?", "do most of them have a masters or phd?",
     ("education", "data_scientist")),
    # ... but not one that is about something else
    ("what do data scientists earn?", "and what is the weather like?", (None, None)),
    ("what tools do ML engineers use?", "why do data scientists use python?",
     ("tools", "data_scientist")),
])
def test_context_never_hijacks_a_question_that_stands_alone(engine, first, second, want):
    ask(engine, first)
    assert ask(engine, second) == want


def test_answers_carry_the_short_answer_of_their_role(engine):
    salary = engine.knowledge.topics["salary"]
    reply = engine.answer(Query(text="what do data scientists earn?"))
    assert reply.short == salary.short["data_scientist"] != salary.short["both"]
    assert engine.compare("salary").short == salary.short["both"]
    assert engine.answer(Query(text="how do I bake bread?")).short == ""  # a decline


def test_several_questions_in_one_message_are_answered_one_by_one(engine):
    reply = engine.answer(Query(text=(
        "What does a data scientist earn, and how hard is it to switch to ML engineering "
        "later? Also, which tools should I learn first?")))
    assert reply.title == "Your 3 questions, one by one"
    titles = [line.strip("*") for line in reply.text.splitlines() if line.startswith("**")]
    assert titles == ["Salary and compensation: Data scientist",
                      "Switching between the roles: ML engineer",
                      "Tools and technologies: ML engineer"]
    assert reply.text.count("_Sources: ") == 3 and "$120k" in reply.text
    # each ask's section opens with its short answer, right under its title
    short = engine.knowledge.topics["tools"].short["ml_engineer"]
    assert f"**Tools and technologies: ML engineer**\n{short}\n\n" in reply.text
    # one ask, however many sentences, is one answer
    assert engine.answer(Query(text="I'm a nurse. What do ML engineers earn?")).title == (
        "Salary and compensation: ML engineer")


@pytest.mark.parametrize(("text", "want"), [
    ("what do MLEs earn?", []),
    ("ds? ds? ds?", []),  # one distinct ask
    ("I'm a nurse. What skills do I need? And what do they earn?",
     ["What skills do I need?", "And what do they earn?"]),
    ("what do they earn, and how hard is the switch? Also, which tools first?",
     ["what do they earn", "how hard is the switch?", "Also which tools first?"]),
    ("pay? and for mles? tools? skills? math?", ["pay?", "and for mles?", "tools?"]),  # 3 at most
])
def test_the_asks_of_a_message(text, want):
    from bot.core.matcher import asks

    assert asks(text) == want


def test_a_follow_up_about_both_roles_does_not_inherit_one(engine):
    assert ask(engine, "what do data scientists earn?") == ("salary", "data_scientist")
    assert ask(engine, "which one earns more?") == ("salary", "both")


def test_a_question_that_stands_on_its_own_inherits_nothing(engine):
    assert ask(engine, "what do data scientists earn?") == ("salary", "data_scientist")
    assert ask(engine, "what tools do ML engineers use?") == ("tools", "ml_engineer")
    assert ask(engine, "which one should I pick, ds or mle?") == ("which_to_choose", "both")


def test_the_other_way_round_keeps_the_topic_for_the_other_role(engine):
    assert ask(engine, "how hard is it to go from ds to mle?") == ("crossover", "ml_engineer")
    assert ask(engine, "ok, and vice versa?") == ("crossover", "data_scientist")
    assert ask(engine, "is moving from ml engineering to data science hard?") == (
        "crossover", "data_scientist")
    assert ask(engine, "and going the other way?") == ("crossover", "ml_engineer")
    # ... and "the other one" is the other role, on any topic
    assert ask(engine, "do ML engineers need a degree in computer science?") == (
        "education", "ml_engineer")
    assert ask(engine, "and what about the other one?") == ("education", "data_scientist")


def test_a_short_follow_up_leaning_on_the_topic_in_hand_is_answered(knowledge):
    """Unsure alone, answered in a conversation whose topic it leans on, and only then."""
    from bot.settings import MatchSettings

    strict = Engine(knowledge, settings=MatchSettings(decline_below=0.99, follow_up_below=0.2))
    text = "how much do data scientists make?"  # unsure, and with a rival near
    assert strict.answer(Query(text=text)).kind == "decline"
    best = strict.match(text).best
    assert best is not None and not best.out_of_scope and best.score >= 0.2
    assert not strict.match(text).leads
    followed = strict.answer(Query(text=text), Turn(best.id, "data_scientist"))
    assert (followed.topic, followed.role) == (best.id, "data_scientist")
    elsewhere = next(t for t in knowledge.topics if t != best.id and not
                     knowledge.topics[t].smalltalk)
    assert strict.answer(Query(text=text), Turn(elsewhere, "data_scientist")).kind == "decline"


def test_a_leaning_follow_up_is_answered_though_one_of_its_words_is_no_topics(engine):
    """"and the pay side?": alone, half of it ("side") is no word of salary, and it is
    declined; after another answer it leans on, it is about pay, for that role."""
    text = "and the pay side?"
    assert engine.answer(Query(text=text)).kind == "decline"
    followed = engine.answer(Query(text=text), Turn("tools", "ml_engineer"))
    assert (followed.topic, followed.role) == ("salary", "ml_engineer")


def test_a_follow_up_pointing_back_and_near_no_topic_alone_is_about_the_topic_in_hand(
        engine):
    """"when does it not work?" comes near no topic on its own (so is declined), and
    "it" can only be what was just answered; a pointing message with a subject of its
    own is still declined."""
    text = "when does it not work?"
    alone = engine.match(text)
    assert alone.topic is None and alone.best is not None
    assert alone.best.score < engine.settings.follow_up_below
    assert engine.answer(Query(text=text)).kind == "decline"
    followed = engine.answer(Query(text=text), Turn("overlap", "both"))
    assert (followed.topic, followed.role) == ("overlap", "both")
    assert engine.answer(Query(text="can you write it in rust"),
                         Turn("overlap", "both")).kind == "decline"


def test_conversations_do_not_share_context(engine):
    ask(engine, "what do data scientists earn?", "a")
    assert ask(engine, "how about for MLEs", "b")[0] != "salary"


def test_context_expires(engine):
    now = [0.0]
    store = InProcessStore(context_ttl=60, clock=lambda: now[0])
    ask(engine, "what do data scientists earn?", store=store)
    now[0] = 59
    assert ask(engine, "how about for MLEs", store=store)[0] == "salary"
    now[0] = 59 + 61
    assert ask(engine, "and for data scientists?", store=store)[0] != "salary"


def test_the_engine_itself_keeps_no_conversation(engine):
    """`answer` is pure: the same message gets the same reply unless given a turn."""
    first = engine.answer(Query(text="what do data scientists earn?", conversation="c"))
    alone = engine.answer(Query(text="how about for MLEs", conversation="c"))
    assert alone.topic != "salary"
    followed = engine.answer(Query(text="how about for MLEs"), Turn.of(first))
    assert (followed.topic, followed.role) == ("salary", "ml_engineer")


def test_replies_cite_their_articles_and_offer_follow_ups(engine):
    reply = engine.answer(Query(text="what do data scientists earn?"))
    assert reply.sources and all(s.title for s in reply.sources)
    assert 1 <= len(reply.suggestions) <= 3
    follow = engine.topic_reply(reply.suggestions[0].topic, reply.suggestions[0].role)
    assert follow.topic == reply.suggestions[0].topic


def test_compare_gives_rows_for_both_roles_and_a_picker_when_unknown(engine):
    reply = engine.compare("pay")
    assert reply.topic == "salary" and reply.comparison and reply.comparison.rows
    unknown = engine.compare("vacation days")
    assert unknown.kind == "clarify" and unknown.comparison is None
    assert "salary" in unknown.text and "skills" in unknown.text
    assert engine.compare("skils").kind in ("answer", "clarify")
    assert engine.compare("payy").topic == "salary"  # a letter held down is still pay
    assert "skills" in engine.suggest_aspects("skils")


def test_empty_and_hostile_messages_get_a_polite_reply(engine):
    for text in ("", "   ", "\x00\x01", "<!channel> <!here> @everyone", "💥" * 10_000):
        reply = engine.answer(Query(text=text))
        assert reply.title and reply.text
        assert "@everyone" not in reply.text and "<!channel>" not in reply.text


@pytest.mark.parametrize("text", [
    "sal\u200bary of ML engineers?",          # zero-width space inside a word
    "\ufeffsalary of ML\u2060 engineers?",   # BOM, word joiner
    "sal\u00adary of \u202eML engineers?",   # soft hyphen, a bidi override
])
def test_invisible_characters_are_read_as_nothing(engine, text):
    reply = engine.answer(Query(text=text))
    assert (reply.topic, reply.role) == ("salary", "ml_engineer")


def test_a_message_of_many_questions_scores_a_bounded_few(engine, monkeypatch):
    """("ds? " * 500) is a legal message: it costs the matcher a few questions, not 500."""
    from bot.core.matcher import Matcher

    scored = []
    score = Matcher._score_window
    monkeypatch.setattr(Matcher, "_score_window",
                        lambda self, analysis: scored.append(analysis) or score(self, analysis))
    engine.answer(Query(text=("ds? " * 500)[:2000]))
    assert len(scored) <= 2  # the one distinct question, and the whole message
    scored.clear()
    engine.answer(Query(text=" ".join(f"what is ds {n}?" for n in range(150))[:2000]))
    assert len(scored) <= 8  # four questions at most and the whole, then three asks alone


@pytest.mark.parametrize(("text", "says"), [
    ("¿Cuánto gana un científico de datos?", "I answer questions in English."),
    ("数据科学家的工资是多少", "I answer questions in English."),
    # ... even where one of its words is also an English one ("entre")
    ("qual é a diferença entre cientista de dados e engenheiro de ML?",
     "I answer questions in English."),
    ("mle interview tips?", "The articles don't cover interviews or interview prep."),
    ("what's the average ML engineer salary in germany?", "The articles don't cover "
     "particular countries or cities"),
    ("data analyst vs data scientist?", "I have nothing on “data analyst”. I only know "
     "about data scientists"),
    # a question about the bot's own past, whatever it would otherwise match
    ("did you have a hard time learning kubernetes as an ml engineer?",
     "I can't speak from experience of my own"),
    ("have you ever regretted becoming a data scientist?",
     "I can't speak from experience of my own"),
    ("tell me about a time a pipeline of yours broke in production",
     "I can't speak from experience of my own"),
    ("what's the toughest model you've ever put in production?",
     "I can't speak from experience of my own"),
    ("what was it like for you when you moved from data science to ml engineering?",
     "I can't speak from experience of my own"),
    # a subject no topic mentions, named as the asker wrote it
    ("is a master's degree worth it in Norway?",
     "The articles I answer from say nothing about “Norway”."),
])
def test_a_decline_says_which_case_it_is(engine, text, says):
    reply = engine.answer(Query(text=text))
    assert reply.kind == "decline" and reply.text.startswith(says)


def test_a_follow_up_about_the_bots_own_story_is_declined(engine):
    """"was it like that for you?" points back at the answer, but asks what no article
    says: the bot's own past."""
    assert ask(engine, "what does a data scientist do all day?") == ("day_to_day",
                                                                      "data_scientist")
    assert ask(engine, "was it like that for you too?") == (None, None)
    assert ask(engine, "why?") == ("day_to_day", "data_scientist")


def test_an_unclear_question_is_offered_its_closest_answers(engine):
    reply = engine.answer(Query(text="what do ds make"))
    assert reply.kind == "decline" and "Did you mean one of these?" in reply.text
    assert reply.suggestions[0].topic == "salary"
    # another role beside one of ours: what ours needs comes first
    other = engine.answer(Query(text="data analyst vs data scientist?"))
    assert (other.suggestions[0].topic, other.suggestions[0].role) == (
        "skills", "data_scientist")


def test_a_huge_compare_aspect_is_read_only_so_far(engine, monkeypatch):
    from bot.core.engine import MAX_ASPECT
    from bot.core.matcher import Matcher

    seen = []
    match = Matcher.match
    monkeypatch.setattr(Matcher, "match", lambda self, text, around="": seen.append(text)
                        or match(self, text, around))
    reply = engine.compare("z" * 100_000)
    assert reply.kind == "clarify" and all(len(text) <= MAX_ASPECT for text in seen)


def test_numbers_in_a_question_say_little(engine):
    assert {engine.answer(Query(text=f"salary question {n}?")).topic
            for n in range(20)} == {"salary"}


def test_reload_reports_what_changed(engine, knowledge_copy):
    path = knowledge_copy / "topics" / "salary.yaml"
    path.write_text(path.read_text().replace("Salary and compensation", "Pay and perks"))
    report = engine.reload(knowledge_copy)
    assert report.ok and report.changed == ("salary",)
    assert "salary" in report.summary()
    assert engine.answer(Query(text="ds salary?")).title.startswith("Pay and perks")


def test_a_broken_reload_keeps_the_old_knowledge_serving(engine, knowledge_copy):
    before = engine.version
    (knowledge_copy / "topics" / "salary.yaml").write_text("id: [\n")
    (knowledge_copy / "topics" / "tools.yaml").write_text("id: tools\n")
    report = engine.reload(knowledge_copy)
    assert not report.ok and engine.version == before
    assert {p.file for p in report.problems} >= {"topics/salary.yaml", "topics/tools.yaml"}
    assert "still serving" in report.summary()
    assert engine.answer(Query(text="ds salary?")).topic == "salary"


def test_reload_is_atomic_under_concurrent_answers(engine, knowledge_copy):
    """Answers keep flowing during reloads; each sees a whole knowledge base."""
    path = knowledge_copy / "topics" / "salary.yaml"
    path.write_text(path.read_text().replace("Salary and compensation", "Pay and perks"))
    errors: list[BaseException] = []
    titles: set[str] = set()
    stop = threading.Event()

    def answer_loop() -> None:
        try:
            for _ in range(400):
                if stop.is_set():
                    break
                titles.add(engine.answer(Query(text="ds salary?")).title.split(":")[0])
        except BaseException as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=answer_loop) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(6):
        assert engine.reload(knowledge_copy if i % 2 == 0 else None).ok
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert titles <= {"Salary and compensation", "Pay and perks"}


def test_the_core_never_imports_a_platform_sdk():
    code = ("import sys, bot.core, bot.cli, bot.store; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('slack_bolt', 'slack_sdk', 'discord', 'aiohttp', 'redis', 'prometheus_client')]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
