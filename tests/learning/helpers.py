"""Shared by the learning tests: the realistic question set, and storage read raw."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from bot.learning import QuestionRecord, RedisStorage, SQLiteStorage, Storage
from tests.redis_server import redis_server

DATA = Path(__file__).parent / "data"


def declined_set() -> list[dict[str, Any]]:
    """Questions a careers bot for data scientists and ML engineers really gets and cannot
    answer well, each with the intent a person would file it under and how careerbot
    would have recorded it (kind, nearest topic and score, why declined).

    Written for these tests (not drawn from the dev set, eval/): several wordings per
    intent, typos, abbreviations (ds, mle), and a tail of one-off, off-topic messages.
    """
    with (DATA / "declined.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def as_records(rows: list[dict[str, Any]], now: float, platform: str = "slack"
               ) -> list[QuestionRecord]:
    """The set as recorded, spread over the last two days."""
    return [QuestionRecord(now - 1800 * (i % 96), platform, row["kind"], row["text"],
                           row["topic"], row["score"], row["reason"])
            for i, row in enumerate(rows)]


async def everything_stored(storage: Storage) -> str:
    """All that the storage holds, as text, the way someone with the file or the Redis
    would see it (the SQLite file with its write-ahead log; every key and value)."""
    if isinstance(storage, SQLiteStorage):
        parts = [p.read_bytes() for p in storage.path.parent.glob(storage.path.name + "*")]
        return b"".join(parts).decode("utf-8", errors="replace")
    assert isinstance(storage, RedisStorage)
    client = storage._client()
    out = []
    async for key in client.scan_iter(match=storage.prefix + "*"):
        kind = await client.type(key)
        value = (await client.zrange(key, 0, -1) if kind == "zset" else await client.get(key))
        out.append(f"{key} {value}")
    return "\n".join(out)


class OwnRedis:
    """A redis-server of one test's own, which the test may stop."""

    def __init__(self, workdir: Path):
        self._stack = contextlib.ExitStack()
        try:
            self.url: str = self._stack.enter_context(redis_server(workdir))
        except RuntimeError as exc:  # not installed, or would not start: say so, never skip
            pytest.fail(str(exc), pytrace=False)

    def stop(self) -> None:
        self._stack.close()
