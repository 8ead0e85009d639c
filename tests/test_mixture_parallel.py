"""The threaded E-step of the pattern kernels (``_codes``, ``PARALLEL_ROWS`` rows or more)
gives the serial kernel's numbers, from threads, from forked children and in fits."""

from __future__ import annotations

import multiprocessing
import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from emnet.mixture import BernoulliMixture, CategoricalMixture
from emnet.mixture.kernels import codes as _codes


def _categorical_problem(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    codes = np.column_stack([rng.integers(0, r, size=n) for r in (2, 3, 4, 5, 3)]).astype(np.int16)
    codes[rng.uniform(size=codes.shape) < 0.05] = -1
    codes[(codes < 0).all(axis=1), 0] = 0
    offsets = _codes.offsets_of(np.array([2, 3, 4, 5, 3]))
    K = 3
    table = np.concatenate([rng.dirichlet(np.ones(r), size=K) for r in (2, 3, 4, 5, 3)], axis=1)
    w = rng.uniform(0.5, 2.0, size=n)
    log_w = np.log(np.array([0.2, 0.3, 0.5]))
    return codes, w, offsets, log_w, np.ascontiguousarray(np.log(table).T)


@pytest.fixture
def threaded(monkeypatch):
    monkeypatch.setattr(_codes, "PARALLEL_ROWS", 400)


def test_threaded_categorical_step_equals_the_serial_kernel(monkeypatch):
    codes, w, offsets, log_w, log_t = _categorical_problem()
    serial = _codes.categorical_em_step(codes, w, offsets, log_w, log_t, 1.5, 2.0)
    monkeypatch.setattr(_codes, "PARALLEL_ROWS", 400)
    monkeypatch.setattr(_codes.numba, "get_num_threads", lambda: 4)  # 4 blocks on any machine
    assert _codes._parallel_parts(len(codes)) == 4
    threaded = _codes.categorical_em_step(codes, w, offsets, log_w, log_t, 1.5, 2.0)
    assert threaded[0] == pytest.approx(serial[0], rel=1e-13)
    np.testing.assert_allclose(threaded[1], serial[1], rtol=1e-12)
    np.testing.assert_allclose(threaded[2], serial[2], rtol=1e-12, atol=1e-13)


def test_threaded_bernoulli_step_equals_the_serial_kernel(monkeypatch):
    rng = np.random.default_rng(1)
    codes = (rng.uniform(size=(2500, 7)) < 0.4).astype(np.int8)
    codes[rng.uniform(size=codes.shape) < 0.05] = -1
    w = rng.uniform(0.5, 2, size=len(codes))
    weights, means = np.array([0.3, 0.7]), rng.uniform(0.1, 0.9, size=(2, 7))
    args = (codes, w, weights, means, 1.0, 1.0, 1.0, 1e-10, True)
    serial = _codes.bernoulli_em_step(*args)
    monkeypatch.setattr(_codes, "PARALLEL_ROWS", 400)
    monkeypatch.setattr(_codes.numba, "get_num_threads", lambda: 3)
    threaded = _codes.bernoulli_em_step(*args)
    assert threaded[0] == pytest.approx(serial[0], rel=1e-13)
    np.testing.assert_allclose(threaded[1], serial[1], rtol=1e-12)
    np.testing.assert_allclose(threaded[2], serial[2], rtol=1e-12)


def test_fits_are_the_same_with_the_threaded_kernels(threaded):
    rng = np.random.default_rng(2)
    X = rng.integers(0, 3, size=(3000, 6)).astype(float)
    kw = dict(n_init=2, random_state=0, tol=0.0, max_iter=30, accelerate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = CategoricalMixture(3, **kw).fit(X)
        Xb = (X > 0).astype(float)
        b = BernoulliMixture(3, split_merge=False, **kw).fit(Xb)
    _codes.PARALLEL_ROWS = 10**9  # the fixture restores it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a0 = CategoricalMixture(3, **kw).fit(X)
        b0 = BernoulliMixture(3, split_merge=False, **kw).fit(Xb)
    np.testing.assert_allclose(a.history_, a0.history_, rtol=1e-11)
    np.testing.assert_allclose(b.history_, b0.history_, rtol=1e-11)


def test_threaded_kernel_from_python_threads(threaded):
    codes, w, offsets, log_w, log_t = _categorical_problem()
    ref = _codes.categorical_em_step(codes, w, offsets, log_w, log_t)[0]
    out = []

    def work():
        out.append(_codes.categorical_em_step(codes, w, offsets, log_w, log_t)[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(out) == 4 and all(v == pytest.approx(ref, rel=1e-13) for v in out)


def _child(queue, codes, w, offsets, log_w, log_t):
    _codes.PARALLEL_ROWS = 400
    queue.put(_codes.categorical_em_step(codes, w, offsets, log_w, log_t)[0])


def test_threaded_kernel_in_a_forked_child(threaded):
    codes, w, offsets, log_w, log_t = _categorical_problem()
    parent = _codes.categorical_em_step(codes, w, offsets, log_w, log_t)[0]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue, codes, w, offsets, log_w, log_t))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(parent, rel=1e-12)
