"""The serving runtime: degrading when the store fails, draining, reload outcomes, logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest

from bot.core import Engine, Query, ReloadReport
from bot.logs import configure_logging, user_ref
from bot.runtime import ReloadOutcome, Runtime
from bot.settings import Settings
from bot.store import InProcessStore, StoreError


class BrokenStore(InProcessStore):
    """A store whose every call fails, as a Redis that went away does."""

    shared = True
    description = "redis nowhere:6379/0"

    def __getattribute__(self, name: str) -> Any:
        if name in {"get_context", "set_context", "hit", "first_seen", "incr", "cast_vote",
                    "publish"}:
            async def fail(*_: object, **__: object) -> Any:
                raise StoreError("redis nowhere:6379/0: ConnectionError: refused")
            return fail
        return super().__getattribute__(name)

    async def ping(self) -> bool:
        return False


async def test_a_failing_store_degrades_instead_of_failing(engine: Engine,
                                                           caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="bot.runtime")
    runtime = Runtime(engine, Settings(rate_limit_per_minute=1), BrokenStore())
    reply = await runtime.ask(Query("what do MLEs earn?", conversation="c", platform="slack"))
    assert reply.topic == "salary"  # answered, without follow-up context
    assert await runtime.retry_after("slack", "U1") == 0.0  # the limit fails open
    assert await runtime.first_time("slack:event:Ev1") is True
    vote = await runtime.vote("slack", "T:U1", "T:C1:1.2", "salary", "both", helpful=True)
    assert vote.outcome == "unrecorded"
    outcome = await runtime.reload()
    assert outcome.ok and outcome.unsent and "could not be told" in outcome.summary()
    ready, health = await runtime.health()
    assert ready and health["store"] == {"kind": "redis nowhere:6379/0", "ok": False}
    metrics = runtime.metrics.render().decode()
    assert 'careerbot_errors_total{where="store"} 5.0' in metrics
    assert 'careerbot_errors_total{where="reload notice"} 1.0' in metrics
    assert all("\n" not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("topic, role, user, answer, outcome", [
    ("salary", "ml_engineer", "U1", "m1", "counted"),
    ("no_such_topic", "both", "U1", "m1", "refused"),
    ("salary", "wizard", "U1", "m1", "refused"),
    ("greeting", "both", "U1", "m1", "refused"),  # small talk has no vote buttons
    ("salary", "both", "U1", "", "refused"),  # no answer to hold the vote
    ("salary", "both", "", "m1", "refused"),
])
async def test_votes_only_on_topics_and_roles_we_have(engine: Engine, topic: str, role: str,
                                                      user: str, answer: str,
                                                      outcome: str) -> None:
    runtime = Runtime(engine, Settings())
    vote = await runtime.vote("slack", user, answer, topic, role, helpful=True)
    assert vote.outcome == outcome
    assert await runtime.store.counts("votes") == (
        {f"{topic}:{role}:helpful": 1} if outcome == "counted" else {})


async def test_a_vote_cast_again_counts_once_and_a_changed_one_moves(engine: Engine) -> None:
    runtime = Runtime(engine, Settings())
    outcomes = [(await runtime.vote("discord", "U1", "m1", "salary", "both", helpful)).outcome
                for helpful in (True, True, True, False)]
    assert outcomes == ["counted", "unchanged", "unchanged", "changed"]
    assert await runtime.store.counts("votes") == {"salary:both:helpful": 0,
                                                   "salary:both:not_helpful": 1}


@pytest.mark.parametrize("outcome, says", [
    (ReloadOutcome(ReloadReport(True, "b", "a")), "Reloaded: version a → b"),
    (ReloadOutcome(ReloadReport(True, "b", "a"), told=0), "0 other replicas received"),
    (ReloadOutcome(ReloadReport(True, "b", "a"), told=1), "1 other replica received"),
    (ReloadOutcome(ReloadReport(True, "b", "a"), told=3), "3 other replicas received"),
    (ReloadOutcome(ReloadReport(False, "a", "a")), "still serving version a"),
])
def test_reload_outcome_summary(outcome: ReloadOutcome, says: str) -> None:
    assert says in outcome.summary()
    assert ("replica" in outcome.summary()) is (outcome.told is not None)


async def test_drain_waits_for_work_in_flight(engine: Engine) -> None:
    runtime = Runtime(engine, Settings())
    release = asyncio.Event()
    started = asyncio.Event()

    async def handler() -> str:
        runtime.track()
        started.set()
        await release.wait()
        return "answered"

    task = asyncio.create_task(handler())
    await started.wait()
    draining = asyncio.create_task(runtime.drain(timeout=30))
    await asyncio.sleep(0)  # one loop step: drain starts, and must not return yet
    assert not draining.done() and runtime.draining
    ready, health = await runtime.health()
    assert not ready and health["in_flight"] == 1
    release.set()
    assert await draining == 0 and await task == "answered"

    stuck, began = asyncio.Event(), asyncio.Event()

    async def never() -> None:
        runtime.track()
        began.set()
        await stuck.wait()

    hung = asyncio.create_task(never())
    await began.wait()
    assert await runtime.drain(timeout=0.01) == 1  # gives up after the grace period
    hung.cancel()


@pytest.fixture(autouse=True)
def _logging_restored():
    """configure_logging changes the root logger: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level
              for name in ("slack_bolt", "slack_sdk", "discord", "aiohttp", "redis", "asyncio")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in chatty.items():
        logging.getLogger(name).setLevel(old)


def test_json_logs_are_one_line_an_event_without_secrets() -> None:
    stream = io.StringIO()
    configure_logging(as_json=True, secrets=["xoxb-real-token-123", "s3cret-signing"])
    root = logging.getLogger()
    handler = root.handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("bot.test")
    try:
        log.info("token %s and secret %s", "xoxb-real-token-123", "s3cret-signing",
                 extra={"fields": {"user": user_ref("slack", "U123"), "ms": 1.5}})
        log.info("url redis://:hunter2@redis:6379/0 and xapp-1-A0-abc")
        try:
            raise ValueError("two\nlines")
        except ValueError:
            log.exception("failed\nhere")
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    events = [json.loads(line) for line in lines]
    assert events[0]["msg"] == "token *** and secret ***"
    assert events[0]["user"] == user_ref("slack", "U123") and events[0]["ms"] == 1.5
    assert "hunter2" not in lines[1] and "xapp-1" not in lines[1]
    assert events[2]["msg"] == "failed\nhere" and "ValueError: two\nlines" in events[2]["error"]
    assert user_ref("slack", "U123") == user_ref("slack", "U123") != user_ref("slack", "U124")
    assert "U123" not in user_ref("slack", "U123")


def test_text_logs_are_one_line_an_event_too() -> None:
    stream = io.StringIO()
    configure_logging(as_json=False)
    root = logging.getLogger()
    handler = root.handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        logging.getLogger("bot.test").warning("reload failed:\n• one\n• two",
                                              extra={"fields": {"version": "abc"}})
    finally:
        root.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    assert line.endswith("bot.test: reload failed:\\n• one\\n• two version=abc")


@pytest.mark.parametrize("via", ["admin", "notice"])
async def test_a_reload_runs_off_the_event_loop(engine: Engine, via: str) -> None:
    """The engine's reload waits for the loop to set an event: on the loop's own thread it
    could never see it set (and would give up after the bound)."""
    import threading

    runtime = Runtime(engine, Settings())
    real, gate = engine.reload, threading.Event()
    seen: list[bool] = []

    def reload() -> ReloadReport:
        seen.append(gate.wait(timeout=5))
        return real()

    engine.reload = reload  # type: ignore[method-assign]

    async def open_gate() -> None:
        gate.set()

    opener = asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(open_gate()))
    if via == "admin":
        assert (await runtime.reload()).ok
    else:
        await runtime._on_notice({"replica": "elsewhere", "version": "not-this-one"})
    opener.cancel()
    assert seen == [True]


def test_user_refs_are_keyed_with_the_learning_records_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the key, hashing a member list finds no one: the reference is the first
    48 bits of the records' HMAC, and another key gives another reference."""
    import hashlib

    import bot.logs
    from bot.learning import keyed_hash
    from bot.logs import set_user_key

    monkeypatch.setattr(bot.logs, "_user_key", bot.logs._user_key)  # restored after
    key = bytes(range(32))
    set_user_key(key)
    ref = user_ref("slack", "U0MEMBER")
    assert ref == f"u-{keyed_hash(key, 'slack', 'U0MEMBER')[:12]}"
    unkeyed = hashlib.blake2b(b"slack:U0MEMBER", digest_size=6).hexdigest()
    assert ref != f"u-{unkeyed}" and user_ref("slack", "U0OTHER") != ref
    set_user_key(bytes(32))
    assert user_ref("slack", "U0MEMBER") != ref
    with pytest.raises(ValueError):
        set_user_key(b"")
