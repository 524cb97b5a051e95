"""RecordedModel: what every run model shares, whatever its agents do in a step.

The end of a step (metrics snapshot, cache flush, saving the agents that changed, one
database transaction, stopping after the last step) and the parts of a resume that do not
depend on the agents (random state, metric history, step counter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mesa

from personahub.llm import ErrorKind, LLMResult

# Failures of the model's answers (it spoke, but not validly) and a spent budget are part of a
# run's record; every other kind means the model could not be reached or refused the request.
_ANSWER_FAILURES = frozenset(
    {ErrorKind.INVALID_JSON, ErrorKind.SCHEMA_VIOLATION, ErrorKind.BUDGET_EXHAUSTED}
)


def result_columns(result: LLMResult[Any]) -> dict[str, Any]:
    """The interaction-row columns that come from one model call, whatever asked it: the
    prompt, the reply, its cost and its failure, if any."""
    return {
        "messages": list(result.messages),
        "raw_response": result.text,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "latency_s": round(result.latency_s, 4),
        "retries": result.retries,
        "cached": result.cached,
        "error_kind": result.error.kind.value if result.error else None,
        "error_message": result.error.message if result.error else None,
    }


class StepFailed(RuntimeError):
    """Every model call of a step failed to reach the model; the step was not recorded, so a
    resume repeats it. One line."""


class RecordedModel(mesa.Model):
    """Base of :class:`~sandbox.forecast.model.ForecastModel` and the NPC-world model.

    Subclasses set ``scenario``, ``llm``, ``run_id``, ``database`` and ``datacollector`` in
    their constructor, and create agents with ``dirty`` and ``state()``.

    Attributes:
        on_step_start: Called as a step starts with (step, units of work in it).
        on_result: Called as each agent's answer arrives with (request index, result).
        on_turn: Called after each batched dialogue turn with (lines said, conversations open).
    """

    # Progress hooks, None while nobody listens. The runner sets all three on any model (it
    # does not know the mode); each mode calls those that fit its step.
    on_step_start: Callable[[int, int], None] | None = None
    on_result: Callable[[int, LLMResult[Any]], None] | None = None
    on_turn: Callable[[int, int], None] | None = None

    def record_step(
        self,
        step: int,
        *,
        messages: list[dict[str, Any]],
        interactions: list[dict[str, Any]] | None = None,
        turns: list[dict[str, Any]] | None = None,
    ) -> None:
        """Collect metrics and write the step in one transaction; stop after the last step.

        Raises:
            StepFailed: Every call of the step failed to reach the model (a server that went
                away, a bad key): the run stops before recording the step instead of marching
                on with nothing but errors.
        """
        self._check_reached(step, [*(interactions or []), *(turns or [])])
        self.datacollector.collect(self)
        metrics = {k: v[-1] for k, v in self.datacollector.model_vars.items()}
        self.llm.flush()
        changed = self.agents.select(lambda a: a.dirty).set("dirty", False)
        if self.database is not None:
            self.database.commit_step(
                self.run_id,
                step,
                interactions=interactions or [],
                messages=messages,
                states=[
                    {
                        "run_id": self.run_id,
                        "agent_id": a.unique_id,
                        "step": step,
                        "state": a.state(),
                    }
                    for a in changed
                ],
                metrics=metrics,
                rng_state=self.rng_state(),
                usage=self.llm.usage(),
                turns=turns,
            )
        if self.steps >= self.scenario.steps:
            self.running = False

    def _check_reached(self, step: int, calls: list[dict[str, Any]]) -> None:
        kinds = [call.get("error_kind") for call in calls]
        if not kinds or not all(
            kind is not None and ErrorKind(kind) not in _ANSWER_FAILURES for kind in kinds
        ):
            return
        first = next(call for call in calls if call.get("error_kind"))
        raise StepFailed(
            f"step {step}: all {len(calls)} model calls failed ({first['error_kind']}: "
            f"{first.get('error_message') or ''}); the step was not recorded: continue the run "
            "with `sandbox resume` once the model is reachable"
        )

    def rng_state(self) -> list[Any]:
        version, internal, gauss = self.random.getstate()
        return [version, list(internal), gauss]

    def restore_run_state(
        self, last_step: int, rng_state: list[Any], metrics: list[dict[str, Any]]
    ) -> None:
        """Random state, metric history and step counter as of ``last_step``."""
        version, internal, gauss = rng_state
        self.random.setstate((version, tuple(internal), gauss))
        for row in metrics:
            for key, value in row.items():
                self.datacollector.model_vars.setdefault(key, []).append(value)
        self.steps = last_step + 1
        self.running = self.steps < self.scenario.steps
