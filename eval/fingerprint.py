"""Regenerate eval/seed_fingerprint.json from the five source articles.

    python eval/fingerprint.py ../shared/seeds        (or: make fingerprint)

The fingerprint lets the "answers are written in our own words" test run in a plain
clone without redistributing the articles: it holds each article's file name and a
short hash of every run of 12 words in it (the same runs the test forms
from the answers), never the words themselves.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "seed_fingerprint.json"
RUN = 12  # words in a run; shorter runs are ordinary phrases everyone uses


def runs(text: str) -> set[str]:
    """Every run of RUN words of `text`, lower-cased, punctuation dropped."""
    words = re.findall(r"[a-z0-9$]+", text.lower())
    return {" ".join(words[i:i + RUN]) for i in range(len(words) - RUN + 1)}


def digest(run: str) -> str:
    return hashlib.blake2b(run.encode(), digest_size=8).hexdigest()


def fingerprint(seeds: Path) -> dict[str, object]:
    articles = sorted(seeds.glob("*.txt"))
    if not articles:
        raise SystemExit(f"no articles (*.txt) in {seeds}")
    hashes = set()
    for path in articles:
        hashes |= {digest(r) for r in runs(path.read_text(encoding="utf-8"))}
    return {"run_words": RUN, "files": [p.name for p in articles], "runs": sorted(hashes)}


def main(argv: list[str]) -> int:
    seeds = Path(argv[1] if len(argv) > 1 else "../shared/seeds")
    OUT.write_text(json.dumps(fingerprint(seeds), indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
