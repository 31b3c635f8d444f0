"""`careerbot bench` runs and writes its figures: numbers only, never timings asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (
        math.isfinite(value) and value > 0)


def test_quick_bench_writes_latency_reload_and_startup_figures(tmp_path: Path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bot", "bench", "--quick", "--sections", "1,3,4",
         "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "<= 3x naive" in run.stdout  # the table, with the targets beside figures

    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["sections"] == [1, 3, 4] and figures["failed"] == {}
    results = figures["results"]

    latency = results["latency"]
    assert latency["questions"] > 0
    for who in ("engine", "naive"):
        for key in ("median_ms", "p99_ms"):
            assert _positive(latency[who][key]), (who, key)
    assert _positive(latency["ratio_median"])

    reload = results["reload"]
    assert reload["shipped"]["failures"] == 0 and reload["large"]["failures"] == 0
    for key in ("median_ms", "parse_only_median_ms"):
        assert _positive(reload["shipped"][key]), key
    assert _positive(reload["large"]["median_ms"])
    under_load = reload["under_load"]
    assert under_load["errors"] == 0 and under_load["reload_failures"] == 0
    assert under_load["answers"] > 0 and under_load["reloads"] > 0

    startup = results["startup"]
    assert _positive(startup["ask_median_s"]) and _positive(startup["baseline_median_s"])
    assert startup["probe_ok"] is True
    assert set(startup["platform_imports"]) >= {"slack_bolt", "slack_sdk", "discord", "aiohttp"}

    targets = {t["target"] for t in figures["targets"]}
    assert {"<= 3x naive", "< 100 ms", "0 errors", "none imported"} <= targets
