"""Latent class regression (issue 13): one-step EM, three-step BCH/ML, SEs, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import quiet_fit
from scipy import optimize

from emnet.mixture import BernoulliMixture, CategoricalMixture

B_TRUE = np.array([[0.0, 0.0, 0.0], [0.4, 1.0, -0.6], [-0.3, -0.9, 1.1]])  # (K, 1 + q)
THETA = np.array(
    [
        [0.90, 0.85, 0.80, 0.15, 0.20, 0.10],
        [0.10, 0.15, 0.20, 0.85, 0.80, 0.90],
        [0.85, 0.15, 0.85, 0.15, 0.85, 0.15],
    ]
)


def planted(n, seed, beta=B_TRUE, theta=THETA):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, beta.shape[1] - 1))
    eta = np.c_[np.ones(n), Z] @ beta.T
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    z = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    X = (rng.uniform(size=(n, theta.shape[1])) < theta[z]).astype(float)
    return X, Z, z


def align(model, theta=THETA):
    """Reorder the model's classes to the planted ones (by the item probabilities)."""
    est = (
        np.stack([p[:, 1] for p in model.probs_], axis=1)
        if hasattr(model, "probs_")
        else model.means_
    )
    K = len(theta)
    perm = min(itertools.permutations(range(K)), key=lambda q: np.abs(est[list(q)] - theta).sum())
    return model.reorder(list(perm))


@pytest.fixture(scope="module")
def one_step():
    X, Z, _ = planted(20_000, seed=0)  # issue 13's setting: n = 20 000, 6 items, K = 3, q = 2
    model = quiet_fit(CategoricalMixture(3, n_init=2, random_state=0), X, covariates=Z)
    return X, Z, align(model)


def test_one_step_recovers_beta_within_three_standard_errors(one_step):
    _, _, model = one_step
    assert model.coef_.shape == (2, 3)
    assert model.covariate_names_ == ["intercept", "z1", "z2"]
    err = np.abs(model.coef_ - B_TRUE[1:]) / model.coef_se_
    assert np.all(err < 3), err
    assert np.all(model.coef_se_ > 0) and np.all(model.coef_se_ < 0.1)
    table = model.coefficients().to_frame()
    assert list(table.columns) == ["class", "term", "coef", "se", "z", "p"]
    assert len(table) == 6 and set(table["class"]) == {2, 3}
    assert np.all(np.diff(model.history_) >= -1e-12 * np.abs(model.history_[1:]))


def test_class_probabilities_and_prediction_use_the_covariates(one_step):
    X, Z, model = one_step
    P = model.class_probabilities(Z[:50])
    D = np.c_[np.ones(50), Z[:50]]
    eta = np.c_[np.zeros(50), D @ model.coef_.T]
    expect = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(P, expect, rtol=1e-12)
    # posterior ∝ P(k | z) P(x | k)
    like = np.ones((50, 3))
    for j, p in enumerate(model.probs_):
        like *= p[:, X[:50, j].astype(int)].T
    post = P * like
    post /= post.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X[:50], covariates=Z[:50]), post, rtol=1e-10)
    with pytest.raises(ValueError, match="fitted with covariates"):
        model.predict(X[:5])
    with pytest.raises(ValueError, match="expected 5 rows"):
        model.predict(X[:5], covariates=Z[:6])
    with pytest.raises(ValueError, match="without covariates"):
        quiet_fit(CategoricalMixture(2), X[:100]).predict(X[:5], covariates=Z[:5])


def _loglik(params, X, Z, K):
    """The full log-likelihood written out: β (K − 1, 1 + q) and logits of θ (K, J)."""
    q1, J = Z.shape[1] + 1, X.shape[1]
    beta = np.r_[np.zeros((1, q1)), params[: (K - 1) * q1].reshape(K - 1, q1)]
    theta = 1 / (1 + np.exp(-params[(K - 1) * q1 :].reshape(K, J)))
    eta = np.c_[np.ones(len(X)), Z] @ beta.T
    logpi = eta - np.log(np.exp(eta).sum(axis=1, keepdims=True))
    logx = X @ np.log(theta).T + (1 - X) @ np.log1p(-theta).T
    a = logpi + logx
    m = a.max(axis=1, keepdims=True)
    return float((m[:, 0] + np.log(np.exp(a - m).sum(axis=1))).sum())


def test_one_step_equals_direct_numerical_maximisation():
    beta = np.array([[0.0, 0.0], [0.5, 1.5]])
    theta = np.array([[0.8, 0.7, 0.9, 0.2], [0.2, 0.3, 0.25, 0.7]])
    X, Z, _ = planted(400, seed=1, beta=beta, theta=theta)
    model = quiet_fit(CategoricalMixture(2, n_init=5, random_state=0, tol=1e-13), X, covariates=Z)
    ll_emnet = model.score(X, covariates=Z) * len(X)
    best = -np.inf
    rng = np.random.default_rng(2)
    for _ in range(6):
        x0 = rng.normal(scale=0.5, size=2 + 8)
        res = optimize.minimize(lambda p: -_loglik(p, X, Z, 2), x0, method="BFGS",
                                options={"gtol": 1e-9, "maxiter": 5000})  # fmt: skip
        best = max(best, -res.fun)
    assert ll_emnet == pytest.approx(best, abs=1e-6)


def test_a_constant_covariate_is_an_error_naming_it():
    # (issue 19: it used to be fitted, with a slope of 2e-13 sharing the intercept's SE)
    X, _, _ = planted(300, seed=3)
    with pytest.raises(ValueError, match="covariate 'z1' is constant"):
        CategoricalMixture(3, random_state=0).fit(X, covariates=np.full((len(X), 1), 2.5))


def test_bernoulli_gives_the_same_regression():
    X, Z, _ = planted(3000, seed=4)
    cat = align(quiet_fit(CategoricalMixture(3, n_init=3, random_state=0), X, covariates=Z))
    bern = align(quiet_fit(BernoulliMixture(3, n_init=3, random_state=0), X, covariates=Z))
    assert bern.score(X, covariates=Z) == pytest.approx(cat.score(X, covariates=Z), abs=1e-6)
    np.testing.assert_allclose(bern.coef_, cat.coef_, atol=1e-3)
    np.testing.assert_allclose(bern.coef_se_, cat.coef_se_, rtol=1e-2)
    assert bern.n_parameters_ == cat.n_parameters_ == 2 * 3 + 3 * 6


def test_frequency_weights_equal_repeated_rows_with_covariates():
    X, Z, _ = planted(300, seed=5)
    w = np.random.default_rng(6).integers(1, 4, size=len(X))
    a = quiet_fit(
        CategoricalMixture(3, n_init=3, random_state=0, tol=1e-12), X, covariates=Z, sample_weight=w
    )
    b = quiet_fit(
        CategoricalMixture(3, n_init=3, random_state=0, tol=1e-12),
        np.repeat(X, w, axis=0), covariates=np.repeat(Z, w, axis=0),
    )  # fmt: skip
    assert a.score(X, covariates=Z, sample_weight=w) == pytest.approx(
        b.score(np.repeat(X, w, axis=0), covariates=np.repeat(Z, w, axis=0)), abs=1e-7
    )


def test_three_step_corrections_remove_the_naive_bias():
    # weakly separated classes (classification error ~20%) and a strong covariate effect
    beta = np.array([[0.0, 0.0], [0.0, 2.0]])
    theta = np.array([[0.75, 0.7, 0.75, 0.3, 0.7], [0.3, 0.35, 0.3, 0.7, 0.3]])
    X, Z, _ = planted(20_000, seed=7, beta=beta, theta=theta)
    slopes, ses = {}, {}
    for method in ("naive", "bch", "ml", "one-step"):
        m = quiet_fit(
            CategoricalMixture(2, n_init=3, random_state=0),
            X,
            covariates=Z,
            covariate_method=method,
        )
        align(m, theta)
        slopes[method], ses[method] = m.coef_[0, 1], m.coef_se_[0, 1]
    assert slopes["naive"] < 2.0 - 5 * ses["naive"]  # attenuated towards 0
    for method in ("bch", "ml", "one-step"):
        assert abs(slopes[method] - 2.0) < 3 * ses[method], (method, slopes[method], ses[method])
        assert ses[method] > ses["naive"]


@pytest.mark.slow
def test_one_step_standard_errors_match_the_parametric_bootstrap(one_step):
    X, Z, model = one_step
    rng = np.random.default_rng(8)
    draws = []
    n = 5000
    for _ in range(60):
        idx = rng.choice(len(Z), size=n)
        Zb = Z[idx]
        P = model.class_probabilities(Zb)
        z = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
        theta = np.stack([p[:, 1] for p in model.probs_], axis=1)
        Xb = (rng.uniform(size=(n, X.shape[1])) < theta[z]).astype(float)
        fb = quiet_fit(
            CategoricalMixture(3, weights_init=model.weights_, probs_init=model.probs_),
            Xb,
            covariates=Zb,
        )
        draws.append(align(fb, theta).coef_.ravel())
    spread = np.std(draws, axis=0, ddof=1)
    small = quiet_fit(
        CategoricalMixture(3, weights_init=model.weights_, probs_init=model.probs_),
        X[:n],
        covariates=Z[:n],
    )
    ratio = align(small, np.stack([p[:, 1] for p in model.probs_], 1)).coef_se_.ravel() / spread
    assert np.all((ratio > 0.65) & (ratio < 1.5)), ratio


@pytest.mark.parametrize(
    ("Z", "message"),
    [
        (np.zeros((10, 1)), r"expected 300 rows"),
        (pd.DataFrame({"a": [np.nan] * 300}), r"column 'a' has no value"),
        (pd.DataFrame({"a": ["1", "x"] + ["2"] * 298}), r"column 'a' mixes numbers and text"),
        ("collinear", r"'b' is perfectly collinear"),
    ],
)
def test_bad_covariates_are_clear_errors(Z, message):
    X, Zg, _ = planted(300, seed=9)
    if isinstance(Z, str):
        Z = pd.DataFrame({"a": Zg[:, 0], "b": 2 * Zg[:, 0] + 1})
    with pytest.raises(ValueError, match=message):
        CategoricalMixture(2).fit(X, covariates=Z)


def test_missing_covariates_drop_rows_with_a_warning_and_categories_are_one_hot():
    X, Zg, _ = planted(500, seed=10)
    frame = pd.DataFrame({"age": Zg[:, 0], "party": np.where(Zg[:, 1] > 0, "left", "right")})
    frame.loc[[3, 7, 11], "age"] = np.nan
    with pytest.warns(UserWarning, match="3 of 500 rows have a missing covariate"):
        model = quiet_fit(CategoricalMixture(2, n_init=2, random_state=0), X, covariates=frame)
    assert model.covariate_names_ == ["intercept", "age", "party=right"]
    with pytest.raises(ValueError, match="level 'center'"):
        model.predict(
            X[:2], covariates=pd.DataFrame({"age": [0.0, 1.0], "party": ["left", "center"]})
        )
    with pytest.raises(ValueError, match="weight_concentration"):
        CategoricalMixture(2, weight_concentration=2.0).fit(X, covariates=frame.fillna(0))
    with pytest.raises(ValueError, match="covariate_method"):
        CategoricalMixture(2).fit(X, covariates=frame.fillna(0), covariate_method="two-step")


def test_statistics_without_covariates_refuse_a_covariate_model(one_step):
    X, _, model = one_step
    with pytest.raises(ValueError, match="without covariates"):
        model.goodness_of_fit(X)


@pytest.mark.parametrize("method", ["one-step", "bch"])
def test_save_load_and_summary_with_covariates(tmp_path, method):
    X, Zg, _ = planted(800, seed=11)
    frame = pd.DataFrame({"age": Zg[:, 0], "party": np.where(Zg[:, 1] > 0, "left", "right")})
    model = quiet_fit(
        BernoulliMixture(3, n_init=2, random_state=0), X, covariates=frame, covariate_method=method
    )
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = BernoulliMixture.load(path)
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    np.testing.assert_array_equal(loaded.coef_cov_, model.coef_cov_)
    assert loaded.covariate_names_ == model.covariate_names_ == ["intercept", "age", "party=right"]
    np.testing.assert_allclose(
        loaded.predict_proba(X, covariates=frame), model.predict_proba(X, covariates=frame)
    )
    s = model.summary(X, covariates=frame)
    assert s.n_parameters == model.n_parameters_ == 2 * 3 + 3 * 6
    assert s.loglik == pytest.approx(model.score(X, covariates=frame) * len(X))
    # poLCA's G², X², df for a latent class regression (the mean shares; issue 19)
    assert np.isfinite(s.g2) and np.isfinite(s.x2) and s.df == 2**6 - 1 - s.n_parameters
    assert np.all(np.isfinite(s.weights_se)) and np.all(s.weights_se > 0)
    text = str(s)
    assert "Latent class regression" in text and "party=right" in text
    assert set(s.tables()) >= {"coefficients", "probabilities"}
    assert all(
        np.all(np.isfinite(se) | (p < 1e-7)) for se, p in zip(s.probs_se, s.probs, strict=True)
    )
    with pytest.raises(ValueError, match="pass summary"):
        model.summary(X)
