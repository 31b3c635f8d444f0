"""The real `careerbot serve slack` process (HTTP mode) under a burst of signed
/careerbot commands, against the local Slack of tests/fakes/slack.py.

Most commands come from users asking once; a few users ask far more often than the
rate limit allows (CAREERBOT_RATE_LIMIT_PER_MINUTE, 12), and are told to slow down.
Figures: time to ack (beside GET /healthz on the ops port), time to answer (until the
answer is posted to the response_url), refusals, errors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode

from benchmarks.common import Report, dev_texts, ms, pct, say

__all__ = ["run"]

SECRET = "bench-signing-secret"
ACK_TARGET = 0.100
ANSWER_TARGET = 3.0
GREEDY_USERS = 3
GREEDY_ASKS = 20  # each, in the burst: past the limit of 12 a minute


async def _load(report: Report) -> dict[str, Any]:
    import aiohttp
    from slack_sdk.signature import SignatureVerifier

    from tests.fakes.slack import FakeSlack
    from tests.serve_process import serve

    plan = report.plan
    texts = [t for t in dev_texts()
             if not t.lower().startswith(("help", "topics", "reload", "compare"))]
    users = [f"U{i:05d}" for i in range(plan.requests)]
    users += [f"UGREEDY{g}" for g in range(GREEDY_USERS) for _ in range(GREEDY_ASKS)]
    signer = SignatureVerifier(SECRET)
    async with FakeSlack() as slack:
        env = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": slack.api_url}
        async with serve("slack", env=env, cwd=report.tmp) as process, \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            url = f"http://127.0.0.1:{await process.http_port()}/slack/events"
            health = f"http://127.0.0.1:{await process.ops_port()}/healthz"
            sent: dict[str, tuple[str, float]] = {}
            acks: list[float] = []
            health_acks: list[float] = []
            errors: list[str] = []
            jobs = iter(enumerate(users))
            gate = asyncio.Semaphore(plan.concurrency)

            async def command(i: int, user: str) -> None:
                key = f"r{i:06d}"
                form = urlencode({
                    "token": "legacy", "team_id": "T0TEAM", "team_domain": "bench",
                    "channel_id": "C0BENCH", "channel_name": "general", "user_id": user,
                    "user_name": user.lower(), "command": "/careerbot",
                    "text": texts[i % len(texts)], "api_app_id": "A0APP",
                    "response_url": slack.response_url(key), "trigger_id": f"{i}.1.2"})
                stamp = str(int(time.time()))
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "X-Slack-Request-Timestamp": stamp,
                           "X-Slack-Signature": signer.generate_signature(timestamp=stamp,
                                                                          body=form)}
                t0 = time.monotonic()
                sent[key] = (user, t0)
                try:
                    async with http.post(url, data=form.encode(), headers=headers) as got:
                        body = await got.text()
                    acks.append(time.monotonic() - t0)
                    if got.status != 200 or body:
                        errors.append(f"HTTP {got.status}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors.append(type(exc).__name__)

            async def ping() -> None:
                t0 = time.monotonic()
                async with http.get(health) as got:
                    await got.read()
                health_acks.append(time.monotonic() - t0)

            async def worker() -> None:
                for i, user in jobs:
                    async with gate:
                        await command(i, user)
                        if i % 4 == 0:
                            await ping()

            say(f"slack: {len(users)} slash commands at concurrency {plan.concurrency}, "
                f"{GREEDY_USERS} users asking {GREEDY_ASKS} times each")
            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
            elapsed = time.monotonic() - started
            await slack.wait_until(lambda: len({c["key"] for c in slack.of("response_url")})
                                   >= len(sent), timeout=120)
            logged = process.stderr.decode(errors="replace")
    first: dict[str, Any] = {}
    for call in slack.of("response_url"):
        first.setdefault(call["key"], call)
    answered, refused = [], []
    for key, call in first.items():
        user, t0 = sent[key]
        (refused if "Slow down" in str(call.args) else answered).append(
            (user, call.at - t0))
    return {"sent": len(sent), "elapsed_s": elapsed, "acks": acks, "health": health_acks,
            "errors": errors, "answer_s": [s for _, s in answered],
            "refused": len(refused),
            "refused_users": sorted({u for u, _ in refused}),
            "posts": len(slack.of("response_url")),
            "tracebacks": logged.count("Traceback")}


def run(report: Report) -> None:
    r = asyncio.run(_load(report))
    acks, health, answers = r.pop("acks"), r.pop("health"), r.pop("answer_s")
    figures = {**r, "ack_p50_ms": pct(acks, 50) * 1000, "ack_p99_ms": pct(acks, 99) * 1000,
               "healthz_p50_ms": pct(health, 50) * 1000, "healthz_p99_ms": pct(health, 99) * 1000,
               "answer_p50_ms": pct(answers, 50) * 1000, "answer_p99_ms": pct(answers, 99) * 1000,
               "answered": len(answers)}
    report.results["slack"] = figures
    report.row("slack", f"time to ack, p50 / p99 ({r['sent']} commands, {r['elapsed_s']:.1f} s)",
               f"{ms(pct(acks, 50))} / {ms(pct(acks, 99))}",
               f"GET /healthz {ms(pct(health, 50))} / {ms(pct(health, 99))}", "",
               "p99 < 100 ms", pct(acks, 99) < ACK_TARGET)
    report.row("slack", "time to answer (response_url post), p50 / p99",
               f"{ms(pct(answers, 50))} / {ms(pct(answers, 99))}",
               f"ack p99 {ms(pct(acks, 99))}", f"{len(answers)} answered",
               "p99 <= 3 s", pct(answers, 99) <= ANSWER_TARGET)
    greedy = GREEDY_USERS * GREEDY_ASKS
    report.row("slack", f"rate limit: {GREEDY_USERS} users asking {GREEDY_ASKS} times each",
               f"{r['refused']} told to slow down",
               f"{greedy} asked, limit 12 a minute each",
               f"refused users: {len(r['refused_users'])}", "", None)
    once = r["posts"] == r["sent"]
    report.row("slack", "errors; every command answered exactly once",
               f"{len(r['errors'])} errors, {r['tracebacks']} tracebacks",
               f"{r['posts']} posts for {r['sent']} commands", "", "0 errors, once each",
               not r["errors"] and not r["tracebacks"] and once)
