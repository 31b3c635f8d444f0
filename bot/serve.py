"""Serve Slack and/or Discord from one process, sharing one engine."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from bot.settings import Settings

__all__ = ["serve"]

log = logging.getLogger(__name__)


async def _serve(settings: Settings, slack: bool, discord: bool, knowledge: str | None,
                 port: int | None) -> None:
    from bot.core import Engine

    engine = Engine(knowledge_dir=Path(knowledge) if knowledge else settings.knowledge_dir,
                    settings=settings.match)
    log.info("knowledge version %s loaded (%d topics)", engine.version,
             len(engine.knowledge.topics))
    tasks = []
    if slack:
        from bot.adapters.slack.app import run_slack

        tasks.append(asyncio.create_task(run_slack(engine, settings, port=port), name="slack"))
    if discord:
        from bot.adapters.discord.client import run_discord

        tasks.append(asyncio.create_task(run_discord(engine, settings), name="discord"))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


def serve(settings: Settings, *, slack: bool, discord: bool, knowledge: str | None = None,
          port: int | None = None) -> int:
    from bot.adapters.errors import ConfigurationError

    try:
        asyncio.run(_serve(settings, slack, discord, knowledge, port))
    except ConfigurationError as exc:
        print(f"careerbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0
