"""``sandbox compare RUN ... RUN``: any runs that asked the same questions, the first as the
reference, on the experiment report's page (effects, curves, transcripts)."""

from __future__ import annotations

from pathlib import Path

from sandbox.experiment.report import ExperimentView, Group, build_view, write_experiment_report
from sandbox.run_folders import RUN_DB, RunError, locate_run
from sandbox.rundb import RunDatabase


def open_run(ref: str) -> tuple[RunDatabase, str]:
    """A run reference: a run folder, a ``run.db``, a database URL (its latest run), or
    ``EXPERIMENT_FOLDER/RUN_ID`` for one run of an experiment.

    Raises:
        RunError: Nothing found there.
    """
    path = Path(ref)
    # An experiment run's folder holds only its report.html: its rows are in the parent's run.db.
    own = path.is_file() or (path / RUN_DB).is_file()
    if not own and (path.parent / RUN_DB).is_file():
        db = RunDatabase(path.parent / RUN_DB, must_exist=True)
        if db.run(path.name) is None:
            raise RunError(f"no run {path.name!r} in {path.parent / RUN_DB}")
        return db, path.name
    db = RunDatabase(locate_run(ref), must_exist=True)
    run = db.run()
    if run is None:
        raise RunError(f"{ref} holds no run")
    return db, run.id


def compare_runs(refs: list[str], out_dir: Path) -> tuple[ExperimentView, Path]:
    """Compare runs against the first; writes ``compare.html``-style page into ``out_dir``.

    Raises:
        RunError: A run not found. ValueError: different questions, or no shared personas.
    """
    opened = [open_run(ref) for ref in refs]
    labels = _labels([run_id for _, run_id in opened])
    reference = labels[0]
    groups = [
        Group(label, (run,), None if label == reference else reference)
        for label, run in zip(labels, opened, strict=True)
    ]
    view = build_view(groups, f"compare {len(refs)} runs", "comparison")
    return view, write_experiment_report(view, out_dir)


def _labels(run_ids: list[str]) -> list[str]:
    """Run ids as labels, numbered when a run is given twice."""
    seen: dict[str, int] = {}
    out = []
    for run_id in run_ids:
        seen[run_id] = seen.get(run_id, 0) + 1
        out.append(run_id if seen[run_id] == 1 else f"{run_id} ({seen[run_id]})")
    return out
