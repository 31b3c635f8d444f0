"""The console chat: in process for what it says, and the real `careerbot chat` on a
terminal (a pty) for how it behaves at the keyboard."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.adapters.console import ConsoleChat, render_text
from bot.core import Reply
from bot.core.models import Comparison, ComparisonRow
from tests.serve_process import ROOT

WAIT = 30.0
HINT = b"(Ctrl-C again, or Ctrl-D, to quit)\r\nyou> "  # the line dropped, a new prompt


async def test_help_lists_the_console_commands_not_the_platforms(engine):
    text = await ConsoleChat(engine).handle("/help")
    for command in ("/compare", "/topics", "/reload", "quit"):
        assert command in text
    assert "mention me" not in text and "channel" not in text


async def test_an_answer_opens_with_its_short_answer(engine):
    text = await ConsoleChat(engine, width=200).handle("what do ML engineers earn?")
    title, short, blank, details = text.splitlines()[:4]
    assert title == "Salary and compensation: ML engineer"
    assert short == engine.knowledge.topics["salary"].short["ml_engineer"]
    assert blank == "" and details.startswith("An ML engineer in the US earns")


_SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_a_comparison_is_a_table_with_a_column_a_role():
    comparison = Comparison("pay", "Pay", (
        ComparisonRow("US range", "$120k–$170k", "$140k–$200k+"),
        ComparisonRow("Who earns more", "Slightly less", "Slightly more")))
    lines = render_text(Reply(title="Pay", text="", comparison=comparison), 80).splitlines()
    [head] = [line for line in lines if "Data scientist" in line]
    ds, mle = head.index("Data scientist"), head.index("ML engineer")
    for label, left, right in (("US range", "$120k–$170k", "$140k–$200k+"),
                               ("Who earns more", "Slightly less", "Slightly more")):
        [row] = [line for line in lines if label in line]
        assert (row.index(left), row.index(right)) == (ds, mle)  # each value in its column
        assert row.count("│") == 4  # the label, the two roles, between box edges


def test_a_bold_line_wraps_where_the_same_line_unstyled_does():
    words = " ".join(f"word{i}" for i in range(40))
    plain = render_text(Reply(title="T", text=words), 50, ansi=True)
    bold = render_text(Reply(title="T", text=f"**{words}**"), 50, ansi=True)
    assert "\x1b[1m" in bold.split("\n", 1)[1] and "**" not in bold
    assert _SGR.sub("", bold).splitlines() == _SGR.sub("", plain).splitlines()
    assert max(map(len, _SGR.sub("", bold).splitlines())) <= 50


async def test_plain_output_has_no_escape_codes_and_no_markdown_marks(engine):
    text = await ConsoleChat(engine, ansi=False).handle("/compare salary")
    assert "\x1b" not in text and "**" not in text
    help_text = await ConsoleChat(engine, ansi=False, width=100).handle("/help")
    assert "• /compare <aspect>: the two roles side by side" in help_text  # a list, code kept
    marked = Reply(title="T", text="**Bold**, *emphasis*, _too_, `co*de*`, snake_case, 2*3*4, "
                                   "[1] <b>")
    assert render_text(marked).splitlines()[1] == ("Bold, emphasis, too, co*de*, snake_case, "
                                                   "2*3*4, [1] <b>")


async def test_an_answer_taller_than_the_terminal_is_paged_with_more(engine):
    whole = await ConsoleChat(engine, width=80).handle("/compare salary")
    chat = ConsoleChat(engine, width=80, height=12)
    first = (await chat.handle("/compare salary")).splitlines()
    assert len(first) == 11 and first[:10] == whole.splitlines()[:10]
    left = len(whole.splitlines()) - 10
    assert first[-1] == f"… {left} more lines: /more shows them"
    pages = [first[:-1]]
    while pages[-1] and (page := (await chat.handle("/more")).splitlines()):
        if page == ["Nothing more: that was all of it."]:
            break
        pages.append(page[:-1] if page[-1].endswith("/more shows them") else page)
    assert [line for p in pages for line in p] == whole.splitlines()
    assert (await chat.handle("2")).startswith("Which career to choose")  # numbers still pick


async def test_a_number_out_of_range_says_which_to_pick(engine):
    chat = ConsoleChat(engine)
    answer = await chat.handle("what do ML engineers earn?")
    offered = answer.count("  [")
    assert offered == 3
    assert await chat.handle("7") == "Pick 1–3, one of the follow-ups above."
    assert (await chat.handle("2")).startswith("Which career to choose")


def _take_terminal() -> None:
    """In the child: make the pty its controlling terminal, so Ctrl-C is a SIGINT."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _interrupt(fd: int, seen: bytearray, expect: bytes = HINT) -> None:
    """Ctrl-C, and wait for what the chat says to it. A SIGINT that lands just before
    readline's select() starts waits for the next key (a CPython readline race no person
    at a keyboard meets): if the hint is slow to come, a space is typed to wake it."""
    os.write(fd, b"\x03")
    try:
        _read_until(fd, expect, seen, wait=2.0)
    except AssertionError:
        os.write(fd, b" ")
        _read_until(fd, expect, seen)


def _read_until(fd: int, marker: bytes, seen: bytearray, wait: float = WAIT) -> None:
    """Read the terminal until `marker` appears in what comes from now on."""
    start = len(seen)
    deadline = time.monotonic() + wait
    while marker not in seen[start:]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} in {bytes(seen)[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break


@contextmanager
def _chat_on_a_terminal(tmp_path, env: dict[str, str] | None = None, rows: int = 0,
                        columns: int = 0) -> Iterator[tuple[subprocess.Popen[bytes], int,
                                                            bytearray]]:
    """`careerbot chat` on a new pty (of `rows` x `columns`, when given): the process, the
    pty's leader end and what it has shown. Killed if still running after; no traceback."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SLACK_", "DISCORD_", "CAREERBOT_", "NO_COLOR", "LINES",
                                  "COLUMNS"))}
    clean |= {"PYTHONPATH": str(ROOT), "CAREERBOT_HISTORY": str(tmp_path / "history"),
              "TERM": "xterm"} | (env or {})
    leader, follower = pty.openpty()
    if rows:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "bot", "chat"], cwd=tmp_path, env=clean,
                               stdin=follower, stdout=follower, stderr=follower,
                               start_new_session=True, preexec_fn=_take_terminal)
    os.close(follower)
    seen = bytearray()
    try:
        yield process, leader, seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    assert b"Traceback" not in seen


@pytest.mark.parametrize("no_color", [False, True])
def test_ctrl_c_clears_the_line_then_quits_cleanly(tmp_path, no_color):
    """At a real terminal: the first Ctrl-C drops the line and keeps the chat, a second
    one ends it with status 0; NO_COLOR keeps the answer free of escape codes."""
    with _chat_on_a_terminal(tmp_path, {"NO_COLOR": "1"} if no_color else {}) as (
            process, leader, seen):
        _read_until(leader, b"you> ", seen)
        os.write(leader, b"half a question")
        _read_until(leader, b"question", seen)  # echoed: the line is being edited
        _interrupt(leader, seen)  # Ctrl-C: the terminal sends SIGINT to the chat
        before = len(seen)
        os.write(leader, b"what do ML engineers earn?\r")
        _read_until(leader, b"you> ", seen)
        answer = bytes(seen[before:])
        assert b"Salary and compensation: ML engineer" in answer
        assert (b"\x1b[" in answer) is not no_color
        _interrupt(leader, seen)
        _interrupt(leader, seen, b"bye!")
        assert process.wait(timeout=WAIT) == 0


def test_an_answer_taller_than_the_terminal_is_paged_at_a_terminal(tmp_path):
    """On a 20-row terminal the salary table comes a page at a time: /more gives the rest,
    down to the sources' addresses, and each line fits the terminal's 70 columns."""
    with _chat_on_a_terminal(tmp_path, {"NO_COLOR": "1"}, rows=20, columns=70) as (
            process, leader, seen):
        _read_until(leader, b"you> ", seen)
        os.write(leader, b"/compare salary\r")
        _read_until(leader, b"/more shows them", seen)
        page = bytes(seen).rsplit(b"/compare salary", 1)[1]
        assert b"Data scientist" in page and b"bluebirdinternational.com" not in page
        assert max(len(line) for line in page.decode(errors="replace").split("\r\n")[1:-1]) == 70
        for _ in range(10):  # a page of at most 18 lines at a time: 3 or 4 will do
            os.write(leader, b"/more\r")
            _read_until(leader, b"you> ", seen)
            if b"bluebirdinternational.com" in seen:
                break
        assert b"bluebirdinternational.com/machine-learning-engineer-vs-data-scientist/" in seen
        os.write(leader, b"quit\r")
        assert process.wait(timeout=WAIT) == 0
