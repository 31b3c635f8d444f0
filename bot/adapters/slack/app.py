"""careerbot on Slack: slack-bolt's AsyncApp wired around `Engine.answer(Query) -> Reply`.

Socket Mode when SLACK_APP_TOKEN is set; otherwise HTTP mode, with Slack's
requests on POST /slack/events (signature checked by bolt) and GET /healthz.
Every handler acks first (bolt acks events itself), then answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import ClientError, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.errors import ConfigurationError
from bot.adapters.slack.render import (
    FEEDBACK,
    FOLLOWUP,
    PICK_ASPECT,
    SHARE,
    SlackMessage,
    notice,
    render,
)
from bot.core import Engine, Query, Reply
from bot.core.models import Role
from bot.core.ratelimit import RateLimiter
from bot.settings import Settings

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "build_app", "run_slack", "start_http"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
_UNREACHABLE = ("not_in_channel", "channel_not_found")

Body = dict[str, Any]


class _Recent:
    """The last `size` keys seen; `add` says whether a key is new."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _question(text: str, bot_user_id: str | None) -> str:
    """What the user asked: the bot's own mention dropped, Slack's escaping undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return _unescape(text).strip()


def _conversation(*parts: str | None) -> str:
    """Follow-up context key: team:channel:thread (or team:channel:user for slash commands)."""
    return ":".join(p for p in parts if p)


def _is_dm(channel: str) -> bool:
    return channel.startswith("D")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Careerbot:
    """The listeners. Each acks first, asks the engine, then sends what `render` made."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.seen = _Recent()

    def register(self, app: AsyncApp) -> None:
        app.middleware(self.dedupe)
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.command(self.settings.slack_command)(self.on_command)
        app.action(SHARE)(self.on_share)
        app.action(re.compile(rf"^{FOLLOWUP}_\d+$"))(self.on_followup)
        app.action(re.compile(rf"^{FEEDBACK}_"))(self.on_feedback)
        app.action(PICK_ASPECT)(self.on_pick_aspect)

    def _render(self, reply: Reply, *, share: str | None = None,
                aspects: list[str] | None = None) -> SlackMessage:
        return render(reply, command=self.settings.slack_command, share=share,
                      aspects=aspects or ())

    # ------------------------------------------------------------------ middleware

    async def dedupe(self, body: Body, request: AsyncBoltRequest,
                     next_: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """Slack retries events it thinks were missed: answer each event id once."""
        event_id = body.get("event_id")
        if event_id and not self.seen.add(event_id):
            retry = request.headers.get("x-slack-retry-num", ["?"])[0]
            log.info("event %s already handled; ignoring Slack's retry %s", event_id, retry)
            return BoltResponse(status=200, body="")
        await next_()
        return None

    # ------------------------------------------------------------------ questions

    def _slow_down(self, team: str, user: str) -> str | None:
        """The per-user rate limit: None to go ahead, else what to tell the asker."""
        key = f"{team}:{user}"
        if self.limiter.allow(key):
            return None
        wait = math.ceil(self.limiter.retry_after(key)) or 1
        return f"Slow down a little, please: you can ask again in {wait} seconds."

    def _answer(self, text: str, user: str, conversation: str) -> Reply:
        return self.engine.answer(Query(text=text, conversation=conversation, user=user,
                                        platform="slack"))

    async def on_mention(self, event: Body, context: AsyncBoltContext,
                         client: AsyncWebClient) -> None:
        await self._reply_to(event, context, client, thread=event.get("thread_ts") or event["ts"])

    async def on_message(self, event: Body, context: AsyncBoltContext,
                         client: AsyncWebClient) -> None:
        if event.get("channel_type") == "im" and not event.get("subtype"):
            await self._reply_to(event, context, client, thread=event.get("thread_ts"))

    async def _reply_to(self, event: Body, context: AsyncBoltContext, client: AsyncWebClient,
                        thread: str | None) -> None:
        if event.get("bot_id") or not event.get("user"):  # bots, this one included
            return
        team, channel, user = context.team_id or "", event["channel"], event["user"]
        text = _question(event.get("text") or "", context.bot_user_id)
        if refusal := self._slow_down(team, user):
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread,
                                            **notice(refusal))
            return
        reply = self._answer(text, user, _conversation(team, channel, thread))
        await client.chat_postMessage(channel=channel, thread_ts=thread, **self._render(reply))

    # ------------------------------------------------------------------ /careerbot

    async def on_command(self, ack: AsyncAck, command: Body, respond: AsyncRespond,
                         client: AsyncWebClient) -> None:
        await ack()
        team, channel, user = command.get("team_id", ""), command["channel_id"], command["user_id"]
        text = _unescape(command.get("text") or "").strip()
        word, _, rest = text.partition(" ")
        if text.lower() in ("", "help"):
            message = self._render(self.engine.help())
        elif text.lower() == "topics":
            message = self._render(self.engine.topics())
        elif text.lower() == "reload":
            message = await self._reload(client, team, user)
        elif word.lower() == "compare":
            message = self._compare(rest)
        elif refusal := self._slow_down(team, user):
            message = notice(refusal)
        else:
            reply = self._answer(text, user, _conversation(team, channel, user))
            message = self._render(reply, share=_share_value(reply))
        await respond(response_type="ephemeral", **message)

    def _compare(self, aspect: str) -> SlackMessage:
        reply = self.engine.compare(aspect)
        if reply.comparison is None:  # none or unknown: the picker and a "did you mean"
            return self._render(reply, aspects=self.engine.aspects())
        return self._render(reply, share=f"compare:{reply.comparison.aspect}")

    async def _reload(self, client: AsyncWebClient, team: str, user: str) -> SlackMessage:
        who = f"user {user} (team {team}) at {_now()}"
        if not await self._is_admin(client, user):
            log.warning("knowledge reload by %s refused: not an admin", who)
            return notice("Sorry, only careerbot's admins can reload its knowledge.")
        report = self.engine.reload()
        log.log(logging.INFO if report.ok else logging.WARNING, "knowledge reload by %s: %s",
                who, report.summary())
        title = "Knowledge reloaded" if report.ok else "Knowledge not reloaded"
        return self._render(Reply(title=title, text=report.summary(), kind="notice"))

    async def _is_admin(self, client: AsyncWebClient, user: str) -> bool:
        if user in self.settings.slack_admin_ids:
            return True
        if not self.settings.slack_workspace_admins_are_admins:
            return False
        try:
            info = await client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", user, exc.response.get("error"))
            return False
        profile = info.get("user") or {}
        return bool(profile.get("is_admin") or profile.get("is_owner"))

    # ------------------------------------------------------------------ buttons

    def _topic_reply(self, value: str) -> Reply | None:
        """A follow-up's "topic:role"; None when a reload removed the topic."""
        topic, _, role = value.partition(":")
        if topic not in self.engine.knowledge.topics:
            return None
        return self.engine.topic_reply(topic, cast(Role, role or "both"))

    def _rebuild(self, share: str) -> Reply | None:
        kind, _, rest = share.partition(":")
        if kind == "compare":
            reply = self.engine.compare(rest)
            return reply if reply.comparison else None
        return self._topic_reply(rest) if kind == "answer" else None

    async def on_share(self, ack: AsyncAck, action: Body, body: Body,
                       respond: AsyncRespond) -> None:
        await ack()
        reply = self._rebuild(action.get("value", ""))
        if reply is None:
            await respond(replace_original=False, **notice(
                "That answer has changed since; please ask again."))
            return
        await respond(response_type="in_channel", replace_original=False, **self._render(reply))
        await respond(delete_original=True)
        log.info("answer %s shared by %s in %s", action.get("value"), body["user"]["id"],
                 body.get("channel", {}).get("id"))

    async def on_followup(self, ack: AsyncAck, action: Body, body: Body, respond: AsyncRespond,
                          client: AsyncWebClient) -> None:
        await ack()
        reply = self._topic_reply(action.get("value", ""))
        if reply is None:
            await respond(replace_original=False, **notice(
                "I no longer have that topic; please ask again."))
            return
        team, user = body["team"]["id"], body["user"]["id"]
        container = body.get("container", {})
        channel = container.get("channel_id") or body["channel"]["id"]
        if container.get("is_ephemeral"):  # under a /careerbot answer: stay private
            self._remember(reply, _conversation(team, channel, user))
            await respond(response_type="ephemeral", replace_original=False,
                          **self._render(reply, share=_share_value(reply)))
            return
        message = body.get("message", {})
        thread = message.get("thread_ts") or (None if _is_dm(channel) else message.get("ts"))
        self._remember(reply, _conversation(team, channel, thread))
        try:
            await client.chat_postMessage(channel=channel, thread_ts=thread, **self._render(reply))
        except SlackApiError as exc:  # a shared answer in a channel the bot is not in
            if exc.response.get("error") not in _UNREACHABLE:
                raise
            await respond(response_type="ephemeral", replace_original=False,
                          **self._render(reply))

    def _remember(self, reply: Reply, conversation: str) -> None:
        if reply.kind == "answer" and reply.topic:
            self.engine.context.remember(conversation, reply.topic, reply.role or "both")

    async def on_feedback(self, ack: AsyncAck, action: Body, body: Body,
                          respond: AsyncRespond) -> None:
        await ack()
        vote = action["action_id"].removeprefix(f"{FEEDBACK}_")
        log.info("feedback: %s on %s from user %s (team %s)", vote, action.get("value"),
                 body["user"]["id"], body.get("team", {}).get("id"))
        await respond(response_type="ephemeral", replace_original=False,
                      **notice("Thanks for the feedback!"))

    async def on_pick_aspect(self, ack: AsyncAck, action: Body, respond: AsyncRespond) -> None:
        await ack()
        aspect = (action.get("selected_option") or {}).get("value", "")
        await respond(response_type="ephemeral", replace_original=True, **self._compare(aspect))


def _share_value(reply: Reply) -> str | None:
    if reply.kind != "answer" or reply.topic is None:
        return None
    return f"answer:{reply.topic}:{reply.role or 'both'}"


# ---------------------------------------------------------------------- wiring


def _api_url(settings: Settings) -> str:
    return settings.slack_api_url.rstrip("/") + "/"


def build_app(engine: Engine, settings: Settings,
              client: AsyncWebClient | None = None) -> AsyncApp:
    """The bolt app with careerbot's listeners; its Web API client uses SLACK_API_URL."""
    client = client or AsyncWebClient(token=settings.slack_bot_token,
                                      base_url=_api_url(settings))
    app = AsyncApp(client=client, signing_secret=settings.slack_signing_secret)
    _Careerbot(engine, settings).register(app)
    return app


async def start_http(app: AsyncApp, host: str, port: int) -> web.AppRunner:
    """Serve POST /slack/events and GET /healthz; the caller cleans the runner up."""
    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    server = web.Application()
    server.add_routes([web.post(EVENTS_PATH, events), web.get(HEALTH_PATH, health)])
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def _check(settings: Settings) -> None:
    if not settings.slack_bot_token:
        raise ConfigurationError(
            "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) from your "
            "Slack app's OAuth & Permissions page (see deploy/SLACK.md).")
    if not settings.slack_app_token and not settings.slack_signing_secret:
        raise ConfigurationError(
            "set SLACK_APP_TOKEN (xapp-..., Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) "
            "(see deploy/SLACK.md).")


async def _whoami(client: AsyncWebClient) -> None:
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        raise ConfigurationError(f"Slack rejected SLACK_BOT_TOKEN "
                                 f"({exc.response.get('error')}).") from None
    except ClientError as exc:
        raise ConfigurationError(f"cannot reach the Slack API at {client.base_url}: "
                                 f"{type(exc).__name__}") from None
    log.info("signed in to Slack as %s in workspace %s", auth.get("user"), auth.get("team"))


async def run_slack(engine: Engine, settings: Settings, port: int | None = None) -> None:
    """Serve Slack until cancelled: Socket Mode with an app token, else HTTP on `port`."""
    _check(settings)
    app = build_app(engine, settings)
    await _whoami(app.client)
    if settings.slack_app_token:
        handler = AsyncSocketModeHandler(app, settings.slack_app_token)
        try:
            try:
                handler.client.wss_uri = await handler.client.issue_new_wss_url()
            except SlackApiError as exc:
                raise ConfigurationError(
                    f"Slack rejected SLACK_APP_TOKEN ({exc.response.get('error')}): it must be "
                    "an app-level token (xapp-...) with the connections:write scope.") from None
            await handler.connect_async()
            log.info("Slack: Socket Mode connected")
            await asyncio.Event().wait()
        finally:
            await handler.close_async()
    else:
        runner = await start_http(app, "0.0.0.0", 3000 if port is None else port)
        log.info("Slack: HTTP mode on port %d (POST %s, GET %s)", runner.addresses[0][1],
                 EVENTS_PATH, HEALTH_PATH)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
