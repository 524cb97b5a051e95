"""Starting or joining Ray for the Ray engine, and checking ``--engine``/``--ray-address``.

``ray.init`` is called at most once per process: locally (the default) it starts a private
Ray with ``num_cpus`` CPUs and no dashboard, so a laptop run does not grab every core; with
an address (``ray://host:10001``, ``host:6379`` or ``auto``) it joins that cluster.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENGINES = ("local", "ray")


class EngineError(ValueError):
    """A bad ``--engine``/``--ray-address``/worker setting, or Ray missing; one line."""


def check_engine(engine: str, address: str | None = None, workers: int | None = None) -> str:
    """Normalise and check the engine options before any work starts, including that a
    ``--ray-address`` host:port accepts connections (Ray itself would retry for minutes).

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
    if name == "ray" and address is not None:
        _check_reachable(address.strip())
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EngineError(
                "the ray engine needs Ray: pip install 'persona-sandbox[ray]'"
            ) from None
    return name


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a cluster address nobody listens at: Ray itself retries for minutes."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise EngineError(f"--ray-address {address}: expected auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise EngineError(
            f"--ray-address {address}: cannot connect ({exc.strerror or exc})"
        ) from None


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Start a local Ray (or join ``address``) unless this process is already connected.

    Args:
        address: A cluster address, or None for a local Ray.
        num_cpus: CPUs of a local Ray (default: all of this machine's).

    Returns:
        The ``ray`` module.

    Raises:
        EngineError: The cluster address cannot be reached (one line).
    """
    import ray

    if ray.is_initialized():
        return ray
    # Ray's own progress bars and INFO lines would drown the CLI's output.
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is not None:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineError(f"--ray-address {address}: {first}") from None
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
