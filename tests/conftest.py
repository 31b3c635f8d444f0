from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from bot.core import Engine, load_knowledge
from bot.core.context import ContextStore
from bot.core.knowledge import default_knowledge_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def knowledge():
    return load_knowledge()


@pytest.fixture(scope="session")
def _shared_engine(knowledge):
    return Engine(knowledge)


@pytest.fixture
def engine(_shared_engine):
    """An engine of its own for each test (fresh context; reloads stay local), built once."""
    fresh = copy.copy(_shared_engine)
    fresh.context = ContextStore(ttl=fresh.settings.context_ttl)
    return fresh


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped knowledge base."""
    target = tmp_path / "knowledge"
    shutil.copytree(default_knowledge_dir(), target)
    return target
