"""SSR anchors: grammatical default sentences for the usual label pairs, a generic fallback,
averaging over several anchor sets, and `sandbox ssr-check` on labelled texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sandbox.cli import app
from sandbox.forecast.anchors import anchor_sets, generic_anchors
from sandbox.forecast.scenario import LikertQuestion
from sandbox.forecast.ssr import rate, ssr_pmf
from sandbox.forecast.ssr_check import AnchorsFile, CheckError, read_anchors, read_labelled


def _question(low: str, high: str, scale: int = 5, anchors: list | None = None) -> LikertQuestion:
    return LikertQuestion(
        id="q", type="likert", ask="How?", scale=scale, low=low, high=high, anchors=anchors
    )


DEFAULTS = {
    ("strongly disagree", "strongly agree"): [
        "I strongly disagree.", "I disagree.", "I neither agree nor disagree.", "I agree.",
        "I strongly agree.",
    ],
    ("very unlikely", "very likely"): [
        "It is very unlikely that I would do this.", "It is unlikely that I would do this.",
        "It is neither likely nor unlikely that I would do this.",
        "It is likely that I would do this.", "It is very likely that I would do this.",
    ],
    ("definitely would not buy it", "definitely would buy it"): [
        "I definitely would not buy it.", "I probably would not buy it.",
        "I might or might not buy it.", "I probably would buy it.",
        "I definitely would buy it.",
    ],
    ("very dissatisfied", "very satisfied"): [
        "I am very dissatisfied.", "I am dissatisfied.", "I am neither satisfied nor dissatisfied.",
        "I am satisfied.", "I am very satisfied.",
    ],
    ("very bad", "very good"): [
        "I think it is very bad.", "I think it is bad.", "I think it is neither good nor bad.",
        "I think it is good.", "I think it is very good.",
    ],
}  # fmt: skip


@pytest.mark.parametrize(("labels", "expected"), list(DEFAULTS.items()), ids=lambda v: str(v))
def test_default_anchors_are_grammatical_sentences(labels: tuple[str, str], expected: list) -> None:
    sets = anchor_sets(_question(*labels))
    assert sets[0] == expected
    assert len(sets) == 3  # averaged over several wordings, as in the paper
    for one_set in sets:
        assert len(set(one_set)) == 5
        assert all(a[0].isupper() and a.endswith(".") and "  " not in a for a in one_set)
    # The extremes say the labels' words: no grade stacked on an intensifier.
    assert not any("slightly definitely" in a or "somewhat strongly" in a
                   for s in sets for a in s)  # fmt: skip


def test_purchase_intent_on_other_scales_and_the_second_wording() -> None:
    seven = anchor_sets(_question("definitely would not buy it", "definitely would buy it", 7))
    assert seven[1] == [
        "Honestly, I definitely would not buy it.", "Honestly, I probably would not buy it.",
        "Honestly, I doubt that I would buy it.", "Honestly, I might or might not buy it.",
        "Honestly, I think that I would buy it.", "Honestly, I probably would buy it.",
        "Honestly, I definitely would buy it.",
    ]  # fmt: skip
    four = anchor_sets(_question("very unlikely", "very likely", 4))[0]
    assert "neither" not in " ".join(four) and len(four) == 4


def test_unknown_labels_fall_back_to_quoted_labels() -> None:
    anchors = anchor_sets(_question("terrible", "wonderful"))
    assert anchors == [[
        'My answer is "terrible".',
        'My answer is much closer to "terrible" than to "wonderful".',
        'My answer is halfway between "terrible" and "wonderful".',
        'My answer is much closer to "wonderful" than to "terrible".',
        'My answer is "wonderful".',
    ]]  # fmt: skip
    # A reversed scale is not read as a known pair.
    assert anchor_sets(_question("very good", "very bad"))[0][0] == 'My answer is "very good".'
    # A question's own anchors win, as one set or several.
    own = ["a.", "b.", "c."]
    assert anchor_sets(_question("x", "y", 3, own)) == [own]
    assert anchor_sets(_question("x", "y", 3, [own, own[::-1]])) == [own, own[::-1]]
    assert generic_anchors(_question("strongly disagree", "strongly agree", 3, own))[0] == (
        "I strongly disagree."
    )


def test_rating_averages_the_pmfs_of_every_set() -> None:
    rng = np.random.default_rng(0)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    reactions, first, second = (
        unit(rng.normal(size=(4, 8))),
        unit(rng.normal(size=(5, 8))),
        unit(rng.normal(size=(5, 8))),
    )
    both = rate(reactions, [first, second])
    expected = (ssr_pmf(reactions @ first.T) + ssr_pmf(reactions @ second.T)) / 2
    assert both == pytest.approx(expected)
    assert both.sum(axis=1) == pytest.approx(np.ones(4))
    assert not np.allclose(both, ssr_pmf(reactions @ first.T))


LABELLED = """\
text,label
"I would never buy this, it is useless to me.",1
"No way, I am not buying it.",1
"I doubt I would get it.",2
"Maybe, I am not sure either way.",3
"I will probably pick one up.",4
"I am definitely buying it as soon as it is out!",5
"I love it and will buy it today.",5
"""


def test_ssr_check_correlates_with_the_labels(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.yaml"
    anchors.write_text(
        "scale: 5\nlow: definitely would not buy it\nhigh: definitely would buy it\n",
        encoding="utf-8",
    )
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(LABELLED, encoding="utf-8")
    done = CliRunner().invoke(app, ["ssr-check", str(anchors), str(labelled)],
                              env={"COLUMNS": "250"})  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "I definitely would not buy it." in done.output and "set 3" in done.output
    line = next(x for x in done.output.splitlines() if x.startswith("7 labelled texts"))
    pearson = float(line.split("Pearson r ")[1].split(",")[0])
    spearman = float(line.split("Spearman rho ")[1].split(",")[0])
    assert pearson > 0 and spearman > 0
    assert "confusion: rows are the labels, columns the SSR expected rating" in done.output


def test_ssr_check_errors_name_file_line_and_field(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.yaml"
    anchors.write_text("scale: 3\nanchors:\n  - [one., two.]\ncolour: red\n", encoding="utf-8")
    with pytest.raises(CheckError) as caught:
        read_anchors(anchors)
    assert caught.value.problems == [f"{anchors}:4: colour: unknown field 'colour'"]
    anchors.write_text("scale: 3\nanchors: [one., two.]\n", encoding="utf-8")
    with pytest.raises(CheckError) as caught:
        read_anchors(anchors)
    assert caught.value.problems == [
        f"{anchors}:2: anchors: expected one statement per scale point (3), found 2"
    ]
    anchors.write_text("scale: 30\n", encoding="utf-8")
    with pytest.raises(CheckError, match=r"anchors.yaml:1: scale: expected less than or equal"):
        read_anchors(anchors)
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,label\nfine,2\n,3\nbad,9\n", encoding="utf-8")
    with pytest.raises(CheckError) as caught:
        read_labelled(labelled, 5)
    assert caught.value.problems == [
        f"{labelled}:3: text: expected a text, found a blank cell",
        f"{labelled}:4: label: expected a scale point 1-5, found '9'",
    ]
    labelled.write_text("review,label\nfine,2\n", encoding="utf-8")
    with pytest.raises(CheckError, match=r"labelled.csv:1: text: no such column"):
        read_labelled(labelled, 5)
    labelled.write_text("text,label\na,2\nb,2\nc,2\n", encoding="utf-8")
    with pytest.raises(CheckError, match="every label is 2"):
        read_labelled(labelled, 5)
    done = CliRunner().invoke(app, ["ssr-check", str(anchors), str(labelled)])
    assert done.exit_code == 2 and "scale: expected less than or equal to 11" in done.output
    assert AnchorsFile().question().scale == 5
