"""The platform-neutral core: knowledge, matching, follow-up context, the engine.

Nothing here imports a chat platform's SDK; adapters translate around
`Engine.answer(Query) -> Reply`.
"""

from bot.core.engine import Engine, ReloadReport
from bot.core.knowledge import Knowledge, KnowledgeError, load_knowledge
from bot.core.models import ROLES, Comparison, ComparisonRow, Query, Reply, Source

__all__ = [
    "ROLES",
    "Comparison",
    "ComparisonRow",
    "Engine",
    "Knowledge",
    "KnowledgeError",
    "Query",
    "ReloadReport",
    "Reply",
    "Source",
    "load_knowledge",
]
