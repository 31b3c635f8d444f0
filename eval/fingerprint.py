"""Regenerate eval/seed_fingerprint.json from the five source articles.

    python eval/fingerprint.py DIR        (or: make fingerprint SEEDS=DIR)

The fingerprint lets the "answers are written in our own words" test run in a plain
clone without redistributing the articles: it holds each article's file name and a
short hash of every run of 12 words in it (the same runs the test forms
from the answers), never the words themselves.

It also lists each article's figures ($120,000, 80%, 10,000: facts, not prose), so a
test can check that an answer's figure is one its credited article gives.
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


#: a figure as written: an optional currency sign, digits (with thousands commas or a
#: decimal point), then k/M/%; not digits glued to a word (F1, GPT-4o, L3)
FIGURE = re.compile(r"(?<![\w.])[$£€]?\d+(?:,\d{3})*(?:\.\d+)?(?:\s?(?:[kKmM]\b|%|percent\b))?")


def figures(text: str) -> list[str]:
    """The figures in `text`, as written, once each, in order."""
    return list(dict.fromkeys(m.group().strip() for m in FIGURE.finditer(text)))


def figure_value(figure: str) -> str:
    """A figure's value, so that $120k, $120K and $120,000 compare equal ("$120000")."""
    m = re.fullmatch(r"([$£€]?)([\d,]+(?:\.\d+)?)\s?([kKmM%]|percent)?", figure.strip())
    if not m:
        return figure
    sign, number, unit = m.groups()
    value = float(number.replace(",", "")) * {"k": 1e3, "m": 1e6}.get((unit or "").lower(), 1)
    shown = f"{value:.10g}" if value % 1 else str(int(value))
    return sign + shown + ("%" if unit in ("%", "percent") else "")


def digest(run: str) -> str:
    return hashlib.blake2b(run.encode(), digest_size=8).hexdigest()


def fingerprint(seeds: Path) -> dict[str, object]:
    articles = sorted(seeds.glob("*.txt"))
    if not articles:
        raise SystemExit(f"no articles (*.txt) in {seeds}")
    hashes = set()
    found: dict[str, list[str]] = {}
    for path in articles:
        text = path.read_text(encoding="utf-8")
        hashes |= {digest(r) for r in runs(text)}
        found[path.name] = sorted(figures(text))
    return {"run_words": RUN, "files": [p.name for p in articles], "runs": sorted(hashes),
            "figures": found}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print("usage: python eval/fingerprint.py DIR (the folder of the five articles)",
              file=sys.stderr)
        return 2
    seeds = Path(argv[1])
    OUT.write_text(json.dumps(fingerprint(seeds), indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
