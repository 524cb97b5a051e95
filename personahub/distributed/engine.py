"""Starting or joining Ray for the Ray engine, and checking ``--engine``/``--ray-address``.

``ray.init`` is called at most once per process: locally (the default) it starts a private
Ray with ``num_cpus`` CPUs and no dashboard, so a laptop run does not grab every core; with
an address (``ray://host:10001``, ``host:6379`` or ``auto``) it joins that cluster.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENGINES = ("local", "ray")


class EngineError(ValueError):
    """A bad ``--engine``/``--ray-address``/worker setting, or Ray missing; one line."""


def check_engine(engine: str, address: str | None = None, workers: int | None = None) -> str:
    """Normalise and check the engine options before any work starts.

    Args:
        engine: ``local`` or ``ray``.
        address: ``--ray-address`` (only meaningful with the Ray engine).
        workers: Ray workers (at least 1).

    Returns:
        The engine name, lower-cased.

    Raises:
        EngineError: With one line naming the bad option.
    """
    name = engine.strip().lower()
    if name not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if address is not None and name != "ray":
        raise EngineError("--ray-address needs --engine ray")
    if address is not None and not address.strip():
        raise EngineError("--ray-address is empty (use auto, host:port or ray://host:port)")
    if workers is not None and workers < 1:
        raise EngineError(f"--ray-workers must be at least 1, got {workers}")
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EngineError(
                "the ray engine needs Ray: pip install 'persona-sandbox[ray]'"
            ) from None
    return name


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Start a local Ray (or join ``address``) unless this process is already connected.

    Args:
        address: A cluster address, or None for a local Ray.
        num_cpus: CPUs of a local Ray (default: all of this machine's).

    Returns:
        The ``ray`` module.
    """
    import ray

    if ray.is_initialized():
        return ray
    # Ray's own progress bars and INFO lines would drown the CLI's output.
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is not None:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """``init_ray`` for the duration of a block; shuts down only a Ray it started itself."""
    import ray

    started = not ray.is_initialized()
    init_ray(address, num_cpus)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
