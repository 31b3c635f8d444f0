"""The matcher kept on disk answers as the one built, and a bad cache file is a build."""

from __future__ import annotations

import json
from pathlib import Path

from bot.core import Engine, Query, load_knowledge
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
