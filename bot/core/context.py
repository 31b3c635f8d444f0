"""Follow-up memory: what a conversation was last about, and where that is kept.

The engine answers one message at a time from the message and the conversation's
previous `Turn` (`Engine.answer(query, previous=...)`). Where turns live between
messages is a `ContextStore`'s business: in this process (`bot.store.InProcessStore`)
or in Redis, shared by every replica (`bot.store.RedisStore`). Both forget a
conversation `CAREERBOT_CONTEXT_TTL` seconds after its last answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.core.models import Reply, Role

__all__ = ["ContextStore", "Turn"]


@dataclass(frozen=True)
class Turn:
    """The subject of a conversation's last answer: what a follow-up leans on."""

    topic: str
    role: Role

    @classmethod
    def of(cls, reply: Reply) -> Turn | None:
        """The turn an answer leaves behind; None for anything that is not an answer."""
        if reply.kind != "answer" or reply.topic is None:
            return None
        return cls(reply.topic, reply.role or "both")


class ContextStore(Protocol):
    """Where conversations' last turns are kept (async: it may be across the network)."""

    async def get_context(self, conversation: str) -> Turn | None: ...

    async def set_context(self, conversation: str, turn: Turn) -> None: ...
