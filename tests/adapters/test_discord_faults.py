"""The real `careerbot serve discord` when Discord fails it, against the local Discord.

The local Discord answers a callback with 10062 (too late) or an error, refuses a
follow-up, closes the gateway with a code the bot cannot come back from, drops it
(the bot resumes; RESUMED held back while the test looks), or refuses connections
as in an outage. Every wait is on a request, a log line or the process's exit, each
bounded.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.learning import SQLiteStorage
from bot.ops import HEALTH_PATH, METRICS_PATH
from tests.fakes.discord import Failure, FakeDiscord, Request
from tests.serve_process import ServeProcess, serve

TOKEN = "MTA.fake-bot-token.for-tests-only"
WAIT = 30.0  # a bound on waits for a whole process, not a speed target
D = FakeDiscord
_PORT = re.compile(rb"serving /healthz and /metrics on (?:ops )?port (\d+)")
_NEVER = (b"Traceback", b"Task exception was never retrieved", TOKEN.encode())


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as fake:
        yield fake


def _env(fake: FakeDiscord, **extra: str) -> dict[str, str]:
    return {"DISCORD_TOKEN": TOKEN, "DISCORD_API_URL": fake.api_url,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "CAREERBOT_DISCORD_ADMINS": str(D.ADMIN_ID),
            "CAREERBOT_RATE_LIMIT_PER_MINUTE": "1000", **extra}


class Bot:
    """The process, its /healthz and /metrics, and the local Discord it is connected to."""

    def __init__(self, process: ServeProcess, fake: FakeDiscord, base: str,
                 http: aiohttp.ClientSession):
        self.process, self.fake, self.base, self.http = process, fake, base, http

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with asyncio.timeout(WAIT), self.http.get(self.base + HEALTH_PATH) as got:
            return got.status, await got.json()

    async def metrics(self) -> str:
        async with asyncio.timeout(WAIT), self.http.get(self.base + METRICS_PATH) as got:
            return await got.text()

    async def line(self, pattern: bytes) -> None:
        await self.process.wait_for_line(re.compile(pattern), WAIT)

    def count(self, text: bytes) -> int:
        return self.process.stderr.count(text)


@asynccontextmanager
async def running(fake: FakeDiscord, cwd: Path, **extra: str) -> AsyncIterator[Bot]:
    async with serve("discord", env=_env(fake, **extra), cwd=cwd) as process, \
            aiohttp.ClientSession() as http:
        port = int((await process.wait_for_line(_PORT, WAIT)).group(1))
        await fake.wait_ready(timeout=WAIT)
        bot = Bot(process, fake, f"http://127.0.0.1:{port}", http)
        await bot.line(rb"Discord gateway ready")  # READY, and the servers it announced
        yield bot


def _sent(fake: FakeDiscord, interaction: dict[str, Any]) -> list[Request]:
    """What the bot sent for `interaction`: its callbacks, follow-ups and edits."""
    return [r for r in fake.requests if interaction["token"] in r.path]


def _text(request: Request) -> str:
    body = request.body.get("data", request.body)
    return str(body.get("content", "")) + " ".join(
        str(e.get("description", "")) for e in body.get("embeds") or [])


async def _asked(bot: Bot, question: str = "what do MLEs earn?") -> Request:
    return await bot.fake.interact(bot.fake.slash("ask", question=question), timeout=WAIT)


# ---------------------------------------------------------------------- interactions


async def test_an_expired_interaction_is_logged_once_and_never_answered_twice(
        discord: FakeDiscord, tmp_path: Path) -> None:
    async with running(discord, tmp_path) as bot:
        discord.fail("callback", Failure(404, 10062, "Unknown interaction"))
        late = discord.slash("ask", question="what do MLEs earn?")
        await discord.interact(late, timeout=WAIT)
        await bot.line(rb"could not be delivered \(/ask\): Discord 10062")
        answer = await _asked(bot)  # the next one is answered as ever
        assert answer.body["data"]["embeds"]
        assert [r.path for r in _sent(discord, late)] == [
            f"/interactions/{late['id']}/{late['token']}/callback"]  # once: no second 10062
        assert 'careerbot_undelivered_total{platform="discord",reason="10062"} 1.0' in (
            await bot.metrics())
        assert await bot.process.stop() == 0
    assert bot.count(b"could not be delivered") == 1
    for never in _NEVER:
        assert never not in bot.process.stderr, bot.process.stderr.decode()[-3000:]


async def test_a_callback_that_failed_gets_an_apology_in_its_place(
        discord: FakeDiscord, tmp_path: Path) -> None:
    async with running(discord, tmp_path) as bot:
        discord.fail("callback", Failure(400, 50035, "Invalid Form Body"))
        asked = discord.slash("ask", question="what do MLEs earn?")
        await discord.interact(asked, timeout=WAIT)
        await discord.wait_for(lambda r: len(_sent(discord, asked)) >= 2, WAIT)
        first, second = _sent(discord, asked)[:2]
        assert first.body["type"] == second.body["type"] == 4
        assert "something went wrong" in _text(second)
        assert await bot.process.stop() == 0
    assert b"/ask failed" in bot.process.stderr  # the cause is logged, with its traceback
    assert b"Task exception was never retrieved" not in bot.process.stderr


@pytest.mark.parametrize("command", ["reload", "stats"])
async def test_after_a_defer_a_failed_follow_up_never_leaves_thinking(
        discord: FakeDiscord, tmp_path: Path, command: str) -> None:
    async with running(discord, tmp_path) as bot:
        discord.fail("followup", Failure(400, 50035, "Invalid Form Body"))
        asked = discord.slash(command, user_id=D.ADMIN_ID)
        deferred = await discord.interact(asked, timeout=WAIT)
        assert deferred.body["type"] == 5  # "careerbot is thinking…"
        [refused, apology] = await discord.followups(asked, 2, WAIT)
        assert refused.message is None and apology.message is not None
        assert "something went wrong" in _text(apology)
        assert await bot.process.stop() == 0
    assert b"Task exception was never retrieved" not in bot.process.stderr


async def test_an_expired_defer_is_not_followed_up(discord: FakeDiscord,
                                                   tmp_path: Path) -> None:
    async with running(discord, tmp_path) as bot:
        discord.fail("callback", Failure(404, 10062, "Unknown interaction"))
        late = discord.slash("reload", user_id=D.ADMIN_ID)
        await discord.interact(late, timeout=WAIT)
        await bot.line(rb"could not be delivered \(/reload\): Discord 10062")
        await _asked(bot)  # a later request, so anything the bot did for `late` is in
        assert len(_sent(discord, late)) == 1
        assert await bot.process.stop() == 0
    for never in _NEVER:
        assert never not in bot.process.stderr


# ---------------------------------------------------------------------- gateway


@pytest.mark.parametrize("code, says", [
    (4004, b"careerbot: Discord closed the gateway: DISCORD_TOKEN is no longer valid "
           b"(4004 Authentication failed; was the token reset?)"),
    (4013, b"careerbot: Discord closed the gateway: invalid intents (4013)"),
    (4014, b"careerbot: Discord closed the gateway: disallowed intents (4014)"),
])
async def test_a_gateway_that_will_not_take_the_bot_is_one_line_and_status_2(
        discord: FakeDiscord, tmp_path: Path, code: int, says: bytes) -> None:
    async with running(discord, tmp_path) as bot:
        await _asked(bot)
        await discord.close_gateway(code)
        async with asyncio.timeout(WAIT):
            status = await bot.process.process.wait()
        await bot.process.stop()  # collects the rest of stderr
    assert status == 2
    last = bot.process.stderr.rstrip().splitlines()[-1]
    assert last.startswith(says), bot.process.stderr.decode()[-3000:]
    assert bot.count(b"careerbot: ") == 1
    for never in _NEVER:
        assert never not in bot.process.stderr, bot.process.stderr.decode()[-3000:]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_api_at_start_is_one_line_and_status_2(
        discord: FakeDiscord, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{_closed_port()}/api/v10"
    async with serve("discord", env=_env(discord, DISCORD_API_URL=nowhere),
                     cwd=tmp_path) as process:
        async with asyncio.timeout(WAIT):
            status = await process.process.wait()
        await process.stop()
    assert status == 2
    last = process.stderr.rstrip().splitlines()[-1].decode()
    assert last == (f"careerbot: cannot reach Discord's API at {nowhere} "
                    "(ClientConnectorError: Connection refused): check DISCORD_API_URL and "
                    "the network."), process.stderr.decode()[-3000:]
    assert b"Traceback" not in process.stderr
    assert not discord.requests


async def test_readiness_is_503_while_the_gateway_resumes_and_200_once_back(
        discord: FakeDiscord, tmp_path: Path) -> None:
    async with running(discord, tmp_path) as bot:
        status, body = await bot.health()
        assert status == 200 and body["platforms"] == {"discord": True}

        discord.resumes.clear()  # RESUMED held back: the bot is resuming
        await discord.close_gateway(4000)
        await discord.wait_resumed(1, WAIT)
        status, body = await bot.health()
        assert status == 503 and body["platforms"] == {"discord": False}
        discord.resumes.set()
        await bot.line(rb"Discord gateway resumed: ready again")
        status, body = await bot.health()
        assert status == 200 and body["platforms"] == {"discord": True}
        assert (await _asked(bot)).body["data"]["embeds"]  # and it answers again

        # an outage: every reconnect refused, for as many attempts as it takes
        discord.refuse = True
        await discord.close_gateway(4000)
        await discord.wait_refused(3, WAIT)
        status, _ = await bot.health()
        assert status == 503
        discord.refuse = False
        await discord.wait_resumed(2, WAIT)
        await bot.line(rb"(?s)resumed: ready again.*resumed: ready again")
        status, _ = await bot.health()
        assert status == 200
        assert (await _asked(bot)).body["data"]["embeds"]
        assert await bot.process.stop() == 0
    # one warning an outage, however many reconnects it took; each attempt one line
    assert bot.count(b"Discord gateway disconnected: not ready until it is back") == 2
    assert bot.count(b"WARNING discord.client: Attempting a reconnect in ") >= 3
    assert b"Traceback" not in bot.process.stderr


# ---------------------------------------------------------------------- learning store


async def test_a_data_folder_deleted_while_serving_is_created_again(
        discord: FakeDiscord, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running(discord, tmp_path, CAREERBOT_LEARNING="on",
                       CAREERBOT_LEARNING_DB=str(data / "learning.sqlite3")) as bot:
        await _asked(bot, "how do i deploy my react website on vercel")  # recorded
        stats = await _stats(discord)
        assert "Questions this week:** 1 " in stats
        shutil.rmtree(data)
        for n in range(30):
            await _asked(bot, f"how do i deploy my react website on vercel? ({n})")
        stats = await _stats(discord)  # waits for the 30 to be written
        assert "Questions this week:** 30 " in stats
        status, body = await bot.health()
        assert body["learning"]["ok"] is True and body["learning"]["unrecorded"] == 0
        assert await bot.process.stop() == 0
    assert bot.count(b"was deleted or replaced while the bot ran") == 1
    reader = SQLiteStorage(data / "learning.sqlite3", create=False)
    await reader.open()
    try:
        assert len(await reader.questions(0)) == 30  # on disk, under its name
    finally:
        await reader.close()


async def test_learning_store_failures_show_in_healthz_and_metrics(
        discord: FakeDiscord, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")  # a file where the folder should be
    async with running(discord, tmp_path, CAREERBOT_LEARNING="on",
                       CAREERBOT_LEARNING_DB=str(tmp_path / "data" / "learning.sqlite3")
                       ) as bot:
        for n in range(3):
            await _asked(bot, f"how do i deploy my react website on vercel? ({n})")
        assert "could not read the records" in await _stats(discord)
        status, body = await bot.health()
        assert status == 200  # answering all along: never unready for this
        learning = body["learning"]
        assert learning["ok"] is False and learning["unrecorded"] == 3
        assert "Error" in learning["error"]
        shown = await bot.metrics()
        assert 'careerbot_learning_failures_total{operation="write"}' in shown
        assert 'careerbot_learning_failures_total{operation="read"} 1.0' in shown
        assert "careerbot_learning_unrecorded_total 3.0" in shown
        assert await bot.process.stop() == 0
    assert bot.count(b"learning: could not record") == 1


async def _stats(fake: FakeDiscord) -> str:
    asked = fake.slash("stats", user_id=D.ADMIN_ID)
    await fake.interact(asked, timeout=WAIT)
    [reply] = await fake.followups(asked, 1, WAIT)
    return _text(reply)


async def test_readiness_follows_each_shard(discord: FakeDiscord, tmp_path: Path) -> None:
    async with serve("discord", env=_env(discord, DISCORD_SHARD_COUNT="2"),
                     cwd=tmp_path) as process, aiohttp.ClientSession() as http:
        port = int((await process.wait_for_line(_PORT, WAIT)).group(1))
        bot = Bot(process, discord, f"http://127.0.0.1:{port}", http)
        await discord.wait_ready(shards=2, timeout=WAIT)
        await bot.line(rb"(?s)(Discord gateway \(shard [01]\) ready.*){2}")
        assert (await bot.health())[0] == 200
        discord.resumes.clear()
        await discord.close_gateway(4000, shard=1)
        await discord.wait_resumed(1, WAIT)
        status, body = await bot.health()
        assert status == 503 and body["platforms"] == {"discord": False}
        discord.resumes.set()
        await bot.line(rb"Discord gateway \(shard 1\) resumed: ready again")
        assert (await bot.health())[0] == 200
        assert await process.stop() == 0


@pytest.mark.parametrize("custom_id", ["careerbot:ask:career_path:ml_engineer",
                                       "careerbot:vote:up:salary:ml_engineer"])
async def test_an_expired_button_press_is_logged_once_never_a_traceback(
        discord: FakeDiscord, tmp_path: Path, custom_id: str) -> None:
    """A button whose press came too late (10062) is counted and logged like a command's:
    once, with no second callback and no traceback from discord.py's view handler."""
    async with running(discord, tmp_path) as bot:
        answer = await _asked(bot)
        discord.fail("callback", Failure(404, 10062, "Unknown interaction"))
        press = discord.press(answer, custom_id)
        await discord.interact(press, timeout=WAIT)
        await bot.line(rb"could not be delivered \((follow-up|vote) button\): Discord 10062")
        assert len([r for r in _sent(discord, press) if r.path.endswith("/callback")]) == 1
        assert await bot.process.stop() == 0
    assert bot.count(b"could not be delivered") == 1
    for never in _NEVER:
        assert never not in bot.process.stderr, bot.process.stderr.decode()[-3000:]
