"""The blocked E-step (``emnet.mixture.kernels.blocked``) and restarts on threads: same numbers.

The blocked pass reads several items as one code and works in probabilities with a
log-domain fallback per row; these tests hold it to ``_codes``'s log-domain pass (and to
a brute-force sum written here), and hold fits on many distinct patterns, which use it,
to the same fits with blocking switched off.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emnet.mixture import BernoulliMixture, CategoricalMixture
from emnet.mixture.core import em as _base
from emnet.mixture.kernels import blocked as _blocked
from emnet.mixture.kernels.codes import _parallel_stats_kernel, compress_rows, offsets_of


def random_codes(rng, n, R, missing):
    codes = np.column_stack([rng.integers(0, r, size=n) for r in R]).astype(np.int16)
    if missing:
        mask = rng.uniform(size=codes.shape) < missing
        codes[mask] = -1
    return codes


def random_table(rng, R, K, spread=1.0):
    """log θ (M, K), each item's answers a Dirichlet(spread) draw per class."""
    blocks = [np.log(np.maximum(rng.dirichlet(np.full(r, spread), size=K), 1e-10)) for r in R]
    return np.ascontiguousarray(np.concatenate(blocks, axis=1).T)


def reference_stats(codes, w, R, log_w, log_t, want_obs):
    offsets = offsets_of(np.asarray(R))
    return _parallel_stats_kernel(codes, w, offsets, log_w, log_t, want_obs, 1)


def test_plan_blocks_respects_the_cap_and_keeps_item_order():
    blocks = _blocked.plan_blocks(np.array([2, 3, 4, 5, 2, 3, 7]), 30)
    assert blocks == [[0, 1, 2], [3, 4, 5], [6]]
    assert _blocked.plan_blocks(np.array([50, 2]), 10) == [[0], [1]]  # one item may exceed


def test_block_codes_decode_to_the_items_answers():
    rng = np.random.default_rng(0)
    R = np.array([2, 3, 4, 2, 5])
    codes = random_codes(rng, 300, R, missing=0.2)
    blocked = _blocked.build_blocks(codes, R, cap=30)
    offsets = offsets_of(R)
    for i in range(len(codes)):
        seen = {}
        for s in blocked.codes[i]:
            hit = blocked.entry_row == s
            for col, j in zip(blocked.entry_col[hit], blocked.entry_item[hit], strict=True):
                seen[int(j)] = -1 if col < 0 else int(col - offsets[j])
        assert seen == {j: int(codes[i, j]) for j in range(len(R))}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    K=st.integers(1, 5),
    J=st.integers(2, 9),
    missing=st.sampled_from([0.0, 0.15]),
    cap=st.sampled_from([4, 16, 200]),
)
def test_blocked_statistics_equal_the_log_domain_pass(seed, K, J, missing, cap):
    rng = np.random.default_rng(seed)
    R = rng.integers(2, 6, size=J)
    codes = random_codes(rng, 400, R, missing)
    codes = codes[(codes >= 0).any(axis=1)]
    w = rng.uniform(0.1, 3.0, size=len(codes))
    log_w = np.log(rng.dirichlet(np.ones(K)))
    log_t = random_table(rng, R, K)
    want_obs = bool(missing)
    ref = reference_stats(codes, w, R, log_w, log_t, want_obs)
    blocked = _blocked.build_blocks(codes, R, cap)
    got = _blocked.blocked_stats(blocked, w, log_w, log_t, J, want_obs)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-10)
    if want_obs:
        np.testing.assert_allclose(got[3], ref[3], rtol=1e-10, atol=1e-10)


def test_rows_too_improbable_for_products_are_redone_in_logs():
    """40 items at probability 1e-10 each: p(x) ~ 1e-400 underflows as a product; the
    log-domain fallback gives the exact log-likelihood and responsibilities."""
    R = np.full(40, 2)
    K = 2
    log_t = np.empty((80, K))
    log_t[0::2] = np.log1p(-1e-10)  # answer 0 almost sure in both classes
    log_t[1::2, 0] = np.log(1e-10)
    log_t[1::2, 1] = np.log(2e-10)
    codes = np.ones((3, 40), dtype=np.int16)  # every answer the improbable one
    codes[1, :20] = 0
    codes[2] = 0
    w = np.array([1.0, 2.0, 0.5])
    log_w = np.log(np.array([0.7, 0.3]))
    blocked = _blocked.build_blocks(codes, R, cap=1024)
    got = _blocked.blocked_stats(blocked, w, log_w, log_t, 40, False)
    # written out: log p(row) = logsumexp_k(log π_k + Σ_j log θ)
    a = log_w[None, :] + np.array(
        [[sum(log_t[2 * j + c, k] for j, c in enumerate(row)) for k in range(K)] for row in codes]
    )
    lp = np.logaddexp(a[:, 0], a[:, 1])
    assert np.all(np.isfinite(got[2]))
    np.testing.assert_allclose(got[0], float(w @ lp), rtol=1e-12)
    eta = np.exp(a - lp[:, None])
    np.testing.assert_allclose(got[2], w @ eta, rtol=1e-10)
    assert got[2][1] > 0.99 * w[0]  # the all-improbable row belongs to class 1 (2^40 more likely)


def survey(n, R, K, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(K, 5.0))
    probs = [rng.dirichlet(np.full(r, 0.5), size=K) for r in R]
    z = rng.choice(K, size=n, p=weights)
    X = np.column_stack(
        [(rng.uniform(size=(n, 1)) > np.cumsum(p[z], axis=1)).sum(axis=1) for p in probs]
    ).astype(float)
    if missing:
        mask = rng.uniform(size=X.shape) < missing
        mask[mask.all(axis=1), 0] = False
        X[mask] = np.nan
    return X


@pytest.mark.parametrize("missing", [0.0, 0.1])
def test_categorical_fit_on_many_patterns_equals_the_unblocked_fit(monkeypatch, missing):
    R = [2, 3, 4, 5, 3, 2, 4, 3, 3, 4]
    X = survey(8000, R, 3, seed=1, missing=missing)
    codes, _, _ = compress_rows(np.nan_to_num(X, nan=-1).astype(np.int16), None)
    assert len(codes) >= _blocked.MIN_PATTERNS  # the blocked path is taken
    kw = dict(n_init=3, random_state=0, tol=1e-10, max_iter=2000)
    blocked = CategoricalMixture(3, **kw).fit(X)
    calls = []
    real = _blocked.maybe_blocks
    monkeypatch.setattr(
        "emnet.mixture.estimators.categorical.maybe_blocks", lambda *a: calls.append(1) or None
    )
    plain = CategoricalMixture(3, **kw).fit(X)
    assert calls and real(codes, np.array(R)) is not None
    np.testing.assert_allclose(blocked.init_lower_bounds_, plain.init_lower_bounds_, atol=1e-9)
    np.testing.assert_allclose(blocked.weights_, plain.weights_, atol=1e-6)
    for a, b in zip(blocked.probs_, plain.probs_, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_bernoulli_pattern_fit_on_many_patterns_equals_the_unblocked_fit(monkeypatch):
    rng = np.random.default_rng(3)
    means = rng.uniform(0.1, 0.9, size=(3, 14))
    z = rng.choice(3, size=8000)
    X = (rng.uniform(size=(8000, 14)) < means[z]).astype(float)
    X[rng.uniform(size=X.shape) < 0.05] = np.nan
    kw = dict(n_init=2, random_state=0, tol=1e-10, max_iter=300, split_merge=False)
    blocked = BernoulliMixture(3, **kw).fit(X)
    monkeypatch.setattr("emnet.mixture.estimators.bernoulli.maybe_blocks", lambda *a: None)
    plain = BernoulliMixture(3, **kw).fit(X)
    np.testing.assert_allclose(blocked.history_, plain.history_, rtol=1e-10)
    np.testing.assert_allclose(blocked.means_, plain.means_, atol=1e-7)


def threaded_and_serial(monkeypatch, make, X):
    """(fit with starts on 2 threads, fit with serial starts); asserts both fits took the
    threaded path's condition (``FitData.concurrent``)."""
    seen = []
    real = _base.BaseEMMixture._run_starts
    monkeypatch.setattr(
        _base.BaseEMMixture,
        "_run_starts",
        lambda self, fd, starts: seen.append(fd.concurrent) or real(self, fd, starts),
    )
    monkeypatch.setattr(_base, "_n_cores", lambda: 2)
    threaded = make().fit(X)
    monkeypatch.setattr(_base, "_n_cores", lambda: 1)
    serial = make().fit(X)
    assert seen == [True, True]
    return threaded, serial


def test_restarts_on_threads_equal_the_serial_restarts(monkeypatch):
    X = survey(9000, [3, 4, 2, 5, 3, 4, 2, 3, 4, 5], 4, seed=2)
    threaded, serial = threaded_and_serial(
        monkeypatch, lambda: CategoricalMixture(4, n_init=6, random_state=0), X
    )
    np.testing.assert_array_equal(threaded.init_lower_bounds_, serial.init_lower_bounds_)
    np.testing.assert_array_equal(threaded.init_n_em_steps_, serial.init_n_em_steps_)
    np.testing.assert_array_equal(threaded.history_, serial.history_)


def test_bernoulli_restarts_on_threads_equal_the_serial_restarts(monkeypatch):
    rng = np.random.default_rng(5)
    means = rng.uniform(0.1, 0.9, size=(3, 16))
    z = rng.choice(3, size=9000)
    X = (rng.uniform(size=(9000, 16)) < means[z]).astype(float)
    threaded, serial = threaded_and_serial(
        monkeypatch,
        lambda: BernoulliMixture(3, n_init=4, random_state=0, tol=1e-10, max_iter=200),
        X,
    )
    np.testing.assert_array_equal(threaded.init_lower_bounds_, serial.init_lower_bounds_)
    np.testing.assert_array_equal(threaded.means_, serial.means_)
