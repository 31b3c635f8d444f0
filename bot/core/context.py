"""Follow-up memory: the last (topic, role) per conversation, forgotten after a while."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.models import Role

__all__ = ["ContextStore", "Turn"]


@dataclass(frozen=True)
class Turn:
    topic: str
    role: Role
    at: float


class ContextStore:
    """In-process, bounded (least recently used conversations are dropped first)."""

    def __init__(self, ttl: float, max_conversations: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_conversations = max_conversations
        self._clock = clock
        self._turns: OrderedDict[str, Turn] = OrderedDict()

    def get(self, conversation: str) -> Turn | None:
        if not conversation:
            return None
        turn = self._turns.get(conversation)
        if turn is None:
            return None
        if self._clock() - turn.at > self.ttl:
            del self._turns[conversation]
            return None
        return turn

    def remember(self, conversation: str, topic: str, role: Role) -> None:
        if not conversation:
            return
        self._turns[conversation] = Turn(topic, role, self._clock())
        self._turns.move_to_end(conversation)
        while len(self._turns) > self.max_conversations:
            self._turns.popitem(last=False)

    def forget(self, conversation: str) -> None:
        self._turns.pop(conversation, None)
