"""Engine.answer(Query) -> Reply, and Engine.reload(): the one call adapters translate around."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rapidfuzz import fuzz, process

from bot.core.context import ContextStore, Turn
from bot.core.knowledge import Knowledge, KnowledgeError, Problem, load_knowledge
from bot.core.matcher import OWN_STORY, Match, Matcher, asks
from bot.core.matcher_cache import cached_matcher, default_cache_dir
from bot.core.models import OTHER_ROLE, ROLE_NAMES, Query, Reply, Role, Suggestion
from bot.core.text import quote, strip_invisible
from bot.settings import MatchSettings

__all__ = ["MAX_ASPECT", "Engine", "ReloadReport"]

log = logging.getLogger(__name__)

_POPULAR = ("overview", "salary", "which_to_choose")
# A message this short (in topic words) leans on the conversation so far: "pay?"
_SHORT = 2
MAX_ASPECT = 100  # characters of a /compare aspect read; 100 KB took the matcher 2 s
# why a question is declined, for the reasons that are no decline group's
_DECLINES = {
    "other_roles": "I only know about data scientists and machine-learning engineers.",
    "low_confidence": "I'm not sure what you're asking, and I'd rather not guess.",
    "not_english": "I answer questions in English.",
}


def _sentence(text: str) -> str:
    """A decline group's reason as a sentence: capital first, full stop last."""
    text = text.strip()
    if not text:
        return _DECLINES["low_confidence"]
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


@dataclass(frozen=True)
class ReloadReport:
    ok: bool
    version: str
    previous_version: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.ok:
            lines = [f"Reload failed: {len(self.problems)} problem(s); still serving "
                     f"version {self.previous_version}."]
            lines += [f"• {p}" for p in self.problems]
            return "\n".join(lines)
        if self.version == self.previous_version:
            return f"Reloaded: nothing changed (version {self.version})."
        parts = []
        for name, ids in (("added", self.added), ("removed", self.removed),
                          ("edited", self.changed)):
            if ids:
                parts.append(f"{name}: {', '.join(ids)}")
        what = "; ".join(parts) or "vocabulary or sources edited"
        return (f"Reloaded: version {self.previous_version} → {self.version} "
                f"({what}).")


@dataclass(frozen=True)
class _State:
    knowledge: Knowledge
    matcher: Matcher
    aspects: tuple[str, ...] = field(default=())


class Engine:
    """Holds one immutable knowledge version at a time and swaps it atomically."""

    def __init__(self, knowledge: Knowledge | None = None, *,
                 knowledge_dir: str | Path | None = None,
                 settings: MatchSettings | None = None, cache_dir: str | Path | None = None):
        """`cache_dir`: where the parsed files and the first matcher are kept by content
        (load_knowledge, matcher_cache); by default $XDG_CACHE_HOME/careerbot when the
        engine loads `knowledge_dir` itself."""
        self.settings = settings or MatchSettings()
        self._dir = Path(knowledge_dir) if knowledge_dir else None
        cache = Path(cache_dir) if cache_dir else None if knowledge else default_cache_dir()
        self._state = self._build(knowledge or load_knowledge(self._dir, cache), cache)

    def _build(self, knowledge: Knowledge, cache: Path | None = None) -> _State:
        aspects: list[str] = []
        for topic in knowledge.topics.values():
            if topic.comparison:
                aspects += [topic.comparison.aspect, *topic.aliases]
        matcher = cached_matcher(knowledge, self.settings, cache,
                                 lambda: Matcher(knowledge, self.settings))
        return _State(knowledge, matcher, tuple(aspects))

    @property
    def knowledge(self) -> Knowledge:
        return self._state.knowledge

    @property
    def version(self) -> str:
        return self._state.knowledge.version

    # ------------------------------------------------------------------ reload

    def reload(self, directory: str | Path | None = None) -> ReloadReport:
        """Validate the knowledge directory fully, then swap; on error keep serving the old."""
        started = time.perf_counter()
        old = self._state
        path = Path(directory) if directory else (self._dir or old.knowledge.directory)
        try:
            new = self._build(load_knowledge(path))
        except KnowledgeError as exc:
            return ReloadReport(False, old.knowledge.version, old.knowledge.version,
                                problems=exc.problems, seconds=time.perf_counter() - started)
        self._state = new  # one assignment: a request sees the old state or the new one
        before, after = old.knowledge.topics, new.knowledge.topics
        return ReloadReport(
            True, new.knowledge.version, old.knowledge.version,
            added=tuple(sorted(set(after) - set(before))),
            removed=tuple(sorted(set(before) - set(after))),
            changed=tuple(sorted(t for t in set(before) & set(after) if before[t] != after[t])),
            seconds=time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ answering

    def match(self, text: str) -> Match:
        return self._state.matcher.match(text)

    def answer(self, query: Query, previous: Turn | None = None) -> Reply:
        """The reply to one message; `previous` is its conversation's last turn, if any.

        Synchronous and free of I/O: `converse` keeps the conversation around it.
        """
        state = self._state
        text = strip_invisible(query.text).strip()
        if not text:
            return self.help()
        if len(text) > self.settings.max_message_chars:
            return self._too_long(state)
        match = self._in_context(state, text, state.matcher.match(text), previous)
        # several asks are answered one by one, unless the whole is about something the
        # articles leave out (an interview, another role): then none of it is answered
        several = self._several(state, text, previous) if match.decline_reason in (
            None, "low_confidence") else []
        if len(several) > 1:
            return self._answers(state, match, several)
        if match.topic is None:
            return self._decline(state, match)
        return self.topic_reply(match.topic, match.role or "both", match.confidence,
                                state=state, runner_up=self._runner_up(match))

    def _in_context(self, state: _State, text: str, match: Match, previous: Turn | None
                    ) -> Match:
        if previous is not None and previous.topic in state.knowledge.topics:
            return self._continue(state, text, match, previous)
        return match

    def _several(self, state: _State, text: str, previous: Turn | None) -> list[Match]:
        """The answers to a message that asks several things, each ask matched on its
        own and read as a follow-up of the one before ("..., and which tools?"); the
        distinct answers, or fewer than two when it asks one thing."""
        found: dict[tuple[str, str | None], Match] = {}
        for ask in asks(text):
            match = self._in_context(state, ask, state.matcher.match(ask, around=text), previous)
            if match.topic is not None and not state.knowledge.topics[match.topic].smalltalk:
                found.setdefault((match.topic, match.role), match)
                previous = Turn(match.topic, match.role or "both")
        return list(found.values())

    def _answers(self, state: _State, whole: Match, parts: list[Match]) -> Reply:
        """One reply to several asks: each answer under its own title, its short answer
        first, then its details and sources. It is labelled (and remembered) by the whole
        message's answer when that is one of them, else by the first."""
        replies = [self.topic_reply(m.topic, m.role or "both", m.confidence, state=state)
                   for m in parts if m.topic is not None]
        main = next((r for r in replies if (r.topic, r.role) == (whole.topic, whole.role)),
                    replies[0])
        sections = []
        for reply in replies:
            cited = "; ".join(s.title for s in reply.sources)
            short = f"{reply.short}\n\n" if reply.short else ""
            sections.append(f"**{reply.title}**\n{short}{reply.text.strip()}"
                            + (f"\n_Sources: {cited}_" if cited else ""))
        sources = tuple(dict.fromkeys(s for r in replies for s in r.sources))
        return replace(main, title=f"Your {len(replies)} questions, one by one",
                       text="\n\n".join(sections), short="", comparison=None, sources=sources,
                       confidence=min(r.confidence for r in replies))

    async def converse(self, query: Query, contexts: ContextStore) -> Reply:
        """`answer` within its conversation: the last turn is read from `contexts` and the
        new one written back. Every front end that keeps conversations answers through this.
        """
        conversation = query.conversation
        previous = await contexts.get_context(conversation) if conversation else None
        reply = self.answer(query, previous)
        turn = Turn.of(reply)
        if conversation and turn is not None:
            await contexts.set_context(conversation, turn)
        return reply

    def _continue(self, state: _State, text: str, match: Match, previous: Turn) -> Match:
        """Apply follow-up context: a new role on the old topic, or the old role on a new topic."""
        if match.decline_reason == OWN_STORY:
            # "was it like that for you too?" points back, but at the bot's own past
            return match
        a = match.analysis
        short = a.cue or len(a.content) <= _SHORT
        if a.reverses and short and previous.role in OTHER_ROLE and not a.roles:
            # "and the other way round?": the same subject, for the other role
            return replace(match, topic=previous.topic, role=OTHER_ROLE[previous.role],
                           decline_reason=None,
                           confidence=max(match.confidence, self.settings.sure_above))
        if match.decline_reason == "low_confidence" and short and self._leans_on(
                state, match, previous, text):
            # "what would I need to learn?" after a switching answer, "at fintech
            # companies?" after a salary one: unsure alone, settled by the topic in hand
            role = state.matcher.role_for(previous.topic, a) if a.roles else previous.role
            return replace(match, topic=previous.topic, role=role, decline_reason=None)
        best = match.best
        if (match.decline_reason == "low_confidence" and short and a.leans and best
                and not best.out_of_scope and not state.knowledge.topics[best.id].smalltalk
                and self.settings.follow_up_below <= best.score):
            # "how would that engineer deploy it?" after a hiring answer: unsure alone, but
            # a follow-up in a conversation, and about deploying; so too one declined for a
            # word its topic never uses ("and the pay side?": "side")
            match = replace(match, topic=best.id, decline_reason=None,
                            role=state.matcher.role_for(best.id, a))
        if ((a.asks_more or (not a.content and a.leans and not a.defines)) and not a.other_role
                and (a.roles or not state.knowledge.topics[previous.topic].smalltalk)):
            # "what about data scientists?": the previous subject, for the role just named;
            # "why?", "tell me more": the previous subject as it was
            role = state.matcher.role_for(previous.topic, a) if a.roles else previous.role
            return replace(match, topic=previous.topic, role=role, decline_reason=None,
                           confidence=max(match.confidence, self.settings.sure_above))
        if match.topic is None or a.roles or a.compares:
            return match
        if not short and match.topic != previous.topic and not a.leans:
            # a long message about something new, leaning on nothing: its subject alone
            return match
        if (short and match.topic != previous.topic and a.points_back
                and not state.matcher.names(match.topic, a)
                and previous.topic in {c.id for c in match.candidates}
                and self._read_after(state, previous, text)):
            # "who owns it?" after MLOps: "it" is MLOps, though alone it reads as the
            # lifecycle's stages
            return replace(match, topic=previous.topic, role=previous.role)
        topic = state.knowledge.topics[match.topic]
        if topic.smalltalk or previous.role not in topic.roles:
            return match
        # "and their tools?", "pay?", "does it pay well at the top?": a new subject,
        # still about the same role; "is it easier early in my career?" after a move
        # into DS: the same subject, still DS
        return replace(match, role=previous.role)

    def _leans_on(self, state: _State, match: Match, previous: Turn, text: str) -> bool:
        """An unsure short message is about the topic in hand when it comes closest to
        it; when it points back ("when does it not work?") and comes near no topic on its
        own; or when it leans on the conversation ("at fintech companies?", "what if we
        already have a prototype?"), the topic is among those it comes near, and read
        after that topic's title it is that topic."""
        best = match.best
        if best is None:
            return False
        if best.id == previous.topic and best.score >= self.settings.follow_up_below:
            return True
        if match.analysis.points_back and best.score < self.settings.follow_up_below:
            return True
        if not match.analysis.leans or previous.topic not in {c.id for c in match.candidates}:
            return False
        return self._read_after(state, previous, text)

    @staticmethod
    def _read_after(state: _State, previous: Turn, text: str) -> bool:
        """Whether `text`, read after the title of the topic in hand, is that topic."""
        title = state.knowledge.topics[previous.topic].title
        return state.matcher.match(f"{title}: {text}").topic == previous.topic

    def _runner_up(self, match: Match) -> str | None:
        """A topic nearly tied with the answer's, offered first as "did you mean"."""
        if match.confidence >= self.settings.sure_above:
            return None
        others = [c for c in match.candidates if not c.out_of_scope and c.id != match.topic]
        if others and match.confidence - others[0].score < self.settings.clarify_margin:
            return others[0].id
        return None

    def topic_reply(self, topic_id: str, role: Role = "both", confidence: float = 1.0,
                    *, state: _State | None = None, runner_up: str | None = None) -> Reply:
        """The answer for a known topic and role (also what a follow-up button asks for)."""
        state = state or self._state
        topic = state.knowledge.topics[topic_id]
        if role not in topic.answers:
            role = "both" if "both" in topic.answers else topic.roles[0]
        text = topic.answers.get(role) or ""
        if topic.smalltalk:
            kind = "smalltalk"
            title = topic.title
        else:
            kind = "answer"
            title = topic.title if role == "both" else f"{topic.title}: {ROLE_NAMES[role]}"
        return Reply(
            title=title,
            text=text,
            short=topic.short.get(role, ""),
            kind=kind,  # type: ignore[arg-type]
            topic=topic.id,
            role=role,
            confidence=round(confidence, 3),
            comparison=topic.comparison if role == "both" else None,
            sources=tuple(state.knowledge.sources[s] for s in topic.sources),
            suggestions=self._suggestions(state, topic.follow_ups, role, runner_up),
        )

    def _suggestions(self, state: _State, ids: tuple[str, ...] | list[str],
                     role: Role = "both", runner_up: str | None = None
                     ) -> tuple[Suggestion, ...]:
        out: list[Suggestion] = []
        for tid in ([runner_up] if runner_up else []) + [i for i in ids if i != runner_up]:
            topic = state.knowledge.topics.get(tid)
            if topic is None or len(out) == 3:
                continue
            r: Role = role if role in topic.answers else (
                "both" if "both" in topic.answers else topic.roles[0])
            label = f"Did you mean: {topic.title}?" if tid == runner_up else topic.title
            out.append(Suggestion(label=label, topic=tid, role=r))
        return tuple(out)

    def _decline(self, state: _State, match: Match) -> Reply:
        """Why not, in a sentence: not covered (and what is not), unclear, or not English;
        then the closest answers there are, as follow-ups to press."""
        why = match.decline_reason or "low_confidence"
        groups = {g.id: g.reason for g in state.knowledge.out_of_scope}
        reason = _DECLINES.get(why) or _sentence(groups.get(why, ""))
        named = " or ".join(f"“{quote(s)}”" for s in match.subject)
        if why == "uncovered":
            reason = f"The articles I answer from say nothing about {named}."
        elif why == "other_roles" and named:
            reason = f"I have nothing on {named}. {reason}"
        closest: list[str] = []
        role: Role = "both"
        if why in ("low_confidence", "uncovered"):
            # unclear, or about something else: the closest topics are the likeliest
            # meanings, or what there is nearby ("a master's in France": education)
            closest = [c.id for c in match.candidates if not c.out_of_scope
                       and not state.knowledge.topics[c.id].smalltalk][:3]
        elif why == "other_roles" and len(match.analysis.roles_named) == 1:
            # another role beside one of ours: what ours needs, for whoever moves into it
            closest, role = ["skills"], next(iter(match.analysis.roles_named))
        offer = ("Did you mean one of these?" if why == "low_confidence" and closest
                 else "Try one of these, or `/help`.")
        text = (f"{reason}\n\nI answer questions about *data scientists vs ML engineers*: "
                "what each does, skills, tools, salary, education, career paths, switching "
                f"between them, and which might suit you. {offer}")
        return Reply(
            title="That's outside what I can answer",
            text=text,
            kind="decline",
            confidence=round(match.confidence, 3),
            suggestions=self._suggestions(state, [*closest, *_POPULAR], role),
        )

    def _too_long(self, state: _State) -> Reply:
        return Reply(
            title="That's a long message",
            text=(f"Could you ask your question in a sentence or two (under "
                  f"{self.settings.max_message_chars} characters)? I answer questions about "
                  "data scientists vs ML engineers."),
            kind="decline",
            suggestions=self._suggestions(state, list(_POPULAR)),
        )

    # ------------------------------------------------------------------ commands

    def help(self) -> Reply:
        topic = self._state.knowledge.topics.get("help")
        if topic is not None:
            return self.topic_reply("help")
        return Reply(title="careerbot", text="Ask me about data scientists vs ML engineers.",
                     kind="smalltalk")

    def topics(self) -> Reply:
        state = self._state
        lines = [f"• *{t.title}*: {t.summary}" for t in state.knowledge.topics.values()
                 if not t.smalltalk]
        aspects = ", ".join(state.knowledge.aspects)
        return Reply(
            title="What you can ask me",
            text="\n".join(lines) + f"\n\nSide by side with `/compare <aspect>`: {aspects}.",
            kind="notice",
        )

    def compare(self, aspect: str) -> Reply:
        """A side-by-side comparison; with no or an unknown aspect, the list and a guess."""
        state = self._state
        aspect = strip_invisible(aspect)[:MAX_ASPECT]  # an aspect is a word or a few
        topic = state.knowledge.comparison_for(aspect) if aspect.strip() else None
        if topic is None and aspect.strip():
            # a word we do not list as an aspect: let the matcher find the topic
            match = state.matcher.match(aspect)
            if match.topic and state.knowledge.topics[match.topic].comparison:
                if match.confidence >= self.settings.sure_above:
                    topic = state.knowledge.topics[match.topic]
        if topic is None or topic.comparison is None:
            return self._aspect_list(state, aspect)
        return Reply(
            title=f"Data scientist vs ML engineer: {topic.title}",
            text=topic.summary,
            short=topic.short.get("both", ""),
            kind="answer",
            topic=topic.id,
            role="both",
            confidence=1.0,
            comparison=topic.comparison,
            sources=tuple(state.knowledge.sources[s] for s in topic.sources),
            suggestions=self._suggestions(state, topic.follow_ups),
        )

    def aspects(self) -> list[str]:
        return self._state.knowledge.aspects

    def suggest_aspects(self, partial: str, limit: int = 25) -> list[str]:
        """Aspects for autocomplete and "did you mean": fuzzy over aspects and aliases."""
        state = self._state
        names = self.aspects()
        if not partial.strip():
            return names[:limit]
        hits = process.extract(partial.lower(), list(state.aspects), scorer=fuzz.WRatio,
                               limit=None, score_cutoff=60)
        out: list[str] = []
        for name, _, _ in hits:
            topic = state.knowledge.comparison_for(name)
            if topic and topic.comparison and topic.comparison.aspect not in out:
                out.append(topic.comparison.aspect)
        return out[:limit]

    def _aspect_list(self, state: _State, asked: str) -> Reply:
        guesses = self.suggest_aspects(asked, limit=3) if asked.strip() else []
        intro = (f"I don't have a comparison for “{quote(asked)}”. "
                 if quote(asked) else "Compare the two roles on one of these aspects: ")
        if guesses:
            intro += f"Did you mean *{guesses[0]}*? "
        return Reply(
            title="Compare data scientists and ML engineers",
            text=intro + "\n" + ", ".join(self.aspects()),
            kind="clarify",
            suggestions=tuple(
                Suggestion(label=f"Compare {g}", topic=topic.id)
                for g in guesses if (topic := state.knowledge.comparison_for(g)) is not None
            ),
        )
