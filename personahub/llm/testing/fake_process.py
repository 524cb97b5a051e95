"""The fake OpenAI-compatible server in a process of its own (own GIL, for benchmarks):
start and stop it from Python, and the ``python -m personahub.llm.testing.fake_openai``
command line that the child process runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from personahub.llm.testing.fake_app import ServerCore


def spawn_server_process(
    latency_ms: float = 0,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 15.0,
    **config: Any,
) -> tuple[subprocess.Popen[str], str]:
    """Run the server in a child process, so it does not share the client's GIL.

    Args:
        latency_ms: Delay before every chat answer.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        startup_timeout: Seconds to wait for the child to report its URL.
        **config: Initial JSON-serialisable config (no ``responder``).

    Returns:
        The process (stop it with :func:`stop_server_process` or ``kill()``) and its
        base URL. Control it with ``FakeOpenAIServer.attach(base_url)``.
    """
    command = [
        sys.executable,
        "-m",
        "personahub.llm.testing.fake_openai",
        "--host",
        host,
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
    ]
    if config:
        command += ["--config-json", json.dumps(config)]
    repo_root = Path(__file__).resolve().parents[2]
    # stderr is inherited: a pipe nobody drains could fill up and stall the server.
    process = subprocess.Popen(command, cwd=repo_root, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(startup_timeout)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("http"):
        stop_server_process(process)
        raise RuntimeError(f"fake-openai process failed to start (first line: {line!r})")
    return process, line


def stop_server_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Terminate a process from :func:`spawn_server_process`, killing it if needed.

    Returns:
        The exit code.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


async def _serve_forever(host: str, port: int, config: dict[str, Any]) -> None:
    core = ServerCore(config)
    runner, bound = await core.start(host, port)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"http://{url_host}:{bound}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: Iterable[str] | None = None) -> None:
    """Command-line entry point; prints the base URL, then serves until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        description="A real, local OpenAI-compatible HTTP server for tests and benchmarks."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=None, help="overrides the config")
    parser.add_argument("--config-json", default="{}", help="initial config as a JSON object")
    args = parser.parse_args(None if argv is None else list(argv))
    config = json.loads(args.config_json)
    if not isinstance(config, dict):
        parser.error("--config-json must be a JSON object")
    if args.latency_ms is not None:
        config["latency_ms"] = args.latency_ms
    asyncio.run(_serve_forever(args.host, args.port, config))
