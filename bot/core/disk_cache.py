"""Built things kept on disk by content, for one-shot processes (`careerbot ask`) to load
instead of build: the parsed knowledge files and the matcher.

Never required: a missing, unreadable, partial or corrupt file (its payload digest is
checked before unpickling) reads as None, and a failed write is ignored. Files are
written whole (a temporary file renamed into place) and only the newest few of a kind
kept. Objects the reader has already (the knowledge, the settings) are left out of the
file and handed back by the reader (`shared`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import tempfile
from pathlib import Path

__all__ = ["default_cache_dir", "read", "write"]

_KEPT = 4  # files kept of a kind: a few knowledge versions or checkouts side by side


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/careerbot, else ~/.cache/careerbot."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "careerbot"


class _Pickler(pickle.Pickler):
    """Leaves out the shared objects: the reader has them already."""

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


def read(path: Path, magic: bytes, shared: tuple[object, ...] = ()) -> object | None:
    """What `write` kept at `path` under `magic`, or None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, digest, payload = data[:len(magic)], data[len(magic):len(magic) + 32], \
        data[len(magic) + 32:]
    if head != magic or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        return _Unpickler(io.BytesIO(payload), shared).load()  # our own file, checked
    except Exception:  # noqa: BLE001 - a cache that cannot be read is a cache miss
        return None


def write(path: Path, value: object, magic: bytes, shared: tuple[object, ...] = ()) -> None:
    """Keep `value` at `path`, and the newest few files named like it (its name up to the
    first "-")."""
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, shared).dump(value)
    except Exception:  # noqa: BLE001 - what cannot be kept is simply not kept
        return
    payload = buffer.getvalue()
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        kind = path.name.split("-", 1)[0]
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{kind}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(magic + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        kept = sorted(path.parent.glob(f"{kind}-*{path.suffix}"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-_KEPT]:
            old.unlink()
