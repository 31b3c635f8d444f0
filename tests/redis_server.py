"""A real redis-server for the test session: loopback, an ephemeral port, no disk.

`make test` installs redis-server where it is missing (as root, with apt-get).
Without it the Redis tests fail with a message saying so: on CI (CI=true) they
must run, never skip, and locally a skipped proof would read as a passed one.
"""

from __future__ import annotations

import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["redis_server"]

READY = "Ready to accept connections"
START_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _missing() -> str:
    return ("redis-server is not installed, and the Redis tests need a real one: run "
            "`make test` (as root it installs it with apt-get), or "
            "`apt-get install redis-server`.")


def _stop(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    reader.join(timeout=10)  # it reads to the end of the output, then the pipe can close
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Start redis-server on 127.0.0.1 and a free port; yield its URL; stop it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(_missing())
    last = ""
    for _ in range(5):  # another process may take the port between probe and bind
        port = _free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(process: subprocess.Popen[str] = process,
                 lines: queue.Queue[str | None] = lines) -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        output: list[str] = []
        ready = False
        while not ready:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            output.append(line)
            ready = READY in line
        if ready:
            try:
                yield f"redis://127.0.0.1:{port}/0"
            finally:
                _stop(process, reader)
            return
        _stop(process, reader)
        last = "".join(output[-20:])
    raise RuntimeError(f"redis-server did not start:\n{last}")
