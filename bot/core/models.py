"""Plain frozen values that cross the boundary between the core and the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["data_scientist", "ml_engineer", "both"]
ROLES: tuple[Role, ...] = ("data_scientist", "ml_engineer", "both")
#: each of our two roles, and the other one
OTHER_ROLE: dict[Role, Role] = {"data_scientist": "ml_engineer", "ml_engineer": "data_scientist"}
ROLE_NAMES: dict[str, str] = {
    "data_scientist": "Data scientist",
    "ml_engineer": "ML engineer",
    "both": "Both roles",
}

ReplyKind = Literal["answer", "clarify", "decline", "smalltalk", "notice"]


@dataclass(frozen=True)
class Query:
    """One message from a user.

    `conversation` scopes follow-up context: a Slack thread or DM, a Discord
    channel plus user, a console session. Empty means "no memory".
    """

    text: str
    conversation: str = ""
    user: str = ""
    platform: str = "console"


@dataclass(frozen=True)
class Source:
    """One article the answers come from: its title, who wrote or published it, and
    where a reader finds it (`url`, an http(s) address, empty when none is known)."""

    id: str
    title: str
    by: str = ""
    url: str = ""


@dataclass(frozen=True)
class ComparisonRow:
    label: str
    data_scientist: str
    ml_engineer: str


@dataclass(frozen=True)
class Comparison:
    aspect: str
    title: str
    rows: tuple[ComparisonRow, ...]


@dataclass(frozen=True)
class Suggestion:
    """A follow-up offered under an answer (a button on chat platforms).

    Pressing it asks for `topic` and `role` directly: no re-matching of text.
    """

    label: str
    topic: str
    role: Role = "both"


@dataclass(frozen=True)
class Reply:
    """What to show, never how: each renderer picks its platform's best form.

    `short` is the answer in a sentence or two, shown first with `text` (the details)
    under it; empty where a reply has none (declines, notices).
    """

    title: str
    text: str
    kind: ReplyKind = "answer"
    topic: str | None = None
    role: Role | None = None
    confidence: float = 0.0
    comparison: Comparison | None = None
    sources: tuple[Source, ...] = ()
    suggestions: tuple[Suggestion, ...] = field(default=())
    short: str = ""

    @property
    def answered(self) -> bool:
        return self.topic is not None
