"""Resolution: a forecast run's questions scored against what really happened.

``sandbox resolve`` records a question's real outcome (shares given on the command line, or a
CSV column of real answers) in the run database (:class:`~sandbox.rundb.OutcomeRow`), with the
run's forecast as it stood; the report and ``sandbox track`` score the one against the other:

* total variation distance ``TV = 1/2 sum |p - q|`` (0 = the same distribution, 1 = disjoint);
* the SimBench score ``100 * (1 - TV / TV_uniform)`` (arXiv 2510.17516), where ``TV_uniform`` is
  the distance of a uniform guess from the outcome: 100 = exact, 0 = no better than uniform,
  below 0 = worse than it;
* for likert questions ``1 - W1 / (k - 1)``: one minus the earth mover's distance between the
  two distributions over the k ordered points, as a share of its largest possible value;
* the absolute error of the mean (likert and number questions).
"""

from __future__ import annotations

import csv
import getpass
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from rich.table import Table

from sandbox.forecast.analysis import build_forecast
from sandbox.forecast.results import Forecast
from sandbox.forecast.scenario import (
    ChoiceQuestion,
    ForecastScenario,
    LikertQuestion,
    NumberQuestion,
    Question,
)
from sandbox.modes import mode_of_run
from sandbox.rundb import OutcomeRow, RunDatabase, RunRow

SHARE_SUM_TOLERANCE = 0.01
"""How far given shares may sum from 1 (rounding); they are then scaled to sum to 1."""


class ResolutionError(ValueError):
    """An outcome that cannot be recorded; one line (with file:line:field for a CSV)."""


# lead: unify with sandbox/validation/scores.py at merge
def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance of two distributions over the same options."""
    return 0.5 * float(np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


# lead: unify with sandbox/validation/scores.py at merge
def simbench_score(predicted: np.ndarray, actual: np.ndarray) -> float | None:
    """``100 * (1 - TV(predicted, actual) / TV(uniform, actual))``; None when the outcome is
    itself uniform (no guess can beat the uniform one)."""
    actual = np.asarray(actual, float)
    baseline = total_variation(np.full(len(actual), 1 / len(actual)), actual)
    if baseline <= 1e-12:
        return None
    return 100.0 * (1.0 - total_variation(predicted, actual) / baseline)


# lead: unify with sandbox/validation/scores.py at merge
def wasserstein_score(predicted: np.ndarray, actual: np.ndarray) -> float:
    """``1 - W1 / (k - 1)`` for distributions over k ordered, evenly spaced points."""
    gap = np.abs(np.cumsum(predicted) - np.cumsum(actual))[:-1].sum()
    return 1.0 - float(gap) / (len(actual) - 1)


@dataclass(frozen=True, slots=True)
class Scores:
    """A forecast against its outcome; a score that does not apply to the question is None."""

    tv: float | None = None
    simbench: float | None = None
    w1_score: float | None = None
    mean_error: float | None = None


def keys_of(question: Question) -> list[str]:
    """The keys of a question's outcome: its options, its scale points, or ``mean``."""
    if isinstance(question, ChoiceQuestion):
        return list(question.options)
    if isinstance(question, LikertQuestion):
        return [str(i) for i in range(1, question.scale + 1)]
    if isinstance(question, NumberQuestion):
        return ["mean"]
    raise ResolutionError(f"question {question.id!r} is a text question: it cannot be scored")


def _mean_of(distribution: np.ndarray) -> float:
    return float(distribution @ np.arange(1, len(distribution) + 1))


def score(question: Question, predicted: dict[str, float], actual: dict[str, float]) -> Scores:
    """Score a forecast against its outcome (both as recorded: see ``OutcomeRow``)."""
    keys = keys_of(question)
    if isinstance(question, NumberQuestion):
        return Scores(mean_error=abs(predicted["mean"] - actual["mean"]))
    p = np.array([predicted.get(k, 0.0) for k in keys])
    q = np.array([actual.get(k, 0.0) for k in keys])
    if not isinstance(question, LikertQuestion):
        return Scores(total_variation(p, q), simbench_score(p, q))
    return Scores(
        total_variation(p, q),
        simbench_score(p, q),
        wasserstein_score(p, q),
        abs(_mean_of(p) - _mean_of(q)),
    )


def parse_shares(text: str, question: Question) -> dict[str, float]:
    """``--actual "yes=0.41,no=0.59"`` as the outcome of ``question`` (``mean=X`` for a
    number question). Keys left out are 0; shares are scaled to sum to exactly 1.

    Raises:
        ResolutionError: Not ``key=value`` pairs, an unknown key, or shares not summing to 1.
    """
    keys = keys_of(question)
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or key not in keys:
            raise ResolutionError(
                f"--actual: expected {' , '.join(f'{k}=...' for k in keys)}, found {part!r}"
            )
        try:
            out[key] = float(value)
        except ValueError:
            raise ResolutionError(f"--actual: {key}: expected a number, found {value!r}") from None
        if not math.isfinite(out[key]) or (key != "mean" and not 0 <= out[key] <= 1):
            raise ResolutionError(f"--actual: {key}: expected a share from 0 to 1, found {value}")
    if isinstance(question, NumberQuestion):
        if "mean" not in out:
            raise ResolutionError("--actual: expected mean=X for a number question")
        return out
    total = sum(out.values())
    if abs(total - 1) > SHARE_SUM_TOLERANCE:
        raise ResolutionError(f"--actual: expected shares that sum to 1, found {total:.3g}")
    return {k: out.get(k, 0.0) / total for k in keys}


def read_answers(
    path: Path, question: Question, column: str | None
) -> tuple[dict[str, float], int]:
    """The outcome of ``question`` from a CSV of real answers, one respondent a row.

    Args:
        path: The CSV file (with a header row).
        question: The run's question; answers must be its options, scale points or numbers.
        column: The answer column; the question's id, or the only column, when None.

    Returns:
        The distribution of the answers (``{"mean": x}`` for a number question) and how many
        answered (blank cells are skipped).

    Raises:
        ResolutionError: ``file:line: field: problem`` for a missing file or column or a bad
            answer.
    """
    keys = keys_of(question)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ResolutionError(f"{path}: cannot read the answers: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ResolutionError(f"{path}: not a text file in UTF-8") from None
    if not rows:
        raise ResolutionError(f"{path}:1: expected a header row, found an empty file")
    header = [h.strip() for h in rows[0]]
    name = column or (question.id if question.id in header or len(header) != 1 else header[0])
    if name not in header:
        hint = "" if column else "; name it with --column"
        raise ResolutionError(
            f"{path}:1: {name}: no such column (columns: {', '.join(header)}){hint}"
        )
    at = header.index(name)
    answers: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        cell = row[at].strip() if at < len(row) else ""
        if not cell:
            continue
        if isinstance(question, NumberQuestion):
            try:
                float(cell)
            except ValueError:
                raise ResolutionError(
                    f"{path}:{line}: {name}: expected a number, found {cell!r}"
                ) from None
        elif cell not in keys:
            raise ResolutionError(
                f"{path}:{line}: {name}: expected one of {', '.join(keys)}, found {cell!r}"
            )
        answers.append(cell)
    if not answers:
        raise ResolutionError(f"{path}: {name}: no answers in the column")
    if isinstance(question, NumberQuestion):
        return {"mean": float(np.mean([float(a) for a in answers]))}, len(answers)
    return {k: answers.count(k) / len(answers) for k in keys}, len(answers)


def outcome_row(
    run_id: str,
    question: Question,
    predicted: dict[str, float | None],
    actual: dict[str, float],
    *,
    n: int | None,
    source: str,
    who: str | None = None,
) -> OutcomeRow:
    """The row ``sandbox resolve`` stores: the outcome beside the forecast it scores.

    Raises:
        ResolutionError: The forecast has no value for the question (nobody answered it).
    """
    if any(v is None for v in predicted.values()) or not predicted:
        raise ResolutionError(f"question {question.id!r}: the run has no answers to score")
    return OutcomeRow(
        run_id=run_id,
        question=question.id,
        actual=actual,
        predicted={k: float(v) for k, v in predicted.items() if v is not None},
        n=n,
        source=source,
        resolved_by=who or _user(),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a container
        return "unknown"


def forecast_distribution(forecast: Forecast, question: Question) -> dict[str, float | None]:
    """What the run forecast for ``question``, keyed like its outcome (None: nobody answered)."""
    found = forecast.question(question.id)
    if isinstance(question, LikertQuestion):
        return {k: found.distribution.get(k) for k in keys_of(question)}
    return {k: found.final[k].value for k in keys_of(question)}


@dataclass(frozen=True, slots=True)
class Resolved:
    """A resolved question of a run: its recorded outcome and the forecast's scores."""

    run_id: str
    question: Question
    outcome: OutcomeRow
    scores: Scores


def resolved(db: RunDatabase, run: RunRow) -> list[Resolved]:
    """The run's resolved questions with their scores (none for a run of another mode)."""
    outcomes = db.outcomes(run.id)
    if not outcomes or mode_of_run(run).name != "forecast":
        return []
    scenario = ForecastScenario.model_validate(yaml.safe_load(run.scenario_yaml))
    questions = {q.id: q for q in scenario.questions}
    return [
        Resolved(
            run.id, questions[o.question], o, score(questions[o.question], o.predicted, o.actual)
        )
        for o in outcomes
        if o.question in questions
    ]


def resolve(
    db: RunDatabase,
    run_id: str | None,
    question_id: str,
    *,
    shares: str | None = None,
    answers: Path | None = None,
    column: str | None = None,
    who: str | None = None,
) -> Resolved:
    """Record the real outcome of one question of a forecast run and score the forecast.

    Args:
        db: The run database.
        run_id: The run; the latest in the database when None.
        question_id: The question's id.
        shares: The outcome as ``option=share,...`` (or ``mean=x``).
        answers: Or a CSV of real answers, one respondent a row.
        column: The CSV's answer column (default: the question id, or the only column).
        who: Who records it (default: the login name).

    Raises:
        ResolutionError: No such run or question, not a forecast run, a bad outcome.
    """
    run = db.run(run_id)
    if run is None:
        raise ResolutionError(f"no run {run_id!r} in {db.target}" if run_id else "no run found")
    if mode_of_run(run).name != "forecast":
        raise ResolutionError(f"run {run.id} is not a forecast run: it has no questions to resolve")
    forecast = build_forecast(db, run.id)
    ids = [q.id for q in forecast.scenario.questions]
    if question_id not in ids:
        raise ResolutionError(
            f"--question: expected one of {', '.join(ids)}, found {question_id!r}"
        )
    question = forecast.scenario.question(question_id)
    if (shares is None) == (answers is None):
        raise ResolutionError("give the outcome as --actual SHARES or --actual-csv FILE (one)")
    if shares is not None:
        actual, n, source = parse_shares(shares, question), None, f"--actual {shares}"
    else:
        assert answers is not None
        actual, n = read_answers(answers, question, column)
        source = f"{answers.resolve()}" + (f" (column {column})" if column else "")
    row = outcome_row(
        run.id,
        question,
        forecast_distribution(forecast, question),
        actual,
        n=n,
        source=source,
        who=who,
    )
    db.resolve(row)
    return Resolved(run.id, question, row, score(question, row.predicted, row.actual))


COLUMNS = ("run", "question", "n", "TV", "SimBench", "1-W1/(k-1)", "|mean error|", "resolved")


def cells(item: Resolved) -> list[str]:
    """One resolved question as the table and the CSV show it."""
    s, o = item.scores, item.outcome

    def fmt(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    return [
        item.run_id,
        item.question.id,
        "" if o.n is None else str(o.n),
        fmt(s.tv, 3),
        fmt(s.simbench, 1),
        fmt(s.w1_score, 3),
        fmt(s.mean_error, 2),
        f"{o.resolved_at:%Y-%m-%d %H:%M} by {o.resolved_by}",
    ]


def scores_table(items: list[Resolved], title: str) -> Table:
    """Resolved questions and their scores as a Rich table."""
    table = Table(title=title, title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("run", "question") else "right")
    for item in items:
        table.add_row(*cells(item))
    return table
