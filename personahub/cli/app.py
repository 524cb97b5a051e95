"""The ``personahub`` command: the LLM gateway check, the persona store and the pipeline.
Each command group is its own module in this package and adds itself with ``register``."""

from __future__ import annotations

import typer

from personahub.cli import build as cli_pipeline
from personahub.cli import llm_check as cli_llm
from personahub.cli import store as cli_store
from personahub.cli import synthesize as cli_synthesis

app = typer.Typer(
    help="Persona Hub pipeline: build, store and use personas. Every model call goes through "
    "one gateway (`personahub llm check` shows which).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: Click re-wraps docstrings to the terminal's width; Rich's boxes kept their
    # hard line breaks and squeezed option help into a column a few words wide at 80 columns.
    rich_markup_mode=None,
)
cli_llm.register(app)
cli_store.register(app)
cli_pipeline.register(app)
cli_synthesis.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
