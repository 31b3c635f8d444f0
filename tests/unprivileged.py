"""Run a function as a user who is not root, in a forked child, and get its answer.

Tests run as root here, and root reads and writes any file whatever its mode bits:
a file that is honestly unreadable or read-only is one for user 65534 (nobody).
"""

from __future__ import annotations

import json
import os
import select
import signal
from collections.abc import Callable
from typing import Any

__all__ = ["NOBODY", "as_nobody"]

NOBODY = 65534
WAIT = 60.0


def as_nobody(work: Callable[[], Any]) -> Any:
    """`work()` in a forked child that gives up root first; its JSON-able result, or
    the string "child failed: ..." if it raised. Bounded: a child stuck on a lock some
    other thread held at fork is killed after WAIT seconds."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            os.write(write, json.dumps(work()).encode())
            status = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(write, json.dumps(f"child failed: {exc!r}").encode())
        finally:
            os._exit(status)
    os.close(write)
    data = b""
    try:
        with os.fdopen(read, "rb", buffering=0) as pipe:
            while select.select([pipe], [], [], WAIT)[0] and (chunk := pipe.read(1 << 16)):
                data += chunk
    finally:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert data, f"the child gave no answer within {WAIT:.0f} s"
    return json.loads(data)
