"""Gaussian measurement (latent profile analysis): scikit-learn's EM from the same start,
direct maximisation, the marginal likelihood with missing entries, mclust's parameter
counts, and the proper-maxima rule on iris and on tied scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from emnet.mixture import LatentClassModel
from emnet.mixture.measurement.gaussian import EIGEN_FLOOR, Gaussian, expand

IRIS = load_iris().data
IRIS_VVV3 = -180.1855  # mclust's VVV, K = 3 maximum on iris


def _iris_start(rng: np.random.RandomState, K: int = 3):
    rows = rng.choice(len(IRIS), K, replace=False)
    means = IRIS[rows] + 0.1 * rng.standard_normal((K, 4))
    base = np.cov(IRIS.T)
    full = np.stack([base * (0.5 + 0.5 * k) for k in range(K)])
    weights = np.arange(1.0, K + 1.0)
    return weights / weights.sum(), means, full


@pytest.mark.parametrize("structure,sk", [("VVV", "full"), ("VVI", "diag"), ("EEE", "tied")])
def test_matches_sklearn_from_the_same_start(structure: str, sk: str) -> None:
    weights, means, full = _iris_start(np.random.RandomState(3))
    if structure == "VVV":
        cov = full
    elif structure == "VVI":
        cov = np.diagonal(full, axis1=1, axis2=2).copy()
    else:
        cov = full[0]
    precisions = np.linalg.inv(cov) if structure != "VVI" else 1.0 / cov
    T = 25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = GaussianMixture(
            3, covariance_type=sk, reg_covar=0.0, max_iter=T, tol=0.0, n_init=1,
            weights_init=weights, means_init=means, precisions_init=precisions,
        ).fit(IRIS)  # fmt: skip
        ours = LatentClassModel(
            3, covariance=structure, reg_covar=0.0, max_iter=T, tol=0.0, n_init=1,
            accelerate=False, weights_init=weights, means_init=means, covariances_init=cov,
            proper_maxima=False,
        ).fit(IRIS)  # fmt: skip
    assert ours.n_iter_ == T
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)
    ref_cov = expand(ref.covariances_, structure, 3)
    np.testing.assert_allclose(ours.covariances_, ref_cov, rtol=1e-10, atol=1e-14)
    # sklearn's lower bound is the log-likelihood before its last M-step
    assert ours.history_[T - 2] == pytest.approx(ref.lower_bound_, rel=1e-10)
    assert ours.score(IRIS) == pytest.approx(ref.score(IRIS), rel=1e-10)


def _planted(rng: np.random.RandomState, n: int = 240) -> tuple[np.ndarray, np.ndarray]:
    centers = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-1.0, 5.0, 3.0]])
    sd = np.array([[1.0, 0.5, 1.5], [0.7, 1.2, 0.9], [1.3, 0.8, 0.6]])
    z = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    return centers[z] + sd[z] * rng.standard_normal((n, 3)), z


def _eei_loglik(u: np.ndarray, X: np.ndarray, K: int) -> float:
    D = X.shape[1]
    log_w = u[:K] - logsumexp(u[:K])
    means = u[K : K + K * D].reshape(K, D)
    var = np.exp(u[K + K * D :])
    ll = np.stack([multivariate_normal(means[k], np.diag(var)).logpdf(X) for k in range(K)], axis=1)
    return float(logsumexp(ll + log_w, axis=1).sum())


def test_eei_reaches_the_direct_maximum() -> None:
    X, _ = _planted(np.random.RandomState(0), 120)
    m = LatentClassModel(3, covariance="EEI", reg_covar=0.0, random_state=0).fit(X)
    u0 = np.concatenate([np.log(m.weights_), m.means_.ravel(), np.log(np.diag(m.covariances_[0]))])
    ll_em = m.score(X) * len(X)
    assert _eei_loglik(u0, X, 3) == pytest.approx(ll_em, rel=1e-12)
    rng = np.random.RandomState(1)
    res = minimize(lambda u: -_eei_loglik(u, X, 3), u0 + 0.05 * rng.standard_normal(len(u0)),
                   method="BFGS", options={"gtol": 1e-8})  # fmt: skip
    assert -res.fun <= ll_em + 1e-7  # EM's point is the maximum the optimiser finds
    assert -res.fun == pytest.approx(ll_em, abs=1e-5)
    np.testing.assert_allclose(res.x[3:9], u0[3:9], atol=1e-3)


def _random_model(structure: str, rng: np.random.RandomState, K: int = 2, D: int = 3):
    means = rng.standard_normal((K, D)) * 2
    A = rng.standard_normal((K, D, D))
    full = A @ np.transpose(A, (0, 2, 1)) + np.eye(D)
    cov = {
        "VVV": full,
        "VVI": np.diagonal(full, axis1=1, axis2=2).copy(),
        "EEE": full[0],
        "EEI": np.diag(full[0]).copy(),
    }[structure]
    w = rng.dirichlet(np.ones(K))
    return w, means, cov


@pytest.mark.parametrize("structure", ["EEI", "VVI", "EEE", "VVV"])
def test_missing_entries_are_marginalised(structure: str) -> None:
    rng = np.random.RandomState(5)
    w, means, cov = _random_model(structure, rng)
    X = rng.standard_normal((40, 3)) * 2
    X[rng.uniform(size=X.shape) < 0.3] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.5
    m = LatentClassModel(
        2, covariance=structure, max_iter=0, n_init=1, weights_init=w, means_init=means,
        covariances_init=cov, proper_maxima=False,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X)
    full = expand(cov, structure, 2)
    expected = []
    for x in X:
        o = ~np.isnan(x)
        dens = [
            w[k] * multivariate_normal(means[k][o], full[k][np.ix_(o, o)]).pdf(x[o])
            for k in range(2)
        ]
        expected.append(np.log(sum(dens)))
    np.testing.assert_allclose(m.score_samples(X), expected, rtol=1e-12)


@pytest.mark.parametrize("structure", ["EEE", "VVV"])
def test_missing_data_em_reaches_a_stationary_point(structure: str) -> None:
    """The exact E-step (conditional means and covariances of the missing entries): EM
    converges to a maximum of the observed-data likelihood, which an optimiser started
    there cannot improve (mean imputation would stop elsewhere)."""
    rng = np.random.RandomState(2)
    X, _ = _planted(rng, 150)
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 1] = 0.0
    m = LatentClassModel(2, covariance=structure, reg_covar=0.0, random_state=0).fit(X)
    assert np.all(np.diff(m.history_) >= -1e-12)
    g = Gaussian(structure, 0.0)
    g.setup(X, None)
    chunk = g.prepare(X)
    params = m._params.blocks[0]
    u0 = np.concatenate([m._params.log_weights, g.to_unconstrained(params)])

    def negll(u: np.ndarray) -> float:
        p = g.from_unconstrained(u[2:], params)
        ll = g.log_likelihood(p, chunk) + (u[:2] - logsumexp(u[:2]))
        return -float(logsumexp(ll, axis=1).sum())

    assert -negll(u0) == pytest.approx(m.score(X) * len(X), rel=1e-12)
    res = minimize(negll, u0, method="BFGS")
    assert -res.fun - (-negll(u0)) < 1e-6


def test_mclust_parameter_counts_on_iris() -> None:
    counts = {
        s: LatentClassModel(2, covariance=s, n_init=1, random_state=0).fit(IRIS).n_parameters_
        for s in ("EEI", "VVI", "EEE", "VVV")
    }
    assert counts == {"EEI": 13, "VVI": 17, "EEE": 19, "VVV": 29}


def test_iris_vvv_three_classes_every_seed() -> None:
    set_aside = 0
    for seed in range(20):
        m = LatentClassModel(3, covariance="VVV", random_state=seed).fit(IRIS)
        assert m.score(IRIS) * len(IRIS) == pytest.approx(IRIS_VVV3, abs=1e-3)
        g = m._blocks[0][0]
        assert g.standardized_eigenvalues(m._params.blocks[0]).min() >= EIGEN_FLOOR
        assert m.weights_.min() * len(IRIS) > 4 + 1
        set_aside += m.n_degenerate_starts_
        assert m.n_degenerate_starts_ == int(m.init_degenerate_.sum())
        if m.n_degenerate_starts_:
            assert m.proper_maxima_note_ == (
                f"{m.n_degenerate_starts_} of {len(m.init_lower_bounds_)} starts ended in a "
                "collapsed class and were set aside"
            )
    assert set_aside > 0  # collapsed starts occur, and were set aside


def test_without_the_rule_a_collapsed_class_wins_on_iris() -> None:
    """The rule matters: with it off, some fits report a collapsed class whose likelihood
    beats the proper maximum (scikit-learn's random_from_data best start: −99.17)."""
    collapsed = 0
    for seed in range(10):
        m = LatentClassModel(3, covariance="VVV", random_state=seed, proper_maxima=False,
                             init_params="random_from_data", n_init=20).fit(IRIS)  # fmt: skip
        eig = m._blocks[0][0].standardized_eigenvalues(m._params.blocks[0])
        if eig.min() < EIGEN_FLOOR:
            collapsed += 1
            assert m.score(IRIS) * len(IRIS) > IRIS_VVV3
    assert collapsed > 0


def _tied_scores(rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z = np.repeat(np.arange(3), 100)
    X = np.round(centers[z] + 1.5 * rng.standard_normal((300, 2)))
    X = np.vstack([X, np.tile([[5.0, 5.0]], (3, 1))])  # a class of 3 identical rows
    return X, np.concatenate([z, [3, 3, 3]])


@pytest.mark.parametrize("K", [3, 4])
def test_tied_scores_give_a_proper_maximum(K: int) -> None:
    X, z = _tied_scores(np.random.RandomState(0))
    m = LatentClassModel(K, covariance="VVV", random_state=0).fit(X)
    eig = m._blocks[0][0].standardized_eigenvalues(m._params.blocks[0])
    assert eig.min() >= EIGEN_FLOOR
    if K == 3:
        assert adjusted_rand_score(z, m.predict(X)) > 0.9
    else:  # the tied class itself is degenerate: the planted proper classes are recovered,
        # one of them split in two (the fourth class has nowhere proper to go)
        labels = m.predict(X)[:300]
        merged = np.array([np.bincount(z[:300][labels == c]).argmax() for c in range(K)])
        assert adjusted_rand_score(z[:300], merged[labels]) > 0.9
        assert m.n_degenerate_starts_ > 0  # starts collapsed on tied rows were set aside


@pytest.mark.parametrize("structure", ["EEI", "VVI", "EEE", "VVV"])
def test_rule_leaves_proper_maxima_unchanged(structure: str) -> None:
    X, _ = _planted(np.random.RandomState(4))
    fits = [
        LatentClassModel(3, covariance=structure, random_state=1, proper_maxima=rule).fit(X)
        for rule in (True, False)
    ]
    assert fits[0].n_degenerate_starts_ == 0
    assert fits[0].score(X) == pytest.approx(fits[1].score(X), abs=1e-6)


def test_covariance_floor_is_relative_to_the_column_variance() -> None:
    X, _ = _planted(np.random.RandomState(4))
    scaled = X * np.array([1.0, 1000.0, 0.001])
    a = LatentClassModel(3, covariance="VVV", random_state=1).fit(X).reorder()
    b = LatentClassModel(3, covariance="VVV", random_state=1).fit(scaled).reorder()
    assert a.score(X) - np.log(1000.0 * 0.001) == pytest.approx(b.score(scaled), abs=1e-8)
    s = np.array([1.0, 1000.0, 0.001])
    np.testing.assert_allclose(b.covariances_, a.covariances_ * np.outer(s, s), rtol=1e-6)


def test_search_goes_on_while_every_start_collapsed() -> None:
    """wine, VVV, K = 6: every one of the 10 k-means++ starts of seed 1 ends in a
    collapsed class. The start search used to count such starts as "at the best" and
    spend nothing; it now goes on past its budget, alternating k-means++ and random soft
    partitions, until a start ends at a proper maximum."""
    from sklearn.datasets import load_wine

    X = load_wine().data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "every start ended in a degenerate class" fails
        m = LatentClassModel(6, covariance="VVV", random_state=1).fit(X)
    assert m.init_degenerate_[:10].all()  # the n_init starts
    assert m.n_screened_ > 0
    assert not m.init_degenerate_.all()
    best = m.init_lower_bounds_[~m.init_degenerate_].max()
    assert m.lower_bound_ == pytest.approx(best)
    eig = m._blocks[0][0].standardized_eigenvalues(m._params.blocks[0])
    assert eig.min() >= EIGEN_FLOOR


def test_search_takes_start_kinds_in_turn() -> None:
    X, _ = _planted(np.random.RandomState(4))
    m = LatentClassModel(3, covariance="VVI", random_state=0).fit(X)
    kinds = []
    real = LatentClassModel._initialize

    def spy(self, A, w, rng, kind=None):  # type: ignore[no-untyped-def]
        kinds.append(kind)
        return real(self, A, w, rng, kind)

    fit_data = m._prepare_fit(X, None, reset=False)
    rng = np.random.RandomState(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LatentClassModel, "_initialize", spy)
        mp.setattr(LatentClassModel, "_grown_starts", lambda self, data, rng: ([], 0))
        for i in range(4):
            m._search_start(fit_data, rng, i)
    assert kinds == ["random", "kmeans++", "random", "kmeans++"]


@pytest.mark.parametrize("structure", ["EEI", "VVI", "EEE", "VVV"])
def test_weighted_terms_sum_to_the_weighted_log_likelihood(structure):
    """Complete rows: the (K, F) terms of statistics × feature weights (no pass over the
    rows) sum to Σ_ik w_ik log f(x_i | k), as the default (n, K) products do; with
    missing entries the block uses the default."""
    from sklearn.datasets import load_wine

    from emnet.mixture.inference.family_stats import information

    X = load_wine().data
    model = LatentClassModel(3, covariance=structure, n_init=1, random_state=0).fit(X)
    m, _ = model._blocks[0]
    chunk, p = model._fit_chunks[0], model._params.blocks[0]
    weights = np.random.default_rng(0).random((len(X), 3))
    terms = m.weighted_terms(p, chunk, weights)
    assert terms.shape[0] == 3 and terms.size < weights.size  # no rows in them
    direct = float(np.sum(m.log_likelihood(p, chunk) * weights))
    assert float(terms.sum()) == pytest.approx(direct, rel=1e-11)
    holes = X.copy()
    holes[::7, 2] = np.nan
    gappy = m.prepare(holes)
    assert m.weighted_terms(p, gappy, weights).shape == weights.shape
    # the observed information from the terms equals the one from the (n, K) products
    from emnet.mixture.measurement import Measurement

    view = model._family_view(X)
    fast = information(view)[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(m), "weighted_terms", Measurement.weighted_terms)
        slow = information(view)[0]
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-7 * np.abs(slow).max())
