"""The ``sandbox`` command (placeholder until the simulation lands)."""

import typer

app = typer.Typer(help="Persona simulation sandbox.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print the version."""
    from sandbox import __version__

    print(__version__)


def main() -> None:
    app()
