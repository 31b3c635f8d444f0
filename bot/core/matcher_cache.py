"""A built `Matcher` kept on disk by content (`disk_cache`), so a one-shot process
(`careerbot ask`) loads it instead of building it: about a quarter of the build's time.

The key is the knowledge version (the digest of every byte loaded), the match
settings and the code version (the digest of bot/core and bot/settings.py, the
Python and rapidfuzz versions): any change builds afresh.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import rapidfuzz

from bot.core import disk_cache
from bot.core.disk_cache import default_cache_dir
from bot.core.knowledge import Knowledge
from bot.core.matcher import Matcher
from bot.settings import MatchSettings

__all__ = ["cached_matcher", "default_cache_dir"]

_MAGIC = b"careerbot-matcher-1\n"
_CODE = (Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "settings.py")


@lru_cache(maxsize=1)
def _code_version() -> str:
    digest = hashlib.sha256(f"{sys.version}\n{rapidfuzz.__version__}\n".encode())
    for root in _CODE:
        for path in sorted(root.glob("*.py")) if root.is_dir() else [root]:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _path(directory: Path, knowledge: Knowledge, settings: MatchSettings) -> Path:
    key = hashlib.sha256(f"{knowledge.version}\n{settings!r}\n{_code_version()}".encode())
    return directory / f"matcher-{key.hexdigest()[:32]}.pickle"


def cached_matcher(knowledge: Knowledge, settings: MatchSettings, directory: Path | None,
                   build: Callable[[], Matcher]) -> Matcher:
    """The matcher for `knowledge` from `directory` (None: no cache), else `build()` it
    and keep it there."""
    if directory is None:
        return build()
    path = _path(directory, knowledge, settings)
    shared = (knowledge, settings)
    matcher = disk_cache.read(path, _MAGIC, shared)
    if not isinstance(matcher, Matcher) or matcher.knowledge is not knowledge:
        matcher = build()
        if matcher.knowledge is knowledge and matcher.settings is settings:
            disk_cache.write(path, matcher, _MAGIC, shared)
    return matcher
