"""Both storages, against a real SQLite file and a real redis-server."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.learning import QuestionRecord, SQLiteStorage, Storage, VoteRecord

NOW = time.time()
DAY = 86400.0


def _question(age_days: float, text: str = "do mles need leetcode", **extra: object
              ) -> QuestionRecord:
    values: dict[str, object] = {"at": NOW - age_days * DAY, "platform": "slack",
                                 "kind": "decline", "text": text, "topic": "coding",
                                 "score": 0.21, "reason": "interviews", "user": "u" * 32,
                                 "channel": "c" * 32}
    return QuestionRecord(**(values | extra))  # type: ignore[arg-type]


def _vote(age_days: float, helpful: bool = True) -> VoteRecord:
    return VoteRecord(NOW - age_days * DAY, "discord", "salary", "ml_engineer", helpful,
                      "what do mles earn", "u" * 32, "c" * 32)


async def test_records_come_back_as_written(storage: Storage) -> None:
    questions = [_question(2), _question(1, "remote ds jobs?", kind="low", reason=None),
                 _question(1, None, kind="answer", topic="salary", score=0.8, reason=None)]
    votes = [_vote(1), _vote(0.5, helpful=False)]
    await storage.write(questions, votes, {})
    assert await storage.questions(NOW - 30 * DAY) == questions
    assert await storage.votes(NOW - 30 * DAY) == votes
    assert await storage.questions(NOW - 1.5 * DAY) == questions[1:]
    assert await storage.votes(NOW - 0.75 * DAY) == votes[1:]


async def test_identical_records_are_both_kept(storage: Storage) -> None:
    same = _question(1)
    await storage.write([same, same], [_vote(1), _vote(1)], {})
    assert len(await storage.questions(0)) == 2 and len(await storage.votes(0)) == 2


async def test_purge_deletes_only_what_is_older(storage: Storage) -> None:
    await storage.write([_question(100), _question(40), _question(1)],
                        [_vote(95), _vote(2)], {})
    assert await storage.purge(NOW - 30 * DAY, NOW) == 3
    assert [q.at for q in await storage.questions(0)] == [NOW - DAY]
    assert [v.at for v in await storage.votes(0)] == [NOW - 2 * DAY]
    assert await storage.purge(NOW - 30 * DAY, NOW) == 0


async def test_the_question_behind_an_answer_is_recalled(storage: Storage) -> None:
    await storage.write([], [], {"chan:salary:both": ("what do they earn", NOW - 60)})
    assert await storage.recall("chan:salary:both", NOW - 3600) == "what do they earn"
    assert await storage.recall("chan:tools:both", NOW - 3600) is None
    await storage.write([], [], {"chan:salary:both": ("and pay?", NOW)})
    assert await storage.recall("chan:salary:both", NOW - 3600) == "and pay?"


async def test_hash_key_is_generated_once_and_kept(new_storage: Callable[[], Storage]) -> None:
    first, second = new_storage(), new_storage()
    await first.open()
    key = await first.hash_key()
    await first.close()
    await second.open()
    try:
        assert len(key) == 32 and await second.hash_key() == key
    finally:
        await second.close()
    if isinstance(first, SQLiteStorage):
        assert stat.S_IMODE(first.key_path.stat().st_mode) == 0o600
        assert first.key_path.parent == first.path.parent


async def test_sqlite_file_and_folder_are_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "learning.sqlite3"
    reader = SQLiteStorage(path, create=False)  # a report before anything was recorded
    await reader.open()
    assert await reader.questions(0) == [] and await reader.votes(0) == []
    await reader.close()
    assert not path.parent.exists()

    writer = SQLiteStorage(path)
    await writer.open()
    await writer.write([_question(1)], [], {})
    await writer.close()
    assert path.is_file()


@pytest.mark.parametrize("url, shown", [
    ("redis://:s3cret@cache.internal:6380/2", "Redis at cache.internal:6380/2"),
    ("redis://user:s3cret@localhost", "Redis at localhost:6379/0"),
])
def test_redis_name_never_shows_the_password(url: str, shown: str) -> None:
    from bot.learning import RedisStorage

    assert RedisStorage(url).name == shown


def test_nothing_heavy_is_imported_until_used() -> None:
    """redis is imported only when a Redis storage opens; no platform SDK, ever."""
    import subprocess
    import sys

    code = ("import sys, bot.learning, bot.core; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'redis', 'slack_bolt', 'slack_sdk', 'discord', 'aiohttp'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
