"""The quick benchmarks run and print their figures: numbers only, never timings asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        math.isfinite(value) and value > 0)


def test_quick_bench_prints_every_figure_beside_its_baseline(tmp_path: Path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    table = run.stdout
    for label in ("BM25 (bm25s)", "rapidfuzz QRatio", "rapidfuzz WRatio", "long real",
                  "adversarial", "worst-case message", "cold (no parse", "after adding a synonym",
                  "matcher cached", "python + yaml + rapidfuzz", "time to answer",
                  "told to slow down"):
        assert label in table, label
    assert "targets met" in table and "FAILED" not in table

    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["failed"] == {}
    results = figures["results"]
    for matcher in results["baselines"]["matchers"].values():
        assert _finite(matcher["median_ms"]) and matcher["dev_in_scope"].endswith("%")
    for kind in ("dev", "long real", "adversarial"):
        assert _finite(results["latency"][kind]["p99_ms"]) and \
            _finite(results["latency"][kind]["bm25_p99_ms"]), kind
    assert set(results["growth"]) == {"1x", "10x"}
    reload = results["reload"]
    assert reload["under_load"]["errors"] == reload["under_load"]["changed"] == 0
    assert _finite(reload["cold_ms"]) and _finite(reload["after a synonym_ms"])
    assert _finite(results["startup"]["cached_ms"]) and _finite(results["startup"]["cold_ms"])
    memory = results["memory"]
    assert memory["baseline_kb"] < memory["shipped_kb"] < memory["large_kb"]
    slack = results["slack"]
    assert slack["errors"] == [] and slack["posts"] == slack["sent"]
    assert slack["refused"] > 0 and len(slack["refused_users"]) == 3  # only the greedy ones
    assert all(t["met"] in (True, False) and t["target"] for t in figures["targets"])
