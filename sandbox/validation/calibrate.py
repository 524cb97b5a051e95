"""``sandbox calibrate``: ask held-out real respondents' personas the survey's questions through
the normal run machinery, then score the answers against theirs and against the baselines.

A calibration is an ordinary forecast run (run database, response cache, resume, budget,
progress bar all apply): one step, one broadcast event (the spec's ``context``), every agent
active, no word of mouth, one choice question per survey question, and a population file of the
held-out respondents' personas. The split is seeded; the run's agents are the held-out
respondents (persona id = respondent id), so an interrupted run resumed with
``sandbox resume`` is scored with :func:`score_run` without the seed.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from personahub.llm import LLMClient
from sandbox.run_folders import RunError, run_folder
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import RunOutcome, start_run
from sandbox.validation.data import load_frame
from sandbox.validation.respondents import (
    Respondent,
    from_frame,
    persona_rows,
    sample_from_counts,
)
from sandbox.validation.results import CalibrationResult, save, score_run
from sandbox.validation.spec import SurveySpec, load_spec

AnswerMode = Literal["sample", "logprobs", "verbalized"]
MIN_TRAIN = 20
"""Fewest training respondents left beside the held-out ones (the baselines are fitted on them)."""


@dataclass(frozen=True, slots=True)
class CalibrationOptions:
    """Command-line choices of a calibration.

    Attributes:
        respondents: Held-out respondents to ask (default: the spec's ``respondents``).
        seed: Seed of the split and the run (default: the spec's ``seed``).
        answer_mode: How each agent answers (see the forecast scenario's ``answer_mode``).
        out: Folder that holds run folders.
    """

    respondents: int | None = None
    seed: int | None = None
    answer_mode: AnswerMode = "sample"
    out: Path = Path("runs")


def split(
    spec: SurveySpec, everyone: list[Respondent], n: int, seed: int
) -> tuple[list[Respondent], list[Respondent]]:
    """``n`` held-out respondents and the training rest, among those who answered anything.

    Raises:
        RunError: Too few respondents to hold ``n`` out and still fit the baselines.
    """
    answered = [r for r in everyone if r.answers]
    if n > len(answered) - MIN_TRAIN:
        raise RunError(
            f"--respondents {n}: {spec.name} has {len(answered):,} respondents with answers; "
            f"hold out at most {max(0, len(answered) - MIN_TRAIN):,} (keeping {MIN_TRAIN} "
            "to fit the baselines)"
        )
    order = answered[:]
    random.Random(seed).shuffle(order)
    return order[:n], order[n:]


def scenario_data(spec: SurveySpec, seed: int, answer_mode: AnswerMode, n: int) -> dict[str, Any]:
    """The forecast scenario that asks the survey (population: ``respondents.jsonl``)."""
    data: dict[str, Any] = {
        "name": spec.name,
        "description": f"Calibration against {spec.data.source}: {n:,} respondents.",
        "seed": seed,
        "population": {"source": "respondents.jsonl"},
        # No relationships: each respondent answers alone, as in the survey.
        "graph": {"type": "persona_edges", "connect_isolated": False},
        "steps": 1,
        "timeline": [
            {
                "step": 0,
                "channel": "broadcast",
                "source": "a survey interviewer",
                "content": spec.context,
            }
        ],
        "interaction": {"word_of_mouth": False, "activation": 1.0, "posts_seen": 0},
        "questions": [
            {"id": q.id, "type": "choice", "ask": q.ask, "options": list(q.scored.values())}
            for q in spec.questions
        ],
        "segments": spec.groups,
        "llm": spec.llm.model_dump(exclude_none=True),
    }
    if answer_mode != "sample":
        data["answer_mode"] = answer_mode
        if answer_mode == "logprobs":
            # A survey: each respondent's option requests alone, no reaction in its own words
            data["interaction"]["reactions"] = False
    return data


def calibrate(
    spec_path: Path,
    options: CalibrationOptions,
    llm_cli: dict[str, Any],
    config_file: Path | None = None,
    show_progress: bool = True,
    llm: LLMClient | None = None,
) -> tuple[CalibrationResult, RunOutcome]:
    """Run a calibration to the end, score it and save ``calibration.json`` in its run folder.

    Raises:
        ScenarioError, DataError, RunError and the run's input errors: one line each.
    """
    if options.respondents is not None and options.respondents < 1:
        raise RunError(f"--respondents {options.respondents}: expected 1 or more")
    spec = load_spec(spec_path)
    seed = spec.seed if options.seed is None else options.seed
    n = options.respondents or spec.respondents
    frame = load_frame(spec.data.source, spec_path.parent)
    if spec.data.kind == "counts":
        held = sample_from_counts(spec, frame, n, seed)
    else:
        held, _ = split(spec, from_frame(spec, frame), n, seed)
    scenario = scenario_data(spec, seed, options.answer_mode, len(held))
    with tempfile.TemporaryDirectory(prefix="sandbox-calibrate-") as scratch:
        folder = Path(scratch)
        scenario_path = folder / "scenario.yaml"
        scenario_path.write_text(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))
        with (folder / "respondents.jsonl").open("w", encoding="utf-8") as out:
            for row in persona_rows(spec, held):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        run_options = RunOptions(out=options.out)
        outcome = start_run(scenario_path, run_options, llm_cli, config_file, show_progress, llm)
        # The generated files, kept with the run for whoever wants to see what was asked.
        shutil.copytree(folder, outcome.run_dir / "calibration", dirs_exist_ok=True)
    result = score_run(spec, spec_path.parent, outcome.database, outcome.run_id)
    save(result, outcome.run_dir)
    return result, outcome


def score_existing(
    spec_path: Path, database: str, out: Path = Path("runs")
) -> tuple[CalibrationResult, Path]:
    """Score a calibration run of ``spec_path`` that already exists (e.g. after
    ``sandbox resume``), save ``calibration.json`` and return it with the run folder."""
    spec = load_spec(spec_path)
    db = RunDatabase(database, must_exist=True)
    try:
        run = db.run()
    finally:
        db.close()
    if run is None:
        raise RunError(f"{database} holds no run")
    if run.name != spec.name:
        raise RunError(f"{database} is a run of {run.name!r}, not of the spec {spec.name!r}")
    if run.status != "completed":
        raise RunError(
            f"{database}: the run is {run.status}; finish it with `sandbox resume` first"
        )
    result = score_run(spec, spec_path.parent, database, run.id)
    folder = run_folder(database, run.id, out)
    save(result, folder)
    return result, folder
