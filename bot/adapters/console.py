"""The local chat: a terminal front end, and the in-memory adapter tests drive.

It speaks the commands the chat platforms do: /compare <aspect>, /topics, /help,
/reload. A number picks one of the follow-ups offered under the last answer.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.core import Engine, Query, Reply
from bot.core.context import Turn
from bot.core.models import Comparison, Suggestion
from bot.store import InProcessStore, Store

__all__ = ["ConsoleChat", "render_text"]

_BOLD = re.compile(r"\*\*(.+?)\*\*|\*(.+?)\*")
_HELP = """**What I answer**: questions about two careers, data scientist vs machine-learning
engineer: what each does, salary, skills, tools, coding, education, career path, switching
between them, job outlook and which one to choose, from five published articles I cite.

**How to ask**: type a question in plain words, e.g. "do ml engineers need a CS degree?".
Follow-ups work too: "and for MLEs?", "what about pay?". A number picks one of the
follow-ups offered under an answer.

**Commands**
• `/compare <aspect>`: the two roles side by side, e.g. `/compare salary`
• `/topics`: everything I cover
• `/reload`: read the knowledge files again (a broken file is reported; the old answers stay)
• `/help`: this message
• `quit`, `exit`, Ctrl-D or Ctrl-C twice: leave"""


def _plain(markdown: str, ansi: bool) -> str:
    def bold(m: re.Match[str]) -> str:
        inner = m.group(1) or m.group(2)
        return f"\033[1m{inner}\033[0m" if ansi else inner
    return _BOLD.sub(bold, markdown).replace("`", "")


def _table(comparison: Comparison, width: int) -> list[str]:
    label_w = min(max(len(r.label) for r in comparison.rows), 24)
    col = max(16, (width - label_w - 7) // 2)
    head = f"{'':<{label_w}} | {'Data scientist':<{col}} | ML engineer"
    lines = [head, "-" * min(width, label_w + 2 * col + 6)]
    for row in comparison.rows:
        cells = [textwrap.wrap(v, col) or [""] for v in (row.label, row.data_scientist,
                                                         row.ml_engineer)]
        cells[0] = textwrap.wrap(row.label, label_w) or [""]
        for i in range(max(map(len, cells))):
            parts = [c[i] if i < len(c) else "" for c in cells]
            lines.append(f"{parts[0]:<{label_w}} | {parts[1]:<{col}} | {parts[2]}".rstrip())
    return lines


def render_text(reply: Reply, width: int = 88, ansi: bool = False) -> str:
    """A Reply for a terminal: title, wrapped text, the comparison as a two-column table."""
    out = [_plain(f"**{reply.title}**", ansi)]
    if reply.short:
        out += textwrap.wrap(_plain(f"**{reply.short}**", ansi), width) + [""]
    for para in _plain(reply.text, ansi).split("\n"):
        out += textwrap.wrap(para, width, subsequent_indent="  " if para.startswith("•") else "",
                             replace_whitespace=False) or [""]
    if reply.comparison and reply.comparison.rows:
        out += [""] + _table(reply.comparison, width)
    if reply.sources:
        # one line each: a terminal shows the address whole, where it can be clicked or copied
        out += ["", "Sources:"]
        for s in reply.sources:
            cited = s.title + (f", {s.by}" if s.by else "")
            out += textwrap.wrap(cited, width, initial_indent="  • ", subsequent_indent="    ")
            if s.url:
                out.append(f"    {s.url}")
    if reply.suggestions:
        out += [""] + [f"  [{i}] {s.label}" for i, s in enumerate(reply.suggestions, 1)]
    return "\n".join(out)


class ConsoleChat:
    """One conversation with the engine. `await handle(line)` returns the text to show.

    Its follow-up context lives in a store like every front end's (in-process here).
    """

    def __init__(self, engine: Engine, conversation: str = "console",
                 knowledge_dir: Path | None = None, ansi: bool = False, width: int = 88,
                 store: Store | None = None):
        self.engine = engine
        self.store = store or InProcessStore(context_ttl=engine.settings.context_ttl)
        self.conversation = conversation
        self.knowledge_dir = knowledge_dir
        self.ansi = ansi
        self.width = width
        self._offered: tuple[Suggestion, ...] = ()

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
            return f"Unknown command /{command}. Try /help, /topics, /compare <aspect>, /reload."
        return await self.engine.converse(Query(text=line, conversation=self.conversation),
                                          self.store)

    def help(self) -> Reply:
        """How to use this chat: what to ask, and the console's own commands."""
        return Reply(title="How to use careerbot here", kind="notice", text=_HELP,
                     suggestions=self.engine.help().suggestions)

    async def handle(self, line: str) -> str:
        reply = await self.reply_for(line)
        if isinstance(reply, str):
            return reply
        self._offered = reply.suggestions
        return render_text(reply, self.width, self.ansi)

    def run(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
            prompt: str = "you> ") -> int:
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
