"""``sandbox ssr-check``: semantic-similarity rating's anchors tried on labelled texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from personahub.cli.common import console
from sandbox.cli.common import fail_input


def register(app: typer.Typer) -> None:
    """Add ``ssr-check`` to the ``sandbox`` app."""
    app.command("ssr-check")(ssr_check)


def _number(value: float | None) -> str:
    return "n/a (the ratings do not vary)" if value is None else f"{value:+.3f}"


def ssr_check(
    anchors: Annotated[
        Path, typer.Argument(help="YAML: scale, low, high, and anchors (one set or several).")
    ],
    labelled: Annotated[
        Path, typer.Argument(help="CSV with a `text` column and a `label` column (scale point).")
    ],
) -> None:
    """Rate labelled texts by semantic similarity to the anchors and compare with the labels:
    Pearson and Spearman correlation, mean absolute error and a confusion table."""
    # Here, not at the top: the embedder and scipy take seconds to import.
    from sandbox.forecast.ssr_check import CheckError, check, read_anchors, read_labelled

    try:
        spec = read_anchors(anchors)
        texts, labels = read_labelled(labelled, spec.scale)
    except CheckError as exc:
        fail_input(exc)
    result = check(spec, texts, labels)
    sets = Table(
        title=f"anchors ({len(result.anchor_sets)} set(s), averaged)", title_justify="left"
    )
    sets.add_column("point", justify="right")
    for j in range(len(result.anchor_sets)):
        sets.add_column(f"set {j + 1}")
    for point, statements in enumerate(zip(*result.anchor_sets, strict=True), start=1):
        sets.add_row(str(point), *statements)
    console.print(sets)
    console.print(
        f"{result.n} labelled texts: Pearson r {_number(result.pearson)}, Spearman rho "
        f"{_number(result.spearman)}, mean absolute error {result.mean_abs_error:.2f} points",
        highlight=False,
    )
    k = spec.scale
    # A title would wrap to the narrow table's width: said on its own line instead.
    console.print("confusion: rows are the labels, columns the SSR expected rating rounded")
    table = Table()
    table.add_column("label", justify="right")
    for point in range(1, k + 1):
        table.add_column(str(point), justify="right")
    for point, row in enumerate(result.confusion, start=1):
        table.add_row(str(point), *(str(int(c)) for c in row))
    console.print(table)
