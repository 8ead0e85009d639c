"""``sample_weight`` on Dask input: LatentClassModel, CategoricalMixture and
BernoulliMixture fitted on a LocalCluster with weights (a numpy array or a dask array, rechunked to X's rows) equal
the weighted in-memory fits; integer weights equal repeated rows; bad weights are refused
naming ``sample_weight``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import (
    MIXED,
    planted_binary,
)
from conftest import (
    assert_same_categorical as _cat_same,
)
from conftest import (
    assert_same_latent as _same,
)
from conftest import (
    plain_em_categorical as _cat_kw,
)
from conftest import (
    plain_em_latent as _kw,
)
from conftest import (
    planted_answers as cat_planted,
)
from conftest import (
    planted_mixed as planted,
)

from emnet.mixture import BernoulliMixture, CategoricalMixture, LatentClassModel
from emnet.mixture.backends import dask_backend, family_dask

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


TOL = 1e-10


# -- data and comparisons (as tests/test_latent_backends.py and tests/test_categorical_backends.py) --
def _weights(n: int, seed: int = 0, zeros: bool = True) -> np.ndarray:
    w = np.random.default_rng(seed).uniform(0.2, 3.0, size=n)
    if zeros:
        w[::17] = 0.0
    return w


def _fit(cls: type, kw: dict, X: object, w: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**kw).fit(X, sample_weight=w)


def _latent_both(X: np.ndarray, Xd: object, w: np.ndarray, wd: object = None, **kw: object):
    local = _fit(LatentClassModel, _kw(**kw), X, w)
    remote = _fit(LatentClassModel, _kw(**kw), Xd, w if wd is None else wd)
    return local, remote


# -- LatentClassModel ------------------------------------------------------------------------
@pytest.mark.parametrize("covariance", ["VVI", "VVV"])
@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy-w", "dask-w"])
def test_weighted_gaussian_equals_in_memory(client, covariance, as_dask):
    X, _ = planted()
    G = X[:, :3]
    w = _weights(len(G))
    wd = da.from_array(w, chunks=77) if as_dask else None  # rechunked to X's rows
    local, remote = _latent_both(G, da.from_array(G, chunks=(130, 2)), w, wd,
                                 covariance=covariance)  # fmt: skip
    _same(local, remote)
    assert np.isnan(G).any()


@pytest.mark.parametrize(
    "measurement, cols",
    [("categorical", [5, 6]), (MIXED, slice(None))],
    ids=["categorical", "mixed"],
)
def test_weighted_types_with_missing_equal_in_memory(client, measurement, cols):
    X, _ = planted(seed=1)
    A = X[:, cols]
    w = _weights(len(A), seed=1)
    local, remote = _latent_both(A, da.from_array(A, chunks=(128, 7)), w,
                                 da.from_array(w, chunks=200), measurement=measurement)  # fmt: skip
    _same(local, remote)
    assert remote.measurement_ == local.measurement_


def test_weighted_setup_constants_equal_in_memory(client):
    X, _ = planted(seed=4)
    w = _weights(len(X), seed=4)
    local, remote = _latent_both(X, da.from_array(X, chunks=(97, 7)), w, measurement=MIXED,
                                 max_iter=1)  # fmt: skip
    unweighted = _fit(LatentClassModel, _kw(measurement=MIXED, max_iter=1), X, None)
    for (a, _), (b, _), (c, _) in zip(local._blocks, remote._blocks, unweighted._blocks,
                                      strict=True):  # fmt: skip
        for key, value in a.state_arrays().items():
            np.testing.assert_allclose(b.state_arrays()[key], value, rtol=1e-13)
            if a.name == "gaussian":  # the column moments are weighted
                assert not np.allclose(c.state_arrays()[key], value)


def test_weighted_dataframe_equals_in_memory(client):
    X, _ = planted(seed=2)
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])])
    w = _weights(len(X), seed=2)
    local, remote = _latent_both(frame, dd.from_pandas(frame, npartitions=4), w,
                                 measurement=MIXED)  # fmt: skip
    _same(local, remote)


def test_weighted_large_sample_draws_in_proportion(client, monkeypatch):
    """More rows than INIT_SAMPLE_ROWS: the start sample is drawn ∝ the weights (a row
    of weight 0 is never drawn) and the fit reaches the in-memory maximum."""
    monkeypatch.setattr(family_dask, "INIT_SAMPLE_ROWS", 200)
    X, _ = planted(seed=6, missing=0)
    w = _weights(len(X), seed=6)
    X[w == 0, 0] = 1e6  # marks the rows that must not be drawn
    parts = list(da.from_array(X, chunks=(128, 7)).to_delayed().ravel())
    rows = [128] * 4 + [len(X) - 512]
    weights = family_dask.check_weights_parts(w, rows)
    sample, sample_w = family_dask._sample(parts, rows, 0, weights)
    assert sample.shape == (200, X.shape[1]) and sample_w is None
    assert (sample[:, 0] < 1e6).all()
    G = planted(seed=6, missing=0)[0][:, :3]
    local, remote = _latent_both(G, da.from_array(G, chunks=(128, 3)), w, max_iter=500,
                                 tol=1e-10)  # fmt: skip
    assert remote.lower_bound_ == pytest.approx(local.lower_bound_, abs=1e-6)


def test_integer_weights_equal_repeated_rows(client):
    X, _ = planted(seed=7)
    w = np.random.default_rng(7).integers(0, 4, size=len(X)).astype(float)
    w[0] = 2.0
    Xd = da.from_array(X, chunks=(128, 7))
    weighted = _fit(LatentClassModel, _kw(measurement=MIXED, init_params="random"), Xd, w)
    R = np.repeat(X, w.astype(int), axis=0)
    repeated = _fit(LatentClassModel, _kw(measurement=MIXED, init_params="random"),
                    da.from_array(R, chunks=(128, 7)), None)  # fmt: skip
    # the same maximum (the starts differ: the rows are not the same)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, abs=1e-6)
    order = np.argsort(weighted.weights_)
    other = np.argsort(repeated.weights_)
    np.testing.assert_allclose(weighted.weights_[order], repeated.weights_[other], atol=1e-5)


@pytest.mark.parametrize("cls", [LatentClassModel, CategoricalMixture])
def test_bad_weights_name_sample_weight(client, cls):
    X, _ = cat_planted(n=300, seed=8)
    Xd = da.from_array(X, chunks=(100, 8))
    kw = _cat_kw() if cls is CategoricalMixture else _kw(measurement="categorical")
    for w, what in _bad_weights(len(X)):
        with pytest.raises(ValueError, match=f"sample_weight.*{what}"):
            _fit(cls, kw, Xd, w)


def _bad_weights(n: int) -> list[tuple[object, str]]:
    """(weights for n rows, what the error must say): numpy and dask, each wrong once."""
    negative = np.ones(n)
    negative[150] = -1.0
    nan = np.ones(n)
    nan[220] = np.nan
    return [
        (negative, "row 150"),
        (nan, "row 220"),
        (np.ones(n - 1), "expected shape"),
        (np.ones((n, 2)), "expected shape"),
        (np.zeros(n), "all weights are zero"),
        (da.from_array(negative, chunks=70), "row 150"),
        (da.from_array(nan, chunks=70), "row 220"),
        (da.from_array(np.ones(n + 3), chunks=70), "expected shape"),
        (da.from_array(np.zeros(n), chunks=70), "all weights are zero"),
        (da.ones((n, 2), chunks=70), "1-D"),
    ]


# -- CategoricalMixture ----------------------------------------------------------------------
@pytest.mark.parametrize("init_params", ["random", "random_from_data"])
@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy-w", "dask-w"])
def test_categorical_mixture_weighted_equals_in_memory(client, init_params, as_dask):
    X, _ = cat_planted()
    w = _weights(len(X), seed=9)
    wd = da.from_array(w, chunks=450) if as_dask else w
    local = _fit(CategoricalMixture, _cat_kw(init_params=init_params), X, w)
    remote = _fit(CategoricalMixture, _cat_kw(init_params=init_params),
                  da.from_array(X, chunks=(300, 3)), wd)  # fmt: skip
    _cat_same(local, remote)
    unweighted = _fit(CategoricalMixture, _cat_kw(init_params=init_params), X, None)
    assert abs(unweighted.lower_bound_ - local.lower_bound_) > 1e-6


def test_categorical_mixture_weighted_dataframe(client):
    X, _ = cat_planted(seed=2)
    frame = pd.DataFrame(
        {f"q{j}": [None if np.isnan(v) else f"ans{int(v)}" for v in X[:, j]] for j in range(8)}
    )
    w = _weights(len(X), seed=10)
    local = _fit(CategoricalMixture, _cat_kw(), frame, w)
    remote = _fit(CategoricalMixture, _cat_kw(), dd.from_pandas(frame, npartitions=5),
                  da.from_array(w, chunks=333))  # fmt: skip
    _cat_same(local, remote)


def test_categorical_mixture_integer_weights_equal_repeated_rows(client):
    X, _ = cat_planted(seed=11)
    w = np.random.default_rng(11).integers(0, 4, size=len(X)).astype(float)
    kw = _cat_kw(init_params="random")
    weighted = _fit(CategoricalMixture, kw, da.from_array(X, chunks=(300, 8)), w)
    R = np.repeat(X, w.astype(int), axis=0)
    repeated = _fit(CategoricalMixture, kw, da.from_array(R, chunks=(300, 8)), None)
    # random starts draw no rows: the same start, the same iterations
    _cat_same(weighted, repeated, tol=1e-9)


# -- BernoulliMixture ------------------------------------------------------------------------
def _bern_kw(**extra: object) -> dict:
    # conftest's plain-EM settings (compared iteration by iteration, not at convergence)
    return _cat_kw(**{"tol": 1e-10, **extra})


def _bern_same(a: BernoulliMixture, b: BernoulliMixture, tol: float = TOL) -> None:
    assert a.n_iter_ == b.n_iter_
    assert abs(a.lower_bound_ - b.lower_bound_) <= tol
    np.testing.assert_allclose(b.history_, a.history_, rtol=0, atol=tol)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=0, atol=tol)
    np.testing.assert_allclose(b.means_, a.means_, rtol=0, atol=tol)


@pytest.mark.parametrize("start", ["kmeans++", "given"])
@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy-w", "dask-w"])
def test_bernoulli_weighted_equals_in_memory(client, start, as_dask):
    """The weighted Dask fit is the weighted in-memory fit (with missing values); the
    start is the in-memory one (all rows with their weights); bic and aic with the
    weights on the Dask rows are the in-memory ones."""
    X, _, w0, m0 = planted_binary(900, 3, 12, seed=12, nan_frac=0.05)
    w = _weights(len(X), seed=12)
    wd = da.from_array(w, chunks=77) if as_dask else w  # rechunked to X's rows
    kw = _bern_kw(**({"means_init": m0, "weights_init": w0} if start == "given" else {}))
    Xd = da.from_array(X, chunks=(130, 5))
    local = _fit(BernoulliMixture, kw, X, w)
    remote = _fit(BernoulliMixture, kw, Xd, wd)
    _bern_same(local, remote)
    unweighted = _fit(BernoulliMixture, kw, X, None)
    assert abs(unweighted.lower_bound_ - local.lower_bound_) > 1e-6
    for name in ("bic", "aic"):
        expected = getattr(local, name)(X, sample_weight=w)
        got = getattr(remote, name)(Xd, sample_weight=wd)
        assert got == pytest.approx(expected, rel=1e-12)


def test_bernoulli_weighted_uint8_equals_in_memory(client):
    """Complete 0/1 uint8 rows (the bit-packed kernels on every chunk), weights of a dask
    array, plain EM from k-means++ on all rows with their weights: the log-likelihood and
    parameters agree to 1e-10."""
    X, _, _, _ = planted_binary(300, 5, 36, seed=13)
    X = X.astype(np.uint8)
    w = _weights(len(X), seed=13)
    kw = _bern_kw(n_components=5)
    local = _fit(BernoulliMixture, kw, X, w)
    remote = _fit(BernoulliMixture, kw, da.from_array(X, chunks=(256, 40)),
                  da.from_array(w, chunks=300))  # fmt: skip
    _bern_same(local, remote)
    assert local.n_iter_ > 5


def test_bernoulli_integer_weights_equal_repeated_rows(client):
    X, _, w0, m0 = planted_binary(600, 3, 10, seed=14, nan_frac=0.05)
    w = np.random.default_rng(14).integers(0, 4, size=len(X)).astype(float)
    kw = _bern_kw(means_init=m0, weights_init=w0)
    weighted = _fit(BernoulliMixture, kw, da.from_array(X, chunks=(128, 10)),
                    da.from_array(w, chunks=100))  # fmt: skip
    R = np.repeat(X, w.astype(int), axis=0)
    repeated = _fit(BernoulliMixture, kw, da.from_array(R, chunks=(128, 10)), None)
    # the same start, the same iterations
    _bern_same(weighted, repeated, tol=1e-9)


def test_bernoulli_large_sample_draws_in_proportion(client, monkeypatch):
    """More rows than INIT_SAMPLE_ROWS: the start sample is drawn ∝ the weights (no row
    of weight 0) and the fit reaches the weighted in-memory maximum."""
    monkeypatch.setattr(family_dask, "INIT_SAMPLE_ROWS", 200)
    X, _, _, _ = planted_binary(1200, 2, 10, seed=15)
    w = _weights(len(X), seed=15)
    X[w == 0, -1] = np.nan  # marks the rows that must not be drawn
    Xd = da.from_array(X, chunks=(250, 10))
    model = BernoulliMixture(2, random_state=0)
    model._check_parameters()
    fit_data = dask_backend.prepare_fit(model, Xd, model._backend(), da.from_array(w, chunks=99),
                                        reset=True)  # fmt: skip
    assert fit_data.data.shape == (200, X.shape[1]) and fit_data.sample_weight is None
    assert not np.isnan(fit_data.data[:, -1]).any()
    kw = _bern_kw(n_components=2, accelerate=True, max_iter=500)
    local = _fit(BernoulliMixture, kw, X, w)
    remote = _fit(BernoulliMixture, kw, Xd, w)
    assert remote.lower_bound_ == pytest.approx(local.lower_bound_, abs=1e-6)


def test_bernoulli_bad_weights_name_sample_weight(client):
    X, _, _, _ = planted_binary(300, 2, 6, seed=16)
    Xd = da.from_array(X, chunks=(100, 6))
    for w, what in _bad_weights(len(X)):
        with pytest.raises(ValueError, match=f"sample_weight.*{what}"):
            _fit(BernoulliMixture, _bern_kw(n_components=2), Xd, w)
