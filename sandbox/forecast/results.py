"""The forecast of a run as data: per-question series and final estimates, segment
breakdowns, key figures, failures and the graph's shape. Computed by
:func:`sandbox.forecast.analysis.build_forecast`; read by the report, the live view, the
experiment pages and resolution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.forecast.scenario import ForecastScenario, Question
from sandbox.forecast.ssr import SSRComparison
from sandbox.forecast.stats import Estimate
from sandbox.raking import WeightSummary


@dataclass(frozen=True, slots=True)
class Series:
    """One line over the run's steps: an option's share, or a mean."""

    label: str
    points: tuple[Estimate, ...]


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
    """The final estimates of every value of one segment key (``community``, an attribute)."""

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
    """One interaction without a usable answer, for the report's failure list."""

    step: int
    agent_id: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class GraphSummary:
    """The run's relationship graph in numbers: size, degree, relations and communities."""

    agents: int
    edges: int
    mean_degree: float
    relations: dict[str, int]
    communities: dict[int, int]


@dataclass(frozen=True, slots=True)
class Forecast:
    """The forecast of one run (see the module docstring for what "state" means).

    ``answer_mode`` says how choice and likert answers came about
    (:func:`~sandbox.forecast.answer_modes.mode_note`).
    """

    run_id: str
    name: str
    description: str
    status: str
    seed: int
    backend: str
    model: str
    steps_total: int
    scenario: ForecastScenario
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
    weighting: WeightSummary | None = None
    answer_mode: str = "sample"

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
        if self.weighting is not None:  # raking weights: how many equal-weight agents
            counts.append(("effective-n", "effective sample size (Kish)",
                           self.weighting.effective_n, "count"))  # fmt: skip
        counts += [(f"errors-{_slug(k)}", f"errors: {k}", n, "count")
                   for k, n in sorted(self.errors_by_kind.items())]  # fmt: skip
        for fid, label, value, kind in counts:
            figures.append(KeyFigure(f"kf-{fid}", label, Estimate(value, None, None, 0), kind))
        return tuple(figures)

    def key_figure(self, fid: str) -> KeyFigure:
        return next(k for k in self.key_figures if k.id == fid)


def _slug(text: str) -> str:
    """``text`` as an HTML id fragment (key figures' element ids)."""
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-") or "x"
