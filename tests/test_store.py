"""The store's contract, held by both backends: in-process, and a real Redis.

Expiry is checked without waiting: the in-process store runs on a test clock;
in Redis the keys must carry the expiry (PTTL), which Redis then enforces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.core.context import Turn
from bot.settings import Settings
from bot.store import InProcessStore, RedisStore, Store, StoreError, open_store, redacted_url

WAIT = 5.0


@pytest.fixture(params=["in-process", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "in-process":
        return InProcessStore(context_ttl=60)
    return request.getfixturevalue("redis_store")(context_ttl=60)


async def test_context_is_kept_per_conversation(store: Store) -> None:
    assert await store.get_context("c1") is None
    await store.set_context("c1", Turn("salary", "ml_engineer"))
    await store.set_context("c2", Turn("tools", "both"))
    assert await store.get_context("c1") == Turn("salary", "ml_engineer")
    await store.set_context("c1", Turn("skills", "data_scientist"))  # the last turn wins
    assert await store.get_context("c1") == Turn("skills", "data_scientist")
    await store.forget_context("c1")
    assert await store.get_context("c1") is None
    assert await store.get_context("c2") == Turn("tools", "both")


async def test_rate_limit_is_a_sliding_window_per_key(store: Store) -> None:
    assert [await store.hit("slack:U1", 2) for _ in range(2)] == [0.0, 0.0]
    wait = await store.hit("slack:U1", 2)
    assert 0 < wait <= 60
    assert await store.hit("slack:U2", 2) == 0.0  # someone else
    assert await store.hit("slack:U1", 0) == 0.0  # no limit


async def test_first_seen_once(store: Store) -> None:
    assert await store.first_seen("slack:event:Ev1", 3600) is True
    assert await store.first_seen("slack:event:Ev1", 3600) is False
    assert await store.first_seen("slack:event:Ev2", 3600) is True


async def test_counters(store: Store) -> None:
    assert await store.counts("votes") == {}
    assert await store.incr("votes", "salary:both:helpful") == 1
    assert await store.incr("votes", "salary:both:helpful", 2) == 3
    await store.incr("votes", "tools:ml_engineer:not_helpful")
    assert await store.counts("votes") == {"salary:both:helpful": 3,
                                           "tools:ml_engineer:not_helpful": 1}


async def test_one_vote_a_voter_per_answer(store: Store) -> None:
    async def cast(voter: str, answer: str, choice: str) -> tuple[str | None, dict[str, int]]:
        return await store.cast_vote(voter, answer, choice, counter="votes",
                                     field="salary:both:", ttl=3600)

    assert await cast("slack:U1", "slack:m1", "helpful") == (None, {"helpful": 1})
    assert await cast("slack:U1", "slack:m1", "helpful") == ("helpful", {"helpful": 1})
    assert await cast("slack:U1", "slack:m1", "helpful") == ("helpful", {"helpful": 1})
    assert await cast("slack:U1", "slack:m1", "not_helpful") == ("helpful",
                                                                 {"not_helpful": 1})
    assert await cast("slack:U2", "slack:m1", "helpful") == (None, {"helpful": 1,
                                                                    "not_helpful": 1})
    assert await cast("slack:U1", "slack:m2", "helpful") == (None, {"helpful": 1})
    assert await store.counts("votes") == {"salary:both:helpful": 2,
                                           "salary:both:not_helpful": 1}


async def test_notices_reach_every_subscriber(store: Store) -> None:
    async with store.subscribe("reload") as first, store.subscribe("reload") as second:
        assert await store.publish("reload", {"version": "v2", "replica": "a"}) == 2
        for subscription in (first, second):
            async with asyncio.timeout(WAIT):
                got = await anext(aiter(subscription))
            assert got == {"version": "v2", "replica": "a"}
    assert await store.publish("reload", {"version": "v3"}) == 0
    assert await store.ping()


async def test_in_process_expiry_follows_the_clock() -> None:
    now = [0.0]
    store = InProcessStore(context_ttl=60, clock=lambda: now[0])
    await store.set_context("c", Turn("salary", "both"))
    assert await store.first_seen("ev", ttl=100)
    assert await store.hit("u", 1, window=30) == 0.0
    assert await store.hit("u", 1, window=30) == 30.0
    now[0] = 29.9
    assert await store.get_context("c") == Turn("salary", "both")
    assert round(await store.hit("u", 1, window=30), 1) == 0.1
    now[0] = 30.0
    assert await store.hit("u", 1, window=30) == 0.0
    now[0] = 60.0
    assert await store.get_context("c") is None
    assert not await store.first_seen("ev", ttl=100)
    now[0] = 130.0
    assert await store.first_seen("ev", ttl=100)


async def test_redis_keys_expire(redis_store: Callable[..., RedisStore]) -> None:
    store = redis_store(context_ttl=90)
    await store.set_context("c", Turn("salary", "both"))
    await store.first_seen("ev", ttl=3600)
    await store.hit("u", 5, window=60)
    raw = store._redis  # the same connection pool, read-only here
    assert 0 < await raw.pttl(f"{store.prefix}context:c") <= 90_000
    assert 3_500_000 < await raw.pttl(f"{store.prefix}seen:ev") <= 3_600_000
    assert 0 < await raw.pttl(f"{store.prefix}rate:u") <= 60_000


async def test_the_rate_limit_holds_under_concurrent_hits(
        redis_store: Callable[..., RedisStore]) -> None:
    """Two replicas' connections hitting at once: exactly `limit` get through."""
    a, b = redis_store(), redis_store()
    hits: list[Awaitable[float]] = [s.hit("slack:T:U", 5) for _ in range(10) for s in (a, b)]
    results = await asyncio.gather(*hits)
    assert sum(1 for r in results if r == 0.0) == 5


async def test_an_unreachable_redis_is_a_store_error(redis_url: str) -> None:
    store = RedisStore("redis://:hunter2-password@127.0.0.1:1/0", timeout=1.0)
    try:
        with pytest.raises(StoreError) as raised:
            await store.get_context("c")
        assert "hunter2" not in str(raised.value)
        assert not await store.ping()
    finally:
        await store.close()


def test_open_store_follows_redis_url(redis_url: str) -> None:
    assert isinstance(open_store(Settings()), InProcessStore)
    store = open_store(Settings(redis_url=redis_url))
    assert isinstance(store, RedisStore) and store.shared
    assert store.description == "redis 127.0.0.1:" + redis_url.rsplit(":", 1)[1]
    assert redacted_url("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"


async def test_threads_joined_are_followed_on_the_context_clock() -> None:
    now = [0.0]
    store = InProcessStore(context_ttl=60, clock=lambda: now[0])
    assert not await store.in_thread("T:C:1.1")
    await store.join_thread("T:C:1.1")
    assert await store.in_thread("T:C:1.1")
    assert not await store.in_thread("T:C:2.2")  # another thread
    now[0] = 50.0
    await store.join_thread("T:C:1.1")  # answered again: renewed
    now[0] = 109.9
    assert await store.in_thread("T:C:1.1")
    now[0] = 110.0
    assert not await store.in_thread("T:C:1.1")


async def test_threads_joined_are_shared_and_expire_in_redis(
        redis_store: Callable[..., RedisStore]) -> None:
    a, b = redis_store(context_ttl=90), redis_store(context_ttl=90)
    assert not await b.in_thread("T:C:1.1")
    await a.join_thread("T:C:1.1")
    assert await b.in_thread("T:C:1.1")  # another replica's connection sees it
    assert not await b.in_thread("T:C:2.2")
    assert 0 < await a._redis.pttl(f"{a.prefix}thread:T:C:1.1") <= 90_000
