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

import numpy as np
import yaml
from pydantic import BaseModel

from personahub.llm import LLMClient
from sandbox.forecast.scenario import ForecastScenario
from sandbox.rundb import RunDatabase
from sandbox.runner import RunError, RunOptions, RunOutcome, run_folder, start_run
from sandbox.validation import baselines
from sandbox.validation.answers import respondent_distributions
from sandbox.validation.data import load_frame
from sandbox.validation.respondents import (
    Respondent,
    from_frame,
    group_words,
    persona_rows,
    sample_from_counts,
)
from sandbox.validation.scores import Scores, score
from sandbox.validation.spec import SurveyQuestion, SurveySpec, code_text, load_spec

AnswerMode = Literal["sample", "logprobs", "verbalized"]
MIN_TRAIN = 20
"""Fewest training respondents left beside the held-out ones (the baselines are fitted on them)."""
CALIBRATION_JSON = "calibration.json"
ALL = "all"
"""The group column of the overall rows."""


class ScoreRow(BaseModel):
    """One method's scores on one question, overall (``group == "all"``) or in one group."""

    question: str
    group: str
    value: str
    method: str
    scores: Scores


class QuestionInfo(BaseModel):
    ask: str
    options: list[str]
    ordinal: bool


class CalibrationResult(BaseModel):
    """What a calibration found; saved as ``calibration.json`` in the run folder."""

    spec: str
    source: str
    kind: str
    run_id: str
    backend: str
    model: str
    answer_mode: str
    respondents: int
    train: int
    unanswered: dict[str, int]
    questions: dict[str, QuestionInfo]
    groups: list[str]
    rows: list[ScoreRow]

    @property
    def embedded(self) -> bool:
        """Whether the run used the embedded model (plumbing, not a forecaster)."""
        return self.backend == "local"


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


def supports_answer_mode() -> bool:
    """Whether forecast scenarios have ``answer_mode`` (modes other than ``sample``)."""
    return "answer_mode" in ForecastScenario.model_fields


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
        if not supports_answer_mode():
            raise RunError(
                f"--answer-mode {answer_mode}: this version has only the `sample` answer mode"
            )
        data["answer_mode"] = answer_mode
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


def save(result: CalibrationResult, run_dir: Path) -> Path:
    path = run_dir / CALIBRATION_JSON
    path.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return path


def load_result(run_dir: Path) -> CalibrationResult:
    return CalibrationResult.model_validate_json((run_dir / CALIBRATION_JSON).read_text())


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
    result = score_run(spec, spec_path.parent, database, run.id)
    folder = run_folder(database, run.id, out)
    save(result, folder)
    return result, folder


def score_run(spec: SurveySpec, base_dir: Path, database: str, run_id: str) -> CalibrationResult:
    """Score a finished calibration run against the real answers and the baselines."""
    db = RunDatabase(database, must_exist=True)
    try:
        run = db.run(run_id)
        agents = db.agents(run_id)
    finally:
        db.close()
    assert run is not None
    answer_mode = str(yaml.safe_load(run.scenario_yaml).get("answer_mode", "sample"))
    simulated = respondent_distributions(database, run_id)
    agent_of = {a.persona_id: a.agent_id for a in agents}
    frame = load_frame(spec.data.source, base_dir)
    if spec.data.kind == "counts":
        held = [Respondent(a.persona_id, dict(a.attributes)) for a in agents]
        train: list[Respondent] = []
    else:
        everyone = [r for r in from_frame(spec, frame) if r.answers]
        held = [r for r in everyone if r.id in agent_of]
        train = [r for r in everyone if r.id not in agent_of]
    rows: list[ScoreRow] = []
    unanswered: dict[str, int] = {}
    for q in spec.questions:
        asked = [r for r in held if q.id in r.answers] if train else held
        llm, missing = _simulated(q, asked, simulated, agent_of)
        unanswered[q.id] = missing
        if spec.data.kind == "counts":
            rows += _count_rows(spec, q, frame, asked, llm)
        else:
            rows += _individual_rows(spec, q, asked, train, llm)
    return CalibrationResult(
        spec=spec.name,
        source=spec.data.source,
        kind=spec.data.kind,
        run_id=run_id,
        backend=run.backend,
        model=run.model,
        answer_mode=answer_mode,
        respondents=len(held),
        train=len(train),
        unanswered=unanswered,
        questions={
            q.id: QuestionInfo(ask=q.ask, options=list(q.scored.values()), ordinal=q.ordinal)
            for q in spec.questions
        },
        groups=spec.groups,
        rows=rows,
    )


def _simulated(
    q: SurveyQuestion,
    asked: list[Respondent],
    simulated: dict[int, dict[str, dict[str, float]]],
    agent_of: dict[str, int],
) -> tuple[np.ndarray, int]:
    """The simulation's distribution per respondent; one without a valid answer (a failed
    request) gets the uniform guess, so every method is scored on the same respondents."""
    labels = list(q.scored.values())
    out = np.full((len(asked), len(labels)), 1.0 / len(labels))
    missing = 0
    for i, r in enumerate(asked):
        answer = simulated.get(agent_of[r.id], {}).get(q.id, {})
        row = np.array([answer.get(label, 0.0) for label in labels])
        if row.sum() > 0:
            out[i] = row / row.sum()
        else:
            missing += 1
    return out, missing


def _subsets(spec: SurveySpec, people: list[Respondent]) -> list[tuple[str, str, np.ndarray]]:
    """(group column, value, respondent positions): everyone first, then each group."""
    out = [(ALL, "", np.arange(len(people)))]
    for column in spec.groups:
        values = sorted({r.group(column) for r in people})
        for value in values:
            where = np.array([i for i, r in enumerate(people) if r.group(column) == value])
            out.append((column, value, where))
    return out


def _individual_rows(
    spec: SurveySpec,
    q: SurveyQuestion,
    asked: list[Respondent],
    train: list[Respondent],
    llm: np.ndarray,
) -> list[ScoreRow]:
    codes = list(q.scored)
    k = len(codes)
    fitted = [r for r in train if q.id in r.answers]
    y_train = np.array([codes.index(r.answers[q.id]) for r in fitted])
    w_train = np.array([r.weight for r in fitted])
    actual = np.array([codes.index(r.answers[q.id]) for r in asked])
    weights = np.array([r.weight for r in asked])
    columns = [d.column for d in spec.demographics]
    methods = {
        "uniform": baselines.uniform(len(asked), k),
        "overall": baselines.overall(y_train, w_train, len(asked), k),
        "logistic": baselines.logistic(
            baselines.features(fitted, columns),
            y_train,
            w_train,
            baselines.features(asked, columns),
            k,
            spec.seed,
        ),
        "llm": llm,
    }
    return [
        ScoreRow(
            question=q.id,
            group=column,
            value=value,
            method=name,
            scores=score(probs[where], weights[where], q.ordinal, actual=actual[where]),
        )
        for column, value, where in _subsets(spec, asked)
        for name, probs in methods.items()
    ]


def _count_rows(
    spec: SurveySpec, q: SurveyQuestion, counts: Any, people: list[Respondent], llm: np.ndarray
) -> list[ScoreRow]:
    """Scores against a counts table: the real shares are the table's, per group."""
    codes = list(q.scored)
    rows = counts[counts["question"].astype(str) == q.answer_column]
    demographic = {d.column: d for d in spec.demographics}

    def real(column: str | None, value: str | None) -> np.ndarray:
        # Every attribute splits the same people: the overall shares sum one attribute's rows.
        attribute = column or spec.demographics[0].column
        mine = rows[rows["group_attribute"].astype(str) == attribute]
        shares = np.zeros(len(codes))
        for group, option, count in zip(
            mine["group_value"], mine["option"], mine["count"], strict=True
        ):
            in_group = value is None or group_words(demographic[attribute], group) == value
            if in_group and code_text(option) in codes:
                shares[codes.index(code_text(option))] += float(count)
        return shares / shares.sum() if shares.sum() > 0 else shares

    everyone = real(None, None)
    out = []
    for column, value, where in _subsets(spec, people):
        truth = everyone if column == ALL else real(column, value)
        if truth.sum() == 0:
            continue  # a drawn group the table has no answers for
        n = len(where)
        weights = np.ones(n)
        methods = {
            "uniform": baselines.uniform(n, len(codes)),
            "overall": np.tile(everyone, (n, 1)),
            "llm": llm[where],
        }
        out += [
            ScoreRow(
                question=q.id,
                group=column,
                value=value,
                method=name,
                scores=score(probs, weights, q.ordinal, real=truth),
            )
            for name, probs in methods.items()
        ]
    return out
