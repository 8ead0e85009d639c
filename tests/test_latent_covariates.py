"""Latent class (profile) regression for LatentClassModel through the measurement contract
(issues 20 and 21): P(class | z) a multinomial logit over any blocks; the one-step fit's
coefficients and standard errors (against a finite-difference Hessian of the full
log-likelihood written out here), units, mixed blocks, the proper-maxima rule on the
covariate runs, missing covariates, BIC, three-step, prediction, summary, save/load."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

from emnet.mixture import LatentClassModel


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small matrices: BLAS threads only contend."""
    with threadpool_limits(1):
        yield


def planted(n=1500, seed=0):
    """LPA data, D = 3, VVI, K = 2: P(class 2 | z) = logit⁻¹(−0.5 + 1.5 z)."""
    rng = np.random.RandomState(seed)
    z = rng.normal(size=n)
    c = rng.rand(n) < 1.0 / (1.0 + np.exp(-(-0.5 + 1.5 * z)))
    X = np.where(
        c[:, None],
        rng.normal([2.0, -1.5, 1.0], [1.0, 0.7, 1.3], (n, 3)),
        rng.normal(0.0, [1.0, 1.2, 0.8], (n, 3)),
    )
    return X, z


def fit_planted(X, z, **kw):
    m = LatentClassModel(2, covariance="VVI", n_init=4, random_state=0, **kw)
    m.fit(X, covariates=z)
    if m.means_[0, 0] > m.means_[1, 0]:  # class 1: the one centred at 0 (the reference)
        m.reorder([1, 0])
    return m


@pytest.fixture(scope="module")
def lpa():
    X, z = planted()
    return X, z, fit_planted(X, z)


def full_loglik(model, X, z, v):
    """Σ_i log p(x_i | z_i) at v = [β (term-major, original units), every block's
    unconstrained vector], written out through the contract."""
    D = np.column_stack([np.ones(len(z)), z])
    K = model.n_components
    nb = D.shape[1] * (K - 1)
    beta = v[:nb].reshape(D.shape[1], K - 1)
    eta = np.column_stack([np.zeros(len(z)), D @ beta])
    ll = eta - logsumexp(eta, axis=1, keepdims=True)
    at = nb
    for (m, cols), p in zip(model._blocks, model._params.blocks, strict=True):
        size = len(m.to_unconstrained(p))
        q = m.from_unconstrained(v[at : at + size], p)
        ll = ll + m.log_likelihood(q, m.prepare(np.asarray(X, dtype=np.float64)[:, cols]))
        at += size
    return float(logsumexp(ll, axis=1).sum())


def test_slope_recovered_and_se_is_the_full_hessian(lpa):
    X, z, m = lpa
    assert m.coef_.shape == (1, 2) and m.covariate_method_ == "one-step"
    assert m.covariate_names_ == ["intercept", "z1"]
    assert abs(m.coef_[0, 1] - 1.5) < 3 * m.coef_se_[0, 1]
    assert abs(m.coef_[0, 0] + 0.5) < 3 * m.coef_se_[0, 0]
    # the observed information of all parameters, by second differences of the full
    # log-likelihood (so the SEs carry the measurement model's uncertainty)
    v0 = np.concatenate(
        [m.coef_.T.ravel()] + [b.to_unconstrained(p) for (b, _), p in
                               zip(m._blocks, m._params.blocks, strict=True)]
    )  # fmt: skip
    P = len(v0)
    h = 1e-4 * np.maximum(1.0, np.abs(v0))
    f0 = full_loglik(m, X, z, v0)
    H = np.empty((P, P))
    for a in range(P):
        for b in range(a + 1):
            vals = []
            for ca, cb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                v = v0.copy()
                v[a] += ca * h[a]
                v[b] += cb * h[b]
                vals.append(full_loglik(m, X, z, v))
            H[a, b] = H[b, a] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * h[a] * h[b])
    cov = np.linalg.inv(-H)
    np.testing.assert_allclose(m.coef_cov_, cov[:2, :2], rtol=2e-3)
    np.testing.assert_allclose(m.coef_se_.ravel(), np.sqrt(np.diag(cov)[:2]), rtol=1e-3)
    # the measurement's uncertainty counts: holding the blocks fixed gives smaller SEs
    assert m.coef_se_[0, 1] > np.sqrt(np.linalg.inv(-H[:2, :2])[1, 1]) * 1.003
    assert np.isfinite(f0)
    table = m.coefficients()
    np.testing.assert_allclose(table.z, m.coef_ / m.coef_se_)
    frame = table.to_frame()
    assert list(frame["term"]) == ["intercept", "z1"] and list(frame["class"]) == [2, 2]


def test_coefficients_do_not_depend_on_units(lpa):
    X, z, m = lpa
    big = fit_planted(X, z * 1e6)
    np.testing.assert_allclose(big.coef_[0, 1], m.coef_[0, 1] * 1e-6, rtol=1e-5)
    np.testing.assert_allclose(big.coef_[0, 0], m.coef_[0, 0], rtol=1e-5)
    np.testing.assert_allclose(big.coefficients().z, m.coefficients().z, rtol=1e-4)
    np.testing.assert_allclose(big.weights_, m.weights_, rtol=1e-6)


def test_prediction_criteria_and_summary(lpa):
    X, z, m = lpa
    eta = m.predict_proba(X, covariates=z)
    np.testing.assert_allclose(eta.sum(axis=1), 1.0)
    logp = m.score_samples(X, covariates=z)
    # log p(x | z) by hand: the prior from coef_, the blocks' densities
    D = np.column_stack([np.ones(len(z)), z])
    prior = np.column_stack([np.zeros(len(z)), D @ m.coef_.T])
    prior -= logsumexp(prior, axis=1, keepdims=True)
    dens = m._blocks[0][0].log_likelihood(m._params.blocks[0], X)
    np.testing.assert_allclose(logp, logsumexp(prior + dens, axis=1), rtol=1e-10)
    # the β parameters count: 2 × 3 means + 2 × 3 variances + (K − 1)(1 + q) = 14
    assert m.n_parameters_ == 14
    np.testing.assert_allclose(m.bic(X, covariates=z), -2 * logp.sum() + 14 * np.log(len(z)))
    np.testing.assert_allclose(m.lower_bound_ * len(z), logp.sum(), rtol=1e-6)
    # weights_ = the mean class probability given z
    np.testing.assert_allclose(m.weights_, np.exp(prior).mean(axis=0), rtol=1e-8)
    with pytest.raises(ValueError, match="pass covariates"):
        m.predict_proba(X)
    s = m.summary(X, covariates=z)
    np.testing.assert_allclose(s.weights, m.weights_, rtol=1e-8)
    assert s.n_parameters == 14 and np.isfinite(s.weights_se).all()
    text = str(s)
    assert "Latent class regression (one-step" in text and "z1" in text
    coef = s.tables()["coefficients"]
    np.testing.assert_allclose(coef["se"], m.coef_se_.ravel())
    params = s.to_frame()
    assert (params["se"] > 0).all()
    with pytest.raises(ValueError, match="pass covariates"):
        m.summary(X)


def test_mixed_gaussian_and_categorical_blocks():
    rng = np.random.RandomState(3)
    n = 1200
    z = rng.normal(size=n)
    c = rng.rand(n) < 1.0 / (1.0 + np.exp(-(0.3 + 1.2 * z)))
    G = np.where(c[:, None], rng.normal(2.0, 1.0, (n, 2)), rng.normal(-0.5, 1.0, (n, 2)))
    probs = np.where(c[:, None], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1])
    A = np.array([[rng.choice(["a", "b", "c"], p=p) for p in probs] for _ in range(2)]).T
    X = pd.DataFrame({"g1": G[:, 0], "g2": G[:, 1], "q1": A[:, 0], "q2": A[:, 1]})
    m = LatentClassModel(
        2, measurement={"gaussian": ["g1", "g2"], "categorical": ["q1", "q2"]},
        n_init=3, random_state=0,
    )  # fmt: skip
    m.fit(X, covariates=pd.DataFrame({"age": z}))
    if m.means_[0, 0] > m.means_[1, 0]:
        m.reorder([1, 0])
    assert m.covariate_names_ == ["intercept", "age"]
    assert abs(m.coef_[0, 1] - 1.2) < 3 * m.coef_se_[0, 1]
    assert abs(m.coef_[0, 0] - 0.3) < 3 * m.coef_se_[0, 0]
    eta = m.predict_proba(X, covariates=pd.DataFrame({"age": z}))
    assert np.mean(eta.argmax(axis=1) == c) > 0.85
    s = m.summary(X, covariates=pd.DataFrame({"age": z}))
    assert set(s.to_frame()["block"]) == {1, 2}
    assert "coefficients" in s.tables()
    # a categorical covariate: one-hot against its first level
    g = np.where(z > 0, "hi", "lo")
    m2 = LatentClassModel(2, measurement={"gaussian": ["g1", "g2"], "categorical": ["q1", "q2"]},
                          n_init=2, random_state=0).fit(X, covariates=pd.DataFrame({"g": g}))  # fmt: skip
    assert m2.covariate_names_ == ["intercept", "g=lo"]


def collapsing(n=300, seed=1):
    """Two Gaussian profiles and three identical rows far from the rest: a VVV class
    can collapse onto them."""
    rng = np.random.RandomState(seed)
    z = rng.normal(size=n)
    c = rng.rand(n) < 1.0 / (1.0 + np.exp(-(-0.5 + 1.5 * z)))
    X = np.where(c[:, None], rng.normal([3.0, 3.0, 0.0], 1.0, (n, 3)), rng.normal(0, 1, (n, 3)))
    X = np.vstack([X, np.tile([12.0, -12.0, 12.0], (3, 1))])
    return X, np.append(z, [0.1, 0.2, 0.3])


def test_collapsed_covariate_runs_are_set_aside():
    X, z = collapsing()
    m = LatentClassModel(2, covariance="VVV", n_init=10, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a proper solution: no warning
        m.fit(X, covariates=z)
    assert 1 <= m.n_degenerate_starts_ < 10
    assert m.init_degenerate_.sum() == m.n_degenerate_starts_
    assert "set aside" in m.proper_maxima_note_
    # the set-aside runs had a higher objective: the rule, not the likelihood, chose
    assert m.init_lower_bounds_[m.init_degenerate_].max() > m.lower_bound_ + 1e-3
    sizes = m.predict_proba(X, covariates=z).sum(axis=0)
    assert not m._degenerate_classes(m._params, sizes).any()
    assert sizes.min() > 50
    assert np.isfinite(m.coef_se_).all()
    # the rule off: the spurious (higher) maximum is reported
    off = LatentClassModel(2, covariance="VVV", n_init=10, random_state=1, proper_maxima=False)
    off.fit(X, covariates=z)
    assert off.n_degenerate_starts_ == 0
    assert off.lower_bound_ > m.lower_bound_ + 1e-3


def test_missing_covariates_are_dropped_with_a_warning(lpa):
    X, z, _ = lpa
    X, z = X[:400], z[:400].copy()
    zm = z.copy()
    zm[[3, 10]] = np.nan
    m = LatentClassModel(2, covariance="VVI", n_init=2, random_state=0)
    with pytest.warns(UserWarning, match="2 of 400 rows have a missing covariate"):
        m.fit(X, covariates=zm)
    keep = ~np.isnan(zm)
    ref = LatentClassModel(2, covariance="VVI", n_init=2, random_state=0)
    ref.fit(X[keep], covariates=z[keep])
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(m.coef_se_, ref.coef_se_, rtol=1e-6)
    with pytest.raises(ValueError, match="missing covariate"):
        m.predict_proba(X, covariates=zm)
    with pytest.raises(ValueError, match="expected 400 rows"):
        m.fit(X, covariates=z[:10])
    with pytest.raises(ValueError, match="covariate_method"):
        m.fit(X, covariates=z, covariate_method="two-step")


@pytest.mark.parametrize("method", ["bch", "ml"])
def test_three_step(lpa, method):
    X, z, one = lpa
    m = LatentClassModel(2, covariance="VVI", n_init=2, random_state=0)
    m.fit(X, covariates=z, covariate_method=method)
    if m.means_[0, 0] > m.means_[1, 0]:
        m.reorder([1, 0])
    assert m.covariate_method_ == method
    assert m.classification_error_.shape == (2, 2)
    assert abs(m.coef_[0, 1] - one.coef_[0, 1]) < 2 * one.coef_se_[0, 1]
    s = m.summary(X, covariates=z)
    assert f"Latent class regression ({method}" in str(s)


def test_save_and_load(lpa, tmp_path):
    X, z, m = lpa
    path = tmp_path / "lcr.npz"
    m.save(path)
    back = LatentClassModel.load(path)
    np.testing.assert_allclose(back.coef_, m.coef_)
    np.testing.assert_allclose(back.coef_cov_, m.coef_cov_)
    np.testing.assert_allclose(back.predict_proba(X, covariates=z),
                               m.predict_proba(X, covariates=z))  # fmt: skip
    assert back.covariate_method_ == "one-step"
    # a plain refit clears the regression
    plain = back.fit(X)
    assert not hasattr(plain, "coef_") and not hasattr(plain, "covariate_design_")
    with pytest.raises(ValueError, match="without covariates"):
        plain.predict_proba(X, covariates=z)


@pytest.mark.parametrize("method", ["one-step", "bch", "ml"])
def test_one_class_with_covariates_is_the_plain_fit(lpa, method):
    """K = 1 has no regression (β is 0 × (1 + q)): it is taken, as CategoricalMixture
    takes it, and equals the fit without covariates (emnet lca fits K = 1 this way)."""
    X, z, _ = lpa
    m = LatentClassModel(1, n_init=2, random_state=0).fit(X, covariates=z, covariate_method=method)
    plain = LatentClassModel(1, n_init=2, random_state=0).fit(X)
    assert m.coef_.shape == (0, 2) and m.coef_se_.shape == (0, 2)
    assert m.score(X, covariates=z) == pytest.approx(plain.score(X), rel=1e-12)
    np.testing.assert_allclose(m.predict_proba(X, covariates=z), 1.0)
    s, p = m.summary(X, covariates=z), plain.summary(X)
    assert s.loglik == pytest.approx(p.loglik, rel=1e-12)
    assert s.n_parameters == p.n_parameters
    assert m.coefficients().coef.shape == (0, 2)


def test_standard_errors_of_a_covariate_model_need_the_covariates(lpa):
    """standard_errors(X) of a regression model used to treat the shares as fixed (wrong,
    silently); now it needs Z and gives the summary's numbers."""
    X, z, model = lpa
    Z = z
    with pytest.raises(ValueError, match="pass standard_errors"):
        model.standard_errors(X)
    se = model.standard_errors(X, covariates=Z)
    assert np.all(np.isfinite(se.weights)) and np.all(se.weights > 0)
    means_se = se.blocks[0]["means"]
    assert means_se.shape == model.means_.shape and np.all(means_se > 0)
    summary = model.summary(X, covariates=Z)
    np.testing.assert_allclose(se.weights, summary.weights_se)
