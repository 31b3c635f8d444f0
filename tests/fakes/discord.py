"""A local Discord for tests: REST and gateway on loopback, ephemeral ports.

The real discord.py client logs in here (`/users/@me`, `/oauth2/applications/@me`),
connects to the gateway websocket (HELLO, IDENTIFY, heartbeats, READY,
GUILD_CREATE, zlib-stream compressed when asked), receives the events a test
dispatches and sends its answers back over REST, where every request is recorded.

    async with FakeDiscord(token) as discord:
        ...  # point the client at discord.api_url / discord.gateway_url
        await discord.wait_ready()
        callback = await discord.interact(discord.slash("ask", question="..."))

Failures to inject: `fail("callback", Failure(404, 10062))` answers the next interaction
callback as Discord does one that came too late (any route, by its handler's name);
`close_gateway(4004)` closes the gateway with a code, `close_gateway(4000)` drops it (the
client resumes; `resumes` holds RESUMEs back until set), and while `refuse` is set the
gateway answers 503 instead of upgrading, as during an outage.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["Failure", "FakeDiscord", "Request"]

API = "/api/v10"
EPHEMERAL = 1 << 6
#: permission bits, as Discord numbers them
VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS = 1 << 10, 1 << 11, 1 << 14
READ_MESSAGE_HISTORY, SEND_MESSAGES_IN_THREADS = 1 << 16, 1 << 38
#: what the bot may do in the test channel: what its invite link asks for
BOT_PERMISSIONS = (VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY
                   | SEND_MESSAGES_IN_THREADS | 1 << 6)  # 1 << 6: add reactions
_TIMESTAMP = "2025-01-01T00:00:00+00:00"
Json = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One REST call the client made; `message` is what it created, if anything."""

    method: str
    path: str  # below the API base: "/channels/1/messages"
    query: dict[str, str]
    body: Any  # the JSON body, or None
    authorization: str | None
    message: Json | None = None


@dataclass(frozen=True)
class Failure:
    """An injected REST failure: Discord's status and error (10062 Unknown interaction:
    the interaction was not answered in time, or no longer exists)."""

    status: int = 404
    code: int = 10062
    message: str = "Unknown interaction"


class _Refused(Exception):
    """An error answer from a route handler: Discord's status and JSON error body."""

    def __init__(self, status: int, payload: Json):
        super().__init__(status)
        self.status, self.payload = status, payload


class _Session:
    """One gateway connection: sends are serialised so the zlib stream stays in order."""

    def __init__(self, ws: web.WebSocketResponse, compress: bool):
        self.ws = ws
        self.zlib = zlib.compressobj() if compress else None
        self.seq = 0
        self.shard = (0, 1)
        self._lock = asyncio.Lock()

    async def send(self, payload: Json) -> None:
        async with self._lock:
            if payload["op"] == 0:
                self.seq += 1
                payload = {**payload, "s": self.seq}
            raw = json.dumps(payload)
            if self.zlib is None:
                await self.ws.send_str(raw)
            else:
                data = self.zlib.compress(raw.encode()) + self.zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)


def user(id: int, name: str, *, bot: bool = False) -> Json:
    return {"id": str(id), "username": name, "global_name": name, "discriminator": "0",
            "avatar": None, "bot": bot}


class FakeDiscord:
    """The Discord API and gateway, as much of them as careerbot uses."""

    APP_ID = 910000000000000001
    BOT_ID = 910000000000000002
    GUILD_ID = 910000000000000003
    CHANNEL_ID = 910000000000000004
    DM_CHANNEL_ID = 910000000000000005
    ADMIN_ROLE_ID = 910000000000000006
    USER_ID = 910000000000000010
    ADMIN_ID = 910000000000000011
    OTHER_BOT_ID = 910000000000000012
    THREAD_ID = 910000000000000013  # a thread of CHANNEL_ID, active since the server loaded
    NO_EMBEDS_CHANNEL_ID = 910000000000000014  # a channel denying everyone Embed Links
    BOT_ROLE_ID = 910000000000000015  # the bot's own role, made and managed by Discord

    def __init__(self, token: str):
        self.token = token
        self.requests: list[Request] = []
        #: the application's commands as registered: global (None) and per server
        self.commands: dict[int | None, list[Json]] = {}
        self.identifies: list[Json] = []
        self.heartbeats = 0
        self.compression: list[str | None] = []  # what each gateway connection asked for
        self.resumed: list[Json] = []  # RESUME payloads received (answered or held)
        self.refused = 0  # gateway connections refused while `refuse` is set
        #: RESUMEs are answered (RESUMED) while this is set; clear it to hold them back
        self.resumes = asyncio.Event()
        self.resumes.set()
        #: while set, the gateway refuses connections (HTTP 503), as in an outage
        self.refuse = False
        self._failures: dict[str, deque[Failure]] = {}
        self.bot = user(self.BOT_ID, "careerbot", bot=True)
        self._ids = itertools.count(920000000000000000)
        self._sessions: dict[int, _Session] = {}
        self._dm_tokens: set[str] = set()
        #: per interaction token: its id, type, command name and user (for the messages
        #: answering it, whose interaction_metadata says who used it)
        self._askers: dict[str, tuple[int, int, str | None, Json]] = {}
        self._messages: dict[str, Json] = {}  # every message the bot or a test created
        self._shard_count = 1
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern[str], bool, Callable[..., Any]]] = [
            (method, re.compile(pattern), auth, handler) for method, pattern, auth, handler in (
                ("GET", r"/users/@me", True, self._me),
                ("GET", r"/oauth2/applications/@me", True, self._application),
                ("GET", r"/gateway/bot", True, self._gateway_bot),
                ("GET", r"/users/@me/guilds", True, self._guilds),
                ("PUT", r"/applications/(?P<app>\d+)(/guilds/(?P<guild>\d+))?/commands", True,
                 self._sync_commands),
                ("GET", r"/applications/(?P<app>\d+)(/guilds/(?P<guild>\d+))?/commands", True,
                 self._fetch_commands),
                ("POST", r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", False,
                 self._callback),
                ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", False, self._followup),
                ("PATCH", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<id>[^/]+)",
                 False, self._followup),
                ("POST", r"/channels/(?P<channel>\d+)/messages", True, self._channel_message),
                ("PUT", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/reactions/"
                 r"(?P<emoji>[^/]+)/@me", True, self._reaction),
            )]

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API + "/{path:.*}", self._api)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for session in self._sessions.values():
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ failures

    def fail(self, route: str, *failures: Failure) -> None:
        """The next calls of `route` get `failures`, one each, in order. Routes are named
        by their handler: "callback" (interaction responses), "followup" (webhook posts
        and edits), "channel_message", "me", ..."""
        self._failures.setdefault(route, deque()).extend(failures)

    async def close_gateway(self, code: int, shard: int = 0) -> None:
        """Close `shard`'s gateway connection with `code`: 4004 (authentication failed),
        4013/4014 (intents), or one the client resumes after, such as 4000."""
        session = self._sessions.pop(shard)
        await session.ws.close(code=code, message=b"closed by the test")

    async def wait_resumed(self, count: int = 1, timeout: float = 5.0) -> None:
        """Until `count` RESUMEs have arrived (answered or held back)."""
        await self._until(lambda: len(self.resumed) >= count, timeout)

    async def wait_refused(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` connections have been refused while `refuse` was set."""
        await self._until(lambda: self.refused >= count, timeout)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[Request], bool],
                       timeout: float = 5.0) -> Request:
        """The first recorded request matching `predicate`, waiting for it if need be."""
        await self._until(lambda: any(map(predicate, self.requests)), timeout)
        return next(r for r in self.requests if predicate(r))

    async def wait_for_all(self, predicate: Callable[[Request], bool], count: int,
                           timeout: float = 5.0) -> list[Request]:
        """The first `count` recorded requests matching `predicate`, waiting if need be."""
        await self._until(lambda: sum(map(predicate, self.requests)) >= count, timeout)
        return [r for r in self.requests if predicate(r)][:count]

    async def wait_ready(self, shards: int = 1, timeout: float = 5.0) -> None:
        """Until `shards` connections have identified and been sent READY."""
        await self._until(lambda: len(self._sessions) >= shards, timeout)

    async def _until(self, condition: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ driving the client

    async def dispatch(self, event: str, data: Json) -> None:
        """Send an event on the connection of the shard its server belongs to (DMs: shard 0)."""
        count = next(iter(self._sessions.values())).shard[1]  # any shard knows the count
        shard = (int(data["guild_id"]) >> 22) % count if "guild_id" in data else 0
        await self._sessions[shard].send({"op": 0, "t": event, "d": data})

    async def interact(self, interaction: Json, timeout: float = 3.0) -> Request:
        """Dispatch INTERACTION_CREATE and return the client's callback (its response).

        The default timeout is Discord's: an interaction not answered in 3 s has failed.
        """
        await self.dispatch("INTERACTION_CREATE", interaction)
        path = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
        return await self.wait_for(lambda r: r.path == path, timeout)

    async def followups(self, interaction: Json, count: int,
                        timeout: float = 5.0) -> list[Request]:
        """The first `count` follow-up messages sent for `interaction`."""
        path = f"/webhooks/{self.APP_ID}/{interaction['token']}"

        def sent() -> list[Request]:
            return [r for r in self.requests if r.path == path]
        await self._until(lambda: len(sent()) >= count, timeout)
        return sent()[:count]

    async def post_message(self, message: Json, timeout: float = 5.0) -> Request:
        """Dispatch MESSAGE_CREATE and return the client's reply to it."""
        await self.dispatch("MESSAGE_CREATE", message)
        return await self.wait_for(lambda r: _replies_to(r, message["id"]), timeout)

    def replies_to(self, message: Json) -> list[Request]:
        return [r for r in self.requests if _replies_to(r, message["id"])]

    # ------------------------------------------------------------------ event payloads

    def slash(self, name: str, *, user_id: int | None = None, roles: Iterable[int] = (),
              dm: bool = False, **options: str | bool) -> Json:
        """A slash command used with `options` (a bool is a boolean option, type 5)."""
        data = {"id": str(next(self._ids)), "name": name, "type": 1,
                "options": [{"name": k, "type": 5 if isinstance(v, bool) else 3, "value": v}
                            for k, v in options.items()]}
        return self._interaction(2, data, user_id=user_id, roles=roles, dm=dm)

    def autocomplete(self, name: str, option: str, typed: str) -> Json:
        data = {"id": str(next(self._ids)), "name": name, "type": 1,
                "options": [{"name": option, "type": 3, "value": typed, "focused": True}]}
        return self._interaction(4, data)

    def message_command(self, target: Json, *, name: str = "Ask careerbot",
                        user_id: int | None = None, **how: Any) -> Json:
        """A message context-menu command used on `target` (a `message()` payload)."""
        data = {"id": str(next(self._ids)), "name": name, "type": 3,
                "target_id": target["id"], "resolved": {"messages": {target["id"]: target}}}
        return self._interaction(2, data, user_id=user_id,
                                 dm=target["channel_id"] == str(self.DM_CHANNEL_ID), **how)

    def press(self, response: Request, custom_id: str, *, user_id: int | None = None) -> Json:
        """A button press on the message the client created with `response`."""
        message = response.message
        assert message is not None, f"{response.path} created no message"
        data = {"custom_id": custom_id, "component_type": 2}
        return self._interaction(3, data, user_id=user_id, message=message,
                                 dm=message["channel_id"] == str(self.DM_CHANNEL_ID))

    def message(self, text: str, *, author_id: int | None = None, bot: bool = False,
                dm: bool = False, mention: bool = True, channel_id: int | None = None,
                role: int | None = None) -> Json:
        """A message from a user: in the server channel (or `channel_id`, such as
        THREAD_ID) mentioning the bot, or a DM."""
        author = user(author_id or self.USER_ID, "asker", bot=bot)
        payload: Json = {
            "id": str(next(self._ids)), "type": 0, "author": author, "tts": False,
            "content": f"<@{self.BOT_ID}> {text}" if mention and not dm else text,
            "channel_id": str(self.DM_CHANNEL_ID if dm else channel_id or self.CHANNEL_ID),
            "timestamp": _TIMESTAMP, "edited_timestamp": None, "mention_everyone": False,
            "mentions": [self.bot] if mention and not dm else [], "mention_roles": [],
            "attachments": [], "embeds": [], "components": [], "pinned": False, "flags": 0,
        }
        if role is not None:  # a role mention in place of the bot's
            payload |= {"content": f"<@&{role}> {text}", "mentions": [],
                        "mention_roles": [str(role)]}
        if not dm:
            payload["guild_id"] = str(self.GUILD_ID)
            payload["member"] = self._member([])
        self._messages[payload["id"]] = payload
        return payload

    def _interaction(self, kind: int, data: Json, *, user_id: int | None = None,
                     roles: Iterable[int] = (), dm: bool = False,
                     message: Json | None = None, user_install: bool = False,
                     app_permissions: int = BOT_PERMISSIONS) -> Json:
        """`user_install`: the app is installed by the user, not in the server (Discord
        then tells the app what it may do there as a user's app, not as a member)."""
        iid = next(self._ids)
        who = user(user_id or self.USER_ID, "asker")
        owners = ({"1": who["id"]} if user_install else
                  {"0": "0" if dm else str(self.GUILD_ID)})
        payload: Json = {
            "id": str(iid), "application_id": str(self.APP_ID), "type": kind, "data": data,
            "token": f"interaction-token-{iid}", "version": 1, "locale": "en-US",
            "app_permissions": str(app_permissions), "entitlements": [],
            "attachment_size_limit": 10 << 20, "authorizing_integration_owners": owners,
        }
        self._askers[payload["token"]] = (iid, kind, data.get("name"), who)
        if dm:
            self._dm_tokens.add(payload["token"])
            payload |= {"user": who, "context": 1, "channel_id": str(self.DM_CHANNEL_ID),
                        "channel": {"id": str(self.DM_CHANNEL_ID), "type": 1,
                                    "recipients": [who]}}
        else:
            payload |= {"guild_id": str(self.GUILD_ID), "guild_locale": "en-US", "context": 0,
                        "member": self._member(roles, who),
                        "channel_id": str(self.CHANNEL_ID), "channel": self._channel()}
        if message is not None:
            payload["message"] = message
        return payload

    def _member(self, roles: Iterable[int], who: Json | None = None) -> Json:
        member: Json = {"roles": [str(r) for r in roles], "joined_at": _TIMESTAMP,
                        "deaf": False, "mute": False, "flags": 0, "permissions": "0"}
        if who is not None:
            member["user"] = who
        return member

    def _channel(self, id: int | None = None) -> Json:
        channel: Json = {"id": str(id or self.CHANNEL_ID), "type": 0,
                         "guild_id": str(self.GUILD_ID), "name": "general", "position": 0,
                         "permission_overwrites": [], "nsfw": False}
        if id == self.NO_EMBEDS_CHANNEL_ID:
            channel |= {"name": "no-embeds", "permission_overwrites": [
                {"id": str(self.GUILD_ID), "type": 0, "allow": "0", "deny": str(EMBED_LINKS)}]}
        return channel

    def thread(self) -> Json:
        return {"id": str(self.THREAD_ID), "type": 11, "guild_id": str(self.GUILD_ID),
                "parent_id": str(self.CHANNEL_ID), "name": "careers", "owner_id":
                str(self.USER_ID), "message_count": 1, "member_count": 1,
                "rate_limit_per_user": 0, "flags": 0, "last_message_id": None,
                "thread_metadata": {"archived": False, "auto_archive_duration": 1440,
                                    "archive_timestamp": _TIMESTAMP, "locked": False}}

    def _guild(self) -> Json:
        def role(id: int, name: str, permissions: int = 0, **more: Any) -> Json:
            return {"id": str(id), "name": name, "color": 0, "hoist": False, "position": 0,
                    "permissions": str(permissions), "managed": False, "mentionable": False,
                    "flags": 0, **more}
        # the bot's own member comes with the server, as Discord sends it without any intent
        me = {**self._member([self.BOT_ROLE_ID]), "user": self.bot}
        return {
            "id": str(self.GUILD_ID), "name": "careerbot tests", "icon": None,
            "owner_id": str(self.ADMIN_ID), "unavailable": False, "large": False,
            "member_count": 3, "members": [me], "presences": [], "voice_states": [],
            "roles": [role(self.GUILD_ID, "@everyone", BOT_PERMISSIONS),
                      role(self.ADMIN_ROLE_ID, "admins"),
                      role(self.BOT_ROLE_ID, "careerbot", managed=True,
                           tags={"bot_id": str(self.BOT_ID)})],
            "channels": [self._channel(), self._channel(self.NO_EMBEDS_CHANNEL_ID)],
            "threads": [self.thread()], "emojis": [], "stickers": [],
            "features": [], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": [], "preferred_locale": "en-US", "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "premium_tier": 0,
            "system_channel_flags": 0,
        }

    def _created(self, channel_id: int | str, body: Json, *, flags: int = 0,
                 token: str | None = None) -> Json:
        """The message Discord would create from a send body: a reply carries the message
        it replies to, an interaction's answer who used the interaction."""
        message: Json = {
            "id": str(next(self._ids)), "type": 0, "channel_id": str(channel_id),
            "author": self.bot, "content": body.get("content") or "", "tts": False,
            "timestamp": _TIMESTAMP, "edited_timestamp": None, "mention_everyone": False,
            "mentions": [], "mention_roles": [], "attachments": [], "pinned": False,
            "embeds": body.get("embeds") or [], "components": body.get("components") or [],
            "flags": (body.get("flags") or 0) | flags,
        }
        reference = body.get("message_reference")
        if reference:
            message |= {"type": 19, "message_reference": {**reference,
                                                          "channel_id": str(channel_id)},
                        "referenced_message": self._messages.get(str(reference["message_id"]))}
        if token in self._askers:
            iid, kind, name, who = self._askers[token]
            message["interaction_metadata"] = {
                "id": str(iid), "type": kind, "user": who,
                "authorizing_integration_owners": {"0": str(self.GUILD_ID)},
                **({"name": name} if name else {})}
        self._messages[message["id"]] = message
        return message

    # ------------------------------------------------------------------ REST

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        body = await request.json() if request.body_exists else None
        status, payload, created = 404, {"message": "404: Not Found", "code": 0}, None
        for method, pattern, auth, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None or method != request.method:
                continue
            queued = self._failures.get(handler.__name__.lstrip("_"))
            if auth and request.headers.get("Authorization") != f"Bot {self.token}":
                status, payload = 401, {"message": "401: Unauthorized", "code": 0}
            elif queued:
                failure = queued.popleft()
                status, payload = failure.status, {"message": failure.message,
                                                   "code": failure.code}
            else:
                try:
                    status = 200
                    payload, created = handler(body, **match.groupdict())
                except _Refused as refused:
                    status, payload = refused.status, refused.payload
            break
        self.requests.append(Request(request.method, path, dict(request.query), body,
                                     request.headers.get("Authorization"), created))
        await self._notify()
        # discord.py parses JSON only when Content-Type is exactly application/json
        return web.Response(status=status, body=json.dumps(payload).encode(),
                            headers={"Content-Type": "application/json"})

    def _me(self, body: None) -> tuple[Json, None]:
        return self.bot, None

    def _application(self, body: None) -> tuple[Json, None]:
        return {"id": str(self.APP_ID), "name": "careerbot", "description": "", "icon": None,
                "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                "owner": user(self.ADMIN_ID, "owner"), "flags": 0, "team": None,
                "interactions_endpoint_url": None}, None

    def _guilds(self, body: None) -> tuple[list[Json], None]:
        return [{"id": str(self.GUILD_ID), "name": "careerbot tests", "icon": None,
                 "owner": False, "permissions": str(BOT_PERMISSIONS), "features": []}], None

    def _gateway_bot(self, body: None) -> tuple[Json, None]:
        return {"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}}, None

    def _sync_commands(self, body: list[Json], app: str, guild: str | None
                       ) -> tuple[list[Json], None]:
        if guild not in (None, str(self.GUILD_ID)):
            raise _Refused(403, {"message": "Missing Access", "code": 50001})
        synced = [{"type": 1, "description": "", "options": [],
                   "default_member_permissions": None, **command,
                   "id": str(next(self._ids)), "application_id": app, "version": "1",
                   **({"guild_id": guild} if guild else {})} for command in body]
        self.commands[int(guild) if guild else None] = synced
        return synced, None

    def _fetch_commands(self, body: None, app: str, guild: str | None
                        ) -> tuple[list[Json], None]:
        if guild not in (None, str(self.GUILD_ID)):
            raise _Refused(403, {"message": "Missing Access", "code": 50001})
        return self.commands.get(int(guild) if guild else None, []), None

    def _callback(self, body: Json, id: str, token: str) -> tuple[Json, Json | None]:
        kind, data = body["type"], body.get("data") or {}
        answer: Json = {"interaction": {"id": id, "type": 2}}
        if kind not in (4, 5, 7):  # autocomplete results, deferred updates, ...
            return answer, None
        channel = self.DM_CHANNEL_ID if self._dm_token(token) else self.CHANNEL_ID
        message = self._created(channel, data, token=token)
        answer["interaction"] |= {"response_message_id": message["id"],
                                  "response_message_loading": kind == 5,
                                  "response_message_ephemeral": bool(message["flags"]
                                                                      & EPHEMERAL)}
        answer["resource"] = {"type": kind, "message": message}
        return answer, message

    def _followup(self, body: Json, app: str, token: str, id: str = ""
                  ) -> tuple[Json, Json]:
        channel = self.DM_CHANNEL_ID if self._dm_token(token) else self.CHANNEL_ID
        message = self._created(channel, body, token=token)
        return message, message

    def _channel_message(self, body: Json, channel: str) -> tuple[Json, Json]:
        message = self._created(channel, body)
        return message, message

    def _reaction(self, body: None, channel: str, message: str, emoji: str
                  ) -> tuple[None, None]:
        return None, None

    def _dm_token(self, token: str) -> bool:
        return token in self._dm_tokens

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.refuse:
            self.refused += 1
            await self._notify()
            return web.Response(status=503, text="gateway unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        compress = request.query.get("compress")
        self.compression.append(compress)
        if compress not in (None, "zlib-stream"):
            await ws.close(code=4000, message=b"unsupported compression")
            return ws
        session = _Session(ws, compress=compress is not None)
        await session.send({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            packet = json.loads(frame.data)
            if packet["op"] == 1:
                self.heartbeats += 1
                await session.send({"op": 11})
            elif packet["op"] == 2:
                await self._identify(session, packet["d"])
            elif packet["op"] == 6:
                await self._resume(session, packet["d"])
        # the client went away: a test's next wait_ready waits for the next connection
        for shard, known in list(self._sessions.items()):
            if known is session:
                del self._sessions[shard]
        return ws

    async def _resume(self, session: _Session, resume: Json) -> None:
        """RESUMED on the session named (its shard's), once `resumes` lets it through."""
        self.resumed.append(resume)
        await self._notify()
        await self.resumes.wait()
        shard = int(resume["session_id"].removeprefix("session-"))
        session.shard = (shard, self._shard_count)
        session.seq = int(resume.get("seq") or 0)
        await session.send({"op": 0, "t": "RESUMED", "d": {}})
        self._sessions[shard] = session
        await self._notify()

    async def _identify(self, session: _Session, identify: Json) -> None:
        self.identifies.append(identify)
        shard_id, count = identify.get("shard", [0, 1])
        session.shard = (shard_id, count)
        self._shard_count = count
        ready: Json = {
            "v": 10, "user": self.bot, "session_id": f"session-{shard_id}",
            "resume_gateway_url": self.gateway_url,
            "guilds": [{"id": str(self.GUILD_ID), "unavailable": True}],
            "application": {"id": str(self.APP_ID), "flags": 0},
        }
        if "shard" in identify:
            ready["shard"] = [shard_id, count]
        await session.send({"op": 0, "t": "READY", "d": ready})
        if (self.GUILD_ID >> 22) % count == shard_id:
            await session.send({"op": 0, "t": "GUILD_CREATE", "d": self._guild()})
        self._sessions[shard_id] = session
        await self._notify()


def _replies_to(request: Request, message_id: str) -> bool:
    body = request.body if isinstance(request.body, dict) else {}
    reference = body.get("message_reference") or {}
    return str(reference.get("message_id")) == message_id
