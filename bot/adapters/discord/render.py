"""Reply -> Discord embeds and buttons. Discord's limits live here and nowhere else.

Long text is split at paragraph, line, sentence or word boundaries into more
embeds and, past a message's budget, more messages: nothing is ever dropped.
Buttons are `DynamicItem`s: their custom ids carry what to do (topic and role),
so they keep working after a restart and nothing is held in memory per message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

import discord

from bot.core.models import ROLE_NAMES, Comparison, Reply, Role, Source

__all__ = [
    "NO_MENTIONS",
    "FollowUpButton",
    "Page",
    "VoteButton",
    "render",
    "render_text",
    "split_text",
]

MESSAGE_CHARS = 2000
TITLE_CHARS = 256
DESCRIPTION_CHARS = 4096
FIELD_NAME_CHARS = 256
FIELD_VALUE_CHARS = 1024
FIELDS_PER_EMBED = 25
EMBED_CHARS = 6000  # all the embeds of one message together
EMBEDS_PER_MESSAGE = 10
BUTTON_LABEL_CHARS = 80
CUSTOM_ID_CHARS = 100

#: Nothing the bot sends may ping anyone, echoed user text included.
NO_MENTIONS = discord.AllowedMentions.none()

_COLOURS = {
    "answer": discord.Colour(0x2B7BB9),
    "clarify": discord.Colour(0xE3A008),
    "decline": discord.Colour(0x747F8D),
}
_DEFAULT_COLOUR = discord.Colour(0x5865F2)
_BLANK = "\u200b"  # an empty inline field ends a row of the side-by-side table
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|\*(.+?)\*")
_BOUNDARIES = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


@dataclass(frozen=True)
class Page:
    """One Discord message: text or embeds, and buttons on the last page of a reply."""

    content: str = ""
    embeds: tuple[discord.Embed, ...] = ()
    view: discord.ui.View | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `send` / `send_message`."""
        sent: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
        if self.content:
            sent["content"] = self.content
        if self.embeds:
            sent["embeds"] = list(self.embeds)
        if self.view is not None:
            sent["view"] = self.view
        return sent


def render(reply: Reply, *, embeds: bool = True) -> list[Page]:
    """The messages to send for `reply`. Call it inside the event loop (views need one).

    `embeds=False` (where the bot lacks Embed Links): the same answer as plain text,
    title and short answer in bold, a comparison as lines, sources as links.
    """
    pages = _pack(_embeds(reply)) if embeds else render_text(_plain(reply))
    view = _view(reply)
    if view is not None:
        pages[-1] = replace(pages[-1], view=view)
    return pages


def render_text(text: str) -> list[Page]:
    """Plain text (notices, reload reports) in messages of at most 2,000 characters."""
    return [Page(content=chunk) for chunk in split_text(text, MESSAGE_CHARS)]


def split_text(text: str, limit: int = MESSAGE_CHARS) -> list[str]:
    """`text` in chunks of at most `limit` characters, cut at the best boundary available."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def _cut_point(text: str, limit: int) -> int:
    for boundary in _BOUNDARIES:
        at = text.rfind(boundary, 0, limit)
        if at + len(boundary) >= limit // 2:
            return at + len(boundary)
    return limit  # one "word" longer than half the limit: cut it, keep the rest for later


def _clip(text: str, limit: int) -> str:
    """For titles and labels only: answer text is split, never clipped."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _markdown(text: str) -> str:
    """The core's `*emphasis*` means bold, as Discord writes `**bold**`."""
    return _EMPHASIS.sub(lambda m: f"**{m.group(1) or m.group(2)}**", text)


def _plain(reply: Reply) -> str:
    parts = [f"**{_clip(reply.title, TITLE_CHARS)}**"]
    if reply.short:
        parts.append(f"**{reply.short}**")
    parts.append(_markdown(reply.text))
    if reply.comparison is not None:
        for row in reply.comparison.rows:
            parts.append(f"**{row.label}**\n"
                         f"• {ROLE_NAMES['data_scientist']}: {_markdown(row.data_scientist)}\n"
                         f"• {ROLE_NAMES['ml_engineer']}: {_markdown(row.ml_engineer)}")
    if reply.sources:
        parts.append("**Sources**\n" + "\n".join(map(_source, reply.sources)))
    return "\n\n".join(part for part in parts if part.strip())


def _embeds(reply: Reply) -> list[discord.Embed]:
    colour = _COLOURS.get(reply.kind, _DEFAULT_COLOUR)
    # the short answer in bold is the description's first paragraph, the details below
    short = f"**{reply.short}**\n\n" if reply.short else ""
    chunks = split_text(short + _markdown(reply.text), DESCRIPTION_CHARS) or [""]
    embeds = [discord.Embed(title=_clip(reply.title, TITLE_CHARS), description=chunks[0],
                            colour=colour)]
    embeds += [discord.Embed(description=chunk, colour=colour) for chunk in chunks[1:]]
    if reply.comparison is not None:
        for row in _rows(reply.comparison):
            last = embeds[-1]
            size = sum(len(name) + len(value) for name, value in row)
            if len(last.fields) + len(row) > FIELDS_PER_EMBED or len(last) + size > EMBED_CHARS:
                last = discord.Embed(colour=colour)
                embeds.append(last)
            for name, value in row:
                last.add_field(name=name, value=value, inline=True)
    if reply.sources:
        # a footer cannot hold a link: the sources are a field, where markdown links work
        for i, value in enumerate(split_text("\n".join(map(_source, reply.sources)),
                                             FIELD_VALUE_CHARS)):
            name = "Sources" if i == 0 else "Sources (continued)"
            last = embeds[-1]
            if (len(last.fields) + 1 > FIELDS_PER_EMBED
                    or len(last) + len(name) + len(value) > EMBED_CHARS):
                last = discord.Embed(colour=colour)
                embeds.append(last)
            last.add_field(name=name, value=value, inline=False)
    return embeds


_MARKUP = re.compile(r"([\\\[\]*_~`|<>])")


def _source(source: Source) -> str:
    """One line: the title as a markdown link where there is a URL, then who wrote it.

    Markdown in the title and author is escaped, and the URL's brackets percent-encoded,
    so neither can end the link early or open another one.
    """
    title = _MARKUP.sub(r"\\\1", source.title)
    if source.url:
        url = source.url.replace("(", "%28").replace(")", "%29")
        title = f"[{title}]({url})"
    by = _MARKUP.sub(r"\\\1", source.by)
    return f"• {title}" + (f" ({by})" if by else "")


def _rows(comparison: Comparison) -> list[list[tuple[str, str]]]:
    """Each row as inline fields: data scientist | ML engineer | blank (ends the line).

    A cell longer than a field value continues in the next row, marked as such.
    """
    rows: list[list[tuple[str, str]]] = []
    for row in comparison.rows:
        left = split_text(_markdown(row.data_scientist), FIELD_VALUE_CHARS) or ["—"]
        right = split_text(_markdown(row.ml_engineer), FIELD_VALUE_CHARS) or ["—"]
        for i in range(max(len(left), len(right))):
            label = row.label if i == 0 else f"{row.label} (continued)"
            rows.append([
                (_clip(f"{label}: {ROLE_NAMES['data_scientist']}", FIELD_NAME_CHARS),
                 left[i] if i < len(left) else _BLANK),
                (_clip(f"{label}: {ROLE_NAMES['ml_engineer']}", FIELD_NAME_CHARS),
                 right[i] if i < len(right) else _BLANK),
                (_BLANK, _BLANK),
            ])
    return rows


def _pack(embeds: list[discord.Embed]) -> list[Page]:
    pages: list[list[discord.Embed]] = [[]]
    for embed in embeds:
        current = pages[-1]
        full = len(current) == EMBEDS_PER_MESSAGE or (
            sum(map(len, current)) + len(embed) > EMBED_CHARS)
        if current and full:
            pages.append(current := [])
        current.append(embed)
    return [Page(embeds=tuple(page)) for page in pages]


# ---------------------------------------------------------------------------- buttons


class ButtonHandler(Protocol):
    """What the client does when a button is pressed (the client implements it)."""

    async def answer_follow_up(self, interaction: discord.Interaction, topic: str,
                           role: Role) -> None: ...

    async def record_vote(self, interaction: discord.Interaction, topic: str, role: Role,
                      helpful: bool) -> None: ...

    async def failed(self, interaction: discord.Interaction, where: str,
                     cause: BaseException) -> None: ...


_TOPIC = r"(?P<topic>[a-z][a-z0-9_]*)"
_ROLE = r"(?P<role>data_scientist|ml_engineer|both)"


class FollowUpButton(discord.ui.DynamicItem[discord.ui.Button],
                     template=rf"careerbot:ask:{_TOPIC}:{_ROLE}"):
    """Asks for a topic and role directly: no re-matching of the label."""

    def __init__(self, label: str, topic: str, role: Role):
        super().__init__(discord.ui.Button(
            label=_clip(label, BUTTON_LABEL_CHARS), style=discord.ButtonStyle.secondary,
            custom_id=f"careerbot:ask:{topic}:{role}", row=0))
        self.topic, self.role = topic, role

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> FollowUpButton:
        label = getattr(item, "label", None) or match["topic"]
        return cls(label, match["topic"], cast(Role, match["role"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        handler = cast(ButtonHandler, interaction.client)
        try:
            await handler.answer_follow_up(interaction, self.topic, self.role)
        except Exception as exc:  # as a command's: counted, logged once, the user told
            await handler.failed(interaction, "follow-up button", exc)


class VoteButton(discord.ui.DynamicItem[discord.ui.Button],
                 template=rf"careerbot:vote:(?P<vote>up|down):{_TOPIC}:{_ROLE}"):
    """Helpful / not helpful on one answer; the client logs it."""

    def __init__(self, helpful: bool, topic: str, role: Role):
        super().__init__(discord.ui.Button(
            label="Helpful" if helpful else "Not helpful", emoji="👍" if helpful else "👎",
            style=discord.ButtonStyle.success if helpful else discord.ButtonStyle.danger,
            custom_id=f"careerbot:vote:{'up' if helpful else 'down'}:{topic}:{role}", row=1))
        self.helpful, self.topic, self.role = helpful, topic, role

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> VoteButton:
        return cls(match["vote"] == "up", match["topic"], cast(Role, match["role"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        handler = cast(ButtonHandler, interaction.client)
        try:
            await handler.record_vote(interaction, self.topic, self.role, self.helpful)
        except Exception as exc:
            await handler.failed(interaction, "vote button", exc)


def _fits(topic: str) -> bool:
    """A custom id holds at most 100 characters; the longest is a vote's."""
    return len(f"careerbot:vote:down:{topic}:data_scientist") <= CUSTOM_ID_CHARS


def _view(reply: Reply) -> discord.ui.View | None:
    buttons: list[discord.ui.Item[Any]] = [
        FollowUpButton(s.label, s.topic, s.role) for s in reply.suggestions[:3] if _fits(s.topic)]
    if reply.kind == "answer" and reply.topic is not None and _fits(reply.topic):
        role = reply.role or "both"
        buttons += [VoteButton(True, reply.topic, role), VoteButton(False, reply.topic, role)]
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view
