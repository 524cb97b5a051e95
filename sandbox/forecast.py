"""Forecast: what a run database says, as numbers with 95% intervals. No plotting here.

The state of the population at step ``t`` is each agent's latest successful answer at or before
``t`` (answers persist until an agent answers again); agents that have never answered do not
count. Intervals are percentile bootstraps over agents: one seeded ``(n_boot, n_agents)`` matrix
of resampled agent indices, turned into per-resample weights, so every share and mean at every
step comes out of a single matrix product instead of a loop over resamples.

For likert questions the agents' own reactions are also rated by semantic similarity (SSR; Maier
et al. 2025, arXiv 2510.08338) against one anchor statement per scale point, and the resulting
distribution is set beside the direct answers.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sandbox.recorder import InteractionRow, RunDatabase
from sandbox.scenario import ChoiceQuestion, LikertQuestion, NumberQuestion, Question, Scenario
from sandbox.scenario import parse_scenario as _parse_scenario

TEXT_SAMPLES = 5
ERROR_SAMPLES = 10
_INTENSIFIERS = {"strongly", "very", "extremely", "completely", "totally", "fully", "highly"}
_VERBS = {"agree", "disagree", "oppose", "support", "like", "dislike", "approve", "disapprove",
          "accept", "reject", "trust", "distrust", "want", "love", "hate", "recommend"}  # fmt: skip
_GRADES = ("slightly", "somewhat", "moderately", "fairly")  # weakest first


class Encoder(Protocol):
    """Anything with ``encode(texts) -> L2-normalised (n, dim) array`` (the embedder)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate and its 95% bootstrap interval; ``value`` is None when nobody answered."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def text(self, percent: bool = False) -> str:
        """The point estimate as the report prints it (``41.7%`` or ``3.25``)."""
        return _fmt(self.value, percent)

    def interval(self, percent: bool = False) -> str:
        """The interval as printed (``25.0–58.3%``), or "" when there is none."""
        if self.low is None or self.high is None:
            return ""
        if percent:
            return f"{100 * self.low:.1f}–{100 * self.high:.1f}%"
        return f"{self.low:.2f}–{self.high:.2f}"


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if percent else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class Series:
    """One line over the run's steps: an option's share, or a mean."""

    label: str
    points: tuple[Estimate, ...]


@dataclass(frozen=True, slots=True)
class SSRComparison:
    """Semantic-similarity rating of the reactions beside the direct answers (final step)."""

    anchors: tuple[str, ...]
    temperature: float
    n: int
    ssr: tuple[float, ...]
    direct: tuple[float, ...]
    ssr_mean: float | None
    direct_mean: float | None
    mean_abs_diff: float | None
    ks: float | None


@dataclass(frozen=True, slots=True)
class QuestionForecast:
    """Everything about one question.

    Attributes:
        question: The scenario's question.
        series: Per step: one series per option (choice) or the mean (likert, number).
        final: Final-step estimates: per option (choice) or ``{"mean": ...}``.
        distribution: Likert: share per scale point ``"1".."k"`` at the final step.
        stats: Number: mean, median, p10, p90, min, max at the final step.
        samples: Text: a few final answers.
        ssr: Likert: the semantic-similarity comparison (None without reactions).
        n_final: Agents with an answer at the final step.
    """

    question: Question
    series: tuple[Series, ...]
    final: dict[str, Estimate]
    distribution: dict[str, float]
    stats: dict[str, float]
    samples: tuple[str, ...]
    ssr: SSRComparison | None
    n_final: int

    @property
    def id(self) -> str:
        return self.question.id

    @property
    def type(self) -> str:
        return self.question.type

    @property
    def percent(self) -> bool:
        return self.question.type == "choice"


@dataclass(frozen=True, slots=True)
class SegmentGroup:
    """One value of a segment: its size and final estimates per question id and option/mean."""

    value: str
    n: int
    estimates: dict[str, dict[str, Estimate]]


@dataclass(frozen=True, slots=True)
class SegmentBreakdown:
    key: str
    groups: tuple[SegmentGroup, ...]


@dataclass(frozen=True, slots=True)
class KeyFigure:
    """A headline number; ``id`` is the report's element id (``kf-intent-yes``)."""

    id: str
    label: str
    estimate: Estimate
    kind: str  # "share" | "mean" | "count" | "rate"

    @property
    def text(self) -> str:
        if self.kind == "count":
            return "n/a" if self.estimate.value is None else f"{self.estimate.value:,.0f}"
        return self.estimate.text(self.kind in ("share", "rate"))

    @property
    def interval(self) -> str:
        return self.estimate.interval(self.kind in ("share", "rate"))


@dataclass(frozen=True, slots=True)
class FailedInteraction:
    step: int
    agent_id: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class GraphSummary:
    agents: int
    edges: int
    mean_degree: float
    relations: dict[str, int]
    communities: dict[int, int]


@dataclass(frozen=True, slots=True)
class Forecast:
    """The forecast of one run (see the module docstring for what "state" means)."""

    run_id: str
    name: str
    description: str
    status: str
    seed: int
    backend: str
    model: str
    steps_total: int
    scenario: Scenario
    scenario_yaml: str
    usage: dict[str, Any]
    steps: tuple[int, ...]
    activity: tuple[dict[str, Any], ...]
    n_agents: int
    n_answered: int
    n_interactions: int
    n_errors: int
    errors_by_kind: dict[str, int]
    failures: tuple[FailedInteraction, ...]
    awareness: Estimate
    questions: tuple[QuestionForecast, ...]
    segments: tuple[SegmentBreakdown, ...]
    graph: GraphSummary

    @property
    def error_rate(self) -> float | None:
        return self.n_errors / self.n_interactions if self.n_interactions else None

    def question(self, qid: str) -> QuestionForecast:
        return next(q for q in self.questions if q.id == qid)

    @property
    def key_figures(self) -> tuple[KeyFigure, ...]:
        """Final shares/means with intervals, awareness, then the run's counts."""
        figures = []
        for q in self.questions:
            kind = "share" if q.percent else "mean"
            for label, est in q.final.items():
                name = f"{q.id}: {label}" if q.percent else f"{q.id} (mean)"
                figures.append(KeyFigure(f"kf-{_slug(q.id)}-{_slug(label)}", name, est, kind))
        figures.append(KeyFigure("kf-aware", "aware", self.awareness, "share"))
        counts = [
            ("agents", "agents", self.n_agents, "count"),
            ("answered", "agents who answered", self.n_answered, "count"),
            ("interactions", "interactions", self.n_interactions, "count"),
            ("errors", "failed interactions", self.n_errors, "count"),
            ("error-rate", "error rate", self.error_rate, "rate"),
            ("tokens", "tokens", self.usage.get("total_tokens"), "count"),
            ("cache-hits", "cache hits", self.usage.get("cache_hits"), "count"),
        ]
        counts += [(f"errors-{_slug(k)}", f"errors: {k}", n, "count")
                   for k, n in sorted(self.errors_by_kind.items())]  # fmt: skip
        for fid, label, value, kind in counts:
            figures.append(KeyFigure(f"kf-{fid}", label, Estimate(value, None, None, 0), kind))
        return tuple(figures)

    def key_figure(self, fid: str) -> KeyFigure:
        return next(k for k in self.key_figures if k.id == fid)


# --------------------------------------------------------------------------- statistics


def resample_weights(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """How often each of ``n`` agents is drawn in each of ``n_boot`` resamples, ``(n_boot, n)``.

    Built from one ``(n_boot, n)`` index matrix; offsetting each row's indices lets a single
    ``bincount`` count all rows at once.
    """
    if n == 0:
        return np.zeros((n_boot, 0))
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (idx + np.arange(n_boot)[:, None] * n).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def bootstrap_means(values: np.ndarray, weights: np.ndarray) -> list[Estimate]:
    """Mean of each row of ``values`` (NaN = no answer) with a 95% percentile interval.

    Args:
        values: ``(m, n)``: m quantities over n agents; shares are means of 0/1 indicators.
        weights: ``(n_boot, n)`` from :func:`resample_weights`.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    valid = ~np.isnan(values)
    x = np.where(valid, values, 0.0)
    counts = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = x.sum(axis=1) / counts
        boots = (weights @ x.T) / (weights @ valid.T.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: nobody answered
        low, high = np.nanpercentile(boots, [2.5, 97.5], axis=0) if len(weights) else (point,) * 2
    out = []
    for p, lo, hi, n in zip(point, low, high, counts, strict=True):
        if n == 0:
            out.append(Estimate(None, None, None, 0))
        else:
            # A degenerate resample set, or float rounding, must not put the point outside.
            lo, hi = (p, p) if np.isnan(lo) else (min(lo, p), max(hi, p))
            out.append(Estimate(float(p), float(lo), float(hi), int(n)))
    return out


def generic_anchors(question: LikertQuestion) -> list[str]:
    """First-person anchor statements, one per scale point, from ``low`` and ``high``.

    The extremes use the labels as written; inner points drop a leading intensifier ("strongly")
    and add a weaker grade, and an odd scale gets a neutral midpoint.
    """
    k = question.scale

    def core(label: str) -> str:
        words = label.split()
        return (
            " ".join(words[1:]) if len(words) > 1 and words[0].lower() in _INTENSIFIERS else label
        )

    def say(phrase: str) -> str:
        is_verb = any(w.lower() in _VERBS for w in phrase.split()[:3])
        return f"I {phrase}." if is_verb else f"For me it is {phrase}."

    inner = (k - 2) // 2  # points strictly between an extreme and the middle, per side

    def side(label: str) -> list[str]:
        # From the extreme towards the middle: the bare label (if the extreme had an
        # intensifier to drop), then ever weaker grades.
        bare = [""] if core(label) != label else []
        grades = [*bare, *reversed(_GRADES[: max(0, inner - len(bare))])][:inner]
        return [say(label)] + [say(f"{g} {core(label)}".strip()) for g in grades]

    middle = [say(f"neither {core(question.low)} nor {core(question.high)}")] if k % 2 else []
    return side(question.low) + middle + side(question.high)[::-1]


def ssr_pmf(similarities: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Turn cosine similarities ``(n, k)`` to the k anchors into pmfs over the scale, ``(n, k)``.

    Subtract each row's minimum and normalise. The temperature is applied as an exponent
    ``p ** (1 / T)`` before renormalising, as in the paper; dividing by T before normalising
    would cancel out. Rows whose similarities are all equal become uniform.
    """
    sims = np.atleast_2d(np.asarray(similarities, dtype=float))
    shifted = sims - sims.min(axis=1, keepdims=True)
    if temperature != 1.0:
        shifted = shifted ** (1.0 / temperature)
    totals = shifted.sum(axis=1, keepdims=True)
    uniform = np.full_like(shifted, 1.0 / max(1, sims.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, shifted / totals, uniform)


def compare_pmfs(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute difference and KS distance (largest CDF gap) of two pmfs on one scale."""
    return float(np.abs(a - b).mean()), float(np.abs(np.cumsum(a) - np.cumsum(b)).max())


# --------------------------------------------------------------------------- build


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-") or "x"


def _ok(row: InteractionRow) -> bool:
    return row.error_kind is None and isinstance(row.parsed, dict)


def _latest(rows: list[InteractionRow], agent_pos: dict[int, int], n_steps: int) -> np.ndarray:
    """``(n_steps, n_agents)`` index into ``rows`` of each agent's latest good answer, or -1."""
    src = np.full((n_steps, len(agent_pos)), -1)
    for k, row in enumerate(rows):
        if _ok(row) and 0 <= row.step < n_steps and row.agent_id in agent_pos:
            src[row.step, agent_pos[row.agent_id]] = k
    # Carry forward: for each cell, the last step at or before it that had an answer.
    step_of = np.where(src >= 0, np.arange(n_steps)[:, None], -1)
    last = np.maximum.accumulate(step_of, axis=0) if n_steps else step_of
    cols = np.broadcast_to(np.arange(src.shape[1]), src.shape)
    return np.where(last >= 0, src[np.maximum(last, 0), cols], -1)


def _values(question: Question, rows: list[InteractionRow], latest: np.ndarray) -> np.ndarray:
    """The answers in ``latest`` as floats (choice: option index), NaN where none."""
    lookup = np.full(len(rows) + 1, np.nan)  # last slot answers the -1 "no answer" index
    options = question.options if isinstance(question, ChoiceQuestion) else None
    for k, row in enumerate(rows):
        answer = row.parsed.get(question.id) if _ok(row) else None  # type: ignore[union-attr]
        if options is not None:
            lookup[k] = options.index(answer) if answer in options else np.nan
        elif isinstance(answer, int | float) and not isinstance(answer, bool):
            lookup[k] = float(answer)
    return lookup[latest]


def _estimates(question: Question, values: np.ndarray, weights: np.ndarray) -> dict[str, Estimate]:
    """Estimates over the columns of ``values`` (1-D per agent): per option, or the mean."""
    if isinstance(question, ChoiceQuestion):
        rows = _indicators(values[None, :], len(question.options))[:, 0, :]
        return dict(zip(question.options, bootstrap_means(rows, weights), strict=True))
    return {"mean": bootstrap_means(values[None, :], weights)[0]}


def _indicators(codes: np.ndarray, n_options: int) -> np.ndarray:
    """``(n_options, *codes.shape)`` 0/1 per option, NaN where there is no answer."""
    opts = np.arange(n_options).reshape((-1,) + (1,) * codes.ndim)
    return np.where(np.isnan(codes), np.nan, (codes[None] == opts).astype(float))


def _question_forecast(
    question: Question,
    rows: list[InteractionRow],
    latest: np.ndarray,
    weights: np.ndarray,
    rng: np.random.Generator,
) -> QuestionForecast:
    n_steps = latest.shape[0]
    final_idx = latest[-1] if n_steps else np.full(latest.shape[1], -1)
    distribution: dict[str, float] = {}
    stats: dict[str, float] = {}
    samples: tuple[str, ...] = ()
    series: tuple[Series, ...] = ()
    final: dict[str, Estimate] = {}
    if question.type == "text":
        answers = [
            str(rows[k].parsed.get(question.id, "")).strip()  # type: ignore[union-attr]
            for k in final_idx
            if k >= 0
        ]
        answers = [a for a in answers if a]
        if answers:
            pick = rng.choice(len(answers), size=min(TEXT_SAMPLES, len(answers)), replace=False)
            samples = tuple(answers[i] for i in sorted(pick))
        return QuestionForecast(question, (), {}, {}, {}, samples, None, len(answers))
    values = _values(question, rows, latest)  # (n_steps, n_agents)
    final_values = values[-1] if n_steps else np.full(latest.shape[1], np.nan)
    answered = final_values[~np.isnan(final_values)]
    if isinstance(question, ChoiceQuestion):
        k = len(question.options)
        flat = _indicators(values, k).reshape(k * n_steps, -1)
        est = bootstrap_means(flat, weights) if n_steps else []
        series = tuple(
            Series(o, tuple(est[i * n_steps : (i + 1) * n_steps]))
            for i, o in enumerate(question.options)
        )
    else:
        series = (Series("mean", tuple(bootstrap_means(values, weights))),) if n_steps else ()
    final = _estimates(question, final_values, weights)
    if isinstance(question, LikertQuestion) and answered.size:
        counts = np.bincount(answered.astype(int), minlength=question.scale + 1)[1:]
        distribution = {str(i + 1): float(c / answered.size) for i, c in enumerate(counts)}
    if isinstance(question, NumberQuestion) and answered.size:
        p10, median, p90 = np.percentile(answered, [10, 50, 90])
        figures = (answered.mean(), median, p10, p90, answered.min(), answered.max())
        stats = dict(
            zip(("mean", "median", "p10", "p90", "min", "max"), map(float, figures), strict=True)
        )
    return QuestionForecast(
        question, series, final, distribution, stats, samples, None, int(answered.size)
    )


def _ssr(
    questions: list[QuestionForecast],
    rows: list[InteractionRow],
    final_idx: np.ndarray,
    encoder: Encoder | None,
    temperature: float,
) -> list[QuestionForecast]:
    """Attach the SSR comparison to each likert question (one encode call for everything)."""
    likert = [q for q in questions if isinstance(q.question, LikertQuestion)]
    reactions: list[str] = []
    answers: dict[str, list[float]] = {q.id: [] for q in likert}
    for k in final_idx:
        if k < 0:
            continue
        parsed = rows[k].parsed or {}
        reaction = str(parsed.get("reaction") or rows[k].reaction or "").strip()
        if not reaction:
            continue
        reactions.append(reaction)
        for q in likert:
            value = parsed.get(q.id)
            answers[q.id].append(float(value) if isinstance(value, int | float) else np.nan)
    if not likert or not reactions:
        return questions
    if encoder is None:
        from personahub.embeddings import get_embedder

        encoder = get_embedder()
    anchor_sets = [list(q.question.anchors or generic_anchors(q.question)) for q in likert]  # type: ignore[union-attr]
    vectors = encoder.encode(reactions + [a for anchors in anchor_sets for a in anchors])
    react_vecs, offset = vectors[: len(reactions)], len(reactions)
    by_id = {}
    for q, anchors in zip(likert, anchor_sets, strict=True):
        scale = len(anchors)
        sims = react_vecs @ vectors[offset : offset + scale].T
        offset += scale
        direct_values = np.asarray(answers[q.id])
        keep = ~np.isnan(direct_values)
        pmf = ssr_pmf(sims[keep], temperature).mean(axis=0) if keep.any() else np.zeros(scale)
        direct = np.bincount(direct_values[keep].astype(int), minlength=scale + 1)[1 : scale + 1]
        direct = direct / max(1, int(keep.sum()))
        points = np.arange(1, scale + 1)
        mad, ks = compare_pmfs(pmf, direct) if keep.any() else (None, None)
        any_kept = bool(keep.any())
        by_id[q.id] = SSRComparison(
            anchors=tuple(anchors),
            temperature=temperature,
            n=int(keep.sum()),
            ssr=tuple(map(float, pmf)),
            direct=tuple(map(float, direct)),
            ssr_mean=float(pmf @ points) if any_kept else None,
            direct_mean=float(direct @ points) if any_kept else None,
            mean_abs_diff=mad,
            ks=ks,
        )
    return [replace(q, ssr=by_id.get(q.id)) for q in questions]


def segment_value(agent: Any, key: str) -> str:
    value = agent.community if key == "community" else (agent.attributes or {}).get(key)
    if value is None:
        return "(unknown)"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _sort_key(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1 if value != "(unknown)" else 2, 0.0, value)


def _segments(
    scenario: Scenario,
    agents: list[Any],
    questions: list[QuestionForecast],
    rows: list[InteractionRow],
    final_idx: np.ndarray,
    rng: np.random.Generator,
    n_boot: int,
) -> tuple[SegmentBreakdown, ...]:
    """Final-step estimates per segment value; each group is resampled within itself."""
    out = []
    for key in scenario.segments:
        members: dict[str, list[int]] = {}
        for i, agent in enumerate(agents):
            members.setdefault(segment_value(agent, key), []).append(i)
        groups = []
        for value in sorted(members, key=_sort_key):
            cols = np.array(members[value])
            weights = resample_weights(rng, n_boot, len(cols))
            estimates = {}
            for q in questions:
                if q.type != "text":
                    values = _values(q.question, rows, final_idx[None, cols])[0]
                    estimates[q.id] = _estimates(q.question, values, weights)
            groups.append(SegmentGroup(value, len(cols), estimates))
        out.append(SegmentBreakdown(key, tuple(groups)))
    return tuple(out)


def build_forecast(
    db: RunDatabase,
    run_id: str,
    seed: int = 0,
    n_boot: int = 1000,
    *,
    ssr_temperature: float = 1.0,
    encoder: Encoder | None = None,
) -> Forecast:
    """Compute the forecast of a run, finished or not.

    Args:
        db: The run database.
        run_id: The run.
        seed: Seed of the bootstrap (and of the text samples).
        n_boot: Bootstrap resamples.
        ssr_temperature: SSR temperature (1 = plain normalised similarities).
        encoder: Sentence encoder for SSR; the packaged embedder when None (loaded only if
            there are likert questions and reactions).

    Raises:
        ValueError: No such run.
        ScenarioError: The run's stored scenario no longer validates.
    """
    run = db.run(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in {db.target}")
    scenario = _parse_scenario(run.scenario_yaml, Path(run.scenario_path or "scenario.yaml"))
    agents = db.agents(run.id)
    rows = db.interactions(run.id)
    n_steps = max([0, run.last_step + 1, *(r.step + 1 for r in rows)])
    rng = np.random.default_rng(seed)
    weights = resample_weights(rng, n_boot, len(agents))
    latest = _latest(rows, {a.agent_id: i for i, a in enumerate(agents)}, n_steps)
    final_idx = latest[-1] if n_steps else np.full(len(agents), -1)
    questions = [_question_forecast(q, rows, latest, weights, rng) for q in scenario.questions]
    questions = _ssr(questions, rows, final_idx, encoder, ssr_temperature)

    states = db.states(run.id)
    aware = [float(states[a.agent_id]["aware"]) if a.agent_id in states else np.nan for a in agents]
    failed = [r for r in rows if not _ok(r)]
    edges = db.edges(run.id)
    graph = GraphSummary(
        agents=len(agents),
        edges=len(edges),
        mean_degree=2 * len(edges) / len(agents) if agents else 0.0,
        relations=dict(Counter(e.relation or "(none)" for e in edges).most_common()),
        communities=dict(sorted(Counter(a.community for a in agents).items())),
    )
    return Forecast(
        run_id=run.id,
        name=run.name,
        description=scenario.description,
        status=run.status,
        seed=run.seed,
        backend=run.backend,
        model=run.model,
        steps_total=run.steps_total,
        scenario=scenario,
        scenario_yaml=run.scenario_yaml,
        usage=dict(run.usage or {}),
        steps=tuple(range(n_steps)),
        activity=tuple({"step": m.step, **m.metrics} for m in db.step_metrics(run.id)),
        n_agents=len(agents),
        n_answered=int((latest >= 0).any(axis=0).sum()),
        n_interactions=len(rows),
        n_errors=len(failed),
        errors_by_kind=dict(Counter(r.error_kind or "no_answer" for r in failed)),
        failures=tuple(
            FailedInteraction(
                r.step, r.agent_id, r.error_kind or "no_answer", r.error_message or ""
            )
            for r in failed[:ERROR_SAMPLES]
        ),
        awareness=bootstrap_means(np.array([aware]), weights)[0],
        questions=tuple(questions),
        segments=_segments(scenario, agents, questions, rows, final_idx, rng, n_boot),
        graph=graph,
    )
