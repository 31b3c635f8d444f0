"""What the Slack adapter's tests share: a local Slack and the settings that point at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.settings import Settings
from tests.adapters.test_slack import ADMIN, OWNER, SECRET
from tests.fakes.slack import FakeSlack


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(users={OWNER: {"is_owner": True}}) as fake:
        yield fake


@pytest.fixture
def settings(slack: FakeSlack) -> Settings:
    return Settings(slack_bot_token=slack.bot_token, slack_signing_secret=SECRET,
                    slack_api_url=slack.api_url, slack_admin_ids=frozenset({ADMIN}),
                    rate_limit_per_minute=100)
