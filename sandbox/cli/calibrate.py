"""``sandbox calibrate``: score persona answers against a real survey (docs/validation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from personahub.cli import llm_options as opt
from personahub.cli.common import console, fail
from sandbox.cli.common import Out, Quiet, fail_input, input_errors


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to the ``sandbox`` app."""
    app.command()(opt.llm_flags()(calibrate))


def calibrate(
    spec: Annotated[Path, typer.Argument(help="Survey spec YAML (scenarios/validation/).")],
    respondents: Annotated[
        int | None,
        typer.Option("--respondents", help="Held-out respondents to ask (default: the spec's)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the split and the run.")
    ] = None,
    answer_mode: Annotated[
        str, typer.Option("--answer-mode", help="sample, logprobs or verbalized.")
    ] = "sample",
    run: Annotated[
        str | None,
        typer.Option(
            "--run", help="Score this existing calibration run (e.g. after `sandbox resume`)."
        ),
    ] = None,
    out: Out = Path("runs"),
    llm: opt.LLMFlags = opt.NO_FLAGS,
    quiet: Quiet = False,
) -> None:
    """Ask held-out real respondents' personas the survey's questions, then score the answers
    against theirs and against baselines (uniform, overall shares, logistic regression);
    writes calibration.json and calibration.html beside the run's report."""
    # Imported here: they bring pandas, scikit-learn and the run machinery.
    from sandbox.report import write_report
    from sandbox.run_folders import locate_run
    from sandbox.validation.calibrate import (
        AnswerMode,
        CalibrationOptions,
        calibrate,
        score_existing,
    )
    from sandbox.validation.data import DataError
    from sandbox.validation.report import print_table, write_html

    if answer_mode not in ("sample", "logprobs", "verbalized"):
        fail(f"--answer-mode {answer_mode}: expected sample, logprobs or verbalized")
    try:
        if run is not None:
            result, folder = score_existing(spec, locate_run(run, out), out)
        else:
            mode = cast(AnswerMode, answer_mode)  # checked above
            options = CalibrationOptions(respondents, seed, mode, out)
            result, outcome = calibrate(
                spec, options, llm.overrides(), llm.config, show_progress=not quiet
            )
            folder = outcome.run_dir
            write_report(outcome.database, outcome.run_id, folder)
    except input_errors(DataError) as exc:
        fail_input(exc)
    except KeyboardInterrupt:
        fail(
            "interrupted; continue with `sandbox resume <run folder>`, then score it with "
            f"`sandbox calibrate {spec} --run <run folder>`",
            130,
        )
    print_table(result, console)
    console.print(f"calibration: {write_html(result, folder)}", highlight=False, soft_wrap=True)
