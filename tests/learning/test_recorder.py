"""The recorder, with the shipped knowledge, on a real SQLite file and a real Redis."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.core import Engine, Query, Reply
from bot.learning import (
    QuestionRecord,
    Recorder,
    RedisStorage,
    SQLiteStorage,
    Storage,
    keyed_hash,
)
from bot.settings import LearningSettings
from tests.learning.helpers import everything_stored

DAY = 86400.0
USER, CHANNEL = "U0SECRETUSER", "C0SECRETCHAN"


def ask(engine: Engine, recorder: Recorder, text: str, *, platform: str = "slack",
        user: str = USER, channel: str = CHANNEL) -> Reply:
    """What an adapter does: answer, (send,) then hand the recorder the question."""
    reply = engine.answer(Query(text, user=user, platform=platform))
    recorder.question(reply, text=text, platform=platform, user=user, channel=channel)
    return reply


def answer(topic: str, confidence: float, role: str = "both") -> Reply:
    return Reply(title=topic, text="...", kind="answer", topic=topic, role=role,  # type: ignore[arg-type]
                 confidence=confidence)


async def stored(recorder: Recorder) -> list[QuestionRecord]:
    await recorder.flush()
    assert recorder.storage is not None
    return await recorder.storage.questions(0)


async def test_declines_keep_text_nearest_topic_and_reason(engine: Engine,
                                                           recorder: Recorder) -> None:
    reply = ask(engine, recorder, "mle interview tips?")
    assert reply.kind == "decline"
    [record] = await stored(recorder)
    assert (record.kind, record.text, record.platform) == (
        "decline", "mle interview tips?", "slack")
    assert record.reason == "interviews"  # the out-of-scope group that won
    assert record.topic in engine.knowledge.topics  # the nearest topic we do have
    assert 0 < record.score < 1  # the nearest topic lost to the out-of-scope group
    assert time.time() - record.at < 60


async def test_confident_answers_are_counted_without_their_text(engine: Engine,
                                                                recorder: Recorder) -> None:
    reply = ask(engine, recorder, "what tools do ml engineers use?")
    assert reply.kind == "answer" and reply.confidence >= 0.4
    [record] = await stored(recorder)
    assert (record.kind, record.text, record.topic) == ("answer", None, "tools")
    assert record.score == reply.confidence and record.reason is None


async def test_unsure_replies_keep_their_text(recorder: Recorder) -> None:
    recorder.question(answer("tools", 0.31), text="docker for ds?", platform="discord")
    recorder.question(Reply(title="Did you mean…?", text="", kind="clarify", confidence=0.34),
                      text="do mles need kubernetes", platform="discord")
    recorder.question(answer("greeting", 1.0), text="", platform="discord")  # nothing asked
    recorder.question(Reply(title="Topics", text="", kind="notice"), text="/topics",
                      platform="discord")  # a command, not a question
    low, clarify = await stored(recorder)
    assert (low.kind, low.text, low.topic, low.score) == ("low", "docker for ds?", "tools", 0.31)
    assert (clarify.kind, clarify.text, clarify.reason) == (
        "clarify", "do mles need kubernetes", None)
    assert clarify.topic is not None


async def test_too_long_messages_are_counted_not_kept(engine: Engine,
                                                      recorder: Recorder) -> None:
    text = "why " * 600
    ask(engine, recorder, text)
    [record] = await stored(recorder)
    assert (record.kind, record.text, record.reason) == ("decline", None, "too_long")


async def test_kept_text_is_cut_and_tidied(recorder: Recorder) -> None:
    recorder.question(answer("tools", 0.2), text="docker\n\n  for   ds?" + " x" * 400,
                      platform="slack")
    [record] = await stored(recorder)
    assert record.text is not None and record.text.startswith("docker for ds? x x")
    assert len(record.text) == 300


async def test_a_vote_names_the_question_that_led_to_it(recorder: Recorder) -> None:
    recorder.question(answer("salary", 0.8, "ml_engineer"), text="what do mles earn?",
                      platform="slack", user="U1", channel="C1")
    recorder.vote(platform="slack", user="U2", channel="C1", topic="salary",
                  role="ml_engineer", helpful=True)
    await recorder.flush()
    # later batches find it in storage, as another replica would
    recorder.vote(platform="slack", user="U1", channel="C1", topic="salary",
                  role="ml_engineer", helpful=False)
    recorder.vote(platform="slack", user="U1", channel="C9", topic="salary",
                  role="ml_engineer", helpful=False)  # another channel: not that question
    await recorder.flush()
    assert recorder.storage is not None
    votes = await recorder.storage.votes(0)
    assert [(v.topic, v.role, v.helpful, v.question) for v in votes] == [
        ("salary", "ml_engineer", True, "what do mles earn?"),
        ("salary", "ml_engineer", False, "what do mles earn?"),
        ("salary", "ml_engineer", False, None),
    ]


async def test_a_users_votes_on_one_answer_count_once_the_last_one(
        recorder: Recorder) -> None:
    """Three presses of one button, then the other: the report counts one vote, the
    last; another answer, or another user, is a vote of its own."""
    for helpful in (True, True, True, False):
        recorder.vote(platform="slack", user="U1", channel="C1", topic="salary",
                      role="both", helpful=helpful, message="C1:1.1")
        await recorder.flush()  # batches apart, as replicas' records would be
    recorder.vote(platform="slack", user="U1", channel="C1", topic="salary", role="both",
                  helpful=True, message="C1:2.2")
    recorder.vote(platform="slack", user="U2", channel="C1", topic="salary", role="both",
                  helpful=True, message="C1:1.1")
    await recorder.flush()
    report = await recorder.report()
    [salary] = report.votes
    assert (salary.topic, salary.helpful, salary.not_helpful) == ("salary", 2, 1)


async def test_ids_are_stored_only_as_keyed_hashes(engine: Engine, recorder: Recorder) -> None:
    ask(engine, recorder, "mle interview tips?")
    recorder.vote(platform="slack", user=USER, channel=CHANNEL, topic="salary", role="both",
                  helpful=True)
    [record] = await stored(recorder)
    assert recorder.storage is not None
    key = await recorder.storage.hash_key()
    assert record.user == keyed_hash(key, "slack", USER)
    assert record.channel == keyed_hash(key, "slack", CHANNEL)
    assert len(record.user) == 32 and record.user != record.channel
    [vote] = await recorder.storage.votes(0)
    assert (vote.user, vote.channel) == (record.user, record.channel)
    raw = await everything_stored(recorder.storage)
    assert "mle interview tips?" in raw  # the records really are in what was read
    assert USER not in raw and CHANNEL not in raw


async def test_a_configured_hash_key_is_used_and_not_stored(
        new_storage: Callable[[], Storage]) -> None:
    settings = LearningSettings(hash_key="from-the-environment")
    recorder = Recorder(new_storage(), settings=settings)
    try:
        recorder.question(answer("tools", 0.9), text="tools?", platform="discord",
                          user="42", channel="7")
        [record] = await stored(recorder)
        assert record.user == keyed_hash(b"from-the-environment", "discord", "42")
        assert record.user != keyed_hash(b"another key", "discord", "42")
        assert record.user != keyed_hash(b"from-the-environment", "slack", "42")
        assert recorder.storage is not None
        assert "from-the-environment" not in await everything_stored(recorder.storage)
        if isinstance(recorder.storage, SQLiteStorage):
            assert not recorder.storage.key_path.exists()
    finally:
        await recorder.close()


async def test_text_switch_off_keeps_no_question_text(
        engine: Engine, new_storage: Callable[[], Storage]) -> None:
    recorder = Recorder(new_storage(), engine=engine,
                        settings=LearningSettings(record_text=False))
    try:
        ask(engine, recorder, "mle interview tips?")
        recorder.question(answer("salary", 0.9), text="what do mles earn?", platform="slack",
                          user=USER, channel=CHANNEL)
        recorder.vote(platform="slack", user=USER, channel=CHANNEL, topic="salary",
                      role="both", helpful=True)
        declined, answered = await stored(recorder)
        assert (declined.kind, declined.text, declined.reason) == ("decline", None, "interviews")
        assert declined.topic in engine.knowledge.topics  # still useful without the text
        assert answered.text is None
        assert recorder.storage is not None
        [vote] = await recorder.storage.votes(0)
        assert vote.question is None
        raw = await everything_stored(recorder.storage)
        assert "joke" not in raw and "earn" not in raw
    finally:
        await recorder.close()


async def test_records_older_than_the_retention_are_deleted(
        new_storage: Callable[[], Storage]) -> None:
    now = time.time()
    clock = [now]
    recorder = Recorder(new_storage(), settings=LearningSettings(retention_days=30),
                        clock=lambda: clock[0])

    async def record_at(age: float) -> None:
        clock[0] = now - age * DAY
        recorder.question(answer("tools", 0.2), text=f"{age} days ago", platform="slack")
        recorder.vote(platform="slack", user="U", channel="C", topic="tools", role="both",
                      helpful=True)
        await recorder.flush()

    try:
        for minutes in (0, 10, 20):  # old, but younger than the retention back then
            await record_at(100 - minutes / 1440)
        assert recorder.storage is not None
        assert len(await recorder.storage.questions(0)) == 3
        await record_at(29)  # days later, the writer purges before writing
        await record_at(1)
        assert [q.text for q in await recorder.storage.questions(0)] == [
            "29 days ago", "1 days ago"]
        assert len(await recorder.storage.votes(0)) == 2
        clock[0] = now + 2 * DAY  # an explicit purge, as time goes on
        assert await recorder.purge() == 2
        assert [q.text for q in await recorder.storage.questions(0)] == ["1 days ago"]
    finally:
        await recorder.close()


async def test_old_records_are_purged_when_recording_starts(
        new_storage: Callable[[], Storage]) -> None:
    old = QuestionRecord(time.time() - 200 * DAY, "slack", "decline", "ancient")
    seeded = new_storage()
    await seeded.open()
    await seeded.write([old], [], {})
    await seeded.close()
    recorder = Recorder(new_storage(), settings=LearningSettings(retention_days=90))
    try:
        recorder.question(answer("tools", 0.2), text="new", platform="slack")
        assert [q.text for q in await stored(recorder)] == ["new"]
    finally:
        await recorder.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["sqlite", "redis"])
def broken_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Storage that cannot work: a SQLite path under a regular file; Redis on a closed port."""
    if request.param == "sqlite":
        (tmp_path / "not-a-folder").write_text("")
        return SQLiteStorage(tmp_path / "not-a-folder" / "learning.sqlite3")
    return RedisStorage(f"redis://:hunter2@127.0.0.1:{_closed_port()}/0")


async def test_storage_failure_is_logged_once_and_never_raised(
        engine: Engine, broken_storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.learning")
    recorder = Recorder(broken_storage, engine=engine)
    try:
        for text in ("mle interview tips?", "what tools do ml engineers use?"):
            reply = ask(engine, recorder, text)  # returns at once, whatever storage does
            assert reply.title
            await recorder.flush()
        recorder.vote(platform="slack", user=USER, channel=CHANNEL, topic="tools",
                      role="both", helpful=True)
        await recorder.flush()
        stats = await recorder.stats()
        assert "could not read" in stats.text
    finally:
        await recorder.close()
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and "could not record" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert broken_storage.name in warnings[0] and "answers are unaffected" in warnings[0]
    assert "hunter2" not in caplog.text and USER not in caplog.text


async def test_recording_works_again_when_storage_comes_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.learning")
    blocker = tmp_path / "data"
    blocker.write_text("")  # a file where the folder should be
    recorder = Recorder(SQLiteStorage(blocker / "learning.sqlite3"))
    try:
        recorder.question(answer("tools", 0.2), text="lost", platform="slack")
        await recorder.flush()
        blocker.unlink()
        recorder.question(answer("tools", 0.2), text="kept", platform="slack")
        assert [q.text for q in await stored(recorder)] == ["kept"]
    finally:
        await recorder.close()
    assert "works again" in caplog.text


async def test_a_full_queue_drops_instead_of_waiting(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(SQLiteStorage(tmp_path / "learning.sqlite3"), queue_size=2)
    try:
        for n in range(5):  # no await in between: the writer has had no chance to run
            recorder.question(answer("tools", 0.2), text=f"q{n}", platform="slack")
        assert [q.text for q in await stored(recorder)] == ["q0", "q1"]
    finally:
        await recorder.close()
    assert "learning: 1 record(s) dropped: storage is not keeping up" in caplog.text


def test_recording_outside_an_event_loop_is_a_no_op(tmp_path: Path) -> None:
    recorder = Recorder(SQLiteStorage(tmp_path / "learning.sqlite3"))
    recorder.question(answer("tools", 0.2), text="from a script", platform="console")
    assert not (tmp_path / "learning.sqlite3").exists()


async def test_off_records_nothing_and_says_so(engine: Engine) -> None:
    recorder = Recorder.off()
    ask(engine, recorder, "mle interview tips?")
    recorder.vote(platform="slack", user="U", channel="C", topic="tools", role="both",
                  helpful=True)
    await recorder.flush()
    assert "off" in (await recorder.stats()).text
    await recorder.close()


async def test_stats_summarise_the_week(engine: Engine, recorder: Recorder) -> None:
    for text in ("mle interview tips?", "mle interview tips pls", "any mle interview tips?",
                 "what tools do ml engineers use?"):
        ask(engine, recorder, text)
    recorder.vote(platform="slack", user="U", channel=CHANNEL, topic="tools", role="both",
                  helpful=True)
    recorder.vote(platform="slack", user="V", channel=CHANNEL, topic="tools", role="both",
                  helpful=False)
    await recorder.flush()
    reply = await recorder.stats()
    assert reply.kind == "notice" and reply.title == "careerbot stats: the last 7 days"
    assert "**Questions this week:** 4 (3 declined or unsure)" in reply.text
    assert "**Helpful share:** 50% of 2 votes" in reply.text
    assert "1. 3 × “mle interview tips?”" in reply.text


def test_from_settings_picks_the_storage(engine: Engine, tmp_path: Path) -> None:
    from bot.settings import Settings

    base = Settings(learning=LearningSettings(db_path=tmp_path / "l.sqlite3"))
    sqlite = Recorder.from_settings(base, engine)
    assert isinstance(sqlite.storage, SQLiteStorage)
    assert sqlite.storage.path == tmp_path / "l.sqlite3"
    redis = Recorder.from_settings(replace(base, redis_url="redis://127.0.0.1:1/3"), engine)
    assert isinstance(redis.storage, RedisStorage)
    off = Recorder.from_settings(replace(base, learning=LearningSettings(enabled=False)))
    assert not off.enabled


def test_settings_from_the_environment(tmp_path: Path) -> None:
    from bot.settings import Settings

    settings = Settings.from_env({
        "CAREERBOT_LEARNING_DB": str(tmp_path / "x.sqlite3"), "CAREERBOT_HASH_KEY": "k3y",
        "CAREERBOT_RECORD_QUESTIONS": "off", "CAREERBOT_RETENTION_DAYS": "14",
        "CAREERBOT_LOW_CONFIDENCE_BELOW": "0.35", "REDIS_URL": "redis://:pw@r:6379/1"})
    learning = settings.learning
    assert (learning.db_path, learning.hash_key, learning.record_text) == (
        tmp_path / "x.sqlite3", "k3y", False)
    assert (learning.retention_days, learning.low_confidence_below) == (14, 0.35)
    assert settings.redis_url == "redis://:pw@r:6379/1"
    assert "k3y" not in repr(settings) and "pw@" not in repr(settings)
    default = Settings.from_env({})
    assert default.learning == LearningSettings() and default.learning.enabled
    assert default.learning.db_path == Path("data/learning.sqlite3")
    with pytest.raises(ValueError, match="CAREERBOT_LEARNING must be on or off"):
        Settings.from_env({"CAREERBOT_LEARNING": "maybe"})


async def test_recording_does_not_hold_up_the_event_loop(engine: Engine,
                                                         recorder: Recorder) -> None:
    """Queueing a question costs microseconds; the writing happens later, in the background."""
    reply = engine.answer(Query("mle interview tips?"))
    started = time.perf_counter()
    for _ in range(200):
        recorder.question(reply, text="mle interview tips?", platform="slack", user=USER,
                          channel=CHANNEL)
    queued = time.perf_counter() - started
    assert queued < 0.05
    assert len(await stored(recorder)) == 200
