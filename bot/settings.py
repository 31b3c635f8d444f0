"""One typed settings object, read from the environment (and an optional .env) in main()."""

from __future__ import annotations

import io
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

__all__ = ["LearningSettings", "MatchSettings", "SettingError", "Settings", "read_dotenv"]


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the matcher. Confidence is in [0, 1]."""

    #: below this the bot declines rather than risk a confident wrong answer; fitted by
    #: `careerbot eval --fit tests/data/real/heldout.jsonl` (the base's own examples held
    #: out by fold, and the held-out real questions: 0.42 places most right, a mean 74.9%
    #: of their in-scope and declined rates)
    decline_below: float = 0.42
    #: a short follow-up whose best topic is the conversation's own is answered from here,
    #: and so is a question whose best topic is far ahead of every rival; below it, a
    #: message comes near no topic ("when does it not work?" is about the topic in hand)
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


class SettingError(ValueError):
    """A variable that cannot be used. Its message is one line naming the variable, and
    never shows a secret's value."""


def _raw(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, stripped; None when it is unset or blank (then: the default)."""
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _raw(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingError(f"setting {name} must be on or off (also true/false, yes/no, 1/0), "
                       f"got {_shown(raw)}")


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float
           ) -> float:
    """A finite number from `low` to `high` (nan and inf never pass)."""
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise SettingError(f"setting {name} must be a number from {low:g} to {high:g}, "
                           f"got {_shown(raw)}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise SettingError(f"setting {name} must be a whole number from {low} to {high}, "
                           f"got {_shown(raw)}")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    """A confidence threshold: scores are in [0, 1]."""
    return _float(env, name, default, 0.0, 1.0)


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...],
         secret: bool = False) -> str:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        parts = urlsplit(raw)
        _ = parts.port  # a port that is not a number, or past 65535, raises here
    except ValueError:
        parts = None
    where = parts and (parts.path if parts.scheme == "unix" else parts.hostname)
    ok = parts is not None and parts.scheme in schemes and bool(where)
    if not ok:
        shown = "" if secret else f", got {_shown(raw)}"
        raise SettingError(f"setting {name} must be a {' or '.join(f'{s}://' for s in schemes)}"
                           f" URL{shown}")
    return raw


def _secret(env: Mapping[str, str], name: str) -> str:
    """A token or key: taken as written, less surrounding blanks; never shown in errors."""
    raw = _raw(env, name) or ""
    if any(c.isspace() for c in raw):
        raise SettingError(f"setting {name} has a space inside (a comment or a second value "
                           "on its line?); tokens have none")
    return raw


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _raw(env, name)
    if raw is None:
        return default
    if any(c.isspace() for c in raw):
        raise SettingError(f"setting {name} must have no spaces, got {_shown(raw)}")
    return raw


def _ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(x.strip() for x in env.get(name, "").split(",") if x.strip())


def _slack_command(env: Mapping[str, str]) -> str:
    """A slash command as Slack names them: '/' then up to 31 lowercase characters."""
    name = "CAREERBOT_SLACK_COMMAND"
    raw = _raw(env, name)
    if raw is None:
        return "/careerbot"
    if not re.fullmatch(r"/[^\s/A-Z]{1,31}", raw):
        raise SettingError(f"setting {name} must be a slash command like /careerbot "
                           f"(a leading /, lowercase, no spaces, at most 32 characters), "
                           f"got {_shown(raw)}")
    return raw


def _shard_ids(env: Mapping[str, str], count: int) -> tuple[int, ...]:
    """DISCORD_SHARD_IDS: "0,1" or a range "0-3", each below DISCORD_SHARD_COUNT."""
    raw = _raw(env, "DISCORD_SHARD_IDS")
    if raw is None:
        return ()
    ids: list[int] = []
    try:
        for part in raw.split(","):
            first, _, last = part.strip().partition("-")
            ids += range(int(first), int(last or first) + 1)
    except ValueError:
        raise SettingError(f"setting DISCORD_SHARD_IDS must be ids like 0,1 or 0-3, "
                           f"got {_shown(raw)}") from None
    if not ids or any(not 0 <= i < count for i in ids):
        raise SettingError(f"setting DISCORD_SHARD_IDS: every id must be from 0 to "
                           f"DISCORD_SHARD_COUNT - 1 ({count - 1}), got {_shown(raw)}")
    return tuple(sorted(set(ids)))


# Ranges of the numbers read from the environment, each with why it ends there.
#: the matcher's worst case grows with length: ~19 ms at 4,000 characters (Discord's
#: longest message), ~140 ms at 40,000; below 100 an ordinary question would not fit
_MESSAGE_CHARS = (100, 4000)
#: a follow-up is minutes after its question; past a week it is a new conversation
_CONTEXT_TTL = (1.0, 7 * 86400.0)
#: less than a day keeps nothing for the report (7 days by default); ten years is plenty
_RETENTION_DAYS = (1.0, 3650.0)
#: SIGTERM's grace: k8s and systemd give a pod or unit far less than an hour
_SHUTDOWN_GRACE = (0.0, 3600.0)
#: 0 is any free port (what the tests ask for)
_PORT = (0, 65535)
#: 0 is no limit; more than this a minute is no limit in practice either
_RATE_LIMIT = (0, 10_000)
#: Discord asks for sharding past ~2,500 servers a shard
_SHARD_COUNT = (1, 10_000)


def _ops_port(env: Mapping[str, str]) -> int:
    ops = _int(env, "CAREERBOT_OPS_PORT", 3001, *_PORT)
    if ops and ops == _int(env, "CAREERBOT_PORT", 3000, *_PORT):
        raise SettingError(f"setting CAREERBOT_OPS_PORT must differ from CAREERBOT_PORT "
                           f"(both {ops}): /healthz and /metrics are kept off the public "
                           "events port")
    return ops


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
    # Serving: Slack's HTTP mode (POST /slack/events, public) on `port`; /healthz and
    # /metrics on `ops_port`, for probes and scrapers only; SIGTERM's grace
    host: str = "0.0.0.0"
    port: int = 3000
    ops_port: int = 3001
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
            decline_below=_fraction(merged, "CAREERBOT_DECLINE_BELOW",
                                    MatchSettings.decline_below),
            follow_up_below=_fraction(merged, "CAREERBOT_FOLLOW_UP_BELOW",
                                      MatchSettings.follow_up_below),
            clarify_margin=_fraction(merged, "CAREERBOT_CLARIFY_MARGIN",
                                     MatchSettings.clarify_margin),
            sure_above=_fraction(merged, "CAREERBOT_SURE_ABOVE", MatchSettings.sure_above),
            context_ttl=_float(merged, "CAREERBOT_CONTEXT_TTL", MatchSettings.context_ttl,
                               *_CONTEXT_TTL),
            max_message_chars=_int(merged, "CAREERBOT_MAX_MESSAGE_CHARS",
                                   MatchSettings.max_message_chars, *_MESSAGE_CHARS),
        )
        kdir = _raw(merged, "CAREERBOT_KNOWLEDGE_DIR")
        shard_count = _int(merged, "DISCORD_SHARD_COUNT", 1, *_SHARD_COUNT)
        return cls(
            knowledge_dir=Path(kdir) if kdir else None,
            match=match,
            rate_limit_per_minute=_int(merged, "CAREERBOT_RATE_LIMIT_PER_MINUTE", 12,
                                       *_RATE_LIMIT),
            slack_bot_token=_secret(merged, "SLACK_BOT_TOKEN"),
            slack_app_token=_secret(merged, "SLACK_APP_TOKEN"),
            slack_signing_secret=_secret(merged, "SLACK_SIGNING_SECRET"),
            slack_api_url=_url(merged, "SLACK_API_URL", "https://slack.com/api/",
                               ("https", "http")),
            slack_command=_slack_command(merged),
            slack_admin_ids=_ids(merged, "CAREERBOT_SLACK_ADMINS"),
            slack_workspace_admins_are_admins=_bool(merged, "CAREERBOT_SLACK_WORKSPACE_ADMINS",
                                                    False),
            discord_token=_secret(merged, "DISCORD_TOKEN"),
            discord_api_url=_url(merged, "DISCORD_API_URL", "", ("https", "http")),
            discord_gateway_url=_url(merged, "DISCORD_GATEWAY_URL", "", ("wss", "ws")),
            discord_admin_ids=_ids(merged, "CAREERBOT_DISCORD_ADMINS"),
            discord_shard_count=shard_count,
            discord_shard_ids=_shard_ids(merged, shard_count),
            host=_text(merged, "CAREERBOT_HOST", "0.0.0.0"),
            port=_int(merged, "CAREERBOT_PORT", 3000, *_PORT),
            ops_port=_ops_port(merged),
            shutdown_grace=_float(merged, "CAREERBOT_SHUTDOWN_GRACE", 20.0, *_SHUTDOWN_GRACE),
            log_json=_bool(merged, "CAREERBOT_LOG_JSON", False),
            redis_url=_url(merged, "REDIS_URL", "", ("redis", "rediss", "unix"), secret=True),
            learning=LearningSettings(
                enabled=_bool(merged, "CAREERBOT_LEARNING", True),
                db_path=Path(_raw(merged, "CAREERBOT_LEARNING_DB") or LearningSettings.db_path),
                hash_key=_secret(merged, "CAREERBOT_HASH_KEY"),
                record_text=_bool(merged, "CAREERBOT_RECORD_QUESTIONS", True),
                retention_days=_float(merged, "CAREERBOT_RETENTION_DAYS",
                                      LearningSettings.retention_days, *_RETENTION_DAYS),
                low_confidence_below=_fraction(merged, "CAREERBOT_LOW_CONFIDENCE_BELOW",
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


#: a .env holds a few dozen short lines; this bounds what a wrong path can make us read
_MAX_DOTENV_BYTES = 1 << 20


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables of a .env file as python-dotenv reads it (quotes, `export`, a
    `# comment` after a value), taken literally: no ${VAR} expansion. A missing file is no
    variables; one that is not a readable regular UTF-8 file under 1 MiB is a SettingError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SettingError(f"{path} is not a regular file")
        data = os.read(fd, _MAX_DOTENV_BYTES + 1)
    except OSError as exc:
        raise SettingError(f"{path} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_DOTENV_BYTES:
        raise SettingError(f"{path} is larger than {_MAX_DOTENV_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SettingError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value for key, value in values.items() if value is not None}
