"""Forecast validity: the shipped survey specs calibrated on the embedded model.

On each spec in scenarios/validation/, ~300 held-out respondents answer through the normal run
machinery (``sandbox calibrate``) on the embedded model, and the score table prints the
baselines (uniform, overall real shares, logistic regression on demographics) beside the
persona simulation in each answer mode (``sample``, ``logprobs``: the respondents' option
requests alone, ``verbalized``). No accuracy target is set for the embedded model; its scores
are printed as they are.

Figure: respondents per second in ``logprobs`` mode over ``sample`` mode (target >= 3.0: a full
distribution per respondent must cost less than one sampled answer). ``verbalized`` takes no
part in it and is the slowest mode by far, so ``--verbalized-respondents`` may ask it fewer
respondents (the first of the same held-out ones; the table's ``n`` says how many).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from benchmarks._common import result_line
from personahub.llm import LLMClient, load_settings
from sandbox.rundb import RunDatabase
from sandbox.validation.calibrate import (
    AnswerMode,
    CalibrationOptions,
    calibrate,
)
from sandbox.validation.report import cells, method_name
from sandbox.validation.results import ALL, CalibrationResult

SPECS = Path(__file__).resolve().parents[1] / "scenarios/validation"
NAME = "forecast_validity"
FIGURE = "logprobs-mode respondents/s over sample-mode respondents/s"


def run_mode(spec: Path, mode: AnswerMode, n: int, folder: Path) -> tuple[CalibrationResult, float]:
    """One calibration on the embedded model (a fresh cache: nothing replayed); returns the
    result and respondents per second of the answering: the run's one step, from the run's
    creation to its last commit, on a model loaded beforehand (loading, the cost estimate,
    scoring and the reports are the same in every mode and are left out; the whole command's
    rate is printed too)."""
    settings = load_settings(None, backend="local", cache_path=str(folder / f"{mode}.sqlite"))
    options = CalibrationOptions(respondents=n, answer_mode=mode, out=folder / "runs")
    client = LLMClient(settings)
    if client.capabilities.warm_up is not None:
        client.capabilities.warm_up()  # the model's load is no respondent's cost
    started = time.perf_counter()
    result, outcome = calibrate(spec, options, {}, show_progress=False, llm=client)
    whole = time.perf_counter() - started
    database = RunDatabase(outcome.database, must_exist=True)
    run = database.run(outcome.run_id)
    database.close()
    assert run is not None
    answering = (run.updated - run.created).total_seconds()
    print(
        f"{spec.name} {mode}: {result.respondents} respondents, answering {answering:.1f}s, "
        f"whole command {whole:.1f}s",
        file=sys.stderr,
    )
    return result, result.respondents / answering


def table(spec: str, results: dict[str, CalibrationResult]) -> Table:
    """Overall scores per question: the baselines once, then the simulation per mode."""
    out = Table(title=f"{spec}: overall scores on the held-out respondents", title_justify="left")
    for column in ("question", "method", "n", "SimBench", "1-W1/(k-1)", "KS", "dispersion"):
        out.add_column(column)
    out.add_column("accuracy")
    out.add_column("log-loss")
    sample = results["sample"]
    for qid in sample.questions:
        rows = [r for r in sample.rows if r.question == qid and r.group == ALL]
        named = [(method_name(sample, r.method), r) for r in rows if r.method != "llm"]
        for result in results.values():
            llm = next(
                r for r in result.rows if r.question == qid and r.group == ALL and r.method == "llm"
            )
            named.append((method_name(result, "llm"), llm))
        for name, row in named:
            out.add_row(qid, name, str(row.scores.n), *cells(row))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=300)
    parser.add_argument(
        "--verbalized-respondents",
        type=int,
        default=None,
        help="respondents per spec in verbalized mode (default: --respondents)",
    )
    args = parser.parse_args()
    modes: list[AnswerMode] = ["sample", "logprobs", "verbalized"]
    counts = {mode: args.respondents for mode in modes}
    counts["verbalized"] = args.verbalized_respondents or args.respondents
    print(
        f"respondents per spec: {args.respondents} in sample and logprobs mode, "
        f"{counts['verbalized']} in verbalized mode"
    )
    console = Console(width=160)
    speed: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="forecast-validity-") as scratch:
        for spec in sorted(SPECS.glob("*.yaml")):
            results = {}
            for mode in modes:
                results[mode], rate = run_mode(spec, mode, counts[mode], Path(scratch))
                speed[mode].append(rate)
                print(f"{spec.name} {mode}: {rate:.2f} respondents/s", file=sys.stderr)
            console.print(table(spec.stem, results))
    sample_rate = sum(speed["sample"]) / len(speed["sample"])
    logprobs_rate = sum(speed["logprobs"]) / len(speed["logprobs"])
    print(result_line(NAME, FIGURE, logprobs_rate / sample_rate, ">=", 3.0))


if __name__ == "__main__":
    main()
