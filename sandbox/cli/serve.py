"""``sandbox serve``: the live web view of runs, with interviews and crowd surveys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from personahub.cli.common import console, fail
from sandbox.cli.common import Out


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``sandbox`` app."""
    app.command()(serve)


def serve(
    runs: Out = Path("runs"),
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="A database URL holding runs (instead of --runs; their reports are still "
            "found under --runs).",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="SANDBOX_SERVE_TOKEN", help="Access token (needed off loopback)."
        ),
    ] = None,
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Generate an access token and print it.")
    ] = False,
) -> None:
    """Open a local web app over the runs: a runs list, live run pages (figures with
    intervals, shares over time, the graph coloured by answer, the feed, failures), agent
    pages with their transcripts, interviews in character and crowd surveys. It reads the
    databases without writing, in its own process, so it can watch a run as it goes."""
    import uvicorn

    from sandbox.serve.app import ServeApp, build_app
    from sandbox.serve.security import BindError, check_bind
    from sandbox.serve.security import new_token as make_token
    from sandbox.serve.source import RunSource

    if new_token:
        token = make_token()
    try:
        check_bind(host, token)
    except BindError as exc:
        fail(str(exc))
    source = RunSource(runs=runs, database=database)
    application = build_app(ServeApp(source), token=token)
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    console.print(f"serving {source.describe()} at {address}", highlight=False, soft_wrap=True)
    if database is None and not runs.is_dir():
        # Most likely started in another folder than the runs: say so before the empty page.
        console.print(
            f"note: {source.describe()} does not exist yet; a run appears there as soon as "
            f"`sandbox run` starts it (from this folder, or with --runs {runs})",
            highlight=False,
            soft_wrap=True,
        )
    uvicorn.run(application, host=host, port=port, log_level="warning")
