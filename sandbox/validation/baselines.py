"""The baselines every calibration is scored against, on the same held-out respondents.

* ``uniform``: every option equally likely;
* ``overall``: the real answer shares of the training split, given to every respondent (and so
  to every group): what you know without any demographics;
* ``logistic``: a multinomial logistic regression on the one-hot codebook columns, fitted on the
  training split: what a small pilot survey and a standard model give you.

Each returns per-respondent distributions (respondents x options), like the simulation's.
"""

from __future__ import annotations

import numpy as np

from sandbox.validation.respondents import Respondent


def uniform(n: int, k: int) -> np.ndarray:
    return np.full((n, k), 1.0 / k)


def overall(actual: np.ndarray, weights: np.ndarray, n: int, k: int) -> np.ndarray:
    """The training split's weighted answer shares, for each of ``n`` respondents."""
    shares = np.bincount(actual, weights=weights, minlength=k)
    return np.tile(shares / shares.sum(), (n, 1))


def features(respondents: list[Respondent], columns: list[str]) -> list[list[str]]:
    """The codebook words of each respondent (``unknown`` where blank), one per column."""
    return [[r.group(c) for c in columns] for r in respondents]


def logistic(
    train: list[list[str]],
    actual: np.ndarray,
    weights: np.ndarray,
    test: list[list[str]],
    k: int,
    seed: int,
) -> np.ndarray:
    """Predicted distributions for ``test`` from a multinomial logistic regression on one-hot
    demographics fitted on ``train`` (options never seen in training get probability 0)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    classes = np.unique(actual)
    out = np.zeros((len(test), k))
    if len(classes) == 1:  # everyone in training gave one answer: nothing to fit
        out[:, classes[0]] = 1.0
        return out
    encoder = OneHotEncoder(handle_unknown="ignore")
    x_train = encoder.fit_transform(np.array(train, dtype=object))
    model = LogisticRegression(max_iter=2000, random_state=seed)
    model.fit(x_train, actual, sample_weight=weights)
    out[:, model.classes_] = model.predict_proba(encoder.transform(np.array(test, dtype=object)))
    return out
