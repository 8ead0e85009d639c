"""The compiled pieces of the latent class regression's EM step (issue 19: covariate fits
as fast as poLCA's): the Newton M-step for β and the distinct-row compression."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from emnet.mixture.covariates.logit import RIDGE, class_log_probs, logit_m_step
from emnet.mixture.covariates.regression import _distinct_rows


@pytest.mark.parametrize("K, q, seed", [(2, 1, 0), (3, 2, 1), (4, 3, 2)])
def test_newton_m_step_reaches_the_penalised_maximum(K, q, seed):
    rng = np.random.default_rng(seed)
    n = 300
    D = np.column_stack([np.ones(n), rng.normal(size=(n, q))])
    targets = rng.dirichlet(np.ones(K), size=n) * rng.uniform(0.5, 2.0, size=(n, 1))

    def negative(b):
        beta = b.reshape(q + 1, K - 1)
        return -(np.sum(targets * class_log_probs(D, beta)) - 0.5 * RIDGE * np.sum(beta[1:] ** 2))

    start = np.zeros((q + 1, K - 1))
    beta = logit_m_step(D, targets, start, max_steps=50)
    ref = minimize(negative, start.ravel(), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(beta.ravel(), ref, atol=1e-5)
    assert -negative(beta.ravel()) >= -negative(ref) - 1e-9
    one = logit_m_step(D, targets, start, max_steps=1)  # never below its start
    assert -negative(one.ravel()) >= -negative(start.ravel())


def test_distinct_rows_keep_every_weighted_sum():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, size=(500, 3))
    D = np.column_stack([np.ones(500), rng.integers(1, 4, size=500)])
    w = rng.uniform(0.5, 2.0, size=500)
    cc, Dc, wc = _distinct_rows(codes, D, w)
    assert len(cc) <= 8 * 3 and wc.sum() == pytest.approx(w.sum())
    joint = np.column_stack([codes, D])
    for row, weight in zip(np.column_stack([cc, Dc]), wc, strict=True):
        assert weight == pytest.approx(w[(joint == row).all(axis=1)].sum())
    # the first rows keep their order of appearance
    np.testing.assert_array_equal(np.column_stack([cc, Dc])[0], joint[0])
