"""Reply -> Slack Block Kit: the one place that knows Slack's mrkdwn and its limits.

Every message is a `SlackMessage`: Block Kit `blocks` plus a plain `text`
fallback for notifications, ready to splat into `chat.postMessage` or `respond()`.
All text that reaches mrkdwn is escaped (&, <, >), so nothing a user typed can
turn into a mention, a link or a ping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypedDict

from bot.core.models import Comparison, Reply, Source

__all__ = [
    "FEEDBACK",
    "FOLLOWUP",
    "MAX_BLOCKS",
    "MAX_FALLBACK",
    "MAX_SECTION",
    "PICK_ASPECT",
    "SHARE",
    "SlackMessage",
    "escape",
    "mrkdwn",
    "notice",
    "render",
]

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks)
MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_OPTIONS = 100
MAX_OPTION_VALUE = 150
MAX_FALLBACK = 3000  # the notification text; Slack would take more, nobody reads it

# action ids the app listens for
FOLLOWUP = "careerbot_followup"
FEEDBACK = "careerbot_feedback"
SHARE = "careerbot_share"
PICK_ASPECT = "careerbot_compare_pick"

Block = dict[str, Any]


class SlackMessage(TypedDict):
    text: str
    blocks: list[Block]


def escape(text: str) -> str:
    """Slack's three control characters; after this no text can mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_COMMAND = re.compile(r"`/(compare|topics|help|reload)\b")
_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")
# a single newline inside a paragraph, unless a list item or quote follows it
_SOFT_BREAK = re.compile(r"(?<!\n)[ \t]*\n(?![ \t]*(?:\n|[•>*-][ \t]|\d+[.)][ \t]))[ \t]*")


def mrkdwn(markdown: str, command: str = "/careerbot") -> str:
    """The core's markdown as Slack mrkdwn, with commands spelled the Slack way.

    Paragraphs are unwrapped: Slack keeps every newline, so hard-wrapped source
    text would show as ragged short lines.
    """
    text = _BOLD.sub(r"*\1*", _SOFT_BREAK.sub(" ", escape(markdown).strip()))
    return _COMMAND.sub(lambda m: f"`{command} {m.group(1)}", text)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + "…"


def _chunks(text: str, limit: int = MAX_SECTION) -> list[str]:
    """Pack whole lines into pieces that each fit one section."""
    out = [""]
    for line in text.split("\n"):
        line = _cut(line, limit)
        if out[-1] and len(out[-1]) + 1 + len(line) > limit:
            out.append(line)
        else:
            out[-1] = f"{out[-1]}\n{line}" if out[-1] else line
    return [piece.strip("\n") for piece in out if piece.strip()]


def _text(kind: str, text: str) -> Block:
    return {"type": kind, "text": text}


def _section(text: str) -> Block:
    return {"type": "section", "text": _text("mrkdwn", _cut(text, MAX_SECTION))}


def _button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
    button = {"type": "button", "text": _text("plain_text", _cut(label, MAX_BUTTON)),
              "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def _source(source: Source) -> str:
    """An article as mrkdwn: its title a link where it has a URL (`<url|title>`), then
    who wrote it. Title and author are escaped, so neither can open a link or a mention."""
    title = escape(source.title)
    cited = f"<{escape(source.url)}|{title}>" if source.url else f"_{title}_"
    return cited + (f", {escape(source.by)}" if source.by else "")


def _cut_links(text: str, limit: int) -> str:
    """`_cut`, never ending inside a `<url|title>` (a cut one would show as raw markup)."""
    if len(text) <= limit:
        return text
    cut = _cut(text, limit)
    opened = cut.rfind("<")
    return cut if opened < cut.rfind(">") else cut[:opened].rstrip("; ") + "…"


def _comparison(comparison: Comparison) -> list[Block]:
    """Two columns: a section's fields sit side by side, left to right."""
    def fields(left: str, right: str) -> list[Block]:
        return [_text("mrkdwn", _cut(left, MAX_FIELD)), _text("mrkdwn", _cut(right, MAX_FIELD))]

    blocks: list[Block] = [{"type": "section", "fields": fields("*Data scientist*",
                                                                "*ML engineer*")}]
    for row in comparison.rows:
        blocks.append({"type": "section",
                       "text": _text("mrkdwn", _cut(f"*{escape(row.label)}*", MAX_SECTION)),
                       "fields": fields(escape(row.data_scientist), escape(row.ml_engineer))})
    return blocks


def _footer(reply: Reply, share: str | None, aspects: Sequence[str]) -> list[Block]:
    blocks: list[Block] = []
    if reply.sources:
        cited = "; ".join(_source(s) for s in reply.sources)
        blocks.append({"type": "context", "elements": [
            _text("mrkdwn", _cut_links("Sources: " + cited, MAX_SECTION))]})
    if aspects:
        blocks.append({"type": "actions", "elements": [{
            "type": "static_select",
            "action_id": PICK_ASPECT,
            "placeholder": _text("plain_text", "Pick an aspect"),
            "options": [{"text": _text("plain_text", _cut(a, MAX_BUTTON)),
                         "value": a[:MAX_OPTION_VALUE]} for a in aspects[:MAX_OPTIONS]],
        }]})
    if reply.suggestions:
        blocks.append({"type": "actions", "elements": [
            _button(s.label, f"{FOLLOWUP}_{i}", f"{s.topic}:{s.role}")
            for i, s in enumerate(reply.suggestions[:5])]})
    buttons = []
    if reply.kind == "answer" and reply.topic:
        value = f"{reply.topic}:{reply.role or 'both'}"
        buttons += [_button("👍 Helpful", f"{FEEDBACK}_helpful", value),
                    _button("👎 Not helpful", f"{FEEDBACK}_not_helpful", value)]
    if share:
        buttons.append(_button("Share in channel", SHARE, share, style="primary"))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks


def render(reply: Reply, *, command: str = "/careerbot", share: str | None = None,
           aspects: Sequence[str] = ()) -> SlackMessage:
    """Header, mrkdwn sections, the comparison in two columns, sources, buttons.

    `share` adds a "Share in channel" button carrying that value; `aspects` adds a
    select menu of them. Fits Slack's 50 blocks by cutting the body, never the buttons.
    """
    header = [{"type": "header", "text": _text("plain_text", _cut(reply.title, MAX_HEADER))}]
    footer = _footer(reply, share, aspects)
    body = [_section(chunk) for chunk in _chunks(mrkdwn(reply.text, command))]
    if reply.comparison and reply.comparison.rows:
        body += _comparison(reply.comparison)
    room = MAX_BLOCKS - len(header) - len(footer)
    if len(body) > room:
        body = body[: room - 1] + [_section("_…and more than fits in one Slack message._")]
    fallback = mrkdwn(f"{reply.title}\n\n{reply.text}", command)
    return {"text": _cut(fallback, MAX_FALLBACK), "blocks": header + body + footer}


def notice(text: str) -> SlackMessage:
    """A one-section message: refusals, "slow down", thanks."""
    safe = escape(text)
    return {"text": _cut(safe, MAX_FALLBACK), "blocks": [_section(safe)]}
