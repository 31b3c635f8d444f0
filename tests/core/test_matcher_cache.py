"""What is kept on disk, the matcher and the parsed knowledge files, answers as what is
built, and a bad cache file is a build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.core import Engine, KnowledgeError, Query, load_knowledge
from bot.core import knowledge as knowledge_module
from bot.core.matcher_cache import cached_matcher

ROOT = Path(__file__).resolve().parents[2]


def _texts() -> list[str]:
    lines = (ROOT / "eval" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def _answers(engine: Engine) -> list[tuple[str, str | None, str | None, float]]:
    replies = [engine.answer(Query(text=t)) for t in _texts()]
    return [(r.kind, r.topic, r.role, r.confidence) for r in replies]


def test_a_cached_matcher_answers_exactly_as_a_built_one(tmp_path: Path):
    built = Engine(knowledge_dir=ROOT / "knowledge", cache_dir=tmp_path)  # builds, writes
    assert len(list(tmp_path.glob("matcher-*.pickle"))) == 1
    cached = Engine(knowledge_dir=ROOT / "knowledge", cache_dir=tmp_path)  # reads
    assert cached._state.matcher.knowledge is cached.knowledge
    assert _answers(cached) == _answers(built)


def test_a_corrupt_or_partial_cache_file_is_rebuilt(tmp_path: Path):
    Engine(knowledge_dir=ROOT / "knowledge", cache_dir=tmp_path)
    (path,) = tmp_path.glob("matcher-*.pickle")
    whole = path.read_bytes()
    knowledge = load_knowledge(ROOT / "knowledge")
    engine = Engine(knowledge)
    for damaged in (whole[: len(whole) // 2], whole[:-1] + bytes([whole[-1] ^ 1]), b""):
        path.write_bytes(damaged)
        builds: list[int] = []

        def build(builds: list[int] = builds):  # noqa: ANN202
            builds.append(1)
            return engine._state.matcher

        got = cached_matcher(knowledge, engine.settings, tmp_path, build)
        assert builds == [1] and got is engine._state.matcher


def _forget_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a new process: nothing parsed in memory."""
    monkeypatch.setattr(knowledge_module, "_parsed", type(knowledge_module._parsed)())
    monkeypatch.setattr(knowledge_module, "_parsed_bytes", 0)


def test_parsed_files_kept_on_disk_are_read_instead_of_parsed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _forget_parsed(monkeypatch)
    first = load_knowledge(ROOT / "knowledge", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("parsed-*.pickle"))) == 1
    _forget_parsed(monkeypatch)

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed a file the cache holds")

    monkeypatch.setattr(knowledge_module.yaml, "load", no_parsing)
    again = load_knowledge(ROOT / "knowledge", cache_dir=tmp_path)
    assert again == first and again.version == first.version


def test_an_edited_file_is_parsed_and_checked_again_and_a_bad_cache_is_parsing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    base, cache = tmp_path / "knowledge", tmp_path / "cache"
    shutil.copytree(ROOT / "knowledge", base)
    _forget_parsed(monkeypatch)
    good = load_knowledge(base, cache_dir=cache)
    salary = base / "topics" / "salary.yaml"
    text = salary.read_text(encoding="utf-8")
    salary.write_text(text.replace("sources: [", "sources: [nosuch, ", 1), encoding="utf-8")
    _forget_parsed(monkeypatch)
    with pytest.raises(KnowledgeError) as raised:
        load_knowledge(base, cache_dir=cache)
    assert any(p.file == "topics/salary.yaml" and "nosuch" in p.why for p in raised.value.problems)

    shutil.copy(ROOT / "knowledge" / "topics" / "salary.yaml", salary)
    (path,) = cache.glob("parsed-*.pickle")
    whole = path.read_bytes()
    for damaged in (whole[: len(whole) // 2], whole[:-1] + bytes([whole[-1] ^ 1]), b""):
        path.write_bytes(damaged)
        _forget_parsed(monkeypatch)
        assert load_knowledge(base, cache_dir=cache) == good
