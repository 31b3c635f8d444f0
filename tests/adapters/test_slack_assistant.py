"""Slack's AI-assistant threads (bolt's Assistant middleware), against the local Slack:
the greeting and suggested prompts when a thread starts, answers in the thread with
the status shown, its title, its follow-ups, and DMs that are no assistant thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.slack.app import run_slack
from bot.adapters.slack.render import MAX_PROMPT_MESSAGE, MAX_PROMPT_TITLE, MAX_PROMPTS, render
from bot.core import Engine, Query, Reply
from bot.core.context import Turn
from bot.settings import Settings
from bot.store import InProcessStore, RedisStore
from tests.adapters.test_slack import DM, USER, Peer, _ts, header, serving
from tests.adapters.test_slack_replicas import replica
from tests.fakes.slack import TEAM, Call, Failure, FakeSlack

STATUS = "assistant.threads.setStatus"
PROMPTS = "assistant.threads.setSuggestedPrompts"
TITLE = "assistant.threads.setTitle"


@pytest.fixture
async def peer(slack: FakeSlack, engine: Engine, settings: Settings) -> AsyncIterator[Peer]:
    async with serving(slack, engine, settings) as p:
        yield p


def answer_to(engine: Engine, text: str, previous: Turn | None = None) -> Reply:
    return engine.answer(Query(text=text, conversation="", user=USER, platform="slack"),
                         previous)


def assistant_thread(thread: str, *, viewing: str = "C0GENERAL") -> dict[str, Any]:
    return {"user_id": USER, "channel_id": DM, "thread_ts": thread,
            "context": {"channel_id": viewing, "team_id": TEAM, "enterprise_id": None}}


async def start_thread(peer: Peer, *, event_id: str | None = None,
                       retry: int | None = None, thread: str | None = None) -> str:
    """What Slack sends when a user opens careerbot's assistant pane: the thread's ts."""
    thread = thread or _ts()
    event = {"type": "assistant_thread_started", "assistant_thread": assistant_thread(thread),
             "event_ts": _ts()}
    assert await peer.event(event, event_id=event_id, retry=retry) == 200
    return thread


async def ask_in(peer: Peer, thread: str, text: str, *, event_id: str | None = None,
                 retry: int | None = None, **extra: Any) -> str:
    """A user's message in the DM thread `thread`, as Slack sends it (message.im)."""
    ts = _ts()
    event = {"type": "message", "channel_type": "im", "channel": DM, "user": USER,
             "text": text, "ts": ts, "thread_ts": thread, "event_ts": ts, **extra}
    assert await peer.event(event, event_id=event_id, retry=retry) == 200
    return ts


def sent(slack: FakeSlack) -> str:
    """Everything careerbot sent Slack, as one string."""
    return json.dumps([c.args for c in slack.calls])


def no_ping(slack: FakeSlack) -> None:
    everything = sent(slack)
    for ping in ("<!channel", "<!here", "<!everyone", "<!subteam"):
        assert ping not in everything


# ---------------------------------------------------------------------- a thread starts


async def test_a_new_thread_is_greeted_with_prompts_from_the_knowledge_base(
        peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    thread = await start_thread(peer)
    [greeting] = await slack.wait_for("chat.postMessage")
    [prompts] = await slack.wait_for(PROMPTS)
    assert (greeting["channel"], greeting["thread_ts"]) == (DM, thread)
    assert greeting["blocks"][0]["type"] == "section" and "data scientist" in greeting["text"]
    assert (prompts["channel_id"], prompts["thread_ts"]) == (DM, thread)
    assert prompts["title"] == "Try asking"
    given = prompts["prompts"]
    topics = [t for t in engine.knowledge.topics.values() if not t.smalltalk and t.examples]
    assert 0 < len(given) <= MAX_PROMPTS and len(given) == min(MAX_PROMPTS, len(topics))
    assert given == [{"title": t.title, "message": t.examples[0]}
                     for t in topics[:MAX_PROMPTS]]
    for prompt in given:
        assert len(prompt["title"]) <= MAX_PROMPT_TITLE
        assert len(prompt["message"]) <= MAX_PROMPT_MESSAGE
    # a prompt picked is the user's message in the thread: it is answered there
    await ask_in(peer, thread, given[0]["message"])
    answer = (await slack.wait_for("chat.postMessage", 2))[1]
    assert header(answer) == answer_to(engine, given[0]["message"]).title
    no_ping(slack)


async def test_a_retried_thread_start_is_greeted_once(peer: Peer, slack: FakeSlack) -> None:
    thread = await start_thread(peer, event_id="EvStart1")
    await start_thread(peer, event_id="EvStart1", retry=1, thread=thread)
    await slack.wait_for(PROMPTS)
    await start_thread(peer)  # a sentinel: another thread, greeted
    assert len(await slack.wait_for(PROMPTS, 2)) == 2
    assert len(slack.of("chat.postMessage")) == 2
    assert [c["thread_ts"] for c in slack.of("chat.postMessage")].count(thread) == 1


# ---------------------------------------------------------------------- answers in a thread


async def test_a_question_in_the_thread_shows_the_status_and_is_answered_there(
        peer: Peer, slack: FakeSlack, engine: Engine, settings: Settings) -> None:
    thread = await start_thread(peer)
    await slack.wait_for(PROMPTS)
    asked = "how much does an ML engineer earn?"
    await ask_in(peer, thread, asked)
    answer = (await slack.wait_for("chat.postMessage", 2))[1]
    [status] = slack.of(STATUS)
    assert (status["channel_id"], status["thread_ts"], status["status"]) == (
        DM, thread, "is thinking…")
    assert slack.calls.index(status) < slack.calls.index(answer)
    first = answer_to(engine, asked)
    expected = render(first, command=settings.slack_command)
    assert (answer["channel"], answer["thread_ts"]) == (DM, thread)
    assert answer["blocks"] == expected["blocks"] and answer["text"] == expected["text"]
    [title] = await slack.wait_for(TITLE)
    assert (title["channel_id"], title["thread_ts"], title["title"]) == (DM, thread,
                                                                        first.title)
    assert not slack.of("reactions.add")  # the status, not 👀, in an assistant thread

    # a follow-up in the same thread leans on it; the title stays
    await ask_in(peer, thread, "what about data scientists?")
    second = (await slack.wait_for("chat.postMessage", 3))[2]
    assert second["thread_ts"] == thread
    assert header(second) == answer_to(engine, "what about data scientists?",
                                       Turn.of(first)).title
    assert len(await slack.wait_for(STATUS, 2)) == 2
    assert len(slack.of(TITLE)) == 1

    # another assistant thread has a conversation of its own
    other = await start_thread(peer)
    await slack.wait_for(PROMPTS, 2)
    await ask_in(peer, other, "what about data scientists?")
    third = (await slack.wait_for("chat.postMessage", 5))[4]
    assert third["thread_ts"] == other
    assert header(third) == answer_to(engine, "what about data scientists?").title
    assert len(await slack.wait_for(TITLE, 2)) == 2


async def test_the_thread_never_pings_and_hostile_input_is_answered_politely(
        peer: Peer, slack: FakeSlack) -> None:
    thread = await start_thread(peer)
    await slack.wait_for(PROMPTS)
    for text in ("<!channel> <!here> what is mlops?", "<!everyone>", "",
                 "<!subteam^S0TEAM|@team> " + "x" * 50_000):
        await ask_in(peer, thread, text)
    posts = await slack.wait_for("chat.postMessage", 5)
    assert all(p["thread_ts"] == thread and p["blocks"] for p in posts)
    assert len(slack.of(TITLE)) == 1 and "<!" not in slack.of(TITLE)[0]["title"]
    # a typed "<!here>" (Slack escapes it) as the first words of a thread, declined:
    # the thread is titled from the question, without the brackets
    other = await start_thread(peer)
    await slack.wait_for(PROMPTS, 2)
    await ask_in(peer, other, "&lt;!here&gt; &lt;@U0SOMEONE&gt; zxqv wibble")
    [_, titled] = await slack.wait_for(TITLE, 2)
    assert titled["thread_ts"] == other and "zxqv" in titled["title"]
    assert "<" not in titled["title"] and ">" not in titled["title"]
    no_ping(slack)


async def test_a_retried_question_is_answered_once(peer: Peer, slack: FakeSlack) -> None:
    thread = await start_thread(peer)
    await slack.wait_for(PROMPTS)
    await ask_in(peer, thread, "what is mlops?", event_id="EvAsk1")
    await ask_in(peer, thread, "what is mlops?", event_id="EvAsk1", retry=1)
    await ask_in(peer, thread, "what is model drift?")  # a sentinel
    assert len(await slack.wait_for("chat.postMessage", 3)) == 3
    assert len(slack.of(STATUS)) == 2


async def test_the_status_is_cleared_when_the_answer_cannot_be_posted(
        peer: Peer, slack: FakeSlack) -> None:
    thread = await start_thread(peer)
    await slack.wait_for(PROMPTS)
    slack.fail("chat.postMessage", Failure(error="msg_too_long"))
    await ask_in(peer, thread, "what is mlops?")
    shown, cleared = await slack.wait_for(STATUS, 2)
    assert (shown["status"], cleared["status"]) == ("is thinking…", "")
    assert cleared["thread_ts"] == thread
    assert not slack.of(TITLE)


async def test_a_failing_status_never_blocks_the_answer(peer: Peer, slack: FakeSlack) -> None:
    thread = await start_thread(peer)
    await slack.wait_for(PROMPTS)
    slack.fail(STATUS, Failure(error="missing_scope"))
    slack.fail(TITLE, Failure(error="missing_scope"))
    await ask_in(peer, thread, "what is mlops?")
    answer = (await slack.wait_for("chat.postMessage", 2))[1]
    assert answer["thread_ts"] == thread
    await slack.wait_for(TITLE)


# ---------------------------------------------------------------------- context changed


async def test_a_context_change_is_taken_without_calling_slack(
        peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    """A thread careerbot has not seen start (opened before this version ran) is known
    as an assistant thread once its context changes."""
    thread = _ts()
    event = {"type": "assistant_thread_context_changed",
             "assistant_thread": assistant_thread(thread, viewing="C0OTHER"),
             "event_ts": _ts()}
    before = len(slack.calls)
    assert await peer.event(event) == 200
    await ask_in(peer, thread, "what is mlops?")
    [answer] = await slack.wait_for("chat.postMessage")
    assert answer["thread_ts"] == thread
    made = [c.method for c in slack.calls[before:] if c.method != "auth.test"]
    assert made[:2] == [STATUS, "chat.postMessage"]  # nothing for the change itself
    assert not slack.of("chat.update") and not slack.of("conversations.replies")


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process (control)"])
async def test_replicas_agree_on_the_assistant_threads(
        slack: FakeSlack, settings: Settings, knowledge_copy: Path,
        redis_store: Callable[..., RedisStore], shared: bool) -> None:
    def store() -> RedisStore | InProcessStore:
        return redis_store() if shared else InProcessStore()

    async with replica(slack, settings, knowledge_copy, store()) as a, \
            replica(slack, settings, knowledge_copy, store()) as b:
        thread = await start_thread(a.peer)
        await slack.wait_for(PROMPTS)
        await ask_in(b.peer, thread, "what is mlops?")
        answer = (await slack.wait_for("chat.postMessage", 2))[1]
    assert answer["thread_ts"] == thread
    assert len(slack.of(STATUS)) == (1 if shared else 0)
    assert len(slack.of("reactions.add")) == (0 if shared else 1)  # a DM thread's 👀


# ---------------------------------------------------------------------- DMs as before


def _assistant_calls(slack: FakeSlack) -> list[Call]:
    return [c for c in slack.calls if c.method.startswith("assistant.")]


async def test_ordinary_dms_are_answered_as_before(peer: Peer, slack: FakeSlack,
                                                   engine: Engine) -> None:
    assert await peer.dm("what is mlops?") == 200
    [top] = await slack.wait_for("chat.postMessage")
    assert top["channel"] == DM and top.get("thread_ts") is None
    assert header(top) == answer_to(engine, "what is mlops?").title
    [eyes] = await slack.wait_for("reactions.add")
    assert eyes["name"] == "eyes"
    # a reply in a thread of the DM that is no assistant thread: in that thread, with 👀
    thread = _ts()
    await ask_in(peer, thread, "what is model drift?")
    threaded = (await slack.wait_for("chat.postMessage", 2))[1]
    assert threaded["thread_ts"] == thread
    assert len(await slack.wait_for("reactions.add", 2)) == 2
    # edits and bot messages in a DM thread are not answered
    await ask_in(peer, thread, "what is mlops?", subtype="message_changed")
    await ask_in(peer, thread, "what is mlops?", bot_id="B0OTHER")
    assert await peer.dm("what tools do ml engineers use?") == 200  # a sentinel
    await slack.wait_for("chat.postMessage", 3)
    assert len(slack.of("chat.postMessage")) == 3
    assert not _assistant_calls(slack)


# ---------------------------------------------------------------------- Socket Mode


async def test_the_assistant_pane_in_socket_mode(engine: Engine, settings: Settings,
                                                 slack: FakeSlack) -> None:
    settings = replace(settings, slack_app_token=slack.app_token, slack_signing_secret="")
    task = asyncio.create_task(run_slack(engine, settings))
    thread = _ts()
    try:
        started = {"type": "event_callback", "team_id": TEAM, "event_id": "EvSOCKSTART",
                   "event": {"type": "assistant_thread_started",
                             "assistant_thread": assistant_thread(thread),
                             "event_ts": _ts()}}
        ack = await slack.push({"envelope_id": "env-a1", "type": "events_api",
                                "accepts_response_payload": False, "payload": started})
        assert ack.args == {"envelope_id": "env-a1"}
        [prompts] = await slack.wait_for(PROMPTS)
        asked = {"type": "event_callback", "team_id": TEAM, "event_id": "EvSOCKASK",
                 "event": {"type": "message", "channel_type": "im", "channel": DM,
                           "user": USER, "ts": _ts(), "thread_ts": thread,
                           "text": prompts["prompts"][1]["message"]}}
        await slack.push({"envelope_id": "env-a2", "type": "events_api",
                          "accepts_response_payload": False, "payload": asked})
        answer = (await slack.wait_for("chat.postMessage", 2))[1]
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    assert answer["thread_ts"] == thread
    assert header(answer) == answer_to(engine, prompts["prompts"][1]["message"]).title
    assert [c["status"] for c in slack.of(STATUS)] == ["is thinking…"]
