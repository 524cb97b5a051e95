"""The ``sandbox serve`` web app: Starlette, server-rendered Jinja2 pages (autoescaped), and
small scripts that poll once a second while runs go: the run page its snapshot, the runs list
its own page. No CDN, no JavaScript library.

Pages: ``/`` (runs), ``/runs/{id}`` (live run page), ``/runs/{id}/agents/{agent}`` (agent page
with the interview chat), ``/runs/{id}/report`` (the written report), ``/experiment/{id}``
(an experiment's arms side by side) and ``/experiment/{id}/report`` (its experiment.html).
JSON: ``/api/runs``, ``/api/runs/{id}/live``; the only writes are
``POST /api/runs/{id}/agents/{agent}/interview`` and ``POST /api/runs/{id}/survey``.
Extra pages plug in through ``build_app(extra_routes=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from personahub.llm import LLMClient
from sandbox.interview import Interviewer, InterviewError, interview_client
from sandbox.rundb import RunRow
from sandbox.serve.experiments import experiment_page, experiments_list
from sandbox.serve.security import Guard
from sandbox.serve.source import RunReader, RunSource
from sandbox.serve.views import LiveViews, agent_page, report_pending, run_summary, runs_list

HERE = Path(__file__).resolve().parent
ClientFactory = Callable[[RunRow], LLMClient]
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value from a run (personas, replies, scenarios) is text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class ServeApp:
    """The routes over one :class:`RunSource`.

    Args:
        source: Where the runs are.
        client_factory: The gateway client for a run's interviews (default: the run's
            recorded LLM configuration, :func:`interview_client`).
        poll_ms: How often the run page asks for news.
    """

    def __init__(
        self,
        source: RunSource,
        client_factory: ClientFactory | None = None,
        poll_ms: int = 1000,
    ):
        self.source = source
        self.client_factory = client_factory or (lambda run: interview_client(run))
        self.poll_ms = poll_ms
        self.views = LiveViews()
        self.env = _environment()
        self._clients: dict[str, LLMClient] = {}
        # One snapshot computed at a time: pages polling meanwhile then get the cached one.
        self._lock = asyncio.Lock()

    def _page(self, template: str, **values: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(template).render(**values))

    def _locate(self, request: Request) -> tuple[RunReader, RunRow]:
        found = self.source.locate(request.path_params["run_id"])
        if found is None:
            raise HTTPException(404, "no such run")
        return found

    def _runs(self) -> dict[str, Any]:
        listing = self.source.listing()
        runs, problems = runs_list(listing)
        for line in runs:
            # Only a written report gets a link: a running run's would answer 404.
            line["report"] = self.source.report_path(line["id"]) is not None
        return {"runs": runs, "experiments": experiments_list(listing), "problems": problems}

    async def runs(self, request: Request) -> Response:
        data = await asyncio.to_thread(self._runs)
        if request.url.path.startswith("/api/"):
            return JSONResponse(data)
        return self._page(
            "runs.html.j2", poll_ms=self.poll_ms, where=self.source.describe(), **data
        )

    async def run_page(self, request: Request) -> Response:
        _reader, run = await asyncio.to_thread(self._locate, request)
        has_report = self.source.report_path(run.id) is not None
        return self._page(
            "run.html.j2", run=run_summary(run), has_report=has_report, poll_ms=self.poll_ms
        )

    async def live(self, request: Request) -> Response:
        async with self._lock:
            snapshot = await asyncio.to_thread(self._snapshot, request)
        return JSONResponse(snapshot)

    def _snapshot(self, request: Request) -> dict[str, Any]:
        reader, run = self._locate(request)
        # The report is written after the run's last commit, so it is not part of the cached
        # snapshot (whose version would not change): the page learns of it, and whether to keep
        # waiting for it, from these flags.
        has_report = self.source.report_path(run.id) is not None
        pending = report_pending(run, has_report)
        return {**self.views.snapshot(reader, run), "report": has_report, "report_pending": pending}

    async def report(self, request: Request) -> Response:
        _reader, run = await asyncio.to_thread(self._locate, request)
        return _report(self.source.report_path(run.id), "sandbox report RUN")

    def _experiment_page(self, experiment_id: str) -> dict[str, Any]:
        reader = self.source.experiment(experiment_id)
        if reader is None:
            raise HTTPException(404, "no such experiment")
        return experiment_page(reader, self.views.figures)

    async def experiment(self, request: Request) -> Response:
        experiment_id = request.path_params["experiment_id"]
        async with self._lock:  # the key figures come from the run pages' snapshots
            data = await asyncio.to_thread(self._experiment_page, experiment_id)
        has_report = self.source.experiment_report_path(experiment_id) is not None
        return self._page("experiment.html.j2", id=experiment_id, has_report=has_report, **data)

    async def experiment_report(self, request: Request) -> Response:
        await asyncio.to_thread(self.source.listing)  # the experiment may be new
        path = self.source.experiment_report_path(request.path_params["experiment_id"])
        return _report(path, "it is written when the experiment ends")

    async def agent(self, request: Request) -> Response:
        reader, run = await asyncio.to_thread(self._locate, request)
        data = await asyncio.to_thread(agent_page, reader, run, request.path_params["agent_id"])
        if data is None:
            raise HTTPException(404, "no such agent")
        return self._page("agent.html.j2", run=run_summary(run), **data)

    async def _interviewer(self, run: RunRow) -> Interviewer:
        if run.id not in self._clients:
            self._clients[run.id] = await asyncio.to_thread(self.client_factory, run)
        writer = await asyncio.to_thread(self.source.writer, run.id)
        return Interviewer(writer, run, self._clients[run.id])

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise HTTPException(400, "the body must be JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, "the body must be a JSON object")
        return body

    async def interview(self, request: Request) -> Response:
        body = await self._body(request)
        _reader, run = await asyncio.to_thread(self._locate, request)
        interviewer = await self._interviewer(run)
        try:
            reply = await interviewer.ask(
                request.path_params["agent_id"],
                str(body.get("question", "")),
                session=str(body["session"]) if body.get("session") else None,
            )
        except InterviewError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {
                "session": reply.session,
                "turn": reply.turn,
                "step": reply.step,
                "reply": reply.text,
                "error": reply.error,
                "cached": reply.cached,
            }
        )

    async def survey(self, request: Request) -> Response:
        body = await self._body(request)
        _reader, run = await asyncio.to_thread(self._locate, request)
        if run.status == "running":
            return JSONResponse({"error": "survey the crowd once the run is over"}, 400)
        interviewer = await self._interviewer(run)
        options = [str(o) for o in body.get("options") or []]
        try:
            result = await interviewer.survey(
                str(body.get("question", "")), options, sample=int(body.get("sample") or 20)
            )
        except (InterviewError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {
                "asked": result.asked,
                "answered": result.answered,
                "failed": result.failed,
                "answers": [
                    {"answer": a, "count": n, "share": result.share(a)}
                    for a, n in result.counts.items()
                ],
            }
        )

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self.source.close()


def _report(path: Path | None, how: str) -> Response:
    """A written report page, or 404 saying how to write it."""
    if path is None:
        raise HTTPException(404, f"no report written yet ({how})")
    response = FileResponse(path, media_type="text/html")
    # The reports are self-contained and script-free: images are data URIs, styles inline.
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


def build_app(
    app: ServeApp, token: str | None = None, extra_routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """The Starlette application; ``token`` None means loopback only (see security)."""
    routes: list[BaseRoute] = [
        Route("/", app.runs),
        Route("/api/runs", app.runs),
        Route("/runs/{run_id}", app.run_page),
        Route("/api/runs/{run_id}/live", app.live),
        Route("/runs/{run_id}/report", app.report),
        Route("/runs/{run_id}/agents/{agent_id:int}", app.agent),
        Route(
            "/api/runs/{run_id}/agents/{agent_id:int}/interview", app.interview, methods=["POST"]
        ),
        Route("/api/runs/{run_id}/survey", app.survey, methods=["POST"]),
        Route("/experiment/{experiment_id}", app.experiment),
        Route("/experiment/{experiment_id}/report", app.experiment_report),
        # experiment.html links each run's report relative to itself
        Route("/experiment/{experiment_id}/{run_id}/report.html", app.report),
        *extra_routes,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await app.close()

    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token)], lifespan=lifespan)
