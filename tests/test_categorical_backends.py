"""CategoricalMixture on Dask (arrays and DataFrames, a LocalCluster) and by stepwise EM
(``partial_fit``), against the in-memory fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_categorical as _same
from conftest import plain_em_categorical as _kw
from conftest import planted_answers as planted
from sklearn.metrics import adjusted_rand_score

from emnet.mixture import CategoricalMixture
from emnet.mixture.core.encoding import distinct_values, learn_encoding, merge_distinct
from emnet.mixture.kernels.codes import categorical_em_step, compress_rows

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

TOL = 1e-10


@pytest.mark.parametrize("init_params", ["random", "random_from_data"])
def test_dask_fit_equals_in_memory(client, init_params):
    X, _ = planted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = CategoricalMixture(**_kw(init_params=init_params)).fit(X)
        remote = CategoricalMixture(**_kw(init_params=init_params)).fit(
            da.from_array(X, chunks=(300, 3))
        )
    _same(local, remote)
    assert remote.n_features_in_ == X.shape[1]


def test_dask_fit_with_squarem_agrees(client):
    X, _ = planted(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = CategoricalMixture(**_kw(accelerate=True)).fit(X)
        remote = CategoricalMixture(**_kw(accelerate=True)).fit(da.from_array(X, chunks=500))
    assert abs(local.lower_bound_ - remote.lower_bound_) < TOL
    np.testing.assert_allclose(remote.weights_, local.weights_, atol=1e-6)


def test_dask_dataframe_with_text_answers(client):
    X, _ = planted(seed=2)
    frame = pd.DataFrame(
        {f"q{j}": [None if np.isnan(v) else f"ans{int(v)}" for v in X[:, j]] for j in range(8)}
    )
    ddf = dd.from_pandas(frame, npartitions=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = CategoricalMixture(**_kw()).fit(frame)
        remote = CategoricalMixture(**_kw()).fit(ddf)
    _same(local, remote)
    assert list(remote.feature_names_in_) == list(frame.columns)
    lr = remote.predict_proba(ddf)
    np.testing.assert_allclose(np.asarray(lr), local.predict_proba(frame), atol=1e-12)
    assert remote.score(ddf) == pytest.approx(local.score(frame), abs=1e-12)


def test_dask_predictions_are_lazy(client):
    X, _ = planted(seed=3)
    Xd = da.from_array(X, chunks=(400, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CategoricalMixture(**_kw()).fit(Xd)
    proba = model.predict_proba(Xd)
    assert isinstance(proba, da.Array) and proba.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(proba.compute(), model.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(model.predict(Xd)), model.predict(X))
    with pytest.raises(ValueError, match="sample_weight"):
        CategoricalMixture(**_kw()).fit(Xd, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="features"):
        model.predict_proba(da.from_array(X[:, :5], chunks=(400, 5)))


def test_encoding_from_distinct_values_equals_learned():
    X, _ = planted(seed=4)
    obj = X.astype(object)
    obj[:, 2] = np.where(np.isnan(X[:, 2]), None, np.where(X[:, 2] > 1, "yes", "no"))
    parts = [obj[i : i + 333] for i in range(0, len(obj), 333)]
    merged = parts[0]
    table = distinct_values(merged)
    for p in parts[1:]:
        table = merge_distinct(table, distinct_values(p))
    want = learn_encoding(obj).categories
    got = learn_encoding(table).categories
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_one_batch_with_step_one_is_one_em_step():
    X, _ = planted(seed=5)
    model = CategoricalMixture(**_kw(max_iter=3)).fit(X)
    p0 = model._get_fitted()
    codes = model._coded(X, reset=False)
    patterns, totals, _ = compress_rows(codes, None)
    _, log_w, log_t = categorical_em_step(
        patterns, totals, model._item_offsets, p0.log_weights, p0.log_table
    )
    model.partial_fit(X)
    np.testing.assert_allclose(np.log(model.weights_), log_w, atol=1e-12)
    np.testing.assert_allclose(model.log_table_, log_t, atol=1e-12)


def test_partial_fit_stream_recovers_the_planted_classes():
    X, z = planted(n=40_000, seed=6, missing=0.02)
    batches = np.array_split(np.arange(len(X)), 40)
    model = CategoricalMixture(**_kw(n_init=5, max_iter=500)).fit(X[batches[0]])
    for b in batches[1:]:
        model.partial_fit(X[b])
    assert model.n_iter_ >= 39 and np.isfinite(model.history_).all()
    ref = CategoricalMixture(**_kw(n_init=5, max_iter=500)).fit(X)
    assert adjusted_rand_score(z, model.predict(X)) > 0.9 * adjusted_rand_score(z, ref.predict(X))
    order = [int(np.argmin(np.abs(ref.weights_ - w))) for w in model.weights_]
    assert np.abs(model.weights_ - ref.weights_[order]).max() < 0.02


def test_partial_fit_from_scratch_learns_answers_and_rejects_new_ones():
    X, _ = planted(seed=7, missing=0)
    model = CategoricalMixture(n_components=2, random_state=0)
    model.partial_fit(X[:500])
    assert model.n_iter_ == 1 and len(model.categories_) == 8
    model.partial_fit(X[500:1000])
    assert model.n_iter_ == 2
    bad = X[:10].copy()
    bad[0, 0] = 9
    with pytest.raises(ValueError, match="not seen in fit"):
        model.partial_fit(bad)
