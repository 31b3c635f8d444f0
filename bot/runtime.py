"""What the platform adapters share in a serving process: the engine, the store, metrics.

`Runtime` is the one place where a question meets shared state: follow-up context
and rate limits through the `Store`, the answer counted in `Metrics`; where an
admin's reload is announced to the other replicas and their notices are acted
on; and what /healthz reports. Adapters hold one; they never reach the store
themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bot.core import Engine, Query, ReloadReport, Reply
from bot.core.context import Turn
from bot.logs import user_ref
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store import InProcessStore, Store, StoreError

__all__ = ["RELOAD_CHANNEL", "ReloadOutcome", "Runtime", "Vote"]

log = logging.getLogger(__name__)

RELOAD_CHANNEL = "reload"
#: Slack retries an event within minutes; an hour of memory is plenty
EVENT_TTL = 3600.0
#: a voter's choice on an answer is remembered this long (the learning records' default
#: retention): a press after that counts as a new vote
VOTE_TTL = 90 * 86400.0


def _replica_id() -> str:
    """The pod's (host's) name, the process id, and a few random bits for uniqueness."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ReloadOutcome:
    """An admin's reload here, and how many other replicas were told of it."""

    report: ReloadReport
    #: other replicas that received the notice; None when the store is not shared
    told: int | None = None
    #: the notice could not be sent (the store is unreachable)
    unsent: bool = False

    @property
    def ok(self) -> bool:
        return self.report.ok

    def summary(self) -> str:
        text = self.report.summary()
        if self.unsent:
            text += ("\nThe other replicas could not be told (the shared store is "
                     "unreachable); they keep serving what they have until their next reload.")
        elif self.told is not None:
            text += (f"\n{self.told} other replica{'' if self.told == 1 else 's'} "
                     "received the notice to reload.")
        return text


@dataclass(frozen=True)
class Vote:
    """What became of a vote: counted (the first), changed (it moved), unchanged (cast
    again), refused (no such topic or role), unrecorded (the store failed)."""

    outcome: Literal["counted", "changed", "unchanged", "refused", "unrecorded"]
    #: "helpful" or "not_helpful" ("" when refused)
    choice: str = ""
    #: the answer's votes, choice -> count (empty when refused or unrecorded)
    tally: dict[str, int] = field(default_factory=dict)

    @property
    def recorded(self) -> bool:
        """A new or moved vote: what the learning records should note."""
        return self.outcome in ("counted", "changed")


class _Contexts:
    """The store's conversation context, degrading to "no context" if the store fails."""

    def __init__(self, runtime: Runtime):
        self._rt = runtime

    async def get_context(self, conversation: str) -> Turn | None:
        try:
            return await self._rt.store.get_context(conversation)
        except StoreError as exc:
            self._rt.failed("store", exc)
            return None

    async def set_context(self, conversation: str, turn: Turn) -> None:
        try:
            await self._rt.store.set_context(conversation, turn)
        except StoreError as exc:
            self._rt.failed("store", exc)


class Runtime:
    def __init__(self, engine: Engine, settings: Settings, store: Store | None = None, *,
                 metrics: Metrics | None = None, replica: str | None = None):
        self.engine = engine
        self.settings = settings
        self.store: Store = store or InProcessStore(context_ttl=settings.match.context_ttl)
        self.metrics = metrics or Metrics()
        self.replica = replica or _replica_id()
        self.contexts = _Contexts(self)
        self.draining = False
        self.listening = False
        self.last_reload: dict[str, Any] | None = None
        #: the learning recorder's health() for /healthz (set where it is made: serve)
        self.learning: Callable[[], dict[str, Any]] | None = None
        self._platforms: dict[str, Callable[[], bool]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed: asyncio.Condition | None = None
        self._reloading: asyncio.Lock | None = None
        self.metrics.serving(engine.version)

    # ------------------------------------------------------------------ questions

    async def ask(self, query: Query) -> Reply:
        """The engine's answer within its conversation; counted, timed and logged."""
        started = time.perf_counter()
        reply = await self.engine.converse(query, self.contexts)
        seconds = time.perf_counter() - started
        self.metrics.asked(query.platform, reply, seconds)
        log.info("question %s", reply.kind, extra={"fields": {
            "platform": query.platform, "topic": reply.topic, "role": reply.role,
            "confidence": reply.confidence, "ms": round(seconds * 1000, 2),
            "user": user_ref(query.platform, query.user)}})
        return reply

    async def remember(self, conversation: str, reply: Reply) -> None:
        """An answer not from `ask` (a button, a comparison) still sets follow-up context."""
        turn = Turn.of(reply)
        if conversation and turn is not None:
            await self.contexts.set_context(conversation, turn)

    async def retry_after(self, platform: str, user: str) -> float:
        """The per-user rate limit, across replicas: 0 to go ahead, else seconds to wait."""
        try:
            wait = await self.store.hit(f"{platform}:{user}", self.settings.rate_limit_per_minute)
        except StoreError as exc:
            self.failed("store", exc)
            return 0.0  # better an extra answer than none
        if wait:
            self.metrics.rate_limited.labels(platform).inc()
        return wait

    async def first_time(self, key: str, ttl: float = EVENT_TTL) -> bool:
        """True the first time any replica sees `key` (e.g. a Slack event id)."""
        try:
            return await self.store.first_seen(key, ttl)
        except StoreError as exc:
            self.failed("store", exc)
            return True  # better a rare double answer than none

    async def vote(self, platform: str, user: str, answer: str, topic: str, role: str,
                   helpful: bool) -> Vote:
        """`user`'s one vote on the answer `answer` (its message id): cast again it counts
        once, changed it moves, across replicas. A topic we do not have (or a role it
        has no answer for) is refused, as is a vote without an answer to hold it."""
        known = self.engine.knowledge.topics.get(topic)
        if known is None or known.smalltalk or role not in known.roles or not (user and answer):
            return Vote("refused")
        choice = "helpful" if helpful else "not_helpful"
        try:
            previous, tally = await self.store.cast_vote(
                f"{platform}:{user}", f"{platform}:{answer}", choice, counter="votes",
                field=f"{topic}:{role}:", ttl=VOTE_TTL)
        except StoreError as exc:
            self.failed("store", exc)
            return Vote("unrecorded", choice)
        if previous == choice:
            return Vote("unchanged", choice, tally)
        self.metrics.votes.labels(platform, choice).inc()
        return Vote("counted" if previous is None else "changed", choice, tally)

    def failed(self, where: str, exc: BaseException) -> None:
        """Count an error and log it on one line (no traceback for a store hiccup). The
        store's own calls are not logged one by one: the store says when it begins
        failing and when it works again."""
        self.metrics.errors.labels(where).inc()
        if where == "store":
            log.debug("store call failed: %s", exc)
        else:
            log.warning("%s failed: %s", where, exc)

    # ------------------------------------------------------------------ reload

    async def _reload(self) -> ReloadReport:
        """The engine's reload in a worker thread (loading and building the matcher take
        tens of milliseconds the event loop would otherwise stand still for), one at a
        time."""
        if self._reloading is None:
            self._reloading = asyncio.Lock()
        async with self._reloading:
            return await asyncio.to_thread(self.engine.reload)

    async def reload(self, *, origin: str = "admin", announce: bool = True) -> ReloadOutcome:
        """A reload here (an admin's, or a signal's); when it worked and `announce`, a
        notice to every other replica."""
        report = await self._reload()
        self._reloaded(report, origin=origin)
        if not report.ok or not self.store.shared or not announce:
            return ReloadOutcome(report)
        notice = {"replica": self.replica, "version": report.version}
        try:
            received = await self.store.publish(RELOAD_CHANNEL, notice)
        except StoreError as exc:
            self.failed("reload notice", exc)
            return ReloadOutcome(report, unsent=True)
        told = max(0, received - (1 if self.listening else 0))
        log.info("reload notice for version %s sent: %d other replica(s) received it",
                 report.version, told)
        return ReloadOutcome(report, told)

    async def listen(self) -> None:
        """Act on other replicas' reload notices until cancelled; resubscribe after errors."""
        backoff = 1.0
        while True:
            try:
                async with self.store.subscribe(RELOAD_CHANNEL) as notices:
                    await self._set(listening=True)
                    backoff = 1.0
                    log.info("listening for reload notices (%s)", self.store.description)
                    async for notice in notices:
                        await self._on_notice(notice)
            except StoreError as exc:
                self.failed("reload notices", exc)
            finally:
                self.listening = False
            await asyncio.sleep(backoff)  # a pause before reconnecting, not a wait on a result
            backoff = min(backoff * 2, 30.0)

    async def _on_notice(self, notice: dict[str, Any]) -> None:
        sender = str(notice.get("replica", "?"))
        if sender == self.replica:
            return
        announced = str(notice.get("version", ""))
        if announced and announced == self.engine.version:
            return  # already serving it (a notice delivered again after a reconnect)
        report = await self._reload()
        self._reloaded(report, origin="notice", sender=sender, announced=announced)
        await self._set()

    def _reloaded(self, report: ReloadReport, *, origin: str, sender: str = "",
                  announced: str = "") -> None:
        outcome = "ok" if report.ok else "failed"
        if report.ok and announced and report.version != announced:
            outcome = "other_version"
        self.metrics.reloads.labels(origin, outcome).inc()
        self.metrics.serving(self.engine.version)
        self.last_reload = {"ok": report.ok, "origin": origin, "at": _now(),
                            "version": report.version, "previous": report.previous_version}
        if origin != "notice":
            return
        self.last_reload |= {"from": sender, "announced": announced}
        if not report.ok:
            problems = [str(p) for p in report.problems]
            self.last_reload["problems"] = problems[:10]
            log.warning("reload on notice from %s failed; still serving version %s: %s",
                        sender, report.previous_version, "; ".join(problems[:10]))
        elif outcome == "other_version":
            log.warning("reloaded on notice from %s: now serving version %s, but it announced "
                        "%s (is the knowledge the same on every replica?)",
                        sender, report.version, announced)
        else:
            log.info("reloaded on notice from %s: now serving version %s", sender,
                     report.version)

    # ------------------------------------------------------------------ waiting (tests, drain)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _set(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        async with self._condition():
            self._condition().notify_all()

    async def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Until `ready()` holds after a change (listening, a notice handled)."""
        async with asyncio.timeout(timeout), self._condition():
            await self._condition().wait_for(ready)

    # ------------------------------------------------------------------ health

    def set_platform(self, name: str, up: bool | Callable[[], bool]) -> None:
        """Register (or update) a platform's connection state for readiness."""
        self._platforms[name] = up if callable(up) else (lambda: up)

    def platforms(self) -> dict[str, bool]:
        return {name: bool(up()) for name, up in self._platforms.items()}

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Readiness and what /healthz shows: knowledge loaded, platforms connected."""
        platforms = self.platforms()
        try:
            async with asyncio.timeout(1.0):
                store_ok = await self.store.ping()
        except TimeoutError:
            store_ok = False
        failing = self.store.failing
        store: dict[str, Any] = {"kind": self.store.description,
                                 "ok": store_ok and failing is None}
        if failing is not None:  # degraded: answering, without shared state
            store |= {"error": failing, "failed_calls": self.store.failed_calls}
        self.metrics.store_ok.set(1 if store["ok"] else 0)
        knowledge = self.engine.knowledge
        ready = bool(knowledge.topics) and all(platforms.values()) and not self.draining
        self.metrics.ready.set(1 if ready else 0)
        body: dict[str, Any] = {
            "ok": ready, "live": True, "ready": ready, "draining": self.draining,
            "replica": self.replica, "version": knowledge.version,
            "topics": len(knowledge.topics), "platforms": platforms,
            "store": store,
            "in_flight": len(self._tasks),
            "last_reload": self.last_reload,
        }
        if self.learning is not None:  # degraded or not, never a reason to be unready
            body["learning"] = self.learning()
        if self.store.shared:
            body["listening"] = self.listening
        if self.last_reload and not self.last_reload["ok"]:
            body["warning"] = (f"the last reload failed; still serving version "
                               f"{knowledge.version}")
        return ready, body

    # ------------------------------------------------------------------ in flight, shutdown

    def track(self) -> None:
        """Count the current task as in flight until it ends (for a graceful shutdown)."""
        task = asyncio.current_task()
        if task is None or task in self._tasks:
            return
        self._tasks.add(task)
        self.metrics.in_flight.inc()
        task.add_done_callback(self._untrack)

    def _untrack(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self.metrics.in_flight.dec()

    async def drain(self, timeout: float) -> int:
        """Stop being ready, then wait up to `timeout` s for the work in flight (and any
        that arrives meanwhile) to finish. How many requests were left unfinished."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        me = asyncio.current_task()
        if self._tasks - {me}:
            log.info("finishing %d request(s) in flight (at most %.0f s)",
                     len(self._tasks - {me}), timeout)
        while (pending := self._tasks - {me}) and (left := deadline - loop.time()) > 0:
            await asyncio.wait(pending, timeout=left)
        return len(self._tasks - {me})
