"""python -m benchmarks [--quick] [--only latency,reload] [--json PATH]

Every figure is printed beside a baseline measured in the same run (these machines
are noisy), each of issue 16's targets beside its figure, met or MISSED. Figures
are written as JSON too, never asserted. Runs from a plain clone: it needs the
project's eval/ and tests/ (data, the local Slack, the serve process), not ../shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import KNOWLEDGE, ROOT, Plan, Report, dev_texts, every, with_variants


def _baselines(report: Report) -> None:
    from benchmarks import baselines
    from bot.core import Engine

    questions = with_variants(dev_texts())
    baselines.run(report, Engine(knowledge_dir=KNOWLEDGE, cache_dir=None),
                  questions if not report.plan.quick else every(questions, 120))


def _latency(report: Report) -> None:
    from benchmarks import latency
    from bot.core import Engine

    latency.run(report, Engine(knowledge_dir=KNOWLEDGE, cache_dir=None))


def _section(name: str) -> Callable[[Report], None]:
    def run(report: Report) -> None:
        module = __import__(f"benchmarks.{name}", fromlist=["run"])
        module.run(report)
    return run


SECTIONS: dict[str, Callable[[Report], None]] = {
    "baselines": _baselines, "latency": _latency, "growth": _section("growth"),
    "reload": _section("reload"), "startup": _section("startup"),
    "memory": _section("memory"), "slack": _section("slack_load"),
}


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (make bench-quick)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"sections to run, comma-separated (default: {','.join(SECTIONS)})")
    parser.add_argument("--json", default="bench-results.json", metavar="PATH")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    sys.path.insert(0, str(ROOT))  # tests/ (the local Slack, the serve process)
    started = time.perf_counter()
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="careerbot-bench-") as tmp:
        report = Report(Plan.make(args.quick), Path(tmp))
        for name in chosen:
            try:
                SECTIONS[name](report)
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the rest
                failed[name] = f"{type(exc).__name__}: {exc}"
                report.row(name, "FAILED", f"{type(exc).__name__}: {str(exc)[:160]}")
    print(f"careerbot benchmarks ({'quick' if args.quick else 'full'}) on {_machine()}")
    print(report.table())
    missed = [r for r in report.targets if not r.ok]
    print(f"\n{len(report.targets) - len(missed)}/{len(report.targets)} targets met"
          + (": MISSED " + "; ".join(f"{r.label} ({r.target})" for r in missed) if missed
             else "") + f" ({time.perf_counter() - started:.0f} s)")
    for note in report.notes:
        print(f"note: {note}")
    payload: dict[str, Any] = {"machine": _machine(), "quick": args.quick, "sections": chosen,
                               "results": report.results, "failed": failed,
                               "targets": [{"figure": r.label, "value": r.value,
                                            "target": r.target, "met": r.ok}
                                           for r in report.targets]}
    Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n",
                               encoding="utf-8")
    for name, why in failed.items():
        print(f"benchmarks: section {name} failed: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
