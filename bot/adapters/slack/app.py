"""careerbot on Slack: slack-bolt's AsyncApp wired around `Engine.answer(Query) -> Reply`.

Socket Mode when SLACK_APP_TOKEN is set; otherwise HTTP mode, with Slack's
requests on POST /slack/events (signature checked first), the only path of that
public port (/healthz and /metrics are on the ops port). Every request is
acknowledged first; its listener answers after.
Shared state (follow-up context, rate limits, seen event ids, votes) goes through
the process's `Runtime`, so any number of HTTP-mode replicas can share the work.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import ClientError, ClientSession, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncAssistant, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.errors import ConfigurationError
from bot.adapters.slack.render import (
    ASK,
    FEEDBACK,
    FOLLOWUP,
    MAX_BLOCKS,
    PICK_ASPECT,
    RELOAD,
    SHARE,
    SlackMessage,
    escape,
    home,
    notice,
    prompts,
    render,
    thread_title,
)
from bot.core import Engine, Query, Reply
from bot.core.knowledge import Topic
from bot.core.models import Role
from bot.learning import Recorder
from bot.logs import user_ref
from bot.ops import HEALTH_PATH, MAX_BODY_BYTES, start_server
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store import StoreError

__all__ = ["ASSISTANT_EVENTS", "BOT_EVENTS", "EVENTS_PATH", "HEALTH_PATH", "SHORTCUT",
           "ResponseUrlError", "build_app", "retry_handlers", "run_slack", "start_http"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
_RUNNING = 8  # listeners running at once, after their ack, per process (see _Careerbot)
_UNREACHABLE = ("not_in_channel", "channel_not_found")
#: the message shortcut "Ask careerbot about this" (its callback_id in the manifest)
SHORTCUT = "careerbot_ask_message"
#: the bot events the manifest subscribes to, each as the event type bolt sees
BOT_EVENTS = {"app_mention": "app_mention", "app_home_opened": "app_home_opened",
              "message.im": "message", "message.channels": "message",
              "message.groups": "message",
              "assistant_thread_started": "assistant_thread_started",
              "assistant_thread_context_changed": "assistant_thread_context_changed"}
#: the events bolt's Assistant middleware takes (the rest are the app's own listeners')
ASSISTANT_EVENTS = frozenset({"assistant_thread_started", "assistant_thread_context_changed"})
_HOME_EXAMPLES = 8  # example questions on the Home tab: the first of each topic's
_WORKING = "eyes"  # the reaction on a message while careerbot works on it
_THINKING = "is thinking…"  # an assistant thread's status while careerbot works there
_GREETING = ("Hi! Ask me about two careers, data scientist and ML engineer: what each "
             "does, skills, pay, how to switch. Pick a prompt or type a question.")
_PROMPTS_TITLE = "Try asking"
_TITLED = 30 * 24 * 3600  # an assistant thread is titled once, from its first question

Body = dict[str, Any]


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# Slack's markup in a message, read as what it stands for: a mention of someone
# (`<@U…>`, `<@U…|name>`) or of everyone (`<!here>`, `<!subteam^S…|@team>`) is no part
# of the question; a channel is its name; a link is its text, and a bare link nothing.
_MARKUP = re.compile(r"<([@#!])[^>|]*(?:\|([^>]*))?>|<[a-z][a-z0-9+.-]*:[^>|]*(?:\|([^>]*))?>",
                     re.IGNORECASE)


def _read_markup(found: re.Match[str]) -> str:
    kind, label, link_text = found.group(1), found.group(2), found.group(3)
    if kind == "#":
        return f" {label or ''} "
    return " " if kind else f" {link_text or ''} "


def _question(text: str) -> str:
    """What the user asked: mentions dropped, channels and links read as their names,
    Slack's escaping undone."""
    return _unescape(_MARKUP.sub(_read_markup, text)).strip()


def _conversation(*parts: str | None) -> str:
    """Follow-up context key: team:channel:thread (or team:channel:user for slash commands)."""
    return ":".join(p for p in parts if p)


def _is_dm(channel: str) -> bool:
    return channel.startswith("D")


def _who(user: str) -> str:
    """A Slack user id as a mention of them (`<@U…>`); anything else as "someone"."""
    return f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", user) else "someone"


def _mentions(text: str, user: str | None) -> bool:
    return bool(user) and re.search(rf"<@{re.escape(str(user))}(?:\|[^>]*)?>", text) is not None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def retry_handlers() -> list[AsyncRetryHandler]:
    """How a call to Slack (Web API or response_url) is retried, by slack_sdk's own
    handlers: a 429 after its Retry-After, a 500 or 503 and a dropped connection after a
    backoff (0.5, 1, 2 s). Three retries in all at most, so an answer gives up within
    seconds rather than holding a listener for a minute."""
    return [AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=3)]


class ResponseUrlError(Exception):
    """A response_url answered other than 2xx (after the retries); the message names the
    status and Slack's short reason, never the URL (it is a credential) or the text."""

    def __init__(self, status: int, body: str):
        self.status = status
        self.reason = f"response_url {status}"
        super().__init__(f"{self.reason}: {body[:60]!r}")


class _Respond:
    """bolt's `respond()` for what careerbot sends, over the app's shared HTTP session."""

    def __init__(self, url: str | None, session: ClientSession | None):
        self.url, self.session = url, session

    async def __call__(self, **message: Any) -> None:
        if not self.url:
            raise ValueError("this request has no response_url to respond to")
        sent = await AsyncWebhookClient(url=self.url, session=self.session,
                                        retry_handlers=retry_handlers()).send_dict(
            {key: value for key, value in message.items() if value is not None})
        if not 200 <= sent.status_code < 300:
            raise ResponseUrlError(sent.status_code, sent.body or "")


def _why_undelivered(error: Exception) -> str | None:
    """The reason an answer never reached Slack, or None for an error of careerbot's own."""
    if isinstance(error, SlackApiError):
        code = error.response.get("error") if error.response is not None else None
        return str(code or f"http {getattr(error.response, 'status_code', '?')}")
    if isinstance(error, ResponseUrlError):
        return error.reason
    if isinstance(error, (ClientError, TimeoutError)):
        return type(error).__name__
    return None


class _Careerbot:
    """The listeners: each asks the engine, then sends what `render` made. bolt sees
    them through `_acked`: Slack's request is acknowledged before a listener starts."""

    def __init__(self, engine: Engine, settings: Settings, recorder: Recorder | None = None,
                 runtime: Runtime | None = None):
        self.engine = engine
        self.settings = settings
        self.recorder = recorder or Recorder.off()
        self.rt = runtime or Runtime(engine, settings)
        self._tasks: set[asyncio.Task[None]] = set()  # listeners running after their ack
        self.http: ClientSession | None = None  # the app's session, once it serves
        # Listeners that run at once: the rest wait (in flight, costing nothing), so a
        # burst of answers never keeps the loop from acknowledging new requests in time.
        # Enough to keep Slack's round trips overlapped (8 at ~200 ms: 40 answers/s a
        # process); measured in process at 50 requests in flight (the old bench), ack p99: 2 ->
        # 40-55 ms, 8 -> 57-94 ms, 16 -> 70-112 ms, unbounded -> 110-150 ms.
        self._running = asyncio.Semaphore(_RUNNING)

    def register(self, app: AsyncApp) -> None:
        app.middleware(self.dedupe)
        events: dict[str, Callable[..., Awaitable[None]]] = {
            "app_mention": self.on_mention, "message": self.on_message,
            "app_home_opened": self.on_home}
        for event in sorted(set(BOT_EVENTS.values()) - ASSISTANT_EVENTS):
            app.event(event)(self._acked(events[event]))
        # Slack's AI-assistant threads (in the DM with careerbot): bolt's middleware routes
        # their events, after the dedupe; every listener is acked like the others
        assistant = AsyncAssistant(logger=log)
        assistant.thread_started(self._acked(self.on_thread_started))
        assistant.thread_context_changed(self._acked(self.on_thread_context_changed))
        assistant.user_message(self._acked(self.on_dm_thread))
        app.assistant(assistant)
        app.command(self.settings.slack_command)(self._acked(self.on_command))
        app.shortcut(SHORTCUT)(self._acked(self.on_shortcut))
        app.action(re.compile(rf"^{ASK}_\d+$"))(self._acked(self.on_ask))
        app.action(RELOAD)(self._acked(self.on_reload))
        app.action(SHARE)(self._acked(self.on_share))
        app.action(re.compile(rf"^{FOLLOWUP}_\d+$"))(self._acked(self.on_followup))
        app.action(re.compile(rf"^{FEEDBACK}_"))(self._acked(self.on_feedback))
        app.action(PICK_ASPECT)(self._acked(self.on_pick_aspect))
        app.error(self.on_error)

    def _acked(self, listener: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """What bolt runs for `listener`: ack, then start it as a task of its own (counted
        in flight; its errors reach `on_error`). The app is built with
        process_before_response, so Slack's HTTP response waits for the ack alone, not
        for bolt's polling of a listener that acks later."""
        wanted = list(inspect.signature(listener).parameters)

        async def ack_then_start(ack: AsyncAck, body: Body, context: AsyncBoltContext,
                                 client: AsyncWebClient, event: Body | None,
                                 command: Body | None, action: Body | None) -> None:
            await ack()
            respond = _Respond(context.response_url, self.http)
            given = {"body": body, "context": context, "client": client, "respond": respond,
                     "event": event, "command": command, "action": action}
            task = asyncio.create_task(self._run(listener, {n: given[n] for n in wanted}))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return ack_then_start

    async def _run(self, listener: Callable[..., Awaitable[None]], kwargs: dict[str, Any]
                   ) -> None:
        self.rt.track()
        async with self._running:
            try:
                await listener(**kwargs)
            except Exception as exc:
                if (reason := _why_undelivered(exc)) is None:
                    await self.on_error(exc)
                else:
                    self._undelivered(listener.__name__, reason)

    def _undelivered(self, where: str, reason: str) -> None:
        """An answer that Slack would not take, after slack_sdk's retries: counted and
        logged once, with why but without what it said or who asked."""
        self.rt.metrics.undelivered.labels("slack", reason).inc()
        log.warning("an answer could not be delivered (%s): %s", where, reason,
                    extra={"fields": {"platform": "slack", "reason": reason}})

    async def on_error(self, error: Exception) -> None:
        self.rt.metrics.errors.labels("slack").inc()
        log.error("a Slack listener failed: %s", type(error).__name__, exc_info=error)

    def _render(self, reply: Reply, *, share: str | None = None,
                aspects: list[str] | None = None, byline: str | None = None) -> SlackMessage:
        return render(reply, command=self.settings.slack_command, share=share,
                      aspects=aspects or (), byline=byline)

    # ------------------------------------------------------------------ middleware

    async def dedupe(self, body: Body, request: AsyncBoltRequest,
                     next_: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """Slack retries events it thinks were missed: answer each event id once."""
        event_id = body.get("event_id")
        if event_id and not await self.rt.first_time(f"slack:event:{event_id}"):
            retry = request.headers.get("x-slack-retry-num", ["?"])[0]
            log.info("event %s already handled; ignoring Slack's retry %s", event_id, retry)
            return BoltResponse(status=200, body="")
        await next_()
        return None

    # ------------------------------------------------------------------ questions

    async def _slow_down(self, team: str, user: str) -> str | None:
        """The per-user rate limit (across replicas): None to go ahead, else what to say."""
        wait = await self.rt.retry_after("slack", f"{team}:{user}")
        if not wait:
            return None
        return f"Slow down a little, please: you can ask again in {math.ceil(wait)} seconds."

    async def _answer(self, text: str, user: str, conversation: str) -> Reply:
        return await self.rt.ask(Query(text=text, conversation=conversation, user=user,
                                       platform="slack"))

    async def on_mention(self, event: Body, context: AsyncBoltContext,
                         client: AsyncWebClient) -> None:
        await self._reply_to(event, context, client, thread=event.get("thread_ts") or event["ts"])

    async def on_message(self, event: Body, context: AsyncBoltContext,
                         client: AsyncWebClient) -> None:
        """A DM, or a reply in a channel thread careerbot has answered in (one that
        mentions it is its app_mention's to answer); never top-level channel talk."""
        kind, thread = event.get("channel_type"), event.get("thread_ts")
        if kind == "im":
            if not event.get("subtype"):
                await self._reply_to(event, context, client, thread=thread)
            return
        if (kind not in ("channel", "group") or not thread or thread == event.get("ts")
                or event.get("subtype") not in (None, "thread_broadcast")
                or _mentions(event.get("text") or "", context.bot_user_id)):
            return
        if await self._following(context.team_id or "", event["channel"], thread):
            await self._reply_to(event, context, client, thread=thread, following=True)

    async def _reply_to(self, event: Body, context: AsyncBoltContext, client: AsyncWebClient,
                        thread: str | None, *, following: bool = False,
                        assistant: bool = False) -> None:
        """Answer `event`'s message in `thread` (None: in the DM itself). In a thread it
        is only `following`, careerbot speaks up only for an answer it is sure of (the
        matcher's `sure_above`): anything else there is people talking to each other.
        In an `assistant` thread it shows Slack's status while it works (not 👀), and
        titles the thread from its first question."""
        user = event.get("user")
        if event.get("bot_id") or not user or user == context.bot_user_id:  # bots, this one
            return
        team, channel = context.team_id or "", event["channel"]
        text = _question(event.get("text") or "")
        conversation = _conversation(team, channel, thread)
        reply = await self._answer(text, user, conversation) if following else None
        if reply is not None and not (reply.kind == "answer" and
                                      reply.confidence >= self.settings.match.sure_above):
            return
        if refusal := await self._slow_down(team, user):
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread,
                                            **notice(refusal))
            return
        working = (self._thinking(client, channel, thread) if assistant and thread
                   else self._working(client, channel, event.get("ts")))
        async with working:
            reply = reply or await self._answer(text, user, conversation)
            await self._post(client, team, channel, user, thread, reply)
        self.recorder.question(reply, text=text, platform="slack", user=user, channel=channel)
        if assistant and thread:
            await self._title(client, team, channel, thread,
                              reply.title if reply.kind == "answer" else text)

    async def _post(self, client: AsyncWebClient, team: str, channel: str, user: str,
                    thread: str | None, reply: Reply, byline: str | None = None) -> None:
        """`reply` in `channel`'s `thread`, which careerbot then follows; where it cannot
        post, to `user` alone."""
        message = self._render(reply, byline=byline)
        try:
            await client.chat_postMessage(channel=channel, thread_ts=thread, **message)
        except SlackApiError as exc:  # removed from the channel, or never in it
            if exc.response.get("error") not in _UNREACHABLE:
                raise
            await self._tell_privately(client, channel, user, thread, message,
                                       str(exc.response.get("error")))
            return
        await self._join(team, channel, thread)

    # ------------------------------------------------------------------ assistant threads

    def _assistant_thread(self, team: str, channel: str, thread: str) -> str:
        return _conversation("slack", "assistant", team, channel, thread)

    async def _mark_assistant(self, team: str, channel: str, thread: str) -> None:
        """`thread` is one of Slack's assistant threads: known to every replica for the
        context TTL (renewed by its events and by each answer there)."""
        try:
            await self.rt.store.join_thread(self._assistant_thread(team, channel, thread))
        except StoreError as exc:
            self.rt.failed("store", exc)

    async def _is_assistant(self, team: str, channel: str, thread: str) -> bool:
        try:
            return await self.rt.store.in_thread(self._assistant_thread(team, channel, thread))
        except StoreError as exc:
            self.rt.failed("store", exc)
            return False  # answered as a DM thread is: no status, 👀 instead

    async def on_thread_started(self, event: Body, context: AsyncBoltContext,
                                client: AsyncWebClient) -> None:
        """A user opened an assistant thread with careerbot: a greeting, and example
        questions from the knowledge base as Slack's suggested prompts."""
        thread = event.get("assistant_thread") or {}
        channel, ts = thread.get("channel_id"), thread.get("thread_ts")
        if not channel or not ts:
            return
        await self._mark_assistant(context.team_id or "", channel, ts)
        await client.chat_postMessage(channel=channel, thread_ts=ts, **notice(_GREETING))
        suggested = prompts([(t.title, t.examples[0]) for t in self._examples()])
        if suggested:
            await client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=ts, prompts=suggested, title=_PROMPTS_TITLE)

    async def on_thread_context_changed(self, event: Body, context: AsyncBoltContext) -> None:
        """The user moved to another channel with the assistant thread open. careerbot's
        answers do not depend on where the user is, so the context itself is not kept
        (bolt's own store would rewrite careerbot's first answer to hold it); the thread
        is still known as an assistant thread, on every replica."""
        thread = event.get("assistant_thread") or {}
        channel, ts = thread.get("channel_id"), thread.get("thread_ts")
        if channel and ts:
            await self._mark_assistant(context.team_id or "", channel, ts)

    async def on_dm_thread(self, event: Body, context: AsyncBoltContext,
                           client: AsyncWebClient) -> None:
        """A person's message in a thread of the DM with careerbot (bolt's Assistant
        middleware takes them all): in an assistant thread, answered with the status
        shown; in any other DM thread, as before (answered in it, 👀 while it works)."""
        thread = event.get("thread_ts")
        if event.get("subtype") or not thread:
            return
        team, channel = context.team_id or "", event["channel"]
        assistant = await self._is_assistant(team, channel, thread)
        await self._reply_to(event, context, client, thread=thread, assistant=assistant)
        if assistant:
            await self._mark_assistant(team, channel, thread)

    @asynccontextmanager
    async def _thinking(self, client: AsyncWebClient, channel: str,
                        thread: str) -> AsyncIterator[None]:
        """Slack's "is thinking…" under an assistant thread while careerbot works there.
        Set before the work (set after the answer, it would stay: Slack clears it when
        the app replies); cleared if no answer was posted. A failing call costs nothing
        but the status."""
        shown = await self._status(client, channel, thread, _THINKING)
        try:
            yield
        except BaseException:
            if shown:
                await self._status(client, channel, thread, "")
            raise

    async def _status(self, client: AsyncWebClient, channel: str, thread: str,
                      status: str) -> bool:
        try:
            await client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread,
                                                     status=status)
        except (SlackApiError, ClientError, TimeoutError) as exc:
            log.debug("assistant status in %s failed: %s", channel, _why_undelivered(exc))
            return False
        return True

    async def _title(self, client: AsyncWebClient, team: str, channel: str, thread: str,
                     title: str) -> None:
        """The assistant thread's title, once: from its first question's answer."""
        if not (title := thread_title(title)):
            return
        try:
            first = await self.rt.store.first_seen(
                f"slack:assistant-title:{team}:{channel}:{thread}", _TITLED)
        except StoreError as exc:
            self.rt.failed("store", exc)
            return
        if not first:
            return
        try:
            await client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread,
                                                    title=title)
        except (SlackApiError, ClientError, TimeoutError) as exc:
            log.debug("assistant title in %s failed: %s", channel, _why_undelivered(exc))

    # ------------------------------------------------------------------ threads followed

    async def _join(self, team: str, channel: str, thread: str | None) -> None:
        """careerbot answered in `thread`: its later replies are answered too, on any
        replica, until the context TTL passes without an answer there."""
        if not thread or _is_dm(channel):
            return
        try:
            await self.rt.store.join_thread(_conversation("slack", team, channel, thread))
        except StoreError as exc:
            self.rt.failed("store", exc)

    async def _following(self, team: str, channel: str, thread: str) -> bool:
        try:
            return await self.rt.store.in_thread(_conversation("slack", team, channel, thread))
        except StoreError as exc:
            self.rt.failed("store", exc)
            return False  # better a missed reply than talking into a thread uninvited

    @asynccontextmanager
    async def _working(self, client: AsyncWebClient, channel: str,
                       ts: str | None) -> AsyncIterator[None]:
        """👀 on the message `ts` while careerbot works on it. Added beside the work, so a
        slow or failing reactions.add never holds the answer back; removed after."""
        if not ts:
            yield
            return
        adding = asyncio.create_task(self._react(client.reactions_add, channel, ts))
        try:
            yield
        finally:
            if await adding:
                await self._react(client.reactions_remove, channel, ts)

    async def _react(self, call: Callable[..., Awaitable[Any]], channel: str, ts: str) -> bool:
        try:
            await call(channel=channel, timestamp=ts, name=_WORKING)
        except (SlackApiError, ClientError, TimeoutError) as exc:
            log.debug("reaction %s on %s failed: %s", _WORKING, channel,
                      _why_undelivered(exc))
            return False
        return True

    async def _tell_privately(self, client: AsyncWebClient, channel: str, user: str,
                              thread: str | None, message: SlackMessage, error: str) -> None:
        """The answer the bot could not post in `channel`, to the asker alone: as an
        ephemeral message there, else in a DM, with a word on why."""
        why = ("I can't post in that channel (I'm not a member: `/invite` me there), so "
               "here is my answer just for you.")
        blocks = list(message.get("blocks", []))
        if len(blocks) < MAX_BLOCKS:
            blocks.insert(0, notice(why)["blocks"][0])
        log.info("cannot post in %s (%s): answering the asker privately", channel, error)
        try:
            await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread,
                                            text=message.get("text", why), blocks=blocks)
        except SlackApiError as exc:
            if exc.response.get("error") not in _UNREACHABLE:
                raise
            await client.chat_postMessage(channel=user, text=message.get("text", why),
                                          blocks=blocks)

    # ------------------------------------------------------------------ /careerbot

    async def on_command(self, command: Body, respond: _Respond,
                         client: AsyncWebClient) -> None:
        team, channel, user = command.get("team_id", ""), command["channel_id"], command["user_id"]
        text = _unescape(command.get("text") or "").strip()
        word, _, rest = text.partition(" ")
        asked: Reply | None = None
        if text.lower() in ("", "help"):
            message = self._render(self.engine.help())
        elif text.lower() == "topics":
            message = self._render(self.engine.topics())
        elif text.lower() == "reload":
            reloaded = await self._reload(client, team, user)
            message = (notice("Sorry, only careerbot's admins can reload its knowledge.")
                       if reloaded is None else self._render(reloaded))
        elif text.lower() == "stats":
            message = await self._stats(client, team, user)
        elif word.lower() == "compare":
            message = self._compare(rest)
        elif refusal := await self._slow_down(team, user):
            message = notice(refusal)
        else:
            reply = asked = await self._answer(text, user, _conversation(team, channel, user))
            message = self._render(reply, share=_share_value(reply))
        await respond(response_type="ephemeral", **message)
        if asked is not None:
            self.recorder.question(asked, text=text, platform="slack", user=user,
                                   channel=channel)

    def _compare(self, aspect: str) -> SlackMessage:
        reply = self.engine.compare(aspect)
        if reply.comparison is None:  # none or unknown: the picker and a "did you mean"
            return self._render(reply, aspects=self.engine.aspects())
        return self._render(reply, share=f"compare:{reply.comparison.aspect}")

    async def _reload(self, client: AsyncWebClient, team: str, user: str) -> Reply | None:
        """An admin's reload (the runtime's: a broken knowledge base is never served) and
        what came of it; None, and nothing done, for anyone else."""
        who = f"user {user_ref('slack', user)} (team {team}) at {_now()}"
        if not await self._is_admin(client, user):
            log.warning("knowledge reload by %s refused: not an admin", who)
            return None
        outcome = await self.rt.reload()
        log.log(logging.INFO if outcome.ok else logging.WARNING, "knowledge reload by %s: %s",
                who, outcome.summary())
        title = "Knowledge reloaded" if outcome.ok else "Knowledge not reloaded"
        return Reply(title=title, text=outcome.summary(), kind="notice")

    async def _stats(self, client: AsyncWebClient, team: str, user: str) -> SlackMessage:
        if not await self._is_admin(client, user):
            log.warning("stats for user %s (team %s) refused: not an admin",
                        user_ref("slack", user), team)
            return notice("Sorry, only careerbot's admins can see its stats.")
        return self._render(await self.recorder.stats())

    async def _is_admin(self, client: AsyncWebClient, user: str) -> bool:
        if user in self.settings.slack_admin_ids:
            return True
        if not self.settings.slack_workspace_admins_are_admins:
            return False
        try:
            info = await client.users_info(user=user)
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", user_ref("slack", user),
                        exc.response.get("error"))
            return False
        profile = info.get("user") or {}
        return bool(profile.get("is_admin") or profile.get("is_owner"))

    # ------------------------------------------------------------------ shortcut

    async def on_shortcut(self, body: Body, context: AsyncBoltContext, client: AsyncWebClient,
                          respond: _Respond) -> None:
        """"Ask careerbot about this" on a message: its text answered in its thread, saying
        who asked; refusals and a message with no text go to the one who asked."""
        team, user = body.get("team", {}).get("id", ""), body["user"]["id"]
        channel = body.get("channel", {}).get("id", "")
        message = body.get("message") or {}
        text = _question(message.get("text") or "")
        if not text or message.get("user") == context.bot_user_id:
            await respond(response_type="ephemeral", **notice(
                "That message has no question in it for me: use the shortcut on someone's "
                "message with text, or ask me directly."))
            return
        if refusal := await self._slow_down(team, user):
            await respond(response_type="ephemeral", **notice(refusal))
            return
        thread = message.get("thread_ts") or message.get("ts")
        async with self._working(client, channel, message.get("ts")):
            reply = await self._answer(text, user, _conversation(team, channel, thread))
            await self._post(client, team, channel, user, thread, reply,
                             byline=f"{_who(user)} asked careerbot about this message")
        self.recorder.question(reply, text=text, platform="slack", user=user, channel=channel)

    # ------------------------------------------------------------------ the Home tab

    async def on_home(self, event: Body, client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await self._publish_home(client, event["user"])

    async def _publish_home(self, client: AsyncWebClient, user: str,
                            status: Reply | None = None) -> None:
        """`user`'s Home tab: what careerbot answers, example questions to press, the
        topics; an admin also sees this week's stats, `status` (a reload's outcome) and
        the reload button."""
        admin = None
        if await self._is_admin(client, user):
            admin = [r for r in (status, await self.recorder.stats()) if r is not None]
        examples = [t.examples[0] for t in self._examples()][:_HOME_EXAMPLES]
        await client.views_publish(user_id=user, view=dict(home(
            self.engine.help(), self.engine.topics(), examples,
            command=self.settings.slack_command, admin=admin)))

    def _examples(self) -> list[Topic]:
        """The topics whose first example question careerbot offers (Home tab, prompts)."""
        return [t for t in self.engine.knowledge.topics.values()
                if not t.smalltalk and t.examples]

    async def on_ask(self, action: Body, body: Body, client: AsyncWebClient) -> None:
        """An example question pressed on the Home tab: answered in the presser's DM with
        careerbot, where a follow-up continues it."""
        team, user = body.get("team", {}).get("id", ""), body["user"]["id"]
        question = _question(action.get("value") or "")
        if refusal := await self._slow_down(team, user):
            await client.chat_postMessage(channel=user, **notice(refusal))
            return
        reply = await self._answer(question, user, _conversation(team, "home", user))
        sent = await client.chat_postMessage(channel=user, **self._render(
            reply, byline=f"You asked, from my Home tab: _{escape(question)}_"))
        await self.rt.remember(_conversation(team, str(sent.get("channel") or "")), reply)
        self.recorder.question(reply, text=question, platform="slack", user=user,
                               channel=str(sent.get("channel") or ""))

    async def on_reload(self, body: Body, client: AsyncWebClient) -> None:
        """The Home tab's reload button: the admins' reload, its outcome shown on their
        Home tab (the view is published again; anyone else's just refreshes)."""
        team, user = body.get("team", {}).get("id", ""), body["user"]["id"]
        await self._publish_home(client, user, await self._reload(client, team, user))

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

    async def _refused(self, body: Body, respond: _Respond) -> bool:
        """A button that posts an answer counts against its presser's rate limit; past
        it, they alone are told (ephemeral), and nothing is posted."""
        refusal = await self._slow_down(body.get("team", {}).get("id", ""), body["user"]["id"])
        if refusal:
            await respond(response_type="ephemeral", replace_original=False, **notice(refusal))
        return refusal is not None

    async def on_share(self, action: Body, body: Body,
                       respond: _Respond) -> None:
        if await self._refused(body, respond):
            return
        reply = self._rebuild(action.get("value", ""))
        if reply is None:
            await respond(replace_original=False, **notice(
                "That answer has changed since; please ask again."))
            return
        await respond(response_type="in_channel", replace_original=False, **self._render(
            reply, byline=f"Shared by {_who(body['user']['id'])}"))
        await respond(delete_original=True)
        log.info("answer %s shared by %s in %s", action.get("value"),
                 user_ref("slack", body["user"]["id"]),
                 body.get("channel", {}).get("id"))

    async def on_followup(self, action: Body, body: Body, respond: _Respond,
                          client: AsyncWebClient) -> None:
        if await self._refused(body, respond):
            return
        reply = self._topic_reply(action.get("value", ""))
        if reply is None:
            await respond(replace_original=False, **notice(
                "I no longer have that topic; please ask again."))
            return
        team, user = body["team"]["id"], body["user"]["id"]
        container = body.get("container", {})
        channel = container.get("channel_id") or body["channel"]["id"]
        if container.get("is_ephemeral"):  # under a /careerbot answer: stay private
            await self.rt.remember(_conversation(team, channel, user), reply)
            await respond(response_type="ephemeral", replace_original=False,
                          **self._render(reply, share=_share_value(reply)))
            return
        message = body.get("message", {})
        thread = message.get("thread_ts") or (None if _is_dm(channel) else message.get("ts"))
        await self.rt.remember(_conversation(team, channel, thread), reply)
        try:
            await client.chat_postMessage(channel=channel, thread_ts=thread, **self._render(reply))
        except SlackApiError as exc:  # a shared answer in a channel the bot is not in
            if exc.response.get("error") not in _UNREACHABLE:
                raise
            await respond(response_type="ephemeral", replace_original=False,
                          **self._render(reply))
            return
        await self._join(team, channel, thread)

    async def on_feedback(self, action: Body, body: Body, respond: _Respond) -> None:
        """One vote a user per answer (the message it is under), changeable; the buttons
        then show the answer's tally (and, under a private answer, which one is theirs)."""
        choice = action["action_id"].removeprefix(f"{FEEDBACK}_")
        topic, _, role = action.get("value", "").partition(":")
        role = role or "both"
        team, user = body.get("team", {}).get("id", ""), body["user"]["id"]
        container = body.get("container", {})
        channel = container.get("channel_id") or body.get("channel", {}).get("id") or ""
        ts = container.get("message_ts") or body.get("message", {}).get("ts") or ""
        answer = f"{channel}:{ts}" if ts else ""
        vote = await self.rt.vote("slack", f"{team}:{user}", f"{team}:{answer}" if ts else "",
                                  topic, role, helpful=choice == "helpful")
        log.info("feedback: %s on %s from user %s (team %s): %s", choice, f"{topic}:{role}",
                 user_ref("slack", user), team, vote.outcome)
        if vote.outcome == "refused":
            await respond(response_type="ephemeral", replace_original=False, **notice(
                "That answer is out of date, so your vote was not counted; please ask again."))
            return
        if vote.recorded:
            self.recorder.vote(platform="slack", user=user, channel=channel, topic=topic,
                               role=role, helpful=choice == "helpful", message=answer)
        private = bool(container.get("is_ephemeral"))
        message = body.get("message") or {}
        if not message.get("blocks"):
            message = self._original(topic, role) or {}
        if message and vote.tally:
            await respond(replace_original=True, text=message.get("text", ""),
                          blocks=_voted(message.get("blocks", []), vote.tally,
                                        vote.choice if private else None))
        if not private:  # the public buttons show the tally, not who voted what
            mine = "helpful" if choice == "helpful" else "not helpful"
            await respond(response_type="ephemeral", replace_original=False, **notice(
                f"Thanks for the feedback! You marked this answer {mine}; press the other "
                "button to change your vote."))

    def _original(self, topic: str, role: str) -> SlackMessage | None:
        """A private answer's message as it was sent (Slack's payload for a press under
        an ephemeral message carries none of it)."""
        reply = self._topic_reply(f"{topic}:{role}")
        return self._render(reply, share=_share_value(reply)) if reply is not None else None

    async def on_pick_aspect(self, action: Body, respond: _Respond) -> None:
        aspect = (action.get("selected_option") or {}).get("value", "")
        await respond(response_type="ephemeral", replace_original=True, **self._compare(aspect))


def _voted(blocks: list[Body], tally: Mapping[str, int], mine: str | None) -> list[Body]:
    """`blocks` with the feedback buttons showing `tally` (choice -> votes); `mine`, the
    voter's own choice, is marked when only they see the message."""
    labels = {"helpful": "👍 Helpful", "not_helpful": "👎 Not helpful"}
    out: list[Body] = []
    for block in blocks:
        if block.get("type") == "actions":
            elements = []
            for element in block.get("elements", []):
                choice = str(element.get("action_id", "")).removeprefix(f"{FEEDBACK}_")
                if choice in labels and element.get("action_id", "").startswith(FEEDBACK):
                    element = {k: v for k, v in element.items() if k != "style"}
                    label = f"{labels[choice]} · {tally.get(choice, 0)}"
                    if choice == mine:
                        label, element["style"] = f"✓ {label}", "primary"
                    element["text"] = {"type": "plain_text", "text": label, "emoji": True}
                elements.append(element)
            block = {**block, "elements": elements}
        out.append(block)
    return out


def _share_value(reply: Reply) -> str | None:
    if reply.kind != "answer" or reply.topic is None:
        return None
    return f"answer:{reply.topic}:{reply.role or 'both'}"


# ---------------------------------------------------------------------- wiring


def _api_url(settings: Settings) -> str:
    return settings.slack_api_url.rstrip("/") + "/"


class _OneWorkspace(AsyncAuthorize):
    """Authorization for the one workspace of the bot token, asking Slack's auth.test once
    a process. bolt's own asks it for every request until one answer is back: a burst of
    first requests (a replica starting under load) would each ask."""

    def __init__(self, client: AsyncWebClient):
        super().__init__()
        self.client = client
        self._result: asyncio.Future[AuthorizeResult] | None = None

    async def __call__(self, **_: Any) -> AuthorizeResult:
        if self._result is None or (self._result.done() and self._result.exception()):
            self._result = asyncio.ensure_future(self._auth_test())  # a failure is retried
        return await asyncio.shield(self._result)

    async def _auth_test(self) -> AuthorizeResult:
        return AuthorizeResult.from_auth_test_response(
            bot_token=self.client.token, auth_test_response=await self.client.auth_test())


class CareerbotApp(AsyncApp):
    """bolt's AsyncApp, knowing the runtime its listeners share (for /healthz, /metrics)."""

    runtime: Runtime
    listeners: _Careerbot

    async def open(self) -> None:
        """One HTTP session, made on the running loop, for every call to Slack's Web API
        and response URLs: kept-alive connections instead of a new session per message."""
        session = ClientSession()
        if self.client.session is None:
            self.client.session = session
        self.listeners.http = session

    async def close(self) -> None:
        if self.listeners.http is not None:
            await self.listeners.http.close()


def build_app(engine: Engine, settings: Settings, client: AsyncWebClient | None = None,
              recorder: Recorder | None = None, *,
              runtime: Runtime | None = None) -> CareerbotApp:
    """The bolt app with careerbot's listeners; its Web API client uses SLACK_API_URL.

    `recorder` notes questions and votes (learning from use); none records nothing.
    """
    client = client or AsyncWebClient(token=settings.slack_bot_token,
                                      base_url=_api_url(settings),
                                      retry_handlers=retry_handlers())
    app = CareerbotApp(client=client, signing_secret=settings.slack_signing_secret,
                       authorize=_OneWorkspace(client),
                       process_before_response=True)  # see _Careerbot._acked
    listeners = _Careerbot(engine, settings, recorder, runtime)
    listeners.register(app)
    app.runtime = listeners.rt
    app.listeners = listeners
    return app


def _refuse(status: int) -> web.Response:
    return web.json_response({"error": "invalid request" if status == 401
                              else "malformed request"}, status=status)


def _signed(verifier: SignatureVerifier, body: str, headers: Mapping[str, str]) -> bool:
    """Slack's signature over `body`, checked before anything parses it; a malformed
    timestamp is an unsigned request, not an error."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and signature):
        return False
    return verifier.is_valid(body, timestamp, signature)


async def start_http(app: CareerbotApp, host: str, port: int) -> web.AppRunner:
    """Serve POST /slack/events, and nothing else, on host:port; the caller cleans up.

    A request is refused before bolt sees it when it is too large (413, from its
    Content-Length or as it is read), not UTF-8 (400), unsigned (401: nothing of it is
    parsed or logged) or signed but not one of Slack's payloads (400). Only a signed,
    well-formed request costs more than a hash."""
    verifier = SignatureVerifier(app.listeners.settings.slack_signing_secret)

    async def events(request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length or 0)
        try:
            body = (await request.read()).decode()  # over client_max_size: aiohttp's 413
        except UnicodeDecodeError:  # Slack sends UTF-8, signed or not
            return _refuse(400)
        if not _signed(verifier, body, request.headers):
            return _refuse(401)
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string,
                                            headers=request.headers)  # type: ignore[arg-type]
        except (ValueError, AttributeError, TypeError):  # not JSON or a form; not an object
            return _refuse(400)
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    async def close(_: web.Application) -> None:
        await app.close()

    await app.open()
    return await start_server(app.runtime, host, port, [web.post(EVENTS_PATH, events)],
                              on_cleanup=[close], ops=False)


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


async def run_slack(engine: Engine, settings: Settings, port: int | None = None,
                    recorder: Recorder | None = None, *, runtime: Runtime | None = None) -> None:
    """Serve Slack until cancelled: Socket Mode with an app token, else HTTP on `port`
    (CAREERBOT_PORT by default), POST /slack/events only."""
    _check(settings)
    app = build_app(engine, settings, recorder=recorder, runtime=runtime)
    app.runtime.set_platform("slack", False)  # not ready until signed in and connected
    await _whoami(app.client)
    if settings.slack_app_token:
        handler = AsyncSocketModeHandler(app, settings.slack_app_token)
        await app.open()
        try:
            try:
                handler.client.wss_uri = await handler.client.issue_new_wss_url()
            except SlackApiError as exc:
                raise ConfigurationError(
                    f"Slack rejected SLACK_APP_TOKEN ({exc.response.get('error')}): it must be "
                    "an app-level token (xapp-...) with the connections:write scope.") from None
            await handler.connect_async()
            app.runtime.set_platform("slack", True)
            log.info("Slack: Socket Mode connected")
            await asyncio.Event().wait()
        finally:
            app.runtime.set_platform("slack", False)
            await handler.close_async()
            await app.close()
    else:
        runner = await start_http(app, settings.host, settings.port if port is None else port)
        app.runtime.set_platform("slack", True)
        log.info("Slack: HTTP mode on port %d (POST %s)", runner.addresses[0][1], EVENTS_PATH)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
