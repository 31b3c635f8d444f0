"""Serve Slack and/or Discord from one process: one engine, one store.

The ops port (CAREERBOT_OPS_PORT) serves GET /healthz and GET /metrics; in Slack's
HTTP mode the public port (CAREERBOT_PORT) serves POST /slack/events, and only that.
With REDIS_URL, the process is one replica of many: they share conversations, rate
limits and seen events through Redis, and a knowledge reload on one reaches the others.

Signals, as a daemon's:
- SIGHUP reloads the knowledge (this process only) and keeps serving.
- SIGTERM (or Ctrl-C): readiness turns 503 at once; in Slack's HTTP mode requests are
  still taken for a settle time, so a load balancer polling /healthz stops routing
  here first; then
  the work in flight is finished, within CAREERBOT_SHUTDOWN_GRACE in all. The exit
  status is 0, or 1 when the grace ran out with answers unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.learning import Recorder
    from bot.runtime import Runtime

__all__ = ["SETTLE", "UNFINISHED", "serve"]

log = logging.getLogger(__name__)

#: after SIGTERM, requests are still taken this long (at most a quarter of the grace):
#: Kubernetes polls readiness every 10 s by default, and a preStop pause of about 5 s is
#: the usual advice for its endpoints to catch up
SETTLE = 5.0
#: the exit status when the grace ran out with answers still in flight
UNFINISHED = 1


async def _reload_on_sighup(runtime: Runtime) -> None:
    outcome = await runtime.reload(origin="signal", announce=False)
    log.log(logging.INFO if outcome.ok else logging.WARNING, "knowledge reload on SIGHUP: %s",
            outcome.summary())


async def _key_user_refs(settings: Settings, recorder: Recorder) -> None:
    """User references in the log are keyed as the learning records are (bot/logs.py)."""
    from bot.logs import set_user_key

    try:
        async with asyncio.timeout(10):
            key = settings.learning.hash_key.encode() or await recorder.hash_key()
    except Exception as exc:  # storage unreachable: a key of this process's own
        log.warning("user references in the log are keyed for this process only: the "
                    "learning records' key could not be read (%s)", type(exc).__name__)
        return
    if key is None:
        log.info("user references in the log are keyed for this process only (learning is "
                 "off and CAREERBOT_HASH_KEY is not set)")
        return
    set_user_key(key)


async def _serve(settings: Settings, slack: bool, discord: bool, knowledge: str | None,
                 port: int | None) -> int:
    from bot.core import Engine
    from bot.core.matcher import warm
    from bot.learning import Recorder
    from bot.ops import bound_port, start_server
    from bot.runtime import Runtime
    from bot.store import open_store

    engine = Engine(knowledge_dir=Path(knowledge) if knowledge else settings.knowledge_dir,
                    settings=settings.match)
    warm()  # before any request: a first answer loading it would hold up every ack
    store = open_store(settings)
    runtime = Runtime(engine, settings, store)
    log.info("knowledge version %s loaded (%d topics); replica %s; store %s", engine.version,
             len(engine.knowledge.topics), runtime.replica, store.description)
    await store.open()  # a wrong password stops here; an absent Redis is only a warning
    recorder = Recorder.from_settings(settings, engine,  # one for both platforms
                                      metrics=runtime.metrics)
    runtime.learning = recorder.health
    if recorder.storage is not None:
        log.info("learning from use: recording to %s", recorder.storage.name)
    await _key_user_refs(settings, recorder)
    port = settings.port if port is None else port
    if slack and not settings.slack_app_token and port and port == settings.ops_port:
        from bot.adapters.errors import ConfigurationError

        raise ConfigurationError(f"--port {port} is CAREERBOT_OPS_PORT: /healthz and /metrics "
                                 "are kept off the public events port; choose another")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()

    def on_sighup() -> None:
        task = asyncio.create_task(_reload_on_sighup(runtime), name="reload on SIGHUP")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    tasks: list[asyncio.Task[Any]] = []
    runner = None
    try:
        if store.shared:
            tasks.append(asyncio.create_task(runtime.listen(), name="reload notices"))
        for name, wanted in (("slack", slack), ("discord", discord)):
            if wanted:
                runtime.set_platform(name, False)  # not ready until it has connected
        try:
            runner = await start_server(runtime, settings.host, settings.ops_port)
            log.info("serving /healthz and /metrics on ops port %d", bound_port(runner))
        except OSError as exc:  # the bot itself needs no ops port: go on without it
            log.error("cannot serve /healthz and /metrics on %s:%d (%s); set "
                      "CAREERBOT_OPS_PORT to a free port", settings.host, settings.ops_port,
                      exc.strerror)
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
        grace = settings.shutdown_grace
        # only Slack's HTTP mode is routed to by a load balancer; Socket Mode and
        # Discord's gateway take nothing new once their connections close
        settle = min(SETTLE, grace / 4) if slack and not settings.slack_app_token else 0.0
        runtime.draining = True  # readiness 503 from now on
        log.info("shutting down: not ready; still taking requests for %.1f s, then finishing "
                 "the work in flight (%.0f s in all)", settle, grace)
        await asyncio.sleep(settle)  # the load balancer's time to stop routing here
        left = await runtime.drain(grace - settle)
        if left:
            log.warning("stopped with %d request(s) unfinished: the shutdown grace (%.0f s, "
                        "CAREERBOT_SHUTDOWN_GRACE) ran out", left, grace)
            return UNFINISHED
        log.info("stopped cleanly")
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        for task in reloads:
            task.cancel()
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
        return asyncio.run(_serve(settings, slack, discord, knowledge, port))
    except (ConfigurationError, StoreError) as exc:
        print(f"careerbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
