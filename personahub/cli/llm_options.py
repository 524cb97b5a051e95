"""The LLM flags shared by every command that calls a model (``personahub`` and ``sandbox``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

Backend = Annotated[
    str | None,
    typer.Option(
        "--backend", help="`local` (embedded model, default) or `openai`.", show_default=False
    ),
]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1. Repeat to share load.",
        show_default=False,
    ),
]
Model = Annotated[str | None, typer.Option("--model", help="Model name.", show_default=False)]
ModelPath = Annotated[
    Path | None, typer.Option("--model-path", help="GGUF file for the local backend.")
]
Config = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file with an \\[llm] table.", show_default=False),
]
Concurrency = Annotated[
    int | None,
    typer.Option("--concurrency", help="Requests in flight at once.", show_default=False),
]
NoCache = Annotated[
    bool, typer.Option("--no-cache", help="Do not read or write the response cache.")
]
MaxCalls = Annotated[int | None, typer.Option("--max-calls", help="Budget: model calls.")]
MaxTokensTotal = Annotated[
    int | None, typer.Option("--max-tokens-total", help="Budget: tokens (prompt + completion).")
]


def llm_overrides(
    backend: str | None = None,
    base_url: list[str] | None = None,
    model: str | None = None,
    model_path: Path | None = None,
    concurrency: int | None = None,
    no_cache: bool = False,
    max_calls: int | None = None,
    max_tokens_total: int | None = None,
) -> dict[str, Any]:
    """Settings overrides from CLI flags; flags left unset do not override anything."""
    out: dict[str, Any] = {
        "backend": backend,
        "model": model,
        "model_path": model_path,
        "concurrency": concurrency,
        "max_calls": max_calls,
        "max_total_tokens": max_tokens_total,
    }
    if base_url:
        out["base_urls"] = base_url
        out["backend"] = backend or "openai"
    if no_cache:
        out["cache"] = False
    return out
