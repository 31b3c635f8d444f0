"""Peak memory of the bot answering the dev questions, on the shipped base and the
largest grown one, beside a clean python that imports yaml and rapidfuzz only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT, Report, say
from benchmarks.growth import grown

__all__ = ["run"]

# A clean process: python, yaml and rapidfuzz, and nothing of the bench or the bot.
_BASELINE = """
import yaml, rapidfuzz.fuzz, rapidfuzz.process
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]))
"""
# The console bot as `careerbot chat` runs it: its engine, every dev question answered.
_BOT = """
import json, sys
from bot.adapters.console import render_text
from bot.core import Engine, Query
engine = Engine(knowledge_dir=sys.argv[1], cache_dir=None)
texts = json.loads(sys.stdin.read())
for text in texts:
    render_text(engine.answer(Query(text=text, conversation="console")))
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]))
"""


def _probe(code: str, *args: str, stdin: str = "") -> int:
    out = subprocess.run([sys.executable, "-c", code, *args], input=stdin, cwd=ROOT,
                         capture_output=True, text=True, timeout=900, check=True)
    return int(out.stdout.split()[-1])


def run(report: Report) -> None:
    from benchmarks.common import dev_texts

    texts = json.dumps(dev_texts())
    say("memory: clean baseline, shipped base, largest base")
    base = _probe(_BASELINE)
    factor = report.plan.growth_factors[-1]
    shipped = _probe(_BOT, str(ROOT / "knowledge"), stdin=texts)
    large = _probe(_BOT, str(Path(grown(report, factor))), stdin=texts)
    report.results["memory"] = {"baseline_kb": base, "shipped_kb": shipped, "large_kb": large,
                                "large_factor": factor}
    report.row("memory", "peak RSS, shipped base, dev questions answered",
               f"{shipped / 1024:.1f} MiB", f"python + yaml + rapidfuzz {base / 1024:.1f} MiB",
               f"+{(shipped - base) / 1024:.1f} MiB")
    report.row("memory", f"peak RSS, {factor}x base", f"{large / 1024:.1f} MiB",
               f"python + yaml + rapidfuzz {base / 1024:.1f} MiB",
               f"+{(large - base) / 1024:.1f} MiB")
