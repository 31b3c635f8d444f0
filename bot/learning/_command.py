"""`careerbot report`: read the records, print the report or the suggestions."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TextIO

from bot.learning._records import QuestionRecord, VoteRecord
from bot.learning._report import (
    build_report,
    parse_since,
    render_csv,
    render_json,
    render_table,
    suggest,
)
from bot.learning._storage import RedisStorage, SQLiteStorage, Storage
from bot.settings import Settings

__all__ = ["run_report"]


async def _read(storage: Storage, since: float) -> tuple[list[QuestionRecord], list[VoteRecord]]:
    await storage.open()
    try:
        return await storage.questions(since), await storage.votes(since)
    finally:
        await storage.close()


def run_report(settings: Settings, *, since: str = "7d", fmt: str = "table",
               suggestions: bool = False, knowledge: str | None = None,
               out: TextIO | None = None) -> int:
    out = out or sys.stdout
    now = time.time()
    try:
        start = parse_since(since, now)
    except ValueError as exc:
        print(f"careerbot: {exc}", file=sys.stderr)
        return 2
    storage: Storage
    if settings.redis_url:
        storage = RedisStorage(settings.redis_url)
    else:
        storage = SQLiteStorage(settings.learning.db_path, create=False)
        if not storage.path.exists():
            print(f"careerbot: nothing recorded yet: {storage.path} does not exist (the bot "
                  "creates it with its first record; CAREERBOT_LEARNING_DB says where)",
                  file=sys.stderr)
    try:
        questions, votes = asyncio.run(_read(storage, start))
    except Exception as exc:  # storage unreachable or unreadable: say where, not a traceback
        print(f"careerbot: cannot read the learning records from {storage.name}: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    report = build_report(questions, votes, since=start, until=now)
    if suggestions:
        from bot.core import KnowledgeError, load_knowledge

        directory = Path(knowledge) if knowledge else settings.knowledge_dir
        try:
            kb = load_knowledge(directory)
        except KnowledgeError as exc:
            print(f"careerbot: the knowledge base cannot be loaded.\n{exc}", file=sys.stderr)
            return 1
        out.write(suggest(report, kb))
        return 0
    render = {"table": render_table, "json": render_json, "csv": render_csv}[fmt]
    out.write(render(report))
    return 0
