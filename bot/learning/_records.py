"""What is recorded: plain frozen values, and the keyed hash that stands in for ids."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

__all__ = ["QuestionKind", "QuestionRecord", "VoteRecord", "keyed_hash"]

#: "answer": answered with confidence; "low": answered, but below the low-confidence
#: line; "clarify": asked "did you mean"; "decline": declined.
QuestionKind = Literal["answer", "low", "clarify", "decline"]
UNSURE: frozenset[str] = frozenset({"low", "clarify", "decline"})


@dataclass(frozen=True)
class QuestionRecord:
    """One question. `text` is kept only for declined or unsure ones, and only if allowed."""

    at: float                   # seconds since the epoch, UTC
    platform: str
    kind: QuestionKind
    text: str | None = None
    topic: str | None = None    # the answered topic, or the nearest one
    score: float = 0.0          # the confidence, or the nearest topic's score
    reason: str | None = None   # why declined: an out-of-scope group, low_confidence, ...
    user: str = ""              # keyed hash, never the id
    channel: str = ""           # keyed hash, never the id

    @property
    def unsure(self) -> bool:
        return self.kind in UNSURE


@dataclass(frozen=True)
class VoteRecord:
    """One press of 👍 / 👎 under an answer, with the question that led to it if known."""

    at: float
    platform: str
    topic: str
    role: str
    helpful: bool
    question: str | None = None
    user: str = ""
    channel: str = ""
    #: keyed hash of the answer's message (a voter's later vote on it replaces this one)
    answer: str = ""


def keyed_hash(key: bytes, platform: str, value: str) -> str:
    """HMAC-SHA256 of `platform:value`, 128 bits in hex; "" for no value.

    The same id hashes the same way under the same key (so people and channels can
    be counted), and without the key an id cannot be found by trying candidates.
    """
    if not value:
        return ""
    return hmac.new(key, f"{platform}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
