"""A real redis-server for the test session: loopback, an ephemeral port, no disk.

`RedisProcess` is one a test owns, to fault: frozen (SIGSTOP) and thawed, killed and
started again on the same port, or configured (maxmemory) through redis-cli's protocol.

`make test` installs redis-server where it is missing (as root, with apt-get).
Without it the Redis tests fail with a message saying so: on CI (CI=true) they
must run, never skip, and locally a skipped proof would read as a passed one.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["RedisProcess", "redis_server"]

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


def _start(binary: str, port: int, workdir: Path, extra: tuple[str, ...]
           ) -> tuple[subprocess.Popen[str], threading.Thread, bool, str]:
    """redis-server on `port`: the process, its output reader, whether it became ready
    (within START_TIMEOUT) and the last of its output."""
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
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
    return process, reader, ready, "".join(output[-20:])


class RedisProcess:
    """A redis-server of one test's own, to pause, kill and start again on its port."""

    def __init__(self, workdir: Path, *extra: str):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(_missing())
        self._binary, self._workdir, self._extra = binary, workdir, extra
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.port = 0
        last = ""
        for _ in range(5):  # another process may take the port between probe and bind
            self.port = _free_port()
            if self._launch():
                return
            last = self._last
        raise RuntimeError(f"redis-server did not start:\n{last}")

    def _launch(self) -> bool:
        process, reader, ready, self._last = _start(self._binary, self.port, self._workdir,
                                                    self._extra)
        if not ready:
            _stop(process, reader)
            return False
        self._process, self._reader = process, reader
        return True

    def url(self, password: str | None = None) -> str:
        auth = f":{password}@" if password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as a stalled Redis."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self._process is not None and self._reader is not None
        self._process.kill()
        self._process.wait(timeout=10)
        _stop(self._process, self._reader)
        self._process = self._reader = None

    def restart(self) -> None:
        """Start it again on the same port (after `kill`), empty."""
        if not self._launch():
            raise RuntimeError(f"redis-server did not start again:\n{self._last}")

    def command(self, *args: str, password: str | None = None) -> object:
        """One command on a connection of its own (CONFIG SET, DEBUG SLEEP, FLUSHALL)."""
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, password=password,
                         socket_timeout=10) as client:
            return client.execute_command(*args)

    def close(self) -> None:
        if self._process is not None and self._reader is not None:
            self.thaw()  # a frozen process ignores SIGTERM until thawed
            _stop(self._process, self._reader)
            self._process = self._reader = None


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Start redis-server on 127.0.0.1 and a free port; yield its URL; stop it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(_missing())
    last = ""
    for _ in range(5):  # another process may take the port between probe and bind
        port = _free_port()
        process, reader, ready, output = _start(binary, port, workdir, ())
        if ready:
            try:
                yield f"redis://127.0.0.1:{port}/0"
            finally:
                _stop(process, reader)
            return
        _stop(process, reader)
        last = output
    raise RuntimeError(f"redis-server did not start:\n{last}")
