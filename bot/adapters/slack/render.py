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
    "ASK",
    "FEEDBACK",
    "FOLLOWUP",
    "MAX_BLOCKS",
    "MAX_FALLBACK",
    "MAX_PROMPTS",
    "MAX_PROMPT_MESSAGE",
    "MAX_PROMPT_TITLE",
    "MAX_SECTION",
    "MAX_VIEW_BLOCKS",
    "PICK_ASPECT",
    "RELOAD",
    "SHARE",
    "SlackMessage",
    "SlackView",
    "escape",
    "home",
    "mrkdwn",
    "notice",
    "prompts",
    "render",
    "thread_title",
]

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks)
MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100  # a Home tab's view (https://docs.slack.dev/surfaces/app-home)
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_OPTIONS = 100
MAX_OPTION_VALUE = 150
MAX_BUTTON_VALUE = 2000
MAX_CONTEXT = 3000  # a context block's text element
MAX_FALLBACK = 3000  # the notification text; Slack would take more, nobody reads it
# assistant.threads.setSuggestedPrompts takes "up to four" prompts
# (https://docs.slack.dev/reference/methods/assistant.threads.setSuggestedPrompts); it
# names no length for a prompt, so its title is held to a button's and its message to
# what a user could type as a question
MAX_PROMPTS = 4
MAX_PROMPT_TITLE = MAX_BUTTON
MAX_PROMPT_MESSAGE = 2000
MAX_THREAD_TITLE = MAX_HEADER  # assistant.threads.setTitle: no documented limit either

# action ids the app listens for
FOLLOWUP = "careerbot_followup"
FEEDBACK = "careerbot_feedback"
SHARE = "careerbot_share"
PICK_ASPECT = "careerbot_compare_pick"
ASK = "careerbot_ask"  # an example question on the Home tab, asked when pressed
RELOAD = "careerbot_reload"  # the admins' reload button on the Home tab

Block = dict[str, Any]


class SlackMessage(TypedDict):
    text: str
    blocks: list[Block]


class SlackView(TypedDict):
    type: str
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


def _header(title: str) -> Block:
    return {"type": "header", "text": _text("plain_text", _cut(title, MAX_HEADER))}


def _body(reply: Reply, command: str) -> list[Block]:
    """The short answer in bold, the reply's text as mrkdwn sections, then its
    comparison in two columns."""
    body = [_section(f"*{escape(reply.short)}*")] if reply.short else []
    body += [_section(chunk) for chunk in _chunks(mrkdwn(reply.text, command))]
    if reply.comparison and reply.comparison.rows:
        body += _comparison(reply.comparison)
    return body


def _fit(head: list[Block], body: list[Block], tail: list[Block], limit: int,
         where: str) -> list[Block]:
    """`head + body + tail` in at most `limit` blocks, cutting the body (never the head
    or the buttons in the tail) and saying so."""
    room = limit - len(head) - len(tail)
    if len(body) > room:
        body = body[: room - 1] + [_section(f"_…and more than fits in {where}._")]
    return head + body + tail


def _byline(text: str) -> Block:
    return {"type": "context", "elements": [_text("mrkdwn", _cut_links(text, MAX_CONTEXT))]}


def render(reply: Reply, *, command: str = "/careerbot", share: str | None = None,
           aspects: Sequence[str] = (), byline: str | None = None) -> SlackMessage:
    """Header, the short answer in bold, mrkdwn sections, the comparison in two columns,
    sources, buttons.

    `share` adds a "Share in channel" button carrying that value; `aspects` adds a
    select menu of them; `byline` (mrkdwn the caller made safe, such as "Shared by
    <@U…>") a context line under the header. Fits Slack's 50 blocks by cutting the
    body, never the buttons.
    """
    head = [_header(reply.title)] + ([_byline(byline)] if byline else [])
    blocks = _fit(head, _body(reply, command), _footer(reply, share, aspects), MAX_BLOCKS,
                  "one Slack message")
    short = f"{reply.short}\n\n" if reply.short else ""
    fallback = mrkdwn(f"{reply.title}\n\n{short}{reply.text}", command)
    return {"text": _cut(fallback, MAX_FALLBACK), "blocks": blocks}


def home(about: Reply, topics: Reply, examples: Sequence[str], *,
         command: str = "/careerbot", admin: Sequence[Reply] | None = None) -> SlackView:
    """careerbot's Home tab: what it answers (`about`), `examples` each with an Ask
    button (its value the question, asked when pressed), the `topics`; for an admin
    (`admin` given, even empty), those replies (stats, the last reload) and a reload
    button. Fits a view's 100 blocks: `about` takes 10 at most, the examples 10, each
    admin reply 21 (two at most), and the topics are cut to what is left."""
    divider: Block = {"type": "divider"}
    head = [_header(about.title), *_body(about, command)[:10], divider,
            _header("Try asking")]
    head += [{"type": "section", "text": _text("mrkdwn", _cut(escape(q), MAX_SECTION)),
              "accessory": _button("Ask", f"{ASK}_{i}", q[:MAX_BUTTON_VALUE])}
             for i, q in enumerate(examples[:10])]
    head += [divider, _header(topics.title)]
    tail: list[Block] = []
    if admin is not None:
        tail += [divider, _header("For admins")]
        for reply in admin[:2]:
            tail += [_section(f"*{escape(reply.title)}*"), *_body(reply, command)[:20]]
        reload = _button("Reload the knowledge base", RELOAD, "reload")
        reload["confirm"] = {
            "title": _text("plain_text", "Reload the knowledge base?"),
            "text": _text("mrkdwn", "careerbot re-reads its YAML; if any file is broken it "
                                    "keeps serving the version it has."),
            "confirm": _text("plain_text", "Reload"), "deny": _text("plain_text", "Cancel")}
        tail.append({"type": "actions", "elements": [reload]})
    return {"type": "home", "blocks": _fit(head, _body(topics, command), tail,
                                           MAX_VIEW_BLOCKS, "the Home tab")}


def prompts(examples: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Suggested prompts for an assistant thread: each (title, question) a prompt that
    shows its title and, when picked, sends its question; four at most, cut to fit.
    Plain text (Slack sends the message as the user's own), never empty."""
    out = []
    for title, question in examples:
        title, question = title.strip(), question.strip()
        if title and question:
            out.append({"title": _cut(title, MAX_PROMPT_TITLE),
                        "message": _cut(question, MAX_PROMPT_MESSAGE)})
    return out[:MAX_PROMPTS]


def thread_title(text: str) -> str:
    """An assistant thread's title: one line of plain text, cut to fit, with no `<` or
    `>` (so nothing in it can read as a mention, whatever Slack makes of it)."""
    return _cut(" ".join(text.replace("<", " ").replace(">", " ").split()), MAX_THREAD_TITLE)


def notice(text: str) -> SlackMessage:
    """A one-section message: refusals, "slow down", thanks."""
    safe = escape(text)
    return {"text": _cut(safe, MAX_FALLBACK), "blocks": [_section(safe)]}
