"""The Redis store under faults, on a real redis-server of each test's own.

Frozen (SIGSTOP), killed and started again, out of memory (maxmemory + noeviction),
or asked with a wrong password. Every wait is bounded; nothing is timed except
Slack's own 3 s ack budget, which the dedupe must stay far inside.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core import Engine
from bot.core.context import Turn
from bot.runtime import RELOAD_CHANNEL, Runtime
from bot.settings import Settings
from bot.store import RedisStore, StoreError
from tests.redis_server import RedisProcess

WAIT = 10.0
#: Slack's deadline for an ack: the bound on anything the ack path waits for
ACK_BUDGET = 3.0


@pytest.fixture
async def store(own_redis: RedisProcess) -> AsyncIterator[RedisStore]:
    made = RedisStore(own_redis.url(), prefix=f"t-{uuid.uuid4().hex[:8]}:")
    try:
        yield made
    finally:
        await made.close()


def _store_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "bot.store" and r.levelno >= logging.WARNING]


async def test_a_frozen_redis_costs_one_short_timeout_and_duplicates_are_still_known(
        own_redis: RedisProcess, store: RedisStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.store")
    assert await store.first_seen("slack:event:Ev1", 3600) is True
    own_redis.freeze()
    async with asyncio.timeout(ACK_BUDGET):
        # known here already: no round trip at all
        assert await store.first_seen("slack:event:Ev1", 3600) is False
        with pytest.raises(StoreError, match="no answer within 200 ms"):
            await store.first_seen("slack:event:Ev2", 3600)
        # the breaker is open: the next calls fail at once, none waits for Redis
        for n in range(20):
            with pytest.raises(StoreError, match="unavailable"):
                await store.first_seen(f"slack:event:New{n}", 3600)
        with pytest.raises(StoreError, match="unavailable"):
            await store.set_context("c", Turn("salary", "both"))
        # Slack's retry of Ev2 to this replica: recognised while Redis is still away
        assert await store.first_seen("slack:event:Ev2", 3600) is False
        assert not await store.ping()
    assert store.failing == "no answer within 200 ms" and store.failed_calls == 22
    own_redis.thaw()
    await store.wait_working(WAIT)
    assert store.failing is None and await store.ping()
    assert await store.first_seen("slack:event:Ev3", 3600) is True
    assert await store.first_seen("slack:event:Ev2", 3600) is False  # Redis had it
    [away, back] = _store_lines(caplog)
    assert "is failing (no answer within 200 ms)" in away
    assert "answers again after" in back and "22 call(s) failed meanwhile" in back


async def test_a_redis_killed_and_started_again_is_used_again(
        own_redis: RedisProcess, store: RedisStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.store")
    await store.set_context("c", Turn("salary", "both"))
    own_redis.kill()
    for _ in range(5):
        with pytest.raises(StoreError):
            await store.get_context("c")
    assert store.failing is not None and "ConnectionError" in store.failing
    own_redis.restart()
    await store.wait_working(WAIT)
    assert await store.get_context("c") is None  # a new, empty Redis
    await store.set_context("c", Turn("tools", "both"))
    assert await store.get_context("c") == Turn("tools", "both")
    lines = _store_lines(caplog)
    assert len(lines) == 2 and "5 call(s) failed meanwhile" in lines[1]


async def test_out_of_memory_shows_degraded_until_writes_work_again(
        own_redis: RedisProcess, store: RedisStore, engine: Engine) -> None:
    runtime = Runtime(engine, Settings(), store)
    own_redis.command("SET", "filler", "x" * 2_000_000)
    own_redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    own_redis.command("CONFIG", "SET", "maxmemory", "1mb")
    assert await store.ping()  # PING still answers: it is not how health is judged
    await runtime.contexts.set_context("c", Turn("salary", "both"))  # refused: OOM
    ready, health = await runtime.health()
    assert ready  # still answering, without follow-up context
    assert health["store"]["ok"] is False and "OutOfMemoryError" in health["store"]["error"]
    assert 'careerbot_store_ok 0.0' in runtime.metrics.render().decode()
    own_redis.command("DEL", "filler")
    await store.wait_working(WAIT)
    await runtime.contexts.set_context("c", Turn("salary", "both"))
    _, health = await runtime.health()
    assert health["store"] == {"kind": store.description, "ok": True}
    assert await store.get_context("c") == Turn("salary", "both")


async def test_a_notice_missed_while_the_connection_was_down_is_delivered_after(
        own_redis: RedisProcess, store: RedisStore) -> None:
    async with store.subscribe(RELOAD_CHANNEL) as notices:
        # the subscriber's connection is cut; the loop does not run until the notice is
        # out, so it cannot have resubscribed in between
        own_redis.command("CLIENT", "KILL", "TYPE", "pubsub")
        notice = json.dumps({"replica": "a", "version": "v2"})
        own_redis.command("SET", f"{store.prefix}notice:{RELOAD_CHANNEL}:last", notice)
        assert own_redis.command("PUBLISH", f"{store.prefix}notice:{RELOAD_CHANNEL}",
                                 notice) == 0  # nobody heard it
        async with asyncio.timeout(WAIT):
            got = await anext(aiter(notices))
        assert got == {"replica": "a", "version": "v2"}
        # and a notice sent through the store is kept for the next one to miss
        assert await store.publish(RELOAD_CHANNEL, {"replica": "a", "version": "v3"}) == 1
        async with asyncio.timeout(WAIT):
            assert await anext(aiter(notices)) == {"replica": "a", "version": "v3"}
        assert await store.last_notice(RELOAD_CHANNEL) == {"replica": "a", "version": "v3"}


@pytest.mark.parametrize("password", ["wrong-hunter2", None], ids=["wrong", "none"])
async def test_a_wrong_redis_password_is_an_error_at_start(tmp_path: Path,
                                                           password: str | None) -> None:
    server = RedisProcess(tmp_path, "--requirepass", "right-s3cret")
    store = RedisStore(server.url(password))
    try:
        with pytest.raises(StoreError, match="refused the credentials in REDIS_URL") as raised:
            await store.open()
        assert "hunter2" not in str(raised.value) and "s3cret" not in str(raised.value)
        right = RedisStore(server.url("right-s3cret"))
        await right.open()
        assert right.failing is None
        await right.close()
    finally:
        await store.close()
        server.close()


async def test_an_absent_redis_at_start_is_only_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.store")
    store = RedisStore("redis://127.0.0.1:1/0")
    try:
        await store.open()  # no exception: Redis may come up after the bot
        assert store.failing is not None
        assert len(_store_lines(caplog)) == 1
    finally:
        await store.close()
