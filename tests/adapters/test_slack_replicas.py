"""Slack's HTTP mode as N replicas behind a load balancer, sharing one real Redis.

Two replicas, each with an engine of its own, serve on two loopback ports; the
test plays the load balancer by choosing which one each request goes to. Then
two real `careerbot serve slack` processes do the same, with JSON logs, and stop
on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.adapters.slack.app import build_app, start_http
from bot.core import Engine
from bot.learning import keyed_hash
from bot.ops import HEALTH_PATH, METRICS_PATH, start_server
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store import InProcessStore, RedisStore, Store
from tests.adapters.test_slack import (
    ADMIN,
    BOT_USER,
    CHANNEL,
    SECRET,
    USER,
    Peer,
    _ts,
    _url,
    header,
)
from tests.fakes.slack import FakeSlack

WAIT = 5.0
OPS_PORT = r"/healthz and /metrics on ops port (\d+)"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Replica:
    peer: Peer
    runtime: Runtime

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with asyncio.timeout(WAIT), self.peer.session.get(
                self.peer.ops + HEALTH_PATH) as got:
            return got.status, await got.json()


@asynccontextmanager
async def replica(slack: FakeSlack, settings: Settings, knowledge: Path,
                  store: Store) -> AsyncIterator[Replica]:
    """One replica as `careerbot serve slack` runs it: its own engine, the shared store."""
    engine = Engine(knowledge_dir=knowledge)
    runtime = Runtime(engine, settings, store)
    listener = asyncio.create_task(runtime.listen())
    runner = ops = None
    try:
        if store.shared:
            await runtime.wait_until(lambda: runtime.listening, WAIT)
        runner = await start_http(build_app(engine, settings, runtime=runtime), "127.0.0.1", 0)
        ops = await start_server(runtime, "127.0.0.1", 0)
        async with aiohttp.ClientSession() as session:
            yield Replica(Peer(_url(runner), session, slack, _url(ops)), runtime)
    finally:
        listener.cancel()
        with suppress(asyncio.CancelledError):
            await listener
        for served in (ops, runner):
            if served is not None:
                await served.cleanup()


@pytest.fixture
async def pair(slack: FakeSlack, settings: Settings, knowledge_copy: Path,
               redis_store: Callable[..., RedisStore]) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B on one knowledge source, each with its own Redis connection."""
    async with replica(slack, settings, knowledge_copy, redis_store()) as a, \
            replica(slack, settings, knowledge_copy, redis_store()) as b:
        yield a, b


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# ---------------------------------------------------------------------- shared state


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process (control)"])
async def test_a_follow_up_on_replica_b_continues_replica_a_s_conversation(
        slack: FakeSlack, settings: Settings, knowledge_copy: Path,
        redis_store: Callable[..., RedisStore], shared: bool) -> None:
    def store() -> Store:
        return redis_store() if shared else InProcessStore()

    async with replica(slack, settings, knowledge_copy, store()) as a, \
            replica(slack, settings, knowledge_copy, store()) as b:
        ts = await a.peer.mention("how much does an ML engineer earn?")
        [first] = await slack.wait_for("chat.postMessage")
        await b.peer.mention("what about data scientists?", thread_ts=ts)
        second = (await slack.wait_for("chat.postMessage", 2))[1]
    assert header(first) == "Salary and compensation: ML engineer"
    assert second["thread_ts"] == ts
    # without a shared store, replica B has never heard of this conversation
    assert (header(second) == "Salary and compensation: Data scientist") is shared


async def test_an_event_retried_to_the_other_replica_is_answered_once(
        pair: tuple[Replica, Replica], slack: FakeSlack) -> None:
    a, b = pair
    event = {"type": "app_mention", "user": USER, "text": f"<@{BOT_USER}> salary?",
             "ts": _ts(), "channel": CHANNEL}
    assert await a.peer.event(event, event_id="EvONCE") == 200
    await slack.wait_for("chat.postMessage")
    assert await b.peer.event(event, event_id="EvONCE", retry=1) == 200
    # the same new event reaching both replicas at once
    twin = {**event, "ts": _ts(), "text": f"<@{BOT_USER}> tools?"}
    assert await asyncio.gather(a.peer.event(twin, event_id="EvTWIN"),
                                b.peer.event(twin, event_id="EvTWIN", retry=1)) == [200, 200]
    # the marker: sent after every retry was turned away (before its 200 came back)
    marker = await b.peer.mention("what do data scientists earn?")
    calls = await slack.wait_for("chat.postMessage", 3)
    assert sorted(c["thread_ts"] for c in calls) == sorted([event["ts"], twin["ts"], marker])


async def test_the_rate_limit_holds_across_replicas(
        slack: FakeSlack, settings: Settings, knowledge_copy: Path,
        redis_store: Callable[..., RedisStore]) -> None:
    limited = replace(settings, rate_limit_per_minute=2)
    async with replica(slack, limited, knowledge_copy, redis_store()) as a, \
            replica(slack, limited, knowledge_copy, redis_store()) as b:
        for peer, question in ((a.peer, "salary?"), (b.peer, "skills?"), (a.peer, "tools?")):
            await peer.dm(question)
        [slow] = await slack.wait_for("chat.postEphemeral")
        await slack.wait_for("chat.postMessage", 2)
        await b.peer.dm("education?")
        await slack.wait_for("chat.postEphemeral", 2)
    assert "Slow down" in slow["text"] and slow["user"] == USER
    assert len(slack.of("chat.postMessage")) == 2


# ---------------------------------------------------------------------- reload


async def test_a_reload_on_replica_a_reaches_replica_b(
        pair: tuple[Replica, Replica], slack: FakeSlack, knowledge_copy: Path) -> None:
    a, b = pair
    old = b.engine.version
    _edit(knowledge_copy / "topics" / "salary.yaml", "title: Salary and compensation",
          "title: Salary and pay")
    [call] = await slack.responses(await a.peer.command("reload", user=ADMIN))
    assert header(call) == "Knowledge reloaded"
    assert f"{old} → {a.engine.version}" in call["text"]
    assert "1 other replica received the notice" in call["text"]

    await b.runtime.wait_until(lambda: b.engine.version == a.engine.version, WAIT)
    [answer] = await slack.responses(await b.peer.command("compare salary"))
    assert header(answer) == "Data scientist vs ML engineer: Salary and pay"
    status, health = await b.health()
    assert status == 200 and health["version"] == a.engine.version
    assert health["last_reload"] | {"at": None} == {
        "ok": True, "origin": "notice", "at": None, "version": a.engine.version,
        "previous": old, "from": a.runtime.replica, "announced": a.engine.version}


async def test_a_replica_whose_reload_fails_keeps_its_version_and_says_so(
        slack: FakeSlack, settings: Settings, knowledge_copy: Path, tmp_path: Path,
        redis_store: Callable[..., RedisStore], caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    broken = tmp_path / "b-knowledge"
    shutil.copytree(knowledge_copy, broken)
    async with replica(slack, settings, knowledge_copy, redis_store()) as a, \
            replica(slack, settings, broken, redis_store()) as b:
        old = b.engine.version
        _edit(knowledge_copy / "topics" / "salary.yaml", "title: Salary and compensation",
              "title: Salary and pay")
        _edit(broken / "topics" / "salary.yaml", "title: Salary and compensation", 'title: ""')
        caplog.set_level("INFO", logger="bot.runtime")
        [call] = await slack.responses(await a.peer.command("reload", user=ADMIN))
        assert "1 other replica received the notice" in call["text"]
        await b.runtime.wait_until(lambda: b.runtime.last_reload is not None, WAIT)
        status, health = await b.health()
        [answer] = await slack.responses(await b.peer.command("compare salary"))
    assert b.engine.version == old != a.engine.version
    assert header(answer) == "Data scientist vs ML engineer: Salary and compensation"
    assert status == 200 and health["version"] == old  # still serving: still ready
    assert health["last_reload"]["ok"] is False
    assert any(p.startswith("topics/salary.yaml: title: must be non-empty text")
               for p in health["last_reload"]["problems"])  # with the line, where known
    assert health["warning"] == f"the last reload failed; still serving version {old}"
    [logged] = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert f"still serving version {old}" in logged and "topics/salary.yaml" in logged


# ---------------------------------------------------------------------- two real processes


@dataclass
class Process:
    """`careerbot serve slack` in a process of its own; its JSON log lines, as they come."""

    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def pump(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            text = line.decode()
            try:
                event = json.loads(text)
            except ValueError:
                event = {"msg": "", "not_json": text}
            async with self.changed:
                self.raw.append(text)
                self.lines.append(event)
                self.changed.notify_all()

    async def logged(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            return next((m for line in self.lines
                         if (m := re.search(pattern, line["msg"]))), None)
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: found() is not None)
        match = found()
        assert match is not None
        return match


@asynccontextmanager
async def careerbot_process(env: dict[str, str], cwd: Path) -> AsyncIterator[Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "slack", cwd=cwd, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    running = Process(process)
    pump = asyncio.create_task(running.pump())
    try:
        yield running
    finally:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
        async with asyncio.timeout(WAIT):
            await process.wait()
            with suppress(Exception):
                await pump


async def test_two_processes_share_conversations_and_reloads_then_stop_on_sigterm(
        slack: FakeSlack, knowledge_copy: Path, redis_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DISCORD_", "CAREERBOT_", "REDIS_"))}
    env |= {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url, "CAREERBOT_SLACK_ADMINS": ADMIN,
            "CAREERBOT_KNOWLEDGE_DIR": str(knowledge_copy), "REDIS_URL": redis_url,
            "CAREERBOT_HOST": "127.0.0.1", "CAREERBOT_PORT": "0", "CAREERBOT_OPS_PORT": "0",
            "CAREERBOT_LOG_JSON": "1", "CAREERBOT_LEARNING": "off", "PYTHONPATH": str(ROOT),
            "CAREERBOT_HASH_KEY": "replicas-share-this-key",
            "CAREERBOT_SHUTDOWN_GRACE": "4"}  # 1 s of settling after SIGTERM, not 5
    async with AsyncExitStack() as stack:
        a, b = [await stack.enter_async_context(careerbot_process(env, tmp_path))
                for _ in range(2)]
        session = await stack.enter_async_context(aiohttp.ClientSession())
        peers = []
        for process in (a, b):
            port = (await process.logged(r"Slack: HTTP mode on port (\d+)")).group(1)
            ops = (await process.logged(OPS_PORT)).group(1)
            await process.logged("listening for reload notices")
            peers.append(Peer(f"http://127.0.0.1:{port}", session, slack,
                              f"http://127.0.0.1:{ops}"))
        peer_a, peer_b = peers

        ts = await peer_a.mention("how much does an ML engineer earn?")
        await slack.wait_for("chat.postMessage", timeout=30)
        await peer_b.mention("what about data scientists?", thread_ts=ts)
        second = (await slack.wait_for("chat.postMessage", 2, timeout=30))[1]
        assert header(second) == "Salary and compensation: Data scientist"

        _edit(knowledge_copy / "topics" / "salary.yaml", "title: Salary and compensation",
              "title: Salary and pay")
        [call] = await slack.responses(await peer_a.command("reload", user=ADMIN), timeout=30)
        assert "1 other replica received the notice" in call["text"]
        version = (await b.logged(r"reloaded on notice from \S+: now serving version (\w+)")
                   ).group(1)
        async with asyncio.timeout(WAIT), session.get(peer_b.ops + HEALTH_PATH) as got:
            assert got.status == 200 and (await got.json())["version"] == version
        async with asyncio.timeout(WAIT), session.get(peer_a.ops + METRICS_PATH) as got:
            metrics = await got.text()
        assert 'careerbot_reloads_total{origin="admin",outcome="ok"} 1.0' in metrics
        assert 'careerbot_answers_total{platform="slack",topic="salary"} 1.0' in metrics

        for process in (a, b):
            process.process.send_signal(signal.SIGTERM)
        for process in (a, b):
            async with asyncio.timeout(30):
                assert await process.process.wait() == 0
            await process.logged("stopped cleanly", timeout=WAIT)

    assert [line for line in a.lines + b.lines if "not_json" in line] == []  # one JSON a line
    logged = "".join(a.raw + b.raw)
    for secret in (slack.bot_token, SECRET, USER, ADMIN):
        assert secret not in logged  # never a token or a raw user id
    # both replicas name the asker alike: keyed with the records' key, not per process
    ref = f"u-{keyed_hash(b'replicas-share-this-key', 'slack', USER)[:12]}"
    assert ref in "".join(a.raw) and ref in "".join(b.raw)


async def test_sigterm_finishes_the_answer_in_flight_then_exits(
        slack: FakeSlack, tmp_path: Path) -> None:
    """An answer still being posted when SIGTERM comes is posted; then the process exits 0."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DISCORD_", "CAREERBOT_", "REDIS_"))}
    env |= {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url, "CAREERBOT_HOST": "127.0.0.1",
            "CAREERBOT_PORT": "0", "CAREERBOT_OPS_PORT": "0", "CAREERBOT_LOG_JSON": "1",
            "CAREERBOT_LEARNING": "off",
            "PYTHONPATH": str(ROOT), "CAREERBOT_SHUTDOWN_GRACE": "4"}
    async with careerbot_process(env, tmp_path) as bot, aiohttp.ClientSession() as session:
        port = (await bot.logged(r"Slack: HTTP mode on port (\d+)")).group(1)
        ops = (await bot.logged(OPS_PORT)).group(1)
        peer = Peer(f"http://127.0.0.1:{port}", session, slack, f"http://127.0.0.1:{ops}")
        slack.open.clear()  # chat.postMessage will not return until the test says so
        await peer.mention("how much does an ML engineer earn?")
        await slack.wait_for("chat.postMessage", timeout=30)
        bot.process.send_signal(signal.SIGTERM)
        await bot.logged(r"finishing 1 request\(s\) in flight")
        async with asyncio.timeout(WAIT), session.get(peer.ops + HEALTH_PATH) as got:
            assert got.status == 503 and (await got.json())["draining"] is True
        assert bot.process.returncode is None  # waiting for the answer to go out
        slack.open.set()
        async with asyncio.timeout(30):
            assert await bot.process.wait() == 0
        await bot.logged("stopped cleanly", timeout=WAIT)
