"""Logging: one line an event, JSON when CAREERBOT_LOG_JSON asks, never a secret or a raw id.

- A record's extra `fields` (a dict) become keys of the JSON line, `k=v` pairs in text.
- Tracebacks stay on the event's line (JSON-escaped, or with `\\n` in text).
- Tokens, the signing secret and Redis passwords are replaced by `***` in whatever
  is logged, by us or by a library; user ids are logged only through `user_ref`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = ["configure_logging", "user_ref"]

# Slack tokens (xoxb-, xoxp-, xapp-, ...) and passwords in URLs. Every pattern runs in
# time linear in what is logged, whatever that is: each starts on a literal or a word
# boundary and every repeat is bounded, so no start position rescans a long run (an
# unbounded `\w+://` took 35 s on 100 KB of one letter, on the event loop).
_TOKEN = re.compile(r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+")
_URL_PASSWORD = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,31}://[^:/@\s]{0,256}:)[^@\s/]{1,256}@")
# libraries whose DEBUG lines carry whole payloads (ids, text): INFO at most, even with -v
_CHATTY = ("slack_bolt", "slack_sdk", "discord", "aiohttp", "redis", "asyncio")


def user_ref(platform: str, user: str | int | None) -> str:
    """A stable stand-in for a user id in logs: the same user, the same reference."""
    if not user:
        return "-"
    digest = hashlib.blake2b(f"{platform}:{user}".encode(), digest_size=6).hexdigest()
    return f"u-{digest}"


class _Redactor:
    def __init__(self, secrets: Iterable[str]):
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _TOKEN.sub("***", text)
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
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.INFO)
