"""LatentClassModel over measurement blocks: planted recovery for every Gaussian
structure and for a mixed Gaussian + Poisson model, frequency weights, monotone EM, the
Poisson likelihood with missing entries, and the estimator's API."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

from emnet.mixture import LatentClassModel
from emnet.mixture.measurement import FUTURE_METHODS, Gaussian, Measurement, Poisson

STRUCTURES = ("EEI", "VVI", "EEE", "VVV")
MEANS = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -3.0], [-2.0, 6.0, 3.0]])


def _covariances(structure: str) -> np.ndarray:
    rng = np.random.RandomState(7)
    A = rng.standard_normal((3, 3, 3)) * 0.6
    full = A @ np.transpose(A, (0, 2, 1)) + 0.5 * np.eye(3)
    if structure == "EEE":
        full = np.repeat(full[:1], 3, axis=0)
    if structure in ("EEI", "VVI"):
        full = full * np.eye(3)
    if structure == "EEI":
        full = np.repeat(full[:1], 3, axis=0)
    return full


def _planted(structure: str, n: int = 600, seed: int = 0):
    rng = np.random.RandomState(seed)
    z = rng.choice(3, n, p=[0.45, 0.35, 0.2])
    covs = _covariances(structure)
    X = np.empty((n, 3))
    for k in range(3):
        rows = z == k
        X[rows] = rng.multivariate_normal(MEANS[k], covs[k], size=rows.sum())
    return X, z, covs


def _match(model: LatentClassModel) -> np.ndarray:
    """The fitted class closest to each planted mean."""
    d = ((model.means_[:, None, :3] - MEANS[None]) ** 2).sum(axis=2)
    return d.argmin(axis=0)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_planted_recovery(structure: str) -> None:
    X, z, covs = _planted(structure, n=1500)
    m = LatentClassModel(3, covariance=structure, random_state=0).fit(X)
    assert m.converged_
    assert adjusted_rand_score(z, m.predict(X)) > 0.9
    order = _match(m)
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(m.means_[order], MEANS, atol=0.35)
    np.testing.assert_allclose(m.covariances_[order], covs, rtol=0.25, atol=0.2)
    assert m.covariances_.shape == (3, 3, 3) and m.means_.shape == (3, 3)
    np.testing.assert_allclose(m.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("accelerate", [True, False])
@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_em_never_decreases(structure: str, accelerate: bool, missing: float) -> None:
    X, _, _ = _planted(structure, n=300, seed=3)
    rng = np.random.RandomState(1)
    X[rng.uniform(size=X.shape) < missing] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    for seed in range(3):
        m = LatentClassModel(3, covariance=structure, n_init=1, random_state=seed,
                             accelerate=accelerate, init_params="random").fit(X)  # fmt: skip
        h = m.history_
        assert np.all(np.diff(h) >= -1e-12 * np.abs(h[:-1])), structure


def _mixed(n: int = 600, seed: int = 0):
    rng = np.random.RandomState(seed)
    z = rng.choice(2, n, p=[0.6, 0.4])
    g = np.array([[0.0, 0.0], [3.0, -2.0]])[z] + rng.standard_normal((n, 2))
    rates = np.array([[1.0, 6.0], [5.0, 2.0]])
    c = rng.poisson(rates[z]).astype(float)
    df = pd.DataFrame({"a": g[:, 0], "n1": c[:, 0], "b": g[:, 1], "n2": c[:, 1]})
    return df, z, rates


def test_mixed_gaussian_and_poisson() -> None:
    df, z, rates = _mixed()
    m = LatentClassModel(
        2, measurement={"gaussian": ["a", "b"], "poisson": ["n1", "n2"]}, covariance="VVV",
        random_state=0,
    ).fit(df)  # fmt: skip
    assert m.measurement_types_ == ["gaussian", "poisson"]
    assert adjusted_rand_score(z, m.predict(df)) > 0.9
    order = np.argsort(m.means_[:, 0])  # class with the smaller mean of "a" first
    np.testing.assert_allclose(m.rates_[order], rates, atol=0.3)
    np.testing.assert_allclose(m.means_[order][:, [1, 3]], rates, atol=0.3)
    assert m.covariances_.shape == (2, 2, 2)
    # (K − 1) + K·2 means + K·3 covariances + K·2 rates
    assert m.n_parameters_ == 1 + 4 + 6 + 4
    assert m.bic(df) == pytest.approx(-2 * m.score(df) * len(df) + 15 * np.log(len(df)))
    # positions work as well as names
    p = LatentClassModel(
        2, measurement={"gaussian": [0, 2], "poisson": [1, 3]}, covariance="VVV",
        random_state=0,
    ).fit(df.to_numpy())  # fmt: skip
    assert p.score(df.to_numpy()) == pytest.approx(m.score(df), rel=1e-10)


def test_poisson_missing_entries_are_marginalised() -> None:
    df, _, _ = _mixed(80)
    X = df[["n1", "n2"]].to_numpy(copy=True)
    X[::3, 0] = np.nan
    X[1::5, 1] = np.nan
    X[np.isnan(X).all(axis=1), 1] = 1.0
    m = LatentClassModel(2, measurement="poisson", random_state=0).fit(X)
    expected = []
    for x in X:
        o = ~np.isnan(x)
        dens = [m.weights_[k] * np.prod(poisson.pmf(x[o], m.rates_[k][o])) for k in range(2)]
        expected.append(np.log(sum(dens)))
    np.testing.assert_allclose(m.score_samples(X), expected, rtol=1e-12)
    assert np.all(np.diff(m.history_) >= -1e-12)


@pytest.mark.parametrize("kind", ["VVV", "EEI", "mixed"])
def test_frequency_weights_equal_repeated_rows(kind: str) -> None:
    if kind == "mixed":
        df, _, _ = _mixed(120, seed=2)
        X = df.to_numpy()
        options = dict(measurement={"gaussian": [0, 2], "poisson": [1, 3]}, covariance="VVI")
    else:
        X, _, _ = _planted(kind, n=150, seed=2)
        X[::7, 1] = np.nan
        options = dict(covariance=kind)
    counts = np.random.RandomState(0).randint(1, 4, size=len(X))
    repeated = np.repeat(X, counts, axis=0)
    # the same start for both: a short fit, then warm starts (EM from its parameters)
    start = LatentClassModel(2, n_init=1, max_iter=2, random_state=0, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
        fixed = dict(warm_start=True, accelerate=False, max_iter=200, tol=0.0)
        a = copy.deepcopy(start).set_params(**fixed).fit(X, sample_weight=counts)
        b = copy.deepcopy(start).set_params(**fixed).fit(repeated)
    np.testing.assert_allclose(a.history_, b.history_, rtol=1e-10)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-9)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9, atol=1e-12)
    assert a.bic(X, sample_weight=counts) == pytest.approx(b.bic(repeated), rel=1e-10)
    # and from their own starts (weighted draws differ), the same maximum
    c = LatentClassModel(2, random_state=0, **options).fit(X, sample_weight=counts)
    d = LatentClassModel(2, random_state=0, **options).fit(repeated)
    assert c.score(X, sample_weight=counts) == pytest.approx(d.score(repeated), abs=1e-6)


def test_sample_reorder_and_attributes() -> None:
    X, _, _ = _planted("VVI", n=300)
    m = LatentClassModel(3, covariance="VVI", random_state=0).fit(X)
    before = m.score_samples(X)
    proba = m.predict_proba(X)
    m.reorder([2, 0, 1])
    np.testing.assert_allclose(m.score_samples(X), before, rtol=1e-12)
    np.testing.assert_allclose(m.predict_proba(X), proba[:, [2, 0, 1]], rtol=1e-10)
    Xs, zs = m.sample(500)
    assert Xs.shape == (500, 3) and set(np.unique(zs)) <= {0, 1, 2}
    assert m.n_degenerate_starts_ == 0 and m.proper_maxima_note_ is None
    assert m.n_starts_at_best() >= 1
    assert issubclass(Gaussian, Measurement) and issubclass(Poisson, Measurement)
    assert "row_scores" in FUTURE_METHODS


def test_bad_inputs() -> None:
    X, _, _ = _planted("VVI", n=60)
    with pytest.raises(ValueError, match="covariance"):
        LatentClassModel(2, covariance="XYZ").fit(X)
    with pytest.raises(ValueError, match="measurement"):
        LatentClassModel(2, measurement="binomial").fit(X)
    with pytest.raises(ValueError, match="in no block"):
        LatentClassModel(2, measurement={"gaussian": [0, 1]}).fit(X)
    with pytest.raises(ValueError, match="two blocks"):
        LatentClassModel(2, measurement={"gaussian": [0, 1, 2], "poisson": [2]}).fit(X)
    with pytest.raises(ValueError, match="non-negative whole numbers"):
        LatentClassModel(2, measurement="poisson").fit(X)
    bad = X.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        LatentClassModel(2).fit(bad)
    with pytest.raises(ValueError, match="covariances_init"):
        LatentClassModel(2, covariance="VVV", covariances_init=np.ones((2, 3))).fit(X)
    m = LatentClassModel(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="columns"):
        m.predict(X[:, :2])


@pytest.mark.parametrize("kind", ["VVV", "EEI", "mixed"])
def test_save_and_load(kind: str, tmp_path) -> None:
    if kind == "mixed":
        X, _, _ = _mixed(200)
        options = dict(measurement={"gaussian": ["a", "b"], "poisson": ["n1", "n2"]})
    else:
        X = _planted(kind, n=200)[0]
        options = dict(covariance=kind)
    m = LatentClassModel(2, random_state=0, **options).fit(X)
    m.save(tmp_path / "model.npz")
    back = LatentClassModel.load(tmp_path / "model.npz")
    np.testing.assert_allclose(back.score_samples(X), m.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(back.covariances_, m.covariances_)
    assert back.n_parameters_ == m.n_parameters_
    np.testing.assert_array_equal(back.init_degenerate_, m.init_degenerate_)
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["gaussian_covariances"] = -arrays["gaussian_covariances"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="not a saved LatentClassModel"):
        LatentClassModel.load(tmp_path / "bad.npz")
