"""The Discord adapter end to end: the real discord.py client against a local Discord.

`run_discord` logs in over REST, connects to the fake's gateway (zlib-stream),
receives the interactions and messages a test dispatches, and answers over
REST; every assertion is on what the local Discord recorded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

with warnings.catch_warnings():
    # discord.py imports the stdlib's deprecated `audioop` (for voice, which we don't use)
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from bot.adapters.discord import run_discord, sync_commands
    from bot.adapters.discord.render import (
        DESCRIPTION_CHARS,
        EMBED_CHARS,
        EMBEDS_PER_MESSAGE,
        FIELD_VALUE_CHARS,
        FIELDS_PER_EMBED,
        render,
        render_text,
        split_text,
    )
from bot.adapters.errors import ConfigurationError
from bot.core import Comparison, ComparisonRow, Engine, Reply
from bot.core.models import Source, Suggestion
from bot.logs import user_ref
from bot.runtime import Runtime
from bot.settings import Settings
from tests.fakes.discord import (
    BOT_PERMISSIONS,
    EMBED_LINKS,
    EPHEMERAL,
    Failure,
    FakeDiscord,
    Request,
)

TOKEN = "MTA.fake-bot-token.for-tests-only"
WAIT = 5.0
D = FakeDiscord
ADMINS = frozenset({str(D.ADMIN_ID), str(D.ADMIN_ROLE_ID)})


# ---------------------------------------------------------------------- harness


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(TOKEN) as fake:
        yield fake


def settings_for(fake: FakeDiscord, **changes: Any) -> Settings:
    return Settings(discord_token=TOKEN, discord_api_url=fake.api_url,
                    discord_gateway_url=fake.gateway_url, discord_admin_ids=ADMINS, **changes)


@asynccontextmanager
async def serving(engine: Engine, settings: Settings, fake: FakeDiscord,
                  shards: int = 1, timeout: float = WAIT,
                  runtime: Runtime | None = None) -> AsyncIterator[None]:
    """`run_discord` as `careerbot serve discord` runs it, stopped by cancellation."""
    task = asyncio.create_task(run_discord(engine, settings, runtime=runtime))
    try:
        try:
            await fake.wait_ready(shards, timeout)
        except TimeoutError:
            if task.done():
                task.result()  # why the client stopped
            raise
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)


@pytest.fixture
async def bot(discord: FakeDiscord, engine: Engine) -> AsyncIterator[FakeDiscord]:
    """A connected bot with the shipped knowledge; yields the local Discord to drive it."""
    async with serving(engine, settings_for(discord), discord):
        yield discord


def data(request: Request) -> dict[str, Any]:
    """The message an interaction callback carried."""
    return request.body["data"]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for row in message.get("components", []) for c in row["components"]]


def assert_nothing_pings(fake: FakeDiscord) -> None:
    """Every message the bot sent, whatever it echoed, disallows all mentions."""
    sent = [r.body.get("data", r.body) for r in fake.requests if r.message is not None]
    sent = [body for body in sent if "content" in body or "embeds" in body]
    assert sent
    for body in sent:
        assert body["allowed_mentions"]["parse"] == []
        assert not body["allowed_mentions"].get("replied_user")
        assert "users" not in body["allowed_mentions"]
        assert "roles" not in body["allowed_mentions"]


# ---------------------------------------------------------------------- slash commands


async def test_ask_answers_with_an_embed_sources_and_buttons(bot: FakeDiscord):
    callback = await bot.interact(bot.slash("ask", question="what do MLEs earn?"))

    assert callback.body["type"] == 4  # a message, within Discord's 3 seconds
    message = data(callback)
    assert not message.get("flags", 0) & EPHEMERAL
    [embed] = message["embeds"]
    assert embed["title"] == "Salary and compensation: ML engineer"
    assert embed["description"]
    [sources] = [f for f in embed["fields"] if f["name"] == "Sources"]
    assert "](https://bluebirdinternational.com/" in sources["value"]  # a link, not a footer
    assert "footer" not in embed
    assert len(message["components"]) == 2  # a row of follow-ups, a row of votes
    ids = [b["custom_id"] for b in buttons(message)]
    assert ids[:3] == ["careerbot:ask:career_path:ml_engineer",
                       "careerbot:ask:which_to_choose:both", "careerbot:ask:job_outlook:both"]
    assert ids[3:] == ["careerbot:vote:up:salary:ml_engineer",
                       "careerbot:vote:down:salary:ml_engineer"]
    assert_nothing_pings(bot)


async def test_an_answer_opens_with_its_short_answer_in_bold(bot: FakeDiscord,
                                                              engine: Engine):
    """The embed's description opens with the short answer in bold, the details under it."""
    callback = await bot.interact(bot.slash("ask", question="what do MLEs earn?"))
    [embed] = data(callback)["embeds"]
    short = engine.knowledge.topics["salary"].short["ml_engineer"]
    first, details = embed["description"].split("\n\n")[:2]
    assert first == f"**{short}**"
    assert details.startswith("An ML engineer in the US earns")


async def test_ask_privately_answers_only_to_the_asker(bot: FakeDiscord):
    private = data(await bot.interact(bot.slash("ask", question="what do MLEs earn?",
                                                private=True)))
    assert private["flags"] & EPHEMERAL
    assert private["embeds"][0]["title"] == "Salary and compensation: ML engineer"
    public = data(await bot.interact(bot.slash("ask", question="what do MLEs earn?",
                                               private=False)))
    assert not public.get("flags", 0) & EPHEMERAL


@pytest.mark.parametrize("limit", [500, 2000, 4000])
async def test_the_question_box_stops_where_the_engine_stops_reading(discord: FakeDiscord,
                                                                     limit: int):
    """The synced max_length is CAREERBOT_MAX_MESSAGE_CHARS, the engine's own limit."""
    settings = replace(settings_for(discord), match=replace(Settings().match,
                                                            max_message_chars=limit))
    assert settings.max_message_chars == limit
    await sync_commands(settings)
    put = await discord.wait_for(lambda r: r.path == f"/applications/{D.APP_ID}/commands")
    [ask] = [c for c in put.body if c["name"] == "ask"]
    question, private = ask["options"]
    assert (question["name"], question["min_length"], question["max_length"]) == (
        "question", 1, limit)
    assert question["required"] is True
    assert private == {"name": "private", "type": 5, "required": False,
                       "description": "Answer only to me (no one else sees it)"}


async def test_too_long_question_gets_a_polite_reply(bot: FakeDiscord):
    callback = await bot.interact(bot.slash("ask", question="why " * 600))
    assert data(callback)["embeds"][0]["title"] == "That's a long message"


async def test_compare_autocompletes_aspects_and_answers_side_by_side(bot: FakeDiscord):
    typed = await bot.interact(bot.autocomplete("compare", "aspect", "sal"))
    assert typed.body["type"] == 8
    choices = typed.body["data"]["choices"]
    assert choices[0] == {"name": "salary", "value": "salary"}

    everything = await bot.interact(bot.autocomplete("compare", "aspect", ""))
    assert 1 < len(everything.body["data"]["choices"]) <= 25

    callback = await bot.interact(bot.slash("compare", aspect="salary"))
    [embed] = data(callback)["embeds"]
    assert embed["title"] == "Data scientist vs ML engineer: Salary and compensation"
    *fields, sources = embed["fields"]  # the rows, three fields each, then the sources
    assert sources["name"] == "Sources" and "](https://" in sources["value"]
    assert len(fields) % 3 == 0 and len(fields) < 25
    first_row = fields[:3]
    assert first_row[0]["name"].endswith(": Data scientist")
    assert first_row[1]["name"].endswith(": ML engineer")
    assert first_row[2]["name"] == first_row[2]["value"] == "\u200b"  # ends the row
    assert all(f["inline"] for f in fields)


async def test_compare_unknown_aspect_offers_buttons(bot: FakeDiscord):
    callback = await bot.interact(bot.slash("compare", aspect="sal"))
    message = data(callback)
    assert "salary" in message["embeds"][0]["description"]
    assert any(b["custom_id"] == "careerbot:ask:salary:both" for b in buttons(message))


@pytest.mark.parametrize("aspect", [
    "[free nitro](https://evil.example)", "||spoiler|| `code` <@&456> \u202eexe \x00\x1b[31m",
])
async def test_compare_never_echoes_markup(bot: FakeDiscord, aspect: str):
    """What a user typed comes back as plain words: no masked link, mention, spoiler,
    code span, bidi or control character reaches the bot's own embed."""
    callback = await bot.interact(bot.slash("compare", aspect=aspect))
    description = data(callback)["embeds"][0]["description"]
    for markup in ("](", "https://", "||", "`c", "<@&", "\u202e", "\x00", "\x1b"):
        assert markup not in description, markup
    assert_nothing_pings(bot)


async def test_topics_and_help_are_ephemeral(bot: FakeDiscord):
    topics = data(await bot.interact(bot.slash("topics")))
    assert topics["flags"] & EPHEMERAL
    assert topics["embeds"][0]["title"] == "What you can ask me"
    assert "Salary and compensation" in topics["embeds"][0]["description"]

    help_ = data(await bot.interact(bot.slash("help")))
    assert help_["flags"] & EPHEMERAL
    assert help_["embeds"][0]["title"] == "How to use careerbot"


async def test_help_links_the_commands_once_they_are_registered(discord: FakeDiscord,
                                                                 engine: Engine):
    """Before `sync-commands`, /help names `/compare`; after, it is a clickable
    </compare:ID> with the id Discord gave it (a server's own commands, or the global)."""
    async with serving(engine, settings_for(discord), discord):
        before = data(await discord.interact(discord.slash("help")))
    assert "`/compare <aspect>`" in before["embeds"][0]["description"]

    for guild in (D.GUILD_ID, None):
        discord.commands.clear()
        synced = {c.name: c.id for c in await sync_commands(settings_for(discord),
                                                             guild_id=guild)}
        async with serving(engine, settings_for(discord), discord):
            help_ = data(await discord.interact(discord.slash("help")))
            mention = await discord.post_message(discord.message("help"))
        for description in (help_["embeds"][0]["description"],
                            mention.body["embeds"][0]["description"]):
            assert f"</compare:{synced['compare']}> `<aspect>`" in description
            assert f"</topics:{synced['topics']}>" in description
            assert "`/compare" not in description


# ---------------------------------------------------------------------- mentions and DMs


async def test_mention_is_answered_as_a_reply_with_follow_up_context(bot: FakeDiscord):
    first = await bot.post_message(bot.message("what do data scientists earn?"))
    assert first.path == f"/channels/{D.CHANNEL_ID}/messages"
    assert first.body["embeds"][0]["title"] == "Salary and compensation: Data scientist"
    assert first.body["message_reference"]["fail_if_not_exists"] is False

    follow_up = await bot.post_message(bot.message("what about MLEs?"))
    assert follow_up.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"

    # context is per channel and user: someone else's "what about" has none
    other = await bot.post_message(bot.message("what about MLEs?", author_id=D.ADMIN_ID))
    assert other.body["embeds"][0]["title"] != "Salary and compensation: ML engineer"
    assert_nothing_pings(bot)


@pytest.mark.parametrize("thread", [D.THREAD_ID, 910000000000000099],
                         ids=["known thread", "thread the bot has not seen"])
async def test_a_mention_in_a_thread_is_answered_in_that_thread(bot: FakeDiscord, thread: int):
    """Replies stay in the thread (the channel's own chatter untouched), and so does the
    follow-up context: the thread's, not the channel's."""
    first = await bot.post_message(bot.message("what do data scientists earn?",
                                                channel_id=thread))
    assert first.path == f"/channels/{thread}/messages"
    assert first.body["embeds"][0]["title"] == "Salary and compensation: Data scientist"
    follow_up = await bot.post_message(bot.message("what about MLEs?", channel_id=thread))
    assert follow_up.path == f"/channels/{thread}/messages"
    assert follow_up.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"
    elsewhere = await bot.post_message(bot.message("what about MLEs?"))
    assert elsewhere.body["embeds"][0]["title"] != "Salary and compensation: ML engineer"
    assert not any(r.path == f"/channels/{D.CHANNEL_ID}/messages" and r is not elsewhere
                   for r in bot.requests)


async def test_ask_careerbot_in_a_thread_replies_in_the_thread(bot: FakeDiscord):
    target = bot.message("what do MLEs earn?", mention=False, channel_id=D.THREAD_ID)
    used = bot.message_command(target) | {"channel_id": str(D.THREAD_ID),
                                          "channel": bot.thread()}
    callback = await bot.interact(used)
    [reply] = bot.replies_to(target)
    assert reply.path == f"/channels/{D.THREAD_ID}/messages"
    assert data(callback)["flags"] & EPHEMERAL


def assert_plain_answer(body: dict[str, Any], title: str) -> None:
    """An answer as text (no embed), buttons kept, nothing pinging."""
    assert "embeds" not in body or body["embeds"] == []
    assert body["content"].startswith(f"**{title}**\n\n**")  # the short answer next
    assert "**Sources**\n• " in body["content"] and "](https://" in body["content"]  # links
    assert len(body["content"]) <= 2000
    assert buttons(body)
    assert body["allowed_mentions"] == {"parse": []}


async def test_without_embed_links_a_mention_is_answered_in_plain_text(bot: FakeDiscord):
    """The cache knows the channel denies Embed Links: plain text straight away."""
    reply = await bot.post_message(bot.message("what do MLEs earn?",
                                               channel_id=D.NO_EMBEDS_CHANNEL_ID))
    assert reply.path == f"/channels/{D.NO_EMBEDS_CHANNEL_ID}/messages"
    assert_plain_answer(reply.body, "Salary and compensation: ML engineer")
    assert reply.body["message_reference"]["fail_if_not_exists"] is False
    assert len([r for r in bot.requests if r.path.startswith("/channels/")]) == 1

    # and where the cache cannot tell, Discord's 50013 gets the same answer as text
    bot.fail("channel_message", Failure(403, 50013, "Missing Permissions"))
    question = bot.message("compare salary", channel_id=910000000000000098)
    await bot.dispatch("MESSAGE_CREATE", question)
    refused, again = await bot.wait_for_all(lambda r: r.path.startswith("/channels/9100"
                                                                          "00000000000098"), 2)
    assert refused.body["embeds"] and refused.message is None
    assert again.body["content"].startswith("**Salary and compensation**")
    assert "• Data scientist: " in again.body["content"]  # the comparison as lines
    assert again.body["message_reference"]["message_id"] == int(question["id"])


async def test_ask_careerbot_without_embed_links_replies_in_plain_text(bot: FakeDiscord):
    target = bot.message("what do MLEs earn?", mention=False)
    await bot.interact(bot.message_command(target,
                                           app_permissions=BOT_PERMISSIONS & ~EMBED_LINKS))
    [reply] = bot.replies_to(target)
    assert_plain_answer(reply.body, "Salary and compensation: ML engineer")


async def test_a_mention_of_the_bots_own_role_counts_as_a_mention(bot: FakeDiscord):
    reply = await bot.post_message(bot.message("what do MLEs earn?", role=D.BOT_ROLE_ID))
    assert reply.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"
    # another role is not the bot: ignored (seen once the next message is answered)
    other = bot.message("what do MLEs earn?", role=D.ADMIN_ROLE_ID)
    await bot.dispatch("MESSAGE_CREATE", other)
    await bot.post_message(bot.message("what do DSs earn?"))
    assert bot.replies_to(other) == []
    assert_nothing_pings(bot)


async def test_discord_markup_is_read_as_what_it_stands_for(bot: FakeDiscord):
    """Other mentions, a role, a channel, an emoji, a masked link: the question stays."""
    reply = await bot.post_message(bot.message(
        "<@!42> <@&456> how much do [ML engineers](https://x.example) earn in <#789>? "
        "<:kek:1234>"))
    assert reply.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"
    assert_nothing_pings(bot)


async def test_dm_is_answered_and_empty_mention_gets_help(bot: FakeDiscord):
    dm = await bot.post_message(bot.message("how much do ml engineers earn", dm=True))
    assert dm.path == f"/channels/{D.DM_CHANNEL_ID}/messages"
    assert dm.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"

    empty = await bot.post_message(bot.message(""))
    assert empty.body["embeds"][0]["title"] == "How to use careerbot"


async def test_ignores_bots_itself_and_unaddressed_messages(bot: FakeDiscord):
    ignored = [
        bot.message("what do MLEs earn?", author_id=D.OTHER_BOT_ID, bot=True),
        bot.message("what do MLEs earn?", author_id=D.BOT_ID, bot=True),
        bot.message("", mention=False),  # no mention: Discord sends no content either
    ]
    for message in ignored:
        await bot.dispatch("MESSAGE_CREATE", message)
    # events are handled in order: once a later one is answered, the earlier were ignored
    await bot.post_message(bot.message("what do MLEs earn?"))
    assert all(bot.replies_to(message) == [] for message in ignored)
    assert len([r for r in bot.requests if r.path.startswith("/channels/")]) == 1


async def test_nothing_the_bot_sends_can_ping(bot: FakeDiscord):
    hostile = f"@everyone @here <@&{D.ADMIN_ROLE_ID}> <@{D.ADMIN_ID}> what do MLEs earn?"
    reply = await bot.post_message(bot.message(hostile))
    assert reply.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"

    echoed = await bot.interact(bot.slash("compare", aspect="@everyone @here <@1234>"))
    description = data(echoed)["embeds"][0]["description"]
    assert "everyone here 1234" in description and "@" not in description  # plain words
    assert_nothing_pings(bot)


# ------------------------------------------------------ "Ask careerbot" on a message


async def test_ask_careerbot_on_a_message_replies_to_it_without_a_ping(bot: FakeDiscord):
    target = bot.message("what do MLEs earn?", author_id=D.ADMIN_ID, mention=False)
    used = bot.message_command(target)
    callback = await bot.interact(used)
    [reply] = bot.replies_to(target)
    assert reply.path == f"/channels/{D.CHANNEL_ID}/messages"
    assert reply.body["message_reference"]["message_id"] == int(target["id"])
    assert reply.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"
    # no ping, not even of the author replied to (Discord's default when not asked for)
    assert reply.body["allowed_mentions"] == {"parse": []}
    # the user who used the menu is told where the answer is, privately
    assert data(callback)["flags"] & EPHEMERAL
    assert reply.message is not None
    assert data(callback)["content"].endswith(
        f"/channels/{D.GUILD_ID}/{D.CHANNEL_ID}/{reply.message['id']}")
    assert_nothing_pings(bot)


async def test_ask_careerbot_where_the_bot_cannot_post_answers_the_interaction(bot: FakeDiscord):
    """A user install (the bot is no member there), or no permission to send: the answer is
    the interaction's own, public, and nothing is posted in the channel."""
    for how in ({"user_install": True}, {"app_permissions": 0}):
        target = bot.message("do data scientists need a degree?", mention=False)
        callback = await bot.interact(bot.message_command(target, **how))
        assert not data(callback).get("flags", 0) & EPHEMERAL
        assert data(callback)["embeds"][0]["title"].startswith("Education")
        assert bot.replies_to(target) == []
    assert not any(r.path.startswith("/channels/") for r in bot.requests)


async def test_ask_careerbot_on_a_message_without_words_is_a_private_notice(bot: FakeDiscord):
    target = bot.message("<:kek:1234> https://example.com/cat.gif", mention=False)
    callback = await bot.interact(bot.message_command(target))
    assert data(callback)["flags"] & EPHEMERAL
    assert "no text I can answer" in data(callback)["content"]
    assert bot.replies_to(target) == []


# ---------------------------------------------------------------------- buttons


async def test_follow_up_button_answers_its_topic_and_keeps_context(bot: FakeDiscord):
    answer = await bot.interact(bot.slash("ask", question="what do MLEs earn?"))
    pressed = await bot.interact(bot.press(answer, "careerbot:ask:career_path:ml_engineer"))
    assert pressed.body["type"] == 4
    assert data(pressed)["embeds"][0]["title"] == "Career path and seniority: ML engineer"

    follow_up = await bot.post_message(bot.message("and for data scientists?"))
    assert follow_up.body["embeds"][0]["title"] == "Career path and seniority: Data scientist"


async def test_someone_elses_follow_up_button_answers_only_them(bot: FakeDiscord):
    """The asker's press is public, as their answer was; anyone else's is answered to them
    alone, and the asker's message is left as it was (no edit)."""
    answer = await bot.interact(bot.slash("ask", question="what do MLEs earn?"))
    mention = await bot.post_message(bot.message("what do data scientists earn?"))
    for asked in (answer, mention):
        custom_id = buttons(asked.body.get("data", asked.body))[0]["custom_id"]
        theirs = await bot.interact(bot.press(asked, custom_id, user_id=D.ADMIN_ID))
        assert theirs.body["type"] == 4 and data(theirs)["flags"] & EPHEMERAL
        assert data(theirs)["embeds"][0]["title"].startswith("Career path")
        own = await bot.interact(bot.press(asked, custom_id))
        assert own.body["type"] == 4 and not data(own).get("flags", 0) & EPHEMERAL
    assert not any(r.method == "PATCH" for r in bot.requests)


async def test_follow_up_from_an_ephemeral_message_stays_ephemeral(bot: FakeDiscord):
    help_ = await bot.interact(bot.slash("help"))
    custom_id = buttons(data(help_))[0]["custom_id"]
    pressed = await bot.interact(bot.press(help_, custom_id))
    assert data(pressed)["flags"] & EPHEMERAL


def _votes(message: dict[str, Any]) -> dict[str, str]:
    return {b["custom_id"].split(":")[2]: b["label"] for b in buttons(message)
            if b["custom_id"].startswith("careerbot:vote:")}


async def test_vote_buttons_are_logged_and_thanked(bot: FakeDiscord,
                                                  caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot.adapters.discord")
    ask = bot.slash("ask", question="what do MLEs earn?")
    answer = await bot.interact(ask)
    press = bot.press(answer, "careerbot:vote:down:salary:ml_engineer")
    voted = await bot.interact(press)
    assert voted.body["type"] == 7  # the message's buttons, edited
    assert _votes(data(voted)) == {"up": "Helpful · 0", "down": "Not helpful · 1"}
    [thanks] = await bot.followups(press, 1)
    assert thanks.body["flags"] & EPHEMERAL and "Thanks for the feedback!" in thanks.body["content"]
    assert any("vote not helpful: topic=salary role=ml_engineer" in r.getMessage()
               for r in caplog.records)


async def test_one_vote_a_user_per_answer_changeable_and_shown(discord: FakeDiscord,
                                                               engine: Engine):
    settings = settings_for(discord)
    runtime = Runtime(engine, settings)
    async with serving(engine, settings, discord, runtime=runtime):
        answer = await discord.interact(discord.slash("ask", question="what do MLEs earn?"))
        shown = []
        for vote, user in (("up", D.USER_ID), ("up", D.USER_ID), ("up", D.USER_ID),
                           ("down", D.USER_ID), ("up", D.ADMIN_ID)):
            press = discord.press(answer, f"careerbot:vote:{vote}:salary:ml_engineer",
                                  user_id=user)
            voted = await discord.interact(press)
            await discord.followups(press, 1)
            shown.append(_votes(data(voted)))
            # the other buttons stay as they were
            assert [b["custom_id"] for b in buttons(data(voted))] == [
                b["custom_id"] for b in buttons(data(answer))]
        counts = await runtime.store.counts("votes")
    assert counts == {"salary:ml_engineer:helpful": 1, "salary:ml_engineer:not_helpful": 1}
    assert [v["up"] for v in shown] == ["Helpful · 1"] * 3 + ["Helpful · 0", "Helpful · 1"]
    assert shown[-1]["down"] == "Not helpful · 1"


async def test_a_vote_on_a_message_only_its_user_sees_marks_their_choice(bot: FakeDiscord):
    help_ = await bot.interact(bot.slash("help"))
    follow_up = await bot.interact(bot.press(help_, buttons(data(help_))[0]["custom_id"]))
    assert data(follow_up)["flags"] & EPHEMERAL
    up = next(b["custom_id"] for b in buttons(data(follow_up))
              if b["custom_id"].startswith("careerbot:vote:up:"))
    voted = await bot.interact(bot.press(follow_up, up))
    assert voted.body["type"] == 7 and _votes(data(voted))["up"] == "✓ Helpful · 1"


@pytest.mark.parametrize("custom_id", ["careerbot:vote:up:no_such_topic:both",
                                       "careerbot:vote:down:greeting:both"])
async def test_a_vote_on_a_topic_we_do_not_have_is_refused(discord: FakeDiscord,
                                                           engine: Engine, custom_id: str):
    settings = settings_for(discord)
    runtime = Runtime(engine, settings)
    async with serving(engine, settings, discord, runtime=runtime):
        answer = await discord.interact(discord.slash("ask", question="what do MLEs earn?"))
        # a message carrying that button (as one sent before a reload removed its topic)
        assert answer.message is not None
        stale = {**answer.message, "components": [{"type": 1, "components": [
            {"type": 2, "style": 3, "label": "Helpful", "custom_id": custom_id}]}]}
        refused = await discord.interact(discord.press(replace(answer, message=stale),
                                                       custom_id))
        counts = await runtime.store.counts("votes")
    assert refused.body["type"] == 4 and data(refused)["flags"] & EPHEMERAL
    assert "not counted" in data(refused)["content"] and counts == {}


async def test_follow_up_presses_count_against_the_rate_limit(discord: FakeDiscord,
                                                             engine: Engine):
    """Twenty presses of one follow-up: as many public answers as the limit allows (the
    /ask and three presses here), the rest a private notice each."""
    async with serving(engine, settings_for(discord, rate_limit_per_minute=4), discord):
        answer = await discord.interact(discord.slash("ask", question="what do MLEs earn?"))
        pressed = [await discord.interact(discord.press(
            answer, "careerbot:ask:career_path:ml_engineer")) for _ in range(20)]
    public = [p for p in pressed if not data(p).get("flags", 0) & EPHEMERAL]
    refused = [p for p in pressed if data(p).get("flags", 0) & EPHEMERAL]
    assert len(public) == 3 and all(data(p)["embeds"] for p in public)
    assert len(refused) == 17 and all("try again in" in data(p)["content"] for p in refused)


# ---------------------------------------------------------------------- admins


async def test_reload_is_for_admins_by_user_or_role(bot: FakeDiscord,
                                                    caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot.adapters.discord")
    refused = await bot.interact(bot.slash("reload"))
    assert refused.body["type"] == 4
    assert data(refused)["flags"] & EPHEMERAL
    assert "Only careerbot admins" in data(refused)["content"]

    for admin in (bot.slash("reload", user_id=D.ADMIN_ID),
                  bot.slash("reload", roles=[D.ADMIN_ROLE_ID])):
        deferred = await bot.interact(admin)
        assert deferred.body == {"type": 5, "data": {"flags": EPHEMERAL}}
        [report] = await bot.followups(admin, 1)
        assert report.body["content"].startswith("Reloaded: nothing changed")
        assert report.body["flags"] & EPHEMERAL

    logged = [r.getMessage() for r in caplog.records if "reload" in r.getMessage()]
    assert (f"reload refused: user {user_ref('discord', D.USER_ID)} in guild {D.GUILD_ID}"
            in logged[0])
    assert f"reload by user {user_ref('discord', D.ADMIN_ID)} in guild {D.GUILD_ID}" in logged[1]
    assert not any(str(D.USER_ID) in line or str(D.ADMIN_ID) in line for line in logged)
    assert len(logged) == 3


async def test_broken_reload_lists_every_error_and_keeps_serving(
        discord: FakeDiscord, knowledge_copy: Path):
    engine = Engine(knowledge_dir=knowledge_copy)
    salary = knowledge_copy / "topics" / "salary.yaml"
    text = salary.read_text()
    salary.write_text(text.replace("title: Salary and compensation", "titel: Salary")
                      .replace("sources: [novus, bluebird]", "sources: [nowhere]"))

    async with serving(engine, settings_for(discord), discord):
        admin = discord.slash("reload", user_id=D.ADMIN_ID)
        await discord.interact(admin)
        [report] = await discord.followups(admin, 1)
        content = report.body["content"]
        assert content.startswith("Reload failed: 3 problem(s)")
        assert "topics/salary.yaml: title: is missing" in content
        assert "topics/salary.yaml: sources[0]: unknown source 'nowhere'" in content

        still = await discord.interact(discord.slash("ask", question="what do MLEs earn?"))
        assert data(still)["embeds"][0]["title"] == "Salary and compensation: ML engineer"


# ---------------------------------------------------------------------- behaving well


async def test_cooldown_gets_a_friendly_ephemeral_notice(discord: FakeDiscord, engine: Engine):
    async with serving(engine, settings_for(discord, rate_limit_per_minute=2), discord):
        for _ in range(2):
            answered = await discord.interact(discord.slash("ask", question="what do MLEs earn?"))
            assert data(answered)["embeds"]
        notice = data(await discord.interact(discord.slash("ask", question="and DS?")))
        assert notice["flags"] & EPHEMERAL
        assert "try again in" in notice["content"]

        # in a channel, no public notice: a reaction on the mention, and no reply
        mention = discord.message("what do MLEs earn?")
        await discord.dispatch("MESSAGE_CREATE", mention)
        reaction = await discord.wait_for(lambda r: "/reactions/" in r.path)
        assert reaction.path.startswith(f"/channels/{D.CHANNEL_ID}/messages/{mention['id']}/")
        # in a DM the notice is private anyway
        by_dm = await discord.post_message(discord.message("what do MLEs earn?", dm=True))
        assert "try again in" in by_dm.body["content"]
        assert discord.replies_to(mention) == []

        other_user = discord.slash("ask", question="what do MLEs earn?", user_id=D.ADMIN_ID)
        assert data(await discord.interact(other_user))["embeds"]


async def test_long_answers_are_split_across_embeds_and_messages(
        discord: FakeDiscord, knowledge_copy: Path):
    path = knowledge_copy / "topics" / "salary.yaml"
    topic = yaml.safe_load(path.read_text())
    paragraph = "Pay depends on the company, the city and the seniority of the role. " * 20
    topic["answers"]["ml_engineer"] = "\n\n".join(f"{i}. {paragraph}" for i in range(40))
    path.write_text(yaml.safe_dump(topic))
    engine = Engine(knowledge_dir=knowledge_copy)
    reply = engine.topic_reply("salary", "ml_engineer")
    expected = f"**{reply.short}**\n\n{reply.text}"  # the short answer, then every word

    async with serving(engine, settings_for(discord), discord):
        ask = discord.slash("ask", question="what do MLEs earn?")
        first = await discord.interact(ask)
        pages = len(render(engine.topic_reply("salary", "ml_engineer")))
        rest = await discord.followups(ask, pages - 1)

    sent = [data(first), *(r.body for r in rest)]
    assert pages > 2
    descriptions = [e["description"] for body in sent for e in body["embeds"]]
    assert all(len(d) <= DESCRIPTION_CHARS for d in descriptions)
    assert " ".join(" ".join(descriptions).split()) == " ".join(expected.split())
    assert "components" not in sent[0] and buttons(sent[-1])  # buttons under the last page


async def test_sharded_client_identifies_each_shard(discord: FakeDiscord, engine: Engine):
    sharded = settings_for(discord, discord_shard_count=2)
    # discord.py waits Discord's 5 s between two shards' IDENTIFYs
    async with serving(engine, sharded, discord, shards=2, timeout=15):
        assert sorted(i["shard"] for i in discord.identifies) == [[0, 2], [1, 2]]
        reply = await discord.post_message(discord.message("what do MLEs earn?"))
        assert reply.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"


async def test_a_process_runs_only_the_shards_it_is_given(discord: FakeDiscord, engine: Engine):
    """DISCORD_SHARD_IDS: this process identifies its shards only; others run the rest."""
    count = 3
    mine = (D.GUILD_ID >> 22) % count  # the shard Discord routes our server's events to
    settings = replace(Settings.from_env(env={"DISCORD_SHARD_COUNT": str(count),
                                              "DISCORD_SHARD_IDS": str(mine)}),
                       discord_token=TOKEN, discord_api_url=discord.api_url,
                       discord_gateway_url=discord.gateway_url, discord_admin_ids=ADMINS)
    assert settings.discord_shard_ids == (mine,)
    async with serving(engine, settings, discord):
        assert [i["shard"] for i in discord.identifies] == [[mine, count]]
        reply = await discord.post_message(discord.message("what do MLEs earn?"))
        assert reply.body["embeds"][0]["title"] == "Salary and compensation: ML engineer"


@pytest.mark.parametrize("env, complaint", [
    ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "2"}, "from 0 to DISCORD_SHARD_COUNT"),
    ({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "one"}, "ids like 0,1 or 0-3"),
])
def test_shard_ids_are_checked(env: dict[str, str], complaint: str):
    with pytest.raises(ValueError, match=complaint):
        Settings.from_env(env=env)
    assert Settings.from_env(env={"DISCORD_SHARD_COUNT": "8",
                                  "DISCORD_SHARD_IDS": "0-2,5"}).discord_shard_ids == (0, 1, 2, 5)


async def test_gateway_is_compressed_and_needs_no_privileged_intent(bot: FakeDiscord):
    [identify] = bot.identifies
    assert bot.compression == ["zlib-stream"]
    message_content = 1 << 15
    assert not identify["intents"] & message_content
    assert bot.heartbeats >= 1


async def test_token_never_in_logs_or_replies(discord: FakeDiscord, engine: Engine,
                                              caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    async with serving(engine, settings_for(discord), discord):
        await discord.interact(discord.slash("ask", question="what do MLEs earn?"))
        await discord.post_message(discord.message("what is your token?"))
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(r.body) for r in discord.requests)


async def test_wrong_or_missing_token_is_a_clear_configuration_error(discord: FakeDiscord,
                                                                     engine: Engine):
    wrong = replace(settings_for(discord), discord_token="not-the-token")
    with pytest.raises(ConfigurationError, match="401") as raised:
        await asyncio.wait_for(run_discord(engine, wrong), WAIT)
    assert "not-the-token" not in str(raised.value)

    with pytest.raises(ConfigurationError, match="DISCORD_TOKEN is not set"):
        await run_discord(engine, replace(wrong, discord_token=""))


# ---------------------------------------------------------------------- command sync and CLI


async def test_sync_commands_to_a_guild_and_globally(discord: FakeDiscord):
    synced = await sync_commands(settings_for(discord), guild_id=D.GUILD_ID)
    assert [c.name for c in synced] == ["ask", "compare", "topics", "help", "reload", "stats",
                                        "Ask careerbot"]
    put = await discord.wait_for(
        lambda r: r.path == f"/applications/{D.APP_ID}/guilds/{D.GUILD_ID}/commands")
    commands = {c["name"]: c for c in put.body}
    assert commands["Ask careerbot"]["type"] == 3  # on a message's Apps menu
    assert int(commands["reload"]["default_member_permissions"]) == 32  # Manage Server
    assert commands["reload"]["contexts"] == [0]  # servers only
    assert int(commands["stats"]["default_member_permissions"]) == 32
    assert commands["stats"]["contexts"] == [0]
    [aspect] = commands["compare"]["options"]
    assert aspect["autocomplete"] is True and aspect["max_length"] == 100
    question, _private = commands["ask"]["options"]
    assert question["required"] is True and question["max_length"] == 2000

    await sync_commands(settings_for(discord))
    await discord.wait_for(lambda r: r.path == f"/applications/{D.APP_ID}/commands")
    assert not any(r.path.startswith("/interactions") for r in discord.requests)


async def test_everyones_commands_install_to_users_and_admin_ones_stay_in_servers(
        discord: FakeDiscord):
    """integration_types 0 (server) and 1 (user); contexts 0 (server), 1 (DM with the
    bot), 2 (group DMs and DMs between others): the commands JSON as synced."""
    await sync_commands(settings_for(discord))
    put = await discord.wait_for(lambda r: r.path == f"/applications/{D.APP_ID}/commands")
    commands = {c["name"]: c for c in put.body}
    for name in ("ask", "compare", "topics", "help", "Ask careerbot"):
        assert commands[name]["integration_types"] == [0, 1], name
        assert commands[name]["contexts"] == [0, 1, 2], name
        assert commands[name].get("default_member_permissions") is None, name
    for name in ("reload", "stats"):
        assert commands[name]["integration_types"] == [0], name
        assert commands[name]["contexts"] == [0], name


async def test_a_user_install_answers_in_a_server_without_the_bot(bot: FakeDiscord):
    """Used from a user's own install, where the bot is no member: the answer is the
    interaction's, as anywhere."""
    ask = bot.slash("ask", question="what do MLEs earn?")
    ask |= {"authorizing_integration_owners": {"1": str(D.USER_ID)}, "app_permissions": "0"}
    callback = await bot.interact(ask)
    assert data(callback)["embeds"][0]["title"] == "Salary and compensation: ML engineer"


#: Discord's limits on application commands (the docs' "Application Commands" page)
_CHAT_NAME = re.compile(r"[-_a-z0-9]{1,32}")  # the ASCII part of Discord's pattern; lowercase


def _characters(command: dict[str, Any]) -> int:
    """What Discord counts against its 4,000: name, description and value properties of the
    command, its options and their choices."""
    def of(item: dict[str, Any]) -> int:
        return (len(item.get("name", "")) + len(item.get("description", ""))
                + len(str(item.get("value", "")))
                + sum(of(option) for option in item.get("options", []))
                + sum(of(choice) for choice in item.get("choices", [])))
    return of(command)


@pytest.mark.parametrize("max_chars", [100, 2000, 4000])
async def test_synced_commands_keep_discords_limits(discord: FakeDiscord, max_chars: int):
    settings = replace(settings_for(discord), match=replace(Settings().match,
                                                            max_message_chars=max_chars))
    await sync_commands(settings)
    put = await discord.wait_for(lambda r: r.path == f"/applications/{D.APP_ID}/commands")
    chat = [c for c in put.body if c.get("type", 1) == 1]
    menus = [c for c in put.body if c.get("type") == 3]
    assert 0 < len(chat) <= 100 and 0 < len(menus) <= 5
    assert len({(c.get("type", 1), c["name"]) for c in put.body}) == len(put.body)
    for command in chat:
        assert _CHAT_NAME.fullmatch(command["name"]), command["name"]
        assert 1 <= len(command["description"]) <= 100, command["name"]
        options = command.get("options", [])
        assert len(options) <= 25
        required = [o.get("required", False) for o in options]
        assert required == sorted(required, reverse=True)  # required ones first
        for option in options:
            assert _CHAT_NAME.fullmatch(option["name"]), option["name"]
            assert 1 <= len(option["description"]) <= 100, option["name"]
            assert len(option.get("choices", [])) <= 25
            assert all(1 <= len(c["name"]) <= 100 for c in option.get("choices", []))
            if option["type"] == 3:
                assert 0 <= option.get("min_length", 0) <= option.get("max_length", 6000)
                assert option.get("max_length", 6000) <= 6000
        assert _characters(command) <= 4000, command["name"]
    for menu in menus:
        assert 1 <= len(menu["name"]) <= 32 and menu["name"].strip() == menu["name"]
        assert menu.get("description", "") == ""  # a context menu has none
        assert "options" not in menu or menu["options"] == []
        assert _characters(menu) <= 4000


async def careerbot(fake: FakeDiscord, cwd: Path, *args: str, token: str = TOKEN,
                    until: Callable[[], Awaitable[None]] | None = None
                    ) -> tuple[int | None, str, str]:
    """Run the real `careerbot` CLI against the local Discord; stop it after `until`.

    `cwd` is an empty directory, so no developer's .env is read.
    """
    env = {**os.environ, "DISCORD_TOKEN": token, "DISCORD_API_URL": fake.api_url,
           "DISCORD_GATEWAY_URL": fake.gateway_url,
           "CAREERBOT_HOST": "127.0.0.1", "CAREERBOT_PORT": "0",
           "CAREERBOT_OPS_PORT": "0"}  # /healthz: loopback, ephemeral
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        if until is not None:
            await until()
            process.terminate()
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, out.decode(), err.decode()


async def test_cli_sync_commands(discord: FakeDiscord, tmp_path: Path):
    code, out, err = await careerbot(discord, tmp_path, "discord", "sync-commands", "--guild",
                                     str(D.GUILD_ID))
    assert code == 0, err
    assert out.startswith(f"Registered 7 commands to server {D.GUILD_ID}")
    assert out.rstrip().endswith('/stats, "Ask careerbot" (on a message)')

    code, out, err = await careerbot(discord, tmp_path, "discord", "sync-commands", "--guild",
                                     "1234")
    assert code == 1
    assert "Discord refused the commands (403): Missing Access" in err
    assert "Traceback" not in err

async def test_cli_sync_commands_clear_and_duplicates(discord: FakeDiscord, tmp_path: Path):
    """Commands both on a server and global show twice there: each sync says so, naming
    the way out; --clear empties the global set or the server's (PUT [])."""
    guild = ("--guild", str(D.GUILD_ID))
    code, _, err = await careerbot(discord, tmp_path, "discord", "sync-commands", *guild)
    assert code == 0 and "warning" not in err  # nothing global yet
    code, _, err = await careerbot(discord, tmp_path, "discord", "sync-commands")
    assert code == 0
    assert (f"warning: server {D.GUILD_ID} shows these twice, as they are registered to it "
            'too: /ask, /compare, /topics, /help, /reload, /stats, "Ask careerbot" (on a '
            "message)") in err
    assert f"sync-commands --guild {D.GUILD_ID} --clear" in err
    code, _, err = await careerbot(discord, tmp_path, "discord", "sync-commands", *guild)
    assert f"server {D.GUILD_ID} shows these twice, as they are registered globally" in err

    code, out, err = await careerbot(discord, tmp_path, "discord", "sync-commands", *guild,
                                     "--clear")
    assert code == 0 and out.startswith(f"Removed careerbot's commands from server {D.GUILD_ID}")
    assert discord.commands[D.GUILD_ID] == [] and len(discord.commands[None]) == 7
    assert "warning" not in err
    code, out, err = await careerbot(discord, tmp_path, "discord", "sync-commands", "--clear")
    assert code == 0 and out.startswith("Removed careerbot's global commands")
    assert discord.commands[None] == []
    clears = [r for r in discord.requests if r.method == "PUT" and r.body == []]
    assert [r.path for r in clears] == [
        f"/applications/{D.APP_ID}/guilds/{D.GUILD_ID}/commands",
        f"/applications/{D.APP_ID}/commands"]


async def test_serve_process_end_to_end(discord: FakeDiscord, tmp_path: Path):
    async def ask() -> None:
        await discord.wait_ready(timeout=30)
        callback = await discord.interact(discord.slash("ask", question="what do MLEs earn?"))
        assert data(callback)["embeds"][0]["title"] == "Salary and compensation: ML engineer"

    code, _, err = await careerbot(discord, tmp_path, "serve", "discord", until=ask)
    assert code == 0 and "stopped cleanly" in err  # SIGTERM: finish, then exit


async def test_serve_with_a_wrong_token_exits_with_a_clear_message(discord: FakeDiscord,
                                                                   tmp_path: Path):
    code, out, err = await careerbot(discord, tmp_path, "serve", "discord", token="wrong-token")
    assert code == 2
    assert "Discord rejected DISCORD_TOKEN" in err
    assert "Traceback" not in err and "wrong-token" not in err + out


# ---------------------------------------------------------------------- rendering limits


def _reply(text: str = "", rows: int = 0, cell: str = "short") -> Reply:
    comparison = Comparison("pay", "Pay", tuple(
        ComparisonRow(f"row {i}", cell, cell) for i in range(rows))) if rows else None
    return Reply(title="T" * 300, text=text, topic="salary", role="both",
                 comparison=comparison,
                 suggestions=(Suggestion("Career path " * 10, "career_path"),))


@pytest.mark.parametrize("text, rows, cell", [
    ("One short answer.", 0, ""),
    ("A sentence that goes on. " * 700, 0, ""),
    ("\n\n".join(["A paragraph of some length. " * 30] * 30), 30, "x"),
    ("Short.", 12, "A long cell, with many words in it. " * 60),
    ("a" * 9000, 0, ""),  # no boundary at all: cut, but nothing lost
])
async def test_render_keeps_every_limit_and_every_character(text: str, rows: int, cell: str):
    pages = render(_reply(text, rows, cell))
    for page in pages:
        assert len(page.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(len(e) for e in page.embeds) <= EMBED_CHARS
        for embed in page.embeds:
            assert len(embed.description or "") <= DESCRIPTION_CHARS
            assert len(embed.fields) <= FIELDS_PER_EMBED
            assert all(len(f.value or "") <= FIELD_VALUE_CHARS for f in embed.fields)
            assert len(embed.title or "") <= 256
    assert all(page.view is None for page in pages[:-1])
    said = "".join(e.description or "" for p in pages for e in p.embeds)
    assert "".join(said.split()) == "".join(text.split())
    if rows:
        cells = "".join(f.value or "" for p in pages for e in p.embeds for f in e.fields
                        if (f.name or "").endswith("Data scientist"))
        assert "".join(cells.split()) == "".join((cell * rows).split())
    view = pages[-1].view
    assert view is not None
    labels = [b["label"] for row in view.to_components() for b in row["components"]]
    assert labels and all(len(label) <= 80 for label in labels)


@pytest.mark.parametrize("text, limit, expected", [
    ("First paragraph.\n\nSecond paragraph.", 20, ["First paragraph.", "Second paragraph."]),
    ("One sentence here. Another one there.", 25, ["One sentence here.", "Another one there."]),
    ("words only and no stops", 12, ["words only", "and no stops"]),
    ("abcdefghij", 4, ["abcd", "efgh", "ij"]),
    ("  ", 10, []),
])
def test_split_text_prefers_the_best_boundary(text: str, limit: int, expected: list[str]):
    assert split_text(text, limit) == expected


def test_plain_text_pages_fit_a_message():
    pages = render_text("A line of a reload report.\n" * 200)
    assert len(pages) > 1 and all(len(p.content) <= 2000 for p in pages)


def test_sources_are_markdown_links_in_a_field_with_markup_escaped():
    reply = Reply(title="T", text="Answer.", topic="salary", role="both", sources=(
        Source("a", "Roles [and] *more*", by="A_B", url="https://example.com/wiki/X_(y)"),
        Source("b", "No address known", by="a blog")))
    [page] = render(reply)
    [embed] = page.embeds
    assert embed.footer.text is None  # a footer cannot hold a link
    [field] = embed.fields
    assert field.name == "Sources"
    assert field.value == ("• [Roles \\[and\\] \\*more\\*](https://example.com/wiki/X_%28y%29)"
                           " (A\\_B)\n• No address known (a blog)")


def test_many_sources_keep_every_field_within_its_limit():
    many = tuple(Source(str(i), "T" * 200, url=f"https://example.com/{i}") for i in range(40))
    pages = render(Reply(title="T", text="Answer.", topic="salary", sources=many))
    fields = [f for p in pages for e in p.embeds for f in e.fields]
    assert [f.name for f in fields][:2] == ["Sources", "Sources (continued)"]
    assert all(len(f.value or "") <= FIELD_VALUE_CHARS for f in fields)
    assert sum((f.value or "").count("](https://") for f in fields) == 40
    assert all(sum(len(e) for e in p.embeds) <= EMBED_CHARS for p in pages)
