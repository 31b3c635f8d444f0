"""Group questions by similar wording (rapidfuzz), largest group first.

Each question is reduced to the words that carry its subject: lower case, the
roles folded to one token each and then set aside (nearly every question names
one), stopwords dropped, endings trimmed. Distinct reduced questions are then
grouped by average linkage over rapidfuzz's `token_set_ratio`: a question joins
the group it is, on average, most similar to, and groups still that similar are
merged. Identical questions count once for similarity and fully for size.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence

from rapidfuzz import fuzz, process

__all__ = ["SIMILAR", "cluster", "reduce"]

#: how alike (0-100) a question and a group must be on average to belong together
SIMILAR = 55.0
#: distinct questions compared at most (the most frequent); the rest are left out
MAX_DISTINCT = 1000

_ROLES = (
    (re.compile(r"\bwork(?:ing)?\s+from\s+home\b|\bwfh\b"), " remote "),
    (re.compile(r"\bmachine[\s-]*learning\s+eng(?:ineer(?:s|ing)?|s)?\b"), " mle "),
    (re.compile(r"\bml\s*eng(?:ineer(?:s|ing)?|s)?\b"), " mle "),
    (re.compile(r"\bmle'?s\b"), " mle "),
    (re.compile(r"\bdata\s+scien(?:tists?|ce)\b"), " ds "),
    (re.compile(r"\bdata\s+sci\b"), " ds "),
    (re.compile(r"\bds'?s\b"), " ds "),
)
_ROLE_TOKENS = frozenset({"mle", "ds", "ml"})
_STOPWORDS = frozenset("""
a an the is are am was were be been being do does did doing done i me my mine you your we
our us it its to of for in on at as by with from or and but if so than then that this these
those there here how what which who whom whose when where why can could should would will
shall may might must whats hows whos im ive id dont doesnt isnt arent
really just very much many any some get gets getting got need needs
needed actually ever also still even please hi hey anyone someone thing things like about
""".split())
_WORD = re.compile(r"[a-z0-9+#]+")


def _trim(word: str) -> str:
    """A light stemmer: enough that "remotely", "remote" and "remotes" meet."""
    if not word.isalpha():
        return word
    if len(word) == 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]  # jobs, labs
    for ending in ("ing", "ly", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 4 and not word.endswith("ss"):
            word = word[: -len(ending)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def _share_a_word(a: frozenset[str], b: frozenset[str]) -> bool:
    """Wording alike in letters only ("leet code", "cover letter") is not alike."""
    if a & b:
        return True
    return any(len(x) >= 5 and len(y) >= 5 and fuzz.ratio(x, y) >= 85 for x in a for y in b)


def reduce(text: str) -> str:
    """The words of `text` that carry its subject, in order."""
    lowered = text.lower().replace("’", "'")
    for pattern, token in _ROLES:
        lowered = pattern.sub(token, lowered)
    words = [w for w in _WORD.findall(lowered.replace("'", ""))
             if w not in _STOPWORDS and w not in _ROLE_TOKENS]
    return " ".join(_trim(w) for w in words)


def cluster(texts: Sequence[str], similar: float = SIMILAR) -> list[list[int]]:
    """Indices into `texts`, grouped by similar wording; largest group first.

    Ties in size keep the order of each group's first question.
    """
    keys: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        key = reduce(text) or " ".join(text.lower().split())
        keys.setdefault(key, []).append(i)
    distinct = sorted(keys, key=lambda k: (-len(keys[k]), keys[k][0]))[:MAX_DISTINCT]
    n = len(distinct)
    # sparse similarities: each distinct question against all others, in rapidfuzz's C loop
    floor = similar * 0.75
    near: list[dict[int, float]] = [{} for _ in range(n)]
    words = [frozenset(key.split()) for key in distinct]
    for i, key in enumerate(distinct):
        for _, score, j in process.extract(key, distinct, scorer=fuzz.token_set_ratio,
                                           limit=None, score_cutoff=floor):
            if j != i and _share_a_word(words[i], words[j]):
                near[i][j] = score

    # each distinct question joins the group it is most similar to on average, or starts one
    groups: list[list[int]] = []
    group_of: dict[int, int] = {}
    for i in range(n):  # most frequent first: they seed the groups
        sums: dict[int, float] = {}
        for j, score in near[i].items():
            if j in group_of:
                sums[group_of[j]] = sums.get(group_of[j], 0.0) + score
        averages = [(total / len(groups[g]), -g) for g, total in sums.items()]
        best = max(averages, default=(0.0, 0))
        if best[0] >= similar:
            groups[-best[1]].append(i)
            group_of[i] = -best[1]
        else:
            group_of[i] = len(groups)
            groups.append([i])
    # then groups that grew alike merge, the most alike pair first (average linkage)
    link: list[dict[int, float]] = [{} for _ in groups]  # summed similarity between groups
    for i in range(n):
        for j, score in near[i].items():
            a, b = group_of[i], group_of[j]
            if a < b:
                link[a][b] = link[b][a] = link[a].get(b, 0.0) + score

    def average(a: int, b: int) -> float:
        return link[a][b] / (len(groups[a]) * len(groups[b]))

    heap = [(-average(a, b), a, b) for a in range(len(groups)) for b in link[a] if a < b]
    heapq.heapify(heap)
    while heap:
        negative, a, b = heapq.heappop(heap)
        if -negative < similar:
            break
        if not groups[a] or not groups[b] or -average(a, b) != negative:
            continue  # merged away, or an average since changed (a fresher entry is queued)
        groups[a] += groups[b]
        groups[b] = []
        for c, total in link[b].items():
            if c != a:
                link[a][c] = link[c][a] = link[a].get(c, 0.0) + total
                del link[c][b]
        link[a].pop(b, None)
        link[b] = {}
        for c in link[a]:
            heapq.heappush(heap, (-average(a, c), min(a, c), max(a, c)))
    groups = [g for g in groups if g]
    out = [sorted(i for d in group for i in keys[distinct[d]]) for group in groups]
    out.sort(key=lambda g: (-len(g), g[0]))
    return out
