"""The scenario schema: every field loads, and malformed files get precise one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandbox.forecast.scenario import ChoiceQuestion, LikertQuestion, NumberQuestion, TextQuestion
from sandbox.scenario import Homophily, StoredEdges
from sandbox.scenario_loader import ScenarioError, load_scenario

REPO = Path(__file__).resolve().parents[1]

FULL = """\
name: full-example
description: Every field set.
mode: forecast
seed: 11
population:
  source: people.jsonl
  sample: 20
  text_field: persona
  filter:
    contains_any: [bike, bus]
    regex: "nurse|teacher"
    attributes: {age_band: ["18-24", "25-34"], location: city centre}
graph:
  type: homophily
  k: 4
  p: 0.2
  relation: lookalike
steps: 4
timeline:
  - step: 0
    channel: broadcast
    content: Launch.
    source: VeloCity
  - step: 1
    channel: targeted
    content: Student discount.
    target: {attributes: {age_band: "18-24"}}
  - step: 2
    channel: seeded
    k: 3
    content: Rumour.
interaction:
  word_of_mouth: false
  activation: 0.5
  memory_size: 3
  posts_seen: 2
questions:
  - {id: intent, ask: "Would you subscribe?", type: choice, options: [yes, maybe, no]}
  - id: price_ok
    ask: Is the price fair?
    type: likert
    scale: 5
    low: very unfair
    high: very fair
    anchors: [a, b, c, d, e]
  - {id: pay, ask: "What would you pay?", type: number, min: 0, max: 100, unit: "$"}
  - {id: why, ask: "Why?", type: text, max_length: 120}
metrics: [intent, price_ok]
segments: [age_band, community]
llm: {backend: openai, model: m, temperature: 0.3, max_tokens: 200}
report: {transcripts_per_segment: 4}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def people(tmp_path: Path) -> None:
    """The persona file FULL names (the loader checks that it exists and has personas)."""
    (tmp_path / "people.jsonl").write_text('{"persona": "A nurse who cycles."}\n')


def test_every_field_loads(tmp_path: Path) -> None:
    people(tmp_path)
    s = load_scenario(write(tmp_path, FULL))
    assert s.name == "full-example" and s.seed == 11 and s.steps == 4
    assert s.population.sample == 20 and s.population.text_field == "persona"
    assert s.population.filter is not None
    assert s.population.filter.attributes["age_band"] == ["18-24", "25-34"]
    assert isinstance(s.graph, Homophily) and s.graph.k == 4 and s.graph.relation == "lookalike"
    assert [e.channel for e in s.timeline] == ["broadcast", "targeted", "seeded"]
    assert s.timeline[1].target is not None and s.timeline[2].k == 3
    assert s.interaction.activation == 0.5 and s.interaction.memory_size == 3
    assert not s.interaction.word_of_mouth and s.interaction.posts_seen == 2
    kinds = [type(q) for q in s.questions]
    assert kinds == [ChoiceQuestion, LikertQuestion, NumberQuestion, TextQuestion]
    # YAML 1.1 would have read yes/no as booleans
    assert s.questions[0].options == ["yes", "maybe", "no"]
    assert s.metric_ids == ["intent", "price_ok"]
    assert s.segments == ["age_band", "community"]
    assert s.llm.temperature == 0.3 and s.report.transcripts_per_segment == 4


def test_defaults(tmp_path: Path) -> None:
    s = load_scenario(
        write(
            tmp_path,
            """\
            name: minimal
            steps: 2
            timeline: [{step: 0, content: hello}]
            questions: [{id: q, ask: "Do you like it?", type: likert}]
            """,
        )
    )
    assert s.population.source == "sample" and s.graph.type == "watts_strogatz"
    assert s.interaction.word_of_mouth and s.interaction.activation == 0.6
    assert s.questions[0].scale == 5 and s.metric_ids == ["q"]


def test_shipped_scenarios_are_valid() -> None:
    shipped = sorted((REPO / "scenarios").glob("*.yaml"))
    assert len(shipped) >= 3
    for path in shipped:
        load_scenario(path)


def test_persona_edges_graph(tmp_path: Path) -> None:
    people(tmp_path)
    text = FULL.replace("type: homophily\n  k: 4\n  p: 0.2", "type: persona_edges")
    assert isinstance(load_scenario(write(tmp_path, text)).graph, StoredEdges)


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

# (description, replacement of BASE text or full text, expected line, expected fragments)
MALFORMED = [
    ("bad yaml", "name: [unclosed\n", 2, ["not valid YAML", "line 1"]),
    ("not a mapping", "- just\n- a list\n", 1, ["expected a mapping"]),
    ("missing steps", BASE.replace("steps: 3\n", ""), 1, ["steps", "required field is missing"]),
    ("steps not int", BASE.replace("steps: 3", "steps: three"), 2, ["steps", "integer", "'three'"]),
    (
        "steps zero",
        BASE.replace("steps: 3", "steps: 0"),
        2,
        ["steps", "greater than or equal to 1"],
    ),
    ("unknown top field", BASE + "stepz: 4\n", 11, ["stepz", "unknown field"]),
    (
        "typo in question field",
        BASE.replace("    options: [yes, no]", "    optoins: [yes, no]"),
        10,
        ["questions[0].optoins", "did you mean 'options'"],
    ),
    (
        "unknown question type",
        BASE.replace("type: choice", "type: ranking"),
        9,
        ["questions[0].type", "'ranking'", "choice"],
    ),
    (
        "one option",
        BASE.replace("[yes, no]", "[yes]"),
        10,
        ["questions[0].options", "at least 2"],
    ),
    (
        "event after the end",
        BASE.replace("  - step: 0", "  - step: 7"),
        4,
        ["timeline[0].step", "below steps=3", "7"],
    ),
    (
        "seeded without k",
        BASE.replace("    content: Launch.", "    channel: seeded\n    content: Launch."),
        4,
        ["timeline[0]", "needs `k`"],
    ),
    (
        "bad channel",
        BASE.replace("    content: Launch.", "    channel: radio\n    content: Launch."),
        5,
        ["timeline[0].channel", "'radio'", "broadcast"],
    ),
    (
        "activation out of range",
        BASE + "interaction:\n  activation: 1.5\n",
        12,
        ["interaction.activation", "1.5"],
    ),
    (
        "metric not a question",
        BASE + "metrics: [intent, nope]\n",
        11,
        ["metrics[1]", "question id", "'nope'"],
    ),
    (
        "graph k not a number",
        BASE + "graph:\n  type: watts_strogatz\n  k: six\n",
        13,
        ["graph.k", "'six'"],
    ),
    (
        "graph without type",
        BASE + "graph:\n  k: 4\n",
        12,
        ["graph", "type"],
    ),
    (
        "reserved question id",
        BASE.replace("id: intent", "id: reaction"),
        7,
        ["questions[0].id", "reserved"],
    ),
    (
        "likert anchors count",
        BASE + '  - {id: fair, ask: "Is it fair?", type: likert, scale: 5, anchors: [a, b]}\n',
        11,
        ["questions[1].anchors", "one statement per scale point (5), found 2"],
    ),
    (
        "number range inverted",
        BASE + '  - {id: pay, ask: "How much?", type: number, min: 10, max: 5}\n',
        11,
        ["questions[1].max", "more than min=10", "found 5"],
    ),
    ("duplicate key", BASE + "steps: 5\n", 11, ["duplicate key 'steps'"]),
    (
        "field of another graph type",
        BASE + "graph:\n  type: persona_edges\n  k: 4\n",
        13,
        ["graph.k", "unknown field 'k'", "allowed here: connect_isolated, relation, type"],
    ),
    (
        "text question as a metric",
        BASE + '  - {id: why, ask: "Why?", type: text}\nmetrics: [why]\n',
        12,
        ["metrics[0]", "text question cannot be charted"],
    ),
    (
        "k on a broadcast event",
        BASE.replace("    content: Launch.", "    k: 3\n    content: Launch."),
        5,
        ["timeline[0].k", "only for seeded events"],
    ),
    (
        "bad regex",
        BASE + "population:\n  filter: {regex: '(unclosed'}\n",
        12,
        ["population.filter.regex", "not a valid regular expression"],
    ),
    ("negative seed", BASE + "seed: -1\n", 11, ["seed", "greater than or equal to 0"]),
    (
        "bad question id",
        BASE.replace("id: intent", "id: Intent"),
        7,
        ["questions[0].id", "lowercase id", "'Intent'"],
    ),
    (
        "field of the npc_world mode",
        BASE + "world: saltmere.yaml\n",
        11,
        ["world", "world is for npc_world mode, not forecast"],
    ),
    (
        "field of the forecast mode in an npc world",
        "mode: npc_world\n" + BASE,
        8,
        ["questions", "questions are for forecast mode, not npc_world"],
    ),
    (
        "unknown mode",
        BASE + "mode: quiz\n",
        11,
        ["mode", "expected one of 'forecast', 'npc_world'", "'quiz'"],
    ),
    (
        "population as a string",
        BASE + "population: sample\n",
        11,
        ["population", "expected a mapping"],
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [pytest.param(t, ln, fr, id=name) for name, t, ln, fr in MALFORMED],
)
def test_malformed_scenarios_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, fragments: list[str]
) -> None:
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    problems = caught.value.problems
    matching = [
        p for p in problems if p.startswith(f"{path}:{line}: ") and all(f in p for f in fragments)
    ]
    assert matching, (line, fragments, problems)
    assert "Traceback" not in str(caught.value)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "absent.yaml")
    assert caught.value.problems == [f"{tmp_path / 'absent.yaml'}: scenario file not found"]


def test_selector_matches_like_the_store_filter(tmp_path: Path) -> None:
    text = BASE.replace(
        "    content: Launch.",
        "    channel: targeted\n    target: {attributes: {interests: Cycling, age: 20}}\n"
        "    content: Launch.",
    )
    target = load_scenario(write(tmp_path, text)).timeline[0].target
    assert target is not None
    # list attributes match by membership, without case; numbers compare as text
    assert target.matches("x", {"interests": ["cycling", "chess"], "age": 20})
    assert not target.matches("x", {"interests": ["chess"], "age": 20})
    assert not target.matches("x", {"interests": "cycling", "age": 21})
