"""The admin HTTP app: what Prometheus, Kubernetes probes and an operator's browser ask.

    GET /metrics   Prometheus exposition of the daemon's ``Metrics`` registry
    GET /healthz   200 while the event loop answers (liveness: restart me if not)
    GET /readyz    200 when every check passes, else 503 naming the failing checks;
                   503 while draining, so a rollout stops routing to this pod
    GET /status    JSON snapshot of datasets and jobs; a small HTML page when the
                   client prefers text/html (a browser) or asks ``?format=html``

The app only reads: what it shows comes from a ``StatusProvider``, so the daemon
decides what "ready" means (``daemon/status.py``) and tests can serve any state.
Everything it returns is passed through the redactor first, and HTML is escaped value
by value, because a file name or a server's error message is outside data (DESIGN.md
invariant 5).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, Self

from aiohttp import web

from dsmsyncd.config.redact import redact_text, redact_value
from dsmsyncd.observe.metrics import Metrics

__all__ = ["OK", "AdminServer", "StatusProvider", "create_admin_app", "start_admin"]

logger = logging.getLogger("dsmsyncd.observe.admin")

OK = "ok"
"""The message of a passing readiness check; any other message means the check failed."""

_NO_STORE = {"Cache-Control": "no-store"}
_dumps = partial(json.dumps, default=str)


class StatusProvider(Protocol):
    """What the admin app asks of the daemon."""

    async def ready(self) -> tuple[bool, dict[str, str]]:
        """(all passed, check name → ``OK`` or what is wrong); quick: probes answer in ~1 s."""
        ...

    async def snapshot(self) -> dict[str, Any]:
        """JSON-able: version, started_at, draining, counts, datasets, sources."""
        ...


# -- the app ---------------------------------------------------------------------------


def create_admin_app(status: StatusProvider, metrics: Metrics) -> web.Application:
    app = web.Application()
    routes = _Routes(status, metrics)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_get("/healthz", routes.healthz)
    app.router.add_get("/readyz", routes.readyz)
    app.router.add_get("/status", routes.status)
    return app


class _Routes:
    def __init__(self, status: StatusProvider, metrics: Metrics) -> None:
        self._status = status
        self._metrics = metrics

    async def metrics(self, _: web.Request) -> web.Response:
        body, content_type = self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, headers=_NO_STORE)

    async def readyz(self, _: web.Request) -> web.Response:
        try:
            ok, checks = await self._status.ready()
        except Exception as exc:
            logger.exception("readiness check failed")
            ok, checks = False, {"readiness": f"the check itself failed: {exc!r}"}
        checks = {name: redact_text(message) for name, message in checks.items()}
        self._metrics.up.set(1 if ok else 0)
        body: dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
        if not ok:
            body["failing"] = {name: msg for name, msg in checks.items() if msg != OK}
        return web.json_response(body, status=200 if ok else 503, headers=_NO_STORE)

    async def status(self, request: web.Request) -> web.Response:
        try:
            snapshot = redact_value(await self._status.snapshot())
        except Exception as exc:
            logger.exception("status snapshot failed")
            error = {"status": "error", "error": redact_text(repr(exc))}
            return web.json_response(error, status=503, headers=_NO_STORE)
        if _wants_html(request):
            return web.Response(
                text=render_status_html(snapshot),
                content_type="text/html",
                headers={
                    **_NO_STORE,
                    # Defence in depth behind the escaping: no scripts, no outside loads.
                    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                    "X-Content-Type-Options": "nosniff",
                },
            )
        return web.json_response(snapshot, dumps=_dumps, headers=_NO_STORE)


def _wants_html(request: web.Request) -> bool:
    chosen = request.query.get("format")
    if chosen is not None:
        return chosen.lower() == "html"
    accept = request.headers.get("Accept", "")
    return _quality(accept, ("text/html", "text/*")) > _quality(accept, ("application/json",))


def _quality(accept: str, media: tuple[str, ...]) -> float:
    # Highest q among the media ranges naming one of ``media`` (or */*). Specificity
    # rules are skipped: browsers send text/html at 1.0 and */* lower, curl sends */*.
    best = 0.0
    for part in accept.split(","):
        name, *params = (piece.strip() for piece in part.split(";"))
        if name.lower() not in (*media, "*/*"):
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best


# -- serving ---------------------------------------------------------------------------


@dataclass
class AdminServer:
    """A running admin app; ``url`` has the real port when started on port 0."""

    url: str
    _runner: web.AppRunner = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    async def stop(self) -> None:
        """Close the listener and open connections; safe to call twice."""
        if not self._stopped:
            self._stopped = True
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_admin(app: web.Application, host: str, port: int) -> AdminServer:
    """Listen on ``host:port`` (0 picks a free port) until ``stop()``."""
    # No access log: probes and scrapes every few seconds would drown the job lines.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    server = AdminServer(url=f"http://{shown}:{bound_port}", _runner=runner)
    logger.info("admin HTTP listening on %s", server.url)
    return server


# -- the HTML page ---------------------------------------------------------------------

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.4em 0 1.4em}"
    "th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}.error{color:#a00;white-space:pre-wrap;max-width:50em}"
)
_JOB_COLUMNS = ("id", "state", "file", "revision", "attempts", "updated_at", "error")


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _job_cells(job: Mapping[str, Any]) -> list[str]:
    cells = [_e(job.get(key)) for key in _JOB_COLUMNS]
    cells[-1] = f'<span class="error">{cells[-1]}</span>'
    return cells


_REPLICA_COLUMNS = ("name", "alive", "seen_s_ago", "host", "pid", "version", "started_at")
_LANE_COLUMNS = ("dataset", "replica", "job_id", "file", "state", "held_for_s", "expires_in_s")


def _cluster_html(replica: object, cluster: Mapping[str, Any]) -> list[str]:
    """Replicas and the lanes they hold: the same view from every replica."""
    if not cluster:
        return []
    replicas = cluster.get("replicas") or []
    lanes = cluster.get("lanes") or []
    return [
        f"<h2>Cluster</h2><p>this replica: {_e(replica)}</p>",
        _table(_REPLICA_COLUMNS, [[_e(r.get(k)) for k in _REPLICA_COLUMNS] for r in replicas]),
        "<h3>Lanes and their leases</h3>",
        _table(_LANE_COLUMNS, [[_e(lane.get(k)) for k in _LANE_COLUMNS] for lane in lanes]),
    ]


def _records(title: str, records: list[Mapping[str, Any]]) -> list[str]:
    """A titled table of ``records`` (their keys as columns), or nothing if none."""
    if not records:
        return []
    keys = list(dict.fromkeys(key for record in records for key in record))
    return [f"<h2>{title}</h2>", _table(keys, [[_e(r.get(k)) for k in keys] for r in records])]


def render_status_html(snapshot: Mapping[str, Any]) -> str:
    """A self-contained page (no scripts, no outside assets); every value is escaped."""
    datasets: list[Mapping[str, Any]] = list(snapshot.get("datasets") or [])
    counts: Mapping[str, Any] = snapshot.get("counts") or {}
    sources: list[Mapping[str, Any]] = list(snapshot.get("sources") or [])
    parts = [
        f"<h1>dsmsyncd {_e(snapshot.get('version'))}</h1>",
        f"<p>started {_e(snapshot.get('started_at'))}"
        f" &middot; draining: {'yes' if snapshot.get('draining') else 'no'}</p>",
        "<h2>Jobs by state</h2>",
        _table(["state", "jobs"], [(_e(state), _e(n)) for state, n in counts.items()]),
        "<h2>Datasets</h2>",
    ]
    summary = []
    for ds in datasets:
        current = ds.get("current") or {}
        doing = (
            f"{_e(current.get('state'))} {_e(current.get('file'))}"
            f" (revision {_e(current.get('revision'))})"
            if current
            else _e(ds.get("waiting") or "idle")
        )
        summary.append((_e(ds.get("dataset")), doing, _e(ds.get("queued")), _e(ds.get("held"))))
    parts.append(_table(["dataset", "current job", "queued", "held"], summary))
    for ds in datasets:
        for staged in ds.get("staged") or []:
            url = _e(staged.get("revision_url"))
            parts.append(
                f"<p>{_e(ds.get('dataset'))}: revision {_e(staged.get('revision'))} of "
                f'{_e(staged.get("file"))} is staged: read it at <a href="{url}">{url}</a>, '
                f"then <code>{_e(staged.get('apply'))}</code></p>"
            )
        parts.append(f"<h3>{_e(ds.get('dataset'))}: recent jobs</h3>")
        parts.append(_table(_JOB_COLUMNS, [_job_cells(job) for job in ds.get("recent") or []]))
    parts += _records("Sources", sources)
    parts += _records("Notifications", list(snapshot.get("notify") or []))
    parts += _cluster_html(snapshot.get("replica"), snapshot.get("cluster") or {})
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="10"><title>dsmsyncd status</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
