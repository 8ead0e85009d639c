"""Bernoulli mixture (SPEC §1): math against hand and brute-force computation, EM invariants."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import planted_binary
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import ConvergenceWarning

from emnet.mixture import BernoulliMixture
from emnet.mixture.kernels.bernoulli_math import (
    MEAN_CLAMP,
    SuffStats,
    add_stats,
    chunk_stats,
    e_step,
    expected_complete_loglik,
    log_bernoulli,
    log_prior,
    m_step,
    m_step_from_stats,
)

# ----------------------------------------------------------------------------- helpers


def random_params(rng: np.random.Generator, K: int, D: int):
    weights = rng.dirichlet(np.ones(K))
    means = rng.uniform(0.02, 0.98, size=(K, D))
    return weights, means


def brute_log_prob(x: np.ndarray, weights: np.ndarray, means: np.ndarray) -> float:
    """log Σ over completions of the missing entries of Σ_k π_k Π_d p^x (1 − p)^(1 − x)."""
    miss = np.isnan(x)
    total = 0.0
    for fill in itertools.product([0.0, 1.0], repeat=int(miss.sum())):
        full = x.copy()
        full[miss] = fill
        for k in range(len(weights)):
            total += weights[k] * np.prod(means[k] ** full * (1 - means[k]) ** (1 - full))
    return float(np.log(total))


def binary_data(draw, n_max=30, d_max=8, allow_nan=False):
    n = draw(st.integers(2, n_max))
    d = draw(st.integers(1, d_max))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    X = (rng.uniform(size=(n, d)) < rng.uniform(0.05, 0.95, size=d)).astype(np.float64)
    if allow_nan and draw(st.booleans()):
        X[rng.uniform(size=X.shape) < 0.2] = np.nan
        X[np.isnan(X).all(axis=1), 0] = 0.0
    return X, rng


quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# ------------------------------------------------------------------ hypothesis invariants


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_e_and_m_step_invariants(data):
    X, rng = binary_data(data.draw, allow_nan=True)
    K = data.draw(st.integers(1, 4))
    weights, means = random_params(rng, K, X.shape[1])
    log_resp, log_prob = e_step(X, weights, means)
    resp = np.exp(log_resp)
    assert np.all(np.isfinite(log_prob)) and np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    a, b, c = (data.draw(st.floats(1.0, 5.0)) for _ in range(3))
    w2, m2 = m_step(X, resp, a, b, c)
    assert np.all(np.isfinite(w2)) and np.all(np.isfinite(m2))
    assert abs(w2.sum() - 1.0) < 1e-12 and np.all(w2 >= 0)
    assert np.all((m2 > 0) & (m2 < 1))


@quiet
@settings(max_examples=25, deadline=None)
@given(st.data())
def test_fit_objective_never_decreases(data):
    X, _ = binary_data(data.draw, n_max=40, allow_nan=True)
    K = data.draw(st.integers(1, min(4, X.shape[0])))
    prior = data.draw(st.sampled_from([(1.0, 1.0, 1.0), (2.0, 3.0, 1.5)]))
    model = BernoulliMixture(
        K,
        alpha=prior[0],
        beta=prior[1],
        weight_concentration=prior[2],
        init_params=data.draw(st.sampled_from(["kmeans++", "random", "random_from_data"])),
        max_iter=60,
        tol=0.0,
        random_state=data.draw(st.integers(0, 1000)),
        batch_size=data.draw(st.sampled_from([None, 7])),
    ).fit(sp.csr_matrix(X) if data.draw(st.booleans()) else X)
    h = model.history_
    assert np.all(np.isfinite(h)) and len(h) == model.n_iter_
    drops = h[:-1] - h[1:]
    # EM never decreases the objective in exact arithmetic; in floating point a change of
    # a few ulps remains, which a purely relative bound misreads when the objective is
    # itself ~0 (perfectly separated data: −1e-10 per row, drop 1.7e-16, seen with either
    # kernel). Hence the absolute floor, far below any real decrease.
    assert np.all(drops <= 1e-9 * np.abs(h[1:]) + 1e-12), drops.max()
    assert np.all((model.means_ > 0) & (model.means_ < 1))
    assert abs(model.weights_.sum() - 1) < 1e-12
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(model.score_samples(X)))


# ------------------------------------------------------- one iteration by hand (eq. 14, 19)


def _hand_em_iteration(X, weights, means, a=1.0, b=1.0, c=1.0):
    n, D = X.shape
    K = len(weights)
    joint = np.array(
        [
            [
                weights[k] * np.prod(means[k] ** X[i] * (1 - means[k]) ** (1 - X[i]))
                for k in range(K)
            ]
            for i in range(n)
        ]
    )
    eta = joint / joint.sum(axis=1, keepdims=True)  # eq. 6 with the corrected denominator
    N = eta.sum(axis=0)
    new_means = np.array(
        [
            [
                (sum(eta[i, k] * X[i, d] for i in range(n)) + a - 1) / (N[k] + a + b - 2)
                for d in range(D)
            ]
            for k in range(K)
        ]
    )
    new_weights = (N + c - 1) / (n + K * (c - 1))
    return eta, new_weights, new_means


@pytest.mark.parametrize("prior", [(1.0, 1.0, 1.0), (2.0, 3.0, 4.0)])
def test_one_iteration_matches_hand_computation(prior):
    rng = np.random.default_rng(1)
    X = (rng.uniform(size=(12, 5)) < 0.5).astype(float)
    weights, means = np.array([0.2, 0.5, 0.3]), rng.uniform(0.1, 0.9, size=(3, 5))
    eta, hw, hm = _hand_em_iteration(X, weights, means, *prior)
    np.testing.assert_allclose(np.exp(e_step(X, weights, means)[0]), eta, rtol=1e-12)
    a, b, c = prior
    with pytest.warns(ConvergenceWarning):
        model = BernoulliMixture(
            3,
            weights_init=weights,
            means_init=means,
            max_iter=1,
            tol=0.0,
            alpha=a,
            beta=b,
            weight_concentration=c,
            accelerate=False,  # one plain EM iteration
        ).fit(X)
    np.testing.assert_allclose(model.weights_, hw, rtol=1e-12)
    np.testing.assert_allclose(model.means_, hm, rtol=1e-12)
    np.testing.assert_allclose(m_step(X, eta, a, b, c)[1], hm, rtol=1e-12)


def test_expected_complete_loglik_is_eq7_and_m_step_maximises_it():
    rng = np.random.default_rng(2)
    X = (rng.uniform(size=(15, 4)) < 0.4).astype(float)
    weights, means = random_params(rng, 3, 4)
    resp = np.exp(e_step(X, weights, means)[0])
    q = sum(
        resp[i, k]
        * (
            np.log(weights[k])
            + sum(
                X[i, d] * np.log(means[k, d]) + (1 - X[i, d]) * np.log(1 - means[k, d])
                for d in range(4)
            )
        )
        for i in range(15)
        for k in range(3)
    )
    assert expected_complete_loglik(X, resp, weights, means) == pytest.approx(q, rel=1e-12)
    w2, m2 = m_step(X, resp)
    assert expected_complete_loglik(X, resp, w2, m2) >= q
    for _ in range(20):  # the M-step is the maximiser: perturbations never do better
        m3 = np.clip(m2 + rng.normal(scale=0.02, size=m2.shape), 0.01, 0.99)
        assert expected_complete_loglik(X, resp, w2, m3) <= expected_complete_loglik(
            X, resp, w2, m2
        )


# ------------------------------------------------------------------ brute-force enumeration


@pytest.mark.parametrize("D", [1, 4, 10])
def test_score_samples_equals_enumeration(D):
    rng = np.random.default_rng(D)
    weights, means = random_params(rng, 3, D)
    grid = np.array(list(itertools.product([0.0, 1.0], repeat=D)))
    model = BernoulliMixture(3)
    model.weights_, model.means_, model.n_features_in_ = weights, means, D
    got = model.score_samples(grid)
    idx = rng.choice(len(grid), size=min(len(grid), 40), replace=False)
    want = [brute_log_prob(grid[i], weights, means) for i in idx]
    np.testing.assert_allclose(got[idx], want, rtol=1e-12)
    assert np.exp(got).sum() == pytest.approx(1.0, rel=1e-12)  # a distribution over {0,1}^D


@pytest.mark.parametrize("D", [3, 8])
def test_missing_values_equal_brute_force_marginalisation(D):
    rng = np.random.default_rng(10 + D)
    weights, means = random_params(rng, 2, D)
    X = (rng.uniform(size=(25, D)) < 0.5).astype(float)
    X[rng.uniform(size=X.shape) < 0.35] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    model = BernoulliMixture(2)
    model.weights_, model.means_, model.n_features_in_ = weights, means, D
    want = [brute_log_prob(x, weights, means) for x in X]
    np.testing.assert_allclose(model.score_samples(X), want, rtol=1e-12)
    np.testing.assert_allclose(model.score_samples(sp.csr_matrix(X)), want, rtol=1e-12)
    lb = log_bernoulli(X, means)
    obs = ~np.isnan(X)
    hand = [
        [
            np.sum(np.where(obs[i], np.log(np.where(X[i] == 1, means[k], 1 - means[k])), 0.0))
            for k in range(2)
        ]
        for i in range(len(X))
    ]
    np.testing.assert_allclose(lb, hand, rtol=1e-12)


def test_missing_m_step_divides_by_observed_responsibility():
    X = np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0], [np.nan, 0.0]])
    resp = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.3, 0.7]])
    _, means = m_step(X, resp)
    obs = ~np.isnan(X)
    want = (resp.T @ np.nan_to_num(X)) / (resp.T @ obs)
    np.testing.assert_allclose(means, want, rtol=1e-12)


# ------------------------------------------------------------------ sufficient statistics


def test_chunk_stats_add_up_over_chunks_dense_sparse_and_nan():
    X, _, weights, means = planted_binary(300, 3, 7, seed=3, nan_frac=0.1)
    full = chunk_stats(X, weights, means)
    parts = [chunk_stats(X[s : s + 70], weights, means) for s in range(0, 300, 70)]
    summed = parts[0]
    for p in parts[1:]:
        summed = add_stats(summed, p)
    no_nan = chunk_stats(np.nan_to_num(X[:50]), weights, means)
    assert no_nan.resp_obs is None
    mixed = add_stats(no_nan, chunk_stats(X[50:], weights, means))
    sparse = chunk_stats(sp.csr_matrix(X), weights, means)
    for other in (summed, mixed, sparse):
        if other is mixed:
            other = add_stats(
                chunk_stats(X[:50], weights, means), chunk_stats(X[50:], weights, means)
            )
        assert isinstance(other, SuffStats) and other.n == 300
        np.testing.assert_allclose(other.resp_sum, full.resp_sum, rtol=1e-10)
        np.testing.assert_allclose(other.resp_x, full.resp_x, rtol=1e-10)
        np.testing.assert_allclose(other.resp_obs, full.resp_obs, rtol=1e-10)
        assert other.loglik == pytest.approx(full.loglik, rel=1e-12)
    assert full.loglik == pytest.approx(e_step(X, weights, means)[1].sum(), rel=1e-12)
    w, m = m_step_from_stats(full)
    np.testing.assert_allclose(m, m_step(X, np.exp(e_step(X, weights, means)[0]))[1], rtol=1e-10)
    np.testing.assert_allclose(w, full.resp_sum / 300, rtol=1e-12)


def test_subnormal_responsibilities_are_flushed():
    rng = np.random.default_rng(4)
    X = (rng.uniform(size=(500, 784)) < 0.5).astype(float)
    means = np.vstack([np.full(784, 0.5), np.full(784, 0.5005)])
    # log-likelihood gaps of ~700 nats put many responsibilities in the subnormal range
    means[1, :400] = np.where(X[0, :400] == 1, 0.9, 0.1)
    from emnet.mixture.kernels.bernoulli_math import (
        _joint_log_prob,
        _log_params,
        _responsibilities_inplace,
    )

    A, _, _ = _joint_log_prob(X, _log_params(np.array([0.5, 0.5]), means, np.dtype(np.float64)))
    _responsibilities_inplace(A)
    tiny = np.finfo(np.float64).tiny
    assert not np.any((A > 0) & (tiny > A))
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-12)


def test_m_step_clamps_and_keeps_empty_components():
    stats = SuffStats(4.0, np.array([4.0, 0.0]), np.array([[4.0, 0.0], [0.0, 0.0]]), None, 0.0)
    prev = np.array([[0.3, 0.3], [0.25, 0.75]])
    weights, means = m_step_from_stats(stats, prev_means=prev)
    np.testing.assert_array_equal(weights, [1.0, 0.0])
    np.testing.assert_array_equal(means[0], [1 - MEAN_CLAMP, MEAN_CLAMP])
    np.testing.assert_array_equal(means[1], prev[1])
    assert log_prior(weights, means) == 0.0
    w2, m2 = m_step_from_stats(stats, 2.0, 2.0, 3.0)
    np.testing.assert_allclose(w2, [6 / 8, 2 / 8])
    np.testing.assert_allclose(m2, [[5 / 6, 1 / 6], [0.5, 0.5]])


# ------------------------------------------------------------------ recovery and fits


def test_recovers_planted_mixture():
    X, _, weights, means = planted_binary(20_000, 3, 30, seed=0)
    model = BernoulliMixture(3, random_state=0, n_init=2).fit(X)
    assert model.converged_
    dist = np.abs(model.means_[:, None, :] - means[None, :, :]).max(axis=2)
    rows, cols = linear_sum_assignment(dist)
    assert dist[rows, cols].max() < 0.02
    np.testing.assert_allclose(model.weights_[rows], weights[cols], atol=0.02)


def test_dense_sparse_dataframe_list_uint8_and_batches_give_the_same_fit():
    X, _, _, _ = planted_binary(400, 3, 12, seed=5)
    kwargs = dict(n_components=3, random_state=7, max_iter=50, tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = BernoulliMixture(**kwargs).fit(X)
        frame = pd.DataFrame(X.astype(int), columns=[f"px{j}" for j in range(12)])
        inputs = {
            "csr": sp.csr_matrix(X),
            "csr_array": sp.csr_array(X),
            "csc": sp.csc_matrix(X),
            "frame": frame,
            "list": X.astype(int).tolist(),
            "uint8": X.astype(np.uint8),
            "bool": X.astype(bool),
        }
        for name, data in inputs.items():
            fit = BernoulliMixture(**kwargs).fit(data)
            np.testing.assert_allclose(fit.means_, ref.means_, atol=1e-10, err_msg=name)
            np.testing.assert_allclose(fit.history_, ref.history_, rtol=1e-12, err_msg=name)
        for batch in (29, 400):
            for data in (X.astype(np.uint8), sp.csr_matrix(X)):
                fit = BernoulliMixture(**kwargs, batch_size=batch).fit(data)
                np.testing.assert_allclose(fit.means_, ref.means_, atol=1e-10)
    assert list(BernoulliMixture(**kwargs).fit(frame).feature_names_in_) == list(frame.columns)


def test_sparse_input_is_never_densified(monkeypatch):
    X = sp.random(2000, 50, density=0.05, format="csr", random_state=0)
    X.data[:] = 1.0
    original = sp.csr_matrix.toarray

    def guarded(self, *args, **kwargs):  # a few rows (e.g. seeds) may be densified, X never
        assert self.shape[0] < X.shape[0] // 2, "the whole sparse matrix was densified"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", guarded)
    monkeypatch.setattr(sp.csr_matrix, "todense", guarded)
    for batch_size in (None, 300):
        # the EM steps themselves (the split-merge refinement is emnet.mixture.core.refine's)
        model = BernoulliMixture(
            4, random_state=0, max_iter=500, batch_size=batch_size, split_merge=False
        ).fit(X)
        assert np.isfinite(model.score(X))
        dense = BernoulliMixture(4, random_state=0, max_iter=500, split_merge=False)
        dense.fit(original(X))
        np.testing.assert_allclose(model.means_, dense.means_, atol=1e-10)


def test_float32_stays_finite_where_means_hit_zero_and_one():
    X, _, _, _ = planted_binary(3000, 4, 40, seed=6)
    X[:, :5] = 0.0  # maximum likelihood puts these means at exactly 0 ...
    X[:, 5:8] = 1.0  # ... and these at exactly 1
    for dtype in (np.float32, np.float64):
        model = BernoulliMixture(4, dtype=dtype, random_state=0, n_init=1).fit(X)
        assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.history_))
        assert np.all((model.means_ > 0) & (model.means_ < 1))
        assert np.all(np.isfinite(model.score_samples(X)))
    f32 = BernoulliMixture(4, dtype=np.float32, random_state=0).fit(X)
    f64 = BernoulliMixture(4, dtype=np.float64, random_state=0).fit(X)
    assert f32.lower_bound_ == pytest.approx(f64.lower_bound_, rel=1e-4)


def test_n_init_keeps_the_best_run_and_warm_start_continues(monkeypatch):
    X, _, _, _ = planted_binary(600, 4, 15, seed=8)
    runs = []
    original = BernoulliMixture._run_em

    def recording(self, *args):
        run = original(self, *args)
        runs.append(run)
        return run

    monkeypatch.setattr(BernoulliMixture, "_run_em", recording)
    best = BernoulliMixture(
        4, init_params="random", n_init=5, random_state=0, split_merge=False
    ).fit(X)
    assert len(runs) == 5 and len({round(r.lower_bound, 6) for r in runs}) > 1
    assert best.lower_bound_ == max(r.lower_bound for r in runs)
    monkeypatch.undo()
    warm = BernoulliMixture(4, warm_start=True, max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        warm.fit(X)
    first = warm.lower_bound_
    warm.set_params(max_iter=500)
    warm.fit(X)
    assert warm.converged_ and warm.lower_bound_ >= first - 1e-12
    assert warm.history_[0] >= first - 1e-12  # continued, not restarted


def test_sample_bic_aic_and_predict():
    X, z, _, _ = planted_binary(3000, 3, 25, seed=9)
    model = BernoulliMixture(3, random_state=0, n_init=2).fit(X)
    labels = model.predict(X)
    assert labels.shape == (3000,) and set(labels) <= {0, 1, 2}
    np.testing.assert_array_equal(model.fit_predict(X), labels)
    loglik = model.score_samples(X).sum()
    p = 3 * 25 + 2
    assert model.bic(X) == pytest.approx(-2 * loglik + p * np.log(3000))
    assert model.aic(X) == pytest.approx(-2 * loglik + 2 * p)
    assert model.score(X) == pytest.approx(loglik / 3000)
    S, y = model.sample(20_000)
    assert S.shape == (20_000, 25) and S.dtype == np.uint8 and set(np.unique(S)) <= {0, 1}
    for k in range(3):
        np.testing.assert_allclose(S[y == k].mean(axis=0), model.means_[k], atol=0.05)
    np.testing.assert_allclose(np.bincount(y, minlength=3) / 20_000, model.weights_, atol=0.02)


def test_save_load_round_trip_without_pickle(tmp_path):
    X, _, _, _ = planted_binary(500, 2, 10, seed=10)
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(10)])
    model = BernoulliMixture(2, random_state=3, means_init=np.full((2, 10), 0.5) + [[0.1], [-0.1]])
    model.fit(frame)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as npz:  # loads without pickle
        assert "means_" in npz.files
    loaded = BernoulliMixture.load(path)
    np.testing.assert_array_equal(loaded.means_, model.means_)
    np.testing.assert_array_equal(loaded.history_, model.history_)
    assert loaded.get_params()["random_state"] == 3
    np.testing.assert_array_equal(loaded.means_init, model.means_init)
    assert loaded.converged_ == model.converged_ and loaded.n_iter_ == model.n_iter_
    np.testing.assert_array_equal(loaded.score_samples(frame), model.score_samples(frame))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x80\x04not a model")
    with pytest.raises(ValueError, match="not a saved BernoulliMixture"):
        BernoulliMixture.load(bad)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([[0, 1], [1, 2]]), r"binary.*found 2 at row 1, column 1"),
        (np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.5]]), r"found 0.5 at row 2, column 1"),
        (np.array([[0.0, np.inf], [1.0, 0.0]]), r"found inf at row 0, column 1"),
        (np.array([[0.0, 1.0], [np.nan, np.nan]]), r"row 1 has no observed entry"),
        (sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 3.0]])), r"found 3 at row 1, column 1"),
        (sp.csr_matrix(np.array([[0.0, 1.0], [np.nan, np.nan]])), r"row 1 has no observed"),
        (np.zeros(5), r"Expected 2D array"),
        (np.zeros((0, 3)), r"0 sample"),
        (np.array([[1 + 1j, 0]]), r"[Cc]omplex"),
        (np.array([["a", "b"]]), r"[Ss]tring|could not convert|dtype"),
    ],
)
def test_bad_input_names_what_and_where(X, match):
    with pytest.raises(ValueError, match=match):
        BernoulliMixture(1).fit(X)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(n_components=0), "n_components"),
        (dict(n_components=5), r"n_components=5 must be <= n_samples=3"),
        (dict(max_iter=-1), "max_iter"),
        (dict(tol=-1.0), "tol"),
        (dict(n_init=0), "n_init"),
        (dict(alpha=0.5), "alpha"),
        (dict(beta=float("nan")), "beta"),
        (dict(weight_concentration=0.0), "weight_concentration"),
        (dict(init_params="kmeans"), "init_params"),
        (dict(dtype=np.int32), "dtype"),
        (dict(backend="jax"), "backend"),
        (dict(device="tpu"), "device"),
        (dict(device="cuda"), "backend='torch'"),
        (dict(batch_size=0), "batch_size"),
        (dict(n_components=2, weights_init=[0.5, 0.6]), "sum to 1"),
        (dict(n_components=2, weights_init=[1.0]), r"weights_init: expected shape \(2,\)"),
        (dict(n_components=2, means_init=np.full((2, 3), 0.5)), r"means_init: expected shape"),
        (dict(n_components=1, means_init=[[0.5, 1.5]]), r"means_init: expected values"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X = np.array([[0, 1], [1, 0], [1, 1]])
    with pytest.raises(ValueError, match=match):
        BernoulliMixture(**params).fit(X)


def test_predict_checks_fitted_and_feature_count():
    from sklearn.exceptions import NotFittedError

    X = np.array([[0, 1, 1], [1, 0, 0], [1, 1, 0]])
    with pytest.raises(NotFittedError):
        BernoulliMixture(1).predict(X)
    model = BernoulliMixture(1).fit(X)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)


def test_convergence_warning_when_max_iter_ends_the_fit():
    X, _, _, _ = planted_binary(300, 3, 10, seed=11)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        model = BernoulliMixture(3, max_iter=2, tol=0.0, random_state=0).fit(X)
    assert not model.converged_ and model.n_iter_ == 2 and len(model.history_) == 2


def test_pure_functions_name_mismatched_arguments():
    X = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, np.nan]])
    w, m = np.array([0.5, 0.5]), np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match=r"means: expected shape \(K, 3\)"):
        e_step(X, w, np.full((2, 4), 0.5))
    with pytest.raises(ValueError, match=r"weights: expected shape \(2,\)"):
        chunk_stats(X, np.ones(3) / 3, m)
    with pytest.raises(ValueError, match="means: expected values in"):
        log_bernoulli(X, m + 1)
    with pytest.raises(ValueError, match=r"resp: expected shape \(2, K\)"):
        m_step(X, np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match=r"resp: expected shape \(2, 2\)"):
        expected_complete_loglik(X, np.ones((2, 3)) / 3, w, m)
    with pytest.raises(ValueError, match="X: expected a 2-D"):
        log_bernoulli(np.zeros(3), m)
    # a zero weight is allowed: it gives zero responsibility, never NaN
    w0 = np.array([1.0, 0.0])
    log_resp, log_prob = e_step(X, w0, m)
    assert np.all(np.isfinite(log_prob)) and np.all(np.exp(log_resp)[:, 1] == 0)
    assert np.isfinite(expected_complete_loglik(X, np.exp(log_resp), w0, m))


def test_verbose_output_and_max_iter_zero(capsys):
    X, _, _, _ = planted_binary(200, 2, 6, seed=12)
    model = BernoulliMixture(2, verbose=2, random_state=0, split_merge=False).fit(X)
    out = capsys.readouterr().out
    assert f"iteration {model.n_iter_}: objective" in out and "init 1: converged" in out
    w0, m0 = np.array([0.3, 0.7]), np.full((2, 6), 0.4) + [[0.0], [0.2]]
    with pytest.warns(ConvergenceWarning):
        zero = BernoulliMixture(2, max_iter=0, weights_init=w0, means_init=m0, split_merge=False)
        zero.fit(X)
    assert zero.n_iter_ == 0 and len(zero.history_) == 0
    np.testing.assert_array_equal(zero.means_, m0)
    assert zero.lower_bound_ == pytest.approx(e_step(X, w0, m0)[1].mean(), rel=1e-12)


def test_read_only_and_memory_mapped_input(tmp_path):
    X, _, _, _ = planted_binary(500, 3, 9, seed=13)
    ref = BernoulliMixture(3, random_state=0).fit(X)
    frozen = X.copy()
    frozen.flags.writeable = False
    np.save(tmp_path / "x.npy", X.astype(np.uint8))
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    for data, batch in ((frozen, None), (mapped, None), (mapped, 64)):
        fit = BernoulliMixture(3, random_state=0, batch_size=batch).fit(data)
        np.testing.assert_allclose(fit.means_, ref.means_, atol=1e-10)
    assert not frozen.flags.writeable and np.array_equal(frozen, X)


def test_sparse_missing_values_leave_the_input_untouched():
    X = sp.csr_matrix(np.array([[np.nan, 1.0, 0.0], [1.0, np.nan, np.nan], [0.0, 1.0, 1.0]]))
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    w, m = np.array([0.4, 0.6]), np.full((2, 3), 0.3) + [[0.0], [0.4]]
    first = chunk_stats(X, w, m)
    second = chunk_stats(X, w, m)
    for a, b in zip(before, (X.data, X.indices, X.indptr)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.resp_obs, second.resp_obs)
    dense = chunk_stats(X.toarray(), w, m)
    np.testing.assert_allclose(first.resp_obs, dense.resp_obs, rtol=1e-12)
    np.testing.assert_allclose(first.resp_x, dense.resp_x, rtol=1e-12)
