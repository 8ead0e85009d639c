"""Helpers every test file shares: a fit with its ConvergenceWarning silenced and the
planted (simulated) data sets the mixture tests draw from.

Import them by name (``from conftest import quiet_fit, planted_categorical``): pytest puts
``tests/`` on the import path because the folder is not a package.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

if TYPE_CHECKING:  # annotations only: collecting a test does not import the mixtures
    from emnet.mixture import CategoricalMixture, LatentClassModel


@pytest.fixture(autouse=True, scope="session")
def _latent_starts_in_one_thread() -> Iterator[None]:
    """LatentClassModel runs its starts on threads when a timed E-step is slow enough
    (``CONCURRENT_MIN_SECONDS``): the same results, but the calls' order would depend on
    the machine's load. Tests run its starts in the calling thread unless they ask for
    threads (tests/test_latent_threads.py). Session-scoped: hypothesis tests take it too."""
    from emnet.mixture.estimators import latent

    saved = latent.CONCURRENT_MIN_SECONDS
    latent.CONCURRENT_MIN_SECONDS = float("inf")
    yield
    latent.CONCURRENT_MIN_SECONDS = saved


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


# -- the backend tests (Dask, torch, stepwise EM) against the in-memory fit ------------------
MIXED = {"gaussian": [0, 1, 2], "poisson": [3, 4], "categorical": [5, 6]}
"""The measurement of :func:`planted_mixed`'s columns."""


@contextlib.contextmanager
def local_client(processes: bool) -> Iterator[Any]:
    """A Client of a 2-worker LocalCluster (1 thread each; worker processes or threads),
    its start-up warnings silenced; closed on exit."""
    distributed = pytest.importorskip("distributed")
    with (
        warnings.catch_warnings(),
        distributed.LocalCluster(
            n_workers=2, processes=processes, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        warnings.simplefilter("ignore")
        yield c


@pytest.fixture(scope="module")
def client():
    """A 2-worker LocalCluster (threads) for a module of Dask tests, closed after it; a
    test module may define its own ``client``."""
    with local_client(processes=False) as c:
        yield c


def planted_mixed(
    n: int = 600, seed: int = 0, missing: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """3 Gaussian, 2 Poisson and 2 categorical (4 answers) columns from 3 classes."""
    rng = np.random.default_rng(seed)
    z = rng.integers(3, size=n)
    mu = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0], [0.0, 3.0, 3.0]])
    G = mu[z] + rng.normal(size=(n, 3)) @ np.array([[1, 0.3, 0], [0, 1, 0.2], [0, 0, 1]])
    P = rng.poisson(np.array([1.0, 4.0, 9.0])[z][:, None] * np.ones((1, 2))).astype(float)
    C = ((rng.integers(0, 2, size=(n, 2)) + 2 * z[:, None]) % 4).astype(float)
    X = np.column_stack([G, P, C])
    if missing:
        X[rng.random(X.shape) < missing] = np.nan
        for cols, fill in (([0, 1, 2], 0), ([3, 4], 3), ([5, 6], 5)):  # no empty row per type
            empty = np.isnan(X[:, cols]).all(axis=1)
            X[empty, fill] = np.nanmedian(X[:, fill]) if fill != 5 else 1.0
    return X, z


def plain_em_latent(**extra: object) -> dict:
    # Plain EM (accelerate=False) for the equalities to 1e-10: EM is a contraction near
    # the maximum, so the rounding-level differences of summing by chunks stay at that
    # level; SQUAREM's step length is a ratio of differences of nearly equal iterates and
    # turns them into ~1e-8 differences of the parameters along flat directions of the
    # likelihood (test_dask_with_squarem_agrees_to_the_likelihood).
    kw = dict(
        n_components=3, n_init=1, random_state=0, max_iter=300, search_budget=0.0,
        accelerate=False,
    )  # fmt: skip
    kw.update(extra)
    return kw


def assert_same_latent(a: LatentClassModel, b: LatentClassModel, tol: float = 1e-10) -> None:
    assert a.n_iter_ == b.n_iter_
    assert abs(a.lower_bound_ - b.lower_bound_) <= tol
    np.testing.assert_allclose(b.history_, a.history_, rtol=0, atol=tol)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=0, atol=tol)
    np.testing.assert_allclose(b.means_, a.means_, rtol=0, atol=1e3 * tol, equal_nan=True)
    if a.covariances_ is not None:
        np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=0, atol=1e3 * tol)
    if a.rates_ is not None:
        np.testing.assert_allclose(b.rates_, a.rates_, rtol=0, atol=1e3 * tol)
    for key, probs in a.probs_.items():
        np.testing.assert_allclose(b.probs_[key], probs, rtol=0, atol=tol)


def planted_answers(
    n: int = 2000, seed: int = 0, missing: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """n rows × 8 items with 3 or 4 answers (1..R), K = 3 planted classes, NaN missing."""
    rng = np.random.default_rng(seed)
    K, R = 3, [3, 4, 3, 4, 3, 4, 3, 4]
    z = rng.choice(K, size=n, p=[0.5, 0.3, 0.2])
    X = np.empty((n, len(R)))
    for j, r in enumerate(R):
        probs = rng.dirichlet(np.full(r, 0.5), size=K)
        cum = probs[z].cumsum(axis=1)
        X[:, j] = 1 + (rng.random((n, 1)) > cum).sum(axis=1)
    if missing:
        X[rng.random(X.shape) < missing] = np.nan
        X[np.isnan(X).all(axis=1), 0] = 1.0
    return X, z


def plain_em_categorical(**extra: object) -> dict:
    # plain EM for the equalities to 1e-10 (see tests/test_latent_backends.py); at most 60
    # iterations: the fits are compared iteration by iteration, not at convergence
    kw = dict(
        n_components=3, random_state=0, n_init=1, search_budget=0.0, accelerate=False,
        max_iter=60,
    )  # fmt: skip
    kw.update(extra)
    return kw


def assert_same_categorical(
    a: CategoricalMixture, b: CategoricalMixture, tol: float = 1e-10
) -> None:
    assert a.n_iter_ == b.n_iter_
    assert abs(a.lower_bound_ - b.lower_bound_) <= tol
    np.testing.assert_allclose(b.history_, a.history_, rtol=0, atol=tol)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=0, atol=tol)
    for p, q in zip(a.probs_, b.probs_, strict=True):
        np.testing.assert_allclose(q, p, rtol=0, atol=tol)
    for p, q in zip(a.categories_, b.categories_, strict=True):
        np.testing.assert_array_equal(q, p)
