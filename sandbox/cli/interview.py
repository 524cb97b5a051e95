"""``sandbox interview`` (talk to one agent of a run, in character) and ``sandbox survey``
(ask a new question of a sample of its agents)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from personahub.cli import llm_options as opt
from personahub.cli.common import console, err_console, fail
from sandbox.cli.common import Out, RunRef, fail_input, input_errors

T = TypeVar("T")
STOP_WORDS = frozenset({"", "exit", "quit", "bye"})


def register(app: typer.Typer) -> None:
    """Add ``interview`` and ``survey`` to the ``sandbox`` app."""
    app.command()(opt.llm_flags("backend", "base_url", "model", "config", "no_cache")(interview))
    app.command()(opt.llm_flags("backend", "base_url", "model", "config", "no_cache")(survey))


def _with_interviewer(
    run_ref: str, out: Path, llm: opt.LLMFlags, work: Callable[[Any], Awaitable[T]]
) -> T:
    """Open the run for writing, build its gateway client and run ``work(interviewer)``."""
    from sandbox.interview import Interviewer, InterviewError, interview_client
    from sandbox.run_folders import locate_run
    from sandbox.rundb import RunDatabase

    try:
        database = RunDatabase(locate_run(run_ref, out), must_exist=True)
    except input_errors() as exc:
        fail_input(exc)
    try:
        run = database.run()
        if run is None:
            fail(f"{run_ref} holds no run")
        found = run  # narrowed to RunRow for the closure below
        client = interview_client(found, llm.overrides(), llm.config)
    except input_errors() as exc:
        database.close()
        fail_input(exc)

    async def go() -> T:
        try:
            return await work(Interviewer(database, found, client))
        finally:
            await client.aclose()

    try:
        return asyncio.run(go())
    except InterviewError as exc:
        fail(str(exc))
    finally:
        database.close()


def interview(
    run_ref: RunRef,
    agent: Annotated[int, typer.Argument(metavar="AGENT", help="Agent id (see the report).")],
    ask: Annotated[
        str | None,
        typer.Option("--ask", help="Ask one question, print the answer and stop (for scripts)."),
    ] = None,
    step: Annotated[
        int | None,
        typer.Option(
            "--step", help="Answer from the agent's memory as of this step (default: last)."
        ),
    ] = None,
    out: Out = Path("runs"),
    llm: opt.LLMFlags = opt.NO_FLAGS,
) -> None:
    """Talk to one agent of a run, in character: its persona and what it saw and said. The
    questions go through the run's model (cache, budget, metering) and are stored in the run
    database as interviews, which never count in the forecast."""

    async def talk(interviewer: Any) -> None:
        if ask is not None:
            reply = await interviewer.ask(agent, ask, step=step)
            _print_reply(reply)
            return
        console.print(f"interviewing agent {agent}; an empty line or `exit` ends the interview")
        session = None
        while True:
            try:
                question = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            if question.strip().lower() in STOP_WORDS:
                break
            reply = await interviewer.ask(agent, question, session=session, step=step)
            session = reply.session
            _print_reply(reply)

    _with_interviewer(run_ref, out, llm, talk)


def _print_reply(reply: Any) -> None:
    if reply.error:
        err_console.print(f"[bold red]error:[/] {escape(reply.error)}", highlight=False)
        return
    console.print(f"agent {reply.agent_id}> {escape(reply.text)}", highlight=False)


def survey(
    run_ref: RunRef,
    question: Annotated[str, typer.Argument(help="The new question.")],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="An answer to choose from; repeat (none: free answers)."),
    ] = None,
    sample: Annotated[int, typer.Option("--sample", help="How many agents to ask.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample.")] = 0,
    out: Out = Path("runs"),
    llm: opt.LLMFlags = opt.NO_FLAGS,
) -> None:
    """Ask a new question of a seeded sample of a run's agents, after the run, and print the
    answer distribution (stored as survey interviews; never counted in the forecast)."""

    async def ask(interviewer: Any) -> Any:
        return await interviewer.survey(question, option, sample=sample, seed=seed)

    result = _with_interviewer(run_ref, out, llm, ask)
    console.print(
        f"asked {result.asked} agents, {result.answered} answered, {result.failed} failed",
        highlight=False,
    )
    for answer, count in result.counts.items():
        console.print(f"  {escape(answer)}: {count} ({result.share(answer):.0%})", highlight=False)
