"""Shared state behind one small async interface, in this process or in Redis.

Everything replicas must agree on goes through a `Store`:

- conversation context for follow-ups (`get_context`, `set_context`), forgotten
  `context_ttl` seconds after it was last set;
- threads the bot has answered in (`join_thread`, `in_thread`), on the same clock: a
  thread is followed as long as its follow-ups would keep their context;
- rate-limit counters (`hit`), a sliding window per key;
- keys seen once, such as Slack event ids (`first_seen`), forgotten after `ttl`;
- named counters (`incr`, `counts`);
- votes (`cast_vote`): one a voter per answer, changeable, tallied per answer and in a
  named counter;
- notices to every replica (`publish`, `subscribe`), such as "knowledge reloaded".

`InProcessStore` is the default: one process, nothing to install. `RedisStore`
(with `REDIS_URL`) is shared by every replica; redis-py is imported only when one
is opened. `open_store(settings)` picks between them.

A Redis that stalls, goes away or refuses writes costs one timeout, not one a
call: its calls then fail at once (`failing` says why) until a probe finds it
working again, with one warning each way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
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

log = logging.getLogger(__name__)

Message = dict[str, Any]
T = TypeVar("T")


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

    @property
    def failing(self) -> str | None:
        """Why the store's calls fail (a timeout, refused, out of memory), None while
        they work."""
        ...

    @property
    def failed_calls(self) -> int:
        """Calls that failed since the store began failing."""
        ...

    async def open(self) -> None:
        """Raise StoreError if the store can never work (a wrong password)."""
        ...

    async def get_context(self, conversation: str) -> Turn | None: ...

    async def set_context(self, conversation: str, turn: Turn) -> None: ...

    async def forget_context(self, conversation: str) -> None: ...

    async def join_thread(self, thread: str) -> None:
        """The bot answered in `thread`: it is followed for `context_ttl` seconds from now
        (each answer there renews it)."""
        ...

    async def in_thread(self, thread: str) -> bool:
        """Whether the bot answered in `thread` within the last `context_ttl` seconds."""
        ...

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

    async def cast_vote(self, voter: str, answer: str, choice: str, *, counter: str,
                        field: str, ttl: float) -> tuple[str | None, dict[str, int]]:
        """`voter`'s one vote on `answer` is now `choice` (remembered `ttl` seconds):
        a vote cast again counts once, a changed one moves. The named `counter`'s
        `field + choice` follows (and `field + previous` loses the vote it had).
        Returns the voter's previous choice (None the first time) and the answer's
        tally, choice -> votes, as one atomic step."""
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
    failing: str | None = None
    failed_calls = 0

    def __init__(self, context_ttl: float = 15 * 60, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.context_ttl = context_ttl
        self._clock = clock
        self._contexts = _Expiring(max_keys, clock)
        self._threads = _Expiring(max_keys, clock)
        self._seen = _Expiring(max_keys, clock)
        self._limiters: dict[tuple[int, float], RateLimiter] = {}
        self._counters: dict[str, Counter[str]] = {}
        self._votes = _Expiring(max_keys, clock)  # voter and answer -> choice
        self._tallies = _Expiring(max_keys, clock)  # answer -> Counter of choices
        self._subscribers: dict[str, list[asyncio.Queue[Message]]] = {}

    async def get_context(self, conversation: str) -> Turn | None:
        return cast(Turn | None, self._contexts.get(conversation))

    async def set_context(self, conversation: str, turn: Turn) -> None:
        self._contexts.set(conversation, turn, self.context_ttl)

    async def forget_context(self, conversation: str) -> None:
        self._contexts.pop(conversation)

    async def join_thread(self, thread: str) -> None:
        self._threads.set(thread, True, self.context_ttl)

    async def in_thread(self, thread: str) -> bool:
        return self._threads.get(thread) is not None

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

    async def cast_vote(self, voter: str, answer: str, choice: str, *, counter: str,
                        field: str, ttl: float) -> tuple[str | None, dict[str, int]]:
        previous = self._votes.get(f"{voter}\t{answer}")
        self._votes.set(f"{voter}\t{answer}", choice, ttl)
        tally: Counter[str] = self._tallies.get(answer) or Counter()
        if previous != choice:
            counts = self._counters.setdefault(counter, Counter())
            if previous is not None:
                tally[previous] -= 1
                counts[field + previous] -= 1
            tally[choice] += 1
            counts[field + choice] += 1
        self._tallies.set(answer, tally, ttl)
        return previous, {k: v for k, v in tally.items() if v > 0}

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

    async def open(self) -> None:
        return None

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

#: the event dedupe runs before Slack's ack, which is due in 3 s; a healthy Redis answers
#: in well under a millisecond, so one that takes 200 ms is stalled, not slow
QUICK_TIMEOUT = 0.2
#: while the store fails, a probe writes a key this often at most (redis-py's backoff)
PROBE_CAP = 2.0
#: the listener polls this often, so its health check (a PING) goes out while it is idle
LISTEN_POLL = 5.0

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


# A voter's one vote on an answer, and the answer's tally, in one step: KEYS are the
# voter's key, the answer's tally and the named counter; ARGV the choice, the ttl in
# ms and the counter's field prefix. Returns the previous choice ('' for none) and
# the tally as a flat list.
_VOTE = """
local previous = redis.call('GET', KEYS[1]) or ''
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if previous ~= ARGV[1] then
  if previous ~= '' then
    redis.call('HINCRBY', KEYS[2], previous, -1)
    redis.call('HINCRBY', KEYS[3], ARGV[3] .. previous, -1)
  end
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  redis.call('HINCRBY', KEYS[3], ARGV[3] .. ARGV[1], 1)
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {previous, redis.call('HGETALL', KEYS[2])}
"""


def redacted_url(url: str) -> str:
    """`url` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _reason(exc: BaseException) -> str:
    """What went wrong, on one line and without a secret (redis-py names none)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {QUICK_TIMEOUT * 1000:.0f} ms"
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


class _Breaker:
    """Whether the store's calls work, as a circuit breaker.

    The first failure opens it: calls then fail at once, so an outage costs one
    timeout and not one a request, while a probe (on redis-py's Retry and backoff)
    writes a key until Redis takes it, which closes it. A write, so that a Redis
    refusing writes (OOM under maxmemory) is not taken for a working one. One
    warning when it opens and one when it closes, with the calls that failed between.
    """

    def __init__(self, description: str, probe: Callable[[], Awaitable[object]]):
        self.description = description
        self._probe = probe
        #: why the store is failing; None while it works
        self.error: str | None = None
        #: calls that failed since it opened
        self.failed = 0
        self._since = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.working = asyncio.Event()
        self.working.set()

    def trip(self, reason: str) -> None:
        self.failed += 1
        if self.error is not None or self._closed:
            return
        self.error, self._since = reason, time.monotonic()
        self.working.clear()
        log.warning("the store (%s) is failing (%s): serving without shared state until "
                    "it answers again", self.description, reason)
        self._task = asyncio.create_task(self._until_it_works(), name="store probe")

    async def _until_it_works(self) -> None:
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff
        from redis.exceptions import ConnectionError, RedisError

        async def probe() -> object:
            if self._closed:  # closing: stop probing (a cancel alone may be taken for
                return None   # the probe's own timeout, and retried)
            try:
                return await self._probe()
            except OSError as exc:  # an asyncio timeout: retried as redis-py's own are
                raise ConnectionError(_reason(exc)) from exc

        async def still_failing(exc: Exception) -> None:
            self.error = _reason(exc.__cause__ or exc)

        retry = Retry(ExponentialWithJitterBackoff(cap=PROBE_CAP, base=0.05), retries=-1,
                      supported_errors=(RedisError,))
        await retry.call_with_retry(probe, still_failing)
        if self._closed:
            return
        log.warning("the store (%s) answers again after %.1f s; %d call(s) failed meanwhile",
                    self.description, time.monotonic() - self._since, self.failed)
        self.error, self.failed = None, 0
        self.working.set()

    async def close(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=PROBE_CAP + 1)


class RedisStore:
    """State shared by every replica, in Redis (redis-py's asyncio client).

    Keys start with `prefix` ("careerbot:" by default), so one Redis can serve
    several bots or test runs. Conversation context, followed threads and seen keys
    expire in Redis.

    Three clients, each timed for its use: the event dedupe (`first_seen`, before
    Slack's ack) gives up after `quick_timeout`, and remembers this replica's keys
    in process as well, so a retry to the same replica is still known while Redis
    is away; the other calls wait `timeout`, retried once on a dropped connection;
    the notice listener reconnects and resubscribes by itself, with backoff.
    A `_Breaker` makes an outage cost one timeout.
    """

    shared = True

    def __init__(self, url: str, *, context_ttl: float = 15 * 60,
                 prefix: str = "careerbot:", timeout: float = 2.0,
                 quick_timeout: float = QUICK_TIMEOUT, max_keys: int = 10_000):
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
            from redis.exceptions import ConnectionError, RedisError
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise StoreError("REDIS_URL is set but the redis package is not installed: "
                             "pip install 'careerbot[redis]'") from None
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.url = url
        self.context_ttl = context_ttl
        self.prefix = prefix
        self.quick_timeout = quick_timeout
        parts = urlsplit(url)
        self.description = (f"redis {parts.hostname or 'localhost'}:{parts.port or 6379}"
                            f"{parts.path or '/0'}")
        # a connection dropped under a call (Redis restarted) is retried on a new one;
        # a timeout is not: a stalled Redis would only stall the retry too
        once = Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.01), retries=1,
                     supported_errors=(ConnectionError,))
        try:
            self._redis = aioredis.from_url(url, decode_responses=True,
                                            socket_timeout=timeout,
                                            socket_connect_timeout=timeout,
                                            retry=once, health_check_interval=30)
            self._quick = aioredis.from_url(url, decode_responses=True,
                                            socket_timeout=quick_timeout,
                                            socket_connect_timeout=quick_timeout,
                                            retry=once)
            # waits for notices as long as it takes; the subscription retries with backoff
            self._listener = aioredis.from_url(url, decode_responses=True,
                                               socket_timeout=timeout,
                                               socket_connect_timeout=timeout,
                                               retry=Retry(NoBackoff(), 0),
                                               health_check_interval=30)
        except ValueError as exc:
            raise StoreError(f"REDIS_URL is not a Redis URL ({exc})") from None
        self._hit = self._redis.register_script(_HIT)
        self._vote = self._redis.register_script(_VOTE)
        self._seen_here = _Expiring(max_keys, time.monotonic)
        self._breaker = _Breaker(self.description, self._probe)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # ------------------------------------------------------------------ health

    @property
    def failing(self) -> str | None:
        """Why the store's calls fail, or None while they work."""
        return self._breaker.error

    @property
    def failed_calls(self) -> int:
        """Calls that failed since the store began failing."""
        return self._breaker.failed

    async def wait_working(self, timeout: float) -> None:
        """Until the store's calls work again (at once if they do)."""
        async with asyncio.timeout(timeout):
            await self._breaker.working.wait()

    async def _probe(self) -> object:
        async with asyncio.timeout(self.quick_timeout):
            return await self._quick.set(self._key("probe"), "1", px=10_000)

    async def _call(self, call: Callable[[], Awaitable[T]], *, quick: bool = False) -> T:
        """`call`, unless the store is failing; its error as a StoreError."""
        if self._breaker.error is not None:
            self._breaker.failed += 1
            raise StoreError(f"{self.description}: unavailable ({self._breaker.error})")
        try:
            if quick:
                async with asyncio.timeout(self.quick_timeout):
                    return await call()
            return await call()
        except self._errors as exc:
            reason = _reason(exc)
            self._breaker.trip(reason)
            raise StoreError(f"{self.description}: {reason}") from exc

    async def open(self) -> None:
        """Check that Redis takes this client: a wrong password is an error now, not a
        warning a call. An unreachable Redis is not: it may come up after the bot."""
        from redis.exceptions import AuthenticationError, ResponseError

        try:
            async with asyncio.timeout(5.0):
                await self._redis.ping()
        except AuthenticationError as exc:
            raise StoreError(f"{self.description} refused the credentials in REDIS_URL "
                             f"({exc})") from None
        except ResponseError as exc:
            if "AUTH" in str(exc).upper():  # NOAUTH, or a password Redis does not want
                raise StoreError(f"{self.description} refused the credentials in REDIS_URL "
                                 f"({exc})") from None
            self._breaker.trip(_reason(exc))
        except self._errors as exc:
            self._breaker.trip(_reason(exc))

    # ------------------------------------------------------------------ state

    async def get_context(self, conversation: str) -> Turn | None:
        raw = await self._call(lambda: self._redis.get(self._key("context", conversation)))
        if not raw:
            return None
        topic, _, role = str(raw).partition("\t")  # decode_responses: always str
        return Turn(topic, cast(Role, role)) if role in ROLES else None

    async def set_context(self, conversation: str, turn: Turn) -> None:
        await self._call(lambda: self._redis.set(self._key("context", conversation),
                                                 f"{turn.topic}\t{turn.role}",
                                                 px=max(1, int(self.context_ttl * 1000))))

    async def forget_context(self, conversation: str) -> None:
        await self._call(lambda: self._redis.delete(self._key("context", conversation)))

    async def join_thread(self, thread: str) -> None:
        await self._call(lambda: self._redis.set(self._key("thread", thread), "1",
                                                 px=max(1, int(self.context_ttl * 1000))))

    async def in_thread(self, thread: str) -> bool:
        return bool(await self._call(lambda: self._redis.exists(self._key("thread", thread))))

    async def hit(self, key: str, limit: int, window: float = 60.0) -> float:
        if limit <= 0:
            return 0.0
        wait = await self._call(lambda: self._hit(
            keys=[self._key("rate", key)],
            args=[limit, max(1, int(window * 1000)), uuid.uuid4().hex]))
        return int(wait) / 1000

    async def first_seen(self, key: str, ttl: float) -> bool:
        """Seen by this replica (kept in process too), else by any: within
        `quick_timeout` or not at all (a StoreError, with the key remembered here)."""
        if self._seen_here.get(key) is not None:
            return False
        self._seen_here.set(key, True, ttl)
        return bool(await self._call(lambda: self._quick.set(
            self._key("seen", key), "1", nx=True, px=max(1, int(ttl * 1000))), quick=True))

    async def incr(self, counter: str, field: str, by: int = 1) -> int:
        return int(await self._call(
            lambda: self._redis.hincrby(self._key("count", counter), field, by)))

    async def counts(self, counter: str) -> dict[str, int]:
        raw = await self._call(lambda: self._redis.hgetall(self._key("count", counter)))
        return {str(k): int(v) for k, v in raw.items()}

    async def cast_vote(self, voter: str, answer: str, choice: str, *, counter: str,
                        field: str, ttl: float) -> tuple[str | None, dict[str, int]]:
        previous, flat = await self._call(lambda: self._vote(
            keys=[self._key("vote", voter, answer), self._key("tally", answer),
                  self._key("count", counter)],
            args=[choice, max(1, int(ttl * 1000)), field]))
        tally = {str(k): int(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
        return (str(previous) or None), {k: v for k, v in tally.items() if v > 0}

    async def publish(self, channel: str, message: Message) -> int:
        """Also kept as the channel's last notice, for a replica that resubscribes after
        losing its connection (it may have missed this one)."""
        async def send() -> list[Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._key("notice", channel, "last"), json.dumps(message))
                pipe.publish(self._key("notice", channel), json.dumps(message))
                return cast(list[Any], await pipe.execute())

        return int((await self._call(send))[1])

    async def last_notice(self, channel: str) -> Message | None:
        """The last notice published on `channel`, if any is kept."""
        raw = await self._call(lambda: self._redis.get(self._key("notice", channel, "last")))
        try:
            message = json.loads(raw) if raw else None
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        pubsub = self._listener.pubsub(ignore_subscribe_messages=False)
        try:
            try:
                await pubsub.subscribe(self._key("notice", channel))
                # subscribed once Redis confirms: a notice published after this is ours
                async with asyncio.timeout(30):
                    while True:
                        confirm = await pubsub.get_message(timeout=10)
                        if confirm and confirm.get("type") == "subscribe":
                            break
            except self._errors as exc:
                raise StoreError(f"{self.description}: {_reason(exc)}") from exc
            yield _PubSubSubscription(pubsub, self, channel)
        finally:
            await pubsub.aclose()

    async def ping(self) -> bool:
        """Whether the store works now (False at once while its calls are failing)."""
        if self.failing is not None:
            return False
        try:
            return bool(await self._call(self._quick.ping, quick=True))
        except StoreError:
            return False

    async def close(self) -> None:
        await self._breaker.close()
        await self._redis.aclose()
        await self._quick.aclose()
        await self._listener.aclose()


class _PubSubSubscription:
    """Notices until cancelled. A dropped connection is reconnected by redis-py's Retry
    (with backoff, for as long as it takes) and the channel resubscribed; then the
    channel's last notice is delivered again, as one may have been sent meanwhile."""

    def __init__(self, pubsub: Any, store: RedisStore, channel: str):
        self._pubsub = pubsub
        self._store = store
        self._channel = channel

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _lost(self, exc: Exception) -> None:
        if self._store.failing is None:
            log.warning("reload notices: lost the connection to %s (%s); reconnecting",
                        self._store.description, _reason(exc))

    async def _iterate(self) -> AsyncIterator[Message]:
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialWithJitterBackoff
        from redis.exceptions import ConnectionError, TimeoutError

        retry = Retry(ExponentialWithJitterBackoff(cap=10.0, base=0.1), retries=-1,
                      supported_errors=(ConnectionError, TimeoutError))
        while True:
            raw = await retry.call_with_retry(
                lambda: self._pubsub.get_message(timeout=LISTEN_POLL), self._lost)
            if not raw:
                continue
            if raw.get("type") == "subscribe":  # again, after a reconnect
                log.info("reload notices: resubscribed on %s", self._store.description)
                try:
                    missed = await self._store.last_notice(self._channel)
                except StoreError:
                    missed = None
                if missed is not None:
                    yield missed
                continue
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
