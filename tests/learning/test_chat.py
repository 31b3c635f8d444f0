"""Learning from use through the real adapters, against the local Slack and Discord.

Each test runs once on a real SQLite file and once on a real Redis: questions
and votes go in through the platforms' own payloads, and come out of storage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from bot.core import Engine
from bot.learning import QuestionRecord, Recorder, RedisStorage, SQLiteStorage, VoteRecord
from bot.settings import Settings
from tests.adapters.test_slack import (
    ADMIN,
    CHANNEL,
    DM,
    ROOT,
    SECRET,
    USER,
    Peer,
    element,
    header,
    serving,
)
from tests.fakes.discord import EPHEMERAL, FakeDiscord
from tests.fakes.slack import TEAM, FakeSlack
from tests.learning.helpers import OwnRedis

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from bot.adapters.discord import run_discord

WAIT = 5.0
D = FakeDiscord
TOKEN = "MTA.fake-bot-token.for-learning-tests"


async def records(recorder: Recorder, handled: int
                  ) -> tuple[list[QuestionRecord], list[VoteRecord]]:
    """What storage holds once `handled` questions and votes went through the recorder."""
    await recorder.handled(handled)
    assert recorder.storage is not None
    return await recorder.storage.questions(0), await recorder.storage.votes(0)


# ---------------------------------------------------------------------- Slack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def slack_settings(slack: FakeSlack) -> Settings:
    return Settings(slack_bot_token=slack.bot_token, slack_signing_secret=SECRET,
                    slack_api_url=slack.api_url, slack_admin_ids=frozenset({ADMIN}),
                    rate_limit_per_minute=100)


def slack_app(slack: FakeSlack, engine: Engine, recorder: Recorder
              ) -> AbstractAsyncContextManager[Peer]:
    """The real bolt app, with `recorder`, in HTTP mode on an ephemeral loopback port."""
    return serving(slack, engine, slack_settings(slack), recorder=recorder)


async def test_slack_declines_are_recorded_after_the_answer(
        slack: FakeSlack, engine: Engine, recorder: Recorder) -> None:
    async with slack_app(slack, engine, recorder) as peer:
        await peer.mention("mle interview tips?")
        [declined] = await slack.wait_for("chat.postMessage")
        [record], _ = await records(recorder, 1)
    assert header(declined) == "That's outside what I can answer"
    assert (record.platform, record.kind, record.text) == (
        "slack", "decline", "mle interview tips?")
    assert record.reason == "interviews" and record.topic in engine.knowledge.topics
    assert USER not in record.user and CHANNEL not in record.channel and record.user


async def test_slack_feedback_buttons_record_votes_with_the_question(
        slack: FakeSlack, engine: Engine, recorder: Recorder) -> None:
    async with slack_app(slack, engine, recorder) as peer:
        assert await peer.dm("what is mlops?") == 200
        [answer] = await slack.wait_for("chat.postMessage")
        await recorder.handled(1)  # people vote after reading
        message = {"type": "message", "ts": "1710000003.000001"}
        for vote in ("helpful", "not_helpful"):
            key = await peer.press(element(answer, f"careerbot_feedback_{vote}"), channel=DM,
                                   message=message)
            _, thanks = await slack.responses(key, 2)  # the tally shown, and thanks
            assert "Thanks" in thanks["text"]
        # /careerbot questions are recorded too, and so are their votes
        [private] = await slack.responses(await peer.command("what tools do ml engineers use?"))
        await recorder.handled(4)
        key = await peer.press(element(private, "careerbot_feedback_helpful"), ephemeral=True,
                               message_ts="1710000004.000001")
        await slack.responses(key)
        asked, recorded = await records(recorder, 5)
    assert [(v.platform, v.topic, v.role, v.helpful, v.question) for v in recorded] == [
        ("slack", "mlops", "both", True, "what is mlops?"),
        ("slack", "mlops", "both", False, "what is mlops?"),
        ("slack", "tools", "ml_engineer", True, "what tools do ml engineers use?"),
    ]
    assert [(q.kind, q.topic) for q in asked] == [("answer", "mlops"), ("answer", "tools")]
    assert len({v.channel for v in recorded}) == 2  # the DM and the channel, hashed


async def test_slack_stats_are_for_admins_only(slack: FakeSlack, engine: Engine,
                                               recorder: Recorder) -> None:
    async with slack_app(slack, engine, recorder) as peer:
        for text in ("mle interview tips?", "mle interview tips pls", "what is model drift?"):
            await peer.mention(text)
        await slack.wait_for("chat.postMessage", 3)
        await recorder.handled(3)
        [refused] = await slack.responses(await peer.command("stats"))
        [stats] = await slack.responses(await peer.command("stats", user=ADMIN))
    assert "only careerbot's admins" in refused["text"]
    assert header(stats) == "careerbot stats: the last 7 days"
    body = "\n".join(b["text"]["text"] for b in stats["blocks"] if b["type"] == "section")
    assert "*Questions this week:* 3 (2 declined or unsure)" in body
    assert "1. 2 × “mle interview tips?” (nearest topic: " in body
    assert "*Helpful share:* no votes yet" in body
    assert stats["response_type"] == "ephemeral"


async def test_slack_answers_go_out_when_storage_fails(
        slack: FakeSlack, engine: Engine, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    (tmp_path / "file").write_text("")
    broken = Recorder(SQLiteStorage(tmp_path / "file" / "learning.sqlite3"), engine=engine)
    try:
        async with slack_app(slack, engine, broken) as peer:
            await peer.mention("mle interview tips?")
            await peer.mention("what is model drift?")
            first, second = await slack.wait_for("chat.postMessage", 2)
            await broken.handled(2)
            answer = await slack.responses(await peer.command("what is mlops?"))
            key = await peer.press(element(answer[0], "careerbot_feedback_helpful"),
                                   ephemeral=True, message_ts="1710000005.000001")
            [voted] = await slack.responses(key)  # private: the buttons show the vote
            [stats] = await slack.responses(await peer.command("stats", user=ADMIN))
    finally:
        await broken.close()
    assert header(first) == "That's outside what I can answer"
    assert header(second).startswith("Model drift")
    assert header(answer[0]).startswith("MLOps") and header(voted).startswith("MLOps")
    assert element(voted, "careerbot_feedback_helpful")["text"]["text"] == "✓ 👍 Helpful · 1"
    assert "could not read the records" in str(stats["blocks"])
    assert "learning: could not record" in caplog.text and "Traceback" not in caplog.text


# ---------------------------------------------------------------------- Discord


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as fake:
        yield fake


@asynccontextmanager
async def discord_bot(fake: FakeDiscord, engine: Engine, recorder: Recorder
                      ) -> AsyncIterator[FakeDiscord]:
    """`run_discord` with `recorder`, as `careerbot serve discord` runs it."""
    settings = Settings(discord_token=TOKEN, discord_api_url=fake.api_url,
                        discord_gateway_url=fake.gateway_url,
                        discord_admin_ids=frozenset({str(D.ADMIN_ID)}))
    task = asyncio.create_task(run_discord(engine, settings, recorder))
    try:
        await fake.wait_ready(1, WAIT)
        yield fake
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)


def data(request: Any) -> dict[str, Any]:
    return request.body["data"]


async def test_discord_questions_and_votes_are_recorded(
        discord: FakeDiscord, engine: Engine, recorder: Recorder) -> None:
    async with discord_bot(discord, engine, recorder) as bot:
        declined = await bot.interact(bot.slash("ask", question="mle interview tips?"))
        await recorder.handled(1)
        mention = await bot.post_message(bot.message("what's the weather today?"))
        await recorder.handled(2)
        answer = await bot.interact(bot.slash("ask", question="what do MLEs earn?"))
        await recorder.handled(3)
        for vote in ("up", "down"):
            custom_id = f"careerbot:vote:{vote}:salary:ml_engineer"
            press = bot.press(answer, custom_id, user_id=D.ADMIN_ID)
            voted = await bot.interact(press)
            assert voted.body["type"] == 7  # the buttons show the tally
            [thanks] = await bot.followups(press, 1)
            assert "Thanks for the feedback!" in thanks.body["content"]
        asked, recorded = await records(recorder, 5)
    assert data(declined)["embeds"][0]["title"] == "That's outside what I can answer"
    assert mention.body["embeds"][0]["title"] == "That's outside what I can answer"
    assert [(q.platform, q.kind, q.text) for q in asked] == [
        ("discord", "decline", "mle interview tips?"),
        ("discord", "decline", "what's the weather today?"),
        ("discord", "answer", None),
    ]
    assert asked[2].topic == "salary"
    assert [(v.platform, v.topic, v.role, v.helpful, v.question) for v in recorded] == [
        ("discord", "salary", "ml_engineer", True, "what do MLEs earn?"),
        ("discord", "salary", "ml_engineer", False, "what do MLEs earn?"),
    ]
    assert recorded[0].user != asked[2].user  # the admin voted on the asker's answer
    assert str(D.USER_ID) not in asked[0].user + asked[0].channel


async def test_discord_stats_are_for_admins_only(discord: FakeDiscord, engine: Engine,
                                                 recorder: Recorder) -> None:
    async with discord_bot(discord, engine, recorder) as bot:
        for question in ("mle interview tips?", "mle interview tips pls", "what is model drift?"):
            await bot.interact(bot.slash("ask", question=question))
        answer = await bot.interact(bot.slash("ask", question="what is model drift?"))
        await recorder.handled(4)
        await bot.interact(bot.press(answer, "careerbot:vote:up:model_drift:both"))
        await recorder.handled(5)
        refused = await bot.interact(bot.slash("stats"))
        admin = bot.slash("stats", user_id=D.ADMIN_ID)
        deferred = await bot.interact(admin)
        [stats] = await bot.followups(admin, 1)
    assert data(refused)["flags"] & EPHEMERAL
    assert "Only careerbot admins can see its stats" in data(refused)["content"]
    assert deferred.body == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert stats.body["flags"] & EPHEMERAL
    [embed] = stats.body["embeds"]
    assert embed["title"] == "careerbot stats: the last 7 days"
    assert "**Questions this week:** 4 (2 declined or unsure)" in embed["description"]
    assert "**Helpful share:** 100% of 1 vote" in embed["description"]
    assert "1. 2 × “mle interview tips?”" in embed["description"]


async def test_discord_answers_go_out_when_redis_goes_away(
        discord: FakeDiscord, engine: Engine, own_redis: OwnRedis,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.learning")
    recorder = Recorder(RedisStorage(own_redis.url), engine=engine)
    try:
        async with discord_bot(discord, engine, recorder) as bot:
            first = await bot.interact(bot.slash("ask", question="what do MLEs earn?"))
            asked, _ = await records(recorder, 1)
            assert [q.topic for q in asked] == ["salary"]
            own_redis.stop()  # Redis goes away under the running bot
            answered = await bot.interact(bot.slash("ask", question="mle interview tips?"))
            await recorder.handled(2)
            press = bot.press(first, "careerbot:vote:up:salary:ml_engineer")
            voted = await bot.interact(press)
            [thanks] = await bot.followups(press, 1)
            await recorder.handled(3)
    finally:
        await recorder.close()
    assert data(first)["embeds"][0]["title"] == "Salary and compensation: ML engineer"
    assert data(answered)["embeds"][0]["title"] == "That's outside what I can answer"
    assert voted.body["type"] == 7 and "Thanks for the feedback!" in thanks.body["content"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("learning: could not record 1 item(s) to Redis at 127.0.0.1:")


# ---------------------------------------------------------------------- careerbot serve


async def test_careerbot_serve_records_to_the_default_sqlite_file(slack: FakeSlack,
                                                                  tmp_path: Path) -> None:
    """The real process, in Socket Mode against the local Slack, from an empty folder:
    the SQLite file is created on first use, and what is queued is written at shutdown."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DISCORD_", "CAREERBOT_", "REDIS_"))}
    env |= {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url, "PYTHONPATH": str(ROOT),
            "CAREERBOT_HOST": "127.0.0.1", "CAREERBOT_PORT": "0",
            "CAREERBOT_OPS_PORT": "0"}  # loopback, ephemeral
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "slack", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await slack.wait_for("socket.connect", timeout=30)
        event = {"type": "event_callback", "team_id": TEAM, "event_id": "EvLEARN",
                 "event": {"type": "message", "channel_type": "im", "channel": DM,
                           "user": USER, "ts": "1710000009.000001", "text": "mle interview tips?"}}
        await slack.push({"envelope_id": "env-l", "type": "events_api", "payload": event})
        [answer] = await slack.wait_for("chat.postMessage")
    finally:
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)  # Ctrl-C: a clean shutdown
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert header(answer) == "That's outside what I can answer"
    assert b"learning from use: recording to SQLite file data/learning.sqlite3" in stderr
    storage = SQLiteStorage(tmp_path / "data" / "learning.sqlite3", create=False)
    await storage.open()
    try:
        [record] = await storage.questions(0)
    finally:
        await storage.close()
    assert (record.kind, record.text, record.reason) == (
        "decline", "mle interview tips?", "interviews")
    assert (tmp_path / "data" / "learning.key").is_file()
