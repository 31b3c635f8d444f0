"""deploy/ read against the code: the settings its env vars name, the port and paths the
server serves, the commands the CLI has, the knowledge it mounts.

No container engine or cluster runs here: this is what can be checked without one.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from bot.cli import build_parser
from bot.core import Engine, load_knowledge
from bot.core.knowledge import default_knowledge_dir
from bot.ops import HEALTH_PATH, LIVE_QUERY, METRICS_PATH, start_server
from bot.runtime import Runtime
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PORT = Settings().port
OPS_PORT = Settings().ops_port
#: variables that are the interpreter's, not careerbot's settings
NOT_OURS = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")


def _yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _one(path: Path) -> dict[str, Any]:
    [doc] = _yaml(path)
    return doc


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines()
                                              if not line.lstrip().startswith("#")))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _dockerfile():
        if word == "ENV":
            env |= dict(part.split("=", 1) for part in shlex.split(rest))
    return env


def _deployment() -> dict[str, Any]:
    return _one(K8S / "deployment.yaml")


def _container() -> dict[str, Any]:
    [container] = _deployment()["spec"]["template"]["spec"]["containers"]
    return container


def _systemd() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "careerbot.service").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def _compose() -> dict[str, Any]:
    return _one(DEPLOY / "compose.yaml")


# ---------------------------------------------------------------------- settings


def _env_names() -> dict[str, str]:
    """Every variable deploy/ sets, and the file that sets it."""
    names = {name: "Dockerfile" for name in _docker_env()}
    names |= {name: "compose.yaml" for name in _compose()["services"]["bot"]["environment"]}
    names |= {e["name"]: "k8s/deployment.yaml" for e in _container()["env"]}
    names |= {name: "k8s/secret.example.yaml"
              for name in _one(K8S / "secret.example.yaml")["stringData"]}
    for value in _systemd()["Environment"]:
        names[value.split("=", 1)[0]] = "careerbot.service"
    return {n: f for n, f in names.items() if n not in NOT_OURS}


def _known(name: str) -> bool:
    """Does setting `name` change what Settings.from_env reads? (Tries a few kinds of value.)"""
    plain = Settings.from_env(env={})
    for value in ("1", "true", "x", "0.5", "redis://example:6379/0"):
        try:
            if Settings.from_env(env={name: value}) != plain:
                return True
        except ValueError:
            continue
    return False


def test_every_variable_deploy_sets_is_a_setting() -> None:
    names = _env_names()
    assert {"CAREERBOT_KNOWLEDGE_DIR", "CAREERBOT_PORT", "REDIS_URL", "SLACK_BOT_TOKEN",
            "SLACK_SIGNING_SECRET", "CAREERBOT_LOG_JSON"} <= set(names)
    unknown = {f"{name} ({where})" for name, where in names.items() if not _known(name)}
    assert not unknown, f"deploy/ sets variables the settings do not read: {sorted(unknown)}"


def test_the_secret_is_an_example_without_values() -> None:
    secret = _one(K8S / "secret.example.yaml")
    assert secret["kind"] == "Secret"
    assert set(secret["stringData"].values()) == {""}
    assert secret["metadata"]["name"] == _container()["envFrom"][0]["secretRef"]["name"]


# ---------------------------------------------------------------------- port and paths


def test_the_same_two_ports_everywhere_and_only_the_events_port_public() -> None:
    """Slack's events on CAREERBOT_PORT, the only one published (compose) or routed to (the
    Service); /healthz and /metrics on CAREERBOT_OPS_PORT, for probes and scrapers."""
    assert (PORT, OPS_PORT) == (3000, 3001)
    exposed = [rest for word, rest in _dockerfile() if word == "EXPOSE"]
    assert exposed == [str(PORT)]
    assert (_docker_env()["CAREERBOT_PORT"], _docker_env()["CAREERBOT_OPS_PORT"]) == (
        str(PORT), str(OPS_PORT))
    bot = _compose()["services"]["bot"]
    assert bot["environment"]["CAREERBOT_PORT"] == str(PORT)
    assert bot["environment"]["CAREERBOT_OPS_PORT"] == str(OPS_PORT)
    assert [p.rsplit(":", 1)[1] for p in bot["ports"]] == [str(PORT)]
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    assert ports == {"http": PORT, "ops": OPS_PORT}
    env = {e["name"]: e["value"] for e in _container()["env"]}
    assert (env["CAREERBOT_PORT"], env["CAREERBOT_OPS_PORT"]) == (str(PORT), str(OPS_PORT))
    [service_port] = _one(K8S / "service.yaml")["spec"]["ports"]
    assert service_port["targetPort"] == "http"
    annotations = _deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(OPS_PORT)
    assert {f"CAREERBOT_PORT={PORT}", f"CAREERBOT_OPS_PORT={OPS_PORT}"} <= set(
        _systemd()["Environment"])


def _probe_paths() -> dict[str, str]:
    [healthcheck] = [rest for word, rest in _dockerfile() if word == "HEALTHCHECK"]
    [url] = re.findall(r"'(/[^']*)'", healthcheck)
    container = _container()
    return {
        "docker": url,
        "readiness": container["readinessProbe"]["httpGet"]["path"],
        "liveness": container["livenessProbe"]["httpGet"]["path"],
        "metrics": _deployment()["spec"]["template"]["metadata"]["annotations"][
            "prometheus.io/path"],
    }


def test_probes_name_the_paths_the_server_serves() -> None:
    paths = _probe_paths()
    assert paths == {"docker": HEALTH_PATH, "readiness": HEALTH_PATH,
                     "liveness": f"{HEALTH_PATH}?{LIVE_QUERY}", "metrics": METRICS_PATH}
    for probe in ("readinessProbe", "livenessProbe"):
        assert _container()[probe]["httpGet"]["port"] == "ops"
    [healthcheck] = [rest for word, rest in _dockerfile() if word == "HEALTHCHECK"]
    assert f"'CAREERBOT_OPS_PORT', '{OPS_PORT}'" in healthcheck


async def test_the_probed_paths_answer(engine: Engine) -> None:
    """The very paths deploy/ probes, against the server `careerbot serve` runs."""
    runtime = Runtime(engine, Settings())
    runtime.set_platform("slack", False)
    runner = await start_server(runtime, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    got: dict[str, int] = {}
    try:
        async with aiohttp.ClientSession() as session:
            async def status(path: str) -> int:
                async with asyncio.timeout(5), session.get(base + path) as response:
                    await response.read()
                    return response.status
            for name, path in _probe_paths().items():
                got[name] = await status(path)
            runtime.set_platform("slack", True)
            got["ready"] = await status(_probe_paths()["readiness"])
            await runtime.drain(0)
            got["draining"] = await status(_probe_paths()["readiness"])
            got["draining, alive"] = await status(_probe_paths()["liveness"])
    finally:
        await runner.cleanup()
    # not ready while the platform is not connected, or while shutting down; alive always
    assert got == {"docker": 503, "readiness": 503, "liveness": 200, "metrics": 200,
                   "ready": 200, "draining": 503, "draining, alive": 200}


# ---------------------------------------------------------------------- commands


def _commands() -> dict[str, list[str]]:
    entrypoint = next(rest for word, rest in _dockerfile() if word == "ENTRYPOINT")
    cmd = next(rest for word, rest in _dockerfile() if word == "CMD")
    docker = yaml.safe_load(entrypoint) + yaml.safe_load(cmd)
    [exec_start] = _systemd()["ExecStart"]
    return {
        "Dockerfile": docker,
        "compose.yaml": ["careerbot", *_compose()["services"]["bot"]["command"]],
        "k8s/deployment.yaml": ["careerbot", *_container()["args"]],
        "careerbot.service": [Path(exec_start.split()[0]).name, *exec_start.split()[1:]],
    }


@pytest.mark.parametrize("where", ["Dockerfile", "compose.yaml", "k8s/deployment.yaml",
                                   "careerbot.service"])
def test_commands_are_ones_the_cli_has(where: str) -> None:
    program, *args = _commands()[where]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert program in scripts
    parsed = build_parser().parse_args(args)  # exits (fails the test) on an unknown command
    assert parsed.command in {"run", "serve"}


# ---------------------------------------------------------------------- the image


def test_image_is_multi_stage_slim_and_non_root() -> None:
    stages = [rest for word, rest in _dockerfile() if word == "FROM"]
    assert len(stages) >= 2 and stages[-1].split()[0].endswith("-slim")
    [user] = [rest for word, rest in _dockerfile() if word == "USER"]
    assert user not in {"root", "0"}
    context = _compose()["services"]["bot"]["build"]
    assert (DEPLOY / context["context"] / context["dockerfile"]).resolve() == \
        DEPLOY / "Dockerfile"
    copied = [rest.split() for word, rest in _dockerfile() if word == "COPY"]
    for args in copied:
        if not args[0].startswith("--from"):
            for source in args[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    security = _deployment()["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == int(user)
    assert _systemd()["User"] != ["root"]


def test_knowledge_is_baked_in_and_overridable() -> None:
    knowledge = _docker_env()["CAREERBOT_KNOWLEDGE_DIR"]
    assert ["knowledge", knowledge] in [rest.split() for word, rest in _dockerfile()
                                        if word == "COPY"]
    # compose mounts the repository's knowledge/ over the baked one
    bot = _compose()["services"]["bot"]
    [volume] = bot["volumes"]
    source, target, mode = volume.split(":")
    assert (DEPLOY / source).resolve() == ROOT / "knowledge" and target == knowledge
    assert mode == "ro" and bot["environment"]["CAREERBOT_KNOWLEDGE_DIR"] == knowledge


# ---------------------------------------------------------------------- Kubernetes


def test_kubernetes_objects_fit_together() -> None:
    deployment = _deployment()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["replicas"] >= 2
    service = _one(K8S / "service.yaml")
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = _one(K8S / "pdb.yaml")
    assert pdb["kind"] == "PodDisruptionBudget"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one(K8S / "hpa.yaml")
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    resources = _container()["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    env = {e["name"]: e["value"] for e in _container()["env"]}
    assert float(env["CAREERBOT_SHUTDOWN_GRACE"]) < grace  # drained before the kill


def _kubelet_layout(target: Path, data: dict[str, str], stamp: str) -> None:
    """A ConfigMap volume as the kubelet writes it: dated copies behind ..data links."""
    dated = target / f"..{stamp}"
    dated.mkdir(parents=True)
    for name, text in data.items():
        (dated / name).write_text(text, encoding="utf-8")
    (target / "..data").symlink_to(dated.name)
    for name in data:
        (target / name).symlink_to(Path("..data") / name)


def test_the_knowledge_configmaps_mount_as_a_knowledge_base(tmp_path: Path) -> None:
    maps = {m["metadata"]["name"]: m["data"] for m in _yaml(K8S / "knowledge-configmap.yaml")}
    knowledge_dir = {e["name"]: e["value"] for e in _container()["env"]}[
        "CAREERBOT_KNOWLEDGE_DIR"]
    volumes = {v["name"]: v["configMap"]["name"]
               for v in _deployment()["spec"]["template"]["spec"]["volumes"] if "configMap" in v}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in _container()["volumeMounts"]
              if m["name"] in volumes}
    assert set(mounts.values()) == set(maps)
    assert knowledge_dir in mounts and f"{knowledge_dir}/topics" in mounts

    versions = []
    for pod, stamp in (("pod-a", "2026_01_01_00_00_00.1"), ("pod-b", "2026_01_01_00_00_07.2")):
        for path, name in sorted(mounts.items()):
            relative = Path(path).relative_to(knowledge_dir)
            _kubelet_layout(tmp_path / pod / relative, maps[name], stamp)
        loaded = load_knowledge(tmp_path / pod)
        assert loaded.topics and "salary" in loaded.topics
        versions.append(loaded.version)
    # the kubelet's dated folders differ per pod; the version served must not
    assert versions[0] == versions[1]
    plain = tmp_path / "plain"
    for path, name in mounts.items():
        folder = plain / Path(path).relative_to(knowledge_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for file, text in maps[name].items():
            (folder / file).write_text(text, encoding="utf-8")
    assert load_knowledge(plain).version == versions[0]


def test_the_configmap_generator_writes_what_is_committed(tmp_path: Path) -> None:
    """Regenerating from the committed ConfigMaps' own content changes nothing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("knowledge_configmap",
                                                  K8S / "knowledge_configmap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = tmp_path / "knowledge"
    for m in _yaml(K8S / "knowledge-configmap.yaml"):
        folder = source / ("topics" if m["metadata"]["name"].endswith("-topics") else "")
        folder.mkdir(parents=True, exist_ok=True)
        for file, text in m["data"].items():
            (folder / file).write_text(text, encoding="utf-8")
    out = tmp_path / "out.yaml"
    assert module.main([str(source), str(out)]) == 0
    assert out.read_text(encoding="utf-8") == \
        (K8S / "knowledge-configmap.yaml").read_text(encoding="utf-8")


def test_the_committed_configmap_is_the_shipped_knowledge() -> None:
    """A stale copy would deploy old answers: after editing knowledge/, run `make k8s-knowledge`."""
    maps = {m["metadata"]["name"]: m["data"] for m in _yaml(K8S / "knowledge-configmap.yaml")}
    shipped = default_knowledge_dir()
    for name, data in maps.items():
        folder = shipped / "topics" if name.endswith("-topics") else shipped
        on_disk = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.yaml")}
        assert data == on_disk, "deploy/k8s/knowledge-configmap.yaml is stale: make k8s-knowledge"


def test_deploy_holds_no_token_or_password() -> None:
    """No file in deploy/ carries a token, or a password in a Redis URL."""
    for path in [*DEPLOY.glob("*"), *K8S.glob("*")]:
        if path.is_file() and path.suffix != ".md":
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"xox[abp]-\w|xapp-\w", text), path
            for url in re.findall(r"redis://[^\s\"']+", text):
                assert urlsplit(url).password is None, path


def test_docker_build_context_leaves_out_secrets_and_local_state():
    """`docker build` sends the whole folder to the daemon but for .dockerignore: never
    the tokens in .env, the venv, the learning records or the git history; and every
    file the Dockerfile copies is still sent."""
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", "data/", ".git"} <= ignored
    copied = {part.rstrip("/") for word, rest in _dockerfile() if word == "COPY"
              and not rest.startswith("--from") for part in rest.split()[:-1]}
    assert copied and not copied & {i.rstrip("/") for i in ignored}
