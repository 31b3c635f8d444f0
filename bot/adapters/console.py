"""The local chat: a terminal front end, and the in-memory adapter tests drive.

It speaks the commands the chat platforms do: /compare <aspect>, /topics, /help,
/reload. A number picks one of the follow-ups offered under the last answer. rich lays
replies out (markdown, tables, wrapping that knows what is styled); at a terminal an
answer taller than it is shown a page at a time, /more giving the rest.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from bot.core import Engine, Query, Reply
from bot.core.context import Turn
from bot.core.models import ROLE_NAMES, Comparison, Suggestion

if TYPE_CHECKING:  # the store, like the chat loop, brings asyncio: `careerbot ask`
    # renders one reply without it
    from bot.store import Store

__all__ = ["ConsoleChat", "render_text"]

_HELP = "\n".join([
    "**What I answer**: questions about two careers, data scientist vs machine-learning "
    "engineer: what each does, salary, skills, tools, coding, education, career path, "
    "switching between them, job outlook and which one to choose, from five published "
    "articles I cite.",
    "",
    '**How to ask**: type a question in plain words, e.g. "do ml engineers need a CS '
    'degree?". Follow-ups work too: "and for MLEs?", "what about pay?". A number picks one '
    "of the follow-ups offered under an answer.",
    "",
    "**Commands**",
    "• `/compare <aspect>`: the two roles side by side, e.g. `/compare salary`",
    "• `/topics`: everything I cover",
    "• `/reload`: read the knowledge files again (a broken file is reported; the old answers "
    "stay)",
    "• `/more`: the rest of an answer taller than the terminal",
    "• `/help`: this message",
    "• `quit`, `exit`, Ctrl-D or Ctrl-C twice: leave",
])
_ITEM = re.compile(r"^\s*([•*-]|\d+[.)])\s+")
# the core's inline markdown: **bold**, `code`, *emphasis* and _emphasis_ (not inside words)
_INLINE = re.compile(r"\*\*(?P<bold>.+?)\*\*|`(?P<code>[^`]+)`"
                     r"|(?<![\w*])\*(?P<em>[^\s*](?:.*?[^\s*])??)\*(?![\w*])"
                     r"|(?<![\w])_(?P<em2>[^\s_](?:.*?[^\s_])??)_(?!\w)")
_STYLES = {"bold": "bold", "code": "bold cyan", "em": "italic", "em2": "italic"}
# the padding rich puts after a line's text, among the style codes that close it
_PADDING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$", re.MULTILINE)
_SPACE = re.compile(r"[ \t]+")


def _inline(line: str) -> Text:
    """One line of the core's markdown as styled text, its marks gone (nothing in it is
    read as rich markup)."""
    text = Text()
    at = 0
    for m in _INLINE.finditer(line):
        text.append(line[at:m.start()])
        kind = m.lastgroup or "bold"
        text.append(m.group(kind), style=_STYLES[kind])
        at = m.end()
    text.append(line[at:])
    return text


def _markdown(markdown: str) -> list[RenderableType]:
    """The core's markdown, a renderable a line: paragraphs apart by a blank line, each of
    its lines a line (the core ends a line where it means to), list items (• - * 1.)
    with their wrapped lines hanging under the text."""
    out: list[RenderableType] = []
    for line in markdown.strip().split("\n"):
        item = _ITEM.match(line)
        if item:
            mark = "•" if item.group(1) in "•*-" else item.group(1)
            out.append(_hanging(f"  {mark} ", _inline(line[item.end():])))
        else:
            out.append(_inline(line.strip()))
    return out


def _table(comparison: Comparison) -> Table:
    table = Table(box=box.ROUNDED, show_lines=True, header_style="bold", expand=False)
    table.add_column("", style="bold", ratio=1)
    table.add_column(ROLE_NAMES["data_scientist"], ratio=2)
    table.add_column(ROLE_NAMES["ml_engineer"], ratio=2)
    for row in comparison.rows:
        table.add_row(Text(row.label), Text(row.data_scientist), Text(row.ml_engineer))
    return table


def _hanging(mark: str, text: str | Text) -> Table:
    """`mark` then `text`, wrapped lines lined up under the text's first word."""
    grid = Table.grid()
    grid.add_column(width=len(mark), no_wrap=True)
    grid.add_column()
    grid.add_row(mark, Text(text) if isinstance(text, str) else text)
    return grid


def _console(out: io.StringIO, width: int, ansi: bool) -> Console:
    """A console writing to `out`: styled for a terminal (`ansi`), or plain text with no
    escape code at all. Nothing printed is read as rich markup, emoji codes or highlights."""
    return Console(file=out, width=width, force_terminal=ansi,
                   color_system="standard" if ansi else None, markup=False, emoji=False,
                   highlight=False, legacy_windows=False, soft_wrap=False)


def render_text(reply: Reply, width: int = 88, ansi: bool = False) -> str:
    """A Reply for a terminal, laid out by rich: the title, the short answer, the text as
    markdown, the comparison as a table, the sources (each address on one line, whole, to
    click or copy) and the follow-ups numbered."""
    out = io.StringIO()
    console = _console(out, width, ansi)
    console.print(Text(reply.title, style="bold cyan"))
    if reply.short:
        console.print(Text(reply.short, style="bold"))
        console.print()
    if reply.text.strip():
        for part in _markdown(reply.text):
            console.print(part)
    if reply.comparison and reply.comparison.rows:
        console.print()
        console.print(_table(reply.comparison))
    if reply.sources:
        console.print()
        console.print(Text("Sources:", style="dim"))
        for source in reply.sources:
            by = f", {source.by}" if source.by else ""
            console.print(_hanging("  • ", source.title + by))
            if source.url:
                console.print(Text.assemble("    ", (source.url, f"link {source.url}")),
                              no_wrap=True, overflow="ignore", crop=False)
    if reply.suggestions:
        console.print()
        for i, suggestion in enumerate(reply.suggestions, 1):
            console.print(_hanging(f"  [{i}] ", suggestion.label))
    return _PADDING.sub(lambda m: _SPACE.sub("", m.group()), out.getvalue()).rstrip("\n")


class ConsoleChat:
    """One conversation with the engine. `await handle(line)` returns the text to show.

    Its follow-up context lives in a store like every front end's (in-process here).
    """

    def __init__(self, engine: Engine, conversation: str = "console",
                 knowledge_dir: Path | None = None, ansi: bool = False, width: int = 88,
                 store: Store | None = None, height: int | None = None):
        """`height`: the terminal's rows, to page what is taller (None: never page; an
        interactive run takes the terminal's)."""
        from bot.store import InProcessStore

        self.engine = engine
        self.store = store or InProcessStore(context_ttl=engine.settings.context_ttl)
        self.conversation = conversation
        self.knowledge_dir = knowledge_dir
        self.ansi = ansi
        self.width = width
        self.height = height
        self._offered: tuple[Suggestion, ...] = ()
        self._more: list[str] = []  # what /more shows next

    async def reply_for(self, line: str) -> Reply | str:
        line = line.strip()
        if line.isdigit() and self._offered:
            if not 0 < int(line) <= len(self._offered):
                return f"Pick 1–{len(self._offered)}, one of the follow-ups above."
            pick = self._offered[int(line) - 1]
            reply = self.engine.topic_reply(pick.topic, pick.role)
            if (turn := Turn.of(reply)) is not None:
                await self.store.set_context(self.conversation, turn)
            return reply
        if line.startswith("/"):
            command, _, rest = line[1:].partition(" ")
            command = command.lower()
            if command == "compare":
                return self.engine.compare(rest)
            if command == "topics":
                return self.engine.topics()
            if command == "help":
                return self.help()
            if command == "reload":
                return self.engine.reload(self.knowledge_dir).summary()
            return (f"Unknown command /{command}. Try /help, /topics, /compare <aspect>, "
                    "/reload, /more.")
        return await self.engine.converse(Query(text=line, conversation=self.conversation),
                                          self.store)

    def help(self) -> Reply:
        """How to use this chat: what to ask, and the console's own commands."""
        return Reply(title="How to use careerbot here", kind="notice", text=_HELP,
                     suggestions=self.engine.help().suggestions)

    async def handle(self, line: str) -> str:
        """The text to show for `line`: a page of it, when it is taller than the terminal."""
        if line.strip().lower() == "/more":
            return self._page(self._more) if self._more else "Nothing more: that was all of it."
        reply = await self.reply_for(line)
        if isinstance(reply, str):
            return self._page(reply.split("\n"))
        self._offered = reply.suggestions
        return self._page(render_text(reply, self.width, self.ansi).split("\n"))

    def _page(self, lines: list[str]) -> str:
        """`lines` whole when they fit the terminal (`height`, None for no paging) with the
        prompt under them; else as many as fit, and /more keeps the rest."""
        room = max((self.height or 0) - 2, 3)  # a line for the hint, one for the prompt
        if self.height is None or len(lines) <= room + 1:
            self._more = []
            return "\n".join(lines)
        self._more = lines[room:]
        return "\n".join([*lines[:room], f"… {len(self._more)} more lines: /more shows them"])

    def run(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
            prompt: str = "you> ") -> int:
        import asyncio

        return asyncio.run(self._run(stdin, stdout, prompt))

    async def _run(self, stdin: TextIO, stdout: TextIO, prompt: str) -> int:
        # reading the terminal blocks this loop; nothing else runs on it
        interactive = stdin.isatty() and stdout.isatty()
        read: Callable[[str], str]
        if interactive and threading.current_thread() is threading.main_thread():
            # asyncio.run's own SIGINT handler would wait for this loop, which the blocking
            # read holds: Ctrl-C is a KeyboardInterrupt in the read instead, as in a shell
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if interactive:
            if self.height is None:
                self.height = shutil.get_terminal_size((88, 24)).lines
            read = _readline_input()
            stdout.write(await self.handle("/help") + "\n\n")
        else:
            def read(_: str) -> str:
                line = stdin.readline()
                if not line:
                    raise EOFError
                return line
        interrupted = False
        while True:
            try:
                line = read(prompt)
            except KeyboardInterrupt:
                # as in a shell: the first Ctrl-C drops the line, a second one in a row quits
                if interactive and not interrupted:
                    interrupted = True
                    stdout.write("\n(Ctrl-C again, or Ctrl-D, to quit)\n")
                    continue
                if interactive:
                    stdout.write("\nbye!\n")
                return 0
            except EOFError:
                if interactive:
                    stdout.write("\nbye!\n")
                return 0
            interrupted = False
            if line.strip().lower() in {"/quit", "/exit", "quit", "exit"}:
                return 0
            if not line.strip():
                continue
            stdout.write(await self.handle(line) + "\n\n")
            stdout.flush()


def _readline_input() -> Callable[[str], str]:
    """input() with line editing and a history file, where readline exists."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return input
    history = Path(os.environ.get("CAREERBOT_HISTORY", Path.home() / ".careerbot_history"))
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    import atexit

    def save() -> None:
        try:
            readline.write_history_file(history)
        except OSError:
            pass
    atexit.register(save)
    return input


def terminal_width() -> int:
    return min(100, shutil.get_terminal_size((88, 24)).columns)
