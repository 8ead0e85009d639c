"""Standard errors with estimates on the boundary (issue 19, task 1): held fixed (SE 0,
flagged), never NaN, and the same at the default tolerance as at a tight one. The
references are computed here: a finite-difference Hessian of the log-likelihood written
out in the free parameters, and poLCA's outer-product formula (poLCA.se)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from conftest import quiet_fit
from sklearn.exceptions import ConvergenceWarning

from emnet.datasets import VALUES_POLCA_LOGLIK, values
from emnet.mixture import BernoulliMixture, CategoricalMixture

CATS = (3, 2, 2, 3)
ZEROS = [(0, 1, 0), (3, 2, 2), (1, 0, 0)]  # (item, planted class, answer) with θ = 0


def planted_with_zeros(seed=6, n=2000, weights=(0.55, 0.3, 0.15)):
    """Three classes on items with 3, 2, 2, 3 answers; the ``ZEROS`` probabilities are
    exactly 0 (so the maximum has them on the boundary)."""
    rng = np.random.default_rng(seed)
    P = [rng.dirichlet(np.full(r, 0.6), size=3) for r in CATS]
    for j, k, r in ZEROS:
        P[j][k, r] = 0.0
    P = [p / p.sum(axis=1, keepdims=True) for p in P]
    z = rng.choice(3, size=n, p=weights)
    X = np.column_stack(
        [(rng.uniform(size=(n, 1)) > np.cumsum(p[z], axis=1)).sum(axis=1) for p in P]
    )
    return X.astype(float), P


def fit(X, tol=None, K=3, **kw):
    params = {} if tol is None else {"tol": tol, "max_iter": 200_000}
    return quiet_fit(CategoricalMixture(K, n_init=10, random_state=0, **params, **kw), X)


def loglik(codes, weights, probs):
    """Σ_i log Σ_k π_k Π_j θ_{k j x_ij}, written out (complete 0-based codes)."""
    total = np.zeros(len(codes))
    for k, wk in enumerate(weights):
        term = np.full(len(codes), wk)
        for j, p in enumerate(probs):
            term = term * p[k, codes[:, j]]
        total += term
    return float(np.log(total).sum())


def aligned(model, P):
    """``model`` with its classes in the planted order."""
    perm = min(
        itertools.permutations(range(len(P[0]))),
        key=lambda q: sum(
            np.abs(p[list(q)] - t).sum() for p, t in zip(model.probs_, P, strict=True)
        ),
    )
    return model.reorder(list(perm))


@pytest.fixture(scope="module")
def boundary_fits():
    X, P = planted_with_zeros()
    return X, P, aligned(fit(X), P), aligned(fit(X, tol=1e-14), P)


def flat(se):
    return np.concatenate([se.weights] + [p.ravel() for p in se.probs])


def test_the_planted_zeros_are_held_and_flagged(boundary_fits):
    X, P, _, tight = boundary_fits
    se = tight.standard_errors(X)
    for j, k, r in ZEROS[0], ZEROS[2]:  # (the third class is small: its zero is estimated 0.02)
        assert se.boundary[j][k, r] and se.probs[j][k, r] == 0.0
    # a two-answer item with one answer at 0 has the other at 1: held as well
    assert se.boundary[1][0].all() and np.all(se.probs[1][0] == 0.0)
    for p, b, s in zip(tight.probs_, se.boundary, se.probs, strict=True):
        assert np.all(np.minimum(p, 1 - p)[b] < 1e-6) and np.all(s[b] == 0) and np.all(s[~b] > 0)
    n_flagged = int(se.weights_boundary.sum()) + sum(int(b.sum()) for b in se.boundary)
    assert se.n_boundary == n_flagged >= 4
    assert not se.weights_boundary.any() and np.all(se.weights > 0)


@pytest.mark.parametrize("method", ["hessian", "opg"])
def test_standard_errors_do_not_depend_on_the_convergence_tolerance(boundary_fits, method):
    X, _, loose, tight = boundary_fits
    a, b = loose.standard_errors(X, method), tight.standard_errors(X, method)
    # EM stops short of the boundary at the default tol (a zero-bound probability is
    # still far above 1e-7 there), yet the same parameters are held
    assert [x.tolist() for x in a.boundary] == [x.tolist() for x in b.boundary]
    np.testing.assert_allclose(flat(a), flat(b), rtol=2e-3, atol=1e-6)


def test_hessian_standard_errors_equal_a_finite_difference_hessian(boundary_fits):
    """-H⁻¹ of the log-likelihood by second differences in the log-odds of the free
    parameters (boundary ones held at 0), then the delta method by differences too."""
    X, _, _, m = boundary_fits
    se = m.standard_errors(X, "hessian")
    codes = X.astype(int)
    K = 3
    w_ref = int(np.argmax(m.weights_))
    w_free = [k for k in range(K) if k != w_ref and not se.weights_boundary[k]]
    slots = []  # (item, class, answer, reference answer) of every free probability
    for j, p in enumerate(m.probs_):
        for k in range(K):
            ref = int(np.argmax(p[k]))
            for r in range(p.shape[1]):
                if r != ref and not se.boundary[j][k, r]:
                    slots.append((j, k, r, ref))
    base_probs = [
        np.where(b & (p < 0.5), 0.0, p) for p, b in zip(m.probs_, se.boundary, strict=True)
    ]
    base_probs = [p / p.sum(axis=1, keepdims=True) for p in base_probs]

    def unpack(v):
        logit_w = np.log(np.maximum(m.weights_, 1e-300) / m.weights_[w_ref])
        logit_w[w_free] = v[: len(w_free)]
        weights = np.exp(logit_w) / np.exp(logit_w).sum()
        probs = []
        for p in base_probs:
            with np.errstate(divide="ignore"):
                rel = np.log(p) - np.log(p.max(axis=1, keepdims=True))
            probs.append(rel)
        for i, (j, k, r, _ref) in enumerate(slots):
            probs[j][k, r] = v[len(w_free) + i]
        probs = [np.exp(q) / np.exp(q).sum(axis=1, keepdims=True) for q in probs]
        return weights, probs

    v0 = np.concatenate(
        [np.log(m.weights_[w_free] / m.weights_[w_ref])]
        + [[np.log(base_probs[j][k, r] / base_probs[j][k, ref])] for j, k, r, ref in slots]
    )
    P = len(v0)
    assert se.n_free == P
    h = 1e-4

    def f(v):
        return loglik(codes, *unpack(v))

    H = np.empty((P, P))
    for a in range(P):
        for b in range(a, P):
            ea, eb = np.eye(P)[a] * h, np.eye(P)[b] * h
            H[a, b] = H[b, a] = (
                f(v0 + ea + eb) - f(v0 + ea - eb) - f(v0 - ea + eb) + f(v0 - ea - eb)
            ) / (4 * h * h)
    cov = np.linalg.inv(-H)

    def estimates(v):
        weights, probs = unpack(v)
        return np.concatenate([weights] + [p.ravel() for p in probs])

    Jac = np.column_stack(
        [(estimates(v0 + e) - estimates(v0 - e)) / (2 * 1e-6) for e in np.eye(P) * 1e-6]
    )
    expected = np.sqrt(np.maximum(np.einsum("ap,pq,aq->a", Jac, cov, Jac), 0))
    np.testing.assert_allclose(flat(se), expected, rtol=2e-3, atol=1e-5)


def test_opg_equals_polca_formula_on_values():
    """poLCA.se: scores in poLCA's parametrisation (log-odds against the first answer
    and the first class), info = SᵀS, VCE = its (pseudo-)inverse, then the delta method
    through poLCA's own Jacobians of the softmax."""
    X = values()
    m = fit(X, K=2).reorder("weight")
    assert m.score_samples(X).sum() == pytest.approx(VALUES_POLCA_LOGLIK[2], abs=1e-3)
    codes = X.to_numpy().astype(int) - 1
    N, J = codes.shape
    K = 2
    probs, prior = m.probs_, m.weights_
    rgivy = m.predict_proba(X)
    cols = []
    for r in range(K):
        for j in range(J):
            y = np.eye(probs[j].shape[1])[codes[:, j]]
            cols.append(rgivy[:, [r]] * (y[:, 1:] - probs[j][r, 1:]))
    ppdiff = rgivy - prior
    for r in range(1, K):
        cols.append(ppdiff[:, [r]])
    S = np.concatenate(cols, axis=1)
    VCE = np.linalg.pinv(S.T @ S)
    # probabilities: the Jacobian of each softmax block (θ_r / β_s = θ_r(δ_rs − θ_s))
    n_item = sum(p.shape[1] - 1 for p in probs)
    se_probs = []
    for j in range(J):
        se_probs.append(np.empty_like(probs[j]))
    pos = 0
    for r in range(K):
        for j in range(J):
            R = probs[j].shape[1]
            th = probs[j][r]
            jac = (np.diag(th) - np.outer(th, th))[:, 1:]  # d θ / d(log-odds 2..R)
            block = VCE[pos : pos + R - 1, pos : pos + R - 1]
            se_probs[j][r] = np.sqrt(np.diag(jac @ block @ jac.T))
            pos += R - 1
    assert pos == K * n_item
    jac_w = (np.diag(prior) - np.outer(prior, prior))[:, 1:]
    block = VCE[pos:, pos:]
    se_prior = np.sqrt(np.diag(jac_w @ block @ jac_w.T))

    se = m.standard_errors(X, "opg")
    assert se.n_boundary == 0
    np.testing.assert_allclose(se.weights, se_prior, rtol=1e-6)
    for a, b in zip(se.probs, se_probs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_no_standard_error_is_nan_and_the_repr_is_short():
    X, _ = planted_with_zeros(seed=3, n=300)
    models = [fit(X, K=4), fit(X, K=5)]  # more classes than the data hold: empty-ish ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        binary = (X[:, [1, 2]] > 0).astype(float)
        B = np.column_stack([binary, X[:, 0] == 2, X[:, 3] == 0]).astype(float)
        models.append(BernoulliMixture(3, n_init=5, random_state=0).fit(B))
    for model, data in zip(models, [X, X, B], strict=True):
        for method in ("hessian", "opg"):
            se = model.standard_errors(data, method)
            values_ = flat(se)
            assert np.all(np.isfinite(values_)) and np.all(values_ >= 0), (model, method)
            assert not np.any(np.isnan(se.covariance))
            text = repr(se)
            assert text.startswith("StandardErrors(method=") and "n_boundary=" in text
            assert len(text) < 100
    summary = str(models[0].summary(X))
    assert "nan" not in summary.lower()


def test_the_model_is_not_changed_by_the_standard_errors(boundary_fits):
    X, _, loose, _ = boundary_fits
    before = (loose.weights_.copy(), loose.log_table_.copy(), loose.tol, loose.n_iter_)
    loose.standard_errors(X)
    assert np.array_equal(loose.weights_, before[0])
    assert np.array_equal(loose.log_table_, before[1])
    assert (loose.tol, loose.n_iter_) == before[2:]
