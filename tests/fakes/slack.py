"""A local Slack: the Web API, response_url endpoints and a Socket Mode websocket.

It listens on 127.0.0.1 on an ephemeral port and records every call it receives,
so a test asserts on what the app really sent (blocks, thread_ts, response_type).
Waits are on a condition with a timeout, never on sleeps.

Failures are injected per method (`fail`): the next calls of a Web API method, or
of the response URLs, get a 429 with Retry-After, a 5xx, an `ok: false` error, or a
connection dropped without an answer, in the order queued; then normal answers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["BOT_ID", "BOT_USER", "TEAM", "Call", "Failure", "FakeSlack"]

TEAM = "T0TEAM"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
WAIT = 5.0


@dataclass(frozen=True)
class Call:
    """One request the fake received: a Web API method, a response_url post or a socket ack."""

    method: str
    args: dict[str, Any]
    token: str = ""
    #: when it arrived (time.monotonic)
    at: float = field(default_factory=time.monotonic, compare=False)

    def __getitem__(self, key: str) -> Any:
        return self.args[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)


@dataclass(frozen=True)
class Failure:
    """One injected failure: an HTTP status (429 with `retry_after`, 5xx), Slack's
    `ok: false` with `error` (HTTP 200, as Slack sends it), or `drop`: the connection is
    closed with no answer at all."""

    status: int = 200
    error: str = ""
    retry_after: int | None = None
    drop: bool = False

    def response(self, request: web.Request) -> web.StreamResponse | None:
        if self.drop:
            assert request.transport is not None
            request.transport.close()
            return None
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        if self.status == 200:
            return web.json_response({"ok": False, "error": self.error}, headers=headers)
        reason = self.error or ("ratelimited" if self.status == 429 else "server_error")
        return web.json_response({"ok": False, "error": reason}, status=self.status,
                                 headers=headers)


@dataclass
class FakeSlack:
    bot_token: str = "xoxb-fake-bot-token"
    app_token: str = "xapp-fake-app-token"
    #: users.info answers: user id -> fields such as is_admin, is_owner
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: channels the bot is not a member of (chat.postMessage fails with not_in_channel)
    closed_channels: set[str] = field(default_factory=set)
    #: channels that do not exist for the bot (chat.postMessage, chat.postEphemeral:
    #: channel_not_found)
    missing_channels: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = asyncio.Condition()
        #: chat.postMessage waits for this (set: no wait); clear it to hold answers in flight
        self.open = asyncio.Event()
        self.open.set()
        self._ts = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self._failures: dict[str, deque[Failure]] = {}
        self.base = ""

    def fail(self, method: str, *failures: Failure) -> None:
        """The next calls of `method` ("chat.postMessage", or "response_url" for any
        response URL) get `failures`, one each, in order."""
        self._failures.setdefault(method, deque()).extend(failures)

    def _injected(self, method: str, request: web.Request) -> web.StreamResponse | None:
        """The failure queued for this call, if any; raises nothing for a dropped one."""
        queued = self._failures.get(method)
        if not queued:
            return None
        return queued.popleft().response(request) or web.Response(status=204)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.add_routes([
            web.route("*", "/api/{method}", self._api),
            web.post("/response/{key}", self._response_url),
            web.get("/socket", self._socket),
        ])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.base}/response/{key}"

    # ------------------------------------------------------------------ recording

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_until(self, ready: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(ready)

    async def wait_for(self, method: str, count: int = 1, timeout: float = WAIT) -> list[Call]:
        """The calls of `method` once there are at least `count` of them."""
        await self.wait_until(lambda: len(self.of(method)) >= count, timeout)
        return self.of(method)

    async def responses(self, key: str, count: int = 1, timeout: float = WAIT) -> list[Call]:
        """What the app posted to the response_url `key`, once there are `count` posts."""
        def posts() -> list[Call]:
            return [c for c in self.of("response_url") if c["key"] == key]
        await self.wait_until(lambda: len(posts()) >= count, timeout)
        return posts()

    # ------------------------------------------------------------------ Web API

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(await request.post())
        for key in ("blocks", "attachments", "view"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        await self._record(Call(method, args, token))
        if (failed := self._injected(method, request)) is not None:
            return failed
        if method == "chat.postMessage":
            await self.open.wait()
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(self._answer(method, args))

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ts = f"1700000000.{next(self._ts):06d}"
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": BOT_ID, "team_id": TEAM,
                    "user": "careerbot", "team": "Fake Workspace", "url": f"{self.base}/"}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            if args.get("channel") in self.missing_channels:
                return {"ok": False, "error": "channel_not_found"}
            if args.get("channel") in self.closed_channels and method == "chat.postMessage":
                return {"ok": False, "error": "not_in_channel"}
        if method == "chat.postMessage":
            channel = str(args.get("channel"))
            if channel[:1] in ("U", "W"):  # a user id: the app's DM with them
                channel = "D" + channel[1:]
            return {"ok": True, "channel": channel, "ts": ts,
                    "message": {"text": args.get("text"), "ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "users.info":
            user = {"id": args.get("user"), "is_admin": False, "is_owner": False}
            return {"ok": True, "user": user | self.users.get(str(args.get("user")), {})}
        if method in ("reactions.add", "reactions.remove"):
            return {"ok": True}
        if method == "views.publish":
            view = args.get("view") or {}
            return {"ok": True, "view": {"id": "V0HOME", "type": view.get("type"),
                                         "blocks": view.get("blocks", [])}}
        if method.startswith("assistant.threads."):
            return self._assistant(method, args)
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws{self.base.removeprefix('http')}/socket"}
        return {"ok": False, "error": "unknown_method"}

    def _assistant(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """assistant.threads.setStatus, setSuggestedPrompts and setTitle, with the
        arguments Slack requires (https://docs.slack.dev/reference/methods): a channel
        and thread, and the status (may be empty: it clears), the prompts ("up to four",
        each a title and a message) or the title."""
        wanted = {"assistant.threads.setStatus": "status",
                  "assistant.threads.setSuggestedPrompts": "prompts",
                  "assistant.threads.setTitle": "title"}.get(method)
        if wanted is None:
            return {"ok": False, "error": "unknown_method"}
        if not args.get("channel_id") or not args.get("thread_ts") or wanted not in args:
            return {"ok": False, "error": "invalid_arguments"}
        if args.get("channel_id") in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        if wanted == "prompts":
            given = args["prompts"]
            if isinstance(given, str):
                given = json.loads(given)
            if not (isinstance(given, list) and 0 < len(given) <= 4 and all(
                    isinstance(p, dict) and p.get("title") and p.get("message")
                    for p in given)):
                return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        await self._record(Call("response_url", await request.json()
                                | {"key": request.match_info["key"]}))
        if (failed := self._injected("response_url", request)) is not None:
            return failed
        return web.Response(text="ok")

    # ------------------------------------------------------------------ Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0APP"}})
        await self._record(Call("socket.connect", {}))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await self._record(Call("socket.ack", json.loads(message.data)))
        return ws

    async def push(self, envelope: dict[str, Any], timeout: float = WAIT) -> Call:
        """Send an envelope down the newest socket and return the app's ack of it."""
        await self.wait_for("socket.connect", timeout=timeout)
        await self._sockets[-1].send_json(envelope)

        def acks() -> list[Call]:
            return [c for c in self.of("socket.ack")
                    if c.get("envelope_id") == envelope["envelope_id"]]
        await self.wait_until(lambda: bool(acks()), timeout)
        return acks()[0]
