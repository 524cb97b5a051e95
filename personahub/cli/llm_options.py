"""The LLM flags shared by every command that calls a model (``personahub`` and ``sandbox``).

They are defined once: a command declares one parameter ``llm: LLMFlags`` where the flags go in
its ``--help``, and :func:`llm_flags` puts the typer options (all of them, or the ones named) in
its place and hands the command one :class:`LLMFlags` value. Typer stays out of
``personahub.llm``: the gateway only sees :meth:`LLMFlags.overrides`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from pydantic import BaseModel

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
    typer.Option("--config", help="TOML config file with an [llm] table.", show_default=False),
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
PriceIn = Annotated[
    float | None,
    typer.Option("--price-in", help="Price per million prompt tokens.", show_default=False),
]
PriceOut = Annotated[
    float | None,
    typer.Option("--price-out", help="Price per million completion tokens.", show_default=False),
]


class LLMFlags(BaseModel):
    """The LLM flags of one command line (a command without a flag gets its default)."""

    backend: str | None = None
    base_url: list[str] | None = None
    model: str | None = None
    model_path: Path | None = None
    config: Path | None = None
    concurrency: int | None = None
    no_cache: bool = False
    max_calls: int | None = None
    max_tokens_total: int | None = None
    price_in: float | None = None
    price_out: float | None = None

    def overrides(self) -> dict[str, Any]:
        """Settings overrides; flags left unset do not override anything (``--config`` is
        not one: it names where the rest come from)."""
        out: dict[str, Any] = {
            "backend": self.backend,
            "model": self.model,
            "model_path": self.model_path,
            "concurrency": self.concurrency,
            "max_calls": self.max_calls,
            "max_total_tokens": self.max_tokens_total,
            "price_in": self.price_in,
            "price_out": self.price_out,
        }
        if self.base_url:
            out["base_urls"] = self.base_url
            out["backend"] = self.backend or "openai"
        if self.no_cache:
            out["cache"] = False
        return out


NO_FLAGS = LLMFlags()
"""The default of a command's ``llm`` parameter (:func:`llm_flags` always passes one)."""

_OPTIONS: dict[str, Any] = {
    "backend": Backend,
    "base_url": BaseUrl,
    "model": Model,
    "model_path": ModelPath,
    "config": Config,
    "concurrency": Concurrency,
    "no_cache": NoCache,
    "max_calls": MaxCalls,
    "max_tokens_total": MaxTokensTotal,
    "price_in": PriceIn,
    "price_out": PriceOut,
}
F = TypeVar("F", bound=Callable[..., Any])


def llm_flags(*names: str) -> Callable[[F], F]:
    """Give a command the LLM flags ``names`` (default: all) in place of its ``llm``
    parameter, which then receives them as one :class:`LLMFlags`."""
    chosen = names or tuple(_OPTIONS)

    def wrap(command: F) -> F:
        # Evaluated annotations: typer reads the Annotated options off this signature.
        signature = inspect.signature(command, eval_str=True)
        flags = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_OPTIONS[name],
                default=LLMFlags.model_fields[name].default,
            )
            for name in chosen
        ]
        params: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            if param.name == "llm":
                params.extend(flags)
            else:
                params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))

        @functools.wraps(command)
        def with_flags(**kwargs: Any) -> Any:
            llm = LLMFlags(**{name: kwargs.pop(name) for name in chosen})
            return command(**kwargs, llm=llm)

        cast(Any, with_flags).__signature__ = signature.replace(parameters=params)
        with_flags.__annotations__ = {p.name: p.annotation for p in params}
        return cast(F, with_flags)

    return wrap
