"""Serve Slack and/or Discord from one process: one engine, one store, one HTTP port.

The port (CAREERBOT_PORT) serves GET /healthz and GET /metrics, and in Slack's
HTTP mode POST /slack/events as well. With REDIS_URL, the process is one replica
of many: they share conversations, rate limits and seen events through Redis,
and a knowledge reload on one reaches the others. SIGTERM (or Ctrl-C) stops
taking work, finishes what is in flight (CAREERBOT_SHUTDOWN_GRACE at most), exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from bot.settings import Settings

__all__ = ["serve"]

log = logging.getLogger(__name__)


async def _serve(settings: Settings, slack: bool, discord: bool, knowledge: str | None,
                 port: int | None) -> None:
    from bot.core import Engine
    from bot.learning import Recorder
    from bot.ops import bound_port, start_server
    from bot.runtime import Runtime
    from bot.store import open_store

    engine = Engine(knowledge_dir=Path(knowledge) if knowledge else settings.knowledge_dir,
                    settings=settings.match)
    store = open_store(settings)
    runtime = Runtime(engine, settings, store)
    log.info("knowledge version %s loaded (%d topics); replica %s; store %s", engine.version,
             len(engine.knowledge.topics), runtime.replica, store.description)
    if not await store.ping():
        log.warning("the store (%s) does not answer yet: serving without shared state "
                    "until it does", store.description)
    recorder = Recorder.from_settings(settings, engine)  # one for both platforms
    if recorder.storage is not None:
        log.info("learning from use: recording to %s", recorder.storage.name)
    port = settings.port if port is None else port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Task[Any]] = []
    runner = None
    try:
        if store.shared:
            tasks.append(asyncio.create_task(runtime.listen(), name="reload notices"))
        for name, wanted in (("slack", slack), ("discord", discord)):
            if wanted:
                runtime.set_platform(name, False)  # not ready until it has connected
        if not (slack and not settings.slack_app_token):  # Slack's HTTP mode serves them itself
            try:
                runner = await start_server(runtime, settings.host, port)
                log.info("serving /healthz and /metrics on port %d", bound_port(runner))
            except OSError as exc:  # the bot itself needs no port: go on without them
                log.error("cannot serve /healthz and /metrics on %s:%d (%s); set "
                          "CAREERBOT_PORT to a free port", settings.host, port, exc.strerror)
        if slack:
            from bot.adapters.slack.app import run_slack

            tasks.append(asyncio.create_task(run_slack(engine, settings, port=port,
                                                       recorder=recorder, runtime=runtime),
                                             name="slack"))
        if discord:
            from bot.adapters.discord.client import run_discord

            tasks.append(asyncio.create_task(run_discord(engine, settings, recorder,
                                                         runtime=runtime), name="discord"))
        stopping = asyncio.create_task(stop.wait(), name="stop")
        done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopping}:
            task.result()  # a platform that stopped by itself: say why (ConfigurationError)
        stopping.cancel()
        log.info("shutting down: finishing the work in flight")
        left = await runtime.drain(settings.shutdown_grace)
        log.info("stopped%s", f" with {left} request(s) unfinished" if left else " cleanly")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if runner is not None:
            await runner.cleanup()
        await recorder.close()
        await store.close()


def serve(settings: Settings, *, slack: bool, discord: bool, knowledge: str | None = None,
          port: int | None = None) -> int:
    from bot.adapters.errors import ConfigurationError
    from bot.store import StoreError

    try:
        asyncio.run(_serve(settings, slack, discord, knowledge, port))
    except (ConfigurationError, StoreError) as exc:
        print(f"careerbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
