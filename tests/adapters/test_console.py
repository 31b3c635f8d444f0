"""The console chat: in process for what it says, and the real `careerbot chat` on a
terminal (a pty) for how it behaves at the keyboard."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time

import pytest

from bot.adapters.console import ConsoleChat
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


@pytest.mark.parametrize("no_color", [False, True])
def test_ctrl_c_clears_the_line_then_quits_cleanly(tmp_path, no_color):
    """At a real terminal: the first Ctrl-C drops the line and keeps the chat, a second
    one ends it with status 0; NO_COLOR keeps the answer free of escape codes."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DISCORD_", "CAREERBOT_", "NO_COLOR"))}
    env |= {"PYTHONPATH": str(ROOT), "CAREERBOT_HISTORY": str(tmp_path / "history"),
            "TERM": "xterm"} | ({"NO_COLOR": "1"} if no_color else {})
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "bot", "chat"], cwd=tmp_path, env=env,
                               stdin=follower, stdout=follower, stderr=follower,
                               start_new_session=True, preexec_fn=_take_terminal)
    os.close(follower)
    seen = bytearray()
    try:
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
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    assert b"Traceback" not in seen
