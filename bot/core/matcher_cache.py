"""A built `Matcher` kept on disk by content, so a one-shot process (`careerbot ask`)
loads it instead of building it: about a quarter of the build's time.

The key is the knowledge version (the digest of every byte loaded), the match
settings and the code version (the digest of bot/core and bot/settings.py, the
Python and rapidfuzz versions): any change builds afresh. The cache is never
required: a missing, unreadable, partial or corrupt file (its payload digest is
checked before unpickling) means a build, and a failed write is ignored. Files are
written whole (a temporary file renamed into place) and only the newest few kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import rapidfuzz

from bot.core.knowledge import Knowledge
from bot.core.matcher import Matcher
from bot.settings import MatchSettings

__all__ = ["cached_matcher", "default_cache_dir"]

_MAGIC = b"careerbot-matcher-1\n"
_KEPT = 4  # matcher files kept: a few knowledge versions or checkouts side by side
_CODE = (Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "settings.py")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/careerbot, else ~/.cache/careerbot."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "careerbot"


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


class _Pickler(pickle.Pickler):
    """Leaves out the knowledge and settings: the reader has them already."""

    def __init__(self, file: io.BytesIO, shared: tuple[object, ...]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = {id(o): i for i, o in enumerate(shared)}

    def persistent_id(self, obj: object) -> int | None:
        return self._shared.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, shared: tuple[object, ...]):
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid: object) -> object:
        if not isinstance(pid, int) or not 0 <= pid < len(self._shared):
            raise pickle.UnpicklingError(f"unknown shared object {pid!r}")
        return self._shared[pid]


def _read(path: Path, shared: tuple[object, ...]) -> Matcher | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, digest, payload = data[:len(_MAGIC)], data[len(_MAGIC):len(_MAGIC) + 32], \
        data[len(_MAGIC) + 32:]
    if head != _MAGIC or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        matcher = _Unpickler(io.BytesIO(payload), shared).load()  # our own file, checked
    except Exception:  # noqa: BLE001 - a cache that cannot be read is a cache miss
        return None
    return matcher if isinstance(matcher, Matcher) else None


def _write(path: Path, matcher: Matcher, shared: tuple[object, ...]) -> None:
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, shared).dump(matcher)
    except Exception:  # noqa: BLE001 - a matcher that cannot be kept is simply not kept
        return
    payload = buffer.getvalue()
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".matcher-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        kept = sorted(path.parent.glob("matcher-*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-_KEPT]:
            old.unlink()


def cached_matcher(knowledge: Knowledge, settings: MatchSettings, directory: Path | None,
                   build: Callable[[], Matcher]) -> Matcher:
    """The matcher for `knowledge` from `directory` (None: no cache), else `build()` it
    and keep it there."""
    if directory is None:
        return build()
    path = _path(directory, knowledge, settings)
    shared = (knowledge, settings)
    matcher = _read(path, shared)
    if matcher is None or matcher.knowledge is not knowledge:
        matcher = build()
        if matcher.knowledge is knowledge and matcher.settings is settings:
            _write(path, matcher, shared)
    return matcher
