"""Hostile scenario files: each is refused in one line naming file:line, never a traceback,
and never after unbounded work (issue 17)."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from sandbox.scenario_loader import ScenarioError, load_scenario
from sandbox.scenario_yaml import MAX_ALIAS_VALUES, MAX_DEPTH

BASE = """\
name: base
steps: 3
timeline:
  - step: 0
    content: Launch.
questions:
  - id: intent
    ask: Would you buy?
    type: choice
    options: [yes, no]
"""


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert "Traceback" not in str(caught.value)
    return caught.value.problems


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def one_problem(tmp_path: Path, text: str, line: int, *fragments: str) -> str:
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: "), problems
    assert all(f in problems[0] for f in fragments), problems
    return problems[0]


# (id, text, line, fragments)
REFUSED = [
    # item 2: a non-finite range made every number answer fail
    (
        "number min nan",
        BASE + '  - {id: pay, ask: "How much?", type: number, min: .nan, max: 5}\n',
        11,
        ["questions[1].min", "finite number"],
    ),
    (
        "number max inf",
        BASE + '  - id: pay\n    ask: "How much?"\n    type: number\n    min: 0\n    max: .inf\n',
        15,
        ["questions[1].max", "finite number"],
    ),
    # item 11
    ("complex key", BASE + "? [a, b]\n: 1\n", 11, ["expected a text key, found a list"]),
    # item 13
    (
        "merge key",
        BASE + "base: &b {relation: friend}\ngraph:\n  <<: *b\n  type: watts_strogatz\n",
        13,
        ["merge key `<<` is not supported"],
    ),
    ("numeric key", BASE + "1: one\n", 11, ["expected a text key, found 1", "quotes"]),
    ("null key", BASE + "~: nothing\n", 11, ["expected a text key, found ~"]),
    (
        "aliased value at the alias",
        "name: &n base\nsteps: 3\n" + BASE.split("steps: 3\n")[1] + "description: [*n]\n",
        11,
        ["description"],
    ),
    # item 14
    (
        "blank option",
        BASE.replace("[yes, no]", '[yes, no, " "]'),
        10,
        ["questions[0].options[2]", "blank"],
    ),
    (
        "options differing in case and spaces",
        BASE.replace("[yes, no]", '[Yes, "yes ", no]'),
        10,
        ["questions[0].options[1]", "unique (ignoring case and spaces)", "'Yes'"],
    ),
    # item 8: nested aliases multiply
    (
        "billion laughs",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n"
            for i in range(8)
        ),
        None,
        ["aliases expand to more than", "write the values out"],
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "fragments"), [pytest.param(t, ln, f, id=i) for i, t, ln, f in REFUSED]
)
def test_refused_in_one_line_at_its_line(
    tmp_path: Path, text: str, line: int | None, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    started = time.process_time()
    problems = problems_of(path)
    assert time.process_time() - started < 10  # not the old 20 s, 620 MB of alias expansion
    matching = [
        p
        for p in problems
        if (line is None or p.startswith(f"{path}:{line}: ")) and all(f in p for f in fragments)
    ]
    assert matching, (line, fragments, problems)


def test_alias_expansion_is_capped_at_the_alias_that_crosses_the_cap(tmp_path: Path) -> None:
    # 10**6 values from 6 short lines: refused at the first alias past the cap (e: 111,110)
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcde", "bcdef", strict=True)
    ]
    problem = one_problem(tmp_path, "\n".join(lines) + "\n", 5, "aliases expand")
    assert f"{MAX_ALIAS_VALUES:,}" in problem


def test_few_aliases_still_work(tmp_path: Path) -> None:
    text = BASE.replace("Launch.", "&launch Launch.") + "description: *launch\n"
    assert load_scenario(write(tmp_path, text)).description == "Launch."


def test_deep_nesting(tmp_path: Path) -> None:
    deep = "x: " + "[" * 5000 + "]" * 5000 + "\n"
    one_problem(tmp_path, BASE + deep, 11, "nest")  # libyaml's own limit, or ours
    block = "".join("  " * i + f"k{i}:\n" for i in range(1200))
    one_problem(tmp_path, BASE + block, 11 + MAX_DEPTH, "nested deeper")


def test_not_utf8_or_binary(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.encode() + "description: caf\xe9\n".encode("latin-1"))
    assert problems_of(path) == [f"{path}:11: not a text file in UTF-8 (byte 0xe9)"]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\n\x00\x01\x02steps: 3\n")
    [problem] = problems_of(binary)
    assert problem.startswith(f"{binary}:2: not valid YAML")


def test_directory_and_symlink_loop_are_not_missing_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == [f"{tmp_path}: is a directory, not a scenario file"]
    loop = tmp_path / "loop.yaml"
    os.symlink(loop, loop)
    [problem] = problems_of(loop)
    assert problem.startswith(f"{loop}: cannot read the scenario file: ")
    assert "not found" not in problem


def test_long_values_are_quoted_cut(tmp_path: Path) -> None:
    huge = "x" * 100_000
    problem = one_problem(tmp_path, BASE.replace("steps: 3", f"steps: {huge}"), 2, "steps")
    assert len(problem) < 400 and "100,000 characters" in problem


POPULATION = BASE + "population:\n  source: {source}\n"


@pytest.mark.parametrize(
    ("source", "content", "fragment"),
    [
        ("absent.jsonl", None, "file not found"),
        ("folder", "dir", "is a directory"),
        ("people.csv", "name,age\nAda,36\n", "no persona text column"),
        ("people.jsonl", "", "no personas"),
    ],
)
def test_population_source_is_checked_at_its_line(
    tmp_path: Path, source: str, content: str | None, fragment: str
) -> None:
    if content == "dir":
        (tmp_path / source).mkdir()
    elif content is not None:
        (tmp_path / source).write_text(content)
    one_problem(tmp_path, POPULATION.format(source=source), 12, "population.source", fragment)


def test_population_source_with_personas_loads(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("persona,age\nA nurse.,36\n")
    assert load_scenario(write(tmp_path, POPULATION.format(source="people.csv")))


def test_large_scenario_validates_in_linear_time(tmp_path: Path) -> None:
    # about 5 MB: 5,000 long events. The old loader parsed the text twice in pure Python.
    event = "  - step: 0\n    content: " + "word " * 190 + "\n"
    path = write(tmp_path, BASE.replace("  - step: 0\n    content: Launch.\n", event * 5200))
    assert path.stat().st_size > 4_900_000
    started = time.process_time()
    assert len(load_scenario(path).timeline) == 5200
    assert time.process_time() - started < 20


NPC = """\
name: w
mode: npc_world
steps: 2
world:
  name: 5
  places: oops
"""


def test_npc_world_errors_name_the_world_field_once(tmp_path: Path) -> None:
    path = write(tmp_path, NPC)
    problems = problems_of(path)
    assert f"{path}:5: world.name: expected a valid string (found 5)" in problems
    assert f"{path}:6: world.places: expected a valid list (found 'oops')" in problems
    assert not [p for p in problems if "world.World" in p or "world.str" in p], problems


def test_missing_world_file_is_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: w\nmode: npc_world\nsteps: 2\nworld: nothere.yaml\n")
    assert problems_of(path) == [
        f"{path}:4: world: world file not found: {tmp_path / 'nothere.yaml'}"
    ]
