"""The bit-packed kernels (emnet.mixture.kernels.bitpack) against the matrix-product math."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from emnet.mixture import BernoulliMixture
from emnet.mixture.backends.numpy_backend import NumpyBackend, make_backend
from emnet.mixture.kernels.bernoulli_math import chunk_stats, e_step
from emnet.mixture.kernels.bitpack import PackedBinary, pack_binary, packed_log_resp, packed_stats

TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-4)}


def _problem(seed: int, n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < rng.random(d)).astype(np.uint8)
    return X, rng.dirichlet(np.ones(k)), rng.beta(0.5, 0.5, (k, d))


def _assert_stats_equal(a: object, b: object, dtype: type) -> None:
    tol = TOL[dtype]
    assert a.n == b.n
    np.testing.assert_allclose(a.resp_sum, b.resp_sum, **tol)
    np.testing.assert_allclose(a.resp_x, b.resp_x, **tol)
    assert a.resp_obs is None and b.resp_obs is None
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=tol["rtol"])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    d=st.integers(1, 27),
    k=st.integers(1, 6),
    seed=st.integers(0, 10**6),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_packed_kernels_equal_matrix_products(n: int, d: int, k: int, seed: int, dtype: type):
    """Any shape (n and D not multiples of 8, n < 8, n = 0, K = 1), both precisions."""
    X, w, mu = _problem(seed, n, d, k)
    packed = pack_binary(X)
    assert packed is not None and packed.shape == (n, d)
    _assert_stats_equal(
        packed_stats(packed, w, mu, dtype=dtype), chunk_stats(X, w, mu, dtype=dtype), dtype
    )
    lr, lp = packed_log_resp(packed, w, mu, dtype=dtype)
    lr_ref, lp_ref = e_step(X, w, mu, dtype=dtype)
    assert lr.dtype == lr_ref.dtype and lr.shape == (n, k)
    np.testing.assert_allclose(lr, lr_ref, **TOL[dtype])
    np.testing.assert_allclose(lp, lp_ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.int64, np.float32, np.float64])
def test_pack_binary_bits_round_trip(dtype: type):
    X, _, _ = _problem(1, 29, 21, 2)
    packed = pack_binary(X.astype(dtype))
    rows = np.unpackbits(packed.rows, axis=1)[:, :21]
    cols = np.unpackbits(packed.cols, axis=0)[:29]
    np.testing.assert_array_equal(rows, X)
    np.testing.assert_array_equal(cols, X)
    assert not np.unpackbits(packed.cols, axis=0)[29:].any()  # padding rows are 0


@pytest.mark.parametrize(
    "layout",
    ["fortran", "strided", "float16", "big-endian", "int8"],
)
def test_pack_binary_any_memory_layout_and_dtype(layout: str):
    X, w, mu = _problem(8, 37, 23, 3)
    Y = {
        "fortran": np.asfortranarray(X.astype(np.float64)),
        "strided": np.repeat(X, 2, axis=1)[:, ::2],
        "float16": X.astype(np.float16),
        "big-endian": X.astype(">f8"),
        "int8": X.astype(np.int8),
    }[layout]
    packed = pack_binary(Y)
    ref = pack_binary(np.ascontiguousarray(X))
    np.testing.assert_array_equal(packed.rows, ref.rows)
    np.testing.assert_array_equal(packed.cols, ref.cols)
    _assert_stats_equal(packed_stats(packed, w, mu), chunk_stats(X, w, mu), np.float64)


@pytest.mark.parametrize(
    "X",
    [
        np.array([[0.0, np.nan]], dtype=np.float16),
        np.array([[0.0, 2.0]], dtype=">f8"),
        np.array([[0.0, np.nan]]),
        np.array([[0, 2]]),
        np.array([[0, -1]]),
        np.array([[0.5, 1.0]]),
        np.array([[0, 1]], dtype=object),
        np.array([0, 1, 1]),
        sp.csr_matrix(np.eye(3)),
        [[0, 1]],
    ],
    ids=["nan-f16", "two-big-endian", "nan", "two", "minus-one", "half", "object", "1-d"]
    + ["sparse", "list"],
)
def test_pack_binary_refuses_what_it_cannot_pack(X: object):
    assert pack_binary(X) is None


def test_zero_weight_and_extreme_means_match():
    """−inf bias (weight 0) and means at the clamp: flush and clamp as the numpy path."""
    X, _, mu = _problem(2, 50, 13, 4)
    mu[0] = 0.0
    mu[1] = 1.0
    w = np.array([0.0, 0.3, 0.3, 0.4])
    packed = pack_binary(X)
    _assert_stats_equal(packed_stats(packed, w, mu), chunk_stats(X, w, mu), np.float64)
    lr, lp = packed_log_resp(packed, w, mu)
    lr_ref, lp_ref = e_step(X, w, mu)
    assert np.all(np.isneginf(lr[:, 0])) and np.all(np.isneginf(lr_ref[:, 0]))
    np.testing.assert_allclose(lr[:, 1:], lr_ref[:, 1:], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-12)


def test_concurrent_calls_from_threads_are_serialised_and_correct():
    X, w, mu = _problem(3, 3000, 100, 5)
    packed = pack_binary(X)
    ref = chunk_stats(X, w, mu)
    results: list[object] = []

    def work() -> None:
        results.append(packed_stats(packed, w, mu))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        _assert_stats_equal(r, ref, np.float64)


def test_backend_prepare_packs_only_complete_binary_dense_input():
    backend = make_backend("numpy", "cpu", np.float64)
    X, w, mu = _problem(4, 20, 9, 3)
    assert isinstance(backend.prepare(X), PackedBinary)
    Xn = X.astype(float)
    Xn[0, 0] = np.nan
    assert backend.prepare(Xn) is Xn
    Xs = sp.csr_matrix(X)
    assert backend.prepare(Xs) is Xs
    off = NumpyBackend(np.float64, bitpack=False)
    assert off.prepare(X) is X
    # either way chunk_stats gives the same statistics
    _assert_stats_equal(
        backend.chunk_stats(backend.prepare(X), w, mu), off.chunk_stats(X, w, mu), np.float64
    )


@pytest.mark.parametrize("batch_size", [None, 64])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estimator_fit_is_the_same_with_and_without_bitpack(batch_size: int | None, dtype: type):
    X, _, _ = _problem(5, 500, 40, 3)
    kw = dict(random_state=0, max_iter=40, tol=0.0, batch_size=batch_size, dtype=dtype)
    kw["accelerate"] = False  # plain EM steps: the kernels are compared step by step
    with pytest.warns(Warning):  # ConvergenceWarning: tol=0 runs all 40 iterations
        on = BernoulliMixture(4, bitpack=True, **kw).fit(X)
    with pytest.warns(Warning):
        off = BernoulliMixture(4, bitpack=False, **kw).fit(X)
    tol = 1e-8 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(on.history_, off.history_, rtol=tol)
    np.testing.assert_allclose(on.means_, off.means_, atol=tol)
    np.testing.assert_allclose(on.predict_proba(X), off.predict_proba(X), atol=tol)
    np.testing.assert_allclose(on.score_samples(X), off.score_samples(X), rtol=tol)


def test_estimator_with_missing_values_falls_back_to_products():
    X, _, _ = _problem(6, 300, 30, 3)
    Xn = X.astype(float)
    Xn[::7, 3] = np.nan
    on = BernoulliMixture(3, random_state=0, bitpack=True).fit(Xn)
    off = BernoulliMixture(3, random_state=0, bitpack=False).fit(Xn)
    np.testing.assert_allclose(on.means_, off.means_, atol=1e-10)
    assert on.lower_bound_ == pytest.approx(off.lower_bound_, rel=1e-12)


def test_bitpack_parameter_is_validated():
    with pytest.raises(ValueError, match="bitpack: expected True or False"):
        BernoulliMixture(2, bitpack="yes").fit(np.eye(4))


def _fork_child(queue: object, X: np.ndarray, w: np.ndarray, mu: np.ndarray) -> None:
    queue.put(packed_stats(pack_binary(X), w, mu).loglik)


def test_kernels_work_in_a_forked_child_after_running_in_the_parent():
    """numba's default GNU OpenMP layer aborts a forked child on its first parallel kernel
    ("fork() called from a process already using GNU OpenMP"); emnet selects workqueue."""
    import multiprocessing

    X, w, mu = _problem(7, 2000, 40, 3)
    parent = packed_stats(pack_binary(X), w, mu).loglik
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fork_child, args=(queue, X, w, mu))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(parent, rel=1e-12)
