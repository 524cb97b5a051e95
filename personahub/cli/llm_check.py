"""``personahub llm check``: which backend and model the gateway uses, and one chat and one
structured request through it.

The gateway is imported when the command runs: ``--help`` does not need it."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import typer
from pydantic import BaseModel, Field
from rich.table import Table

from personahub.cli import llm_options as opt
from personahub.cli.common import console, fail

if TYPE_CHECKING:
    from personahub.llm import LLMClient


def register(app: typer.Typer) -> None:
    """Add the ``llm`` group (``llm check``) to the ``personahub`` command."""
    llm_app = typer.Typer(help="The LLM gateway.", no_args_is_help=True, rich_markup_mode=None)
    llm_app.command("check")(llm_check)
    app.add_typer(llm_app, name="llm")


class CheckPersona(BaseModel):
    """The structured answer `llm check` asks for."""

    persona: str = Field(max_length=160, description="One sentence describing the person.")
    occupation: str = Field(max_length=60)
    age: int = Field(ge=16, le=90)


@opt.llm_flags("backend", "base_url", "model", "model_path", "config")
def llm_check(llm: opt.LLMFlags = opt.NO_FLAGS) -> None:
    """Say which backend and model are configured, then send one chat and one structured
    request and print latency and tokens/s."""
    from personahub.llm import ConfigError, LLMClient, load_settings
    from personahub.llm.backends.local import ModelUnavailableError

    try:
        settings = load_settings(
            llm.config, **{**llm.overrides(), "cache": False, "max_retries": 1}
        )
        client = LLMClient(settings)
    except (ConfigError, ModelUnavailableError) as exc:
        fail(str(exc))
    asyncio.run(_check(client))


async def _check(client: LLMClient) -> None:
    from personahub import prompts
    from personahub.llm import ConfigError, LLMRequest
    from personahub.llm.backends.local import ModelUnavailableError

    async with client:
        try:
            # Before the table: it names the model the server serves, not a default.
            await client.preflight()
        except ConfigError as exc:
            fail(str(exc))
        table = Table(title="LLM gateway", show_header=False)
        for key, value in client.describe().items():
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
        console.print(table)
        load = client.capabilities.warm_up
        if load is not None:
            with console.status("loading the embedded model"):
                try:
                    load()
                except ModelUnavailableError as exc:
                    fail(str(exc))
        checks: list[tuple[str, LLMRequest[BaseModel]]] = [
            (
                "chat",
                LLMRequest(
                    [{"role": "user", "content": prompts.render("llm/check_chat")}],
                    max_tokens=64,
                    temperature=0.0,
                ),
            ),
            (
                "structured",
                LLMRequest(
                    [{"role": "user", "content": prompts.render("llm/check_structured")}],
                    schema=CheckPersona,
                    max_tokens=160,
                    temperature=0.0,
                ),
            ),
        ]
        results = Table(title="check")
        for column in ("request", "ok", "latency s", "tokens in/out", "tokens/s", "answer"):
            results.add_column(column)
        for name, request in checks:
            started = time.perf_counter()
            result = await client.complete(request)
            elapsed = time.perf_counter() - started
            if result.error is not None:
                fail(f"{name} request failed: {result.error.message}")
            answer = result.parsed.model_dump_json() if result.parsed else result.text.strip()
            results.add_row(
                name,
                "yes",
                f"{elapsed:.2f}",
                f"{result.usage.prompt_tokens}/{result.usage.completion_tokens}",
                f"{result.usage.completion_tokens / elapsed:.1f}" if elapsed > 0 else "-",
                answer[:100],
            )
        console.print(results)
        modes = client.capabilities.structured_modes
        if modes is not None:
            console.print(f"structured-output mode per endpoint: {modes()}")
