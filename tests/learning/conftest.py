"""Fixtures of the learning tests: storages and recorders on both backends (a SQLite
file in tmp_path; a key prefix in the session's real redis-server), and a redis-server
of a test's own that it can stop."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.core import Engine
from bot.learning import Recorder, RedisStorage, SQLiteStorage, Storage
from bot.settings import LearningSettings
from tests.learning.helpers import OwnRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_storage(backend: str, request: pytest.FixtureRequest, tmp_path: Path
                ) -> Callable[[], Storage]:
    """Makes storages of this test's backend, all on the same data: a SQLite file in
    tmp_path (not there yet), or a key prefix of its own in the session's redis-server."""
    if backend == "sqlite":
        path = tmp_path / "data" / "learning.sqlite3"
        return lambda: SQLiteStorage(path)
    url = request.getfixturevalue("redis_url")  # the session's redis-server (tests/conftest.py)
    prefix = f"careerbot-test:{uuid.uuid4().hex}:"
    return lambda: RedisStorage(url, prefix=prefix)


@pytest.fixture
async def storage(new_storage: Callable[[], Storage]) -> AsyncIterator[Storage]:
    opened = new_storage()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def recorder(new_storage: Callable[[], Storage], engine: Engine
                   ) -> AsyncIterator[Recorder]:
    """A recorder with the shipped knowledge and default settings, closed afterwards."""
    made = Recorder(new_storage(), engine=engine, settings=LearningSettings())
    try:
        yield made
    finally:
        await made.close()
