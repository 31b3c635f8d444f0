"""The real `careerbot serve slack` (HTTP mode) when what it leans on fails.

A redis-server of the test's own is frozen (SIGSTOP) under a burst of mentions and
Slack's retries of them; a wrong Redis password stops the process at start; SIGHUP
and SIGTERM come while answers are in flight. Every wait is bounded; the only time
limit asserted is Slack's own: an ack within 3 s.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp

from bot.ops import HEALTH_PATH
from tests.adapters.test_slack import SECRET, Peer, _ts, header
from tests.fakes.slack import BOT_USER, FakeSlack
from tests.redis_server import RedisProcess
from tests.serve_process import ServeProcess, serve

WAIT = 30.0  # a bound on waits for a whole process, not a speed target
#: Slack retries an event it has no ack for within 3 s
ACK_BUDGET = 3.0
CHANNEL = "C0GENERAL"


def _env(slack: FakeSlack, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url, **extra}


async def _health(http: aiohttp.ClientSession, process: ServeProcess
                  ) -> tuple[int, dict[str, object]]:
    """/healthz, from the ops port."""
    base = f"http://127.0.0.1:{await process.ops_port()}"
    async with asyncio.timeout(WAIT), http.get(base + HEALTH_PATH) as got:
        return got.status, await got.json()


def _mention(text: str) -> dict[str, str]:
    ts = _ts()
    return {"type": "app_mention", "user": "U0ASKER", "text": f"<@{BOT_USER}> {text}",
            "ts": ts, "channel": CHANNEL, "event_ts": ts}


async def _acked(peer: Peer, event: dict[str, str], event_id: str,
                 retry: int | None = None) -> int:
    async with asyncio.timeout(ACK_BUDGET):
        return await peer.event(event, event_id=event_id, retry=retry)


# ---------------------------------------------------------------------- Redis


async def test_a_frozen_redis_never_makes_an_ack_late_nor_an_answer_double(
        slack: FakeSlack, own_redis: RedisProcess, tmp_path: Path) -> None:
    env = _env(slack, REDIS_URL=own_redis.url(), CAREERBOT_SHUTDOWN_GRACE="4")
    async with serve("slack", env=env, cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{await process.http_port()}"
        await process.wait_for_line(re.compile(rb"listening for reload notices"))
        peer = Peer(base, http, slack)
        events = [(_mention(f"what do ML engineers earn? ({n})"), f"EvFROZEN{n}")
                  for n in range(32)]
        own_redis.freeze()
        statuses = await asyncio.gather(*(_acked(peer, e, i) for e, i in events))
        assert statuses == [200] * 32
        await slack.wait_for("chat.postMessage", 32, timeout=WAIT)
        # Slack's retries of every one, to the same replica, while Redis is still frozen
        retried = await asyncio.gather(*(_acked(peer, e, i, retry=1) for e, i in events))
        assert retried == [200] * 32
        status, health = await _health(http, process)
        assert status == 200  # ready: answering without shared state
        store = health["store"]
        assert isinstance(store, dict) and store["ok"] is False
        assert "200 ms" in store["error"] and store["failed_calls"] >= 1
        # a marker, after every retry was turned away: it is the 33rd answer, not the 65th
        marker = _mention("what does an ML engineer do?")
        assert await _acked(peer, marker, "EvMARKER") == 200
        calls = await slack.wait_for("chat.postMessage", 33, timeout=WAIT)
        own_redis.thaw()
        await process.wait_for_line(re.compile(rb"answers again after"))
        status, health = await _health(http, process)
        assert health["store"] == {"kind": f"redis 127.0.0.1:{own_redis.port}/0", "ok": True}
        assert await process.stop() == 0
    assert sorted(c["thread_ts"] for c in calls) == sorted(
        [e["ts"] for e, _ in events] + [marker["ts"]])
    assert all(header(c).startswith("Salary") for c in calls
               if c["thread_ts"] != marker["ts"])
    log = process.stderr.decode()
    assert log.count("is failing") == 1 and log.count("answers again after") == 1
    assert "Traceback" not in log


async def test_a_wrong_redis_password_stops_the_process_with_one_line(
        slack: FakeSlack, tmp_path: Path) -> None:
    server = RedisProcess(tmp_path, "--requirepass", "right-s3cret")
    try:
        env = _env(slack, REDIS_URL=server.url("wrong-hunter2"))
        async with serve("slack", env=env, cwd=tmp_path) as process:
            async with asyncio.timeout(WAIT):
                status = await process.process.wait()
                await process._reader
    finally:
        server.close()
    assert status == 2
    last = process.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("careerbot: redis 127.0.0.1:") and "refused the credentials" in last
    assert b"hunter2" not in process.stderr and b"Traceback" not in process.stderr


# ---------------------------------------------------------------------- signals


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def _base(process: ServeProcess) -> str:
    return f"http://127.0.0.1:{await process.http_port()}"


async def test_sighup_reloads_the_knowledge_and_keeps_serving(
        slack: FakeSlack, knowledge_copy: Path, tmp_path: Path) -> None:
    env = _env(slack, CAREERBOT_KNOWLEDGE_DIR=str(knowledge_copy))
    async with serve("slack", env=env, cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        base = await _base(process)
        peer = Peer(base, http, slack)
        _, before = await _health(http, process)
        slack.open.clear()  # the answer is in flight when SIGHUP comes
        asked = await peer.mention("how much does an ML engineer earn?")
        await slack.wait_for("chat.postMessage", timeout=WAIT)
        _edit(knowledge_copy / "topics" / "salary.yaml", "title: Salary and compensation",
              "title: Salary and pay")
        process.process.send_signal(signal.SIGHUP)
        await process.wait_for_line(re.compile(rb"knowledge reload on SIGHUP: Reloaded"))
        slack.open.set()
        status, after = await _health(http, process)
        assert status == 200 and after["version"] != before["version"]
        assert after["last_reload"]["origin"] == "signal"  # type: ignore[index]
        again = await peer.mention("and what do data scientists earn?")
        calls = await slack.wait_for("chat.postMessage", 2, timeout=WAIT)
        assert process.process.returncode is None
        assert await process.stop() == 0
    first = next(c for c in calls if c["thread_ts"] == asked)
    second = next(c for c in calls if c["thread_ts"] == again)
    assert header(first).startswith("Salary and")  # delivered, not lost to the signal
    assert header(second) == "Salary and pay: Data scientist"


async def test_sigterm_turns_readiness_off_first_then_settles_then_drains(
        slack: FakeSlack, tmp_path: Path) -> None:
    # a grace of 8 s: 2 s of settling, in which a request the load balancer still sends
    # is taken and answered
    env = _env(slack, CAREERBOT_SHUTDOWN_GRACE="8")
    async with serve("slack", env=env, cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        base = await _base(process)
        peer = Peer(base, http, slack)
        slack.open.clear()
        first = await peer.mention("how much does an ML engineer earn?")
        await slack.wait_for("chat.postMessage", timeout=WAIT)
        process.process.send_signal(signal.SIGTERM)
        await process.wait_for_line(re.compile(rb"shutting down: not ready"))
        status, health = await _health(http, process)
        assert status == 503 and health["draining"] is True
        late = await peer.mention("what does a data scientist do?")  # still taken
        await slack.wait_for("chat.postMessage", 2, timeout=WAIT)
        await process.wait_for_line(re.compile(rb"finishing 2 request\(s\) in flight"))
        slack.open.set()
        assert await process.stop(signal.SIGTERM) == 0
    calls = slack.of("chat.postMessage")
    assert sorted(c["thread_ts"] for c in calls) == sorted([first, late])
    assert b"stopped cleanly" in process.stderr


async def test_sigterm_exits_non_zero_when_the_grace_runs_out_with_answers_in_flight(
        slack: FakeSlack, tmp_path: Path) -> None:
    env = _env(slack, CAREERBOT_SHUTDOWN_GRACE="2")
    async with serve("slack", env=env, cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        peer = Peer(await _base(process), http, slack)
        slack.open.clear()  # never released: the answer cannot finish
        await peer.mention("how much does an ML engineer earn?")
        await slack.wait_for("chat.postMessage", timeout=WAIT)
        assert await process.stop(signal.SIGTERM) == 1
    assert re.search(rb"stopped with 1 request\(s\) unfinished", process.stderr)
    slack.open.set()
