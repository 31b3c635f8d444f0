"""Split the real-question corpus by source page: train.jsonl and heldout.jsonl.

    python tests/data/real/split.py [more.jsonl ...]

Reads both files here (and any new collection given), drops repeats and anything
from the five source articles' sites, and writes the two parts again. A page goes
wholly to one part, chosen by a hash of its URL, so questions from one thread or
FAQ never sit on both sides.

- train.jsonl may feed knowledge examples and out-of-scope groups;
- heldout.jsonl never enters knowledge/ (tests/test_knowledge.py checks that no
  example is a near copy of one of its lines): it is what `careerbot eval` reports
  first, and what matcher changes are judged on, with the cross-validation.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"train": HERE / "train.jsonl", "heldout": HERE / "heldout.jsonl"}
HELD_OUT_SHARE = 40  # percent of pages held out: enough for >= 150 questions
# the five source articles' sites (and a copy of one): never a source of questions
ARTICLE_SITES = ("novustechworld", "bluebird", "mlopsnow", "skillwisor")
FIELDS = ("text", "topic", "role", "kind", "url")


def part_of(url: str) -> str:
    bucket = int(hashlib.blake2b(url.encode(), digest_size=4).hexdigest(), 16) % 100
    return "heldout" if bucket < HELD_OUT_SHARE else "train"


def main(extra: list[str]) -> int:
    seen: set[str] = set()
    parts: dict[str, list[dict[str, object]]] = {name: [] for name in PARTS}
    for path in [*PARTS.values(), *map(Path, extra)]:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = " ".join(str(item["text"]).lower().split())
            url = str(item["url"])
            if key in seen or any(site in url.lower() for site in ARTICLE_SITES):
                continue
            seen.add(key)
            parts[part_of(url)].append({f: item.get(f) for f in FIELDS})
    for name, path in PARTS.items():
        path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in parts[name]),
                        encoding="utf-8")
        scoped = sum(i["topic"] is not None for i in parts[name])
        pages = len({i["url"] for i in parts[name]})
        print(f"{name}: {len(parts[name])} questions ({scoped} in scope) from {pages} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
