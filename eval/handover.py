"""Check eval/ against a handed-over folder: the label contract, the dev set and the
articles' fingerprint are the copies the project keeps of it.

    python eval/handover.py DIR        (or: make handover SHARED=DIR)

DIR holds topics.yaml, eval/*.jsonl and seeds/*.txt, as the team hands them over. Each
file there must equal its copy in eval/, and the articles must give the fingerprint in
eval/seed_fingerprint.json. Prints what drifted and exits 1; 0 when nothing did; 2 on
a wrong call. The project itself never needs DIR: tests and the bot run on eval/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fingerprint import OUT, fingerprint

EVAL = Path(__file__).resolve().parent


def drift(handed: Path) -> list[str]:
    """What in `handed` differs from the project's copies, a line each."""
    pairs = [(EVAL / p.name, p) for p in [handed / "topics.yaml",
                                          *sorted((handed / "eval").glob("*.jsonl"))]
             if p.exists()]
    found = [f"{theirs} differs from eval/{ours.name}: cp it into eval/"
             for ours, theirs in pairs
             if not ours.exists() or ours.read_bytes() != theirs.read_bytes()]
    if (handed / "seeds").is_dir():
        if fingerprint(handed / "seeds") != json.loads(OUT.read_text(encoding="utf-8")):
            found.append(f"{handed / 'seeds'} gives another fingerprint: run "
                         f"make fingerprint SEEDS={handed / 'seeds'}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print("usage: python eval/handover.py DIR (topics.yaml, eval/, seeds/ as handed over)",
              file=sys.stderr)
        return 2
    found = drift(Path(argv[1]))
    for line in found:
        print(line)
    if not found:
        print("eval/ matches what was handed over")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
