"""LatentClassModel on every backend, through the measurement contract only: Dask
(a LocalCluster, arrays and DataFrames), torch (CPU; CUDA when present) and stepwise EM
(``partial_fit``), each against the in-memory numpy fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import MIXED
from conftest import assert_same_latent as _same
from conftest import plain_em_latent as _kw
from conftest import planted_mixed as planted
from sklearn.metrics import adjusted_rand_score

from emnet.mixture import LatentClassModel
from emnet.mixture.backends.family_common import chunk_stats
from emnet.mixture.measurement import make_measurement

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

TOL = 1e-10


def _fit_both(X: np.ndarray, Xd: object, **kw: object) -> tuple[LatentClassModel, LatentClassModel]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = LatentClassModel(**_kw(**kw)).fit(X)
        remote = LatentClassModel(**_kw(**kw)).fit(Xd)
    return local, remote


# -- Dask ------------------------------------------------------------------------------------
@pytest.mark.parametrize("covariance", ["EEI", "VVI", "EEE", "VVV"])
def test_dask_gaussian_with_missing_equals_in_memory(client, covariance):
    X, _ = planted()
    G = X[:, :3]
    local, remote = _fit_both(G, da.from_array(G, chunks=(130, 2)), covariance=covariance)
    _same(local, remote)


@pytest.mark.parametrize(
    "measurement, cols",
    [("categorical", [5, 6]), ("poisson", [3, 4]), (MIXED, slice(None))],
    ids=["categorical", "poisson", "mixed"],
)
def test_dask_types_with_missing_equal_in_memory(client, measurement, cols):
    X, _ = planted(seed=1)
    A = X[:, cols]
    local, remote = _fit_both(A, da.from_array(A, chunks=(128, 7)), measurement=measurement)
    _same(local, remote)
    assert remote.measurement_ == local.measurement_


def test_dask_with_squarem_agrees_to_the_likelihood(client):
    X, _ = planted(seed=15)
    local, remote = _fit_both(X, da.from_array(X, chunks=(128, 7)), measurement=MIXED,
                              accelerate=True)  # fmt: skip
    assert abs(local.lower_bound_ - remote.lower_bound_) < TOL
    np.testing.assert_allclose(remote.means_, local.means_, atol=1e-5)


def test_dask_dataframe_text_answers_and_inferred_types(client):
    X, _ = planted(seed=2)
    frame = pd.DataFrame(X[:, :5], columns=["g1", "g2", "g3", "p1", "p2"])
    frame[["p1", "p2"]] = frame[["p1", "p2"]].astype("Int64")  # counts: an integer dtype
    frame["c1"] = pd.Series(np.where(np.isnan(X[:, 5]), None, X[:, 5]).astype(object)).map(
        lambda v: None if v is None else f"a{int(v)}"
    )
    frame["c2"] = X[:, 6]
    ddf = dd.from_pandas(frame, npartitions=4)
    local, remote = _fit_both(frame, ddf, measurement=None)
    assert remote.measurement_ == local.measurement_
    assert set(local.measurement_) == {"gaussian", "poisson", "categorical"}
    _same(local, remote)
    assert list(remote.feature_names_in_) == list(frame.columns)
    lr = remote.predict_proba(ddf)
    assert not isinstance(lr, np.ndarray)  # lazy
    np.testing.assert_allclose(np.asarray(lr), local.predict_proba(frame), atol=1e-9)


def test_dask_predictions_are_lazy_and_equal(client):
    X, _ = planted(seed=3)
    Xd = da.from_array(X, chunks=(100, 7))
    local, remote = _fit_both(X, Xd, measurement=MIXED)
    proba = remote.predict_proba(Xd)
    assert isinstance(proba, da.Array) and proba.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(proba.compute(), local.predict_proba(X), atol=1e-9)
    np.testing.assert_allclose(
        remote.score_samples(Xd).compute(), local.score_samples(X), rtol=1e-12
    )
    assert remote.score(Xd) == pytest.approx(local.score(X), abs=1e-10)
    np.testing.assert_array_equal(np.asarray(remote.predict(Xd)), local.predict(X))


def test_dask_setup_constants_by_reduction_equal_setup(client):
    X, _ = planted(seed=4)
    local, remote = _fit_both(X, da.from_array(X, chunks=(97, 7)), measurement=MIXED, max_iter=1)
    for (a, _), (b, _) in zip(local._blocks, remote._blocks, strict=True):
        for key, value in a.state_arrays().items():
            np.testing.assert_allclose(b.state_arrays()[key], value, rtol=1e-13)
        assert a.state_json() == b.state_json()


def test_dask_errors_name_the_argument(client):
    X, _ = planted(seed=5, missing=0)
    Xd = da.from_array(X, chunks=(100, 7))
    with pytest.raises(ValueError, match="sample_weight"):
        LatentClassModel(**_kw(measurement=MIXED)).fit(Xd, sample_weight=np.ones(len(X) - 1))
    bad = X.copy()
    bad[5, 3] = 1.5
    with pytest.raises(ValueError, match="Poisson column"):
        LatentClassModel(**_kw(measurement=MIXED)).fit(da.from_array(bad, chunks=(100, 7)))
    empty = X.copy()
    empty[130] = np.nan
    with pytest.raises(ValueError, match="no observed entry"):
        LatentClassModel(**_kw(measurement=MIXED)).fit(da.from_array(empty, chunks=(100, 7)))


@pytest.mark.parametrize("column", [1, 3, 6])  # gaussian, poisson, categorical
def test_a_column_with_no_observed_value_is_named(client, column):
    """An all-missing column is an error naming it, in memory and on Dask (on Dask it
    used to run every start to max_iter with a NaN objective)."""
    X, _ = planted(seed=5, missing=0)
    X[:, column] = np.nan
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    spec = {kind: [f"x{j}" for j in cols] for kind, cols in MIXED.items()}
    for data in (frame, dd.from_pandas(frame, npartitions=3), X, da.from_array(X, chunks=(100, 7))):
        named = f"x{column}" if hasattr(data, "columns") else column
        kind = spec if hasattr(data, "columns") else MIXED
        with pytest.raises(ValueError, match=f"column {named!r} has no observed value"):
            LatentClassModel(**_kw(measurement=kind, max_iter=5)).fit(data)


def test_a_constant_continuous_column_is_named(client):
    X, _ = planted(seed=5, missing=0.05)
    X[:, 2] = np.where(np.isnan(X[:, 2]), np.nan, 4.25)
    for data in (X, da.from_array(X, chunks=(100, 7))):
        with pytest.raises(ValueError, match="column '2': every observed value is 4.25"):
            LatentClassModel(**_kw(measurement=MIXED, max_iter=5)).fit(data)


# -- torch -----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


@pytest.mark.parametrize("covariance", ["EEI", "VVI", "EEE", "VVV"])
@pytest.mark.parametrize("missing", [0.0, 0.05])
def test_torch_cpu_equals_numpy(covariance, missing):
    X, _ = planted(seed=6, missing=missing)
    kw = dict(measurement=MIXED, covariance=covariance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = LatentClassModel(**_kw(**kw)).fit(X)
        b = LatentClassModel(**_kw(**kw), backend="torch", device="cpu").fit(X)
    _same(a, b)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-10)


@pytest.mark.parametrize(
    "kind, options, cols",
    [
        ("gaussian", {"covariance": "VVI"}, [0, 1, 2]),
        ("gaussian", {"covariance": "VVV"}, [0, 1, 2]),
        ("poisson", {}, [3, 4]),
        ("categorical", {}, [5, 6]),
        ("binary", {}, None),
    ],
)
def test_exponential_family_form_matches_the_block(kind, options, cols):
    X, _ = planted(seed=7, missing=0.0 if kind == "gaussian" and cols and options.get(
        "covariance") == "VVV" else 0.05)  # fmt: skip
    data = (X[:, 5:7] % 2) if cols is None else X[:, cols]
    m = make_measurement(kind, **options)
    m.setup(data, None)
    chunk = m.prepare(data)
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(3), size=len(data))
    params = m.initialize(chunk, resp, None)
    phi, base = m.features(chunk)
    W, c = m.natural_params(params)
    ll = phi @ W + c + (0.0 if base is None else base[:, None])
    np.testing.assert_allclose(ll, m.log_likelihood(params, chunk), rtol=1e-10, atol=1e-10)
    w = rng.uniform(0.5, 2.0, len(data))
    r = resp * w[:, None]
    got = m.stats_from_moments(params, r.T @ phi, r.sum(axis=0))
    want = m.sufficient_stats(params, chunk, resp, w)
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)


def test_torch_full_gaussian_with_missing_runs_that_block_on_numpy():
    X, _ = planted(seed=8)
    m = make_measurement("gaussian", covariance="VVV")
    m.setup(X[:, :3], None)
    assert m.features(m.prepare(X[:, :3])) is None  # documented fallback


def test_torch_weighted_and_errors():
    X, _ = planted(seed=9)
    w = np.random.default_rng(0).uniform(0.5, 2, len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = LatentClassModel(**_kw(measurement=MIXED)).fit(X, sample_weight=w)
        b = LatentClassModel(**_kw(measurement=MIXED), backend="torch").fit(X, sample_weight=w)
    _same(a, b)
    with pytest.raises(ValueError, match="backend"):
        LatentClassModel(backend="jax").fit(X[:, :3])
    with pytest.raises(ValueError, match="dtype"):
        LatentClassModel(**_kw(measurement=MIXED), backend="torch", dtype="int8").fit(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_cuda_equals_numpy():  # pragma: no cover - needs a GPU
    X, _ = planted(seed=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = LatentClassModel(**_kw(measurement=MIXED)).fit(X)
        b = LatentClassModel(**_kw(measurement=MIXED), backend="torch", device="cuda").fit(X)
    _same(a, b, tol=1e-9)


# -- stepwise EM (partial_fit) -----------------------------------------------------------------
def test_partial_fit_one_batch_with_step_one_is_one_em_step():
    X, _ = planted(seed=11)
    model = LatentClassModel(**_kw(measurement=MIXED, max_iter=3)).fit(X)
    p0 = model._params
    fit_data = model._prepare_fit(X, None, reset=False)
    want = model._m_step(fit_data.stats(p0), p0)
    model.partial_fit(X)  # the first batch after fit: η = 1, from the fitted parameters
    np.testing.assert_allclose(model._params.log_weights, want.log_weights, atol=1e-12)
    for (m, _), got, exp in zip(model._blocks, model._params.blocks, want.blocks, strict=True):
        for key, value in m.to_arrays(exp).items():
            np.testing.assert_allclose(m.to_arrays(got)[key], value, atol=1e-12)


def test_partial_fit_stream_recovers_the_planted_classes():
    X, z = planted(n=30_000, seed=12, missing=0.02)
    batches = np.array_split(np.arange(len(X)), 30)
    # the usual start of a stream: a fit on its first batch (one E-step per batch from a
    # poor start can stay in a poor local maximum, as batch EM can)
    model = LatentClassModel(**_kw(measurement=MIXED, covariance="VVV", max_iter=50, n_init=5))
    model.fit(X[batches[0]])
    first = model.means_.copy()
    for batch in batches[1:]:
        model.partial_fit(X[batch])
    assert len(model.history_) == model.n_iter_
    assert adjusted_rand_score(z, model.predict(X)) > 0.95
    order = np.argsort(model.means_[:, 3])  # Poisson rates 1, 4, 9 order the classes
    np.testing.assert_allclose(model.means_[order][:, 3], [1.0, 4.0, 9.0], atol=0.15)
    truth = np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0], [0.0, 3.0, 3.0]])
    assert np.abs(model.means_[order][:, :3] - truth).max() < 0.1
    assert np.abs(model.means_ - first).max() > 0  # the stream moved the estimate
    np.testing.assert_allclose(model.weights_.sum(), 1.0)


def test_partial_fit_on_dask_batches(client):
    X, _ = planted(seed=13, missing=0)
    model = LatentClassModel(**_kw(measurement=MIXED))
    model.partial_fit(da.from_array(X[:300], chunks=(100, 7)))
    model.partial_fit(X[300:])
    assert model.n_iter_ == 2 and np.isfinite(model.history_).all()


def test_chunk_stats_add_up():
    X, _ = planted(seed=14)
    model = LatentClassModel(**_kw(measurement=MIXED, max_iter=2)).fit(X)
    blocks = [m for m, _ in model._blocks]
    whole = chunk_stats(blocks, model._params, model._fit_chunks)
    ref = model._prepare_fit(X, None, reset=False).stats(model._params)
    assert whole.loglik == pytest.approx(ref.loglik, rel=1e-13)
    np.testing.assert_allclose(whole.nk, ref.nk, rtol=1e-13)


def test_dask_dataframe_pandas_categoricals_keep_their_order(client):
    X, _ = planted(seed=16)
    frame = pd.DataFrame(X[:, :3], columns=["g1", "g2", "g3"])
    labels = np.array(["lo", "mid", "hi", "top"])[np.nan_to_num(X[:, 5]).astype(int)]
    frame["c"] = pd.Categorical(labels, categories=["top", "hi", "mid", "lo"])
    spec = {"gaussian": ["g1", "g2", "g3"], "categorical": ["c"]}
    ddf = dd.from_pandas(frame, npartitions=3)
    local, remote = _fit_both(frame, ddf, measurement=spec, max_iter=40)
    assert list(remote.categories_["c"]) == ["top", "hi", "mid", "lo"]
    _same(local, remote)
