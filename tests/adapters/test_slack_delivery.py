"""Answers on their way to Slack when Slack says no: a 429, a 5xx, a dropped connection,
a response_url gone, a channel the bot is not in.

The real bolt app against the local Slack, which injects each failure (FakeSlack.fail).
slack_sdk's retry handlers do the retrying; what finally cannot be delivered is counted
and logged once, without what was asked.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.core import Engine
from bot.runtime import Runtime
from bot.settings import Settings
from tests.adapters.test_slack import CHANNEL, USER, Peer, header, serving
from tests.fakes.slack import Failure, FakeSlack

WAIT = 10.0  # retries after Retry-After take seconds: a bound, not a target
QUESTION = "how much does an ML engineer earn?"


@pytest.fixture
def runtime(engine: Engine, settings: Settings) -> Runtime:
    return Runtime(engine, settings)


@pytest.fixture
async def peer(slack: FakeSlack, engine: Engine, settings: Settings,
               runtime: Runtime) -> AsyncIterator[Peer]:
    async with serving(slack, engine, settings, runtime=runtime) as p:
        yield p


def _undelivered(runtime: Runtime) -> dict[str, float]:
    found = {}
    for metric in runtime.metrics.undelivered.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                found[sample.labels["reason"]] = sample.value
    return found


async def _ask(peer: Peer, slack: FakeSlack, via: str) -> list[object]:
    """Ask by mention (answered with chat.postMessage) or /careerbot (its response_url);
    the attempts the local Slack saw, once the answer got through."""
    if via == "mention":
        await peer.mention(QUESTION)
        return list(await slack.wait_for("chat.postMessage", 2, timeout=WAIT))
    return list(await slack.responses(await peer.command(QUESTION), 2, timeout=WAIT))


@pytest.mark.parametrize("via, method", [("mention", "chat.postMessage"),
                                         ("command", "response_url")])
async def test_a_429_is_retried_after_its_retry_after(
        peer: Peer, slack: FakeSlack, runtime: Runtime, via: str, method: str) -> None:
    slack.fail(method, Failure(429, retry_after=1))
    refused, answered = await _ask(peer, slack, via)
    assert answered.at - refused.at >= 1.0  # type: ignore[attr-defined]
    assert header(answered).startswith("Salary and compensation")  # type: ignore[arg-type]
    assert _undelivered(runtime) == {}


@pytest.mark.parametrize("failure", [Failure(500), Failure(503), Failure(drop=True)],
                         ids=["500", "503", "dropped"])
@pytest.mark.parametrize("via, method", [("mention", "chat.postMessage"),
                                         ("command", "response_url")])
async def test_a_server_error_or_a_dropped_connection_is_retried(
        peer: Peer, slack: FakeSlack, runtime: Runtime, via: str, method: str,
        failure: Failure) -> None:
    slack.fail(method, failure)
    _, answered = await _ask(peer, slack, via)
    assert header(answered).startswith("Salary and compensation")  # type: ignore[arg-type]
    assert _undelivered(runtime) == {}


@pytest.mark.parametrize("via, method, failures, reason", [
    ("mention", "chat.postMessage", [Failure(429, retry_after=0)] * 4, "ratelimited"),
    ("mention", "chat.postMessage", [Failure(503)] * 4, "server_error"),
    ("command", "response_url", [Failure(404, error="expired_url")], "response_url 404"),
    ("command", "response_url", [Failure(429, retry_after=0)] * 4, "response_url 429"),
])
async def test_an_answer_that_cannot_be_delivered_is_counted_and_logged_once(
        peer: Peer, slack: FakeSlack, runtime: Runtime, caplog: pytest.LogCaptureFixture,
        via: str, method: str, failures: list[Failure], reason: str) -> None:
    caplog.set_level(logging.INFO)
    slack.fail(method, *failures)
    if via == "mention":
        await peer.mention(QUESTION)
    else:
        await peer.command(QUESTION)
    await slack.wait_for(method, timeout=WAIT)  # the answer's task is under way
    assert await runtime.drain(WAIT) == 0  # and it has ended, given up
    assert len(slack.of(method)) == len(failures)  # 1 try and 3 retries, or 1 for a 404
    assert _undelivered(runtime) == {reason: 1.0}
    lines = [r for r in caplog.records if "could not be delivered" in r.getMessage()]
    assert len(lines) == 1 and reason in lines[0].getMessage()
    assert not any("ML engineer earn" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)  # no traceback


@pytest.mark.parametrize("where, error, private", [
    ("closed", "not_in_channel", "chat.postEphemeral"),
    ("missing", "channel_not_found", "chat.postMessage"),  # ephemeral fails too: a DM
])
async def test_a_channel_the_bot_cannot_post_in_gets_the_asker_a_private_answer(
        peer: Peer, slack: FakeSlack, runtime: Runtime, caplog: pytest.LogCaptureFixture,
        where: str, error: str, private: str) -> None:
    caplog.set_level(logging.INFO)
    (slack.closed_channels if where == "closed" else slack.missing_channels).add(CHANNEL)
    await peer.mention(QUESTION)
    await slack.wait_until(lambda: any(c.get("channel") == USER or c.method ==
                                       "chat.postEphemeral" and c.get("user") == USER
                                       for c in slack.calls if c.method == private),
                           timeout=WAIT)
    [told] = [c for c in slack.of(private) if c.get("channel") != CHANNEL or
              c.method == "chat.postEphemeral"][-1:]
    if private == "chat.postEphemeral":
        assert told["channel"] == CHANNEL and told["user"] == USER
    else:
        assert told["channel"] == USER  # a DM
    assert "/invite" in told["blocks"][0]["text"]["text"]
    assert told["blocks"][1]["text"]["text"].startswith("Salary and compensation")
    assert _undelivered(runtime) == {}
    assert not any(r.exc_info for r in caplog.records)
