"""The Slack adapter end to end: the real slack-bolt app against a local Slack.

HTTP mode gets signed requests on loopback, exactly as Slack would send them;
Socket Mode connects to the fake's websocket through `apps.connections.open`.
Every assertion is on what the local Slack recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.adapters.errors import ConfigurationError
from bot.adapters.slack.app import EVENTS_PATH, HEALTH_PATH, build_app, run_slack, start_http
from bot.adapters.slack.render import MAX_BLOCKS, MAX_FALLBACK, MAX_SECTION, escape, render
from bot.core import Engine, Knowledge, Reply
from bot.core.models import Comparison, ComparisonRow, Source, Suggestion
from bot.logs import user_ref
from bot.ops import LIVE_QUERY, METRICS_PATH, start_server
from bot.runtime import Runtime
from bot.settings import MatchSettings, Settings
from tests.fakes.slack import BOT_ID, BOT_USER, TEAM, Call, FakeSlack

SECRET = "test-signing-secret"
USER, ADMIN, OWNER = "U0ASKER", "U0ADMIN", "U0OWNER"
CHANNEL, DM = "C0GENERAL", "D0DIRECT"
WAIT = 5.0
ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count(1)


def _ts() -> str:
    return f"1710000000.{next(_ids):06d}"


# ---------------------------------------------------------------------- the Slack side


@dataclass
class Peer:
    """Slack's side of the app's request URL: builds, signs and posts payloads."""

    url: str
    session: aiohttp.ClientSession
    slack: FakeSlack
    #: the ops port's base URL (/healthz, /metrics), when one is served
    ops: str = ""

    async def post(self, body: str, content_type: str, *, secret: str = SECRET,
                   age: float = 0, headers: dict[str, str] | None = None,
                   signed: bool = True) -> tuple[int, str]:
        sent = {"Content-Type": content_type, **(headers or {})}
        if signed:
            timestamp = str(int(time.time() - age))
            sent["X-Slack-Request-Timestamp"] = timestamp
            sent["X-Slack-Signature"] = SignatureVerifier(secret).generate_signature(
                timestamp=timestamp, body=body)
        async with asyncio.timeout(WAIT), self.session.post(
                self.url + EVENTS_PATH, data=body.encode(), headers=sent) as response:
            return response.status, await response.text()

    async def command(self, text: str, *, user: str = USER, channel: str = CHANNEL) -> str:
        """Run the slash command; returns its response_url key once the app has acked."""
        key = f"cmd{next(_ids)}"
        form = {"token": "legacy", "team_id": TEAM, "team_domain": "fake",
                "channel_id": channel, "channel_name": "general", "user_id": user,
                "user_name": user.lower(), "command": "/careerbot", "text": text,
                "api_app_id": "A0APP", "response_url": self.slack.response_url(key),
                "trigger_id": "1.2.3"}
        status, body = await self.post(urlencode(form), "application/x-www-form-urlencoded")
        assert (status, body) == (200, "")  # acked at once, the answer comes after
        return key

    async def event(self, event: dict[str, Any], *, event_id: str | None = None,
                    retry: int | None = None) -> int:
        body = {"token": "legacy", "team_id": TEAM, "api_app_id": "A0APP",
                "type": "event_callback", "event_id": event_id or f"Ev{next(_ids)}",
                "event_time": 1710000000, "event": event,
                "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]}
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"
                   } if retry else {}
        status, _ = await self.post(json.dumps(body), "application/json", headers=headers)
        return status

    async def mention(self, text: str, *, thread_ts: str | None = None,
                      user: str = USER) -> str:
        ts = _ts()
        event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER}> {text}",
                 "ts": ts, "channel": CHANNEL, "event_ts": ts}
        if thread_ts:
            event["thread_ts"] = thread_ts
        assert await self.event(event) == 200
        return ts

    async def dm(self, text: str, **extra: Any) -> int:
        ts = _ts()
        return await self.event({"type": "message", "channel_type": "im", "channel": DM,
                                 "user": USER, "text": text, "ts": ts, "event_ts": ts, **extra})

    async def press(self, element: dict[str, Any], *, channel: str = CHANNEL,
                    ephemeral: bool = False, message: dict[str, Any] | None = None,
                    message_ts: str | None = None, user: str = USER, **chosen: Any) -> str:
        """Press a button (or choose in a select) the app sent; returns the response_url key."""
        key = f"act{next(_ids)}"
        container: dict[str, Any] = {"type": "message", "channel_id": channel,
                                     "is_ephemeral": ephemeral}
        payload: dict[str, Any] = {
            "type": "block_actions", "team": {"id": TEAM, "domain": "fake"},
            "user": {"id": user, "team_id": TEAM}, "api_app_id": "A0APP", "token": "legacy",
            "trigger_id": "1.2.3", "channel": {"id": channel, "name": "general"},
            "response_url": self.slack.response_url(key), "container": container,
            "actions": [{**element, **chosen, "block_id": "b1", "action_ts": _ts()}],
        }
        if message is not None:  # a message only its user sees comes without one
            container["message_ts"] = message["ts"]
            payload["message"] = message
        elif message_ts is not None:
            container["message_ts"] = message_ts
        status, body = await self.post(urlencode({"payload": json.dumps(payload)}),
                                       "application/x-www-form-urlencoded")
        assert (status, body) == (200, "")
        return key


@asynccontextmanager
async def serving(slack: FakeSlack, engine: Engine, settings: Settings,
                  **options: Any) -> AsyncIterator[Peer]:
    """The real bolt app (`build_app(..., **options)`) in HTTP mode on a loopback port, and
    the ops port beside it, as `careerbot serve slack` runs them."""
    app = build_app(engine, settings, **options)
    runner = await start_http(app, "127.0.0.1", 0)
    ops = await start_server(app.runtime, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield Peer(_url(runner), session, slack, _url(ops))
    finally:
        await ops.cleanup()
        await runner.cleanup()


def _url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


@pytest.fixture
async def peer(slack: FakeSlack, engine: Engine, settings: Settings) -> AsyncIterator[Peer]:
    async with serving(slack, engine, settings) as p:
        yield p


# ---------------------------------------------------------------------- reading messages


def header(call: Call) -> str:
    return call["blocks"][0]["text"]["text"]


def elements(call: Call) -> list[dict[str, Any]]:
    return [e for b in call["blocks"] if b["type"] == "actions" for e in b["elements"]]


def element(call: Call, action_id: str) -> dict[str, Any]:
    return next(e for e in elements(call) if e["action_id"].startswith(action_id))


def action_ids(call: Call) -> list[str]:
    return [e["action_id"] for e in elements(call)]


# ---------------------------------------------------------------------- messages


async def test_mention_is_answered_in_its_thread_with_follow_up_context(
        peer: Peer, slack: FakeSlack) -> None:
    ts = await peer.mention("how much does an ML engineer earn?")
    [first] = await slack.wait_for("chat.postMessage")
    assert (first["channel"], first["thread_ts"]) == (CHANNEL, ts)
    assert header(first) == "Salary and compensation: ML engineer"
    assert first["text"].startswith("Salary and compensation: ML engineer")
    assert first.token == slack.bot_token

    await peer.mention("what about data scientists?", thread_ts=ts)
    second = (await slack.wait_for("chat.postMessage", 2))[1]
    assert second["thread_ts"] == ts
    assert header(second) == "Salary and compensation: Data scientist"


async def test_an_answer_opens_with_its_short_answer_in_bold(peer: Peer, slack: FakeSlack,
                                                              engine: Engine) -> None:
    """The first section under the header is the short answer, bold; the details follow."""
    await peer.mention("how much does an ML engineer earn?")
    [call] = await slack.wait_for("chat.postMessage")
    short = engine.knowledge.topics["salary"].short["ml_engineer"]
    first, details = call["blocks"][1:3]
    assert first["text"]["text"] == f"*{short}*"
    assert details["text"]["text"].startswith("An ML engineer in the US earns")
    assert call["text"].startswith(f"Salary and compensation: ML engineer\n\n{short}")


async def test_slack_markup_is_read_as_what_it_stands_for(peer: Peer, slack: FakeSlack) -> None:
    """Someone else's mention, a channel, a link: none of it breaks the question."""
    await peer.mention("<@U0OTHER> what does an ML engineer do?")
    await peer.mention("<@U0OTHER|ana> how much do <https://x.example|ML engineers> earn "
                       "in <#C0JOBS|jobs>? <!here>")
    first, second = await slack.wait_for("chat.postMessage", 2)
    assert header(first).endswith(": ML engineer") and not header(first).startswith("That")
    assert header(second) == "Salary and compensation: ML engineer"


async def test_dm_is_answered_in_the_dm(peer: Peer, slack: FakeSlack) -> None:
    assert await peer.dm("what tools do ml engineers use?") == 200
    [call] = await slack.wait_for("chat.postMessage")
    assert call["channel"] == DM and "thread_ts" not in call.args
    assert header(call).startswith("Tools")
    assert "careerbot_feedback_helpful" in action_ids(call)


async def test_empty_mention_gets_the_help(peer: Peer, slack: FakeSlack) -> None:
    await peer.mention("")
    [call] = await slack.wait_for("chat.postMessage")
    assert header(call) == "How to use careerbot"
    assert "`/careerbot compare &lt;aspect&gt;`" in json.dumps(call["blocks"])


async def test_bots_edits_and_itself_are_ignored(peer: Peer, slack: FakeSlack) -> None:
    await peer.dm("salary?", bot_id="B0OTHER", user="U0OTHERBOT")
    await peer.dm("salary?", bot_id=BOT_ID, user=BOT_USER)
    await peer.dm("salary?", subtype="message_changed")
    await peer.dm("what tools do ml engineers use?")  # the marker: only it is answered
    calls = await slack.wait_for("chat.postMessage")
    assert len(calls) == 1 and header(calls[0]).startswith("Tools")


async def test_long_message_gets_a_polite_reply(knowledge: Knowledge, settings: Settings,
                                                slack: FakeSlack) -> None:
    engine = Engine(knowledge, settings=MatchSettings(max_message_chars=40))
    async with serving(slack, engine, settings) as peer:
        ts = await peer.mention("what is the salary of " + "a very senior " * 10)
        [call] = await slack.wait_for("chat.postMessage")
    assert call["thread_ts"] == ts and header(call) == "That's a long message"


async def test_rate_limit_slows_a_user_down(engine: Engine, settings: Settings,
                                            slack: FakeSlack) -> None:
    async with serving(slack, engine, replace(settings, rate_limit_per_minute=2)) as peer:
        for question in ("salary?", "skills?", "tools?"):
            await peer.dm(question)
        [slow] = await slack.wait_for("chat.postEphemeral")
        await slack.wait_for("chat.postMessage", 2)
    assert (slow["channel"], slow["user"]) == (DM, USER)
    assert "Slow down" in slow["text"] and "seconds" in slow["text"]
    assert len(slack.of("chat.postMessage")) == 2


async def test_a_burst_of_first_requests_asks_slack_who_we_are_once(peer: Peer,
                                                                   slack: FakeSlack) -> None:
    """A replica starting under load: every request is acked and answered, and the token
    is checked (auth.test) once, not once per request that arrived before the first answer."""
    keys = await asyncio.gather(*(peer.command(f"salary question {i}?", user=f"U{i:04d}")
                                  for i in range(20)))
    for key in keys:
        [call] = await slack.responses(key)
        assert header(call).startswith("Salary")
    assert len(slack.of("auth.test")) == 1


async def test_retried_event_is_answered_once(peer: Peer, slack: FakeSlack) -> None:
    event = {"type": "app_mention", "user": USER, "text": f"<@{BOT_USER}> salary?",
             "ts": _ts(), "channel": CHANNEL}
    assert await peer.event(event, event_id="EvSAME") == 200
    await slack.wait_for("chat.postMessage")
    assert await peer.event(event, event_id="EvSAME", retry=1) == 200
    assert await peer.event(event, event_id="EvSAME", retry=2) == 200
    marker = await peer.mention("what do data scientists earn?")  # the next answer is this
    calls = await slack.wait_for("chat.postMessage", 2)
    assert [c["thread_ts"] for c in calls] == [event["ts"], marker]


async def test_user_text_never_pings(peer: Peer, slack: FakeSlack) -> None:
    key = await peer.command("compare <!channel> &lt;!here&gt; <@U0VICTIM> & co")
    [call] = await slack.responses(key)
    sent = json.dumps(call.args)
    assert "U0VICTIM" in sent and "co" in sent  # echoed as plain words (core.text.quote)
    for ping in ("<!channel>", "<!here>", "<!everyone>", "<@U"):
        assert ping not in sent


# ---------------------------------------------------------------------- /careerbot


async def test_question_is_private_with_a_share_button(peer: Peer, slack: FakeSlack) -> None:
    key = await peer.command("do ML engineers need a CS degree?")
    [call] = await slack.responses(key)
    assert call["response_type"] == "ephemeral"
    assert header(call).startswith("Education")
    assert element(call, "careerbot_share")["value"].startswith("answer:education:")


async def test_share_button_posts_the_answer_for_everyone(peer: Peer,
                                                          slack: FakeSlack) -> None:
    [private] = await slack.responses(await peer.command("compare salary"))
    key = await peer.press(element(private, "careerbot_share"), ephemeral=True)
    shared, deleted = await slack.responses(key, 2)
    assert shared["response_type"] == "in_channel" and shared["replace_original"] is False

    def content(call: Call) -> list[dict[str, Any]]:
        return [b for b in call["blocks"] if b["type"] != "actions"]
    byline = {"type": "context", "elements": [{"type": "mrkdwn",
                                               "text": f"Shared by <@{USER}>"}]}
    assert content(shared) == [content(private)[0], byline, *content(private)[1:]]
    assert "careerbot_share" not in action_ids(shared)
    assert "careerbot_feedback_helpful" in action_ids(shared)
    assert deleted["delete_original"] is True


async def test_compare_lays_out_two_columns(peer: Peer, slack: FakeSlack) -> None:
    [call] = await slack.responses(await peer.command("compare pay"))
    assert header(call) == "Data scientist vs ML engineer: Salary and compensation"
    rows = [b for b in call["blocks"] if "fields" in b]
    assert [f["text"] for f in rows[0]["fields"]] == ["*Data scientist*", "*ML engineer*"]
    assert rows[1]["text"]["text"] == "*US range (Novus Tech World, table)*"
    assert [f["text"] for f in rows[1]["fields"]] == ["$120k–$170k", "$140k–$200k+"]
    assert call["blocks"][-3]["type"] == "context" and "Sources:" in json.dumps(call["blocks"])


@pytest.mark.parametrize("aspect, did_you_mean", [("", None), ("tols", "tools")])
async def test_compare_without_a_known_aspect_offers_a_picker(
        peer: Peer, slack: FakeSlack, engine: Engine, aspect: str,
        did_you_mean: str | None) -> None:
    [call] = await slack.responses(await peer.command(f"compare {aspect}"))
    picker = element(call, "careerbot_compare_pick")
    assert [o["value"] for o in picker["options"]] == engine.aspects()
    if did_you_mean:
        assert f"Did you mean *{did_you_mean}*?" in json.dumps(call["blocks"])

    key = await peer.press(picker, ephemeral=True,
                           selected_option={"value": "education", "text": {}})
    [picked] = await slack.responses(key)
    assert picked["replace_original"] is True
    assert header(picked) == "Data scientist vs ML engineer: Education and background"


@pytest.mark.parametrize("command, title", [
    ("topics", "What you can ask me"),
    ("help", "How to use careerbot"),
    ("", "How to use careerbot"),
])
async def test_topics_and_help(peer: Peer, slack: FakeSlack, command: str, title: str) -> None:
    [call] = await slack.responses(await peer.command(command))
    assert (call["response_type"], header(call)) == ("ephemeral", title)


# ---------------------------------------------------------------------- buttons


async def test_follow_up_button_answers_in_the_same_thread(peer: Peer,
                                                           slack: FakeSlack) -> None:
    ts = await peer.mention("how much does an ML engineer earn?")
    [answer] = await slack.wait_for("chat.postMessage")
    button = element(answer, "careerbot_followup")
    bot_message = {"type": "message", "ts": "1710000001.000001", "thread_ts": ts}
    await peer.press(button, message=bot_message)
    followed = (await slack.wait_for("chat.postMessage", 2))[1]
    assert (followed["channel"], followed["thread_ts"]) == (CHANNEL, ts)
    assert header(followed).startswith(button["text"]["text"])


async def test_follow_up_under_a_private_answer_stays_private(peer: Peer,
                                                              slack: FakeSlack) -> None:
    [private] = await slack.responses(await peer.command("salary"))
    key = await peer.press(element(private, "careerbot_followup"), ephemeral=True)
    [followed] = await slack.responses(key)
    assert followed["response_type"] == "ephemeral" and followed["replace_original"] is False
    assert "careerbot_share" in action_ids(followed)
    assert slack.of("chat.postMessage") == []


async def test_follow_up_where_the_bot_is_not_a_member(peer: Peer, slack: FakeSlack) -> None:
    slack.closed_channels.add(CHANNEL)
    shared = {"type": "message", "ts": "1710000002.000001"}
    key = await peer.press({"type": "button", "action_id": "careerbot_followup_0",
                            "value": "skills:both", "text": {"text": "Skills"}}, message=shared)
    [fallback] = await slack.responses(key)
    assert fallback["response_type"] == "ephemeral" and header(fallback).startswith("Skills")


def _content(call: Call) -> list[dict[str, Any]]:
    return [b for b in call["blocks"] if b["type"] != "actions"]


def _feedback(call: Call) -> dict[str, str]:
    """The feedback buttons' labels, by choice."""
    return {e["action_id"].removeprefix("careerbot_feedback_"): e["text"]["text"]
            for e in elements(call) if e["action_id"].startswith("careerbot_feedback_")}


async def test_feedback_buttons_are_logged(peer: Peer, slack: FakeSlack,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.adapters.slack")
    await peer.dm("what is mlops?")
    [answer] = await slack.wait_for("chat.postMessage")
    message = {"type": "message", "ts": "1710000003.000001", **answer.args}
    for vote in ("helpful", "not_helpful"):
        key = await peer.press(element(answer, f"careerbot_feedback_{vote}"), channel=DM,
                               message=message)
        _, thanks = await slack.responses(key, 2)
        assert thanks["response_type"] == "ephemeral" and "Thanks" in thanks["text"]
    votes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feedback")]
    assert votes == [f"feedback: {v} on mlops:both from user {user_ref('slack', USER)} "
                     f"(team {TEAM}): {outcome}"
                     for v, outcome in (("helpful", "counted"), ("not_helpful", "changed"))]
    assert USER not in caplog.text  # never a raw user id


async def test_one_vote_a_user_per_answer_changeable_and_shown(
        engine: Engine, settings: Settings, slack: FakeSlack) -> None:
    """The same click three times counts once; switching moves the one vote; another
    user's vote adds to it; the public buttons show the answer's tally."""
    runtime = Runtime(engine, settings)
    async with serving(slack, engine, settings, runtime=runtime) as peer:
        await peer.mention("what is mlops?")
        [answer] = await slack.wait_for("chat.postMessage")
        message = {"type": "message", "ts": "1710000004.000001", **answer.args}
        updates = []
        for vote, user in (("helpful", USER), ("helpful", USER), ("helpful", USER),
                           ("not_helpful", USER), ("helpful", OWNER)):
            key = await peer.press(element(answer, f"careerbot_feedback_{vote}"),
                                   message=message, user=user)
            replaced, thanks = await slack.responses(key, 2)
            assert replaced["replace_original"] is True and _content(replaced) == _content(answer)
            assert thanks["response_type"] == "ephemeral"  # who voted what: theirs alone
            updates.append(_feedback(replaced))
        counts = await runtime.store.counts("votes")
    assert counts == {"mlops:both:helpful": 1, "mlops:both:not_helpful": 1}
    assert [u["helpful"] for u in updates] == ["👍 Helpful · 1"] * 3 + ["👍 Helpful · 0",
                                                                      "👍 Helpful · 1"]
    assert updates[-1]["not_helpful"] == "👎 Not helpful · 1"
    metrics = runtime.metrics.render().decode()
    assert 'careerbot_votes_total{platform="slack",vote="helpful"} 2.0' in metrics


async def test_a_vote_under_a_private_answer_marks_the_voters_choice(
        engine: Engine, settings: Settings, slack: FakeSlack) -> None:
    runtime = Runtime(engine, settings)
    async with serving(slack, engine, settings, runtime=runtime) as peer:
        [private] = await slack.responses(await peer.command("what is mlops?"))
        key = await peer.press(element(private, "careerbot_feedback_not_helpful"),
                               ephemeral=True, message_ts="1710000005.000001")
        [replaced] = await slack.responses(key)
    assert replaced["replace_original"] is True
    assert _feedback(replaced) == {"helpful": "👍 Helpful · 0",
                                   "not_helpful": "✓ 👎 Not helpful · 1"}
    assert header(replaced) == header(private) and "careerbot_share" in action_ids(replaced)


@pytest.mark.parametrize("value", ["no_such_topic:both", "salary:wizard", "greeting:both",
                                   ":"])
async def test_a_vote_on_a_topic_or_role_we_do_not_have_is_refused(
        engine: Engine, settings: Settings, slack: FakeSlack, value: str) -> None:
    runtime = Runtime(engine, settings)
    async with serving(slack, engine, settings, runtime=runtime) as peer:
        key = await peer.press({"type": "button", "action_id": "careerbot_feedback_helpful",
                                "value": value, "text": {"text": "👍 Helpful"}},
                               message={"type": "message", "ts": "1710000006.000001"})
        [refused] = await slack.responses(key)
        counts = await runtime.store.counts("votes")
    assert refused["replace_original"] is False and "not counted" in refused["text"]
    assert counts == {}


@pytest.mark.parametrize("button", ["careerbot_followup", "careerbot_share"])
async def test_buttons_that_post_count_against_the_rate_limit(
        engine: Engine, settings: Settings, slack: FakeSlack, button: str) -> None:
    """Twenty presses of one button make as many posts as the limit allows (3 a minute
    here), and a refused press is told so privately."""
    limited = replace(settings, rate_limit_per_minute=3)
    async with serving(slack, engine, limited) as peer:
        if button == "careerbot_share":
            [private] = await slack.responses(await peer.command("compare salary"))
            pressed = element(private, button)
        else:
            pressed = {"type": "button", "action_id": "careerbot_followup_0",
                       "value": "skills:both", "text": {"text": "Skills"}}
        bot_message = {"type": "message", "ts": "1710000007.000001"}
        keys = {await peer.press(pressed, message=bot_message, user=OWNER)
                for _ in range(20)}

        def answered() -> list[Call]:  # one each: a post (in the channel) or a refusal
            return slack.of("chat.postMessage") + [
                c for c in slack.of("response_url")
                if c["key"] in keys and not c.get("delete_original")]
        await slack.wait_until(lambda: len(answered()) >= 20)
    posts = [c for c in answered() if c.method == "chat.postMessage"
             or c.get("response_type") == "in_channel"]
    refused = [c for c in answered() if "Slow down" in c.get("text", "")]
    assert len(posts) == 3 and len(refused) == 17 and len(answered()) == 20
    assert all(c["response_type"] == "ephemeral" and c["replace_original"] is False
               for c in refused)


# ---------------------------------------------------------------------- reload


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def test_admin_reload_reports_what_changed(knowledge_copy: Path, settings: Settings,
                                                 slack: FakeSlack,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.adapters.slack")
    engine = Engine(knowledge_dir=knowledge_copy)
    old = engine.version
    _edit(knowledge_copy / "topics" / "salary.yaml", "title: Salary and compensation",
          "title: Salary and pay")
    async with serving(slack, engine, settings) as peer:
        [call] = await slack.responses(await peer.command("reload", user=ADMIN))
        [answer] = await slack.responses(await peer.command("compare salary"))
    assert header(call) == "Knowledge reloaded"
    assert f"{old} → {engine.version}" in call["text"] and "edited: salary" in call["text"]
    assert header(answer) == "Data scientist vs ML engineer: Salary and pay"
    [logged] = [r for r in caplog.records if "reload" in r.getMessage()]
    assert f"user {user_ref('slack', ADMIN)} (team {TEAM}) at 20" in logged.getMessage()
    assert ADMIN not in logged.getMessage()
    assert "edited: salary" in logged.getMessage()


@pytest.mark.parametrize("workspace_admins, user, allowed", [
    (False, USER, False),
    (False, OWNER, False),
    (True, OWNER, True),
    (True, USER, False),
])
async def test_reload_is_for_admins_only(engine: Engine, settings: Settings, slack: FakeSlack,
                                         caplog: pytest.LogCaptureFixture,
                                         workspace_admins: bool, user: str,
                                         allowed: bool) -> None:
    caplog.set_level(logging.INFO, logger="bot.adapters.slack")
    settings = replace(settings, slack_workspace_admins_are_admins=workspace_admins)
    async with serving(slack, engine, settings) as peer:
        [call] = await slack.responses(await peer.command("reload", user=user))
    assert ("only careerbot's admins" not in call["text"]) is allowed
    assert [c["user"] for c in slack.of("users.info")] == ([user] if workspace_admins else [])
    [logged] = [r.getMessage() for r in caplog.records if "reload" in r.getMessage()]
    assert f"user {user_ref('slack', user)} (team {TEAM})" in logged and user not in logged
    assert ("refused" in logged) is not allowed


async def test_broken_knowledge_reload_lists_errors_and_keeps_serving(
        knowledge_copy: Path, settings: Settings, slack: FakeSlack) -> None:
    engine = Engine(knowledge_dir=knowledge_copy)
    old = engine.version
    _edit(knowledge_copy / "topics" / "salary.yaml", "title: Salary and compensation",
          'title: ""')
    _edit(knowledge_copy / "topics" / "tools.yaml", "follow_ups: [", "follow_ups: [no_such, ")
    async with serving(slack, engine, settings) as peer:
        [call] = await slack.responses(await peer.command("reload", user=ADMIN))
        await peer.mention("how much does an ML engineer earn?")
        [answer] = await slack.wait_for("chat.postMessage")
    assert header(call) == "Knowledge not reloaded" and engine.version == old
    text = call["blocks"][1]["text"]["text"]
    assert "topics/salary.yaml: title: must be non-empty text" in text
    assert "topics/tools.yaml: follow_ups[0]: unknown topic 'no_such'" in text
    assert header(answer) == "Salary and compensation: ML engineer"


# ---------------------------------------------------------------------- HTTP mode


@pytest.mark.parametrize("tamper", ["unsigned", "stale", "wrong secret"])
async def test_unsigned_or_stale_requests_are_rejected(peer: Peer, slack: FakeSlack,
                                                       tamper: str) -> None:
    form = urlencode({"team_id": TEAM, "channel_id": CHANNEL, "user_id": USER,
                      "command": "/careerbot", "text": "salary", "response_url":
                      slack.response_url("forged")})
    status, _ = await peer.post(form, "application/x-www-form-urlencoded",
                                signed=tamper != "unsigned", age=600 if tamper == "stale" else 0,
                                secret="not-the-secret" if tamper == "wrong secret" else SECRET)
    assert status == 401
    assert slack.calls == []


async def test_healthz_and_metrics(peer: Peer, slack: FakeSlack, engine: Engine) -> None:
    async with asyncio.timeout(WAIT), peer.session.get(peer.ops + HEALTH_PATH) as got:
        health = await got.json()
    assert got.status == 200 and health["ok"] and health["ready"]
    assert health["version"] == engine.version and health["topics"] == len(engine.knowledge.topics)
    async with asyncio.timeout(WAIT), peer.session.get(
            f"{peer.ops}{HEALTH_PATH}?{LIVE_QUERY}") as got:
        assert got.status == 200 and (await got.json())["live"]

    await peer.mention("how much does an ML engineer earn?")
    await peer.mention("what is the capital of Peru?")
    await slack.wait_for("chat.postMessage", 2)
    async with asyncio.timeout(WAIT), peer.session.get(peer.ops + METRICS_PATH) as got:
        assert got.status == 200 and got.content_type == "text/plain"
        metrics = await got.text()
    assert 'careerbot_questions_total{platform="slack"} 2.0' in metrics
    assert 'careerbot_answers_total{platform="slack",topic="salary"} 1.0' in metrics
    assert 'careerbot_declines_total{platform="slack"} 1.0' in metrics
    assert 'careerbot_answer_seconds_count{platform="slack"} 2.0' in metrics
    assert f'careerbot_knowledge_info{{version="{engine.version}"}} 1.0' in metrics


async def test_a_listener_that_fails_is_counted_and_logged(
        peer: Peer, slack: FakeSlack, engine: Engine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Listeners run after their ack, outside bolt's reach: their errors still land."""
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(engine, "answer", broken)
    await peer.command("what do data scientists earn?")  # acked all the same
    async with asyncio.timeout(WAIT):
        while not any("RuntimeError" in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.01)
    async with asyncio.timeout(WAIT), peer.session.get(peer.ops + METRICS_PATH) as got:
        assert 'careerbot_errors_total{where="slack"} 1.0' in await got.text()


# ---------------------------------------------------------------------- Socket Mode


async def test_socket_mode_end_to_end(engine: Engine, settings: Settings, slack: FakeSlack,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = replace(settings, slack_app_token=slack.app_token, slack_signing_secret="")
    task = asyncio.create_task(run_slack(engine, settings))
    try:
        ts = _ts()
        event = {"type": "event_callback", "team_id": TEAM, "event_id": "EvSOCKET",
                 "event": {"type": "app_mention", "user": USER, "channel": CHANNEL, "ts": ts,
                           "text": f"<@{BOT_USER}> what is model drift?"}}
        ack = await slack.push({"envelope_id": "env-1", "type": "events_api",
                                "accepts_response_payload": False, "payload": event})
        assert ack.args == {"envelope_id": "env-1"}
        [answer] = await slack.wait_for("chat.postMessage")
        assert answer["thread_ts"] == ts and header(answer).startswith("Model drift")

        command = {"team_id": TEAM, "channel_id": CHANNEL, "user_id": USER,
                   "command": "/careerbot", "text": "topics",
                   "response_url": slack.response_url("socket-cmd")}
        ack = await slack.push({"envelope_id": "env-2", "type": "slash_commands",
                                "accepts_response_payload": True, "payload": command})
        assert ack["envelope_id"] == "env-2"
        [listed] = await slack.responses("socket-cmd")
        assert header(listed) == "What you can ask me"
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    [opened] = slack.of("apps.connections.open")
    assert opened.token == slack.app_token
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert slack.bot_token not in logged and slack.app_token not in logged


async def test_the_careerbot_process_serves_slack(slack: FakeSlack, tmp_path: Path) -> None:
    """`careerbot serve slack` as a real process, in Socket Mode against the local Slack."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DISCORD_", "CAREERBOT_"))}
    env |= {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url, "PYTHONPATH": str(ROOT),
            "CAREERBOT_HOST": "127.0.0.1", "CAREERBOT_PORT": "0",
            "CAREERBOT_OPS_PORT": "0"}  # loopback, ephemeral
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "slack", cwd=tmp_path, env=env,  # no .env there
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await slack.wait_for("socket.connect", timeout=30)
        event = {"type": "event_callback", "team_id": TEAM, "event_id": "EvPROCESS",
                 "event": {"type": "message", "channel_type": "im", "channel": DM,
                           "user": USER, "ts": _ts(), "text": "which one should I choose?"}}
        await slack.push({"envelope_id": "env-p", "type": "events_api", "payload": event})
        [answer] = await slack.wait_for("chat.postMessage")
    finally:
        with suppress(ProcessLookupError):
            process.terminate()
        async with asyncio.timeout(WAIT):
            _, stderr = await process.communicate()
    assert answer["channel"] == DM and header(answer).startswith("Which")
    assert slack.bot_token.encode() not in stderr and slack.app_token.encode() not in stderr


@pytest.mark.parametrize("change, complaint", [
    ({"slack_bot_token": ""}, "SLACK_BOT_TOKEN is not set"),
    ({"slack_bot_token": "xoxb-revoked-secret"}, "Slack rejected SLACK_BOT_TOKEN (invalid_auth)"),
    ({"slack_app_token": "xapp-revoked-secret"}, "Slack rejected SLACK_APP_TOKEN (invalid_auth)"),
    ({"slack_signing_secret": ""}, "or SLACK_SIGNING_SECRET (HTTP mode)"),
])
async def test_bad_settings_say_what_to_fix_without_the_secret(
        engine: Engine, settings: Settings, change: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        async with asyncio.timeout(WAIT):
            await run_slack(engine, replace(settings, **change))
    assert complaint in str(caught.value)
    assert not any(secret and secret in str(caught.value) for secret in change.values())


# ---------------------------------------------------------------------- render


def _reply(text: str = "ok", rows: int = 0, **extra: Any) -> Reply:
    comparison = Comparison("x", "X", tuple(ComparisonRow(f"r{i}", "a", "b")
                                            for i in range(rows))) if rows else None
    return Reply(title="T", text=text, comparison=comparison, topic="t", **extra)


@pytest.mark.parametrize("reply", [
    _reply("word " * 2000),
    _reply("line\n" * 3000),
    _reply(rows=80, suggestions=(Suggestion("s", "t"),) * 3),
    _reply("x" * 10_000 + "\n\n" + "y" * 10),
])
def test_render_keeps_within_slack_limits(reply: Reply) -> None:
    message = render(reply, share="answer:t:both", aspects=["a"] * 150)
    blocks = message["blocks"]
    assert len(blocks) <= MAX_BLOCKS and len(message["text"]) <= MAX_FALLBACK
    assert all(len(b["text"]["text"]) <= MAX_SECTION for b in blocks if "text" in b)
    controls = {e["action_id"]: e for b in blocks if b["type"] == "actions"
                for e in b["elements"]}
    assert {"careerbot_share", "careerbot_feedback_helpful"} <= set(controls)
    assert len(controls["careerbot_compare_pick"]["options"]) == 100


@pytest.mark.parametrize("raw, safe", [
    ("<!channel>", "&lt;!channel&gt;"),
    ("<@U123|bob>", "&lt;@U123|bob&gt;"),
    ("R&D <b>", "R&amp;D &lt;b&gt;"),
])
def test_escape(raw: str, safe: str) -> None:
    assert escape(raw) == safe
    assert safe in render(_reply(raw))["text"]


def _sources_line(message: Any) -> str:
    [context] = [b for b in message["blocks"] if b["type"] == "context"]
    return str(context["elements"][0]["text"])


def test_sources_render_as_links_with_the_title_escaped() -> None:
    linked = Source("a", "Roles <b> & more", by="A. Writer <x>", url="https://example.com/a")
    plain = Source("b", "No address known", by="a blog")
    line = _sources_line(render(_reply(sources=(linked, plain))))
    assert line == ("Sources: <https://example.com/a|Roles &lt;b&gt; &amp; more>, "
                    "A. Writer &lt;x&gt;; _No address known_, a blog")


def test_a_long_list_of_sources_is_never_cut_inside_a_link() -> None:
    many = tuple(Source(str(i), "T" * 200, url=f"https://example.com/{i}") for i in range(40))
    line = _sources_line(render(_reply(sources=many)))
    assert len(line) <= MAX_SECTION and line.endswith("…")
    assert line.count("<") == line.count(">") and line.count("|") == line.count("<")


async def test_shipped_answers_link_their_articles(peer: Peer, slack: FakeSlack) -> None:
    [call] = await slack.responses(await peer.command("compare pay"))
    assert "<https://bluebirdinternational.com/machine-learning-engineer-vs-data-scientist/|" \
        in _sources_line(call)
