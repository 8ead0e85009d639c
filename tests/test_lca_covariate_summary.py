"""The summary of a latent class regression reports what poLCA reports for it (issue 19):
G², X² and df against the pattern table with the mean class shares, and the shares with
delta-method standard errors (never NaN)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from emnet.mixture import BernoulliMixture
from emnet.mixture.covariates.logit import class_log_probs
from emnet.mixture.covariates.regression import covariate_rows


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(5)
    n = 600
    x = rng.normal(size=n)
    z = rng.random(n) < 1 / (1 + np.exp(-(0.3 + 1.2 * x)))
    X = pd.DataFrame(
        (rng.random((n, 4)) < np.where(z[:, None], 0.8, 0.25)).astype(float),
        columns=list("abcd"),
    )
    Z = pd.DataFrame({"x": 10 * x + 50})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BernoulliMixture(2, n_init=5, random_state=0).fit(X, covariates=Z)
    return X, Z, model


def test_g2_x2_df_follow_polca_with_the_mean_shares(fitted):
    X, Z, model = fitted
    s = model.summary(X, covariates=Z)
    codes, offsets, D, w = covariate_rows(model, X, Z, None)
    shares = np.exp(class_log_probs(D, model.coef_.T)).mean(axis=0)
    p1 = np.asarray(model.means_)  # (K, 4): P(item = 1 | class)
    patterns = np.array(list(itertools.product([0, 1], repeat=4)), dtype=float)
    cell = np.array([shares @ np.prod(np.where(pat == 1, p1, 1 - p1), axis=1) for pat in patterns])
    Xv = X.to_numpy()
    obs = np.array([(Xv == pat).all(axis=1).sum() for pat in patterns], dtype=float)
    expected = len(Xv) * cell
    seen = obs > 0
    g2 = 2 * np.sum(obs[seen] * np.log(obs[seen] / expected[seen]))
    x2 = np.sum((obs[seen] - expected[seen]) ** 2 / expected[seen]) + (
        len(Xv) - expected[seen].sum()
    )
    assert s.g2 == pytest.approx(g2, rel=1e-8)
    assert s.x2 == pytest.approx(x2, rel=1e-8)
    assert s.df == min(len(Xv), 2**4 - 1) - model.n_parameters_
    np.testing.assert_allclose(s.weights, shares, rtol=1e-12)
    text = str(s)
    assert "G^2(2)" in text and "nan" not in text.lower()


def test_share_standard_errors_are_the_delta_method_by_differences(fitted):
    X, Z, model = fitted
    s = model.summary(X, covariates=Z)
    _, _, D, _ = covariate_rows(model, X, Z, None)
    beta = model.coef_.T.ravel()  # term-major, the layout of coef_cov_

    def shares(b):
        coef = b.reshape(model.coef_.shape[1], -1).T
        return np.exp(class_log_probs(D, coef.T)).mean(axis=0)

    h = 1e-6
    J = np.column_stack(
        [(shares(beta + h * e) - shares(beta - h * e)) / (2 * h) for e in np.eye(len(beta))]
    )
    se = np.sqrt(np.diag(J @ model.coef_cov_ @ J.T))
    assert np.all(np.isfinite(s.weights_se)) and np.all(s.weights_se > 0)
    np.testing.assert_allclose(s.weights_se, se, rtol=1e-5)
