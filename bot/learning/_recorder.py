"""The recorder: adapters hand it questions and votes; a background task stores them.

`question()` and `vote()` only put a small item on a bounded queue: they never
wait, never touch storage and never raise, so an answer goes out exactly as it
would without them. A task started on first use takes what is queued in batches,
works out the nearest topic of declined questions, hashes the ids and writes
the batch in one go. If storage fails, the batch is dropped and the failure is
logged once (then quietly until storage works again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core import Engine, Reply
from bot.learning._records import QuestionKind, QuestionRecord, VoteRecord, keyed_hash
from bot.learning._report import Report, build_report, stats_reply
from bot.learning._storage import ANSWERED_TTL, RedisStorage, SQLiteStorage, Storage
from bot.settings import LearningSettings, Settings

if TYPE_CHECKING:
    from bot.metrics import Metrics

__all__ = ["Recorder"]

log = logging.getLogger(__name__)

#: kept question text is cut to this many characters
TEXT_CHARS = 300
#: how often old records are purged while the bot runs
PURGE_EVERY = 3600.0
_BATCH = 200


@dataclass(frozen=True)
class _Asked:
    at: float
    platform: str
    user: str
    channel: str
    text: str
    kind: str
    topic: str | None
    role: str
    confidence: float


@dataclass(frozen=True)
class _Voted:
    at: float
    platform: str
    user: str
    channel: str
    topic: str
    role: str
    helpful: bool
    message: str = ""


def _clip(text: str) -> str:
    return " ".join(text.split())[:TEXT_CHARS]


class Recorder:
    """Records questions and votes for `careerbot report` and the admins' stats.

    `Recorder.off()` records nothing (learning disabled, or an adapter under test).
    With `metrics`, failures are counted there (careerbot_learning_failures_total, and
    the records they cost in careerbot_learning_unrecorded_total); `health()` is what
    /healthz shows of it.
    """

    def __init__(self, storage: Storage | None, *, engine: Engine | None = None,
                 settings: LearningSettings | None = None,
                 clock: Callable[[], float] = time.time, queue_size: int = 10_000,
                 metrics: Metrics | None = None):
        self.storage = storage
        self.engine = engine
        self.settings = settings or LearningSettings()
        self.clock = clock
        self.metrics = metrics
        self._error: str | None = None  # the last failure, while failing
        self._unrecorded = 0  # records lost to failures and a full queue, since the start
        self._queue: asyncio.Queue[_Asked | _Voted] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()
        self._opened = False
        self._key: bytes | None = None
        self._purged_at = float("-inf")
        self._failing = False
        self._dropped = 0
        self._handled = 0  # items written or given up on, since the start
        self._progress = asyncio.Condition()

    @classmethod
    def off(cls) -> Recorder:
        return cls(None)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None, *,
                      metrics: Metrics | None = None) -> Recorder:
        """Redis when REDIS_URL is set, else the SQLite file; off if learning is disabled."""
        learning = settings.learning
        if not learning.enabled:
            return cls.off()
        storage: Storage = (RedisStorage(settings.redis_url) if settings.redis_url
                            else SQLiteStorage(learning.db_path))
        return cls(storage, engine=engine, settings=learning, metrics=metrics)

    @property
    def enabled(self) -> bool:
        return self.storage is not None

    # ------------------------------------------------------------------ the adapters' side

    def question(self, reply: Reply, *, text: str, platform: str, user: str = "",
                 channel: str = "") -> None:
        """Note a question and how it was answered. Never blocks, never raises."""
        if self.storage is None or reply.kind not in ("answer", "clarify", "decline"):
            return
        try:
            if text.strip():
                self._put(_Asked(self.clock(), platform, user, channel, text.strip(),
                                 reply.kind, reply.topic, reply.role or "both",
                                 reply.confidence))
        except Exception:  # recording must never break an answer
            log.exception("learning: could not queue a question")

    def vote(self, *, platform: str, user: str, channel: str, topic: str, role: str,
             helpful: bool, message: str = "") -> None:
        """Note a helpful / not-helpful vote on the answer `message` (its id: a later
        vote of the same user on it replaces this one). Never blocks, never raises."""
        if self.storage is None:
            return
        try:
            self._put(_Voted(self.clock(), platform, user, channel, topic, role or "both",
                             helpful, message))
        except Exception:
            log.exception("learning: could not queue a vote")

    def _put(self, item: _Asked | _Voted) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.debug("learning: no event loop; not recorded")
            return
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="careerbot-learning")
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._dropped += 1
            self._lost("queue", 1)
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("learning: %d record(s) dropped: storage is not keeping up",
                            self._dropped)

    # ------------------------------------------------------------------ the background task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:
                self._failed(len(batch), exc)
            else:
                if self._failing:
                    log.info("learning: recording to %s works again", self._name)
                    self._failing, self._error = False, None
            finally:
                for _ in batch:
                    self._queue.task_done()
                async with self._progress:
                    self._handled += len(batch)
                    self._progress.notify_all()

    @property
    def _name(self) -> str:
        return self.storage.name if self.storage is not None else "nowhere"

    def _lost(self, operation: str, records: int) -> None:
        self._unrecorded += records
        if self.metrics is not None:
            if operation != "queue":
                self.metrics.learning_failures.labels(operation).inc()
            self.metrics.learning_unrecorded.inc(records)

    def health(self) -> dict[str, Any]:
        """For /healthz: where records go, and whether the last attempt worked."""
        if self.storage is None:
            return {"enabled": False}
        body: dict[str, Any] = {"enabled": True, "storage": self._name,
                                "ok": not self._failing, "unrecorded": self._unrecorded}
        if self._error is not None:
            body["error"] = self._error
        return body

    def _failed(self, count: int, exc: Exception) -> None:
        what = f"{type(exc).__name__}: {exc}"
        self._error = what
        self._lost("write", count)
        if not self._failing:
            log.warning("learning: could not record %d item(s) to %s (%s); answers are "
                        "unaffected", count, self._name, what)
            self._failing = True
        else:
            log.debug("learning: still failing, %d item(s) not recorded (%s)", count, what)

    async def hash_key(self) -> bytes | None:
        """The key ids are hashed with: CAREERBOT_HASH_KEY, else the one kept with the
        records (made on first use); None when learning is off and no key is set. Opens
        the storage, so it may raise what opening it raises."""
        if self.storage is None:
            return self.settings.hash_key.encode() or None
        await self._storage()
        return self._key

    async def _storage(self) -> Storage:
        storage = self.storage
        if storage is None:
            raise RuntimeError("learning is off")
        async with self._opening:
            if not self._opened:
                await storage.open()
                self._opened = True
            if self._key is None:
                configured = self.settings.hash_key
                self._key = configured.encode() if configured else await storage.hash_key()
        return storage

    async def _write(self, batch: list[_Asked | _Voted]) -> None:
        storage = await self._storage()
        now = self.clock()
        if now - self._purged_at >= PURGE_EVERY:
            await self.purge(now)
        questions: list[QuestionRecord] = []
        votes: list[VoteRecord] = []
        answered: dict[str, tuple[str, float]] = {}
        for item in batch:
            channel = self._hash(item.platform, item.channel)
            link = f"{channel}:{item.topic}:{item.role}"
            if isinstance(item, _Asked):
                record = self._record(item, channel)
                questions.append(record)
                if record.kind in ("answer", "low") and self.settings.record_text:
                    answered[link] = (_clip(item.text), item.at)
                continue
            question = None
            if self.settings.record_text:
                question = (answered[link][0] if link in answered
                            else await storage.recall(link, item.at - ANSWERED_TTL))
            votes.append(VoteRecord(item.at, item.platform, item.topic, item.role,
                                    item.helpful, question,
                                    self._hash(item.platform, item.user), channel,
                                    self._hash(item.platform, item.message)))
        await storage.write(questions, votes, answered)

    def _hash(self, platform: str, value: str) -> str:
        assert self._key is not None
        return keyed_hash(self._key, platform, value)

    def _record(self, item: _Asked, channel: str) -> QuestionRecord:
        user = self._hash(item.platform, item.user)
        keep = self.settings.record_text
        if item.kind == "answer":
            kind: QuestionKind = ("low" if item.confidence < self.settings.low_confidence_below
                                  else "answer")
            return QuestionRecord(item.at, item.platform, kind,
                                  _clip(item.text) if keep and kind == "low" else None,
                                  item.topic, item.confidence, None, user, channel)
        kind = "clarify" if item.kind == "clarify" else "decline"
        engine = self.engine
        if engine is not None and len(item.text) > engine.settings.max_message_chars:
            return QuestionRecord(item.at, item.platform, kind, None, None, 0.0, "too_long",
                                  user, channel)
        topic, score, reason = None, item.confidence, None
        if engine is not None:
            match = engine.match(item.text)
            nearest = next((c for c in match.candidates if not c.out_of_scope), None)
            if nearest is not None:
                topic, score = nearest.id, nearest.score
            if kind == "decline":
                reason = match.decline_reason or "low_confidence"
        return QuestionRecord(item.at, item.platform, kind, _clip(item.text) if keep else None,
                              topic, round(score, 3), reason, user, channel)

    # ------------------------------------------------------------------ housekeeping

    async def purge(self, now: float | None = None) -> int:
        """Delete what is older than the retention setting; how many records went."""
        storage = await self._storage()
        now = self.clock() if now is None else now
        gone = await storage.purge(now - self.settings.retention_days * 86400, now)
        self._purged_at = now
        if gone:
            log.info("learning: %d record(s) older than %g days deleted", gone,
                     self.settings.retention_days)
        return gone

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is written (or has failed)."""
        if self._task is not None and not self._task.done():
            async with asyncio.timeout(timeout):
                await self._queue.join()

    async def handled(self, count: int, timeout: float = 5.0) -> None:
        """Wait until `count` questions and votes in all have been written or given up on.

        (For whoever must know the records are in, tests first: the adapters hand a
        question over only after its answer is sent.)
        """
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: self._handled >= count)

    async def report(self, days: float = 7.0) -> Report:
        """What was recorded over the last `days` (for the admins' stats in chat)."""
        storage = await self._storage()
        until = self.clock()
        since = until - days * 86400
        questions, votes = await storage.questions(since), await storage.votes(since)
        # clustering is pure CPU work: off the event loop, so answers keep flowing
        return await asyncio.to_thread(build_report, questions, votes, since=since,
                                       until=until)

    async def stats(self) -> Reply:
        """The admins' summary of the last seven days, for chat, including what was queued
        until now (waited for 2 s at most); never raises."""
        if self.storage is None:
            return Reply(title="careerbot stats", kind="notice",
                         text="Learning from use is off (CAREERBOT_LEARNING=off): "
                              "nothing is recorded.")
        with contextlib.suppress(TimeoutError):  # what was just asked counts too
            await self.flush(timeout=2.0)
        try:
            report = await self.report(days=7)
        except Exception as exc:
            log.warning("learning: cannot read %s for stats: %s: %s", self._name,
                        type(exc).__name__, exc)
            if self.metrics is not None:
                self.metrics.learning_failures.labels("read").inc()
            return Reply(title="careerbot stats", kind="notice",
                         text="I could not read the records just now; the bot's log says why.")
        return stats_reply(report)

    async def close(self) -> None:
        """Write what is queued (for a few seconds at most), stop, close the storage."""
        try:
            await self.flush()
        except TimeoutError:
            log.warning("learning: %d record(s) not written at shutdown", self._queue.qsize())
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.storage is not None and self._opened:
            self._opened = False
            try:
                await self.storage.close()
            except Exception as exc:
                log.warning("learning: closing %s failed: %s", self._name, exc)
