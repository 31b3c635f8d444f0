"""Knowledge files as an attacker or a careless admin leaves them: each is a problem that
names the file and why, never a hang, an uncaught OSError or an unbounded expansion."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.core import KnowledgeError, load_knowledge
from bot.core import knowledge as knowledge_module
from bot.core.knowledge import MAX_FILE_BYTES, MAX_TOTAL_BYTES
from tests.unprivileged import as_nobody


def problems_of(directory: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(directory)
    return [(p.file, p.field, p.why) for p in info.value.problems]


def symlink_loop(topics: Path) -> None:
    (topics / "loop.yaml").symlink_to("loop.yaml")


def directory(topics: Path) -> None:
    (topics / "x.yaml").mkdir()


def dangling(topics: Path) -> None:
    (topics / "gone.yaml").symlink_to("nowhere/gone.yaml")


def too_large(topics: Path) -> None:
    (topics / "big.yaml").write_bytes(b"#" * (MAX_FILE_BYTES + 1))


def not_utf8(topics: Path) -> None:
    (topics / "latin.yaml").write_bytes(b"id: latin\ntitle: caf\xe9\n")


def too_deep(topics: Path) -> None:
    (topics / "deep.yaml").write_text("id: deep\nexamples: " + "[" * 200 + "]" * 200 + "\n")


@pytest.mark.parametrize(
    ("make", "file", "why"),
    [
        (symlink_loop, "topics/loop.yaml", "cannot be opened: Too many levels of symbolic links"),
        (directory, "topics/x.yaml", "is a directory, not a regular file"),
        (dangling, "topics/gone.yaml", "is missing"),
        (too_large, "topics/big.yaml", "is larger than 1 MiB"),
        (not_utf8, "topics/latin.yaml", "is not UTF-8 text (byte 20)"),
        (too_deep, "topics/deep.yaml", "nests deeper than 32 levels"),
    ],
)
def test_a_bad_entry_is_a_problem_of_its_own_and_a_reload_keeps_serving(
        engine, knowledge_copy, make: Callable[[Path], None], file: str, why: str):
    make(knowledge_copy / "topics")
    assert (file, "(file)", why) in problems_of(knowledge_copy)
    report = engine.reload(knowledge_copy)  # what the console's and Slack's /reload call
    assert not report.ok and report.version == report.previous_version
    assert any(p.file == file and p.why == why for p in report.problems)


def test_sources_yaml_as_a_symlink_loop_is_named_not_missing(knowledge_copy):
    (knowledge_copy / "sources.yaml").unlink()
    (knowledge_copy / "sources.yaml").symlink_to("sources.yaml")
    problems = problems_of(knowledge_copy)
    assert ("sources.yaml", "(file)", "cannot be opened: Too many levels of symbolic links"
            ) in problems


def test_a_fifo_among_the_topics_is_refused_at_once(knowledge_copy):
    os.mkfifo(knowledge_copy / "topics" / "pipe.yaml")
    # a separate process, so that a regression (open() waiting for a writer) fails on the
    # bound instead of hanging the test session
    out = subprocess.run([sys.executable, "-m", "bot", "validate", str(knowledge_copy)],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert "topics/pipe.yaml: (file): is a FIFO, not a regular file" in out.stderr
    assert "Traceback" not in out.stderr


def _load_as_nobody(directory: Path) -> list[list[str]] | str:
    """load_knowledge(directory) as a user who is not root: mode 000 stops anyone but
    root, so that is how it is honestly unreadable. The problems, or "ok"."""
    def load() -> object:
        try:
            load_knowledge(directory)
        except KnowledgeError as exc:
            return [[p.file, p.field, p.why] for p in exc.problems]
        return "ok"

    return as_nobody(load)


def test_a_mode_000_file_is_a_problem_for_a_user_that_cannot_read_it(knowledge_copy):
    # tmp_path sits under a root-only folder: the unprivileged child needs a path it can walk
    walkable = Path(tempfile.mkdtemp(prefix="careerbot-mode000-"))
    try:
        walkable.chmod(0o755)
        root = walkable / "knowledge"
        shutil.copytree(knowledge_copy, root)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        assert _load_as_nobody(root) == "ok"  # everything readable: it loads
        (root / "topics" / "salary.yaml").chmod(0o000)
        problems = _load_as_nobody(root)
        assert ["topics/salary.yaml", "(file)", "cannot be opened: Permission denied"] in problems
    finally:
        shutil.rmtree(walkable)


# "billion laughs" in ~400 bytes: nine levels, each ten aliases of the one before
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{b}: &{b} [{','.join(['*' + a] * 10)}]" for a, b in zip("abcdefgh", "bcdefghi",
                                                                  strict=True)]
) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        "id: bomb\n" + BILLION_LAUGHS,
        "id: merge\nbase: &b {title: x}\ncomparison: {<<: *b, aspect: pay}\n",
        "id: once\ntitle: &t Pay\nsummary: *t\n",
    ],
    ids=["billion-laughs", "merge-key", "one-alias"],
)
def test_yaml_aliases_are_refused_before_they_expand(knowledge_copy, text):
    name = text.split("\n")[0].removeprefix("id: ")
    (knowledge_copy / "topics" / f"{name}.yaml").write_text(text)
    problems = problems_of(knowledge_copy)
    assert any(f == f"topics/{name}.yaml" and "aliases (*name) are not allowed" in why
               for f, _, why in problems), problems


def test_the_whole_base_is_bounded_in_bytes(knowledge_copy):
    chunk = b"#" * (MAX_FILE_BYTES - 1) + b"\n"  # each file alone is within its cap
    for i in range(MAX_TOTAL_BYTES // MAX_FILE_BYTES + 1):
        (knowledge_copy / "topics" / f"filler_{i:02d}.yaml").write_bytes(chunk)
    problems = problems_of(knowledge_copy)
    over = [f for f, _, why in problems if why.endswith("MiB in total")]
    assert over and all(f.startswith("topics/filler_") for f in over)


def digest_of(directory: Path, files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(files, key=lambda r: tuple(r.split("/"))):
        digest.update(rel.encode())
        digest.update(files[rel])
    return digest.hexdigest()[:12]


def test_the_version_is_the_digest_of_exactly_the_files_parsed(knowledge_copy):
    before = load_knowledge(knowledge_copy).version
    read = {p.relative_to(knowledge_copy).as_posix(): p.read_bytes()
            for p in knowledge_copy.rglob("*.yaml")}
    assert before == digest_of(knowledge_copy, read)
    (knowledge_copy / "drafts").mkdir()  # not knowledge: neither loaded nor in the version
    (knowledge_copy / "drafts" / "idea.yaml").write_text("id: idea\n")
    assert load_knowledge(knowledge_copy).version == before


def test_a_file_removed_mid_load_leaves_the_version_naming_what_was_parsed(
        knowledge_copy, monkeypatch):
    expected = load_knowledge(knowledge_copy)
    files = len(list(knowledge_copy.rglob("*.yaml")))
    real_parse = knowledge_module._parse
    parsed = 0

    def parse_then_remove(data):  # noqa: ANN001, ANN202
        nonlocal parsed
        parsed += 1
        if parsed == files:  # the last file: tools.yaml was read and parsed before it
            (knowledge_copy / "topics" / "tools.yaml").unlink()
        return real_parse(data)

    monkeypatch.setattr(knowledge_module, "_parse", parse_then_remove)
    loaded = load_knowledge(knowledge_copy)  # reading it again for the digest would raise
    assert "tools" in loaded.topics
    assert loaded.version == expected.version


def test_the_parse_cache_is_bounded_by_bytes_not_entries(knowledge_copy):
    big = knowledge_copy / "topics" / "big.yaml"
    for i in range(MAX_TOTAL_BYTES // MAX_FILE_BYTES + 4):  # more than the cache holds
        # each failed reload leaves a new ~1 MiB file parsed: the cache must let go
        big.write_text(f"id: big\nsummary: {i} " + "word " * (MAX_FILE_BYTES // 5 - 10) + "\n")
        problems_of(knowledge_copy)
    held = sum(size for size, _ in knowledge_module._parsed.values())
    assert held == knowledge_module._parsed_bytes <= knowledge_module._CACHE_BYTES
    assert held > MAX_TOTAL_BYTES // 2  # the big files were cached (and some let go)
