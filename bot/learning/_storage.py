"""Where records live: a SQLite file by default, Redis when REDIS_URL is set.

Both are async to their callers. SQLite's calls run on one worker thread of the
storage's own (the connection never changes threads), so a slow disk never
stalls the event loop; Redis is spoken to with redis-py's asyncio client,
imported only when a Redis storage is opened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from bot.learning._records import QuestionRecord, VoteRecord

__all__ = ["RedisStorage", "SQLiteStorage", "Storage"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: the question behind an answer, kept this long so that a vote can name it
ANSWERED_TTL = 24 * 3600.0


class Storage(Protocol):
    #: for logs and messages: where, never a password
    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def hash_key(self) -> bytes:
        """The key for hashing ids: generated on first use, then kept."""
        ...

    async def write(self, questions: Sequence[QuestionRecord], votes: Sequence[VoteRecord],
                    answered: Mapping[str, tuple[str, float]]) -> None:
        """Add records; `answered` maps a link key to (question text, time)."""
        ...

    async def recall(self, key: str, since: float) -> str | None:
        """The question last answered under `key`, if it was at or after `since`."""
        ...

    async def questions(self, since: float) -> list[QuestionRecord]: ...

    async def votes(self, since: float) -> list[VoteRecord]: ...

    async def purge(self, before: float, now: float) -> int:
        """Delete records older than `before` (and links older than ANSWERED_TTL)."""
        ...


def _question(row: Mapping[str, Any]) -> QuestionRecord:
    names = {f.name for f in fields(QuestionRecord)}
    return QuestionRecord(**{k: v for k, v in row.items() if k in names})


def _vote(row: Mapping[str, Any]) -> VoteRecord:
    names = {f.name for f in fields(VoteRecord)}
    values = {k: v for k, v in row.items() if k in names}
    values["helpful"] = bool(values.get("helpful"))
    return VoteRecord(**values)


# ---------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, platform TEXT NOT NULL, kind TEXT NOT NULL,
    text TEXT, topic TEXT, score REAL NOT NULL DEFAULT 0, reason TEXT,
    user TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS questions_at ON questions (at);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, platform TEXT NOT NULL, topic TEXT NOT NULL,
    role TEXT NOT NULL, helpful INTEGER NOT NULL, question TEXT,
    user TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS votes_at ON votes (at);
CREATE TABLE IF NOT EXISTS answered (key TEXT PRIMARY KEY, text TEXT NOT NULL, at REAL NOT NULL);
"""
_QUESTION_COLUMNS = ("at", "platform", "kind", "text", "topic", "score", "reason", "user",
                     "channel")
_VOTE_COLUMNS = ("at", "platform", "topic", "role", "helpful", "question", "user", "channel",
                 "answer")


class SQLiteStorage:
    """A SQLite file, created with its folder on first use (WAL, so a report can read
    while the bot writes). The generated hash key is kept beside it, readable by its
    owner only: `learning.sqlite3` -> `learning.key`.

    Before each call the file is checked to be the one the connection holds: a file
    (or folder) deleted while the bot runs is created again, with one warning, instead
    of records going on into a file no name leads to.

    With `create=False` (reports) the file is opened read-only: no journal mode is set,
    no table created, nothing written (a file the reader may not write is fine). A
    missing file, or one without the tables, reads as empty and is not created.
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.create = create
        self.name = f"SQLite file {self.path}"
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._file: tuple[int, int] | None = None  # (device, inode) of the open file
        self._tables: frozenset[str] = frozenset()
        self._key: bytes | None = None  # as read or made, to write again if deleted

    @property
    def key_path(self) -> Path:
        return self.path.with_suffix(".key")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError(f"{self.name} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="careerbot-learning")
        try:
            await self._run(self._connect)
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> None:
        if self._db is not None:
            return
        if not self.create:
            if self.path.exists():
                self._open_read_only()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            if "answer" not in {row[1] for row in db.execute("PRAGMA table_info(votes)")}:
                # a file from before votes named their answer: its votes count one each
                db.execute("ALTER TABLE votes ADD COLUMN answer TEXT NOT NULL DEFAULT ''")
            status = os.stat(self.path)
        except BaseException:
            db.close()
            raise
        db.row_factory = sqlite3.Row
        self._db, self._file = db, (status.st_dev, status.st_ino)
        self._tables = frozenset(("questions", "votes", "answered"))

    def _open_read_only(self) -> None:
        """mode=ro; if SQLite cannot make the WAL index beside a file no writer has open
        (a folder the reader may not write), immutable: nothing else is writing it."""
        uri = self.path.resolve().as_uri()
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=5.0)
        try:
            tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        except sqlite3.OperationalError:
            db.close()
            if Path(f"{self.path}-wal").exists():
                raise  # a writer has it open: reading around its log would be wrong
            db = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=5.0)
            tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        self._tables = frozenset(row[0] for row in tables)
        db.row_factory = sqlite3.Row
        self._db = db

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        db, self._db, self._file = self._db, None, None
        if db is not None:
            db.close()

    async def hash_key(self) -> bytes:
        return await self._run(self._read_or_make_key)

    def _read_or_make_key(self) -> bytes:
        path = self.key_path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            self._key = bytes.fromhex(path.read_text(encoding="ascii").strip())
            return self._key
        key = self._key or secrets.token_bytes(32)  # the one in use, if it was deleted
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
        self._key = key
        return key

    async def write(self, questions: Sequence[QuestionRecord], votes: Sequence[VoteRecord],
                    answered: Mapping[str, tuple[str, float]]) -> None:
        await self._run(self._write, list(questions), list(votes), dict(answered))

    def _write(self, questions: list[QuestionRecord], votes: list[VoteRecord],
               answered: dict[str, tuple[str, float]]) -> None:
        db = self._connected()
        with db:  # one transaction
            db.executemany(
                f"INSERT INTO questions ({', '.join(_QUESTION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_QUESTION_COLUMNS))})",
                [tuple(getattr(q, c) for c in _QUESTION_COLUMNS) for q in questions])
            db.executemany(
                f"INSERT INTO votes ({', '.join(_VOTE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_VOTE_COLUMNS))})",
                [tuple(int(v.helpful) if c == "helpful" else getattr(v, c)
                       for c in _VOTE_COLUMNS) for v in votes])
            db.executemany("INSERT OR REPLACE INTO answered (key, text, at) VALUES (?, ?, ?)",
                           [(k, text, at) for k, (text, at) in answered.items()])

    def _connected(self) -> sqlite3.Connection:
        if self.create:
            self._still_there()
        if self._db is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._db

    def _still_there(self) -> None:
        """Reconnect if the file was deleted or replaced since it was opened (or if
        opening it again failed last time); warn once each time it is found gone."""
        if self._db is not None:
            try:
                status = os.stat(self.path)
            except FileNotFoundError:
                status = None
            if status is not None and (status.st_dev, status.st_ino) == self._file:
                return
            log.warning("learning: %s was deleted or replaced while the bot ran; creating "
                        "it again (what it held is gone)", self.path)
            self._disconnect()
        self._connect()
        if self._key is not None and not self.key_path.exists():
            self._read_or_make_key()  # the key in use, so that hashes still match

    async def recall(self, key: str, since: float) -> str | None:
        return await self._run(self._recall, key, since)

    def _recall(self, key: str, since: float) -> str | None:
        row = self._connected().execute(
            "SELECT text, at FROM answered WHERE key = ?", (key,)).fetchone()
        if row is None or row["at"] < since:
            return None
        return str(row["text"])

    async def questions(self, since: float) -> list[QuestionRecord]:
        return await self._run(self._select, "questions", _QUESTION_COLUMNS, since, _question)

    async def votes(self, since: float) -> list[VoteRecord]:
        return await self._run(self._select, "votes", _VOTE_COLUMNS, since, _vote)

    def _select(self, table: str, columns: tuple[str, ...], since: float,
                make: Callable[[Mapping[str, Any]], T]) -> list[T]:
        if not self.create and (self._db is None or table not in self._tables):
            return []  # a report before anything was recorded
        rows = self._connected().execute(
            # every column: a file written before a column was added lacks it (the
            # record's default stands in)
            f"SELECT * FROM {table} WHERE at >= ? ORDER BY at, id", (since,))
        return [make(dict(row)) for row in rows]

    async def purge(self, before: float, now: float) -> int:
        return await self._run(self._purge, before, now)

    def _purge(self, before: float, now: float) -> int:
        db = self._connected()
        with db:
            gone = db.execute("DELETE FROM questions WHERE at < ?", (before,)).rowcount
            gone += db.execute("DELETE FROM votes WHERE at < ?", (before,)).rowcount
            db.execute("DELETE FROM answered WHERE at < ?",
                       (max(before, now - ANSWERED_TTL),))
        return gone


# ---------------------------------------------------------------------- Redis


def _where(url: str) -> str:
    """host:port/db of a Redis URL, without the user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    db = parts.path.strip("/") or "0"
    return f"{host}:{parts.port or 6379}/{db}"


class RedisStorage:
    """Shared by every replica: two sorted sets scored by time (questions, votes) holding
    JSON records, short-lived keys for the question behind an answer, and the hash key.
    """

    def __init__(self, url: str, *, prefix: str = "careerbot:learning:"):
        self._url = url
        self.prefix = prefix
        self.name = f"Redis at {_where(url)}"
        self._redis: Any = None

    async def open(self) -> None:
        if self._redis is not None:
            return
        try:
            import redis.asyncio as aioredis  # only when Redis is configured
        except ImportError:
            raise RuntimeError("REDIS_URL is set but the redis package is not installed: "
                               "pip install 'careerbot[redis]'") from None

        client = aioredis.Redis.from_url(self._url, decode_responses=True,
                                         socket_timeout=3.0, socket_connect_timeout=3.0)
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._redis = client

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    def _client(self) -> Any:
        if self._redis is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._redis

    async def hash_key(self) -> bytes:
        client = self._client()
        name = self.prefix + "hash-key"
        await client.set(name, secrets.token_hex(32), nx=True)
        return bytes.fromhex(await client.get(name))

    async def write(self, questions: Sequence[QuestionRecord], votes: Sequence[VoteRecord],
                    answered: Mapping[str, tuple[str, float]]) -> None:
        pipe = self._client().pipeline(transaction=False)
        written = f"{time.time_ns():016x}"
        batches: tuple[tuple[str, Sequence[QuestionRecord | VoteRecord]], ...] = (
            ("questions", questions), ("votes", votes))
        for name, records in batches:
            if records:
                # the id keeps identical records apart in the set, and (Redis orders equal
                # scores by member) records of the same moment in the order written
                pipe.zadd(self.prefix + name, {
                    json.dumps({"id": f"{written}-{n:06d}-{secrets.token_hex(3)}",
                                **asdict(r)}): r.at
                    for n, r in enumerate(records)})
        for key, (text, _) in answered.items():
            pipe.set(self.prefix + "answered:" + key, text, ex=int(ANSWERED_TTL))
        await pipe.execute()

    async def recall(self, key: str, since: float) -> str | None:
        text = await self._client().get(self.prefix + "answered:" + key)
        return None if text is None else str(text)

    async def questions(self, since: float) -> list[QuestionRecord]:
        rows = await self._client().zrangebyscore(self.prefix + "questions", since, "+inf")
        return [_question(json.loads(row)) for row in rows]

    async def votes(self, since: float) -> list[VoteRecord]:
        rows = await self._client().zrangebyscore(self.prefix + "votes", since, "+inf")
        return [_vote(json.loads(row)) for row in rows]

    async def purge(self, before: float, now: float) -> int:
        client = self._client()  # links expire by themselves
        gone = 0
        for name in ("questions", "votes"):
            gone += int(await client.zremrangebyscore(self.prefix + name, "-inf",
                                                      f"({before}"))
        return gone
