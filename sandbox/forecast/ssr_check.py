"""``sandbox ssr-check``: try anchor statements on texts whose rating is known.

A wrong anchor set silently ruins semantic-similarity rating, so before trusting SSR on a
question a user rates labelled texts (one text and its scale point per CSV row) with the
anchors they mean to use: the SSR expected ratings should correlate with the labels (Pearson
and Spearman), and a confusion table (label vs rounded SSR rating) shows where they drift.

The anchors file is YAML, read like a scenario (errors name file:line:field)::

    scale: 5                       # 3-11
    low: definitely would not buy it   # without anchors: the default sets for these labels
    high: definitely would buy it
    anchors:                       # or: one set, or a list of sets (averaged over)
      - [I would never buy it., ...]
    temperature: 1.0
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError

from sandbox.forecast.anchors import anchor_sets
from sandbox.forecast.scenario import LikertQuestion, anchor_problems
from sandbox.forecast.ssr import Encoder, embed, rate
from sandbox.scenario import Strict
from sandbox.scenario_loader import problem_lines
from sandbox.scenario_yaml import YAMLProblem, compose, construct


class CheckError(ValueError):
    """The anchors or the labelled texts cannot be used. ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class AnchorsFile(Strict):
    """The anchors file: a likert scale and its anchor statements (or its labels)."""

    scale: int = Field(5, ge=3, le=11)
    low: str = Field("strongly disagree", min_length=1)
    high: str = Field("strongly agree", min_length=1)
    anchors: list[str] | list[list[str]] | None = None
    temperature: float = Field(1.0, gt=0, le=10)

    def question(self) -> LikertQuestion:
        """The scale as a likert question, whose anchor sets SSR uses."""
        return LikertQuestion(
            id="check",
            type="likert",
            ask="(ssr-check)",
            scale=self.scale,
            low=self.low,
            high=self.high,
            anchors=self.anchors,
        )


def read_anchors(path: Path) -> AnchorsFile:
    """Read and validate an anchors file.

    Raises:
        CheckError: ``file:line: field: problem`` lines.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckError([f"{path}: cannot read the anchors file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise CheckError([f"{path}: not a text file in UTF-8"]) from None
    try:
        root = compose(text)
        data = construct(root) if root is not None else None
    except YAMLProblem as exc:
        raise CheckError([f"{path}:{exc.line}: {exc.message}"]) from None
    if not isinstance(data, dict):
        raise CheckError([f"{path}:1: expected a mapping of fields (scale, low, high, anchors)"])
    try:
        spec = AnchorsFile.model_validate(data)
    except ValidationError as exc:
        raise CheckError(problem_lines(path, root, error=exc)) from None
    problems = anchor_problems(spec.question(), ("anchors",))
    if problems:
        raise CheckError(problem_lines(path, root, problems=problems))
    return spec


def read_labelled(path: Path, scale: int) -> tuple[list[str], np.ndarray]:
    """Texts and their labels (scale points) from a CSV with ``text`` and ``label`` columns.

    Raises:
        CheckError: ``file:line: field: problem`` for a missing column, a blank text or a
            label off the scale; fewer than 3 rows; labels that are all the same.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise CheckError([f"{path}: cannot read the labelled texts: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise CheckError([f"{path}: not a text file in UTF-8"]) from None
    if not rows:
        raise CheckError([f"{path}:1: expected a header row (text, label), found an empty file"])
    header = [h.strip() for h in rows[0]]
    missing = [c for c in ("text", "label") if c not in header]
    if missing:
        columns = ", ".join(header)
        raise CheckError([f"{path}:1: {c}: no such column (columns: {columns})" for c in missing])
    at_text, at_label = header.index("text"), header.index("label")
    problems, texts, labels = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        text = row[at_text].strip() if at_text < len(row) else ""
        label = row[at_label].strip() if at_label < len(row) else ""
        if not text:
            problems.append(f"{path}:{line}: text: expected a text, found a blank cell")
        if not label.isdigit() or not 1 <= int(label) <= scale:
            problems.append(
                f"{path}:{line}: label: expected a scale point 1-{scale}, found {label!r}"
            )
        else:
            texts.append(text)
            labels.append(int(label))
    if problems:
        raise CheckError(problems)
    if len(labels) < 3:
        raise CheckError([f"{path}: expected at least 3 labelled texts, found {len(labels)}"])
    if len(set(labels)) == 1:
        raise CheckError([f"{path}: every label is {labels[0]}: nothing to correlate with"])
    return texts, np.array(labels)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How SSR ratings with the anchors compare with the labels.

    Attributes:
        anchor_sets: The anchor sets used, lowest point first.
        n: Labelled texts.
        pearson: Pearson correlation of SSR expected ratings with the labels (None: the ratings
            do not vary).
        spearman: Spearman rank correlation of the same.
        mean_abs_error: Mean absolute difference of expected rating and label.
        confusion: ``(k, k)`` counts: row = label, column = SSR expected rating rounded.
    """

    anchor_sets: list[list[str]]
    n: int
    pearson: float | None
    spearman: float | None
    mean_abs_error: float
    confusion: np.ndarray


def check(
    spec: AnchorsFile, texts: list[str], labels: np.ndarray, encoder: Encoder | None = None
) -> CheckResult:
    """Rate ``texts`` by SSR with the anchors of ``spec`` and compare with ``labels``.

    Args:
        spec: The anchors file.
        texts: The labelled texts.
        labels: Their scale points.
        encoder: Sentence encoder; the packaged embedder when None.
    """
    from scipy import stats

    if encoder is None:
        from personahub.embeddings import get_embedder

        encoder = get_embedder()
    sets = anchor_sets(spec.question())
    k = spec.scale
    vectors = embed(encoder, texts + [a for one_set in sets for a in one_set])
    anchors = [vectors[len(texts) + j * k : len(texts) + (j + 1) * k] for j in range(len(sets))]
    pmf = rate(vectors[: len(texts)], anchors, spec.temperature)
    expected = pmf @ np.arange(1, k + 1)
    varies = bool(np.ptp(expected) > 1e-12)
    rounded = np.clip(np.rint(expected).astype(int), 1, k)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (labels - 1, rounded - 1), 1)
    return CheckResult(
        anchor_sets=sets,
        n=len(texts),
        pearson=float(stats.pearsonr(expected, labels)[0]) if varies else None,
        spearman=float(stats.spearmanr(expected, labels)[0]) if varies else None,
        mean_abs_error=float(np.abs(expected - labels).mean()),
        confusion=confusion,
    )
