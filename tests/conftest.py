from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from bot.core import Engine, load_knowledge
from bot.core.knowledge import default_knowledge_dir

ROOT = Path(__file__).resolve().parents[1]
#: the project's own label contract, dev set and article fingerprint (see eval/)
EVAL = ROOT / "eval"


@pytest.fixture(scope="session")
def knowledge():
    return load_knowledge()


@pytest.fixture(scope="session")
def _shared_engine(knowledge):
    return Engine(knowledge)


@pytest.fixture
def engine(_shared_engine):
    """An engine of its own for each test (reloads stay local), built once."""
    return copy.copy(_shared_engine)


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped knowledge base."""
    target = tmp_path / "knowledge"
    shutil.copytree(default_knowledge_dir(), target)
    return target


# ---------------------------------------------------------------------- a real Redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    """A redis-server of this test session's own, on loopback and an ephemeral port.

    Never skipped: without redis-server the tests that need it fail, saying how to get it.
    """
    from tests.redis_server import redis_server

    try:
        server = redis_server(tmp_path_factory.mktemp("redis"))
        url = server.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
async def redis_store(redis_url: str):
    """Makes RedisStores on the session's Redis, under a key prefix of this test's own."""
    import uuid

    from bot.store import RedisStore

    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    made: list[RedisStore] = []

    def make(**options) -> RedisStore:  # noqa: ANN003
        store = RedisStore(redis_url, prefix=prefix, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
def own_redis(tmp_path: Path):
    """A redis-server of this test's own, to freeze, kill or fill (a fault under test:
    never the session's shared one)."""
    from tests.redis_server import RedisProcess

    try:
        server = RedisProcess(tmp_path)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.close()
