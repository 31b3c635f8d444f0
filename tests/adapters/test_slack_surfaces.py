"""Slack surfaces beyond mentions and the slash command, against the local Slack:
threads careerbot follows, the Home tab, the message shortcut, the 👀 while it works,
who shared an answer; and the manifest that subscribes to all of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import yaml

from bot.adapters.slack.app import BOT_EVENTS, SHORTCUT
from bot.adapters.slack.render import (
    MAX_BUTTON,
    MAX_HEADER,
    MAX_PROMPT_MESSAGE,
    MAX_PROMPT_TITLE,
    MAX_PROMPTS,
    MAX_SECTION,
    MAX_VIEW_BLOCKS,
    RELOAD,
    home,
)
from bot.core import Engine, Query, Reply
from bot.core.context import Turn
from bot.settings import Settings
from bot.store import InProcessStore, RedisStore
from tests.adapters.test_slack import (
    ADMIN,
    CHANNEL,
    SECRET,
    USER,
    Peer,
    _ts,
    header,
    serving,
)
from tests.adapters.test_slack_replicas import replica
from tests.fakes.slack import BOT_ID, BOT_USER, TEAM, Call, Failure, FakeSlack
from tests.serve_process import serve

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "slack-app-manifest.yaml"


@pytest.fixture
async def peer(slack: FakeSlack, engine: Engine, settings: Settings) -> AsyncIterator[Peer]:
    async with serving(slack, engine, settings) as p:
        yield p


def answer_to(engine: Engine, text: str, previous: Turn | None = None) -> Reply:
    return engine.answer(Query(text=text, conversation="", user=USER, platform="slack"),
                         previous)


async def reply_in_thread(peer: Peer, thread: str, text: str, *, user: str = USER,
                          channel: str = CHANNEL, kind: str = "channel",
                          **extra: Any) -> str:
    """A message event for a reply in `thread` (or, with thread="", a top-level one)."""
    ts = _ts()
    event = {"type": "message", "channel_type": kind, "channel": channel, "user": user,
             "text": text, "ts": ts, "event_ts": ts, **extra}
    if thread:
        event["thread_ts"] = thread
    assert await peer.event(event) == 200
    return ts


async def interact(peer: Peer, payload: dict[str, Any]) -> tuple[int, str]:
    return await peer.post(urlencode({"payload": json.dumps(payload)}),
                           "application/x-www-form-urlencoded")


def texts(call: Call) -> str:
    return json.dumps(call["blocks"])


def bylines(call: Call) -> list[str]:
    return [e["text"] for b in call["blocks"] if b["type"] == "context"
            for e in b["elements"]]


# ---------------------------------------------------------------------- threads followed


async def test_a_thread_it_answered_in_is_followed_and_nothing_else(
        peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    thread = await peer.mention("how much does an ML engineer earn?")
    [first] = await slack.wait_for("chat.postMessage")
    assert first["thread_ts"] == thread
    other = _ts()  # a thread careerbot never answered in

    await reply_in_thread(peer, "", "how much does an ML engineer earn?")  # top level
    await reply_in_thread(peer, other, "how much does an ML engineer earn?")
    await reply_in_thread(peer, thread, "haha ok see you at lunch")  # people talking
    await reply_in_thread(peer, thread, "what tools do they use?", user="U0OTHERBOT",
                          bot_id="B0OTHER")  # another bot
    await reply_in_thread(peer, thread, "what tools do they use?", user=BOT_USER,
                          bot_id=BOT_ID)  # itself
    await reply_in_thread(peer, thread, "what tools do they use?",
                          subtype="message_changed")  # an edit
    await reply_in_thread(peer, thread, "what tools do they use?")  # the same, from a person

    second = (await slack.wait_for("chat.postMessage", 2))[1]
    assert second["thread_ts"] == thread and second["channel"] == CHANNEL
    expected = answer_to(engine, "what tools do they use?", Turn.of(answer_to(
        engine, "how much does an ML engineer earn?")))
    assert header(second) == expected.title  # the thread's conversation goes on
    assert len(slack.of("chat.postMessage")) == 2
    assert not slack.of("chat.postEphemeral")


async def test_a_mention_in_a_followed_thread_is_answered_once(
        peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    thread = await peer.mention("what does a data scientist do?")
    await slack.wait_for("chat.postMessage")
    # Slack sends both events for one message: app_mention, and message (message.channels)
    ts = await peer.mention("and what tools do they use?", thread_ts=thread)
    await peer.event({"type": "message", "channel_type": "channel", "channel": CHANNEL,
                      "user": USER, "text": f"<@{BOT_USER}> and what tools do they use?",
                      "ts": ts, "thread_ts": thread, "event_ts": ts})
    await reply_in_thread(peer, thread, "do they need a degree?")  # then a plain reply
    posts = await slack.wait_for("chat.postMessage", 3)
    first = answer_to(engine, "what does a data scientist do?")
    second = answer_to(engine, "and what tools do they use?", Turn.of(first))
    third = answer_to(engine, "do they need a degree?", Turn.of(second))
    assert [header(p) for p in posts] == [first.title, second.title, third.title]
    assert len(slack.of("chat.postMessage")) == 3


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "in-process (control)"])
async def test_replicas_agree_on_the_threads_followed(
        slack: FakeSlack, settings: Settings, knowledge_copy: Path,
        redis_store: Callable[..., RedisStore], shared: bool) -> None:
    def store() -> RedisStore | InProcessStore:
        return redis_store() if shared else InProcessStore()

    async with replica(slack, settings, knowledge_copy, store()) as a, \
            replica(slack, settings, knowledge_copy, store()) as b:
        thread = await a.peer.mention("what does an ML engineer do?")
        await slack.wait_for("chat.postMessage")
        await reply_in_thread(b.peer, thread, "what tools do they use?")
        await b.peer.mention("what is mlops?")  # a sentinel: answered either way
        posts = await slack.wait_for("chat.postMessage", 2 + shared)
    threads = [p["thread_ts"] for p in posts]
    assert threads.count(thread) == (2 if shared else 1)


async def test_the_real_process_follows_its_threads(slack: FakeSlack, tmp_path: Path,
                                                     engine: Engine) -> None:
    env = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": slack.api_url}
    async with serve("slack", env=env, cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        peer = Peer(f"http://127.0.0.1:{await process.http_port()}", http, slack)
        thread = await peer.mention("what skills does a data scientist need?")
        [first] = await slack.wait_for("chat.postMessage")
        await reply_in_thread(peer, "", "what tools do data scientists use?")  # top level
        await reply_in_thread(peer, thread, "what tools do they use?")
        second = (await slack.wait_for("chat.postMessage", 2))[1]
        assert await process.stop() == 0
    assert first["thread_ts"] == second["thread_ts"] == thread
    assert header(second) == answer_to(engine, "what tools do they use?", Turn.of(
        answer_to(engine, "what skills does a data scientist need?"))).title
    assert len(slack.of("chat.postMessage")) == 2
    assert b"Traceback" not in process.stderr


# ---------------------------------------------------------------------- 👀 and bylines


async def test_eyes_while_it_works_on_a_mention(peer: Peer, slack: FakeSlack) -> None:
    ts = await peer.mention("what is mlops?")
    [removed] = await slack.wait_for("reactions.remove")
    [added] = slack.of("reactions.add")
    [answer] = slack.of("chat.postMessage")
    for call in (added, removed):
        assert (call["channel"], call["timestamp"], call["name"]) == (CHANNEL, ts, "eyes")
    assert slack.calls.index(answer) < slack.calls.index(removed)


async def test_reactions_that_fail_never_block_the_answer(
        peer: Peer, slack: FakeSlack) -> None:
    slack.fail("reactions.add", Failure(error="missing_scope"))
    await peer.mention("what is mlops?")
    [answer] = await slack.wait_for("chat.postMessage")
    slack.fail("reactions.remove", Failure(error="no_reaction"))
    await peer.mention("what is model drift?")
    await slack.wait_for("reactions.remove")
    assert len(await slack.wait_for("chat.postMessage", 2)) == 2
    assert len(slack.of("reactions.remove")) == 1  # none after the add that failed
    status, body = 0, ""
    async with peer.session.get(peer.ops + "/metrics") as got:
        status, body = got.status, await got.text()
    assert status == 200
    assert not re.search(r'careerbot_errors_total\{where="slack"\} [1-9]', body)


async def test_a_shared_answer_says_who_shared_it(peer: Peer, slack: FakeSlack) -> None:
    [private] = await slack.responses(await peer.command("what is mlops?"))
    share = next(e for b in private["blocks"] if b["type"] == "actions"
                 for e in b["elements"] if e["action_id"] == "careerbot_share")
    shared, _ = await slack.responses(await peer.press(share, ephemeral=True, user=ADMIN), 2)
    assert bylines(shared)[0] == f"Shared by <@{ADMIN}>"
    assert "Shared by" not in json.dumps(private["blocks"])


# ---------------------------------------------------------------------- the shortcut


def _shortcut(slack: FakeSlack, key: str, message: dict[str, Any],
              callback_id: str = SHORTCUT) -> dict[str, Any]:
    return {"type": "message_action", "callback_id": callback_id, "trigger_id": "1.2.3",
            "team": {"id": TEAM, "domain": "fake"}, "user": {"id": USER, "team_id": TEAM},
            "channel": {"id": CHANNEL, "name": "general"}, "api_app_id": "A0APP",
            "token": "legacy", "response_url": slack.response_url(key),
            "message_ts": message["ts"], "message": {"type": "message", **message}}


async def test_the_shortcut_answers_the_message_in_its_thread(
        peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    asked = "do ML engineers need a CS degree?"
    ts = _ts()
    message = {"ts": ts, "user": "U0SOMEONE", "text": asked}
    assert await interact(peer, _shortcut(slack, "sc1", message)) == (200, "")
    [answer] = await slack.wait_for("chat.postMessage")
    assert (answer["channel"], answer["thread_ts"]) == (CHANNEL, ts)
    assert header(answer) == answer_to(engine, asked).title
    assert bylines(answer)[0] == f"<@{USER}> asked careerbot about this message"
    assert (await slack.wait_for("reactions.remove"))[0]["timestamp"] == ts
    # then the thread is followed
    await reply_in_thread(peer, ts, "what about data scientists?")
    assert (await slack.wait_for("chat.postMessage", 2))[1]["thread_ts"] == ts

    # on a reply inside a thread: answered in that thread
    reply = {"ts": _ts(), "thread_ts": "1700000000.999999", "user": "U0SOMEONE",
             "text": "what is mlops?"}
    assert await interact(peer, _shortcut(slack, "sc2", reply)) == (200, "")
    assert (await slack.wait_for("chat.postMessage", 3))[2]["thread_ts"] == reply["thread_ts"]


async def test_the_shortcut_on_a_message_without_text_tells_only_its_user(
        peer: Peer, slack: FakeSlack) -> None:
    message = {"ts": _ts(), "user": "U0SOMEONE", "text": "", "files": [{"id": "F1"}]}
    assert await interact(peer, _shortcut(slack, "sc3", message)) == (200, "")
    [told] = await slack.responses("sc3")
    assert told["response_type"] == "ephemeral" and "no question" in told["text"]
    assert not slack.of("chat.postMessage")


async def test_the_shortcut_in_a_channel_it_is_not_in_answers_privately(
        peer: Peer, slack: FakeSlack) -> None:
    slack.closed_channels.add(CHANNEL)
    message = {"ts": _ts(), "user": "U0SOMEONE", "text": "what is mlops?"}
    assert await interact(peer, _shortcut(slack, "sc4", message)) == (200, "")
    [private] = await slack.wait_for("chat.postEphemeral")
    assert private["user"] == USER and "invite" in texts(private)


# ---------------------------------------------------------------------- the Home tab


async def _open_home(peer: Peer, user: str, tab: str = "home") -> None:
    assert await peer.event({"type": "app_home_opened", "user": user, "channel": "D0HOME",
                             "tab": tab, "event_ts": _ts()}) == 200


def _buttons(view: dict[str, Any]) -> list[dict[str, Any]]:
    out = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    return out + [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_the_home_tab_shows_examples_and_topics_and_admins_more(
        peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    await _open_home(peer, USER, tab="messages")  # the DM tab: nothing to publish
    await _open_home(peer, USER)
    await _open_home(peer, ADMIN)
    mine, admins = await slack.wait_for("views.publish", 2)
    assert len(slack.of("views.publish")) == 2
    assert (mine["user_id"], admins["user_id"]) == (USER, ADMIN)
    for call in (mine, admins):
        view = call["view"]
        assert view["type"] == "home" and len(view["blocks"]) <= MAX_VIEW_BLOCKS
        asks = [b for b in _buttons(view) if b["action_id"].startswith("careerbot_ask_")]
        examples = {t.examples[0] for t in engine.knowledge.topics.values()}
        assert asks and all(b["value"] in examples for b in asks)
        headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
        assert engine.topics().title in headers and engine.help().title in headers
    assert RELOAD not in [b["action_id"] for b in _buttons(mine["view"])]
    assert "For admins" not in json.dumps(mine["view"])
    assert RELOAD in [b["action_id"] for b in _buttons(admins["view"])]
    assert "careerbot stats" in json.dumps(admins["view"])


async def test_an_example_pressed_is_answered_in_the_dm_where_it_continues(
        peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    await _open_home(peer, USER)
    [published] = await slack.wait_for("views.publish")
    button = next(b for b in _buttons(published["view"])
                  if b["action_id"].startswith("careerbot_ask_"))
    payload = {"type": "block_actions", "team": {"id": TEAM, "domain": "fake"},
               "user": {"id": USER, "team_id": TEAM}, "api_app_id": "A0APP",
               "token": "legacy", "trigger_id": "1.2.3",
               "container": {"type": "view", "view_id": "V0HOME"},
               "view": {"id": "V0HOME", "type": "home"},
               "actions": [{**button, "block_id": "b1", "action_ts": _ts()}]}
    assert await interact(peer, payload) == (200, "")
    [answer] = await slack.wait_for("chat.postMessage")
    first = answer_to(engine, button["value"])
    assert answer["channel"] == USER and header(answer) == first.title
    assert button["value"] in bylines(answer)[0]
    # the DM's next message continues that conversation
    await peer.dm("what about data scientists?", channel="D" + USER[1:])
    follow = (await slack.wait_for("chat.postMessage", 2))[1]
    assert header(follow) == answer_to(engine, "what about data scientists?",
                                       Turn.of(first)).title


async def test_the_reload_button_reloads_for_admins_only(
        slack: FakeSlack, settings: Settings, knowledge_copy: Path) -> None:
    async with replica(slack, settings, knowledge_copy, InProcessStore()) as one:
        before = one.engine.version

        async def press(user: str) -> dict[str, Any]:
            count = len(slack.of("views.publish")) + 1
            payload = {"type": "block_actions", "team": {"id": TEAM, "domain": "fake"},
                       "user": {"id": user, "team_id": TEAM}, "api_app_id": "A0APP",
                       "token": "legacy", "trigger_id": "1.2.3",
                       "container": {"type": "view", "view_id": "V0HOME"},
                       "actions": [{"type": "button", "action_id": RELOAD, "value": "reload",
                                    "block_id": "b1", "action_ts": _ts()}]}
            assert await interact(one.peer, payload) == (200, "")
            return (await slack.wait_for("views.publish", count))[-1]["view"]

        refused = await press(USER)  # no admin: their Home tab, and nothing reloaded
        assert "For admins" not in json.dumps(refused) and one.engine.version == before
        topic = knowledge_copy / "topics" / "mlops.yaml"
        topic.write_text(topic.read_text(encoding="utf-8").replace(
            "title:", "title: Edited", 1), encoding="utf-8")
        reloaded = await press(ADMIN)
        assert "Knowledge reloaded" in json.dumps(reloaded)
        assert one.engine.version != before
        topic.write_text("id: [broken", encoding="utf-8")
        failed = await press(ADMIN)
        assert "Knowledge not reloaded" in json.dumps(failed)
        assert "mlops.yaml" in json.dumps(failed)
        assert one.engine.knowledge.topics["mlops"].title.startswith("Edited")


def test_a_home_view_fits_slack_s_limits_whatever_it_holds() -> None:
    huge = Reply(title="T" * 500, text="\n".join(f"• line {i} " + "x" * 200
                                                  for i in range(4000)), kind="notice")
    view = home(huge, huge, ["q" * 3000] * 30, admin=[huge, huge, huge])
    blocks = view["blocks"]
    assert len(blocks) <= MAX_VIEW_BLOCKS
    assert blocks[-1]["elements"][0]["action_id"] == RELOAD  # the button is never cut
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
        for button in [block.get("accessory"), *block.get("elements", [])]:
            if button and button.get("type") == "button":
                assert len(button["text"]["text"]) <= MAX_BUTTON
                assert len(button["value"]) <= 2000
    assert "fits in the Home tab" in json.dumps(blocks)


# ---------------------------------------------------------------------- the manifest

#: the bot scope each event needs (https://docs.slack.dev/reference/events)
EVENT_SCOPES = {"app_mention": "app_mentions:read", "message.im": "im:history",
                "message.channels": "channels:history", "message.groups": "groups:history",
                "app_home_opened": None, "assistant_thread_started": "assistant:write",
                "assistant_thread_context_changed": "assistant:write"}
#: what careerbot calls or receives besides events, and the scope of each
CALL_SCOPES = {"chat.postMessage": "chat:write", "slash command and shortcut": "commands",
               "reactions.add": "reactions:write", "users.info": "users:read",
               "assistant.threads.setStatus": "assistant:write"}


def test_the_manifest_subscribes_to_what_the_code_listens_for() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(events) == sorted(BOT_EVENTS)
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    wanted = {EVENT_SCOPES[e] for e in events} - {None} | set(CALL_SCOPES.values())
    assert len(scopes) == len(set(scopes)) and set(scopes) == wanted
    features = manifest["features"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    [shortcut] = features["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"]) == ("message", SHORTCUT)
    assert shortcut["name"] == "Ask careerbot about this" and len(shortcut["name"]) <= 24
    assert 0 < len(shortcut["description"]) <= 80 and len(shortcut["callback_id"]) <= 255
    assert [c["command"] for c in features["slash_commands"]] == [Settings().slack_command]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assistant = features["assistant_view"]  # Slack names no limit: held to a description's
    assert 0 < len(assistant["assistant_description"]) <= 140
    for prompt in assistant.get("suggested_prompts") or []:
        assert 0 < len(prompt["title"]) <= MAX_PROMPT_TITLE
        assert 0 < len(prompt["message"]) <= MAX_PROMPT_MESSAGE
    assert len(assistant.get("suggested_prompts") or []) <= MAX_PROMPTS
    info = manifest["display_information"]
    assert len(info["description"]) <= 140 and 174 <= len(info["long_description"]) <= 4000


async def test_every_subscribed_event_and_the_shortcut_reach_a_listener(
        peer: Peer, slack: FakeSlack) -> None:
    """bolt answers 404 to a request no listener takes: each event the manifest
    subscribes to, and the shortcut, is taken; another callback id is not."""
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    channel_types = {"message.im": "im", "message.channels": "channel",
                     "message.groups": "group"}
    for name in manifest["settings"]["event_subscriptions"]["bot_events"]:
        ts = _ts()
        event = {"type": BOT_EVENTS[name], "user": USER, "ts": ts, "event_ts": ts,
                 "channel": CHANNEL, "text": "hi", "tab": "home",
                 "channel_type": channel_types.get(name, "channel"),
                 "assistant_thread": {"user_id": USER, "channel_id": "D0DIRECT",
                                      "thread_ts": ts, "context": {}}}
        assert await peer.event(event) == 200, name
    message = {"ts": _ts(), "user": "U0SOMEONE", "text": ""}
    assert (await interact(peer, _shortcut(slack, "m1", message)))[0] == 200
    assert (await interact(peer, _shortcut(slack, "m2", message, "unknown")))[0] == 404
