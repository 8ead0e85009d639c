"""The Gaussian block's compiled kernels and the E-step's normalisation against the numpy
expressions they replaced (to 1e-12), the feature-matrix path against the class-by-class
path, and a fully given start (no seed partition drawn)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emnet.mixture import LatentClassModel
from emnet.mixture.kernels.codes import log_normalised, log_shares, posterior_rows
from emnet.mixture.measurement import gaussian
from emnet.mixture.measurement.gaussian import (
    STRUCTURES,
    Gaussian,
    GaussianStats,
    _factor,
    expand,
    is_diagonal,
    is_shared,
)


def _spd(rng: np.random.Generator, M: int, D: int) -> np.ndarray:
    A = rng.normal(size=(M, D, D))
    return A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(D)


def _compact(rng: np.random.Generator, structure: str, K: int, D: int) -> np.ndarray:
    full = _spd(rng, K, D)
    return {
        "VVV": full,
        "EEE": full[0],
        "VVI": np.diagonal(full, axis1=1, axis2=2).copy(),
        "EEI": np.diagonal(full[0]).copy(),
    }[structure]


@pytest.mark.parametrize("D", [1, 2, 4, 13])
def test_factor_matches_lapack(D: int) -> None:
    S = _spd(np.random.default_rng(D), 3, D)
    f = _factor(S)
    L = np.linalg.cholesky(S)
    np.testing.assert_allclose(f.chol, L, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f.chol_inv, np.linalg.inv(L), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f.precision, np.linalg.inv(S), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f.logdet, np.linalg.slogdet(S)[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, -1.0, 0.0])
def test_factor_refuses_a_matrix_that_is_not_positive_definite(bad: float) -> None:
    S = _spd(np.random.default_rng(0), 2, 3)
    S[1, 2, 2] = bad
    with pytest.raises(ValueError, match="not positive definite"):
        _factor(S)


def _block(structure: str, X: np.ndarray) -> Gaussian:
    g = Gaussian(structure, reg_covar=1e-3)
    g.setup(X, None)
    return g


@pytest.mark.parametrize("structure", STRUCTURES)
def test_feature_path_equals_the_class_by_class_path(
    structure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(1)
    K, D = 3, 5
    X = rng.normal(size=(40, D)) * [1.0, 10.0, 0.1, 3.0, 1.0] + 5.0
    g = _block(structure, X)
    params = gaussian.GaussianParams(rng.normal(size=(K, D)) + 5.0,
                                     _compact(rng, structure, K, D))  # fmt: skip
    resp = rng.dirichlet(np.ones(K), size=len(X))
    w = rng.uniform(0.5, 2.0, size=len(X))
    fast = g.prepare(X)
    assert fast.features is not None
    monkeypatch.setattr(gaussian, "FEATURE_BUDGET", 0)
    slow = g.prepare(X)
    assert slow.features is None
    ll = g.log_likelihood(params, fast)
    np.testing.assert_allclose(ll, g.log_likelihood(params, slow), rtol=1e-12, atol=1e-10)
    covs = expand(params.covariances, structure, K)
    for k in range(K):
        ref = multivariate_normal(params.means[k], covs[k]).logpdf(X)
        np.testing.assert_allclose(ll[:, k], ref, rtol=1e-12, atol=1e-10)
    a, b = g.sufficient_stats(params, fast, resp, w), g.sufficient_stats(params, slow, resp, w)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-10)


def _numpy_m_step(g: Gaussian, stats: GaussianStats) -> tuple[np.ndarray, np.ndarray]:
    """The M-step as numpy expressions (what the kernels replaced)."""
    nk = stats.nk + 10.0 * np.finfo(np.float64).eps
    mc = stats.sum_x / nk[:, None]
    reg = g._reg()
    if is_diagonal(g.structure):
        scatter = stats.sum_xx - nk[:, None] * mc**2
        if is_shared(g.structure):
            cov = (scatter.sum(axis=0) + reg) / nk.sum()
        else:
            cov = (scatter + reg) / nk[:, None]
        return mc + g.center, np.maximum(cov, np.finfo(np.float64).tiny)
    scatter = stats.sum_xx - nk[:, None, None] * (mc[:, :, None] * mc[:, None, :])
    scatter = 0.5 * (scatter + np.transpose(scatter, (0, 2, 1)))
    cov = scatter.sum(axis=0)[None] if is_shared(g.structure) else scatter
    idx = np.arange(len(reg))
    cov[:, idx, idx] += reg
    cov /= nk.sum() if is_shared(g.structure) else nk[:, None, None]
    return mc + g.center, cov[0] if is_shared(g.structure) else cov


@pytest.mark.parametrize("structure", STRUCTURES)
def test_m_step_matches_numpy(structure: str) -> None:
    rng = np.random.default_rng(2)
    K, D = 4, 6
    X = rng.normal(size=(60, D)) * 3.0 + 1.0
    g = _block(structure, X)
    resp = rng.dirichlet(np.ones(K), size=len(X))
    resp[:, -1] = 0.0  # an empty class stays finite
    params = gaussian.GaussianParams(np.zeros((K, D)), _compact(rng, structure, K, D))
    stats = g.sufficient_stats(params, X, resp, None)
    got = g.m_step(stats)
    means, cov = _numpy_m_step(g, stats)
    np.testing.assert_allclose(got.means, means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.covariances, cov, rtol=1e-12, atol=1e-12)
    assert got.covariances.shape == params.covariances.shape


@pytest.mark.parametrize("structure", STRUCTURES)
def test_unconstrained_form_matches_numpy(structure: str) -> None:
    rng = np.random.default_rng(3)
    K, D = 3, 4
    g = _block(structure, rng.normal(size=(20, D)))
    params = gaussian.GaussianParams(rng.normal(size=(K, D)), _compact(rng, structure, K, D))
    u = g.to_unconstrained(params)
    back = g.from_unconstrained(u, params)
    np.testing.assert_allclose(back.means, params.means, rtol=1e-14)
    np.testing.assert_allclose(back.covariances, params.covariances, rtol=1e-12, atol=1e-14)
    if is_diagonal(structure):
        return
    # the numpy packing: means, then each Cholesky factor's lower triangle row by row
    # with its diagonal logged
    L = np.linalg.cholesky(
        expand(params.covariances, structure, K)[: 1 if is_shared(structure) else K]
    )
    rows, cols = np.tril_indices(D)
    packed = L[:, rows, cols]
    packed[:, rows == cols] = np.log(packed[:, rows == cols])
    np.testing.assert_allclose(u, np.concatenate([params.means.ravel(), packed.ravel()]),
                               rtol=1e-12, atol=1e-14)  # fmt: skip


@pytest.mark.parametrize("structure", STRUCTURES)
def test_unconstrained_size_is_the_vector_length(structure: str) -> None:
    rng = np.random.default_rng(4)
    for K in (1, 3):
        g = _block(structure, rng.normal(size=(10, 3)))
        params = gaussian.GaussianParams(rng.normal(size=(K, 3)), _compact(rng, structure, K, 3))
        assert g.unconstrained_size(params) == len(g.to_unconstrained(params))


def _numpy_posterior(ll: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The E-step's normalisation as numpy expressions (what posterior_rows replaced)."""
    top = ll.max(axis=1)
    top[~np.isfinite(top)] = 0.0
    resp = np.exp(ll - top[:, None])
    mass = resp.sum(axis=1)
    with np.errstate(all="ignore"):  # a row of −inf: NaN posteriors, log p = −inf
        resp /= mass[:, None]
        return float(w @ (np.log(mass) + top)), w @ resp, resp


def test_posterior_rows_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    for K in (1, 2, 6):
        ll = rng.normal(size=(50, K)) * 40.0 - 500.0
        ll[3, 0] = -np.inf
        w = rng.uniform(0.0, 2.0, size=50)
        loglik, nk, resp = _numpy_posterior(ll, w)
        got = ll.copy()
        got_loglik, got_nk = posterior_rows(got, w)
        np.testing.assert_allclose(got, resp, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(got_nk, nk, rtol=1e-12)
        assert got_loglik == pytest.approx(loglik, rel=1e-12)
    loglik, _, _ = _numpy_posterior(np.full((2, 3), -np.inf), np.ones(2))
    got_loglik, _ = posterior_rows(np.full((2, 3), -np.inf), np.ones(2))
    assert got_loglik == loglik == -np.inf


def test_a_given_start_draws_no_seeds() -> None:
    """With weights_init, means_init and covariances_init the start is fixed: no seed
    partition is drawn (the random state is not used) and every init_params agrees."""
    X = np.random.default_rng(6).normal(size=(80, 3)) + np.repeat([[0.0], [4.0]], 40, axis=0)
    start = {"weights_init": [0.5, 0.5], "means_init": X[[0, 79]],
             "covariances_init": np.ones((2, 3))}  # fmt: skip
    fits = [
        LatentClassModel(2, n_init=2, init_params=init, random_state=rs, **start).fit(X)
        for init, rs in [("kmeans++", 0), ("random", 1), ("random_from_data", 2)]
    ]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.means_, fits[0].means_)
        assert other.lower_bound_ == fits[0].lower_bound_


@pytest.mark.parametrize("structure", STRUCTURES)
def test_log_prior_matches_numpy(structure: str) -> None:
    rng = np.random.default_rng(7)
    K, D = 3, 5
    g = _block(structure, rng.normal(size=(30, D)) * 4.0)
    params = gaussian.GaussianParams(rng.normal(size=(K, D)), _compact(rng, structure, K, D))
    covs = expand(params.covariances, structure, K)[: 1 if is_shared(structure) else K]
    trace = sum(np.trace(np.diag(g._reg()) @ np.linalg.inv(c)) for c in covs)
    assert g.log_prior(params) == pytest.approx(-0.5 * trace, rel=1e-12)


def test_a_given_start_is_checked_like_init_from() -> None:
    g = _block("VVV", np.random.default_rng(8).normal(size=(20, 3)))
    means, cov = np.zeros((2, 3)), np.stack([np.eye(3)] * 2)
    start = g.given_params(2, {"means_init": means, "covariances_init": cov})
    np.testing.assert_array_equal(start.means, means)
    np.testing.assert_array_equal(start.covariances, cov)
    assert g.given_params(2, {"means_init": means, "covariances_init": None}) is None
    with pytest.raises(ValueError, match="covariances_init: expected shape"):
        g.given_params(2, {"means_init": means, "covariances_init": np.eye(3)})


@pytest.mark.parametrize("structure", ["EEI", "VVI"])
def test_diagonal_standardized_eigenvalues_match_eigvalsh(structure: str) -> None:
    rng = np.random.default_rng(9)
    g = _block(structure, rng.normal(size=(20, 4)) * 3.0)
    params = gaussian.GaussianParams(rng.normal(size=(3, 4)), _compact(rng, structure, 3, 4))
    s = 1.0 / np.sqrt(g.scale)
    full = expand(params.covariances, structure, 3) * s[None, :, None] * s[None, None, :]
    np.testing.assert_allclose(g.standardized_eigenvalues(params), np.linalg.eigvalsh(full),
                               rtol=1e-12)  # fmt: skip


def test_log_shares_and_log_normalised_match_numpy() -> None:
    nk = np.array([3.0, 0.0, 1e-310, np.nan, 7.5])
    with np.errstate(invalid="ignore"):
        expected = np.log(np.maximum(nk / 11.5, 1e-300))
    np.testing.assert_allclose(log_shares(nk, 11.5), expected, rtol=1e-15)
    v = np.array([-3.0, 2.0, 700.0, -1e5])
    np.testing.assert_allclose(log_normalised(v), v - logsumexp(v), rtol=1e-15, atol=1e-12)


@pytest.mark.parametrize("structure", ["EEI", "EEE"])
def test_split_shared_products_equal_the_whole_ones(
    structure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared covariances' split feature products: the same log-likelihoods, and the
    same M-step (statistics summed over the classes in class 0)."""
    rng = np.random.default_rng(10)
    K, D = 4, 6
    X = rng.normal(size=(300, D)) * 2.0 + 1.0
    g = _block(structure, X)
    chunk = g.prepare(X)
    params = gaussian.GaussianParams(rng.normal(size=(K, D)), _compact(rng, structure, K, D))
    resp = rng.dirichlet(np.ones(K), size=len(X))
    w = rng.uniform(0.5, 2.0, size=len(X))
    results = []
    for saving in (0, 10**12):  # split, whole
        monkeypatch.setattr(gaussian, "SPLIT_MIN_SAVING", saving)
        assert g._split_features(chunk, K) == (saving == 0)
        stats = g.sufficient_stats(params, chunk, resp, w)
        results.append((g.log_likelihood(params, chunk), g.m_step(stats), stats))
    (ll_split, step_split, s_split), (ll_whole, step_whole, s_whole) = results
    np.testing.assert_allclose(ll_split, ll_whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(step_split.means, step_whole.means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(step_split.covariances, step_whole.covariances, rtol=1e-12)
    np.testing.assert_allclose(s_split.sum_xx.sum(axis=0), s_whole.sum_xx.sum(axis=0), rtol=1e-12)
