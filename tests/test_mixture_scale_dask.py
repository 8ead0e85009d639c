"""BernoulliMixture on a dask.array, against a real LocalCluster with 2 worker processes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from conftest import local_client  # noqa: E402

from emnet.mixture import BernoulliMixture, select_n_components  # noqa: E402
from emnet.mixture.backends.dask_backend import dask_stats, is_dask_array, prepare_dask_array  # noqa: E402
from emnet.mixture.kernels.bernoulli_math import chunk_stats  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with local_client(processes=True) as c:  # worker processes: the real cluster's case
        yield c


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    k, d, n = 3, 24, 3000
    means = rng.beta(0.5, 0.5, (k, d))
    z = rng.integers(k, size=n)
    X = (rng.random((n, d)) < means[z]).astype(np.uint8)
    return X, rng.uniform(0.2, 0.8, (k, d)), np.full(k, 1 / k)


def test_runs_on_two_worker_processes(client):
    info = client.scheduler_info()
    assert len(info["workers"]) == 2
    pids = set(client.run(lambda: __import__("os").getpid()).values())
    assert len(pids) == 2 and __import__("os").getpid() not in pids


def test_dask_fit_equals_in_memory_fit(client, data):
    X, m0, w0 = data
    kw = dict(n_components=3, means_init=m0, weights_init=w0, max_iter=60, tol=1e-10)
    Xd = da.from_array(X, chunks=(512, 8))  # column chunks are merged to whole rows
    assert is_dask_array(Xd) and not is_dask_array(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = BernoulliMixture(**kw).fit(X)
        remote = BernoulliMixture(**kw).fit(Xd)
    assert remote.n_iter_ == local.n_iter_
    np.testing.assert_allclose(remote.means_, local.means_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(remote.weights_, local.weights_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(remote.history_, local.history_, rtol=1e-8)
    assert remote.n_features_in_ == X.shape[1]
    np.testing.assert_allclose(remote.score_samples(X), local.score_samples(X), rtol=1e-8)


def test_stats_reduce_on_workers_and_match(client, data):
    X, m0, w0 = data
    Xd, info = prepare_dask_array(da.from_array(X, chunks=(400, 24)))
    assert (info.n_samples, info.n_features, info.has_nan) == (3000, 24, False)
    stats = dask_stats(Xd)(w0, m0)
    ref = chunk_stats(X, w0, m0)
    assert stats.n == ref.n
    np.testing.assert_allclose(stats.resp_x, ref.resp_x, rtol=1e-10)
    assert stats.loglik == pytest.approx(ref.loglik, rel=1e-12)


def test_dask_fit_with_missing_values_and_default_init(client, data):
    X, _, _ = data
    Xf = X.astype(np.float64)
    Xf[np.random.default_rng(1).random(Xf.shape) < 0.05] = np.nan
    Xf[np.isnan(Xf).all(axis=1), 0] = 1.0
    model = BernoulliMixture(3, random_state=0).fit(da.from_array(Xf, chunks=(700, 24)))
    assert np.all(np.isfinite(model.means_)) and model.converged_
    assert np.all(np.diff(model.history_) >= -1e-9 * abs(model.history_[-1]))


def test_dask_errors_name_the_offending_entry(client, data):
    X, _, _ = data
    bad = X.astype(np.float64)
    bad[2100, 5] = 3.0
    with pytest.raises(ValueError, match="row 2100, column 5"):
        BernoulliMixture(3).fit(da.from_array(bad, chunks=(500, 24)))
    empty = X.astype(np.float64)
    empty[1234] = np.nan
    with pytest.raises(ValueError, match="row 1234"):
        BernoulliMixture(3).fit(da.from_array(empty, chunks=(500, 24)))
    with pytest.raises(ValueError, match="n_components"):
        BernoulliMixture(5).fit(da.from_array(X[:4], chunks=(2, 24)))


def test_model_selection_runs_fits_on_the_cluster(client, data):
    X, _, _ = data
    res = select_n_components(X[:800], [2, 3, 4], n_init=2, client=client, random_state=0)
    assert res.best_k == 3
    assert len(res.table()) == 3


def test_predict_and_score_on_a_dask_array_stay_lazy(client, data):
    X, m0, w0 = data
    model = BernoulliMixture(3, random_state=0).fit(X)
    Xd = da.from_array(X, chunks=(1000, 24))
    labels = model.predict(Xd)
    proba = model.predict_proba(Xd)
    scores = model.score_samples(Xd)
    assert all(is_dask_array(a) for a in (labels, proba, scores))
    np.testing.assert_array_equal(labels.compute(), model.predict(X))
    np.testing.assert_allclose(proba.compute(), model.predict_proba(X), rtol=1e-12)
    assert model.score(Xd) == pytest.approx(model.score(X), rel=1e-12)
    assert model.bic(Xd) == pytest.approx(model.bic(X), rel=1e-12)
    with pytest.raises(ValueError, match="features"):
        model.predict(da.from_array(X[:, :10], chunks=(1000, 10)))
