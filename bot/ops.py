"""The serving process's ops port: GET /healthz and GET /metrics (CAREERBOT_OPS_PORT).

They are served apart from Slack's public events port (CAREERBOT_PORT), which
serves POST /slack/events alone: what /healthz shows (the replica's host and pid,
the store's address, the knowledge version) is for probes and scrapers inside the
network, not for whoever finds the events URL.

- `GET /healthz`: readiness. 200 when the knowledge is loaded, every platform is
  connected and the process is not shutting down; 503 otherwise. The JSON body
  says which, the version served, and whether the last reload failed.
- `GET /healthz?probe=live`: liveness. 200 whenever the process answers at all.
- `GET /metrics`: Prometheus's text format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from bot.metrics import CONTENT_TYPE
from bot.runtime import Runtime

__all__ = ["HEALTH_PATH", "LIVE_QUERY", "MAX_BODY_BYTES", "METRICS_PATH", "bound_port",
           "ops_routes", "start_server"]

HEALTH_PATH = "/healthz"
LIVE_QUERY = "probe=live"
METRICS_PATH = "/metrics"
#: the largest request body served (Slack's own payloads are a few KB); larger is a 413
MAX_BODY_BYTES = 1024 * 1024


def ops_routes(runtime: Runtime) -> list[web.RouteDef]:
    async def health(request: web.Request) -> web.Response:
        if request.query.get("probe") == "live":
            return web.json_response({"ok": True, "live": True, "replica": runtime.replica})
        ready, body = await runtime.health()
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=runtime.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE})

    return [web.get(HEALTH_PATH, health), web.get(METRICS_PATH, metrics)]


async def start_server(runtime: Runtime, host: str, port: int,
                       routes: Iterable[web.RouteDef] = (),
                       on_cleanup: Iterable[Callable[[web.Application], Awaitable[None]]] = (),
                       *, ops: bool = True) -> web.AppRunner:
    """Serve the ops routes (unless not `ops`) and `routes` on host:port; the caller
    cleans the runner up, which runs `on_cleanup`."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.add_routes([*(ops_routes(runtime) if ops else ()), *routes])
    app.on_cleanup.extend(on_cleanup)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_port(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])
