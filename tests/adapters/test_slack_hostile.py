"""The real `careerbot serve slack` in HTTP mode, as someone on the internet meets it.

Its events URL is public: whatever arrives there, signed or not, is refused with a
4xx before it costs more than a hash, never stalls the process's other requests, and
never puts the body (user text, response_url) in a log line.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from pathlib import Path

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack.app import EVENTS_PATH
from bot.ops import LIVE_QUERY, METRICS_PATH
from tests.adapters.test_slack import SECRET
from tests.fakes.slack import BOT_USER, TEAM, FakeSlack
from tests.serve_process import ServeProcess, serve

WAIT = 5.0  # a bound on each request, not a speed target: the stall this guards was 35 s


def _env(slack: FakeSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url}


def _mention(text: str) -> str:
    return json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A0APP",
                       "type": "event_callback", "event_id": "EvHOSTILE", "event_time": 1,
                       "event": {"type": "app_mention", "user": "U0ASKER", "channel": "C0GEN",
                                 "text": f"<@{BOT_USER}> {text}", "ts": "1.000001"}})


def _signed(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


async def _post(http: aiohttp.ClientSession, base: str, body: bytes,
                headers: dict[str, str], content_type: str = "application/json"
                ) -> tuple[int, str]:
    async with asyncio.timeout(WAIT), http.post(
            base + EVENTS_PATH, data=io.BytesIO(body),
            headers={"Content-Type": content_type, **headers}) as response:
        return response.status, await response.text()


async def _errors(http: aiohttp.ClientSession, process: ServeProcess) -> float:
    ops = f"http://127.0.0.1:{await process.ops_port()}"
    async with asyncio.timeout(WAIT), http.get(ops + METRICS_PATH) as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("careerbot_errors_total"))


async def _live(http: aiohttp.ClientSession, ops: str) -> int:
    async with asyncio.timeout(WAIT), http.get(f"{ops}/healthz?{LIVE_QUERY}") as response:
        return response.status


async def _base(process: ServeProcess) -> str:
    return f"http://127.0.0.1:{await process.http_port()}"


async def test_a_huge_unsigned_body_is_refused_at_once_and_never_logged(
        slack: FakeSlack, tmp_path: Path) -> None:
    async with serve("slack", env=_env(slack), cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        base = await _base(process)
        ops = f"http://127.0.0.1:{await process.ops_port()}"
        for size in (100_000, 900_000):
            body = _mention("z" * size).encode()
            # the probe goes out while the refusal is being made: neither waits on the other
            refused, live = await asyncio.gather(_post(http, base, body, {}), _live(http, ops))
            assert (refused, live) == ((401, '{"error": "invalid request"}'), 200), size
        status, _ = await _post(http, base, _mention("z" * 1_100_000).encode(), {})
        assert status == 413
        # a signed request still gets its answer afterwards
        body = _mention("what do ML engineers earn?").encode()
        assert (await _post(http, base, body, _signed(body)))[0] == 200
        [answer] = await slack.wait_for("chat.postMessage")
        assert "Salary" in json.dumps(answer.args)
        assert await process.stop() == 0
    assert b"zzzzzzzzzz" not in process.stderr
    assert b"Traceback" not in process.stderr


async def test_malformed_requests_get_a_4xx_and_raise_no_error_metric(
        slack: FakeSlack, tmp_path: Path) -> None:
    array = b'[{"type": "event_callback"}]'
    form = b"token=x&team_id=T0TEAM&command=%2Fcareerbot&text=hi"
    bad_utf8 = b'{"type": "event_callback", "x": "\xff\xfe"}'
    cases: list[tuple[str, bytes, dict[str, str], str, int]] = [
        ("unsigned, not JSON", b"{not json", {}, "application/json", 401),
        ("unsigned, invalid UTF-8", bad_utf8, {}, "application/json", 400),
        ("timestamp not a number", b"{}", {"X-Slack-Request-Timestamp": "abc",
                                           "X-Slack-Signature": "v0=00"},
         "application/json", 401),
        ("signed with a timestamp that is not a number", b"{}", _signed(b"{}", "abc"),
         "application/json", 401),
        ("signed JSON array", array, _signed(array), "application/json", 400),
        ("signed form sent as JSON", form, _signed(form), "application/json", 400),
    ]
    async with serve("slack", env=_env(slack), cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        base = await _base(process)
        before = await _errors(http, process)
        got = [(name, (await _post(http, base, body, headers, ctype))[0])
               for name, body, headers, ctype, _ in cases]
        after = await _errors(http, process)
        assert await process.stop() == 0
    assert got == [(name, status) for name, _, _, _, status in cases]
    assert after == before
    assert not re.search(rb"Traceback|Error handling request", process.stderr)


async def test_no_log_line_carries_a_user_id_name_question_or_response_url(
        slack: FakeSlack, tmp_path: Path) -> None:
    """At DEBUG, ours and the libraries' lines: an answered mention, a refused /careerbot
    reload, an event no listener takes (bolt logs those), a response_url that fails once
    (slack_sdk logs the retry with its URL). The user reference is the learning records'
    keyed hash."""
    from urllib.parse import urlencode

    from bot.learning import keyed_hash
    from tests.fakes.slack import Failure

    user, name, words = "U0PRIVATE", "private.person", "Quuxville"
    env = _env(slack) | {"CAREERBOT_LEARNING": "on",
                         "CAREERBOT_LEARNING_DB": str(tmp_path / "learning.sqlite3")}
    form = "application/x-www-form-urlencoded"

    def command(text: str, key: str) -> bytes:
        return urlencode({"team_id": TEAM, "channel_id": "C0GEN", "user_id": user,
                          "user_name": name, "command": "/careerbot", "text": text,
                          "response_url": slack.response_url(key)}).encode()

    def event(inner: dict[str, object], event_id: str) -> bytes:
        return json.dumps({"team_id": TEAM, "api_app_id": "A0APP", "type": "event_callback",
                           "event_id": event_id, "event_time": 1, "event": inner}).encode()

    async with serve("slack", "-v", env=env, cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        base = await _base(process)
        mention = event({"type": "app_mention", "user": user, "channel": "C0GEN",
                         "text": f"<@{BOT_USER}> what do ML engineers earn in {words}?",
                         "ts": "1.000002"}, "EvPRIVATE1")
        assert (await _post(http, base, mention, _signed(mention)))[0] == 200
        unhandled = event({"type": "reaction_added", "user": user, "reaction": "eyes",
                           "item": {"type": "message", "channel": "C0GEN",
                                    "ts": "1.000002"}}, "EvPRIVATE2")
        assert (await _post(http, base, unhandled, _signed(unhandled)))[0] == 404
        slack.fail("response_url", Failure(status=500))
        for text, key in ((f"salary in {words}", "private-key-1"), ("reload", "private-key-2")):
            body = command(text, key)
            assert (await _post(http, base, body, _signed(body), form))[0] == 200
        await slack.wait_for("chat.postMessage")
        await slack.wait_until(lambda: {c["key"] for c in slack.of("response_url")}
                               >= {"private-key-1", "private-key-2"})
        assert await process.stop() == 0
    log = process.stderr.decode()
    key = bytes.fromhex((tmp_path / "learning.key").read_text().strip())
    assert f"user u-{keyed_hash(key, 'slack', user)[:12]}" in log  # the refused reload
    assert "Unhandled request (details withheld)" in log
    assert "retry handler found" in log and "<response_url withheld>" in log
    for private in (user, name, words, "/response/", "private-key"):
        assert private not in log, private


async def test_the_public_port_serves_slack_events_alone(slack: FakeSlack,
                                                         tmp_path: Path) -> None:
    """/healthz and /metrics (the replica's host and pid, the store, the version) answer on
    the ops port only; the events port answers anything but POST /slack/events with a
    bare 404 or 405."""
    import socket

    async with serve("slack", env=_env(slack), cwd=tmp_path) as process, \
            aiohttp.ClientSession() as http:
        base, ops = await _base(process), f"http://127.0.0.1:{await process.ops_port()}"
        assert base != ops
        public: dict[str, tuple[int, str]] = {}
        for method, path in (("GET", "/healthz"), ("GET", f"/healthz?{LIVE_QUERY}"),
                             ("GET", METRICS_PATH), ("GET", "/"), ("GET", EVENTS_PATH),
                             ("POST", "/healthz")):
            async with asyncio.timeout(WAIT), http.request(method, base + path) as got:
                public[f"{method} {path}"] = (got.status, await got.text())
        async with asyncio.timeout(WAIT), http.get(ops + "/healthz") as got:
            health = await got.json()
        async with asyncio.timeout(WAIT), http.get(ops + METRICS_PATH) as got:
            metrics = (got.status, await got.text())
        async with asyncio.timeout(WAIT), http.post(ops + EVENTS_PATH, data=b"{}") as got:
            events_on_ops = got.status
        pid = str(process.process.pid)
        assert await process.stop() == 0
    assert {status for status, _ in public.values()} <= {404, 405}, public
    shown = " ".join(text for _, text in public.values())
    for secret in (socket.gethostname(), pid, str(tmp_path), "in-process", "careerbot_"):
        assert secret not in shown
    assert health["replica"].startswith(socket.gethostname()) and pid in health["replica"]
    assert metrics[0] == 200 and "careerbot_questions_total" in metrics[1]
    assert events_on_ops == 404
