"""BernoulliMixture at scale: torch backend, chunking, stepwise EM, split-merge, selection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import quiet_fit
from hypothesis import given, settings
from hypothesis import strategies as st

from emnet.mixture import BernoulliMixture, plot_bic, select_n_components
from emnet.mixture.backends.online import OnlineState, online_m_step, step_size, stepwise_update
from emnet.mixture.backends.torch_backend import TorchBackend, resolve_device, resolve_dtype
from emnet.mixture.kernels.bernoulli_math import chunk_stats


def planted(n: int, d: int, k: int, seed: int = 0, a: float = 0.5):
    """n rows from a mixture with uniform weights and means drawn from Beta(a, a)."""
    rng = np.random.default_rng(seed)
    means = rng.beta(a, a, (k, d))
    z = rng.integers(k, size=n)
    X = (rng.random((n, d)) < means[z]).astype(np.uint8)
    return X, np.full(k, 1.0 / k), means, z


def fit_quiet(X, **kw) -> BernoulliMixture:
    return quiet_fit(BernoulliMixture(**kw), X)


@pytest.fixture(scope="module")
def small():
    X, w, m, _ = planted(1500, 25, 4, seed=1)
    rng = np.random.default_rng(7)
    return X, rng.uniform(0.2, 0.8, (4, 25)), np.full(4, 0.25)


# ------------------------------------------------------------------ torch backend
@pytest.mark.parametrize("kind", ["dense", "nan", "sparse", "bool"])
def test_torch_chunk_stats_equal_numpy_float64(small, kind):
    X, m0, w0 = small
    if kind == "nan":
        X = X.astype(np.float64)
        X[np.random.default_rng(3).random(X.shape) < 0.1] = np.nan
    elif kind == "sparse":
        X = sp.csr_matrix(X)
    elif kind == "bool":
        X = X.astype(bool)
    ref = chunk_stats(X, w0, m0, dtype=np.float64)
    got = TorchBackend("cpu", np.float64).chunk_stats(X, w0, m0)
    assert got.n == ref.n
    np.testing.assert_allclose(got.resp_sum, ref.resp_sum, rtol=1e-9)
    np.testing.assert_allclose(got.resp_x, ref.resp_x, rtol=1e-9, atol=1e-9)
    assert (got.resp_obs is None) == (ref.resp_obs is None)
    if ref.resp_obs is not None:
        np.testing.assert_allclose(got.resp_obs, ref.resp_obs, rtol=1e-9, atol=1e-9)
    assert got.loglik == pytest.approx(ref.loglik, rel=1e-12)
    lr, lp = TorchBackend().log_resp(X, w0, m0)
    np.testing.assert_allclose(np.exp(lr).sum(1), 1.0, rtol=1e-12)
    assert lp.sum() == pytest.approx(ref.loglik, rel=1e-12)


@pytest.mark.parametrize("batch_size", [None, 333])
def test_torch_fit_equals_numpy_fit_float64(small, batch_size):
    X, m0, w0 = small
    kw = dict(n_components=4, means_init=m0, weights_init=w0, max_iter=40, tol=0.0)
    a = fit_quiet(X, **kw)
    b = fit_quiet(X, backend="torch", device="cpu", batch_size=batch_size, **kw)
    np.testing.assert_allclose(b.means_, a.means_, atol=1e-6)
    np.testing.assert_allclose(b.weights_, a.weights_, atol=1e-6)
    np.testing.assert_allclose(b.history_, a.history_, rtol=1e-6)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("kind", ["uint8", "bool", "float64", "nan", "sparse"])
def test_torch_prepare_moves_x_to_the_device_once(small, kind, monkeypatch):
    """A fit copies X to the device once (prepare), not on every E-step; the statistics
    from the prepared tensor equal those from the raw array."""
    X, m0, w0 = small
    X = {
        "uint8": X,
        "bool": X.astype(bool),
        "float64": X.astype(np.float64),
        "nan": np.where(np.random.default_rng(4).random(X.shape) < 0.05, np.nan, X),
        "sparse": sp.csr_matrix(X),
    }[kind]
    backend = TorchBackend("cpu", np.float64)
    prepared = backend.prepare(X)
    if kind == "sparse":
        assert prepared is X
    else:
        assert isinstance(prepared, torch.Tensor) and prepared.dtype == torch.float64
    ref = backend.chunk_stats(X, w0, m0)
    got = backend.chunk_stats(prepared, w0, m0)
    np.testing.assert_allclose(got.resp_x, ref.resp_x, rtol=1e-12, atol=1e-12)
    assert got.loglik == pytest.approx(ref.loglik, rel=1e-12)
    assert (got.resp_obs is None) == (ref.resp_obs is None)

    calls = []
    to_device = TorchBackend._to_device
    monkeypatch.setattr(
        TorchBackend, "_to_device", lambda self, a: calls.append(a.shape) or to_device(self, a)
    )
    model = fit_quiet(
        X, n_components=4, means_init=m0, weights_init=w0, max_iter=5, tol=0.0,
        backend="torch", split_merge=False, accelerate=False,
    )  # fmt: skip
    assert model.n_iter_ == 5
    # sparse X stays sparse: one block of rows densified per E-step (1 + 5 of them)
    assert len(calls) == (6 if kind == "sparse" else 1)


def test_torch_float32_is_finite_and_close(small):
    X, m0, w0 = small
    kw = dict(n_components=4, means_init=m0, weights_init=w0, max_iter=30, tol=0.0)
    a = fit_quiet(X, **kw)
    b = fit_quiet(X, backend="torch", dtype=np.float32, batch_size=500, **kw)
    assert np.all(np.isfinite(b.means_)) and np.all(np.isfinite(b.history_))
    assert np.all((b.means_ > 0) & (b.means_ < 1))
    np.testing.assert_allclose(b.history_, a.history_, rtol=1e-4)


def test_torch_float32_extreme_means_stay_finite():
    # means at the clamp (1e-10) are where float32 log(1 - p) loses everything
    X, _, _, _ = planted(400, 30, 3, seed=2, a=0.05)
    m = fit_quiet(X, n_components=3, backend="torch", dtype=np.float32, random_state=0)
    assert np.all(np.isfinite(m.score_samples(X)))


def test_resolve_device_and_dtype():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    assert resolve_dtype("float32") == torch.float32
    assert resolve_dtype(np.float64) == torch.float64
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype(np.int32)


def test_chunked_fit_equals_unchunked(small):
    X, m0, w0 = small
    kw = dict(n_components=4, means_init=m0, weights_init=w0, max_iter=25, tol=0.0)
    a = fit_quiet(X, **kw)
    b = fit_quiet(X, batch_size=97, **kw)
    np.testing.assert_allclose(b.means_, a.means_, atol=1e-10)
    np.testing.assert_allclose(b.history_, a.history_, rtol=1e-10)


# ------------------------------------------------------------------ stepwise EM
def test_step_size_schedule():
    assert step_size(0) == 1.0
    g = [step_size(t, 0.7, 2.0) for t in range(1, 200)]
    assert all(a > b for a, b in zip(g, g[1:], strict=False))
    with pytest.raises(ValueError, match="decay"):
        step_size(1, decay=0.5)
    with pytest.raises(ValueError, match="offset"):
        step_size(1, offset=0.0)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6))
def test_stepwise_with_decay_one_is_the_running_average(seed, n_batches):
    # gamma_t = 1/(t+1): equal-size batches scored under fixed parameters average exactly
    rng = np.random.default_rng(seed)
    X = (rng.random((n_batches * 50, 12)) < 0.4).astype(np.float64)
    X[rng.random(X.shape) < 0.05] = np.nan
    X[np.isnan(X).all(1), 0] = 1.0
    w = rng.dirichlet(np.ones(3))
    m = rng.uniform(0.1, 0.9, (3, 12))
    state: OnlineState | None = None
    for b in range(n_batches):
        state = stepwise_update(state, chunk_stats(X[b * 50 : (b + 1) * 50], w, m), 1.0, 1.0)
    full = chunk_stats(X, w, m)
    assert state.n_seen == full.n
    np.testing.assert_allclose(state.resp_x * full.n, full.resp_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(state.resp_obs * full.n, full.resp_obs, rtol=1e-10, atol=1e-10)
    from emnet.mixture.kernels.bernoulli_math import m_step_from_stats

    w1, m1 = online_m_step(state)
    w2, m2 = m_step_from_stats(full)
    np.testing.assert_allclose(w1, w2, rtol=1e-10)
    np.testing.assert_allclose(m1, m2, rtol=1e-9)


def test_partial_fit_reaches_batch_em_loglik():
    X, _, _, _ = planted(12_000, 60, 5, seed=4)
    batch = fit_quiet(X, n_components=5, random_state=0)
    online = BernoulliMixture(n_components=5, random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(3):  # three passes over shuffled mini-batches of 500 rows
        order = rng.permutation(len(X))
        for start in range(0, len(X), 500):
            online.partial_fit(X[order[start : start + 500]])
    ll_batch, ll_online = batch.score(X), online.score(X)
    assert abs(ll_online - ll_batch) <= 0.01 * abs(ll_batch)
    assert online.n_iter_ == 3 * 24 and len(online.history_) == online.n_iter_
    assert np.all(np.isfinite(online.means_)) and online.weights_.sum() == pytest.approx(1.0)


def test_partial_fit_from_memmap_and_after_fit(tmp_path):
    X, _, _, _ = planted(3000, 20, 3, seed=5)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    model = fit_quiet(X[:1000], n_components=3, random_state=1)
    before = model.score(X)
    for start in range(1000, 3000, 250):
        model.partial_fit(mm[start : start + 250])
    assert model.score(X) >= before - 0.01 * abs(before)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:10, :5])


# ------------------------------------------------------------------ split-merge
def test_split_merge_escapes_the_kmeanspp_stall():
    # random_state=2 seeds two k-means++ centres in one true cluster: plain EM stalls.
    X, w, m, _ = planted(5000, 200, 10, seed=0)
    planted_ll = chunk_stats(X, w, m).loglik / len(X)
    plain = fit_quiet(X, n_components=10, random_state=2, split_merge=False)
    fixed = fit_quiet(X, n_components=10, random_state=2)
    gap = lambda model: (planted_ll - model.score(X)) / abs(planted_ll)
    assert gap(plain) > 0.02  # the stall this remedy exists for
    assert gap(fixed) < 0.005
    assert fixed.n_split_merge_ >= 1 and plain.lower_bound_ < fixed.lower_bound_
    assert np.all(np.diff(fixed.history_) >= -1e-9 * abs(fixed.history_[-1]))


def test_split_merge_never_lowers_the_objective():
    X, _, _, _ = planted(1500, 30, 6, seed=3)
    for seed in range(3):
        a = fit_quiet(X, n_components=6, random_state=seed, split_merge=False)
        b = fit_quiet(X, n_components=6, random_state=seed)
        assert b.lower_bound_ >= a.lower_bound_ - 1e-12
    with pytest.raises(ValueError, match="split_merge"):
        BernoulliMixture(3, split_merge="yes").fit(X)


# ------------------------------------------------------------------ model selection
def test_select_n_components_picks_the_planted_k(tmp_path):
    X, _, _, _ = planted(2000, 30, 3, seed=6)
    res = select_n_components(X, range(1, 6), n_init=2, random_state=0)
    assert res.best_k == 3
    assert list(res.ks) == [1, 2, 3, 4, 5]
    rows = res.table()
    assert [r["k"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(
        r["bic"] == pytest.approx(-2 * r["loglik"] + r["n_params"] * np.log(2000)) for r in rows
    )
    assert res.best_model.n_components == 3
    assert res.best_model.bic(X) == pytest.approx(res.bic[2], rel=1e-9)
    assert np.all(np.diff(res.loglik) > -1e-6 * np.abs(res.loglik[:-1]))  # more K, no worse fit
    out = plot_bic(res, tmp_path / "bic.png")
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"


def test_select_n_components_parallel_matches_serial():
    X, _, _, _ = planted(600, 15, 2, seed=8)
    kw = dict(ks=[1, 2, 3], n_init=2, random_state=3, max_iter=50)
    serial = select_n_components(X, **kw)
    parallel = select_n_components(X, n_jobs=2, **kw)
    np.testing.assert_allclose(parallel.loglik, serial.loglik, rtol=1e-12)
    assert parallel.best_k == serial.best_k


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(ks=[]), "at least one"),
        (dict(ks=[0, 2]), "positive"),
        (dict(ks=[2, 5000]), "rows"),
        (dict(ks="abc"), "integers"),
        (dict(ks=[2], n_init=0), "n_init"),
        (dict(ks=[2], criterion="hqc"), "criterion"),
        (dict(ks=[2], n_components=3), "n_components"),
    ],
)
def test_select_n_components_rejects_bad_arguments(kwargs, match):
    X, _, _, _ = planted(50, 5, 2)
    with pytest.raises((ValueError, TypeError), match=match):
        select_n_components(X, **kwargs)


# ------------------------------------------------------------------ CLI
def test_cli_em_range_of_k_prints_table_and_plots_bic(tmp_path, capsys):
    import json

    from emnet.cli import main

    X, _, _, _ = planted(1200, 20, 3, seed=9)
    data = tmp_path / "x.npy"
    np.save(data, X)
    out = tmp_path / "out"
    rc = main(["em", "--data", str(data), "--k", "2:5", "--n-init", "2", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "BIC" in text and "best K by BIC: 3" in text
    for name in ("bic.png", "means.png", "loglik.png", "model.npz", "selection.json"):
        assert (out / name).stat().st_size > 0
    sel = json.loads((out / "selection.json").read_text())
    assert sel["best_k"] == 3 and [r["k"] for r in sel["table"]] == [2, 3, 4, 5]
    assert BernoulliMixture.load(out / "model.npz").n_components == 3


@pytest.mark.parametrize("spec", ["2:x", "0:3", "5:2", "2:9:0", ",", "1:2000"])
def test_cli_em_bad_k_range_is_one_line_exit_2(tmp_path, capsys, spec):
    from emnet.cli import main

    X, _, _, _ = planted(100, 8, 2, seed=1)
    data = tmp_path / "x.npy"
    np.save(data, X)
    try:
        rc = main(["em", "--data", str(data), "--k", spec, "--out", str(tmp_path / "o")])
    except SystemExit as exc:  # argparse errors exit from inside the parser
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--k" in err and len(err.splitlines()) == 1
