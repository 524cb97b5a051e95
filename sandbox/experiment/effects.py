"""Effects: treatment - control differences per question, with paired bootstrap intervals.

The runs of two conditions are paired by seed (replicate ``s`` of the treatment with replicate
``s`` of the control) and, within a seed, agent by agent (the same persona saw both arms). For
each question and each option (a choice question's share) or its mean:

* the effect is the mean over seeds of (treatment - control) among the agents who answered;
* its 95% interval is a paired percentile bootstrap: agents are resampled within each seed,
  the same draw for both arms, and the seeds' differences averaged per resample;
* the across-seed spread is the standard deviation of the seeds' differences;
* the p-value is a paired permutation test: within each agent the two arms' answers are
  swapped at random (the null: the arm makes no difference);
* with several comparisons the p-values are also Holm-adjusted, and the count is reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from sandbox.forecast.analysis import final_answers, segment_value
from sandbox.forecast.scenario import ChoiceQuestion, ForecastScenario
from sandbox.forecast.stats import resample_weights
from sandbox.rundb import RunDatabase

N_BOOT = 2000
N_PERM = 2000


@dataclass(frozen=True, slots=True)
class RunAnswers:
    """One run's final answers, columns in the order of ``persona_ids``."""

    run_id: str
    scenario: ForecastScenario
    persona_ids: tuple[str, ...]
    segments: dict[str, tuple[str, ...]]  # segment key -> value per agent
    values: dict[str, np.ndarray]

    @classmethod
    def read(cls, db: RunDatabase, run_id: str) -> RunAnswers:
        scenario, agents, values = final_answers(db, run_id)
        segments = {
            key: tuple(segment_value(agent, key) for agent in agents) for key in scenario.segments
        }
        return cls(run_id, scenario, tuple(a.persona_id for a in agents), segments, values)


@dataclass(frozen=True, slots=True)
class Effect:
    """One treatment - control difference.

    Attributes:
        question: The question id.
        label: The option (a share) or ``mean``.
        percent: A difference of shares (shown in percentage points).
        control: The control condition's label; ``treatment`` likewise.
        control_value: The control's mean over seeds; ``treatment_value`` likewise.
        diff: The effect; ``low``/``high`` its 95% interval.
        seed_diffs: The effect in each seed.
        spread: Standard deviation of ``seed_diffs`` (0 with one seed).
        p: Permutation p-value; ``p_holm`` Holm-adjusted over all comparisons.
        segment: ``key=value`` for a per-segment effect, "" overall.
        n: Paired agents (over all seeds).
    """

    question: str
    label: str
    percent: bool
    control: str
    treatment: str
    control_value: float
    treatment_value: float
    diff: float
    low: float
    high: float
    seed_diffs: tuple[float, ...]
    spread: float
    p: float
    n: int
    segment: str = ""
    p_holm: float | None = None

    @property
    def name(self) -> str:
        return (
            f"{self.question}={self.label}" if self.label != "mean" else f"{self.question} (mean)"
        )

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def _weighted_mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row of ``w`` (resample weights over agents), the weighted mean of ``x`` ignoring
    NaN; NaN where no weight falls on an answer."""
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (w @ filled) / (w @ valid.astype(float))
    return out


def _pairs(control: RunAnswers, treatment: RunAnswers) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the personas in both runs, in the control's order."""
    where = {pid: j for j, pid in enumerate(treatment.persona_ids)}
    both = [(i, where[pid]) for i, pid in enumerate(control.persona_ids) if pid in where]
    return np.array([i for i, _ in both], int), np.array([j for _, j in both], int)


def _series(
    question: str, values: np.ndarray, scenario: ForecastScenario
) -> list[tuple[str, np.ndarray, bool]]:
    q = scenario.question(question)
    if isinstance(q, ChoiceQuestion):
        return [
            (option, np.where(np.isnan(values), np.nan, (values == k).astype(float)), True)
            for k, option in enumerate(q.options)
        ]
    return [("mean", values, False)]


def compare(
    control: Sequence[RunAnswers],
    treatment: Sequence[RunAnswers],
    control_label: str,
    treatment_label: str,
    seed: int = 0,
    segments: bool = True,
) -> list[Effect]:
    """Every effect of ``treatment`` over ``control`` (runs paired by position = seed).

    Raises:
        ValueError: The runs asked different questions, or share no personas.
    """
    pairs = list(zip(control, treatment, strict=False))
    if not pairs:
        return []
    questions = same_questions([run.scenario for run in [*control, *treatment]])
    columns = [_pairs(c, t) for c, t in pairs]
    if not all(len(ci) for ci, _ in columns):
        raise ValueError("the runs share no personas: effects need the same population")
    groups: list[tuple[str, list[np.ndarray]]] = [("", [np.arange(len(ci)) for ci, _ in columns])]
    if segments:
        for key in pairs[0][0].scenario.segments:
            found: dict[str, list[list[int]]] = {}
            for s, (c, _) in enumerate(pairs):
                ci = columns[s][0]
                for k, col in enumerate(ci):
                    found.setdefault(c.segments[key][col], [[] for _ in pairs])[s].append(k)
            for value in sorted(found):
                groups.append((f"{key}={value}", [np.array(m, int) for m in found[value]]))
    rng = np.random.default_rng(seed)
    out = []
    for segment, members in groups:
        sizes = [len(m) for m in members]
        if not sum(sizes):
            continue
        weights = [resample_weights(rng, N_BOOT, n) for n in sizes]
        swaps = [rng.random((N_PERM, n)) < 0.5 for n in sizes]
        for qid in questions:
            per_seed = []
            for s, (c, t) in enumerate(pairs):
                ci, ti = columns[s]
                c_series = _series(qid, c.values[qid][ci][members[s]], c.scenario)
                t_series = _series(qid, t.values[qid][ti][members[s]], t.scenario)
                per_seed.append(list(zip(c_series, t_series, strict=True)))
            for k, ((label, _, percent), _) in enumerate(per_seed[0]):
                arrays = [(seed_series[k][0][1], seed_series[k][1][1]) for seed_series in per_seed]
                effect = _effect(arrays, weights, swaps)
                if effect is None:
                    continue
                c_value, t_value, diff, low, high, seed_diffs, p = effect
                out.append(
                    Effect(
                        qid,
                        label,
                        percent,
                        control_label,
                        treatment_label,
                        c_value,
                        t_value,
                        diff,
                        low,
                        high,
                        seed_diffs,
                        float(np.std(seed_diffs)),
                        p,
                        sum(sizes),
                        segment,
                    )
                )
    return out


def _effect(
    arrays: list[tuple[np.ndarray, np.ndarray]],
    weights: list[np.ndarray],
    swaps: list[np.ndarray],
) -> tuple[float, float, float, float, float, tuple[float, ...], float] | None:
    """Point, bootstrap interval, per-seed differences and permutation p of one series."""
    c_means, t_means, boots, perms = [], [], [], []
    for (c, t), w, swap in zip(arrays, weights, swaps, strict=True):
        if np.isnan(c).all() or np.isnan(t).all():
            continue
        c_means.append(float(np.nanmean(c)))
        t_means.append(float(np.nanmean(t)))
        boots.append(_weighted_mean(t, w) - _weighted_mean(c, w))
        t_perm, c_perm = np.where(swap, c, t), np.where(swap, t, c)
        with _quiet():
            perms.append(np.nanmean(t_perm, axis=1) - np.nanmean(c_perm, axis=1))
    if not c_means:
        return None
    seed_diffs = tuple(t - c for t, c in zip(t_means, c_means, strict=True))
    diff = float(np.mean(seed_diffs))
    with _quiet():
        boot = np.nanmean(np.vstack(boots), axis=0)
        perm = np.nanmean(np.vstack(perms), axis=0)
    low, high = (float(v) for v in np.nanpercentile(boot, [2.5, 97.5]))
    extreme = int(np.sum(np.abs(perm) >= abs(diff) - 1e-12))
    p = (1 + extreme) / (1 + len(perm))
    return float(np.mean(c_means)), float(np.mean(t_means)), diff, low, high, seed_diffs, p


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's mean-of-empty warnings (an all-NaN resample is NaN, and skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def holm(effects: list[Effect]) -> list[Effect]:
    """``effects`` with Holm-adjusted p-values over the overall (not per-segment) ones."""
    overall = sorted((e.p, i) for i, e in enumerate(effects) if not e.segment)
    m = len(overall)
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, (p, i) in enumerate(overall):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return [replace(e, p_holm=adjusted.get(i)) for i, e in enumerate(effects)]


def same_questions(scenarios: Sequence[ForecastScenario]) -> list[str]:
    """The ids of the questions (not text) that every scenario asks alike (type, options).

    Raises:
        ValueError: They differ (one line naming the first difference).
    """
    first = scenarios[0]

    def shape(s: ForecastScenario) -> list[tuple[str, str, tuple[str, ...]]]:
        return [
            (q.id, q.type, tuple(q.options) if isinstance(q, ChoiceQuestion) else ())
            for q in s.questions
            if q.type != "text"
        ]

    for other in scenarios[1:]:
        if shape(other) != shape(first):
            raise ValueError(
                f"the runs asked different questions: {shape(first)} vs {shape(other)}"
            )
    return [qid for qid, _, _ in shape(first)]
