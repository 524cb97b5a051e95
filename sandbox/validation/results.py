"""A calibration's result: every method's scores against the real answers, per question,
overall and per group, computed from a finished calibration run and the spec's data.

The run's agents are the held-out respondents (persona id = respondent id); everyone else who
answered is the training split of the baselines. Saved as ``calibration.json`` in the run
folder (:func:`save`), so re-reporting never recomputes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel

from sandbox.rundb import RunDatabase
from sandbox.validation import baselines
from sandbox.validation.answers import respondent_distributions
from sandbox.validation.data import load_frame
from sandbox.validation.respondents import Respondent, from_frame, group_words
from sandbox.validation.scores import Scores, score
from sandbox.validation.spec import SurveyQuestion, SurveySpec, code_text

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


def save(result: CalibrationResult, run_dir: Path) -> Path:
    path = run_dir / CALIBRATION_JSON
    path.write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return path


def load_result(run_dir: Path) -> CalibrationResult:
    return CalibrationResult.model_validate_json((run_dir / CALIBRATION_JSON).read_text())


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
