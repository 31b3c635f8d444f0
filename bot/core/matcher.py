"""Text -> (topic, role, confidence), with rapidfuzz underneath.

The pipeline, built once per knowledge version:

1. normalise: lowercase, drop apostrophes and punctuation;
2. correct typos word by word against the knowledge base's own vocabulary
   (rapidfuzz OSA distance: one slip in a short word, two in a long one), then
   role names and phrases misspelt across their words ("machine leining negineer");
3. canonicalise phrases, longest first: role names become `@ds` / `@mle`, roles
   we do not cover become `@other`, and synonyms become their canonical word
   ("comp", "pay", "earn" -> "salary");
4. score every topic, and every out-of-scope group as a competing intent, by
   how well the question's content words (weighted by how rare they are across
   topics) meet the topic's example questions and keywords, how likely a
   naive-Bayes model of each topic's wording finds the question, plus a
   rapidfuzz string similarity to the nearest example. A long message is scored sentence
   by sentence, so a question buried in a story is still found;
5. the role comes from which roles the text names, and, for switching
   questions, which one it moves *into*.
"""

from __future__ import annotations

import heapq
import math
import os.path
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import TypeVar

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.core.knowledge import Knowledge
from bot.core.models import OTHER_ROLE, Role
from bot.core.text import strip_invisible
from bot.settings import MatchSettings

__all__ = ["OWN_STORY", "Analysis", "Candidate", "Match", "Matcher", "Weights", "asks",
           "forget_reload_caches", "normalise", "warm"]


@dataclass(frozen=True)
class Weights:
    """How much each part of the score counts, checked by `careerbot eval --fit-weights
    tests/data/real/train.jsonl` (the base's examples held out by fold, and the real
    questions' training part; never the held-out part): scaling any one of them by 0.6
    or 1.5 moves the mean of the rates by under half a point, so they stay."""

    #: a question's score is the nearest example (weighted token F1), the votes of its
    #: words, string similarity and a naive-Bayes posterior over the topics in the running
    example: float = 0.35
    vote: float = 0.35
    fuzzy: float = 0.20
    bayes: float = 0.20
    #: a stopword beside a content word; a pair of two stopwords ("from @role" is not
    #: one); a pair with one ("about education")
    stopword: float = 0.2
    stop_pair: float = 0.3
    half_pair: float = 0.7
    #: the whole of a long message, beside the question it asks
    story: float = 0.9
    #: a topic's keyword votes like this many of its examples
    keyword_count: int = 3
    #: a word no topic uses weighs as if this many topics used it
    unknown_df: float = 3.0

DS, MLE, OTHER = "@ds", "@mle", "@other"
_ROLE_TOKEN: dict[str, Role] = {DS: "data_scientist", MLE: "ml_engineer"}
_ROLE_TERM = {DS: "@role", MLE: "@role"}
_MOVE = "@move"
_EXAMPLE_ANALYSES: dict[int, dict[tuple[str, ...], Analysis]] = {}
# word -> its correction, and word -> its slips among the common words: each kept for
# the one last vocabulary, with the vocabulary it was computed for (see _kept_for)
_CORRECTIONS: dict[frozenset[str], dict[str, str]] = {}
_NEIGHBOURS: dict[frozenset[str], dict[str, tuple[str, ...]]] = {}
_STOPWORDS: dict[frozenset[str], frozenset[str]] = {}
_KEPT_CORRECTIONS = 1 << 16
# not English: over this share of letters outside a-z, or under (1 - it) of words known
_FOREIGN = 0.3
_TYPO_LOOKUPS = 24  # new words a message may have corrected (see _Budget)
_KEPT_SCORES = 256  # analyses and scored windows kept per matcher (see Matcher._scores)
_VERSUS = "@versus"
# A question's subject, where English puts it: after "in", "at", "from" ("worth it in
# France?", "an offer at Google"), or, when none of our roles is named, after a verb,
# article or "for" ("how much do pharmacists earn", "salary for pharmacists")
_SUBJECT_AFTER = frozenset({"in", "at", "from"})
_SUBJECT_OPENERS = frozenset({"do", "does", "did", "is", "are", "can", "should", "will",
                              "would", "a", "an", "the", "for"})
# wordfreq's Zipf scale (log10 of uses per billion words): from 2.5, about once in three
# million words, a word is real English (below are typos, names, jargon nobody can judge)
_REAL_WORD_ZIPF = 2.5
# ... and from 3.5, about once in three hundred thousand, a word is common: two slips
# from it is another word, not a slip ("competitors", "competition"), unless a form of it
_COMMON_WORD_ZIPF = 3.5
# ... and whose subject follows them, even in a question that names one of our roles:
# "does Google pay data scientists well?"
_AUXILIARIES = frozenset({"do", "does", "did"})
# ... and either side of "vs": "mle salary sydney vs melbourne?"
_SIDE_BY_SIDE = frozenset({"vs", "versus"})
# the endings of words that describe rather than name ("traditional", "biggest", "losing"):
# in a subject's place they modify the subject, which comes after them
_MODIFIER = re.compile(r"(?:al|est|ive|ous|ly|ed|ing|able|ible|ful|less|ic|ary|ory)$")
_BAYES_SMOOTHING = 0.5  # add-k smoothing of each topic's term counts
_BAYES_RIVALS = 48      # the posterior is over the candidates and this many most-voted topics
_FUZZY_LEADERS = 10     # topics whose examples are string-compared with the question
_PHRASE_SPELLING = 85    # fuzz.ratio from which a few words spell a role name or phrase
_PHRASE_WORD_SPELLING = 60  # ... and each of its words this close to the name's word,
_PHRASE_WORD_SLIPS = 2      # and at most this many slips from it
# switching between our two roles; a move into one from elsewhere asks what it needs
_SWITCH, _SKILLS = "crossover", "skills"
# a question about the bot's own past, which it has none of: declined with that group
OWN_STORY = "personal_experience"
# ("did you mean", "did you say" ask about the answer)
_ASKS_MY_STORY = re.compile(r"\b(?:did you(?! mean| say)|were you|have you ever|you[’']?ve ever|"
                            r"you personally|your own (?:journey|experience|story|path|switch)|"
                            r"tell me about a time|"
                            r"was it (?:like )?(?:that |this )?for you)\b", re.I)
# machine learning, the field, set beside data science stands for the ML engineer's career
_ML = "ml"
_MAX_QUESTIONS = 4       # questions of one message scored: its first two and last two
_SMALL_TALK_SURE = 0.7  # small talk with one word of its own is answered from here
# an unsure best topic is answered when no rival scores above this share of it (see
# _clear_lead). On the folds (1463 in scope, 485 declined) 0.7 gains 10 and loses one
# decline, 0.8 gains 11 and loses one, 0.9 gains 16 and loses two; on the training part
# they gain 2, 3 and 3 and lose none. 0.8: more right without a second decline lost
_LEAD = 0.8
_COMMON = 3             # a word is a typo of one a slip away and this many times as common
# Rarity (idf) is log(1 + _IDF_TOPICS / topics using the word), a fixed numerator about
# the shipped base's size: topics added that share no word with a question (a base
# grown tenfold) then leave that question's weights, and so its answer, alone.
_IDF_TOPICS = 48
_DOUBLE = re.compile(r"([a-z])\1")
_SENTENCE = re.compile(r"(?<=[.!?;\n…])\s+|\n+")
# Words that mark a message as continuing the previous one.
_CUES = ("and", "what about", "how about", "same for", "same", "also", "for", "ok and",
         "then", "now", "and for", "plus", "what if",
         # a fragment that opens on a preposition: "at fintech companies?", "in big tech?"
         "at", "in", "with", "without", "outside")
# A sentence that starts so asks something, question mark or not.
_ASKING = frozenset({"what", "whats", "wat", "how", "hw", "which", "who", "whos", "why", "where",
                     "when", "should", "shall", "can", "could", "would", "will", "is", "are",
                     "do", "does", "did", "any", "anyone", "explain", "compare", "thoughts"})
_ASKING_PHRASES = frozenset({"i want to know", "i wonder", "id like to know", "i would like to",
                             "tell me", "help me", "i need to know", "im wondering",
                             "im curious", "wondering"})
# ... and one that ends so: "ds vs mle responsibilities pls"
_PLEASE = frozenset({"please", "pls", "plz"})
_POINTING = frozenset({"that", "this", "it", "those", "these"})
# words that point back at the conversation: "is that the ML engineer's job?", "become one"
_BACK = _POINTING | {"one", "then", "same"}
# Words that ask for the previous answer the other way round.
_REVERSE = ("other way round", "other way around", "vice versa", "the reverse",
            "the opposite", "opposite direction", "other direction",
            # ... or for the other role: "how about the other one?"
            "the other one", "the other role", "the other side", "the other way")
_ANAPHORA = frozenset({"they", "their", "them", "theirs", "those", "these"})
# a message of nothing but these asks more of the answer in hand: "why?", "how so?"
_ASKING_MORE = frozenset({"why", "how", "so", "really", "tell", "me", "more", "explain",
                          "elaborate", "please", "pls", "go", "on"})
# ... but not one that asks which or what: "which of the two should I go for?"
_NAMING = frozenset({"what", "which", "who", "where", "when"})
# ... and these ask what something is ("what is an MLE?", "who's a data scientist")
_DEFINING = frozenset({"what", "whats", "wat", "who", "whos"})
_COPULAS = frozenset({"is", "are", "s"})
# words around a question that say how it follows, not what it asks: "ok so ... then?"
_ASIDES = frozenset({"ok", "okay", "so", "and", "then", "but"})
# Before a role name, these make it the role being moved INTO; after "from", the source.
_ARTICLES = frozenset({"a", "an", "the", "fellow"})
_INTO = frozenset({"become", "becoming", "became", "into", "to", "towards", "toward", "switch",
                   "as", "be", "fulltime", "full"})
# ... of which these say so alone, whatever else the message says
_BECOMING = frozenset({"become", "becoming", "became", "into", "towards", "toward"})
_SELF = frozenset({"im", "am", "currently", "been", "was", "fellow", "being"})
_FROM = frozenset({"from", "ex", "former", "is", "are"})
# after a role name, these make it the role being moved out of: "a DS becoming an MLE"
_MOVES = frozenset({"become", "becoming", "switch", "go", "going", "jump", "move", "moving"})
# a question about both roles at once: "what do they each earn", "which one pays more"
_COMPARE = frozenset({"each", "both", "vs", "compare", "compared", "comparison", "either",
                      "difference"})
# words the matcher reads for structure are words, never typos of others
_STRUCTURE_WORDS = (_INTO | _SELF | _FROM | _MOVES | _COMPARE
                    | {w for cue in _CUES for w in cue.split()})
_SELF_PAIRS = frozenset({"i am", "i m", "work as", "working as", "worked as", "job as"})


@lru_cache(maxsize=2)  # a reload that leaves the wording alone reuses the last answer
def _known_words(curated: frozenset[str], seen_counts: frozenset[tuple[str, int]]
                 ) -> frozenset[str]:
    """The curated words, every word the examples use often, and every other seen word
    that is not a slip of a much commoner one."""
    seen = dict(seen_counts)
    common = curated | {w for w, k in seen.items() if k >= _COMMON}
    # a word's neighbours among the common words, kept while those stay the same: a
    # reload after an edit looks up only the words it has not met
    neighbours = _kept_for(_NEIGHBOURS, common, reach=1)
    around: dict[int, list[str]] | None = None
    words = set(curated)
    for word, count in seen.items():
        if word in curated or count >= _COMMON or not word.isalpha() or len(word) < 5:
            words.add(word)
            continue
        near = neighbours.get(word)
        if near is None:
            if around is None:
                # one slip changes a word's length by one at most: compare within those
                by_length: dict[int, list[str]] = defaultdict(list)
                for w in common:
                    by_length[len(w)].append(w)
                around = {n: by_length[n - 1] + by_length[n] + by_length[n + 1]
                          for n in {len(w) for w in seen}}
            near = neighbours[word] = tuple(
                v for v, _, _ in process.extract(word, around[len(word)], scorer=OSA.distance,
                                                 score_cutoff=1, limit=4) if v != word)
        if not any(v in curated or seen.get(v, 0) >= _COMMON * count for v in near):
            words.add(word)
    return frozenset(words)


_T = TypeVar("_T")
_MOVED_AT_MOST = 256  # words added or dropped beyond which a vocabulary starts afresh


def _kept_for(caches: dict[frozenset[str], dict[str, _T]], vocabulary: frozenset[str],
              reach: int) -> dict[str, _T]:
    """The cache of word -> what it is next to in `vocabulary`, kept in `caches` for one
    vocabulary: the last one's, less the words within `reach` slips of a word added or
    dropped since (only those can have changed)."""
    if vocabulary in caches:
        return caches[vocabulary]
    kept: dict[str, _T] = {}
    for before, cache in caches.items():
        moved = before ^ vocabulary
        if len(moved) <= _MOVED_AT_MOST:
            words, near = list(cache), set[str]()
            for word in moved:
                near.update(w for w, _, _ in process.extract(
                    word, words, scorer=OSA.distance, score_cutoff=reach, limit=None))
            kept = {w: v for w, v in cache.items() if w not in near}
    caches.clear()
    caches[vocabulary] = kept
    return kept


_SUFFIX = re.compile(r"(?:ing|ed|es|s|ly|ment|ion|ions)$")


def _root(word: str) -> str:
    """A word without its commonest suffix, for telling whether two words are forms of
    one ("detected", "detection", "detect"); never shorter than four letters."""
    root = _SUFFIX.sub("", word)
    return root if len(root) >= 4 else word


def _ending_changed(word: str, other: str) -> bool:
    """Whether two words differ in their last two letters at most ("importance",
    "important"): one is a form of the other."""
    return len(os.path.commonprefix([word, other])) >= max(len(word), len(other)) - 2


@lru_cache(maxsize=4096)
def _zipf(word: str) -> float:
    """How common an English word is (wordfreq's Zipf scale); imported on first use, as
    most questions never need it (see `warm`)."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


def warm() -> None:
    """Load now what matching otherwise loads on first use: wordfreq's English list,
    about 0.4 s and 45 MiB. A server calls this before it takes requests, so the first
    question with an unknown word does not stall every acknowledgement behind it; a
    one-shot `careerbot ask` does not, and pays only when a question needs it."""
    _zipf("the")


def _as_written(word: str, text: str) -> str:
    """`word` (normalised) as it stands in `text`: "France", not "france"."""
    hit = re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)
    return hit.group(0) if hit else word


@lru_cache(maxsize=1 << 16)
def normalise(text: str) -> str:
    """Lowercase, NFKC, no apostrophes, punctuation to spaces (keeps c++ and c#)."""
    text = unicodedata.normalize("NFKC", strip_invisible(text)).lower()
    text = re.sub(r"[\u2019\u2018`']", "", text)
    text = re.sub(r"([a-z])\1{2,}", r"\1\1", text)  # "heyyy", "outlooook": two at most
    text = re.sub(r"[$€£]+", " dollars ", text)
    text = re.sub(r"\s*(?:->|→|=>)\s*", " to ", text)
    text = re.sub(r"[^a-z0-9+#@]+", " ", text)
    return " ".join(text.split())


_CLAUSE = re.compile(r"[^,;:.!?\n]+[,;:.!?\n]*")
_NEGATED = re.compile(
    r"^\s*(not|no|forget|ignore|never ?mind|skip|leave aside|aside from|except|other than|"
    r"i do ?n.?t (want|need|care about|mean)|i.?m not asking|i am not asking|"
    r"dont care about|don.?t care about)\b", re.IGNORECASE)


def _drop_negated(text: str) -> str:
    """Leave out clauses that say what the question is NOT about: "not salary, what tools..."."""
    clauses = _CLAUSE.findall(text)
    kept = [c for c in clauses if not _NEGATED.match(c)]
    return "".join(kept) if kept and len(kept) < len(clauses) else text


@lru_cache(maxsize=1 << 18)
def _example_words(text: str) -> tuple[str, ...]:
    """An example read like a question: "not asking about degrees, ..." is not about degrees."""
    return tuple(normalise(_drop_negated(text)).split())


def _questions(sentences: list[str]) -> list[str]:
    """The sentences that ask: with a question mark, or worded as a question (chat often
    leaves the mark out: "what skills do i need for ds"). One that only points back
    ("what does that even mean?") is read with the sentence before it."""
    asked = []
    for k, sentence in enumerate(sentences):
        words = normalise(sentence).split()
        if sentence.rstrip().rstrip("!.").endswith("?") or (words and (  # "...is it?!"
                words[0] in _ASKING or " ".join(words[:3]) in _ASKING_PHRASES
                or " ".join(words[:4]) in _ASKING_PHRASES or words[-1] in _PLEASE)):
            if k and len(words) <= 6 and _POINTING.intersection(words):
                sentence = f"{sentences[k - 1]} {sentence}"
            asked.append(sentence)
    return list(dict.fromkeys(asked))  # each distinct question once


def _bounded(questions: list[str]) -> list[str]:
    """The questions a message is scored by, a bounded number of them: a message of 80
    questions costs what one of a few does."""
    if len(questions) <= _MAX_QUESTIONS:
        return questions
    return questions[:_MAX_QUESTIONS // 2] + questions[-(_MAX_QUESTIONS // 2):]


# a second ask inside one sentence: "what does a DS earn, and how hard is it to switch?"
_JOINED_ASK = re.compile(r"[,;]\s*(?:and\s+|also\s+|plus\s+)?(?=(?:what|how|which|who|why|where|"
                         r"when|is|are|do|does|can|should)\b)", re.IGNORECASE)
_MAX_ASKS = 3  # asks of one message answered one by one; more is a wall of text


def asks(text: str) -> list[str]:
    """The distinct questions of a message, when it asks more than one (else []): its
    question sentences, and asks joined inside one ("..., and how hard is it to
    switch?"), first ones first, three at most."""
    sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
    found: list[str] = []
    for question in _questions(sentences):
        carried = ""  # a lead-in too short to ask anything ("Also, which ...") joins the next
        for part in _JOINED_ASK.split(question):
            part = f"{carried} {part}".strip()
            if len(part.split()) < 3:
                carried = part
                continue
            found.append(part)
            carried = ""
        if carried:
            found.append(carried)
    found = list(dict.fromkeys(found))
    return found[:_MAX_ASKS] if len(found) > 1 else []


class _Budget:
    """Typo lookups one message may make that no earlier message made (each costs a
    rapidfuzz pass over the vocabulary): real messages need a few; 250 made-up words
    would need 250."""

    def __init__(self, lookups: int = _TYPO_LOOKUPS):
        self.left = lookups

    def spend(self) -> bool:
        self.left -= 1
        return self.left >= 0


@dataclass(frozen=True)
class _Direction:
    selves: frozenset[Role]    # "I'm a DS", "as an MLE, ...": who is asking
    sources: frozenset[Role]   # moved out of: the asker's role, "from a DS", "a DS becoming"
    targets: frozenset[Role]   # moved into: "become an MLE", "into data science"

    @property
    def move(self) -> bool:
        return bool(self.targets - self.sources) and bool(self.sources - self.targets)


def _two_before(tokens: list[str] | tuple[str, ...], pos: int) -> list[str]:
    """The last two words before a role's position, articles aside ("become a", "to")."""
    return [t for t in tokens[max(0, pos - 4):pos] if t not in _ARTICLES][-2:]


def _direction(tokens: list[str] | tuple[str, ...],
               roles: tuple[tuple[Role, int], ...]) -> _Direction:
    """How the named roles stand in the sentence: the asker's, moved out of, moved into."""
    selves: set[Role] = set()
    sources: set[Role] = set()
    targets: set[Role] = set()
    for role, pos in roles:
        before = _two_before(tokens, pos)
        after = [t for t in tokens[pos + 1:pos + 4] if t not in _ARTICLES][:2]
        last = before[-1] if before else ""
        if (any(t in _SELF for t in before) or " ".join(before) in _SELF_PAIRS
                or (last == "as" and pos <= 2)):
            selves.add(role)
            sources.add(role)
        elif last in _FROM:
            sources.add(role)
        elif last in _INTO:
            targets.add(role)
        elif any(t in _MOVES for t in after):
            sources.add(role)
    return _Direction(frozenset(selves), frozenset(sources), frozenset(targets))


@dataclass(frozen=True)
class Analysis:
    tokens: tuple[str, ...]          # canonical tokens, roles as @ds / @mle / @other
    content: tuple[str, ...]         # tokens that carry a topic (no stopwords, no roles)
    terms: tuple[str, ...]           # what scoring sees: every token, our roles as @role
    roles: tuple[tuple[Role, int], ...]  # (data_scientist | ml_engineer, token position)
    other_role: bool
    cue: bool                        # reads like a continuation ("and their tools?")
    compares: bool = False           # asks about both roles at once ("each", "which one")
    reverses: bool = False           # "the other way round", "vice versa"

    @property
    def roles_named(self) -> frozenset[Role]:
        return frozenset(r for r, _ in self.roles)

    @property
    def leans(self) -> bool:
        """Leans on the conversation so far: a continuation ("and their tools?", "what
        about MLEs?"), one pointing back ("is that the MLE's job?"), nothing but role
        names ("ML engineers?") or nothing but asking for more ("why?"). One that
        names its own subject ("What is a data scientist?") stands alone."""
        return (self.cue or not _BACK.isdisjoint(self.tokens)
                or (bool(self.roles) and all(t in _ROLE_TOKEN or t in _ARTICLES
                                             for t in self.tokens))
                or self.asks_more)

    @property
    def asks_more(self) -> bool:
        """Asks for more of the answer in hand and names nothing: "why?", "can you
        elaborate", "ok but y tho"."""
        return (not self.roles and not self.compares and _NAMING.isdisjoint(self.tokens)
                and not _ASKING_MORE.isdisjoint(self.tokens)
                and _ASKING_MORE.issuperset(self.content))

    @property
    def defines(self) -> bool:
        """Asks what one of our roles is, and nothing more: "what is a data scientist?",
        "ok so what's an MLE then?". It names its subject, in any conversation."""
        words = [t for t in self.tokens if t not in _ASIDES]
        return (len(words) >= 2 and words[0] in _DEFINING and words[-1] in _ROLE_TOKEN
                and all(w in _ARTICLES or w in _COPULAS for w in words[1:-1]))

    @property
    def points_back(self) -> bool:
        """Points at something said before: "who owns it?", "is that hard?"."""
        return not _POINTING.isdisjoint(self.tokens)

    @cached_property
    def term_set(self) -> frozenset[str]:
        return frozenset(self.terms)

    @cached_property
    def fuzzy(self) -> str:
        """What the string similarity compares: our roles alike, no articles."""
        return " ".join("@role" if t in (DS, MLE) else t for t in self.tokens
                        if t.startswith("@") or t not in ("a", "an", "the"))


@dataclass(frozen=True)
class Candidate:
    id: str
    score: float
    out_of_scope: bool = False


@dataclass(frozen=True)
class Match:
    topic: str | None
    role: Role | None
    confidence: float
    candidates: tuple[Candidate, ...]
    analysis: Analysis
    decline_reason: str | None = None
    #: what a declined question asks about that the base does not cover, as the asker
    #: wrote it: a role ("pharmacists", "data analyst"), a place, a company, a tool
    subject: tuple[str, ...] = ()
    #: unsure, but far ahead of every rival (see Matcher._clear_lead): answered from the
    #: follow-up line rather than the decline line
    leads: bool = False

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def _is_stop(term: str, stop: frozenset[str]) -> bool:
    """Counts little: a stopword, a role (which role is read apart), a number."""
    return term in stop or term == "@role" or term.isdigit()


def _discount(term: str, stop: frozenset[str], weights: Weights) -> float:
    """How much a term counts beside its rarity: stopwords and their pairs count less."""
    if "_" in term:
        a, _, b = term.partition("_")
        return (1.0, weights.half_pair, weights.stop_pair)[
            _is_stop(a, stop) + _is_stop(b, stop)]
    return weights.stopword if _is_stop(term, stop) else 1.0


@dataclass(frozen=True)
class _Index:
    idf: dict[str, float]                          # rarity across topics, discounted
    unknown_idf: float                             # the weight of a word no topic uses
    points: dict[str, list[tuple[int, float]]]     # term -> (topic, share of its uses)
    example_owner: list[int]                       # example -> its topic
    example_terms: list[frozenset[str]]
    example_weight: list[float]                    # example -> its terms' total weight
    examples_with: dict[str, list[int]]            # term -> the examples using it
    bayes_base: list[float]                        # topic -> log P(a term it never uses)
    bayes_lift: list[dict[str, float]]             # topic -> term -> log P(term) - base


@lru_cache(maxsize=1 << 14)  # a reload reuses the topics it leaves alone
def _doc_counts(doc: _Doc, keyword_count: int) -> tuple[Counter[str], dict[str, float]]:
    """A topic's term counts (a keyword counts as several examples) and, from them, its
    naive-Bayes lifts: log P(term | topic) - log P(a term the topic never uses)."""
    c: Counter[str] = Counter()
    for ex in doc.examples:
        c.update(ex)
    c.update({t: keyword_count for t in doc.keywords})
    return c, {t: math.log(1 + k / _BAYES_SMOOTHING) for t, k in c.items()}


@lru_cache(maxsize=1 << 14)  # a reload reuses the topics it leaves alone
def _doc_vocabulary(doc: _Doc) -> frozenset[str]:
    """Every term a topic uses, in its examples and keywords."""
    return frozenset(doc.keywords).union(*doc.examples)


@dataclass(frozen=True)
class _Doc:
    label: str
    out_of_scope: bool
    examples: tuple[frozenset[str], ...]
    keywords: frozenset[str]
    #: mostly questions about roles we do not cover: no rival when a question names ours
    about_other_roles: bool = False


@dataclass
class _Built:
    """The last index built, with the counts behind it: a reload that edits a few topics
    adjusts those counts and recomputes only the terms those topics use."""
    docs: tuple[_Doc, ...]
    stop: frozenset[str]
    weights: Weights
    df: Counter[str]        # term -> topics using it
    totals: Counter[str]    # term -> its count over all topics
    index: _Index


_LAST_INDEX: list[_Built] = []  # at most one


def _index(docs: tuple[_Doc, ...], stop: frozenset[str], weights: Weights) -> _Index:
    """How rare a term is across topics (idf), how strongly it points at each one,
    and every example once, with its total weight and an index from terms to examples.

    The index is the same whether it is built whole or from the last one: the counts are
    integers, and the terms of the topics that changed are recomputed by the same rules."""
    last = _LAST_INDEX[0] if _LAST_INDEX else None
    if last is not None and (last.stop != stop or last.weights != weights
                             or [d.label for d in last.docs] != [d.label for d in docs]):
        last = None  # another vocabulary, other weights, or other topics: built whole
    if last is not None and last.docs == docs:
        return last.index
    counted = [_doc_counts(doc, weights.keyword_count) for doc in docs]
    counts = [c for c, _ in counted]
    if last is None:
        df: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
            totals.update(c)
        idf: dict[str, float] = {}
        points: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, c in enumerate(counts):
            for term, k in c.items():
                points[term].append((i, k / totals[term]))
        terms: Iterable[str] = df
    else:
        changed = [i for i, (old, new) in enumerate(zip(last.docs, docs, strict=True))
                   if old != new]
        df, totals = last.df.copy(), last.totals.copy()
        touched: set[str] = set()
        for i in changed:
            old_counts = _doc_counts(last.docs[i], weights.keyword_count)[0]
            df.subtract(old_counts.keys())
            totals.subtract(old_counts)
            df.update(counts[i].keys())
            totals.update(counts[i])
            touched.update(old_counts.keys(), counts[i].keys())
        idf, points = dict(last.index.idf), dict(last.index.points)
        for term in touched:
            if df[term] <= 0:
                for kept in (df, totals, idf, points):
                    kept.pop(term, None)
                continue
            using = sorted({i for i, _ in points.get(term, ())}.union(changed))
            points[term] = [(i, counts[i][term] / totals[term]) for i in using
                            if term in counts[i]]
        terms = [t for t in touched if t in df]
    n = _IDF_TOPICS
    for term in terms:
        idf[term] = math.log(1 + n / df[term]) * _discount(term, stop, weights)
    bayes_base = [math.log(_BAYES_SMOOTHING / (c.total() + _BAYES_SMOOTHING * len(totals)))
                  for c in counts]
    index = _Index(idf, math.log(1 + n / weights.unknown_df), dict(points), [], [], [],
                   defaultdict(list), bayes_base, [lift for _, lift in counted])
    weight = idf.__getitem__
    for i, doc in enumerate(docs):
        for example in doc.examples:
            e = len(index.example_owner)
            index.example_owner.append(i)
            index.example_terms.append(example)
            index.example_weight.append(sum(map(weight, example)))
            for term in example:
                index.examples_with[term].append(e)
    _LAST_INDEX[:] = [_Built(docs, stop, weights, df, totals, index)]
    return index


class Matcher:
    """Built from one immutable `Knowledge`; safe to share between tasks."""

    def __init__(self, knowledge: Knowledge, settings: MatchSettings | None = None,
                 weights: Weights | None = None):
        self.knowledge = knowledge
        self.settings = settings or MatchSettings()
        self.weights = weights or Weights()
        vocab = knowledge.vocabulary
        # one object for equal stopword sets: caches keyed by it then compare by identity
        if len(_STOPWORDS) > 8:
            _STOPWORDS.clear()
        self._stop = _STOPWORDS.setdefault(vocab.stopwords, vocab.stopwords)
        self._phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        for role, names in vocab.roles.items():
            token = DS if role == "data_scientist" else MLE
            for name in names:
                self._phrases[tuple(name.split())] = (token,)
        for name in vocab.other_roles:
            self._phrases.setdefault(tuple(name.split()), (OTHER,))
        for canon, variants in vocab.synonyms.items():
            for variant in variants:
                self._phrases.setdefault(tuple(variant.split()), tuple(canon.split()))
        # role names and phrases of several words, which a slip in each word can still
        # spell out ("machine leining negineer", "macane learnng")
        self._spelt: dict[int, list[str]] = defaultdict(list)
        for names in [*vocab.roles.values(), *vocab.synonyms.values()]:
            for name in names:
                if len(name.split()) > 1 and len(name) >= 10:
                    self._spelt[len(name.split())].append(name)
        self._spelt_words = frozenset(w for names in self._spelt.values() for name in names
                                      for w in name.split())
        self._longest: dict[str, int] = {}
        for phrase in self._phrases:
            self._longest[phrase[0]] = max(self._longest.get(phrase[0], 0), len(phrase))

        # Words of the vocabulary files are right by definition; words of the examples
        # are right unless one is rare and a slip away from a common one (examples
        # spell like people type: "enginers" there must not shield "enginers" here).
        curated: set[str] = set(vocab.stopwords) | _STRUCTURE_WORDS
        for phrase, repl in self._phrases.items():
            curated.update(phrase)
            curated.update(t for t in repl if not t.startswith("@"))
        seen: Counter[str] = Counter()
        for topic in knowledge.topics.values():
            for text in (*topic.examples, *topic.keywords, topic.title):
                seen.update(normalise(text).split())
        for group in knowledge.out_of_scope:
            for text in group.examples:
                seen.update(normalise(text).split())
        words = _known_words(frozenset(curated), frozenset(seen.items()))
        # typos are corrected into words that carry meaning here, or long function words
        self._targets = sorted(w for w in words if w.isalpha() and len(w) > 3
                               and (w not in vocab.stopwords or len(w) >= 6))
        self._known = frozenset(words)
        self._frequency = seen
        # corrections are kept for the last vocabulary, and those no new or dropped word
        # can change for the next (a bounded number; a tie between two words is broken
        # by the counts the correction first saw). A correction is within two slips, or
        # three for a plural read as its singular.
        self._corrections = _kept_for(_CORRECTIONS, frozenset(self._targets), reach=3)
        # An example's corrected words read the same under the same phrases and
        # stopwords: reloads that change answers, or a few examples (and so which words
        # are known), reuse the rest (one vocabulary is kept). Only the build reads them:
        # they are no part of the matcher, nor of what matcher_cache keeps on disk.
        signature = hash((frozenset(self._phrases.items()), self._stop))
        if signature not in _EXAMPLE_ANALYSES:
            _EXAMPLE_ANALYSES.clear()
            _EXAMPLE_ANALYSES[signature] = {}
        kept = _EXAMPLE_ANALYSES[signature]

        sources = [(t.id, False, t.examples, [*t.keywords, t.title])
                   for t in knowledge.topics.values()]
        sources += [(g.id, True, g.examples, []) for g in knowledge.out_of_scope]
        docs: list[_Doc] = []
        self._fuzzy_strings: list[list[str]] = []
        for label, oos, examples, keywords in sources:
            analyses = [self._analyse_example(e, kept) for e in examples]
            docs.append(self._doc(label, oos, analyses, keywords, kept))
            self._fuzzy_strings.append([a.fuzzy for a in analyses])
        self._docs = tuple(docs)
        self._declines_own_story = any(g.id == OWN_STORY for g in knowledge.out_of_scope)
        self._about_other_roles = {i for i, d in enumerate(docs) if d.about_other_roles}
        self._roots: dict[str, frozenset[str]] = {}  # a topic's words by _root, when asked
        self._window_scores: dict[Analysis, dict[int, float]] = {}
        self._analyses: dict[str, Analysis] = {}
        self._vocabulary = {doc.label: _doc_vocabulary(doc) for doc in docs}
        self._titles: dict[str, frozenset[str]] = {}
        index = _index(tuple(docs), self._stop, self.weights)
        self._idf = index.idf
        self._unknown_idf = index.unknown_idf
        self._points = index.points
        self._example_owner = index.example_owner
        self._example_terms = index.example_terms
        self._example_weight = index.example_weight
        self._examples_with = index.examples_with
        self._bayes_base = index.bayes_base
        self._bayes_lift = index.bayes_lift

    # ------------------------------------------------------------------ analysis

    def _correct(self, word: str, budget: _Budget | None = None) -> str:
        if word in self._known or not word.isalpha():
            return word
        single = _DOUBLE.sub(r"\1", word)  # "heyy", "soo": a letter held down
        if single != word and single in self._known:
            return single
        if len(word) < 5:
            return word
        corrected = self._corrections.get(word)
        if corrected is None:
            if budget is not None and not budget.spend():
                return word  # this message has had its share of lookups: as typed
            if len(self._corrections) >= _KEPT_CORRECTIONS:
                self._corrections.clear()
            corrected = self._corrections[word] = self._correct_uncached(word)
        return corrected

    def _correct_uncached(self, word: str) -> str:
        if word.endswith("ly") and _zipf(word) >= _COMMON_WORD_ZIPF:
            # an adverb frames an ask (see _strays); its adjective would name a subject:
            # "what is ml, technically?" is not about technical things
            return word
        limit = 1 if len(word) < 9 else 2
        hits = process.extract(word, self._targets, scorer=OSA.distance,
                               score_cutoff=limit, limit=None)
        if not hits and word.endswith("s") and len(word) >= 5:
            # a plural's slip is a slip of its singular: "ytpes" is "types"
            singular = word[:-1]
            hits = process.extract(singular, self._targets, scorer=OSA.distance,
                                   score_cutoff=limit, limit=None)
            word = singular if hits else word
        if limit == 2 and _zipf(word) >= _COMMON_WORD_ZIPF:
            # a common word two slips from another is that word only as a form of it:
            # "importance" is "important", "competitors" is not "competition"
            hits = [h for h in hits if h[1] < 2 or _ending_changed(word, h[0])]
        if not hits:
            return word
        # on a tie, a slip keeps the first letter more often than not, and the
        # commoner word is the likelier one: "learing" is "learning", not "hearing"
        best = min(hits, key=lambda h: (h[1], h[0][0] != word[0], -self._frequency[h[0]]))
        return best[0]

    def analyse(self, text: str, correct: bool = True, budget: _Budget | None = None
                ) -> Analysis:
        """`text` read: corrected (within `budget`, when given), canonicalised, scored
        terms. A message's parts are read more than once: the last few hundred are kept."""
        if not correct:
            return self._read(normalise(text).split())
        analysis = self._analyses.get(text)
        if analysis is None:
            if len(self._analyses) >= _KEPT_SCORES:
                self._analyses.clear()
            words = self._spell_phrases([self._correct(w, budget)
                                         for w in normalise(text).split()])
            analysis = self._analyses[text] = self._read(words)
        return analysis

    def _read(self, words: list[str]) -> Analysis:
        """The analysis of words already corrected."""
        tokens: list[str] = []
        i = 0
        while i < len(words):
            longest = self._longest.get(words[i], 0)  # no phrase starts here: one lookup
            for size in range(min(longest, len(words) - i), 0, -1):
                repl = self._phrases.get(tuple(words[i:i + size]))
                if repl is not None:
                    tokens.extend(repl)
                    i += size
                    break
            else:
                tokens.append(words[i])
                i += 1
        tokens = [self._stem(t) for t in tokens]
        roles = tuple((_ROLE_TOKEN[t], i) for i, t in enumerate(tokens) if t in _ROLE_TOKEN)
        content = tuple(t for t in tokens if not t.startswith("@") and t not in self._stop)
        # a last "then" draws a conclusion from what was said ("so what's an MLE then?")
        # and says nothing of what is asked: "then what?" asks what comes next
        said_then = tokens[:-1] if len(tokens) > 1 and tokens[-1] == "then" else tokens
        unigrams = [_ROLE_TERM.get(t, t) for t in said_then if t not in _ARTICLES]
        if _direction(tokens, roles).move:
            unigrams.append(_MOVE)  # "from one of our roles into the other"
        bare = [t for t in tokens if t not in _ARTICLES]
        if any(a in _ROLE_TOKEN and c in _ROLE_TOKEN and a != c and b == "vs"
               for a, b, c in zip(bare, bare[1:], bare[2:], strict=False)):
            unigrams.append(_VERSUS)  # "DS or MLE", "ds vs mle": the two set side by side
        # adjacent pairs keep a little word order: "from @role", "go for", "per year"
        terms = tuple(unigrams + [f"{a}_{b}" for a, b in zip(unigrams, unigrams[1:],
                                                              strict=False)])
        joined = " ".join(words)
        said = (joined, " ".join(tokens))  # as typed, and as read: "wat abt ds?", "n for mles?"
        cue = (any(text == c or text.startswith(c + " ") for text in said for c in _CUES)
               or any(w in _ANAPHORA for w in words))
        # "or" and "vs" set our roles side by side only beside one: "a masters or a phd?"
        compares = (any(t in _COMPARE and (t != "vs" or roles) for t in tokens)
                    or "which one" in joined
                    or " the two " in f" {joined} ")  # "the handoff between the two"
        reverses = any(f" {r} " in f" {joined} " for r in _REVERSE)
        return Analysis(tuple(tokens), content, terms, roles, OTHER in tokens, cue, compares,
                        reverses)

    def _spell_phrases(self, words: list[str]) -> list[str]:
        """Role names and phrases misspelt word by word: "machine leining negineer" is one,
        and so is "mtchine earning engineer", whose words are all words of their own."""
        if self._spelt_words.isdisjoint(words):
            return words  # a misspelt phrase keeps one of its words, typos corrected
        i = 0
        while i < len(words):
            known = next((n for n in range(self._longest.get(words[i], 0), 1, -1)
                          if tuple(words[i:i + n]) in self._phrases), 0)
            for size in (3, 2):
                window = words[i:i + size]
                if (len(window) < size or known >= size
                        or self._spelt_words.isdisjoint(window)):
                    continue
                hit = process.extractOne(" ".join(window), self._spelt[size],
                                         scorer=fuzz.ratio, score_cutoff=_PHRASE_SPELLING)
                # and word for word: "machine learning a" is no "machine learning eng",
                # and "data science tools" no "data science folks"
                if hit and all(fuzz.ratio(a, b) >= _PHRASE_WORD_SPELLING
                               and OSA.distance(a, b) <= _PHRASE_WORD_SLIPS
                               for a, b in zip(window, hit[0].split(), strict=True)):
                    words[i:i + size] = hit[0].split()
                    known = size
                    break
            i += max(known, 1)
        return words

    def _analyse_example(self, text: str, kept: dict[tuple[str, ...], Analysis]) -> Analysis:
        words = tuple(self._correct(w) for w in _example_words(text))
        analysis = kept.get(words)
        if analysis is None:
            analysis = kept[words] = self._read(self._spell_phrases(list(words)))
        return analysis

    def _stem(self, token: str) -> str:
        """Plural to singular, so "certifications" meets "certification"."""
        if len(token) < 4 or token in self._stop or token.startswith("@"):
            return token
        if token.endswith("ies") and len(token) > 4:
            return token[:-3] + "y"
        if token.endswith("s") and not token.endswith(("ss", "us", "is", "as", "os")):
            return token[:-1]
        return token

    def _doc(self, label: str, oos: bool, examples: list[Analysis], keywords: list[str],
             kept: dict[tuple[str, ...], Analysis]) -> _Doc:
        ex = tuple(a.term_set for a in examples)
        kw: set[str] = set()
        for k in keywords:
            key = ("", *normalise(k).split())  # a keyword is read as written: no corrections
            analysed = kept.get(key)
            if analysed is None:
                analysed = kept[key] = self._read(list(key[1:]))
            kw.update(analysed.content)
            kw.update(t for t in analysed.terms if "_" in t)
        about_other = sum(OTHER in e for e in ex) > len(ex) / 2
        return _Doc(label, oos, tuple(e for e in ex if e), frozenset(kw), about_other)

    # ------------------------------------------------------------------ scoring

    def _discount(self, term: str) -> float:
        return _discount(term, self._stop, self.weights)

    def _is_stop(self, term: str) -> bool:
        return _is_stop(term, self._stop)

    def _weight(self, term: str) -> float:
        weight = self._idf.get(term)
        if weight is None:
            # unseen: a word is evidence of another subject; an unseen pair is no evidence
            weight = 0.0 if "_" in term else self._unknown_idf * self._discount(term)
        return weight

    def _scores(self, analysis: Analysis) -> dict[int, float]:
        """`_score_window`, kept for the last few hundred windows: the asks of a message
        of several are its question windows again."""
        scores = self._window_scores.get(analysis)
        if scores is None:
            if len(self._window_scores) >= _KEPT_SCORES:
                self._window_scores.clear()
            scores = self._window_scores[analysis] = self._score_window(analysis)
        return scores

    def _score_window(self, analysis: Analysis) -> dict[int, float]:
        weights = {t: self._weight(t) for t in set(analysis.terms)}
        weights = {t: w for t, w in weights.items() if w > 0}
        wq = sum(weights.values())
        # Candidates are the topics sharing a meaningful word with the question (any word,
        # when it has none: "what is a data scientist?"); common words only add weight.
        seeds = [t for t in weights if self._discount(t) == 1.0] or list(weights)
        rest = frozenset(weights).difference(seeds)
        votes: dict[int, float] = {}
        candidates: set[int] = set()
        for term, w in weights.items():
            for i, share in self._points.get(term, ()):
                votes[i] = votes.get(i, 0.0) + w * share
        for term in seeds:
            candidates.update(i for i, _ in self._points.get(term, ()))
        # and the topics the question's whole wording votes for most ("what does X do?")
        most_voted = heapq.nlargest(_BAYES_RIVALS, votes, key=votes.__getitem__)
        candidates.update(most_voted[:_FUZZY_LEADERS])
        overlap: dict[int, float] = {}
        for term in seeds:
            w = weights[term]
            for e in self._examples_with.get(term, ()):
                overlap[e] = overlap.get(e, 0.0) + w
        excluded = (self._about_other_roles if analysis.roles and not analysis.other_role
                    else set())
        candidates -= excluded
        partial: dict[int, float] = dict.fromkeys(candidates, 0.0)
        for e, shared in overlap.items():
            i = self._example_owner[e]
            if i in excluded:
                continue
            # the smaller of the two sets is walked: a long message meets short examples
            shared += sum(weights[t] for t in self._example_terms[e] & rest)
            precision, recall = shared / wq, shared / self._example_weight[e]
            f1 = self.weights.example * 2 * precision * recall / (precision + recall)
            if f1 > partial[i]:
                partial[i] = f1
        bayes = self._bayes(analysis, partial.keys() | most_voted)
        for i in partial:
            partial[i] += (self.weights.vote * votes.get(i, 0.0) / wq
                           + self.weights.bayes * bayes[i])
        # string similarity, the costliest part, only for the leaders
        query = analysis.fuzzy
        leaders = sorted(partial, key=partial.__getitem__, reverse=True)[:_FUZZY_LEADERS]
        for i in leaders:
            hit = process.extractOne(query, self._fuzzy_strings[i],
                                     scorer=fuzz.token_sort_ratio, score_cutoff=40)
            if hit:
                partial[i] += self.weights.fuzzy * hit[1] / 100
        return partial

    def _bayes(self, analysis: Analysis, candidates: Iterable[int]) -> dict[int, float]:
        """P(topic | question, one of `candidates`) under a naive-Bayes model of each
        topic's wording (its examples and keywords), the candidates equally likely up
        front. A word that many examples of one topic use outweighs a pair seen once.
        The candidates are the topics the question's words point at most, about as many
        as the shipped base has: thousands of unrelated topics neither dilute the
        posterior nor cost anything."""
        # each distinct term once, by how often it is used: the cost is in distinct terms
        known = [(t, self._discount(t) * k) for t, k in Counter(analysis.terms).items()
                 if t in self._idf]
        mass = sum(d for _, d in known)
        loglik = {}
        for i in candidates:
            lift = self._bayes_lift[i]
            loglik[i] = mass * self._bayes_base[i] + sum(d * lift.get(t, 0.0) for t, d in known)
        if not loglik:
            return {}
        top = max(loglik.values())
        likelihood = {i: math.exp(v - top) for i, v in loglik.items()}
        total = sum(likelihood.values())
        return {i: v / total for i, v in likelihood.items()}

    @staticmethod
    def _windows(text: str, sentences: list[str], questions: list[str]) -> list[str]:
        """The parts of a long message to score: its questions, or else its last sentence,
        and the whole."""
        if len(sentences) < 2:
            return [text]
        if questions:
            # and the whole: "I love explaining numbers. Which should I aim for?" is
            # about choosing only with the story around the question
            return [*questions, text]
        # none asks outright: the ask comes last ("...been applying since. coding in ds")
        return [sentences[-1], text]

    def match(self, text: str, around: str = "") -> Match:
        """The answer to `text`; `around` is the message it was asked in, when it is one
        ask of several (it says which roles the asker is moving between)."""
        text = _drop_negated(text)
        budget = _Budget()  # typo lookups this message may make, all its parts together
        whole = self.analyse(text, budget=budget)
        sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
        questions = _bounded(_questions(sentences))
        totals: dict[int, float] = {}
        windows = self._windows(text, sentences, questions)
        for window in windows:
            analysis = whole if window is text else self.analyse(window, budget=budget)
            # the story around a question helps it, but alone it makes no answer to an
            # unrelated question ("...I studied economics. what's the weather like?")
            weight = self.weights.story if window is text and len(windows) > 1 else 1.0
            for i, score in self._scores(analysis).items():
                totals[i] = max(totals.get(i, 0.0), score * weight)
        ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)
        candidates = tuple(Candidate(self._docs[i].label, round(min(s, 1.0), 4),
                                     self._docs[i].out_of_scope) for i, s in ranked[:5])
        asked_text = self._asked_text(text, sentences, questions)
        asked = whole if len(sentences) < 2 else self.analyse(asked_text, budget=budget)
        # the questions of a message of several sentences, when they name a role: "I know
        # what a data scientist is. What's an ML engineer?" is about ML engineers
        focus = asked if questions and asked.roles else whole
        decided = self._decide(whole, candidates, focus, asked,
                               self.analyse(around, budget=budget) if around else whole)
        reason = decided.decline_reason
        if ((decided.topic or reason == "low_confidence") and self._declines_own_story
                and _ASKS_MY_STORY.search(asked_text)):
            # "did you have imposter syndrome your first year?": the bot has no story
            return replace(decided, topic=None, role=None, decline_reason=OWN_STORY)
        if reason == "other_roles":
            return replace(decided, subject=self._other_roles_named(text))
        if reason == "low_confidence" and self._foreign(text, budget):
            # before looking for an uncovered subject: "entre" is no subject of ours
            return replace(decided, decline_reason="not_english")
        if reason == "low_confidence" or (
                decided.topic and not self.knowledge.topics[decided.topic].smalltalk):
            subject = self._uncovered(asked_text, bool(focus.roles), budget)
            if subject:
                # "is a master's worth it in France?": education, but not in France
                return replace(decided, topic=None, role=None, decline_reason="uncovered",
                               subject=subject)
        return decided

    def _uncovered(self, text: str, named: bool, budget: _Budget) -> tuple[str, ...]:
        """The words in a subject's place (see _SUBJECT_AFTER) that no topic mentions in
        any form, that are not a slip of a word it knows, and that are real English:
        "pharmacists", "France". As the asker wrote them, first seen first."""
        words = normalise(text).split()
        found: list[str] = []
        passed_on = -1  # a subject's place handed on past "of"
        for i, word in enumerate(words):
            before = words[i - 1] if i else ""
            after = words[i + 1] if i + 1 < len(words) else ""
            # the preposition may come before "the": "in the auto industry" (not "a":
            # "at a loss")
            at = i - 1 if before == "the" and i >= 3 else i
            if not ((at >= 2 and words[at - 1] in _SUBJECT_AFTER)
                    or (not named and before in _SUBJECT_OPENERS)
                    or before in _AUXILIARIES or i == passed_on
                    or before in _SIDE_BY_SIDE or after in _SIDE_BY_SIDE):
                continue
            if after == "of":
                # "a rundown of mlops", "the pay of pharmacists": the subject follows
                passed_on = i + 2
                continue
            if (not word.isalpha() or len(word) < 3 or word in self._stop
                    or _MODIFIER.search(word) or _root(word) in self._covered
                    or word in found or re.search(rf"\b{word}-", text, re.IGNORECASE)):
                continue  # "entry-level" is a kind of something else
            if (_root(self._correct(word, budget)) in self._covered
                    or _zipf(word) < _REAL_WORD_ZIPF):
                continue  # a slip of a word the topics use, or no word at all
            found.append(word)
        return tuple(_as_written(w, text) for w in found)

    def _other_roles_named(self, text: str) -> tuple[str, ...]:
        """The roles we do not cover that a message names ("data analyst")."""
        words = normalise(text).split()
        found: list[str] = []
        for i in range(len(words)):
            for size in range(self._longest.get(words[i], 0), 0, -1):
                phrase = tuple(words[i:i + size])
                if self._phrases.get(phrase) == (OTHER,) and " ".join(phrase) not in found:
                    found.append(" ".join(phrase))
                    break
        return tuple(found)

    @cached_property
    def _covered(self) -> frozenset[str]:
        """Every word the topics use anywhere (titles, summaries, answers, examples,
        keywords), and the stopwords, roles and synonyms, by _root: what the base can
        speak about. The roles we do not cover are known words, but not covered ones."""
        vocab = self.knowledge.vocabulary
        words = set(vocab.stopwords) | _STRUCTURE_WORDS
        for phrase, repl in self._phrases.items():
            if repl != (OTHER,):
                words.update(phrase)
        for topic in self.knowledge.topics.values():
            for text in (topic.title, topic.summary, *topic.answers.values(),
                         *topic.examples, *topic.keywords):
                words.update(normalise(text).split())
        return frozenset(map(_root, words))

    def _foreign(self, text: str, budget: _Budget) -> bool:
        """Written in another language, as far as this base can tell: mostly letters
        outside English's alphabet, or mostly words it neither knows nor corrects."""
        letters = [c for c in text if c.isalpha()]
        if len(letters) >= 4 and sum(not c.isascii() for c in letters) > _FOREIGN * len(letters):
            return True
        words = normalise(text).split()
        known = sum(self._correct(w, budget) in self._known for w in words)
        return len(words) >= 3 and known < (1 - _FOREIGN) * len(words)

    @staticmethod
    def _asked_text(text: str, sentences: list[str], questions: list[str]) -> str:
        """What a message asks: all of one sentence; of several, its questions, or else
        its last sentence (see _windows)."""
        if len(sentences) < 2:
            return text
        return " ".join(questions) if questions else sentences[-1]

    def _decide(self, analysis: Analysis, candidates: tuple[Candidate, ...],
                focus: Analysis | None = None, asked: Analysis | None = None,
                around: Analysis | None = None) -> Match:
        best = candidates[0] if candidates else None
        confidence = best.score if best else 0.0
        if analysis.other_role and (not analysis.roles or (
                analysis.compares and len(analysis.roles_named) == 1)
                or self._into_another_role(analysis)):
            # about a role we do not cover, setting one beside one of ours ("data
            # analyst vs data scientist"), or moving out of ours into it ("from ML
            # engineering to data engineering"): half of that answer is in no article
            return Match(None, None, confidence, candidates, analysis, "other_roles")
        # "how can a statistician become a data scientist?": no switch between our two
        # roles, but what the one moved into needs
        moving_in = (_SKILLS in self.knowledge.topics
                     and self._into_from_elsewhere(focus or analysis)
                     and len((around or analysis).roles_named) < 2)
        if moving_in and not self._asks_beyond_a_move(focus or analysis) and (
                best is None or best.score < self.settings.decline_below
                or best.out_of_scope):
            # ... also when nothing else is asked, however unsure the words: "i'm a web
            # developer, how do i get into ml engineering?", "im a nurse, can i become a ds"
            return Match(_SKILLS, self.role_for(_SKILLS, focus or analysis), confidence,
                         candidates, analysis)
        asked = asked or analysis
        words = [t for t in asked.content if t.isalpha()]  # "question 7": numbers say little
        strays = self._strays(words, best.id) if best else 0
        leads = best is not None and bool(words) and strays == 0 and self._clear_lead(
            candidates)
        if best is None or (best.score < self.settings.decline_below and not leads):
            return Match(None, None, confidence, candidates, analysis, "low_confidence")
        if best.out_of_scope:
            return Match(None, None, confidence, candidates, analysis, best.id)
        if self.knowledge.topics[best.id].smalltalk and not self._small_talk(analysis, best):
            # "how do you say thank you in Japanese?" is not a thank-you
            return Match(None, None, confidence, candidates, analysis, "low_confidence")
        if (words and not asked.roles and not self.knowledge.topics[best.id].smalltalk
                and strays * 2 >= len(words)):
            # most of what is asked is words this topic never uses: "how do i deploy my
            # react site on vercel" is about deploying something else
            return Match(None, None, confidence, candidates, analysis, "low_confidence")
        topic = _SKILLS if best.id == _SWITCH and moving_in else best.id
        return Match(topic, self.role_for(topic, focus or analysis), confidence,
                     candidates, analysis, leads=leads)

    def _clear_lead(self, candidates: tuple[Candidate, ...]) -> bool:
        """Unsure, but with no rival near (and, the caller checks, nothing asked that the
        topic never speaks of): "What Math is Required for Machine Learning?" (statistics
        0.37, coding 0.29). Answered from the follow-up line, where the lead over the
        rivals stands in for the conversation's support."""
        best = candidates[0]
        second = candidates[1].score if len(candidates) > 1 else 0.0
        return (not best.out_of_scope and best.score >= self.settings.follow_up_below
                and second <= _LEAD * best.score)

    @staticmethod
    def _asks_beyond_a_move(analysis: Analysis) -> bool:
        """Whether a message asks about something besides moving: a word that neither
        describes the move nor the asker ("I'm a nurse, can I become a DS?" asks nothing
        more; "...become a DS without a degree?" does)."""
        tokens = analysis.tokens
        for pos, token in enumerate(tokens):
            if token not in analysis.content or token in _STRUCTURE_WORDS:
                continue
            before = [t for t in tokens[max(0, pos - 3):pos] if t not in _ARTICLES]
            if not (before and before[-1] in _SELF):
                return True
        return False

    @staticmethod
    def _into_another_role(analysis: Analysis) -> bool:
        """A move into a role we do not cover: "how do I become a data engineer?", and
        "to" one from one of ours ("switch from ML engineering to data engineering",
        "Data Science to Software Engineer"). Not "to" alone: "do DSes report to data
        engineers?" moves nobody."""
        tokens = analysis.tokens
        moving = not _MOVES.isdisjoint(tokens) or "from" in tokens
        for pos, token in enumerate(tokens):
            if token != OTHER:
                continue
            before = _two_before(tokens, pos)
            last = before[-1] if before else ""
            if last in _BECOMING or (last == "to" and (
                    moving or (len(before) == 2 and before[0] in _ROLE_TOKEN))):
                return True
        return False

    @staticmethod
    def _into_from_elsewhere(analysis: Analysis) -> bool:
        """A move into one of our roles from somewhere that is not the other one: only the
        role moved into is named ("is it hard to become an MLE?", "a data analyst becoming
        a data scientist")."""
        named = analysis.roles_named
        if len(named) != 1:
            return False
        direction = _direction(analysis.tokens, analysis.roles)
        return named <= direction.targets or (analysis.other_role and not direction.sources)

    def _small_talk(self, analysis: Analysis, best: Candidate) -> bool:
        """A message is small talk when all of it is: every content word is one the topic
        uses, or all but one when the match is sure ("thanks, super helpful")."""
        vocabulary = self._vocabulary[best.id]
        strays = sum(t not in vocabulary for t in analysis.content)
        return strays == 0 or (strays == 1 and best.score >= _SMALL_TALK_SURE)

    def _strays(self, words: list[str], topic_id: str) -> int:
        """How many of `words` this topic never uses, in any form ("detected" is a form
        of "detect"). A participle or an adverb frames an ask rather than naming what
        it is about: "how much coding is involved?", "what is mlops, roughly?"."""
        roots = self._roots.get(topic_id)
        if roots is None:
            roots = self._roots[topic_id] = frozenset(map(_root, self._vocabulary[topic_id]))
        return sum(_root(t) not in roots and not t.endswith(("ed", "ly")) for t in words)

    def names(self, topic_id: str, analysis: Analysis) -> bool:
        """Whether a message names this topic by a word of its title ("mlops", "salary"):
        its subject is its own."""
        title = self._titles.get(topic_id)
        if title is None:
            title = self._titles[topic_id] = frozenset(
                self._read(normalise(self.knowledge.topics[topic_id].title).split()).content)
        return not title.isdisjoint(analysis.content)

    # ------------------------------------------------------------------ roles

    def role_for(self, topic_id: str, analysis: Analysis) -> Role:
        allowed = self.knowledge.topics[topic_id].roles
        role: Role = "both"
        named = analysis.roles_named
        if topic_id == _SWITCH:
            role = self._target_role(analysis)
        elif named == {"data_scientist"} and _ML in analysis.tokens:
            # "data science or machine learning?", "a job in data science and machine
            # learning": the two careers, side by side
            role = "both"
        elif len(named) == 1:
            role = next(iter(named))
        elif len(named) == 2 and not analysis.compares:
            # "I'm an MLE, what does a DS do all day?": the asker's own role is context
            selves = _direction(analysis.tokens, analysis.roles).selves
            if len(selves) == 1:
                role = OTHER_ROLE[next(iter(selves))]
        if role not in allowed:
            role = "both" if "both" in allowed else allowed[0]
        return role

    @staticmethod
    def _target_role(analysis: Analysis) -> Role:
        """For switching questions: the role moved INTO."""
        direction = _direction(analysis.tokens, analysis.roles)
        into = direction.targets - direction.sources
        if len(into) == 1:
            return next(iter(into))
        if len(direction.sources) == 1:
            return OTHER_ROLE[next(iter(direction.sources))]
        named = analysis.roles_named
        if len(named) == 1:
            # "is it hard for a data scientist to switch?": the one named is moving out
            return OTHER_ROLE[next(iter(named))]
        return "both"  # "switching between DS and MLE", either way


def forget_reload_caches() -> None:
    """Drop what is kept to make the next reload cheap (example analyses, per-topic
    counts, corrections): after serving a far larger base, or to measure cold."""
    for cache in (_EXAMPLE_ANALYSES, _CORRECTIONS, _NEIGHBOURS, _STOPWORDS):
        cache.clear()
    _LAST_INDEX.clear()
    for function in (_known_words, _doc_counts, _doc_vocabulary, _example_words,
                     normalise):
        function.cache_clear()
