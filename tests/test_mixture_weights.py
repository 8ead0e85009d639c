"""sample_weight, pattern compression, SQUAREM and the per-start record, for both estimators;
plus the mixture parts of "no user file is ever lost" (loading, saving, odd input)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import quiet_fit
from hypothesis import given, settings
from hypothesis import strategies as st

from emnet.mixture import BernoulliMixture, CategoricalMixture


def binary(n, d, seed, missing=0.0):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 3, size=n)
    p = rng.uniform(0.1, 0.9, size=(3, d))
    X = (rng.uniform(size=(n, d)) < p[z]).astype(float)
    if missing:
        X[rng.uniform(size=X.shape) < missing] = np.nan
        X[np.isnan(X).all(axis=1), 0] = 1.0
    return X


def start(d, seed=0):
    rng = np.random.default_rng(seed)
    return np.array([0.2, 0.3, 0.5]), rng.uniform(0.2, 0.8, size=(3, d))


# (name, extra estimator parameters, n_features): the pattern path (few features), the
# bit-packed kernels (many features, complete data), matrix products (missing values,
# chunked) and the torch backend
PATHS = [
    ("patterns", {}, 5, 0.0),
    ("patterns-missing", {}, 5, 0.1),
    ("bitpack", {}, 40, 0.0),
    ("products-missing", {}, 40, 0.1),
    ("chunked", {"batch_size": 17}, 8, 0.0),
    ("float32", {"dtype": np.float32}, 8, 0.0),
    ("torch", {"backend": "torch"}, 8, 0.1),
]


@pytest.mark.parametrize(("name", "extra", "d", "missing"), PATHS, ids=[p[0] for p in PATHS])
def test_frequency_weights_equal_repeated_rows(name, extra, d, missing):
    X = binary(60, d, seed=1, missing=missing)
    counts = np.random.default_rng(2).integers(0, 4, size=len(X))
    w0, m0 = start(d)
    kw = dict(weights_init=w0, means_init=m0, tol=0.0, max_iter=25, accelerate=False, **extra)
    weighted = quiet_fit(BernoulliMixture(3, **kw), X, sample_weight=counts)
    repeated = quiet_fit(BernoulliMixture(3, **kw), np.repeat(X, counts, axis=0))
    rtol = 1e-5 if name == "float32" else 1e-10
    np.testing.assert_allclose(weighted.history_, repeated.history_, rtol=rtol)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=rtol, atol=rtol)
    Xr = np.repeat(X, counts, axis=0)
    assert weighted.bic(X, sample_weight=counts) == pytest.approx(repeated.bic(Xr), rel=rtol)
    assert weighted.aic(X, sample_weight=counts) == pytest.approx(repeated.aic(Xr), rel=rtol)
    assert weighted.score(X, sample_weight=counts) == pytest.approx(repeated.score(Xr), rel=rtol)


@pytest.mark.parametrize("accelerate", [False, True])
def test_categorical_frequency_weights_equal_repeated_rows(accelerate):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 4, size=(80, 4)).astype(float)
    X[rng.uniform(size=X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    counts = rng.integers(0, 4, size=len(X))
    counts[:4] = 1  # every answer still occurs among the repeated rows
    kw = dict(random_state=0, tol=0.0, max_iter=30, accelerate=accelerate)
    weighted = quiet_fit(CategoricalMixture(3, **kw), X, sample_weight=counts)
    Xr = np.repeat(X, counts, axis=0)
    repeated = quiet_fit(CategoricalMixture(3, **kw), Xr)
    rtol = 1e-8 if accelerate else 1e-10
    np.testing.assert_allclose(weighted.history_, repeated.history_, rtol=rtol)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, atol=rtol)
    assert weighted.bic(X, sample_weight=counts) == pytest.approx(repeated.bic(Xr), rel=rtol)


def test_zero_weight_rows_are_as_if_removed_and_seeding_follows_in_place_repeats():
    X = binary(50, 6, seed=4)
    w = np.random.default_rng(5).integers(0, 3, size=len(X))
    kw = dict(random_state=7, tol=0.0, max_iter=20, accelerate=False, split_merge=False)
    # default k-means++ seeding draws by cumulative weight: repeating rows in place
    # (np.repeat) draws the same seeds, so even the random start agrees
    a = quiet_fit(BernoulliMixture(3, **kw), X, sample_weight=w)
    b = quiet_fit(BernoulliMixture(3, **kw), np.repeat(X, w, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, atol=1e-10)
    np.testing.assert_allclose(a.history_, b.history_, rtol=1e-10)


def test_pattern_compression_is_invisible():
    X = binary(2000, 6, seed=6, missing=0.05)
    kw = dict(random_state=0, n_init=3, tol=0.0, max_iter=40, accelerate=False)
    compressed = quiet_fit(BernoulliMixture(3, **kw), X)  # few features: distinct rows
    full = quiet_fit(BernoulliMixture(3, batch_size=len(X), **kw), X)  # every row, products
    np.testing.assert_allclose(compressed.history_, full.history_, rtol=1e-10)
    np.testing.assert_allclose(compressed.means_, full.means_, atol=1e-10)
    np.testing.assert_allclose(compressed.init_lower_bounds_, full.init_lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(compressed.predict_proba(X), full.predict_proba(X), atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), d=st.integers(1, 9), n=st.integers(3, 80))
def test_accelerated_history_is_monotone_and_ends_at_least_as_high(seed, d, n):
    X = binary(n, d, seed)
    kw = dict(random_state=seed, n_init=2, tol=1e-12, max_iter=3000, split_merge=False)
    fast = quiet_fit(BernoulliMixture(min(3, n), accelerate=True, **kw), X)
    h = fast.history_
    assert np.all(np.diff(h) >= -1e-12 * np.abs(h[1:]) - 1e-13)
    assert fast.n_em_steps_ >= fast.n_iter_


def test_init_lower_bounds_and_starts_at_best():
    X = binary(300, 5, seed=8)
    model = quiet_fit(BernoulliMixture(3, n_init=6, random_state=0), X)
    assert model.init_lower_bounds_.shape == (6,)
    assert model.lower_bound_ >= model.init_lower_bounds_.max() - 1e-12
    assert 1 <= model.n_starts_at_best(1e-6) <= 6
    assert model.n_starts_at_best(np.inf) == 6


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones(3), r"expected shape \(10,\)"),
        (-np.ones(10), "non-negative"),
        (np.zeros(10), "all weights are zero"),
        (np.full(10, np.nan), "finite"),
        (["a"] * 10, "non-negative numbers"),
    ],
)
@pytest.mark.parametrize("cls", [BernoulliMixture, CategoricalMixture])
def test_bad_sample_weight_names_the_argument(cls, weights, message):
    X = binary(10, 3, seed=9)
    with pytest.raises(ValueError, match=f"sample_weight: .*{message}"):
        cls(2).fit(X, sample_weight=weights)


# -- issue 12: odd input, saving, loading ---------------------------------------------------


def test_none_in_a_list_is_missing_like_nan():
    rows = [[0, 1, None], [1, None, 0], [1, 1, 1], [0, 0, 1]]
    as_nan = [[np.nan if v is None else v for v in r] for r in rows]
    a = BernoulliMixture(2, random_state=0).fit(rows)
    b = BernoulliMixture(2, random_state=0).fit(as_nan)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.score_samples(rows), b.score_samples(as_nan))


def test_dataframe_string_and_categorical_binary_columns():
    frame = pd.DataFrame(
        {
            "num": [0, 1, 1, 0],
            "text": ["0", "1", None, "1"],
            "cat": pd.Categorical([1, 0, 1, 1]),
        }
    )
    numeric = pd.DataFrame({"num": [0, 1, 1, 0], "text": [0, 1, np.nan, 1], "cat": [1, 0, 1, 1]})
    a = BernoulliMixture(1).fit(frame)
    b = BernoulliMixture(1).fit(numeric)
    np.testing.assert_allclose(a.means_, b.means_)
    assert list(a.feature_names_in_) == ["num", "text", "cat"]
    bad = frame.assign(text=["0", "yes", "1", "1"])
    with pytest.raises(ValueError, match=r"column 'text' must hold 0 or 1.*'yes' at row 1"):
        BernoulliMixture(1).fit(bad)


def test_weights_init_string_is_named():
    with pytest.raises(ValueError, match="weights_init: .*string 'uniform'.*init_params"):
        BernoulliMixture(2, weights_init="uniform").fit(np.eye(3))


def test_save_onto_a_directory_or_into_a_missing_folder(tmp_path):
    model = BernoulliMixture(1).fit(np.eye(3))
    with pytest.raises(ValueError, match="is a directory"):
        model.save(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        model.save(tmp_path / "missing" / "m.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def saved(tmp_path):
    model = BernoulliMixture(2, random_state=0).fit(binary(30, 4, seed=10))
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta, arrays = change(meta, arrays)
    with open(path, "wb") as fh:
        np.savez(fh, meta=np.asarray(json.dumps(meta)), **arrays)


def _npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _set(d, key, value):
    d = dict(d)
    d[key] = value
    return d


CORRUPTIONS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "byte-flipped": lambda p: p.write_bytes(
        (lambda b: b[:300] + bytes([b[300] ^ 0xFF]) + b[301:])(bytearray(p.read_bytes()))
    ),
    "empty": lambda p: p.write_bytes(b""),
    "npy": lambda p: p.write_bytes(_npy_bytes(np.zeros(3))),
    "no-meta": lambda p: p.write_bytes(_npz_bytes(x=np.ones(2))),
    "meta-not-object": lambda p: _rewrite(p, lambda m, a: ([1, 2], a)),
    "n_iter-string": lambda p: _rewrite(p, lambda m, a: (_set(m, "n_iter_", "5"), a)),
    "unknown-param": lambda p: _rewrite(
        p, lambda m, a: (_set(m, "params", {**m["params"], "evil": 1}), a)
    ),
    "extra-key": lambda p: _rewrite(p, lambda m, a: (m, {**a, "predict": np.ones(2)})),
    "means-shape": lambda p: _rewrite(p, lambda m, a: (m, {**a, "means_": np.ones((3, 4)) / 2})),
    "means-range": lambda p: _rewrite(p, lambda m, a: (m, {**a, "means_": a["means_"] + 2})),
    "weights-sum": lambda p: _rewrite(p, lambda m, a: (m, {**a, "weights_": a["weights_"] * 3})),
    "n_components": lambda p: _rewrite(
        p, lambda m, a: (_set(m, "params", {**m["params"], "n_components": 5}), a)
    ),
    "bad-dtype": lambda p: _rewrite(
        p, lambda m, a: (_set(m, "params", {**m["params"], "dtype": "int8"}), a)
    ),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_or_tampered_files_are_a_value_error_naming_the_file(saved, kind):
    _, path = saved
    CORRUPTIONS[kind](path)
    with pytest.raises(ValueError, match=f"path: {path} is not a saved BernoulliMixture"):
        BernoulliMixture.load(path)


def test_loading_a_directory_names_it(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        BernoulliMixture.load(tmp_path)


def test_an_extra_key_never_becomes_an_attribute(saved):
    _, path = saved
    _rewrite(path, lambda m, a: (_set(m, "predict", 1), a))  # unknown metadata is ignored
    model = BernoulliMixture.load(path)
    assert callable(model.predict)


# -- float32: what monotonicity means ------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), accelerate=st.booleans())
def test_float32_objective_is_monotone_up_to_rounding(seed, accelerate):
    """In float32 the objective may dip by rounding: at most 4 float32 ulps of its value
    (|Δ| <= 4·2⁻²³·|objective|, about 2e-6 at −18.7), never more."""
    X = binary(300, 30, seed)
    model = quiet_fit(
        BernoulliMixture(
            4, dtype=np.float32, random_state=seed, tol=0.0, max_iter=40, accelerate=accelerate
        ),
        X,
    )
    h = model.history_
    eps = np.finfo(np.float32).eps
    assert np.all(np.diff(h) >= -4 * eps * np.abs(h[1:]))
