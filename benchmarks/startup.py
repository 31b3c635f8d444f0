"""`careerbot ask "..."` as a whole process: with the matcher cached on disk (the usual
case after the first run), and cold (an empty cache: load, validate, build), beside
starting python and importing yaml and rapidfuzz."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report, median, ratio, say

__all__ = ["run"]

ASK = "typical MLE compensation"
TARGET = 0.400


def _careerbot() -> list[str]:
    script = Path(sys.executable).with_name("careerbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def _wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120, check=True)
    return time.perf_counter() - t0


def run(report: Report) -> None:
    ask = [*_careerbot(), "ask", ASK]
    baseline = [sys.executable, "-c", "import yaml, rapidfuzz.process"]
    cwd = report.tmp  # no .env from the working directory
    n = report.plan.startup_runs
    say(f"startup: careerbot ask, cached and cold, {n} runs each")
    cached_env = {**os.environ, "XDG_CACHE_HOME": str(report.tmp / "cache")}
    _wall(ask, cwd, cached_env)  # fills the cache and the file cache
    _wall(baseline, cwd, cached_env)
    cached, cold, base = [], [], []
    for _ in range(n):
        cached.append(_wall(ask, cwd, cached_env))
        with tempfile.TemporaryDirectory(dir=report.tmp) as empty:
            cold.append(_wall(ask, cwd, {**os.environ, "XDG_CACHE_HOME": empty}))
        base.append(_wall(baseline, cwd, cached_env))
    c, k, b = median(cached), median(cold), median(base)
    report.results["startup"] = {"cached_ms": c * 1000, "cold_ms": k * 1000,
                                 "baseline_ms": b * 1000, "runs": n}
    report.row("startup", f'careerbot ask "{ASK}", matcher cached (median of {n})',
               f"{c * 1000:.0f} ms", f"python -c 'import yaml, rapidfuzz' {b * 1000:.0f} ms",
               ratio(c, b), "<= 400 ms", c <= TARGET)
    report.row("startup", "  the same, cache empty (cold build, then written)",
               f"{k * 1000:.0f} ms", f"cached {c * 1000:.0f} ms", ratio(k, c))
