"""Reload: validate the knowledge directory and swap, timed

- cold: nothing kept from before (the parse cache and the matcher's reload caches
  emptied), as the first reload of a process that started from a cached matcher;
- warm: nothing changed since the last reload;
- after an edit: one example question added to a topic, an out-of-scope group's
  example added, a synonym added;
- answers served by threads while the engine reloads (none may fail or change);

each beside parsing the same YAML files and nothing else.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import KNOWLEDGE, Report, dev_texts, median, ms, say

__all__ = ["run"]

EDIT_TARGET = 0.100


def parse_only(directory: Path) -> float:
    """The baseline: read and parse every YAML file of the directory (libyaml when there)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    t0 = time.perf_counter()
    for path in sorted(directory.rglob("*.yaml")):
        yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - safe loader
    return time.perf_counter() - t0


def forget_caches() -> None:
    """What a reload reuses from the last one: parsed files, the matcher's precomputation."""
    from bot.core import knowledge, matcher

    with knowledge._parsed_lock:
        knowledge._parsed.clear()
        knowledge._parsed_bytes = 0
    matcher.forget_reload_caches()


def _insert(path: Path, anchor: str, line: Callable[[int], str]) -> Callable[[int], None]:
    """An edit: `line(i)` added after the first `anchor` of the file."""
    def edit(i: int) -> None:
        text = path.read_text(encoding="utf-8")
        assert anchor in text, (path, anchor)
        path.write_text(text.replace(anchor, anchor + line(i), 1), encoding="utf-8")
    return edit


def _edits(copy: Path) -> dict[str, Callable[[int], None]]:
    topic = sorted((copy / "topics").glob("*.yaml"))[0]
    return {
        "an example question": _insert(topic, "examples:\n",
                                       lambda i: f"  - benchmark edit {i} of this question\n"),
        "an out-of-scope example": _insert(copy / "out_of_scope.yaml", "    examples:\n",
                                           lambda i: f"      - what is the weather on day {i}\n"),
        "a synonym": _insert(copy / "synonyms.yaml", "synonyms:\n",
                             lambda i: f"  benchmarkword{i}: [benchvariant{i}]\n"),
    }


def _under_load(engine: Any, reloads: int, threads: int) -> dict[str, Any]:
    from bot.core import Query

    texts = dev_texts()[:60]
    expected = {t: engine.answer(Query(text=t)).topic for t in texts}
    stop = threading.Event()
    lock = threading.Lock()
    tally = {"answers": 0, "errors": 0, "changed": 0}

    def answer_loop(offset: int) -> None:
        n = answers = errors = changed = 0
        while not stop.is_set() and n < 1_000_000:
            text = texts[(offset + n) % len(texts)]
            n += 1
            try:
                reply = engine.answer(Query(text=text))
            except Exception:  # noqa: BLE001 - counted, and the loop goes on
                errors += 1
                continue
            answers += 1
            changed += reply.topic != expected[text]
        with lock:
            tally["answers"] += answers
            tally["errors"] += errors
            tally["changed"] += changed

    workers = [threading.Thread(target=answer_loop, args=(i * 7,), daemon=True)
               for i in range(threads)]
    for worker in workers:
        worker.start()
    failed = sum(not engine.reload().ok for _ in range(reloads))
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    return {**tally, "reloads": reloads, "failed": failed, "threads": threads,
            "stuck": sum(w.is_alive() for w in workers)}


def run(report: Report) -> None:
    from bot.core import Engine

    n = report.plan.reloads
    copy = report.tmp / "knowledge_edited"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(KNOWLEDGE, copy)
    engine = Engine(knowledge_dir=copy)
    parse = median([parse_only(copy) for _ in range(n)])

    def timed_reload() -> float:
        t0 = time.perf_counter()
        result = engine.reload()
        took = time.perf_counter() - t0
        if not result.ok:
            raise RuntimeError(f"the knowledge did not load: {result.summary()}")
        return took

    say(f"reload: cold, warm, after edits, {n} times each")
    cold = []
    for _ in range(n):
        forget_caches()
        cold.append(timed_reload())
    warm = [timed_reload() for _ in range(n)]
    figures: dict[str, Any] = {"parse_only_ms": parse * 1000,
                               "cold_ms": median(cold) * 1000, "warm_ms": median(warm) * 1000}
    report.row("reload", "cold (no parse or matcher caches), median", ms(median(cold)),
               f"YAML parse only {ms(parse)}", f"{median(cold) / parse:.1f}x the parse")
    report.row("reload", "warm (nothing changed), median", ms(median(warm)),
               f"YAML parse only {ms(parse)}", f"{median(warm) / parse:.1f}x the parse")
    for what, edit in _edits(copy).items():
        seconds = []
        for i in range(n):
            edit(i)
            seconds.append(timed_reload())
        figures[f"after {what}_ms"] = median(seconds) * 1000
        target, ok = ("", None)
        if what == "an example question":
            target, ok = "<= 100 ms", median(seconds) <= EDIT_TARGET
        report.row("reload", f"after adding {what}, median", ms(median(seconds)),
                   f"YAML parse only {ms(parse)}", f"{median(seconds) / parse:.1f}x the parse",
                   target, ok)
    loop = _under_load(engine, 3 * n, 3)
    figures["under_load"] = loop
    report.row("reload", f"answers during {loop['reloads']} reloads ({loop['threads']} threads)",
               f"{loop['answers']} answers, {loop['errors']} errors",
               f"{loop['changed']} changed answers", "", "0 errors, 0 changed",
               loop["errors"] == loop["changed"] == loop["failed"] == loop["stuck"] == 0)
    report.results["reload"] = figures
