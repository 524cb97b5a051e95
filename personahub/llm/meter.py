"""Usage metering and the per-run budget.

The meter counts what the gateway spent (tokens, calls, latency, retries, cache hits, errors,
per endpoint and per tag). A backend with several endpoints adds, per endpoint, the requests
that failed there and those that moved away from it (failovers), plus each (from, to) move.
The budget turns the counts into a hard stop for new calls.

As gateway layers: :class:`MeterLayer` counts each backend call, :class:`BudgetLayer` refuses a
call once the budget is spent, and :class:`OutcomeLayer`, the outermost, counts what each
request finally came to (cache hit, retries, error) and scrubs secrets from its error.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from personahub.llm.gateway import Gateway, Layer
from personahub.llm.types import ErrorKind, LLMError, LLMRequest, LLMResult, T, Usage


@dataclass
class Meter:
    """Running totals of one gateway client. Cheap: plain integer additions."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    per_endpoint: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(
            lambda: {"calls": 0, "tokens": 0, "latency_s": 0.0, "retries": 0}
        )
    )
    per_tag: Counter[str] = field(default_factory=Counter)
    price_per_prompt_token: float = 0.0
    price_per_completion_token: float = 0.0

    def record_call(self, endpoint: str, usage: Usage, latency_s: float, tag: str = "") -> None:
        """One model call that reached a backend (not a cache hit)."""
        self.calls += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.latency_s += latency_s
        ep = self.per_endpoint[endpoint]
        ep["calls"] += 1
        ep["tokens"] += usage.total_tokens
        ep["latency_s"] += latency_s
        if tag:
            self.per_tag[tag] += 1

    def record_retry(self, endpoint: str) -> None:
        """A transient failure at ``endpoint`` that the retry layer is about to retry."""
        self.per_endpoint[endpoint]["retries"] += 1

    def record_error(self, error: LLMError) -> None:
        self.errors[error.kind.value] += 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float:
        return (
            self.prompt_tokens * self.price_per_prompt_token
            + self.completion_tokens * self.price_per_completion_token
        )

    def snapshot(self, endpoints: dict[str, Any] | None = None) -> dict[str, Any]:
        """Plain data for reports and run databases.

        Args:
            endpoints: The backend's endpoint report (``per_endpoint`` errors, failovers and
                rests; ``failovers``; ``failover_moves``), merged in when given.
        """
        per_endpoint: dict[str, dict[str, Any]] = {k: dict(v) for k, v in self.per_endpoint.items()}
        transport = endpoints or {}
        for label, counts in (transport.get("per_endpoint") or {}).items():
            entry = per_endpoint.setdefault(label, {"calls": 0, "tokens": 0, "latency_s": 0.0})
            entry.update(counts)
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "latency_s": round(self.latency_s, 3),
            "mean_latency_s": round(self.latency_s / self.calls, 4) if self.calls else 0.0,
            "retries": self.retries,
            "errors": dict(self.errors),
            "per_endpoint": per_endpoint,
            "failovers": int(transport.get("failovers") or 0),
            "failover_moves": list(transport.get("failover_moves") or []),
            "cost": round(self.cost, 6),
        }


def combine_usage(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """The usage of two parts of one job (a run before and after a resume) as one snapshot.

    Counts add up (per error kind and per endpoint too), failover moves add up per (from, to)
    pair, and the mean latency is that of all calls together.

    Args:
        earlier: A usage snapshot (:meth:`Meter.snapshot`), e.g. as a run database stored it.
        later: Another one.
    """
    out = _add_counts(earlier, later)
    moves: Counter[tuple[str, str]] = Counter()
    for move in [*(earlier.get("failover_moves") or []), *(later.get("failover_moves") or [])]:
        moves[(move["from"], move["to"])] += int(move["calls"])
    out["failover_moves"] = [
        {"from": source, "to": target, "calls": n} for (source, target), n in sorted(moves.items())
    ]
    calls = out.get("calls") or 0
    out["mean_latency_s"] = round(out.get("latency_s", 0.0) / calls, 4) if calls else 0.0
    return out


def _add_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) or isinstance(y, dict):
            out[key] = _add_counts(x or {}, y or {})
        elif isinstance(x, int | float) or isinstance(y, int | float):
            total = (x or 0) + (y or 0)
            out[key] = round(total, 6) if isinstance(total, float) else total
        else:
            out[key] = y if y is not None else x
    return out


@dataclass
class Budget:
    """Limits on model calls and tokens for one run; None means unlimited."""

    max_calls: int | None = None
    max_total_tokens: int | None = None

    def check(self, meter: Meter, in_flight: int = 0) -> LLMError | None:
        """An error value when no new call may start, else None.

        Args:
            meter: The counts so far.
            in_flight: Calls started and not finished yet: they count against the call
                budget, so concurrent calls cannot overshoot it.
        """
        if self.max_calls is not None and meter.calls + in_flight >= self.max_calls:
            return LLMError(
                ErrorKind.BUDGET_EXHAUSTED,
                f"call budget reached: {meter.calls} of max_calls={self.max_calls} used;"
                " raise it with --max-calls or PERSONAHUB_MAX_CALLS",
                attempts=0,
            )
        if self.max_total_tokens is not None and meter.total_tokens >= self.max_total_tokens:
            return LLMError(
                ErrorKind.BUDGET_EXHAUSTED,
                f"token budget reached: {meter.total_tokens} of"
                f" max_total_tokens={self.max_total_tokens} used;"
                " raise it with --max-tokens-total or PERSONAHUB_MAX_TOTAL_TOKENS",
                attempts=0,
            )
        return None


def endpoint_lines(usage: dict[str, Any]) -> list[str]:
    """Per-endpoint usage as short lines for terminal summaries: calls, tokens, failed
    attempts (errors), retries and failovers; empty for a single endpoint that never failed
    or retried (trouble is shown for one endpoint too).

    Args:
        usage: A usage snapshot (:meth:`Meter.snapshot`), as stored in run databases.
    """
    per_endpoint: dict[str, dict[str, Any]] = usage.get("per_endpoint") or {}
    failovers = int(usage.get("failovers") or 0)
    trouble = any(c.get("errors") or c.get("retries") for c in per_endpoint.values())
    if len(per_endpoint) < 2 and not failovers and not trouble:
        return []
    lines = []
    for label, counts in per_endpoint.items():
        lines.append(
            f"{label}: {int(counts.get('calls', 0)):,} calls, {int(counts.get('tokens', 0)):,}"
            f" tokens, {int(counts.get('errors', 0)):,} errors,"
            f" {int(counts.get('retries', 0)):,} retries,"
            f" {int(counts.get('failovers', 0)):,} failovers away"
        )
    moves = usage.get("failover_moves") or []
    if moves:
        moved = ", ".join(f"{m['from']} -> {m['to']} {m['calls']:,}" for m in moves)
        lines.append(f"failovers: {failovers:,} ({moved})")
    return lines


class MeterLayer(Layer):
    """Counts every call the gateway below answered: tokens, latency, endpoint and tag.

    Args:
        inner: The gateway below (one backend call per request, retries included).
        meter: The running totals.
    """

    def __init__(self, inner: Gateway, meter: Meter) -> None:
        super().__init__(inner)
        self.meter = meter

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        result = await self.inner.complete(request)
        if result.error is None:
            self.meter.record_call(result.endpoint, result.usage, result.latency_s, request.tag)
        return result

    def usage(self) -> dict[str, Any]:
        report = self.capabilities.endpoint_usage
        return self.meter.snapshot(report() if report is not None else None)


class BudgetLayer(Layer):
    """Refuses a call, with a ``budget_exhausted`` error value, once the budget is spent.

    The call budget is exact: calls in flight count against it. The token budget is checked
    before each call, so the calls in flight when it is reached may still spend tokens.

    Sits below the re-ask layer, so every backend call is checked, re-asks included.

    Args:
        inner: The gateway below.
        budget: The limits.
        meter: The counts checked against them.
    """

    def __init__(self, inner: Gateway, budget: Budget, meter: Meter) -> None:
        super().__init__(inner)
        self.budget = budget
        self.meter = meter
        self.in_flight = 0

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        # Checked and reserved with no await in between: the call budget is exact however
        # many requests run at once (a call that fails gives its place back).
        refusal = self.budget.check(self.meter, self.in_flight)
        if refusal is not None:
            return LLMResult(error=refusal, model=self.model)
        self.in_flight += 1
        try:
            return await self.inner.complete(request)
        finally:
            self.in_flight -= 1


class OutcomeLayer(Layer):
    """The outermost layer: counts each request's cache hit, retries and error, and scrubs
    secrets from error messages before they are recorded or returned.

    Args:
        inner: The gateway below.
        meter: The running totals.
        secrets: Strings never to let out (API keys).
    """

    def __init__(self, inner: Gateway, meter: Meter, secrets: Sequence[str]) -> None:
        super().__init__(inner)
        self.meter = meter
        self.secrets = tuple(secrets)

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        return self.settle(await self.inner.complete(request))

    def settle(self, result: LLMResult[T]) -> LLMResult[T]:
        """Count a finished request, its error scrubbed."""
        if result.cached:
            self.meter.cache_hits += 1
        self.meter.retries += result.retries
        error = result.error
        if error is None:
            return result
        if any(secret in error.message for secret in self.secrets):
            error = replace(error, message=self.scrub(error.message))
            result = replace(result, error=error)
        self.meter.record_error(error)
        return result

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text
