"""The ``--engine``, ``--ray-address`` and ``--ray-workers`` options shared by the CLIs."""

from __future__ import annotations

from typing import Annotated

import typer

EngineOpt = Annotated[
    str, typer.Option("--engine", help="local (this process) or ray (Ray Data; see --ray-address).")
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to join (auto, host:port or ray://host:port; default: a local Ray).",
    ),
]
RayWorkersOpt = Annotated[
    int, typer.Option("--ray-workers", help="Ray workers (actors) for the Ray engine.")
]
