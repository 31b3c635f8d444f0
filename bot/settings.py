"""One typed settings object, read from the environment (and an optional .env) in main()."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = ["LearningSettings", "MatchSettings", "Settings", "read_dotenv"]


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the matcher. Confidence is in [0, 1]."""

    #: below this the bot declines rather than risk a confident wrong answer
    decline_below: float = 0.42
    #: a short follow-up whose best topic is the conversation's own is answered from here
    follow_up_below: float = 0.32
    #: a topic this close to the answer's (under `sure_above`) is offered as "did you mean"
    clarify_margin: float = 0.03
    sure_above: float = 0.6
    #: follow-up context is forgotten after this many seconds
    context_ttl: float = 15 * 60
    #: longer messages are not matched; the asker is asked to shorten them
    max_message_chars: int = 2000


@dataclass(frozen=True)
class LearningSettings:
    """Learning from use: what careerbot records about questions and votes (bot/learning)."""

    enabled: bool = True
    #: the SQLite file (created on first use) when REDIS_URL is not set
    db_path: Path = Path("data/learning.sqlite3")
    #: key for hashing user and channel ids; empty: generated once and kept with the data
    hash_key: str = field(default="", repr=False)
    #: keep the text of declined and unsure questions (else only their topic and score)
    record_text: bool = True
    retention_days: float = 90.0
    #: an answer below this confidence counts as unsure, and its question is kept
    low_confidence_below: float = 0.4


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"setting {name} must be on or off, got {raw!r}")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from None


def _ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(x.strip() for x in env.get(name, "").split(",") if x.strip())


def _shard_ids(env: Mapping[str, str]) -> tuple[int, ...]:
    """DISCORD_SHARD_IDS: "0,1" or a range "0-3", each below DISCORD_SHARD_COUNT."""
    raw = env.get("DISCORD_SHARD_IDS", "").strip()
    if not raw:
        return ()
    count = int(_float(env, "DISCORD_SHARD_COUNT", 1))
    ids: list[int] = []
    try:
        for part in raw.split(","):
            first, _, last = part.strip().partition("-")
            ids += range(int(first), int(last or first) + 1)
    except ValueError:
        raise ValueError(f"setting DISCORD_SHARD_IDS must be ids like 0,1 or 0-3, "
                         f"got {raw!r}") from None
    if not ids or any(not 0 <= i < count for i in ids):
        raise ValueError(f"setting DISCORD_SHARD_IDS: every id must be from 0 to "
                         f"DISCORD_SHARD_COUNT - 1 ({count - 1}), got {raw!r}")
    return tuple(sorted(set(ids)))


@dataclass(frozen=True)
class Settings:
    knowledge_dir: Path | None = None
    match: MatchSettings = field(default_factory=MatchSettings)
    rate_limit_per_minute: int = 12
    # Slack
    slack_bot_token: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_api_url: str = "https://slack.com/api/"
    slack_command: str = "/careerbot"
    slack_admin_ids: frozenset[str] = frozenset()
    slack_workspace_admins_are_admins: bool = False
    # Discord
    discord_token: str = field(default="", repr=False)
    discord_api_url: str = ""
    discord_gateway_url: str = ""
    discord_admin_ids: frozenset[str] = frozenset()
    discord_shard_count: int = 1
    #: the shards this process runs (all of them when empty)
    discord_shard_ids: tuple[int, ...] = ()
    log_json: bool = False
    # Serving: /healthz, /metrics (and Slack's HTTP mode) on one port; SIGTERM's grace
    host: str = "0.0.0.0"
    port: int = 3000
    shutdown_grace: float = 20.0
    #: Redis shared by replicas (state, learning records); empty: in-process and SQLite
    redis_url: str = field(default="", repr=False)
    learning: LearningSettings = field(default_factory=LearningSettings)

    @property
    def max_message_chars(self) -> int:
        return self.match.max_message_chars

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token)

    @property
    def discord_enabled(self) -> bool:
        return bool(self.discord_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: Path | None = None
                 ) -> Settings:
        merged: dict[str, str] = {}
        if dotenv is not None:
            merged.update(read_dotenv(dotenv))
        merged.update(os.environ if env is None else env)
        match = MatchSettings(
            decline_below=_float(merged, "CAREERBOT_DECLINE_BELOW", MatchSettings.decline_below),
            follow_up_below=_float(merged, "CAREERBOT_FOLLOW_UP_BELOW",
                                   MatchSettings.follow_up_below),
            clarify_margin=_float(merged, "CAREERBOT_CLARIFY_MARGIN",
                                  MatchSettings.clarify_margin),
            sure_above=_float(merged, "CAREERBOT_SURE_ABOVE", MatchSettings.sure_above),
            context_ttl=_float(merged, "CAREERBOT_CONTEXT_TTL", MatchSettings.context_ttl),
            max_message_chars=int(_float(merged, "CAREERBOT_MAX_MESSAGE_CHARS",
                                         MatchSettings.max_message_chars)),
        )
        kdir = merged.get("CAREERBOT_KNOWLEDGE_DIR")
        return cls(
            knowledge_dir=Path(kdir) if kdir else None,
            match=match,
            rate_limit_per_minute=int(_float(merged, "CAREERBOT_RATE_LIMIT_PER_MINUTE", 12)),
            slack_bot_token=merged.get("SLACK_BOT_TOKEN", ""),
            slack_app_token=merged.get("SLACK_APP_TOKEN", ""),
            slack_signing_secret=merged.get("SLACK_SIGNING_SECRET", ""),
            slack_api_url=merged.get("SLACK_API_URL") or "https://slack.com/api/",
            slack_command=merged.get("CAREERBOT_SLACK_COMMAND") or "/careerbot",
            slack_admin_ids=_ids(merged, "CAREERBOT_SLACK_ADMINS"),
            slack_workspace_admins_are_admins=merged.get(
                "CAREERBOT_SLACK_WORKSPACE_ADMINS", "").lower() in {"1", "true", "yes"},
            discord_token=merged.get("DISCORD_TOKEN", ""),
            discord_api_url=merged.get("DISCORD_API_URL", ""),
            discord_gateway_url=merged.get("DISCORD_GATEWAY_URL", ""),
            discord_admin_ids=_ids(merged, "CAREERBOT_DISCORD_ADMINS"),
            discord_shard_count=int(_float(merged, "DISCORD_SHARD_COUNT", 1)),
            discord_shard_ids=_shard_ids(merged),
            host=merged.get("CAREERBOT_HOST") or "0.0.0.0",
            port=int(_float(merged, "CAREERBOT_PORT", 3000)),
            shutdown_grace=_float(merged, "CAREERBOT_SHUTDOWN_GRACE", 20.0),
            log_json=merged.get("CAREERBOT_LOG_JSON", "").lower() in {"1", "true", "yes"},
            redis_url=merged.get("REDIS_URL", ""),
            learning=LearningSettings(
                enabled=_bool(merged, "CAREERBOT_LEARNING", True),
                db_path=Path(merged.get("CAREERBOT_LEARNING_DB") or LearningSettings.db_path),
                hash_key=merged.get("CAREERBOT_HASH_KEY", ""),
                record_text=_bool(merged, "CAREERBOT_RECORD_QUESTIONS", True),
                retention_days=_float(merged, "CAREERBOT_RETENTION_DAYS",
                                      LearningSettings.retention_days),
                low_confidence_below=_float(merged, "CAREERBOT_LOW_CONFIDENCE_BELOW",
                                            LearningSettings.low_confidence_below),
            ),
        )

    def secrets(self) -> tuple[str, ...]:
        """Every secret value set (the fields kept out of repr), for logs to blank out."""
        found: list[str] = []

        def walk(obj: object) -> None:
            for f in fields(obj):  # type: ignore[arg-type]
                value = getattr(obj, f.name)
                if hasattr(value, "__dataclass_fields__"):
                    walk(value)
                elif not f.repr and isinstance(value, str) and value:
                    found.append(value)
        walk(self)
        return tuple(found)

    def __repr__(self) -> str:  # never show secrets, even by accident
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr
        )
        return f"Settings({shown})"


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; # comments and blank lines ignored; quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
