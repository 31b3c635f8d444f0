"""Load and validate the YAML knowledge base into one immutable `Knowledge`.

Loading checks everything and reports every problem at once, each naming the
file, the field and what is wrong. A `Knowledge` is never half-built: either
`load_knowledge` returns a complete one or it raises `KnowledgeError`.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from bot.core import disk_cache
from bot.core.models import ROLES, Comparison, ComparisonRow, Role, Source

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_SHORT_CHARS",
    "MAX_TOTAL_BYTES",
    "Knowledge",
    "KnowledgeError",
    "OutOfScopeGroup",
    "Problem",
    "Topic",
    "Vocabulary",
    "default_knowledge_dir",
    "load_knowledge",
    "located",
]

#: the largest shipped file is ~8 KB and a generated 100x base's ~20 KB: 1 MiB is no topic
MAX_FILE_BYTES = 1 << 20
#: the shipped base is ~0.2 MB and benchmarks/growth.py's 100x base ~7 MB: 16 MiB leaves
#: room for 2x that
MAX_TOTAL_BYTES = 16 << 20
#: nesting a knowledge file needs is 4 or 5 levels; past this it is refused, not walked
_MAX_DEPTH = 32
#: parsed files kept by content, counted in source bytes: a whole base at the cap fits
_CACHE_BYTES = MAX_TOTAL_BYTES
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
# Keys that would tie the content to one platform: renderers decide looks.
_PLATFORM_KEYS = {"blocks", "embed", "embeds", "attachments", "mrkdwn", "components"}
_TOPIC_FIELDS = {
    "id", "title", "summary", "short", "sources", "answers", "comparison",
    "examples", "keywords", "follow_ups",
}
_MIN_EXAMPLES = 8
#: a short answer is what a reader takes in at a glance: two sentences, one short paragraph
MAX_SHORT_CHARS = 300
MAX_SHORT_SENTENCES = 2
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=\S)")


def default_knowledge_dir() -> Path:
    """The knowledge base shipped beside the package (the repository's knowledge/)."""
    return Path(__file__).resolve().parents[2] / "knowledge"


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    why: str
    line: int | None = None  # where the field is in its file, when it can be found

    def __str__(self) -> str:
        at = f" (line {self.line})" if self.line else ""
        return f"{self.file}: {self.field}: {self.why}{at}"


class KnowledgeError(Exception):
    """A knowledge base that cannot be served; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = tuple(problems)
        super().__init__(
            f"{len(problems)} problem(s) in the knowledge base:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class Topic:
    id: str
    title: str
    summary: str
    answers: Mapping[str, str]
    #: each role's short answer: one or two sentences shown before the answer
    short: Mapping[str, str]
    sources: tuple[str, ...]
    examples: tuple[str, ...]
    keywords: tuple[str, ...]
    follow_ups: tuple[str, ...]
    comparison: Comparison | None = None
    aliases: tuple[str, ...] = ()

    @property
    def roles(self) -> tuple[Role, ...]:
        return tuple(r for r in ROLES if r in self.answers)

    @property
    def smalltalk(self) -> bool:
        return not self.sources and self.id in {"greeting", "thanks", "help"}


@dataclass(frozen=True)
class OutOfScopeGroup:
    id: str
    reason: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """How people name things: role names, other roles, and word-level synonyms."""

    roles: Mapping[str, tuple[str, ...]]
    other_roles: tuple[str, ...]
    synonyms: Mapping[str, tuple[str, ...]]
    stopwords: frozenset[str]


@dataclass(frozen=True)
class Knowledge:
    topics: Mapping[str, Topic]
    sources: Mapping[str, Source]
    vocabulary: Vocabulary
    out_of_scope: tuple[OutOfScopeGroup, ...]
    version: str
    directory: Path = field(compare=False)

    def comparison_for(self, aspect: str) -> Topic | None:
        """The topic whose comparison aspect or alias is exactly `aspect` (normalised)."""
        key = " ".join(aspect.lower().replace("-", " ").replace("_", " ").split())
        for topic in self.topics.values():
            if topic.comparison and key in (topic.comparison.aspect, *topic.aliases):
                return topic
        return None

    @property
    def aspects(self) -> list[str]:
        return [t.comparison.aspect for t in self.topics.values() if t.comparison]


# --------------------------------------------------------------------------- loading


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        #: every file read, by its path under the root: what was parsed is what is hashed
        self.read: dict[str, bytes] = {}
        self.read_bytes = 0

    def add(self, file: str, field: str, why: str) -> None:
        self.problems.append(Problem(file, field, why))


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml when built) refusing aliases: knowledge needs none, and a
    few hundred bytes of nested aliases ("billion laughs") expand to billions of items."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # a node met a second time is an alias (or a merge key's) reuse of an anchor
        if node in self.constructed_objects:
            raise yaml.constructor.ConstructorError(
                None, None, "the node anchored here is used again by an alias: aliases (*name) "
                "are not allowed in knowledge files",
                node.start_mark)
        return super().construct_object(node, deep=deep)


_parsed: OrderedDict[bytes, tuple[int, Any]] = OrderedDict()
_parsed_bytes = 0
_parsed_lock = threading.Lock()  # reloads may run in worker threads


def _parse_key(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _parse(data: bytes) -> Any:
    """Parse one file's bytes; a reload reuses what an unchanged file gave (nothing mutates
    the result), keeping at most `_CACHE_BYTES` of source, least recently used out first."""
    global _parsed_bytes
    key = _parse_key(data)
    with _parsed_lock:
        hit = _parsed.get(key)
        if hit is not None:
            _parsed.move_to_end(key)
            return hit[1]
    value = yaml.load(data.decode("utf-8"), Loader=_Loader)  # noqa: S506 - a safe loader
    with _parsed_lock:
        if key not in _parsed and len(data) <= _CACHE_BYTES:
            _parsed[key] = (len(data), value)
            _parsed_bytes += len(data)
            while _parsed_bytes > _CACHE_BYTES:
                _, (size, _) = _parsed.popitem(last=False)
                _parsed_bytes -= size
    return value


_PARSED_MAGIC = b"careerbot-parsed-1\n"


@contextmanager
def _parsed_on_disk(cache_dir: Path | None) -> Iterator[Callable[[Iterable[bytes]], None]]:
    """The parsed files `cache_dir` keeps, added to the in-process cache (_parse) for one
    load; the callable this yields keeps the files that load read, when some were not
    there. Parsing is most of a load: `careerbot ask` reads it instead. The file's name
    is the digest of this module and the YAML library's version: what parses the same."""
    if cache_dir is None:
        yield lambda read: None
        return
    global _parsed_bytes
    code = hashlib.sha256(f"{yaml.__version__}\n".encode() + Path(__file__).read_bytes())
    path = cache_dir / f"parsed-{code.hexdigest()[:32]}.pickle"
    kept = disk_cache.read(path, _PARSED_MAGIC)
    on_disk: dict[bytes, tuple[int, Any]] = kept if isinstance(kept, dict) else {}
    with _parsed_lock:
        for key, entry in on_disk.items():
            if key not in _parsed and _parsed_bytes + entry[0] <= _CACHE_BYTES:
                _parsed[key] = entry
                _parsed_bytes += entry[0]

    def keep(read: Iterable[bytes]) -> None:
        keys = [_parse_key(data) for data in read]
        if all(key in on_disk for key in keys):
            return
        with _parsed_lock:
            entries = {key: _parsed[key] for key in keys if key in _parsed}
        disk_cache.write(path, entries, _PARSED_MAGIC)

    yield keep


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


def _read_bytes(path: Path, rel: str, errors: _Collector) -> bytes | None:
    """The file's bytes, read once, if it is a regular file within the size caps.

    Opened non-blocking, so a FIFO answers at once (and is refused) instead of waiting
    for a writer; every OS error becomes a problem naming the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        errors.add(rel, "(file)", "is missing")
        return None
    except OSError as exc:
        errors.add(rel, "(file)", f"cannot be opened: {exc.strerror or exc}")
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            errors.add(rel, "(file)", f"is {_kind(info.st_mode)}, not a regular file")
            return None
        room = min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - errors.read_bytes)
        chunks: list[bytes] = []
        size = 0
        while size <= room:  # read one byte past the room to know it is exceeded
            chunk = os.read(fd, min(1 << 16, room + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        errors.add(rel, "(file)", f"cannot be read: {exc.strerror or exc}")
        return None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        errors.add(rel, "(file)", f"is larger than {MAX_FILE_BYTES >> 20} MiB")
        return None
    if size > room:
        errors.add(rel, "(file)", "takes the knowledge base past its "
                   f"{MAX_TOTAL_BYTES >> 20} MiB in total")
        return None
    data = b"".join(chunks)
    errors.read_bytes += size
    errors.read[rel] = data
    return data


def _read_yaml(path: Path, root: Path, errors: _Collector) -> Any:
    rel = path.relative_to(root).as_posix()
    data = _read_bytes(path, rel, errors)
    if data is None:
        return None
    try:
        value = _parse(data)
    except UnicodeDecodeError as exc:
        errors.add(rel, "(file)", f"is not UTF-8 text (byte {exc.start})")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        errors.add(rel, "(file)", f"is not valid YAML{where}: {problem}")
        return None
    if _depth(value) > _MAX_DEPTH:
        errors.add(rel, "(file)", f"nests deeper than {_MAX_DEPTH} levels")
        return None
    return value


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _located(problem: Problem, data: bytes | None) -> Problem:
    """`problem` with the line its field is on, found by walking the file's YAML nodes
    (PyYAML's marks) along the field's path ("comparison.rows[2].label")."""
    if data is None or problem.field.startswith("("):
        return problem
    try:
        node = yaml.compose(data.decode("utf-8"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return problem
    for key, index in _STEP.findall(problem.field):
        if isinstance(node, yaml.MappingNode) and key:
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and index and int(index) < len(node.value):
            node = node.value[int(index)]
        else:
            node = None
        if node is None:
            return problem
    return replace(problem, line=node.start_mark.line + 1) if node is not None else problem


def located(problem: Problem, root: Path) -> Problem:
    """`problem` with the line of its field in its file under `root`, where found."""
    try:
        data = (root / problem.file).read_bytes()
    except OSError:
        return problem
    return _located(problem, data)


def _depth(value: Any) -> int:
    """How deeply lists and mappings nest (without recursion, whatever the input)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > _MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _str_list(value: Any, file: str, name: str, errors: _Collector) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.add(file, name, f"must be a list of strings, got {type(value).__name__}")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            errors.add(file, f"{name}[{i}]", "must be a non-empty string")
            continue
        out.append(item.strip())
    return tuple(out)


def _text(value: Any, file: str, name: str, errors: _Collector, required: bool = True) -> str:
    if value is None:
        if required:
            errors.add(file, name, "is missing")
        return ""
    if not isinstance(value, str):
        errors.add(file, name, f"must be text, not {type(value).__name__}")
        return ""
    if not value.strip():
        errors.add(file, name, "must be non-empty text")
        return ""
    return value.strip()


def _find_platform_keys(value: Any, path: str, file: str, errors: _Collector) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(key, str) and key.lower() in _PLATFORM_KEYS:
                errors.add(file, f"{path}.{key}" if path else key,
                           "platform-specific keys do not belong in knowledge; "
                           "renderers decide how answers look")
            _find_platform_keys(sub, f"{path}.{key}" if path else str(key), file, errors)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _find_platform_keys(sub, f"{path}[{i}]", file, errors)


def _unwrap(text: str) -> str:
    """Join hard-wrapped lines into paragraphs; keep blank lines and list items apart."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines: list[str] = []
        for line in block.splitlines():
            line = line.strip()
            if lines and not re.match(r"^([•*-]|\d+[.)])\s", line):
                lines[-1] += " " + line
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _norm_key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9+#]+", " ", text.lower()).split())


def _load_comparison(raw: Any, file: str, title: str, errors: _Collector) -> tuple[
    Comparison | None, tuple[str, ...]
]:
    if raw is None:
        return None, ()
    if not isinstance(raw, dict):
        errors.add(file, "comparison", "must be a mapping with aspect, aliases and rows")
        return None, ()
    aspect = _norm_key(_text(raw.get("aspect"), file, "comparison.aspect", errors))
    aliases = tuple(_norm_key(a) for a in _str_list(
        raw.get("aliases"), file, "comparison.aliases", errors))
    rows_raw = raw.get("rows")
    rows: list[ComparisonRow] = []
    if not isinstance(rows_raw, list) or not rows_raw:
        errors.add(file, "comparison.rows", "must be a non-empty list")
    else:
        for i, row in enumerate(rows_raw):
            where = f"comparison.rows[{i}]"
            if not isinstance(row, dict):
                errors.add(file, where, "must be a mapping with label, data_scientist, ml_engineer")
                continue
            values = [
                _text(None if row.get(k) is None else str(row.get(k)), file, f"{where}.{k}", errors)
                for k in ("label", "data_scientist", "ml_engineer")
            ]
            unknown = set(row) - {"label", "data_scientist", "ml_engineer"}
            if unknown:
                errors.add(file, where, f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
            if all(values):
                rows.append(ComparisonRow(*values))
    if not aspect:
        return None, aliases
    return Comparison(aspect=aspect, title=title, rows=tuple(rows)), aliases


def _load_short(raw: Any, answers: Any, file: str, errors: _Collector) -> dict[str, str]:
    """`short:`, each role's short answer: plain text of one or two sentences (at most
    `MAX_SHORT_CHARS`), one for every role `answers` has and for no other."""
    roles = [r for r in answers if r in ROLES] if isinstance(answers, dict) else []
    if not isinstance(raw, dict):
        errors.add(file, "short", "is missing" if raw is None else
                   f"must map each role of answers to its short answer, not {type(raw).__name__}")
        return {}
    short: dict[str, str] = {}
    for role in raw:
        if role not in roles:
            errors.add(file, f"short.{role}", f"has no answer of its own (answers has: "
                       f"{', '.join(roles) or 'none'})")
    for role in roles:
        name = f"short.{role}"
        text = " ".join(_text(raw.get(role), file, name, errors).split())
        if not text:
            continue
        sentences = len(_SENTENCE_END.split(text))
        if len(text) > MAX_SHORT_CHARS:
            errors.add(file, name, f"has {len(text)} characters; a short answer is at most "
                       f"{MAX_SHORT_CHARS}")
        elif sentences > MAX_SHORT_SENTENCES:
            errors.add(file, name, f"has {sentences} sentences; a short answer is one or "
                       f"{MAX_SHORT_SENTENCES}")
        elif re.search(r"[*`]", text):
            errors.add(file, name, "must be plain text, without * or ` markup "
                       "(each platform sets the short answer off itself)")
        else:
            short[role] = text
    return short


def _load_topic(path: Path, root: Path, errors: _Collector) -> Topic | None:
    rel = path.relative_to(root).as_posix()
    raw = _read_yaml(path, root, errors)
    if raw is None and not any(p.file == rel for p in errors.problems):
        errors.add(rel, "(file)", "is empty")
    if not isinstance(raw, dict):
        if raw is not None:
            errors.add(rel, "(file)", "must be a mapping of fields")
        return None
    _find_platform_keys(raw, "", rel, errors)
    for key in sorted(set(map(str, raw)) - _TOPIC_FIELDS):
        errors.add(rel, key, f"unknown field (known: {', '.join(sorted(_TOPIC_FIELDS))})")

    topic_id = _text(raw.get("id"), rel, "id", errors)
    if topic_id and not _ID.match(topic_id):
        errors.add(rel, "id", f"{topic_id!r} must be lowercase letters, digits and _")
    if topic_id and topic_id != path.stem:
        errors.add(rel, "id", f"{topic_id!r} must match the file name {path.stem!r}")
    title = _text(raw.get("title"), rel, "title", errors)
    summary = _text(raw.get("summary"), rel, "summary", errors)

    answers_raw = raw.get("answers")
    answers: dict[str, str] = {}
    if not isinstance(answers_raw, dict) or not answers_raw:
        errors.add(rel, "answers", "must map at least one role "
                   f"({', '.join(ROLES)}) to its answer")
    else:
        for role, text in answers_raw.items():
            if role not in ROLES:
                errors.add(rel, f"answers.{role}", f"unknown role (known: {', '.join(ROLES)})")
                continue
            value = _text(text, rel, f"answers.{role}", errors)
            if value:
                answers[role] = _unwrap(value)

    short = _load_short(raw.get("short"), answers_raw, rel, errors)
    examples = _str_list(raw.get("examples"), rel, "examples", errors)
    if len(examples) < _MIN_EXAMPLES:
        errors.add(rel, "examples", f"has {len(examples)}; at least {_MIN_EXAMPLES} "
                   "varied phrasings are needed for matching")
    comparison, aliases = _load_comparison(raw.get("comparison"), rel, title, errors)
    return Topic(
        id=topic_id or path.stem,
        title=title,
        summary=summary,
        answers=answers,
        short=short,
        sources=_str_list(raw.get("sources"), rel, "sources", errors),
        examples=examples,
        keywords=tuple(k.lower() for k in _str_list(raw.get("keywords"), rel, "keywords", errors)),
        follow_ups=_str_list(raw.get("follow_ups"), rel, "follow_ups", errors),
        comparison=comparison,
        aliases=aliases,
    )


def _load_sources(root: Path, errors: _Collector) -> dict[str, Source]:
    raw = _read_yaml(root / "sources.yaml", root, errors)
    if not isinstance(raw, dict):
        if raw is not None:
            errors.add("sources.yaml", "(file)", "must map source ids to title and by")
        return {}
    sources: dict[str, Source] = {}
    for sid, entry in raw.items():
        if not isinstance(entry, dict):
            errors.add("sources.yaml", str(sid), "must be a mapping with title")
            continue
        title = _text(entry.get("title"), "sources.yaml", f"{sid}.title", errors)
        url = _url(entry.get("url"), f"{sid}.url", errors)
        if title:
            sources[str(sid)] = Source(id=str(sid), title=title, by=str(entry.get("by") or ""),
                                       url=url)
    return sources


_URL = re.compile(r"^https?://[^\s/?#<>|]+\.[^\s/?#<>|]+(?:[/?#][^\s<>|]*)?$", re.IGNORECASE)


def _url(value: Any, name: str, errors: _Collector) -> str:
    """An optional source URL: absolute http(s) with a host, nothing a renderer's link
    syntax would break on (whitespace, <, >, |)."""
    if value is None:
        return ""
    if not isinstance(value, str) or not _URL.match(value.strip()):
        shown = value if isinstance(value, str) else type(value).__name__
        errors.add("sources.yaml", name, f"must be an http(s) URL such as "
                   f"https://example.com/article, got {str(shown)[:80]!r}")
        return ""
    return value.strip()


_NOTHING_TO_MATCH = "has no letters or digits, so nothing can match it"


def _words(raw: Any, field: str, errors: _Collector) -> tuple[str, ...]:
    """A list of synonyms.yaml's names as matching reads them: lowercased, letters, digits,
    + and # (so "&" or "!!" would match nothing: a problem, not an empty phrase)."""
    names = _str_list(raw, "synonyms.yaml", field, errors)
    kept = []
    for i, name in enumerate(names):
        key = _norm_key(name)
        if key:
            kept.append(key)
        else:
            errors.add("synonyms.yaml", f"{field}[{i}]", f"{name!r} {_NOTHING_TO_MATCH}")
    return tuple(kept)


def _load_vocabulary(root: Path, errors: _Collector) -> Vocabulary:
    empty = Vocabulary(roles={}, other_roles=(), synonyms={}, stopwords=frozenset())
    raw = _read_yaml(root / "synonyms.yaml", root, errors)
    if not isinstance(raw, dict):
        if raw is not None:
            errors.add("synonyms.yaml", "(file)", "must be a mapping")
        return empty
    roles_raw = raw.get("roles")
    roles: dict[str, tuple[str, ...]] = {}
    if not isinstance(roles_raw, dict):
        errors.add("synonyms.yaml", "roles", "must map data_scientist and ml_engineer to names")
    else:
        for role in ("data_scientist", "ml_engineer"):
            names = _words(roles_raw.get(role), f"roles.{role}", errors)
            if not names:
                errors.add("synonyms.yaml", f"roles.{role}", "needs at least one name")
            roles[role] = names
    synonyms_raw = raw.get("synonyms") or {}
    synonyms: dict[str, tuple[str, ...]] = {}
    if not isinstance(synonyms_raw, dict):
        errors.add("synonyms.yaml", "synonyms", "must map a canonical word to its variants")
    else:
        for canon, variants in synonyms_raw.items():
            key = _norm_key(str(canon))
            if not key:
                errors.add("synonyms.yaml", f"synonyms.{canon}",
                           f"{str(canon)!r} {_NOTHING_TO_MATCH}")
                continue
            synonyms[key] = _words(variants, f"synonyms.{canon}", errors)
    return Vocabulary(
        roles=roles,
        other_roles=_words(raw.get("other_roles"), "other_roles", errors),
        synonyms=synonyms,
        stopwords=frozenset(_words(raw.get("stopwords"), "stopwords", errors)),
    )


def _load_out_of_scope(root: Path, errors: _Collector) -> tuple[OutOfScopeGroup, ...]:
    path = root / "out_of_scope.yaml"
    if not os.path.lexists(path):
        return ()  # optional
    raw = _read_yaml(path, root, errors)
    if raw is None:
        return ()
    groups_raw = raw.get("groups") if isinstance(raw, dict) else None
    if not isinstance(groups_raw, list):
        errors.add("out_of_scope.yaml", "groups", "must be a list of {id, reason, examples}")
        return ()
    groups: list[OutOfScopeGroup] = []
    for i, group in enumerate(groups_raw):
        where = f"groups[{i}]"
        if not isinstance(group, dict):
            errors.add("out_of_scope.yaml", where, "must be a mapping with id, reason, examples")
            continue
        gid = _text(group.get("id"), "out_of_scope.yaml", f"{where}.id", errors)
        reason = _text(group.get("reason"), "out_of_scope.yaml", f"{where}.reason", errors)
        examples = _str_list(group.get("examples"), "out_of_scope.yaml", f"{where}.examples",
                             errors)
        if gid and reason and examples:
            groups.append(OutOfScopeGroup(gid, reason, examples))
    return tuple(groups)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    hit = process.extractOne(name, list(known), scorer=fuzz.ratio, score_cutoff=70)
    return f" (did you mean {hit[0]!r}?)" if hit else ""


def _cross_check(topics: dict[str, Topic], sources: Mapping[str, Source],
                 groups: tuple[OutOfScopeGroup, ...], errors: _Collector,
                 unread: frozenset[str] = frozenset()) -> None:
    """What spans files; `unread` are topic ids whose files did not load (not unknown)."""
    seen_examples: dict[str, str] = {}
    seen_aspects: dict[str, str] = {}
    for topic in topics.values():
        rel = f"topics/{topic.id}.yaml"
        for i, sid in enumerate(topic.sources):
            if sid not in sources:
                errors.add(rel, f"sources[{i}]", f"unknown source {sid!r}"
                           + _did_you_mean(sid, sources)
                           + f" (known: {', '.join(sorted(sources)) or 'none'})")
        if not topic.sources and not topic.smalltalk:
            errors.add(rel, "sources", "must cite at least one article from sources.yaml")
        for i, fid in enumerate(topic.follow_ups):
            if fid in unread:
                continue  # its own file's problem is reported; one cause, one line
            if fid not in topics:
                errors.add(rel, f"follow_ups[{i}]", f"unknown topic {fid!r}"
                           + _did_you_mean(fid, topics))
            elif fid == topic.id:
                errors.add(rel, f"follow_ups[{i}]", "a topic cannot follow up on itself")
        for i, example in enumerate(topic.examples):
            key = _norm_key(example)
            other = seen_examples.get(key)
            if other and other != topic.id:
                errors.add(rel, f"examples[{i}]",
                           f"{example!r} is also an example of topic {other!r}")
            seen_examples.setdefault(key, topic.id)
        if topic.comparison:
            for name in (topic.comparison.aspect, *topic.aliases):
                other = seen_aspects.get(name)
                if other and other != topic.id:
                    errors.add(rel, "comparison", f"aspect or alias {name!r} is also used by "
                               f"topic {other!r}")
                seen_aspects.setdefault(name, topic.id)
    for g, group in enumerate(groups):
        for i, example in enumerate(group.examples):
            other = seen_examples.get(_norm_key(example))
            if other:
                errors.add("out_of_scope.yaml", f"groups[{g}].examples[{i}]",
                           f"{example!r} is also an example of topic {other!r}")


def _topic_files(root: Path, errors: _Collector) -> list[Path]:
    """topics/*.yaml by name (what each entry is, _read_bytes finds out)."""
    folder = root / "topics"
    try:
        names = sorted(e.name for e in os.scandir(folder)
                       if e.name.endswith(".yaml") and not e.name.startswith("."))
    except OSError as exc:
        names = []
        if not isinstance(exc, FileNotFoundError):
            errors.add("topics/", "(directory)", f"cannot be listed: {exc.strerror or exc}")
            return []
    if not names:
        errors.add("topics/", "(directory)", "has no topic files (*.yaml)")
    return [folder / name for name in names]


def load_knowledge(directory: str | Path | None = None,
                   cache_dir: Path | None = None) -> Knowledge:
    """Load and validate a knowledge directory; raise `KnowledgeError` listing every problem.
    `cache_dir`: where parsed files are kept by content, for the next process to read
    (None: nowhere). Validation runs in full either way."""
    root = Path(directory) if directory is not None else default_knowledge_dir()
    errors = _Collector()
    if not root.is_dir():
        raise KnowledgeError([Problem(str(root), "(directory)", "does not exist")])
    topics: dict[str, Topic] = {}
    unread: set[str] = set()
    with _parsed_on_disk(cache_dir) as keep:
        for path in _topic_files(root, errors):
            topic = _load_topic(path, root, errors)
            if topic is not None:
                topics[topic.id] = topic
            else:
                unread.add(path.stem)
        sources = _load_sources(root, errors)
        vocabulary = _load_vocabulary(root, errors)
        groups = _load_out_of_scope(root, errors)
        _cross_check(topics, sources, groups, errors, frozenset(unread))
        if errors.problems:
            raise KnowledgeError([_located(p, errors.read.get(p.file)) for p in errors.problems])
        keep(errors.read.values())

    # the version names exactly the bytes parsed above: a file changed meanwhile is not in it
    digest = hashlib.sha256()
    for rel in sorted(errors.read, key=lambda r: tuple(r.split("/"))):
        digest.update(rel.encode())
        digest.update(errors.read[rel])
    return Knowledge(
        topics=topics,
        sources=sources,
        vocabulary=vocabulary,
        out_of_scope=groups,
        version=digest.hexdigest()[:12],
        directory=root,
    )
