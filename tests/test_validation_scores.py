"""Scores against hand-computed values, and the baselines on synthetic data with a known effect."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from sandbox.validation import baselines
from sandbox.validation.respondents import Respondent
from sandbox.validation.scores import (
    accuracy,
    dispersion,
    ks,
    log_loss,
    score,
    simbench,
    total_variation,
    w1_score,
)


def v(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)


def test_total_variation_and_simbench_normalisation() -> None:
    real = v(0.25, 0.25, 0.5)
    assert total_variation(v(0.5, 0.5, 0), real) == pytest.approx(0.5)
    # TV(uniform, real) = 0.5 * (1/12 + 1/12 + 1/6) = 1/6, so 100 * (1 - 0.5 / (1/6)) = -200
    assert simbench(v(0.5, 0.5, 0), real) == pytest.approx(-200.0)
    assert simbench(real.copy(), real) == pytest.approx(100.0)
    assert simbench(np.full(3, 1 / 3), real) == pytest.approx(0.0)
    # halfway between uniform and real: TV halves
    assert simbench((np.full(3, 1 / 3) + real) / 2, real) == pytest.approx(50.0)
    assert simbench(v(1, 0, 0), np.full(3, 1 / 3)) is None  # real is uniform: undefined


def test_wasserstein_and_ks_over_ordered_options() -> None:
    real = v(0, 0, 1)
    assert w1_score(v(1, 0, 0), real) == pytest.approx(0.0)  # opposite ends
    assert w1_score(v(0, 1, 0), real) == pytest.approx(0.5)  # one step of two
    assert w1_score(real, real) == pytest.approx(1.0)
    assert ks(v(0, 1, 0), real) == pytest.approx(1.0)
    assert ks(v(0.2, 0.3, 0.5), v(0.1, 0.4, 0.5)) == pytest.approx(0.1)


def test_dispersion_is_an_entropy_ratio() -> None:
    assert dispersion(v(0.5, 0.5, 0), np.full(3, 1 / 3)) == pytest.approx(math.log(2) / math.log(3))
    assert dispersion(v(1, 0, 0), v(0.5, 0.5, 0)) == 0.0
    assert dispersion(v(0.5, 0.5, 0), v(1, 0, 0)) is None  # everyone gave one answer


def test_per_respondent_accuracy_and_log_loss() -> None:
    probs = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    actual = np.array([0, 1])
    ones = np.ones(2)
    assert accuracy(probs, actual, ones) == pytest.approx(0.25)  # a tie of two gives 1/2
    # the wrong one-hot is clipped at 1e-4: (ln 2 + ln 1e4) / 2
    assert log_loss(probs, actual, ones) == pytest.approx((math.log(2) + math.log(1e4)) / 2)
    assert accuracy(probs, actual, np.array([3.0, 1.0])) == pytest.approx(0.375)  # weighted
    assert accuracy(np.full((4, 4), 0.25), np.array([0, 1, 2, 3]), np.ones(4)) == 0.25


def test_score_collects_every_score() -> None:
    probs = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)
    actual = np.array([1, 1, 1, 2])
    nominal = score(probs, np.ones(4), ordinal=False, actual=actual)
    assert nominal.n == 4 and nominal.w1 is None and nominal.ks is None
    assert nominal.accuracy == 0.75
    ordinal = score(probs, np.ones(4), ordinal=True, actual=actual)
    # pred (.25, .5, .25) vs real (0, .75, .25): cumulative gaps .25, 0 -> W1 .25 of 2 steps
    assert ordinal.w1 == pytest.approx(0.875) and ordinal.ks == pytest.approx(0.25)
    counts = score(probs, np.ones(4), ordinal=False, real=v(0, 0.75, 0.25))
    assert counts.simbench == nominal.simbench and counts.accuracy is None


def _synthetic(n: int, seed: int) -> list[Respondent]:
    """Group a answers 0 nine times in ten, group b answers 1; a noise column says nothing."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        group = rng.choice("ab")
        usual = "0" if group == "a" else "1"
        answer = usual if rng.random() < 0.9 else rng.choice("012")
        attributes = {"g": group, "noise": rng.choice(["x", "y", "z"])}
        out.append(Respondent(f"r{i}", attributes, {"q": answer}))
    return out


def test_logistic_baseline_learns_a_known_effect() -> None:
    train, test = _synthetic(400, 1), _synthetic(200, 2)
    y_train = np.array([int(r.answers["q"]) for r in train])
    actual = np.array([int(r.answers["q"]) for r in test])
    ones = np.ones(len(test))
    columns = ["g", "noise"]
    fitted = baselines.logistic(
        baselines.features(train, columns),
        y_train,
        np.ones(len(train)),
        baselines.features(test, columns),
        3,
        seed=0,
    )
    assert fitted.shape == (200, 3) and np.allclose(fitted.sum(axis=1), 1)
    uniform = baselines.uniform(200, 3)
    overall = baselines.overall(y_train, np.ones(len(train)), 200, 3)
    assert accuracy(fitted, actual, ones) > 0.85 > accuracy(overall, actual, ones)
    assert log_loss(fitted, actual, ones) < log_loss(overall, actual, ones)
    assert log_loss(overall, actual, ones) < log_loss(uniform, actual, ones)
    in_a = np.array([r.attributes["g"] == "a" for r in test])
    group_a = score(fitted[in_a], ones[in_a], False, actual=actual[in_a])
    overall_a = score(overall[in_a], ones[in_a], False, actual=actual[in_a])
    assert group_a.simbench is not None and overall_a.simbench is not None
    assert group_a.simbench > 80 > overall_a.simbench


def test_logistic_baseline_with_one_answer_in_training() -> None:
    fitted = baselines.logistic([["a"], ["b"]], np.array([2, 2]), np.ones(2), [["a"]], 3, seed=0)
    assert fitted.tolist() == [[0.0, 0.0, 1.0]]
