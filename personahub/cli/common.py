"""Small helpers shared by the command-line interfaces: one-line errors and the console.

Imported by every command module of both CLIs, so it loads the gateway only when a command
opens a client: ``--help`` needs none of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from personahub.llm import LLMClient

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on one line and exit without a traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_client(config: Path | None, overrides: dict[str, Any], warm_up: bool = True) -> LLMClient:
    """The gateway for a command's LLM flags, after the backend's pre-flight check (which
    learns the model a server serves, for provenance), the embedded model loaded under a
    status line (not with ``warm_up=False``: e.g. when Ray workers make the calls).

    Raises:
        ConfigError: Bad settings, or a backend that cannot work (see
            :meth:`LLMClient.preflight`).
        ModelUnavailableError: The embedded model cannot be loaded.
    """
    from personahub.llm import ConfigError, LLMClient, load_settings

    client = LLMClient(load_settings(config, **overrides))
    try:
        asyncio.run(client.preflight())
    except ConfigError:
        asyncio.run(client.aclose())
        raise
    load = client.capabilities.warm_up
    if warm_up and load is not None:
        with console.status("loading the embedded model"):
            load()
    return client


def note_ray_budget(client: LLMClient, workers: int) -> None:
    """Under ``--engine ray`` each worker has its own gateway, so a budget holds per worker:
    say how far the whole job may go."""
    from personahub.distributed.usage import budget_bound

    bound = budget_bound(client.settings.max_calls, client.settings.max_total_tokens, workers)
    if bound:
        console.print(f"[yellow]note:[/] {bound}", highlight=False, soft_wrap=True)
