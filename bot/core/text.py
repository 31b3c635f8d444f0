"""User text, made safe to read and to show.

- `strip_invisible`: what the matcher reads has no characters that show nothing.
- `quote`: what a reply echoes of a user's words is inert on every platform: no
  markup, link, mention, spoiler, code span, control or bidi character survives,
  and it is short. Renderers still escape for their platform; this is what keeps
  the echo from meaning anything even where they could not tell it apart.
"""

from __future__ import annotations

import re

__all__ = ["quote", "strip_invisible"]

# Characters that show nothing: zero-width spaces and joiners, the word joiner and
# invisible operators, the BOM, soft hyphens, bidi controls and tag characters. They
# are dropped, not spaced: "sal\u200bary" is "salary".
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]")
# control characters, and what Slack, Discord or markdown read as markup
_MARKUP = re.compile(r"[\x00-\x1f\x7f-\x9f<>\[\]()*_~`|@#:\\&!^]+")
_LINK = re.compile(r"\b[a-z][a-z0-9+.-]*://\S*|\bwww\.\S*", re.IGNORECASE)
QUOTED = 60  # characters of a user's words a reply echoes


def strip_invisible(text: str) -> str:
    """`text` without the characters that show nothing (see _INVISIBLE)."""
    return _INVISIBLE.sub("", text)


def quote(text: str, limit: int = QUOTED) -> str:
    """A user's words as a reply may show them: plain words, at most `limit` characters."""
    plain = " ".join(_MARKUP.sub(" ", _LINK.sub(" link ", strip_invisible(text))).split())
    return plain if len(plain) <= limit else plain[:limit - 1].rstrip() + "…"
