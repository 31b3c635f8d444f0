"""Logging: one line an event, JSON when CAREERBOT_LOG_JSON asks, never a secret or a raw id.

- A record's extra `fields` (a dict) become keys of the JSON line, `k=v` pairs in text.
- Tracebacks stay on the event's line (JSON-escaped, or with `\\n` in text).
- Tokens, the signing secret, Redis passwords and Slack's response URLs are replaced
  by `***` in whatever is logged, by us or by a library; user ids are logged only
  through `user_ref`, keyed with the learning records' key (`set_user_key`, once at
  start), so a member list cannot be hashed to find who a reference is.
- A library's line that carries a request's body or payload (bolt's "Unhandled
  request ({...})", "request body: ...", a rejected signature's body, a response URL
  being retried) keeps its first words and says the rest was withheld: never a user
  id, a name, a question or a response_url.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets as _random
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = ["configure_logging", "set_user_key", "user_ref"]

# Slack tokens (xoxb-, xoxp-, xapp-, ...) and passwords in URLs. Every pattern runs in
# time linear in what is logged, whatever that is: each starts on a literal or a word
# boundary and every repeat is bounded, so no start position rescans a long run (an
# unbounded `\w+://` took 35 s on 100 KB of one letter, on the event loop).
_TOKEN = re.compile(r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+")
_URL_PASSWORD = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,31}://[^:/@\s]{0,256}:)[^@\s/]{1,256}@")
# a response_url lets whoever holds it post into the channel for half an hour
_RESPONSE_URL = re.compile(r"\bhttps?://hooks\.slack\.com/[^\s'\"<>)]{0,2048}")
# where a library's line turns to a payload: a dict or list after "(" or ":", or words
# naming one (bounded: each starts on a literal)
_PAYLOAD = re.compile(r"[(:]\s{0,8}[{\[]|\b(?:body|payload|response_url)\b", re.IGNORECASE)
_ANY_URL = re.compile(r"\bhttps?://\S{1,4096}")
#: libraries whose lines at any level may hold what users sent (see _Withhold)
_LIBRARIES = ("slack_bolt", "slack_sdk", "discord", "aiohttp")
# libraries whose DEBUG lines carry whole payloads (ids, text): INFO at most, even with -v
_CHATTY = ("slack_bolt", "slack_sdk", "discord", "aiohttp", "redis", "asyncio")


#: the key user references are made with: random per process until `set_user_key`
_user_key: bytes = _random.token_bytes(32)


def set_user_key(key: bytes) -> None:
    """Key `user_ref` with `key`, the learning records' (CAREERBOT_HASH_KEY, else the one
    kept with the records): the same user has the same reference in every replica's log
    and across restarts. Set once, when serving starts."""
    global _user_key
    if not key:
        raise ValueError("the user reference key is empty")
    _user_key = key


def user_ref(platform: str, user: str | int | None) -> str:
    """A stable stand-in for a user id in logs: the same user, the same reference. It is
    the first 48 bits of the user's keyed hash in the learning records (HMAC-SHA256), so
    without the key no list of ids can be hashed to find it."""
    if not user:
        return "-"
    digest = hmac.new(_user_key, f"{platform}:{user}".encode(), hashlib.sha256).hexdigest()
    return f"u-{digest[:12]}"


class _Withhold(logging.Filter):
    """A library's line that turns to a request's payload is cut there: what it says
    stays, what users sent goes (whatever level the line is at)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_LIBRARIES):
            return True
        message = record.getMessage()
        cut = message
        if found := _PAYLOAD.search(message):
            start = message.rfind("(", 0, found.start() + 1)
            cut = message[:start if start >= 0 else found.start()].rstrip(" :(")
            cut += " (details withheld)"
        if record.name.startswith("slack_sdk.webhook"):  # the URL is a response_url
            cut = _ANY_URL.sub("<response_url withheld>", cut)
        if cut != message:
            record.msg, record.args = cut, None
        return True


class _Redactor:
    def __init__(self, secrets: Iterable[str]):
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _TOKEN.sub("***", text)
        text = _RESPONSE_URL.sub("***", text)
        return _URL_PASSWORD.sub(r"\1***@", text)


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool, redact: _Redactor):
        super().__init__()
        self.as_json = as_json
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = dict(getattr(record, "fields", None) or {})
        error = self.formatException(record.exc_info) if record.exc_info else ""
        at = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        if self.as_json:
            line: dict[str, object] = {"ts": at, "level": record.levelname,
                                       "logger": record.name, "msg": message, **fields}
            if error:
                line["error"] = error
            return self.redact(json.dumps(line, ensure_ascii=False, default=str))
        text = f"{at} {record.levelname} {record.name}: {message}"
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if error:
            text += " | " + error
        return self.redact(text.replace("\r", "").replace("\n", "\\n"))


def configure_logging(*, as_json: bool = False, verbose: bool = False,
                      secrets: Iterable[str] = ()) -> None:
    """Replace the root logger's handlers with one line-per-event handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json, _Redactor(secrets)))
    handler.addFilter(_Withhold())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.INFO)
