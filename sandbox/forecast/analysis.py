"""Forecast: what a run database says, as numbers with 95% intervals. No plotting here.

The state of the population at step ``t`` is each agent's latest successful answer at or before
``t`` (answers persist until an agent answers again); agents that have never answered do not
count. Shares get Wilson score intervals, means percentile bootstraps over agents
(:mod:`sandbox.forecast.stats`): one seeded
``(n_boot, n_agents)`` matrix of resampled agent indices, turned into per-resample weights, so
every share and mean at every step comes out of a single matrix product instead of a loop over
resamples.

For likert questions the agents' own reactions are also rated by semantic similarity
(:mod:`sandbox.forecast.ssr`) against one anchor statement per scale point, and the resulting
distribution is set beside the direct answers.

The result's data classes (:class:`~sandbox.forecast.results.Forecast` and its parts) are in
:mod:`sandbox.forecast.results`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import yaml

from sandbox.forecast.answer_modes import mode_note
from sandbox.forecast.results import (
    FailedInteraction,
    Forecast,
    GraphSummary,
    QuestionForecast,
    SegmentBreakdown,
    SegmentGroup,
    Series,
)
from sandbox.forecast.scenario import (
    ChoiceQuestion,
    ForecastScenario,
    LikertQuestion,
    NumberQuestion,
    Question,
)
from sandbox.forecast.ssr import Encoder, ssr_comparisons
from sandbox.forecast.stats import (
    Estimate,
    bootstrap_means,
    resample_weights,
    share_estimates,
    weighted_quantiles,
)
from sandbox.raking import WeightSummary, summarize
from sandbox.rundb import AgentRow, InteractionRow, RunDatabase

TEXT_SAMPLES = 5
ERROR_SAMPLES = 10


def _parsed(row: InteractionRow) -> dict[str, Any] | None:
    """The answers of a good interaction (no error, parsed to an object), else None."""
    return row.parsed if row.error_kind is None and isinstance(row.parsed, dict) else None


def _latest(rows: list[InteractionRow], agent_pos: dict[int, int], n_steps: int) -> np.ndarray:
    """``(n_steps, n_agents)`` index into ``rows`` of each agent's latest good answer, or -1."""
    src = np.full((n_steps, len(agent_pos)), -1)
    for k, row in enumerate(rows):
        if _parsed(row) is not None and 0 <= row.step < n_steps and row.agent_id in agent_pos:
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
        answer = (_parsed(row) or {}).get(question.id)
        if options is not None:
            lookup[k] = options.index(answer) if answer in options else np.nan
        elif isinstance(answer, int | float) and not isinstance(answer, bool):
            lookup[k] = float(answer)
    values: np.ndarray = lookup[latest]
    return values


def _estimates(
    question: Question, values: np.ndarray, weights: np.ndarray, design: np.ndarray
) -> dict[str, Estimate]:
    """Estimates over the columns of ``values`` (1-D per agent): per option, or the mean."""
    if isinstance(question, ChoiceQuestion):
        rows = _indicators(values[None, :], len(question.options))[:, 0, :]
        return dict(zip(question.options, _shares(rows, weights, design), strict=True))
    return {"mean": bootstrap_means(values[None, :], weights, design)[0]}


def _shares(rows: np.ndarray, weights: np.ndarray, design: np.ndarray) -> list[Estimate]:
    """Shares with their 95% intervals: Wilson score intervals over the answers (sound at small
    n), or, when the agents carry raking weights, the weighted bootstrap."""
    if np.all(design == 1.0):
        return share_estimates(rows)
    return bootstrap_means(rows, weights, design)


def _indicators(codes: np.ndarray, n_options: int) -> np.ndarray:
    """``(n_options, *codes.shape)`` 0/1 per option, NaN where there is no answer."""
    opts = np.arange(n_options).reshape((-1,) + (1,) * codes.ndim)
    return np.where(np.isnan(codes), np.nan, (codes[None] == opts).astype(float))


def _question_forecast(
    question: Question,
    rows: list[InteractionRow],
    latest: np.ndarray,
    weights: np.ndarray,
    design: np.ndarray,
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
            str((_parsed(rows[k]) or {}).get(question.id, "")).strip() for k in final_idx if k >= 0
        ]
        answers = [a for a in answers if a]
        if answers:
            pick = rng.choice(len(answers), size=min(TEXT_SAMPLES, len(answers)), replace=False)
            samples = tuple(answers[i] for i in sorted(pick))
        return QuestionForecast(question, (), {}, {}, {}, samples, None, len(answers))
    values = _values(question, rows, latest)  # (n_steps, n_agents)
    final_values = values[-1] if n_steps else np.full(latest.shape[1], np.nan)
    answered_mask = ~np.isnan(final_values)
    answered, answered_w = final_values[answered_mask], design[answered_mask]
    if isinstance(question, ChoiceQuestion):
        k = len(question.options)
        flat = _indicators(values, k).reshape(k * n_steps, -1)
        est = _shares(flat, weights, design) if n_steps else []
        series = tuple(
            Series(o, tuple(est[i * n_steps : (i + 1) * n_steps]))
            for i, o in enumerate(question.options)
        )
    else:
        series = (
            (Series("mean", tuple(bootstrap_means(values, weights, design))),) if n_steps else ()
        )
    final = _estimates(question, final_values, weights, design)
    if isinstance(question, LikertQuestion) and answered.size:
        counts = np.bincount(
            answered.astype(int), weights=answered_w, minlength=question.scale + 1
        )[1 : question.scale + 1]  # the schema keeps answers on the scale
        distribution = {str(i + 1): float(c / counts.sum()) for i, c in enumerate(counts)}
    if isinstance(question, NumberQuestion) and answered.size:
        p10, median, p90 = weighted_quantiles(answered, answered_w, [0.1, 0.5, 0.9])
        mean = np.average(answered, weights=answered_w)
        figures = (mean, median, p10, p90, answered.min(), answered.max())
        stats = dict(
            zip(("mean", "median", "p10", "p90", "min", "max"), map(float, figures), strict=True)
        )
    return QuestionForecast(
        question, series, final, distribution, stats, samples, None, int(answered.size)
    )


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
    scenario: ForecastScenario,
    agents: list[Any],
    questions: list[QuestionForecast],
    rows: list[InteractionRow],
    final_idx: np.ndarray,
    design: np.ndarray,
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
                    estimates[q.id] = _estimates(q.question, values, weights, design[cols])
            groups.append(SegmentGroup(value, len(cols), estimates))
        out.append(SegmentBreakdown(key, tuple(groups)))
    return tuple(out)


def final_answers(
    db: RunDatabase, run_id: str
) -> tuple[ForecastScenario, list[Any], dict[str, np.ndarray]]:
    """Each agent's answer at the run's last step, per question that is not text (choice: the
    option's index; NaN where the agent never answered), for comparisons across runs.

    Returns:
        The run's scenario, its agents (rows, in agent order) and ``{question id: values}``.
    """
    run = db.run(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in {db.target}")
    scenario = ForecastScenario.model_validate(yaml.safe_load(run.scenario_yaml))
    agents = db.agents(run.id)
    rows = db.interactions(run.id)
    n_steps = max([0, run.last_step + 1, *(r.step + 1 for r in rows)])
    latest = _latest(rows, {a.agent_id: i for i, a in enumerate(agents)}, n_steps)
    final = latest[-1:] if n_steps else np.full((1, len(agents)), -1)
    values = {q.id: _values(q, rows, final)[0] for q in scenario.questions if q.type != "text"}
    return scenario, agents, values


def _design(
    scenario: ForecastScenario, agents: list[AgentRow]
) -> tuple[np.ndarray, WeightSummary | None]:
    """The agents' raking weights (all 1 when the run matched nothing) and how they fit."""
    stored = [a.weight for a in agents]
    design = np.array([1.0 if w is None else w for w in stored])
    match = scenario.population.match
    if not match or all(w is None for w in stored):
        return design, None
    return design, summarize([a.attributes for a in agents], design, match)


def build_forecast(
    db: RunDatabase,
    run_id: str,
    seed: int = 0,
    n_boot: int = 1000,
    *,
    ssr_temperature: float = 1.0,
    encoder: Encoder | None = None,
    live: bool = False,
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
        live: For the live view of ``sandbox serve``, which recomputes the forecast at every
            step and shows neither: no SSR comparison (it loads the embedder) and no segment
            breakdown (it rescans every interaction per segment value: minutes at 10k agents).

    Raises:
        ValueError: No such run.
        ScenarioError: The run's stored scenario no longer validates.
    """
    run = db.run(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in {db.target}")
    # Stored by the runner after validation: no need for the loader's line-precise errors.
    scenario = ForecastScenario.model_validate(yaml.safe_load(run.scenario_yaml))
    agents = db.agents(run.id)
    rows = db.interactions(run.id)
    n_steps = max([0, run.last_step + 1, *(r.step + 1 for r in rows)])
    rng = np.random.default_rng(seed)
    weights = resample_weights(rng, n_boot, len(agents))
    design, weighting = _design(scenario, agents)
    latest = _latest(rows, {a.agent_id: i for i, a in enumerate(agents)}, n_steps)
    final_idx = latest[-1] if n_steps else np.full(len(agents), -1)
    questions = [
        _question_forecast(q, rows, latest, weights, design, rng) for q in scenario.questions
    ]
    likert = [q.question for q in questions if not live and isinstance(q.question, LikertQuestion)]
    comparisons = ssr_comparisons(likert, rows, final_idx, encoder, ssr_temperature)
    if comparisons:
        questions = [replace(q, ssr=comparisons.get(q.id)) for q in questions]

    # Aware = something reached the agent: a broadcast (dst -1) reaches everyone.
    reached = {m.dst_agent for m in db.messages(run.id)}
    aware = [float(-1 in reached or a.agent_id in reached) for a in agents]
    failed = [r for r in rows if _parsed(r) is None]
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
        awareness=_shares(np.array([aware]), weights, design)[0],
        questions=tuple(questions),
        segments=()
        if live
        else _segments(scenario, agents, questions, rows, final_idx, design, rng, n_boot),
        graph=graph,
        weighting=weighting,
        answer_mode=mode_note(scenario, [p for r in rows if (p := _parsed(r)) is not None]),
    )
