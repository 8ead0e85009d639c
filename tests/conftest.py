"""Helpers every test file shares: a fit with its ConvergenceWarning silenced and the
planted (simulated) data sets the mixture tests draw from.

Import them by name (``from conftest import quiet_fit, planted_categorical``): pytest puts
``tests/`` on the import path because the folder is not a package.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning


def quiet_fit(model: Any, *args: Any, **kw: Any) -> Any:
    """``model.fit(*args, **kw)`` with scikit-learn's ConvergenceWarning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kw)


def draw_answers(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One 0-based answer per row from the rows' answer probabilities (n, R)."""
    return (rng.uniform(size=(len(probs), 1)) > np.cumsum(probs, axis=1)).sum(axis=1)


def planted_binary(
    n: int, K: int, D: int, seed: int, nan_frac: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, z, weights, means): n rows of D binary items from K classes with shares drawn
    from Dirichlet(5) and item means from U(0.05, 0.95); a share ``nan_frac`` of the entries
    missing (every row keeps one answer)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(K, 5.0))
    means = rng.uniform(0.05, 0.95, size=(K, D))
    z = rng.choice(K, size=n, p=weights)
    X = (rng.uniform(size=(n, D)) < means[z]).astype(np.float64)
    if nan_frac:
        X[rng.uniform(size=X.shape) < nan_frac] = np.nan
        X[np.isnan(X).all(axis=1), 0] = 1.0
    return X, z, weights, means


def planted_categorical(
    n: int,
    n_categories: list[int],
    K: int,
    seed: int,
    missing: float = 0.0,
    weights: Any = None,
    concentration: float = 0.4,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(X, probs, weights): n rows of polytomous items (0-based codes as floats) from K
    classes; shares drawn from Dirichlet(5) unless ``weights`` is given, each item's answer
    probabilities per class from Dirichlet(``concentration``) (small = well separated);
    a share ``missing`` of the entries NaN (every row keeps one answer)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(K, 5.0)) if weights is None else np.asarray(weights)
    probs = [rng.dirichlet(np.full(r, concentration), size=K) for r in n_categories]
    z = rng.choice(K, size=n, p=weights)
    X = np.empty((n, len(n_categories)))
    for j, p in enumerate(probs):
        X[:, j] = draw_answers(rng, p[z])
    if missing:
        mask = rng.uniform(size=X.shape) < missing
        mask[mask.all(axis=1), 0] = False
        X[mask] = np.nan
    return X, probs, weights


def planted_profiles(n: int = 300, seed: int = 0, D: int = 3, shift: float = 3.0) -> np.ndarray:
    """Two Gaussian profiles with class-varying variances (VVI), shares 0.4 / 0.6."""
    rng = np.random.RandomState(seed)
    z = rng.rand(n) < 0.4
    mu0, mu1 = np.zeros(D), np.linspace(shift, -shift / 2, D)
    sd0, sd1 = np.linspace(1.0, 2.0, D), np.linspace(1.0, 0.5, D)
    return np.where(z[:, None], rng.normal(mu0, sd0, (n, D)), rng.normal(mu1, sd1, (n, D)))
