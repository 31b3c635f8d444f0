"""Shared state behind one small async interface, in this process or in Redis.

Everything replicas must agree on goes through a `Store`:

- conversation context for follow-ups (`get_context`, `set_context`), forgotten
  `context_ttl` seconds after it was last set;
- rate-limit counters (`hit`), a sliding window per key;
- keys seen once, such as Slack event ids (`first_seen`), forgotten after `ttl`;
- named counters, such as votes (`incr`, `counts`);
- notices to every replica (`publish`, `subscribe`), such as "knowledge reloaded".

`InProcessStore` is the default: one process, nothing to install. `RedisStore`
(with `REDIS_URL`) is shared by every replica; redis-py is imported only when one
is opened. `open_store(settings)` picks between them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

from bot.core.context import Turn
from bot.core.models import ROLES, Role
from bot.core.ratelimit import RateLimiter

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "InProcessStore",
    "RedisStore",
    "Store",
    "StoreError",
    "Subscription",
    "open_store",
    "redacted_url",
]

Message = dict[str, Any]


class StoreError(Exception):
    """The store could not be reached or answered wrongly (the message names no secret)."""


class Subscription(Protocol):
    """Notices on one channel, from the moment `subscribe` returned it."""

    def __aiter__(self) -> AsyncIterator[Message]: ...


class Store(Protocol):
    """What replicas share. Every call may raise StoreError."""

    #: True when other processes see the same state (Redis), False in-process
    shared: bool
    #: "in-process" or "redis host:port/db", for logs and /healthz (never a password)
    description: str

    async def get_context(self, conversation: str) -> Turn | None: ...

    async def set_context(self, conversation: str, turn: Turn) -> None: ...

    async def forget_context(self, conversation: str) -> None: ...

    async def hit(self, key: str, limit: int, window: float = 60.0) -> float:
        """Count one event for `key` if fewer than `limit` happened in the last `window`
        seconds and return 0.0; else count nothing and return the seconds until one
        more is allowed (always > 0)."""
        ...

    async def first_seen(self, key: str, ttl: float) -> bool:
        """True the first time `key` is seen within `ttl` seconds, False after."""
        ...

    async def incr(self, counter: str, field: str, by: int = 1) -> int:
        """Add `by` to `field` of the named counter; the new value."""
        ...

    async def counts(self, counter: str) -> dict[str, int]:
        """Every field of the named counter (empty when none was counted)."""
        ...

    async def publish(self, channel: str, message: Message) -> int:
        """Send a JSON-able notice; how many subscribers (this process's included) got it."""
        ...

    def subscribe(self, channel: str) -> Any:
        """An async context manager giving a `Subscription`; subscribed once entered."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------------- in-process


class _Expiring:
    """Keys with a deadline each, least recently set dropped first past `size`."""

    def __init__(self, size: int, clock: Callable[[], float]):
        self.size = size
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any:
        item = self._items.get(key)
        if item is None:
            return None
        if self._clock() >= item[0]:
            del self._items[key]
            return None
        return item[1]

    def set(self, key: str, value: Any, ttl: float) -> None:
        self._items[key] = (self._clock() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)


class InProcessStore:
    """The single-process store: bounded, with the same expiry rules as Redis."""

    shared = False
    description = "in-process"

    def __init__(self, context_ttl: float = 15 * 60, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.context_ttl = context_ttl
        self._clock = clock
        self._contexts = _Expiring(max_keys, clock)
        self._seen = _Expiring(max_keys, clock)
        self._limiters: dict[tuple[int, float], RateLimiter] = {}
        self._counters: dict[str, Counter[str]] = {}
        self._subscribers: dict[str, list[asyncio.Queue[Message]]] = {}

    async def get_context(self, conversation: str) -> Turn | None:
        return cast(Turn | None, self._contexts.get(conversation))

    async def set_context(self, conversation: str, turn: Turn) -> None:
        self._contexts.set(conversation, turn, self.context_ttl)

    async def forget_context(self, conversation: str) -> None:
        self._contexts.pop(conversation)

    async def hit(self, key: str, limit: int, window: float = 60.0) -> float:
        if limit <= 0:
            return 0.0
        limiter = self._limiters.get((limit, window))
        if limiter is None:
            limiter = self._limiters[(limit, window)] = RateLimiter(limit, window,
                                                                    clock=self._clock)
        if limiter.allow(key):
            return 0.0
        return max(limiter.retry_after(key), 0.001)

    async def first_seen(self, key: str, ttl: float) -> bool:
        if self._seen.get(key) is not None:
            return False
        self._seen.set(key, True, ttl)
        return True

    async def incr(self, counter: str, field: str, by: int = 1) -> int:
        counts = self._counters.setdefault(counter, Counter())
        counts[field] += by
        return counts[field]

    async def counts(self, counter: str) -> dict[str, int]:
        return dict(self._counters.get(counter, {}))

    async def publish(self, channel: str, message: Message) -> int:
        queues = self._subscribers.get(channel, [])
        for queue in queues:
            queue.put_nowait(json.loads(json.dumps(message)))  # what Redis would deliver
        return len(queues)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._subscribers.setdefault(channel, []).append(queue)
        try:
            yield _QueueSubscription(queue)
        finally:
            self._subscribers[channel].remove(queue)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class _QueueSubscription:
    def __init__(self, queue: asyncio.Queue[Message]):
        self._queue = queue

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            yield await self._queue.get()


# ---------------------------------------------------------------------- Redis

# A sliding window in one sorted set per key, timed by the Redis server's clock so
# that replicas with skewed clocks still agree. Returns 0 (counted) or the
# milliseconds until the oldest event leaves the window.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


def redacted_url(url: str) -> str:
    """`url` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisStore:
    """State shared by every replica, in Redis (redis-py's asyncio client).

    Keys start with `prefix` ("careerbot:" by default), so one Redis can serve
    several bots or test runs. Conversation context and seen keys expire in Redis.
    """

    shared = True

    def __init__(self, url: str, *, context_ttl: float = 15 * 60,
                 prefix: str = "careerbot:", timeout: float = 5.0):
        try:
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise StoreError("REDIS_URL is set but the redis package is not installed: "
                             "pip install 'careerbot[redis]'") from None
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.url = url
        self.context_ttl = context_ttl
        self.prefix = prefix
        parts = urlsplit(url)
        self.description = (f"redis {parts.hostname or 'localhost'}:{parts.port or 6379}"
                            f"{parts.path or '/0'}")
        try:
            # commands time out; the subscriber's connection waits for notices as long
            # as it takes (a health check every 30 s notices a dead connection)
            self._redis = aioredis.from_url(url, decode_responses=True,
                                            socket_timeout=timeout,
                                            socket_connect_timeout=timeout)
            self._listener = aioredis.from_url(url, decode_responses=True,
                                               socket_connect_timeout=timeout,
                                               health_check_interval=30)
        except ValueError as exc:
            raise StoreError(f"REDIS_URL is not a Redis URL ({exc})") from None
        self._hit = self._redis.register_script(_HIT)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @asynccontextmanager
    async def _talking(self) -> AsyncIterator[None]:
        try:
            yield
        except self._errors as exc:
            raise StoreError(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    async def get_context(self, conversation: str) -> Turn | None:
        async with self._talking():
            raw = await self._redis.get(self._key("context", conversation))
        if not raw:
            return None
        topic, _, role = str(raw).partition("\t")  # decode_responses: always str
        return Turn(topic, cast(Role, role)) if role in ROLES else None

    async def set_context(self, conversation: str, turn: Turn) -> None:
        async with self._talking():
            await self._redis.set(self._key("context", conversation),
                                  f"{turn.topic}\t{turn.role}",
                                  px=max(1, int(self.context_ttl * 1000)))

    async def forget_context(self, conversation: str) -> None:
        async with self._talking():
            await self._redis.delete(self._key("context", conversation))

    async def hit(self, key: str, limit: int, window: float = 60.0) -> float:
        if limit <= 0:
            return 0.0
        async with self._talking():
            wait = await self._hit(keys=[self._key("rate", key)],
                                   args=[limit, max(1, int(window * 1000)), uuid.uuid4().hex])
        return int(wait) / 1000

    async def first_seen(self, key: str, ttl: float) -> bool:
        async with self._talking():
            return bool(await self._redis.set(self._key("seen", key), "1", nx=True,
                                              px=max(1, int(ttl * 1000))))

    async def incr(self, counter: str, field: str, by: int = 1) -> int:
        async with self._talking():
            return int(await self._redis.hincrby(self._key("count", counter), field, by))

    async def counts(self, counter: str) -> dict[str, int]:
        async with self._talking():
            raw = await self._redis.hgetall(self._key("count", counter))
        return {str(k): int(v) for k, v in raw.items()}

    async def publish(self, channel: str, message: Message) -> int:
        async with self._talking():
            return int(await self._redis.publish(self._key("notice", channel),
                                                 json.dumps(message)))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        pubsub = self._listener.pubsub(ignore_subscribe_messages=False)
        try:
            async with self._talking():
                await pubsub.subscribe(self._key("notice", channel))
                # subscribed once Redis confirms: a notice published after this is ours
                async with asyncio.timeout(30):
                    while True:
                        confirm = await pubsub.get_message(timeout=10)
                        if confirm and confirm.get("type") == "subscribe":
                            break
            yield _PubSubSubscription(pubsub, self)
        finally:
            await pubsub.aclose()

    async def ping(self) -> bool:
        try:
            async with self._talking():
                return bool(await self._redis.ping())
        except StoreError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
        await self._listener.aclose()


class _PubSubSubscription:
    def __init__(self, pubsub: Any, store: RedisStore):
        self._pubsub = pubsub
        self._store = store

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        async with self._store._talking():
            async for raw in self._pubsub.listen():
                if raw.get("type") != "message":
                    continue
                try:
                    message = json.loads(raw["data"])
                except ValueError:
                    continue
                if isinstance(message, dict):
                    yield message


def open_store(settings: Settings) -> Store:
    """Redis when REDIS_URL is set, else in-process."""
    if settings.redis_url:
        return RedisStore(settings.redis_url, context_ttl=settings.match.context_ttl)
    return InProcessStore(context_ttl=settings.match.context_ttl)
