"""Write knowledge-configmap.yaml: the knowledge base as two ConfigMaps.

A ConfigMap's keys cannot hold a "/", so the top-level files (sources.yaml,
synonyms.yaml, out_of_scope.yaml) go in `careerbot-knowledge` and the topics in
`careerbot-knowledge-topics`; the Deployment mounts the second inside the first.
Run it after editing knowledge/ (`make k8s-knowledge`), then
`kubectl apply -f deploy/k8s/knowledge-configmap.yaml` and, once the pods see the
new files (about a minute), `/careerbot reload` on any one replica.

    python deploy/k8s/knowledge_configmap.py [KNOWLEDGE_DIR] [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"": "careerbot-knowledge", "topics": "careerbot-knowledge-topics"}


class _Literal(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Literal.add_representer(str, _text)


def configmaps(knowledge: Path) -> list[dict[str, object]]:
    maps = []
    for sub, name in NAMES.items():
        folder = knowledge / sub
        data = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))}
        maps.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": name,
                                  "labels": {"app.kubernetes.io/name": "careerbot"}},
                     "data": data})
    return maps


def main(argv: list[str]) -> int:
    knowledge = Path(argv[0]) if argv else ROOT / "knowledge"
    output = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name(
        "knowledge-configmap.yaml")
    header = ("# Generated from knowledge/ by deploy/k8s/knowledge_configmap.py "
              "(make k8s-knowledge): edit knowledge/, not this file.\n")
    body = yaml.dump_all(configmaps(knowledge), Dumper=_Literal, sort_keys=False,
                         allow_unicode=True, width=100)
    output.write_text(header + body, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
