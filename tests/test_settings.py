"""Settings from the environment and .env: every variable checked (type, range, finite),
a bad one is exit 2 with one line naming it, booleans read the same way everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import SettingError, Settings, read_dotenv

ROOT = Path(__file__).resolve().parents[1]


def careerbot(*args: str, env: dict[str, str], cwd: Path, stdin: str = ""):
    """The real command, in `cwd` (where it looks for .env), with only `env` added."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CAREERBOT_", "SLACK_", "DISCORD_")) and k != "REDIS_URL"}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})


BAD = [
    ("CAREERBOT_CONTEXT_TTL", "inf"),
    ("CAREERBOT_CONTEXT_TTL", "0"),
    ("CAREERBOT_PORT", "70000"),
    ("CAREERBOT_PORT", "3000.5"),
    ("CAREERBOT_OPS_PORT", "70000"),
    ("CAREERBOT_OPS_PORT", "-1"),
    ("CAREERBOT_RETENTION_DAYS", "-1"),
    ("CAREERBOT_MAX_MESSAGE_CHARS", "0"),
    ("CAREERBOT_MAX_MESSAGE_CHARS", "40000"),
    ("CAREERBOT_SLACK_COMMAND", "careerbot"),
    ("CAREERBOT_SLACK_COMMAND", "/Career Bot"),
    ("CAREERBOT_DECLINE_BELOW", "1.5"),
    ("CAREERBOT_FOLLOW_UP_BELOW", "-0.1"),
    ("CAREERBOT_CLARIFY_MARGIN", "nan"),
    ("CAREERBOT_SURE_ABOVE", "NaN"),
    ("CAREERBOT_LOW_CONFIDENCE_BELOW", "2"),
    ("CAREERBOT_SHUTDOWN_GRACE", "-inf"),
    ("CAREERBOT_RATE_LIMIT_PER_MINUTE", "twelve"),
    ("DISCORD_SHARD_COUNT", "0"),
    ("CAREERBOT_LOG_JSON", "maybe"),
    ("CAREERBOT_SLACK_WORKSPACE_ADMINS", "y"),
    ("SLACK_API_URL", "slack.com/api"),
    ("DISCORD_GATEWAY_URL", "https://gateway.discord.gg"),
    ("CAREERBOT_HOST", "0.0.0.0 # all"),
]


@pytest.mark.parametrize("env, ok", [
    ({"CAREERBOT_OPS_PORT": "3000"}, False),  # the events port's default
    ({"CAREERBOT_PORT": "8080", "CAREERBOT_OPS_PORT": "8080"}, False),
    ({"CAREERBOT_PORT": "0", "CAREERBOT_OPS_PORT": "0"}, True),  # two free ports
    ({"CAREERBOT_PORT": "3001", "CAREERBOT_OPS_PORT": "3002"}, True),
])
def test_the_ops_port_is_never_the_events_port(env: dict[str, str], ok: bool) -> None:
    if ok:
        assert Settings.from_env(env=env).ops_port == int(env["CAREERBOT_OPS_PORT"])
        return
    with pytest.raises(SettingError, match="CAREERBOT_OPS_PORT must differ from CAREERBOT_PORT"):
        Settings.from_env(env=env)


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_a_bad_value_is_exit_2_with_one_line_naming_it(tmp_path: Path, name: str, value: str):
    out = careerbot("validate", env={name: value}, cwd=tmp_path)
    assert out.returncode == 2, out.stdout
    assert out.stdout == ""
    [line] = out.stderr.splitlines()
    assert line.startswith(f"careerbot: setting {name} ") and repr(value) in line


@pytest.mark.parametrize("name", ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
                                  "DISCORD_TOKEN", "CAREERBOT_HASH_KEY", "REDIS_URL"])
def test_a_bad_secret_is_named_but_never_shown(tmp_path: Path, name: str):
    value = "s3cr3t-value hunter2" if name != "REDIS_URL" else "http://:hunter2@redis:6379"
    out = careerbot("validate", env={name: value}, cwd=tmp_path)
    assert out.returncode == 2
    [line] = out.stderr.splitlines()
    assert line.startswith(f"careerbot: setting {name} ")
    assert "hunter2" not in line


def test_good_values_still_start(tmp_path: Path):
    env = {"CAREERBOT_PORT": "0", "CAREERBOT_CONTEXT_TTL": "60", "CAREERBOT_DECLINE_BELOW": "1",
           "CAREERBOT_SURE_ABOVE": "0", "CAREERBOT_SLACK_COMMAND": "/careers",
           "CAREERBOT_RETENTION_DAYS": "30.5", "CAREERBOT_LOG_JSON": "on",
           "REDIS_URL": "", "SLACK_API_URL": "http://127.0.0.1:1/api/"}
    out = careerbot("validate", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


BOOLEANS = [("CAREERBOT_LOG_JSON", "log_json", False),
            ("CAREERBOT_SLACK_WORKSPACE_ADMINS", "slack_workspace_admins_are_admins", False),
            ("CAREERBOT_LEARNING", "learning.enabled", True),
            ("CAREERBOT_RECORD_QUESTIONS", "learning.record_text", True)]
SPELLINGS = [("on", True), ("off", False), ("true", True), ("false", False), ("yes", True),
             ("no", False), ("1", True), ("0", False), (" ON ", True), ("False", False),
             ("", None)]


def _get(settings: Settings, attribute: str) -> object:
    value: object = settings
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("name", "attribute", "default"), BOOLEANS,
                         ids=[n for n, _, _ in BOOLEANS])
def test_every_boolean_reads_every_spelling_the_same_way(name: str, attribute: str,
                                                         default: bool):
    for raw, expected in SPELLINGS:
        settings = Settings.from_env(env={name: raw})
        assert _get(settings, attribute) is (default if expected is None else expected), raw
    with pytest.raises(SettingError, match=f"setting {name} must be on or off"):
        Settings.from_env(env={name: "enabled"})


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("SLACK_BOT_TOKEN=xoxb-123-abc # the bot's token", "xoxb-123-abc"),
        ("SLACK_BOT_TOKEN='xoxb-123 #not a comment'", "xoxb-123 #not a comment"),
        ('export SLACK_BOT_TOKEN="xoxb-123-abc"  # quoted, exported', "xoxb-123-abc"),
        ("SLACK_BOT_TOKEN=xoxb-${HOME}-abc", "xoxb-${HOME}-abc"),  # taken literally
    ],
)
def test_dotenv_is_read_as_python_dotenv_reads_it(tmp_path: Path, line: str, value: str):
    path = tmp_path / ".env"
    path.write_text(f"# careerbot\n\n{line}\n")
    assert read_dotenv(path) == {"SLACK_BOT_TOKEN": value}


def test_the_environment_wins_over_dotenv_and_a_comment_never_reaches_a_value(tmp_path: Path):
    (tmp_path / ".env").write_text(
        "CAREERBOT_MAX_MESSAGE_CHARS=150  # short messages only\n"
        "CAREERBOT_DECLINE_BELOW=0.9 # overridden below\n")
    long_question = "what do data scientists earn? " + "really " * 30
    out = careerbot("ask", "--jsonl", env={"CAREERBOT_DECLINE_BELOW": "0.42"}, cwd=tmp_path,
                    stdin=json.dumps({"text": long_question}) + "\n"
                    + json.dumps({"text": "what do data scientists earn?"}) + "\n")
    assert out.returncode == 0, out.stderr
    too_long, answered = (json.loads(line) for line in out.stdout.splitlines())
    assert too_long["topic"] is None and "150" in too_long["answer"]
    assert answered["topic"] == "salary"  # 0.42 from the environment, not .env's 0.9


@pytest.mark.parametrize("make", ["fifo", "directory", "latin-1"])
def test_a_dotenv_that_cannot_be_read_is_exit_2_not_a_hang(tmp_path: Path, make: str):
    path = tmp_path / ".env"
    if make == "fifo":
        os.mkfifo(path)  # reading it would wait for a writer forever
    elif make == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"SLACK_BOT_TOKEN=caf\xe9\n")
    out = careerbot("validate", env={}, cwd=tmp_path)
    assert out.returncode == 2
    [line] = out.stderr.splitlines()
    assert line.startswith("careerbot: .env ")


def test_an_absent_dotenv_is_no_settings(tmp_path: Path):
    assert read_dotenv(tmp_path / ".env") == {}
    assert Settings.from_env(env={}, dotenv=tmp_path / ".env") == Settings.from_env(env={})
