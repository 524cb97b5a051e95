"""Cost estimate vs actual tokens on the shipped scenarios (issue 13 item 6).

For every ``scenarios/*.yaml`` and each backend, ``sandbox estimate``'s figure
(:func:`sandbox.estimate.scenario.estimate_scenario`, no model called) is compared with a real
run of the same size (``start_run``, response cache off):

* ``fixture``: the fixture OpenAI server (``personahub/llm/testing/fake_openai.py``), which
  counts whitespace-separated words as tokens; the estimate uses the characters-per-token
  ratio :data:`FIXTURE_CHARS_PER_TOKEN` that matches that count (as a user sets
  ``chars_per_token`` for their served model's tokenizer). Two lines per scenario:
  ``fixture`` is the estimate a user gets (typical answers) against the fixture's unscripted
  answers, which vary with the prompt as a model's would (``unscripted_reply``);
  ``fixture, answers known`` gives the estimate the fixture's own answers
  (``tests/support/estimates.py``): that measures the estimate's machinery (who asks when,
  prompts, how conversations end) apart from the typical answer tables, which only a real
  model can measure.
* ``embedded``: the embedded SmolLM2 model, whose own tokenizer the estimate uses.

Each pair prints a detail line and a result line whose figure is |actual/estimate - 1| of
total tokens, target <= 0.25 ("within 25%"). Small sizes by default (20 agents, 2 steps).
The embedded model answers a call in seconds to tens of seconds on a busy 2-core machine, so
a full embedded pass (about 200 calls at the defaults) can take over an hour there: use a
smaller ``--agents``/``--steps`` and ``--scenarios`` (stems) to measure it in parts; every
line says the size it measured.

    python benchmarks/estimate_accuracy.py [--agents 20] [--steps 2] [--backends fixture embedded]
        [--scenarios product_launch harbour_town]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import result_line
from personahub.llm.testing.fake_config import DEFAULT_MODEL
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process
from sandbox.estimate.dry import KnownAnswers
from sandbox.estimate.scenario import estimate_scenario
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import start_run
from tests.support.estimates import FIXTURE_ANSWERS

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
FIXTURE_CHARS_PER_TOKEN = 6.0
"""Characters per whitespace word (the fixture server's token) in English prompt text."""
TOLERANCE = 0.25


def compare(
    scenario: Path,
    label: str,
    llm: dict[str, object],
    options: RunOptions,
    known: KnownAnswers | None = None,
) -> bool:
    """Estimate, run, print both lines; True when within the tolerance."""
    estimate = estimate_scenario(scenario, options, llm, known=known)
    outcome = start_run(scenario, options, llm, show_progress=False)
    run = RunDatabase(outcome.database, must_exist=True).run(outcome.run_id)
    assert run is not None
    usage = run.usage
    ratio = usage["total_tokens"] / max(1, estimate.total_tokens)
    print(
        f"{scenario.stem} on {label}: calls {usage['calls']} / {estimate.calls} est, "
        f"prompt {usage['prompt_tokens']:,} / {estimate.prompt_tokens:,} est, "
        f"completion {usage['completion_tokens']:,} / {estimate.completion_tokens:,} est, "
        f"total {usage['total_tokens']:,} / {estimate.total_tokens:,} est (actual/estimate "
        f"{ratio:.2f}; {options.agents} agents, {options.steps} steps)",
        flush=True,
    )
    error = abs(ratio - 1)
    figure = f"|actual/estimate - 1| of total tokens, {scenario.stem} on {label}"
    print(result_line("estimate_accuracy", figure, error, "<=", TOLERANCE), flush=True)
    return error <= TOLERANCE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["fixture", "embedded"])
    parser.add_argument(
        "--scenarios", nargs="+", help="scenario file stems (default: every shipped scenario)"
    )
    args = parser.parse_args()
    scenarios = [s for s in SCENARIOS if not args.scenarios or s.stem in args.scenarios]
    out = Path(tempfile.mkdtemp(prefix="estimate-accuracy-"))
    options = RunOptions(agents=args.agents, steps=args.steps, out=out)
    passed = True
    if "fixture" in args.backends:
        proc, base_url = spawn_server_process()
        try:
            llm = {
                "backend": "openai",
                "model": DEFAULT_MODEL,
                "base_urls": [base_url],
                "cache": False,
                "chars_per_token": FIXTURE_CHARS_PER_TOKEN,
            }
            for scenario in scenarios:
                passed &= compare(scenario, "fixture", llm, options)
                known = "fixture, answers known"
                passed &= compare(scenario, known, llm, options, FIXTURE_ANSWERS)
        finally:
            stop_server_process(proc)
    if "embedded" in args.backends:
        for scenario in scenarios:
            passed &= compare(scenario, "embedded", {"backend": "local", "cache": False}, options)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
