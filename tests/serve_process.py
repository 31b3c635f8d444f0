"""The real `careerbot serve` process, started as its users' platform meets it.

It runs `python -m bot serve ...` from this checkout with only the environment a test
gives it (no platform or careerbot variables leak in from the caller), on loopback,
on an ephemeral port. Its stderr is read as it comes, so a test can wait for a line,
and is kept whole for assertions once the process has stopped.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

__all__ = ["ServeProcess", "serve"]

ROOT = Path(__file__).resolve().parents[1]
WAIT = 30.0
_PORT = re.compile(rb"HTTP mode on port (\d+)")
_OPS_PORT = re.compile(rb"/healthz and /metrics on ops port (\d+)")


class ServeProcess:
    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.stderr = b""
        self._grew = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            async with self._grew:
                self.stderr += chunk
                self._grew.notify_all()
        async with self._grew:
            self._grew.notify_all()

    async def wait_for_line(self, pattern: re.Pattern[bytes],
                            timeout: float = WAIT) -> re.Match[bytes]:
        """The first match of `pattern` in stderr, once it is there."""
        async with asyncio.timeout(timeout), self._grew:
            while not (found := pattern.search(self.stderr)):
                if self._reader.done():
                    raise AssertionError(f"careerbot exited: {self.stderr.decode()[-2000:]}")
                await self._grew.wait()
            return found

    async def http_port(self) -> int:
        """Slack's public events port (HTTP mode)."""
        return int((await self.wait_for_line(_PORT)).group(1))

    async def ops_port(self) -> int:
        """Where /healthz and /metrics are served."""
        return int((await self.wait_for_line(_OPS_PORT)).group(1))

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = WAIT) -> int:
        """Send `sig` and wait (bounded) for the exit; returns the exit status."""
        with suppress(ProcessLookupError):
            self.process.send_signal(sig)
        async with asyncio.timeout(timeout):
            status = await self.process.wait()
            await self._reader
        return status


@asynccontextmanager
async def serve(*args: str, env: dict[str, str], cwd: Path) -> AsyncIterator[ServeProcess]:
    """`careerbot serve *args`, stopped (SIGTERM, then SIGKILL) when the block ends."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "DISCORD_", "CAREERBOT_", "REDIS_"))}
    # a short grace: SIGTERM's settle pause (a quarter of it, up to 5 s) ends tests soon
    base |= {"PYTHONPATH": str(ROOT), "CAREERBOT_HOST": "127.0.0.1", "CAREERBOT_PORT": "0",
             "CAREERBOT_OPS_PORT": "0",
             "CAREERBOT_LEARNING": "off", "CAREERBOT_SHUTDOWN_GRACE": "4"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", *args, cwd=cwd, env=base | env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    served = ServeProcess(process)
    try:
        yield served
    finally:
        if process.returncode is None:
            try:
                await served.stop()
            except TimeoutError:
                process.kill()
                await process.wait()
