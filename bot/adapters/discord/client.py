"""discord.py wiring: slash commands, mentions and DMs, and buttons around `Engine.answer`.

Every interaction is answered (or, for /reload, deferred) at once: the engine
answers in milliseconds. Everything sent goes through `render`, which keeps
within Discord's limits and sets `NO_MENTIONS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import sys
import time
from dataclasses import replace
from typing import Any, TypeAlias, cast

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.adapters.discord.render import (
    NO_MENTIONS,
    FollowUpButton,
    Page,
    VoteButton,
    render,
    render_text,
)
from bot.adapters.errors import ConfigurationError
from bot.core import Engine, Query, Reply
from bot.core.engine import MAX_ASPECT
from bot.core.models import Role
from bot.learning import Recorder
from bot.logs import user_ref
from bot.runtime import Runtime
from bot.settings import Settings

__all__ = [
    "CareerBot",
    "create_client",
    "run_discord",
    "sync_commands",
    "sync_commands_cli",
    "use_endpoints",
]

log = logging.getLogger(__name__)

DISCORD_API_URL = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"
# Discord's markup in a message, read as what it stands for: a mention of a member or
# role, a custom emoji or a timestamp is no part of the question; a channel is a word;
# a masked link is its text, and a bare link nothing.
_SLOW_DOWN = "\N{HOURGLASS WITH FLOWING SAND}"  # on a mention that came too fast
_MARKUP = re.compile(r"<(?:@[!&]?|#|a?:\w+:|t:)\d+(?::\w)?>|\[([^\]\n]*)\]\(<?https?://[^)\s]*>?\)"
                     r"|<?https?://\S+", re.IGNORECASE)


#: a command named in a reply as the core writes it, `/compare <aspect>`
_COMMAND = re.compile(r"`/([a-z][a-z0-9_-]*)([^`\n]*)`")
#: how long the commands fetched for a server (or globally) are used before asking again
_COMMANDS_TTL = 600.0


def _question(content: str) -> str:
    return _MARKUP.sub(lambda found: f" {found.group(1) or ''} ", content).strip()
_NO_TOKEN = ("DISCORD_TOKEN is not set: copy the bot token from the Discord developer portal "
             "(your application > Bot > Reset Token) into the environment or .env.")
_BAD_TOKEN = ("Discord rejected DISCORD_TOKEN (401 Unauthorized): reset the bot token in the "
              "Discord developer portal (your application > Bot) and set the new one.")
#: why the gateway will not take the bot back, by close code (the rest are resumed)
_CLOSED = {
    4004: "Discord closed the gateway: DISCORD_TOKEN is no longer valid (4004 Authentication "
          "failed; was the token reset?). Set the bot's current token and start again.",
    4010: "Discord closed the gateway: invalid shard (4010). Check DISCORD_SHARD_COUNT and "
          "DISCORD_SHARD_IDS.",
    4011: "Discord closed the gateway: sharding required (4011). Set DISCORD_SHARD_COUNT.",
    4012: "Discord closed the gateway: invalid API version (4012).",
    4013: "Discord closed the gateway: invalid intents (4013). This careerbot asks for "
          "intents Discord does not know: upgrade or report it.",
    4014: "Discord closed the gateway: disallowed intents (4014). careerbot needs no "
          "privileged intent; if this persists, check the application's Bot page.",
}
#: Discord's code for a request the bot lacks a permission for (such as Embed Links)
_MISSING_PERMISSIONS = 50013
#: a login that takes longer than this is an unreachable API, not a slow one
_LOGIN_TIMEOUT = 30.0
#: Discord's codes for an interaction that can no longer be answered: too late (more than
#: 3 s, or gone), or answered already (by another process with the same token)
_EXPIRED = {10062: "the interaction expired (Discord's 3 s passed)",
            40060: "the interaction was answered already"}


def use_endpoints(settings: Settings) -> None:
    """Point discord.py at the configured REST base and gateway, Discord's by default.

    discord.py reads both from class attributes, so this holds for the whole process.
    """
    Route.BASE = settings.discord_api_url.rstrip("/") or DISCORD_API_URL
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        settings.discord_gateway_url or DISCORD_GATEWAY_URL)


def _intents() -> discord.Intents:
    """No privileged intent: Discord sends the content of mentions and DMs regardless."""
    intents = discord.Intents.none()
    intents.guilds = True  # caches servers, channels and roles (for the admin role check)
    intents.guild_messages = True
    intents.dm_messages = True
    return intents


def _addressed(message: discord.Message, me: discord.ClientUser) -> bool:
    """The message mentions the bot, or its own role (the one Discord made for it, which
    Discord's autocomplete offers beside the bot when someone types @careerbot)."""
    own = message.guild.self_role if message.guild is not None else None
    return me in message.mentions or (own is not None and own in message.role_mentions)


def _asker(message: discord.Message) -> int | None:
    """Who the bot's `message` answers: who used the command or button it answers, or
    the author of the message it replies to; None when it does not say (a later page)."""
    if message.interaction_metadata is not None:
        return message.interaction_metadata.user.id
    replied = message.reference.resolved if message.reference is not None else None
    return replied.author.id if isinstance(replied, discord.Message) else None


def _conversation(channel_id: int | None, user_id: int) -> str:
    """Follow-up context is kept per channel (or DM) and user."""
    return f"discord:{channel_id}:{user_id}"


class CareerBot(discord.Client):
    """Holds the engine and translates Discord events to queries and replies to messages."""

    def __init__(self, engine: Engine, settings: Settings, recorder: Recorder | None = None,
                 runtime: Runtime | None = None, **options: Any):
        super().__init__(intents=_intents(), allowed_mentions=NO_MENTIONS, **options)
        self.engine = engine
        self.settings = settings
        self.recorder = recorder or Recorder.off()  # learning from use
        self.rt = runtime or Runtime(engine, settings)  # shared state, metrics, health
        self.tree = _Tree(self)
        _add_commands(self.tree, settings)
        self.tree.error(self._on_command_error)
        #: per gateway connection (None: the only one), READY or RESUMED since it dropped
        self._gateway: dict[int | None, bool] = {}
        #: the registered commands' ids by name, globally (None) and per server, and when
        #: they were fetched: what `/help` links to
        self._command_ids: dict[int | None, tuple[float, dict[str, int]]] = {}

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FollowUpButton, VoteButton)
        await self.command_ids(None)

    async def command_ids(self, guild_id: int | None) -> dict[str, int]:
        """The ids of the chat commands registered globally or to `guild_id` (by name), as
        fetched within the last ten minutes; none until `sync-commands` has run, or when
        Discord will not say."""
        fetched, ids = self._command_ids.get(guild_id, (-math.inf, {}))
        if time.monotonic() - fetched < _COMMANDS_TTL:
            return ids
        try:
            registered = await self.tree.fetch_commands(
                guild=discord.Object(guild_id) if guild_id else None)
            ids = {c.name: c.id for c in registered
                   if c.type is discord.AppCommandType.chat_input}
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("could not fetch the registered commands (%s): /help names them "
                        "without links", getattr(exc, "status", type(exc).__name__))
        self._command_ids[guild_id] = (time.monotonic(), ids)
        return ids

    async def linked(self, reply: Reply, guild_id: int | None) -> Reply:
        """`reply` with each command it names (`/compare <aspect>`) as a clickable mention
        (</compare:ID> `<aspect>`) once the commands are registered; as it was before."""
        if "`/" not in reply.text:
            return reply
        ids = await self.command_ids(None)
        if guild_id:
            ids = {**ids, **await self.command_ids(guild_id)}  # a server's own come first

        def mention(found: re.Match[str]) -> str:
            name, rest = found[1], found[2].strip()
            if name not in ids:
                return found[0]
            return f"</{name}:{ids[name]}>" + (f" `{rest}`" if rest else "")
        return replace(reply, text=_COMMAND.sub(mention, reply.text))

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        self.rt.metrics.errors.labels("discord").inc()
        log.exception("Discord event %s failed", event_method)

    # ------------------------------------------------------------------ the gateway, for /healthz

    def connections(self) -> list[int | None]:
        """The gateway connections this process runs: one, or its shards."""
        return [None]

    def gateway_up(self) -> bool:
        """Every connection has identified or resumed since it last dropped (readiness)."""
        return (not self.is_closed() and self.is_ready()
                and all(self._gateway.get(c, False) for c in self.connections()))

    def _connected(self, shard: int | None, how: str) -> None:
        was = self._gateway.get(shard)
        if was is None:
            log.info("Discord gateway%s ready", _shard(shard))
        elif not was:  # back after a drop
            log.info("Discord gateway%s %s: ready again", _shard(shard), how)
        self._gateway[shard] = True

    def _dropped(self, shard: int | None) -> None:
        if self._gateway.get(shard, True):  # once an outage, however many retries it takes
            log.warning("Discord gateway%s disconnected: not ready until it is back",
                        _shard(shard))
        self._gateway[shard] = False

    async def on_ready(self) -> None:
        self._connected(None, "identified again")

    async def on_resumed(self) -> None:
        self._connected(None, "resumed")

    async def on_disconnect(self) -> None:
        self._dropped(None)

    # ------------------------------------------------------------------ mentions and DMs

    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.bot:  # other bots, webhooks and ourselves
            return
        if not isinstance(message.channel, discord.DMChannel) and not _addressed(message, me):
            return
        self.rt.track()
        text = _question(message.content)  # an empty mention gets the help
        notice = await self.cooling_down(message.author)
        reply = None
        if notice is not None and not isinstance(message.channel, discord.DMChannel):
            # never a public "slow down" in a channel: a reaction only the asker looks for
            with contextlib.suppress(discord.HTTPException):
                await message.add_reaction(_SLOW_DOWN)
            return
        if notice is not None:
            pages = render_text(notice)
        else:
            reply = await self.rt.ask(Query(
                text, _conversation(message.channel.id, message.author.id),
                user=str(message.author.id), platform="discord"))
            reply = await self.linked(reply, message.guild.id if message.guild else None)
            pages = render(reply, embeds=_may_embed(message.channel))
        try:
            await _post(message.channel, message, pages, reply)
        except discord.Forbidden:
            log.warning("no permission to reply in channel %s", message.channel.id)
        if reply is not None:
            self.recorder.question(reply, text=text, platform="discord",
                                   user=str(message.author.id), channel=str(message.channel.id))

    # ------------------------------------------------------------------ interactions

    async def answer_message(self, interaction: discord.Interaction,
                             message: discord.Message) -> None:
        """"Ask careerbot" on a message: its text is the question, asked by whoever used
        the menu. Where the bot is in the server and may post, the answer replies to the
        message (no ping) and the user is told where it is; elsewhere (a user install, a DM,
        no permission) it is the interaction's answer."""
        if await self.refused(interaction):
            return
        text = _question(message.content)
        if not text:
            await _respond(interaction, render_text(
                "That message has no text I can answer: try it on a message with a question "
                "in words, or use /ask."), ephemeral=True)
            return
        reply = await self.linked(await self.rt.ask(self.query(interaction, text)),
                                  _server(interaction))
        pages = render(reply)
        channel = interaction.channel
        sent = None
        if (interaction.is_guild_integration() and _may_reply(interaction)
                and isinstance(channel, discord.abc.Messageable)):
            try:
                sent = await _post(channel, message, render(
                    reply, embeds=interaction.app_permissions.embed_links), reply)
            except discord.Forbidden:
                log.warning("no permission to reply in channel %s", interaction.channel_id)
        if sent is not None:
            await _respond(interaction, render_text(f"I answered that message: {sent.jump_url}"),
                           ephemeral=True)
        else:
            await _respond(interaction, pages)
        self.recorder.question(reply, text=text, platform="discord",
                               user=str(interaction.user.id),
                               channel=str(interaction.channel_id or ""))

    async def cooling_down(self, user: discord.abc.User) -> str | None:
        """A friendly notice if `user` asks faster than the per-minute limit (counted
        across replicas), else None.

        (Too-long questions are the engine's to answer: it asks for a shorter one.)
        """
        wait = math.ceil(await self.rt.retry_after("discord", str(user.id)))
        if not wait:
            return None
        return f"You're asking faster than I can answer: please try again in {wait}s."

    async def refused(self, interaction: discord.Interaction) -> bool:
        """Answer with an ephemeral notice while `interaction.user` cools down."""
        notice = await self.cooling_down(interaction.user)
        if notice is not None:
            await _respond(interaction, render_text(notice), ephemeral=True)
        return notice is not None

    def query(self, interaction: discord.Interaction, text: str) -> Query:
        return Query(text, _conversation(interaction.channel_id, interaction.user.id),
                     user=str(interaction.user.id), platform="discord")

    async def remember(self, interaction: discord.Interaction, reply: Reply) -> None:
        """Answers not from `Engine.answer` (compare, buttons) still set follow-up context."""
        await self.rt.remember(_conversation(interaction.channel_id, interaction.user.id), reply)

    def is_admin(self, user: discord.User | discord.Member) -> bool:
        """Listed in CAREERBOT_DISCORD_ADMINS by user id or by one of the member's roles."""
        ids = {user.id, *(role.id for role in getattr(user, "roles", ()))}
        return any(str(i) in self.settings.discord_admin_ids for i in ids)

    async def answer_follow_up(self, interaction: discord.Interaction, topic: str,
                               role: Role) -> None:
        self.rt.track()
        if await self.refused(interaction):
            return
        if topic not in self.engine.knowledge.topics:  # removed by a reload since
            await _respond(interaction, render_text(
                "That suggestion is out of date: please ask me again."), ephemeral=True)
            return
        reply = self.engine.topic_reply(topic, role)
        await self.remember(interaction, reply)
        # someone else's answer: theirs stays as it was, and only the presser sees this
        message = interaction.message
        ephemeral = message is not None and (message.flags.ephemeral
                                             or _asker(message) != interaction.user.id)
        await _respond(interaction, render(reply), ephemeral=ephemeral)

    async def record_vote(self, interaction: discord.Interaction, topic: str, role: Role,
                          helpful: bool) -> None:
        """One vote a user per answer (the message it is under), changeable; the buttons
        then show the answer's tally (and, on a message only they see, which is theirs)."""
        self.rt.track()
        message = interaction.message
        vote = await self.rt.vote("discord", str(interaction.user.id),
                                  str(message.id) if message is not None else "", topic, role,
                                  helpful)
        log.info("vote %s: topic=%s role=%s user=%s channel=%s: %s",
                 "helpful" if helpful else "not helpful", topic, role,
                 user_ref("discord", interaction.user.id), interaction.channel_id,
                 vote.outcome)
        if vote.outcome == "refused":
            await _respond(interaction, render_text(
                "That answer is out of date, so your vote was not counted: please ask me "
                "again."), ephemeral=True)
            return
        if vote.recorded:
            self.recorder.vote(platform="discord", user=str(interaction.user.id),
                               channel=str(interaction.channel_id or ""), topic=topic,
                               role=role, helpful=helpful,
                               message=str(message.id) if message is not None else "")
        private = message is not None and message.flags.ephemeral
        view = _voted(message, vote.tally, vote.choice if private else None)
        if view is not None:
            await interaction.response.edit_message(view=view)
        if not private:  # the public buttons show the tally, not who voted what
            mine = "helpful" if helpful else "not helpful"
            await _respond(interaction, render_text(
                f"Thanks for the feedback! You marked this answer {mine}; press the other "
                "button to change your vote."), ephemeral=True)

    async def _on_command_error(self, interaction: discord.Interaction,
                                error: app_commands.AppCommandError) -> None:
        """Never raises: an interaction that can no longer be answered is counted and logged
        once; otherwise the user is told, in place of the answer or of a deferred reply's
        "thinking…"."""
        name = interaction.command.name if interaction.command else "?"
        await self.failed(interaction, f"/{name}", getattr(error, "original", error))

    async def failed(self, interaction: discord.Interaction, where: str,
                     cause: BaseException) -> None:
        """What a command or a button that failed comes to; never raises."""
        self.rt.metrics.errors.labels("discord").inc()
        if isinstance(cause, discord.HTTPException) and cause.code in _EXPIRED:
            self.undelivered(where, cause)
            return
        log.error("%s failed", where, exc_info=cause)
        page = render_text("Sorry, something went wrong on my side.")[0]
        try:
            if interaction.response.is_done():  # deferred, or answered before it failed
                await interaction.followup.send(ephemeral=True, **page.kwargs())
            else:
                await interaction.response.send_message(ephemeral=True, **page.kwargs())
        except discord.HTTPException as exc:
            self.undelivered(where, exc)

    def undelivered(self, where: str, error: discord.HTTPException) -> None:
        """A reply Discord would not take: counted and logged once, with Discord's code
        and why, never what it said or who asked."""
        reason = str(error.code or f"http {error.status}")
        self.rt.metrics.undelivered.labels("discord", reason).inc()
        why = _EXPIRED.get(error.code) or f"{error.status} {error.text or 'no reason given'}"
        log.warning("a reply could not be delivered (%s): Discord %s: %s", where, reason, why,
                    extra={"fields": {"platform": "discord", "reason": reason}})


class ShardedCareerBot(CareerBot, discord.AutoShardedClient):
    """The same bot over several gateway connections (DISCORD_SHARD_COUNT > 1): all of
    them, or the DISCORD_SHARD_IDS this process runs while other processes run the rest."""

    def connections(self) -> list[int | None]:
        return list(self.shard_ids or range(self.shard_count or 1))

    async def on_ready(self) -> None:  # per shard below: these come for the whole client
        pass

    async def on_resumed(self) -> None:
        pass

    async def on_disconnect(self) -> None:
        pass

    async def on_shard_ready(self, shard_id: int) -> None:
        self._connected(shard_id, "identified again")

    async def on_shard_resumed(self, shard_id: int) -> None:
        self._connected(shard_id, "resumed")

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self._dropped(shard_id)


def _shard(shard: int | None) -> str:
    return "" if shard is None else f" (shard {shard})"


class _ReconnectLine(logging.Filter):
    """discord.py logs each attempt to reconnect the gateway at ERROR with a traceback;
    an outage is no bug of ours: one WARNING line each, with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Attempting a reconnect"):
            error = record.exc_info[1]
            why = f"{type(error).__name__}: {error}".replace("%", "%%")
            record.msg = f"{record.msg} ({why})"
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_RECONNECT_LINE = _ReconnectLine()


class _Tree(app_commands.CommandTree[CareerBot]):
    async def interaction_check(self, interaction: discord.Interaction[CareerBot]) -> bool:
        """Every command and autocomplete counts as in flight until it ends."""
        self.client.rt.track()
        return True


def create_client(engine: Engine, settings: Settings, recorder: Recorder | None = None, *,
                  runtime: Runtime | None = None) -> CareerBot:
    if settings.discord_shard_count > 1:
        return ShardedCareerBot(engine, settings, recorder, runtime,
                                shard_count=settings.discord_shard_count,
                                shard_ids=list(settings.discord_shard_ids) or None)
    return CareerBot(engine, settings, recorder, runtime)


def _voted(message: discord.Message | None, tally: dict[str, int],
           mine: str | None) -> discord.ui.View | None:
    """The message's buttons again, the votes showing `tally` (choice -> votes) and
    `mine` marked; None when there is nothing to show (no tally, no buttons of ours)."""
    if message is None or not tally:
        return None
    items: list[discord.ui.Item[Any]] = []
    for row in message.components:
        for component in getattr(row, "children", ()):
            custom_id = getattr(component, "custom_id", None) or ""
            if found := FollowUpButton.__discord_ui_compiled_template__.fullmatch(custom_id):
                items.append(FollowUpButton(component.label or found["topic"], found["topic"],
                                            cast(Role, found["role"])))
            elif found := VoteButton.__discord_ui_compiled_template__.fullmatch(custom_id):
                vote = VoteButton(found["vote"] == "up", found["topic"],
                                  cast(Role, found["role"]))
                choice = "helpful" if vote.helpful else "not_helpful"
                label = f"{vote.item.label} · {tally.get(choice, 0)}"
                vote.item.label = f"✓ {label}" if choice == mine else label
                items.append(vote)
    if not any(isinstance(item, VoteButton) for item in items):
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


def _server(interaction: discord.Interaction) -> int | None:
    """The server the interaction came from, if the bot is installed there."""
    return interaction.guild_id if interaction.is_guild_integration() else None


def _may_reply(interaction: discord.Interaction) -> bool:
    """The bot's own permissions where the interaction came from let it post a reply."""
    perms = interaction.app_permissions
    may_send = (perms.send_messages_in_threads if isinstance(interaction.channel, discord.Thread)
                else perms.send_messages)
    return perms.view_channel and may_send and perms.read_message_history


def _may_embed(channel: discord.abc.Messageable) -> bool:
    """The bot has Embed Links in `channel`, as far as the cache knows (DMs: always; a
    channel or member not cached: assumed, and `_post` falls back if Discord says no)."""
    guild = getattr(channel, "guild", None)
    me = guild.me if guild is not None else None
    if me is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return True
    return channel.permissions_for(me).embed_links


async def _post(channel: discord.abc.Messageable, question: discord.Message,
                pages: list[Page], reply: Reply | None = None) -> discord.Message:
    """`pages` as messages in `channel`, the first replying to `question` (no ping: the
    pages' allowed mentions are none); the first message sent. Refused for want of a
    permission (50013) with embeds in them, `reply` goes again as plain text: the bot
    lacked Embed Links where the cache could not tell."""
    first, *rest = pages
    try:
        sent = await channel.send(reference=question.to_reference(fail_if_not_exists=False),
                                  **first.kwargs())
    except discord.Forbidden as exc:
        if exc.code != _MISSING_PERMISSIONS or not first.embeds or reply is None:
            raise
        log.info("no Embed Links in channel %s: answering in plain text",
                 getattr(channel, "id", "?"))
        return await _post(channel, question, render(reply, embeds=False))
    for page in rest:
        await channel.send(**page.kwargs())
    return sent


async def _respond(interaction: discord.Interaction, pages: list[Page], *,
                   ephemeral: bool = False) -> None:
    """The first page answers the interaction (unless deferred); the rest follow up."""
    for page in pages:
        if interaction.response.is_done():
            await interaction.followup.send(ephemeral=ephemeral, **page.kwargs())
        else:
            await interaction.response.send_message(ephemeral=ephemeral, **page.kwargs())


# ---------------------------------------------------------------------- slash commands
# Everyone's commands work where the bot is in the server and, installed by a user to
# their account, in any server, in DMs and group DMs; the admin commands only in servers
# that installed it.

Interaction: TypeAlias = discord.Interaction[CareerBot]
def _ask(max_question: int) -> app_commands.Command[Any, ..., None]:
    """/ask, its question at most `max_question` characters long: Discord's box stops
    there, where the engine stops reading (CAREERBOT_MAX_MESSAGE_CHARS)."""

    async def ask(interaction: Interaction, question: str, private: bool = False) -> None:
        bot = interaction.client
        if await bot.refused(interaction):
            return
        reply = await bot.rt.ask(bot.query(interaction, question))
        await _respond(interaction, render(await bot.linked(reply, _server(interaction))),
                       ephemeral=private)
        bot.recorder.question(reply, text=question, platform="discord",
                              user=str(interaction.user.id),
                              channel=str(interaction.channel_id or ""))

    ask.__annotations__["question"] = app_commands.Range[str, 1, max_question]
    described = app_commands.describe(question="Your question, in plain words",
                                      private="Answer only to me (no one else sees it)")(ask)
    command: app_commands.Command[Any, ..., None] = app_commands.command(
        description="Ask about data scientists and ML engineers")(described)
    return app_commands.allowed_installs(guilds=True, users=True)(
        app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)(command))


@app_commands.context_menu(name="Ask careerbot")
@app_commands.allowed_installs(guilds=True, users=True)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
async def ask_about(interaction: Interaction, message: discord.Message) -> None:
    await interaction.client.answer_message(interaction, message)


@app_commands.command(description="Data scientist vs ML engineer, side by side")
@app_commands.allowed_installs(guilds=True, users=True)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
@app_commands.describe(aspect="What to compare, e.g. salary, skills or tools")
async def compare(interaction: Interaction,
                  aspect: app_commands.Range[str, 1, MAX_ASPECT]) -> None:
    bot = interaction.client
    if await bot.refused(interaction):
        return
    reply = bot.engine.compare(aspect)
    await bot.remember(interaction, reply)
    await _respond(interaction, render(reply))


@compare.autocomplete("aspect")
async def _aspect_choices(interaction: Interaction,
                          current: str) -> list[app_commands.Choice[str]]:
    aspects = interaction.client.engine.suggest_aspects(current[:100], limit=25)
    return [app_commands.Choice(name=a, value=a) for a in aspects]


@app_commands.command(description="Everything careerbot can answer")
@app_commands.allowed_installs(guilds=True, users=True)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
async def topics(interaction: Interaction) -> None:
    await _respond(interaction, render(interaction.client.engine.topics()), ephemeral=True)


@app_commands.command(name="help", description="How to use careerbot")
@app_commands.allowed_installs(guilds=True, users=True)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
async def help_(interaction: Interaction) -> None:
    bot = interaction.client
    await _respond(interaction, render(await bot.linked(bot.engine.help(), _server(interaction))),
                   ephemeral=True)


@app_commands.command(description="Reload the knowledge base (careerbot admins)")
@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
@app_commands.guild_install()
async def reload(interaction: Interaction) -> None:
    bot = interaction.client
    who = (f"user {user_ref('discord', interaction.user.id)} in guild {interaction.guild_id} "
           f"channel {interaction.channel_id}")
    if not bot.is_admin(interaction.user):
        log.warning("reload refused: %s is not a careerbot admin", who)
        await _respond(interaction, render_text(
            "Only careerbot admins can reload the knowledge base "
            "(their user or role ids are listed in CAREERBOT_DISCORD_ADMINS)."), ephemeral=True)
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    outcome = await bot.rt.reload()
    log.log(logging.INFO if outcome.ok else logging.WARNING, "reload by %s: %s", who,
            outcome.summary())
    await _respond(interaction, render_text(outcome.summary()), ephemeral=True)


@app_commands.command(description="Unanswered questions and votes, last 7 days (careerbot admins)")
@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
@app_commands.guild_install()
async def stats(interaction: Interaction) -> None:
    bot = interaction.client
    if not bot.is_admin(interaction.user):
        log.warning("stats refused: user %s in guild %s is not a careerbot admin",
                    user_ref("discord", interaction.user.id), interaction.guild_id)
        await _respond(interaction, render_text(
            "Only careerbot admins can see its stats "
            "(their user or role ids are listed in CAREERBOT_DISCORD_ADMINS)."), ephemeral=True)
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    await _respond(interaction, render(await bot.recorder.stats()), ephemeral=True)


def _add_commands(tree: app_commands.CommandTree[Any], settings: Settings) -> None:
    commands: tuple[app_commands.Command[Any, ..., None], ...] = (
        _ask(settings.max_message_chars), compare, topics, help_, reload, stats)
    for command in commands:
        tree.add_command(command)
    tree.add_command(ask_about)


# ---------------------------------------------------------------------- entry points


def _check_token(settings: Settings) -> None:
    if not settings.discord_token.strip():
        raise ConfigurationError(_NO_TOKEN)


async def run_discord(engine: Engine, settings: Settings, recorder: Recorder | None = None,
                      *, runtime: Runtime | None = None) -> None:
    """Serve Discord until cancelled; a missing or rejected token raises ConfigurationError."""
    _check_token(settings)
    use_endpoints(settings)
    logging.getLogger("discord.client").addFilter(_RECONNECT_LINE)  # once, however often
    async with create_client(engine, settings, recorder, runtime=runtime) as client:
        # ready (for /healthz) while every shard this process runs is connected
        client.rt.set_platform("discord", client.gateway_up)
        await _login(client, settings.discord_token)
        try:
            await client.connect()
        except discord.PrivilegedIntentsRequired:
            raise ConfigurationError(_CLOSED[4014]) from None
        except discord.ConnectionClosed as exc:
            if exc.code in _CLOSED:  # the gateway will not take the bot back
                raise ConfigurationError(_CLOSED[exc.code]) from None
            raise


async def _login(client: discord.Client, token: str) -> None:
    """Log in over REST; a rejected token, or an API that cannot be reached, is a
    ConfigurationError saying which (the address without any credentials in it)."""
    where = yarl.URL(Route.BASE).with_user(None)
    try:
        async with asyncio.timeout(_LOGIN_TIMEOUT):
            await client.login(token)
    except discord.LoginFailure:
        raise ConfigurationError(_BAD_TOKEN) from None
    except TimeoutError:
        raise ConfigurationError(f"Discord's API at {where} did not answer within "
                                 f"{_LOGIN_TIMEOUT:.0f} s: check DISCORD_API_URL and the "
                                 "network.") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise ConfigurationError(f"cannot reach Discord's API at {where} "
                                 f"({type(exc).__name__}: {_reason(exc)}): check "
                                 "DISCORD_API_URL and the network.") from None
    except discord.HTTPException as exc:
        raise ConfigurationError(f"Discord's API at {where} answered {exc.status} at login: "
                                 "try again later, or check DISCORD_API_URL.") from None


def _reason(exc: BaseException) -> str:
    """An OS error's own words ('Connection refused'), not aiohttp's with the address."""
    number = getattr(getattr(exc, "os_error", exc), "errno", None)
    return os.strerror(number) if number else str(exc)


#: servers whose own commands a global sync looks at for duplicates (one request each)
_SERVERS_CHECKED = 25


async def sync_commands(settings: Settings, guild_id: int | None = None, *,
                        clear: bool = False,
                        warnings: list[str] | None = None) -> list[app_commands.AppCommand]:
    """Register the commands globally, or to one server (instantly, for testing); with
    `clear`, remove them there instead. Where a server would show the same command twice
    (registered to it and globally), a sentence saying so is added to `warnings`."""
    _check_token(settings)
    use_endpoints(settings)
    async with discord.Client(intents=_intents()) as client:
        tree = app_commands.CommandTree(client)
        if not clear:
            _add_commands(tree, settings)
        try:
            await client.login(settings.discord_token)
        except discord.LoginFailure:
            raise ConfigurationError(_BAD_TOKEN) from None
        guild = discord.Object(guild_id) if guild_id else None
        if guild is not None and not clear:
            tree.copy_global_to(guild=guild)
        synced = await tree.sync(guild=guild)
        if synced and warnings is not None:
            warnings += await _duplicates(client, tree, synced, guild_id)
        return synced


async def _duplicates(client: discord.Client, tree: app_commands.CommandTree[Any],
                      synced: list[app_commands.AppCommand], guild_id: int | None) -> list[str]:
    """Where `synced` (to `guild_id`, or global) and the other kind both register a name."""
    names = {c.name for c in synced}

    def twice(other: list[app_commands.AppCommand]) -> str:
        return ", ".join(_shown(c) for c in other if c.name in names)
    if guild_id is not None:
        shown = twice(await tree.fetch_commands())
        return [f"server {guild_id} shows these twice, as they are registered globally too: "
                f"{shown}. Remove one set: `careerbot discord sync-commands --guild "
                f"{guild_id} --clear` (once you are done testing) or `sync-commands --clear` "
                "(the global ones)."] if shown else []
    found = []
    guilds = [g async for g in client.fetch_guilds(limit=_SERVERS_CHECKED + 1)]
    for server in guilds[:_SERVERS_CHECKED]:
        try:
            shown = twice(await tree.fetch_commands(guild=server))
        except discord.HTTPException:  # commands not ours to read there
            continue
        if shown:
            found.append(f"server {server.id} shows these twice, as they are registered to "
                         f"it too: {shown}. Remove its own: `careerbot discord sync-commands "
                         f"--guild {server.id} --clear`.")
    if len(guilds) > _SERVERS_CHECKED:
        found.append(f"only the first {_SERVERS_CHECKED} servers were checked for commands "
                     "registered to them as well as globally.")
    return found


def _shown(command: app_commands.AppCommand) -> str:
    return (f"/{command.name}" if command.type is discord.AppCommandType.chat_input
            else f'"{command.name}" (on a message)')


def sync_commands_cli(settings: Settings, guild_id: int | None = None,
                      clear: bool = False) -> int:
    """`careerbot discord sync-commands [--guild ID] [--clear]`: a deliberate step, not on
    every start."""
    warnings: list[str] = []
    try:
        synced = asyncio.run(sync_commands(settings, guild_id, clear=clear, warnings=warnings))
    except ConfigurationError as exc:
        print(f"careerbot: {exc}", file=sys.stderr)
        return 2
    except discord.HTTPException as exc:  # e.g. 403: not in that server, or no commands scope
        print(f"careerbot: Discord refused the commands ({exc.status}): {exc.text}",
              file=sys.stderr)
        return 1
    if clear:
        print(f"Removed careerbot's commands from server {guild_id}." if guild_id else
              "Removed careerbot's global commands (Discord can take up to an hour to stop "
              "showing them everywhere).")
        return 0
    names = ", ".join(map(_shown, synced))
    where = (f"to server {guild_id} (available now)" if guild_id else
             "globally (Discord can take up to an hour to show them everywhere)")
    print(f"Registered {len(synced)} commands {where}: {names}")
    for warning in warnings:
        print(f"careerbot: warning: {warning}", file=sys.stderr)
    return 0
