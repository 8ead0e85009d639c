"""The grown starts of LatentClassModel's start search (``_grown_starts``, ``_splits``):
classes found one at a time from the one-class fit, each level's best proper run split
again (emnet.mixture.estimators.latent)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MIXED, planted_mixed, planted_profiles

from emnet.mixture import LatentClassModel
from emnet.mixture.estimators import latent


def _prepared(model: LatentClassModel, X: np.ndarray, w: np.ndarray | None = None):
    model._marks = None
    return model._prepare_fit(X, w, reset=True)


@pytest.mark.parametrize("K", [2, 4])
def test_grown_starts_have_k_classes_and_count_their_e_steps(K: int) -> None:
    X = planted_profiles(300, seed=1, D=3)
    m = LatentClassModel(K, covariance="VVV", random_state=0)
    data = _prepared(m, X)
    starts, cost = m._grown_starts(data, np.random.RandomState(0))
    assert len(starts) == latent.GROWTH_ROUNDS * (K - 1 + 1)  # K − 1 classes split, + 1
    for s in starts:
        assert s.log_weights.shape == (K,)
        assert np.exp(s.log_weights).sum() == pytest.approx(1.0)
        assert s.blocks[0].means.shape == (K, 3)
        assert np.isfinite(m._objective(data.stats(s), s))
    # two classes split the one-class fit directly: no level run, no E-step spent
    assert (cost > 0) == (K > 2)


def test_grown_starts_take_every_measurement_type() -> None:
    X, _ = planted_mixed(400, seed=3)
    m = LatentClassModel(3, measurement=MIXED, random_state=0)
    data = _prepared(m, X)
    starts, cost = m._grown_starts(data, np.random.RandomState(1))
    assert len(starts) == latent.GROWTH_ROUNDS * 3 and cost > 0
    for s in starts:
        assert np.isfinite(m._objective(data.stats(s), s))


def test_level_runs_are_not_the_fits_starts() -> None:
    """The levels' runs go through the proper-maxima rule on their own record: the fit's
    record of set-aside starts (``_marks``) is the same object, unchanged, after."""
    X = planted_profiles(300, seed=2, D=3)
    m = LatentClassModel(4, covariance="VVV", random_state=0)
    data = _prepared(m, X)
    marks = {12345: "a start of this fit"}
    m._marks = marks
    m._grown_starts(data, np.random.RandomState(0))
    assert m._marks is marks and marks == {12345: "a start of this fit"}


def test_the_search_takes_the_grown_starts_first_and_makes_them_once() -> None:
    X = planted_profiles(300, seed=3, D=3)
    m = LatentClassModel(3, covariance="VVI", n_init=3, random_state=0, search_budget=100.0)
    data = _prepared(m, X)
    m._marks = {}
    rng = np.random.RandomState(0)
    runs = m._run_starts(data, [m._initialize(data.data, None, rng) for _ in range(3)])
    runs[0] = runs[0]._replace(lower_bound=runs[0].lower_bound - 1.0)  # starts disagree
    made, seen = [], []
    real_grown, real_run = LatentClassModel._grown_starts, LatentClassModel._run_em

    def grown(self, fit_data, rng):  # type: ignore[no-untyped-def]
        out = real_grown(self, fit_data, rng)
        made.append([id(s) for s in out[0]])
        return out

    def run_em(self, stats_fn, params, ops=None, tol=None):  # type: ignore[no-untyped-def]
        if tol is not None:  # the search's screening runs, in order
            seen.append(id(params))
        return real_run(self, stats_fn, params, ops, tol)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LatentClassModel, "_grown_starts", grown)
        mp.setattr(LatentClassModel, "_run_em", run_em)
        _, screened = m._search_starts(data, runs, rng)
    assert len(made) == 1 and len(made[0]) == latent.GROWTH_ROUNDS * 3
    level_runs = len(seen) - screened  # the grown starts' own level runs come first
    assert seen[level_runs : level_runs + len(made[0])] == made[0]
    assert m._grown is None  # not kept after the search


def test_weighted_splits_equal_repeated_rows() -> None:
    X = planted_profiles(120, seed=4, D=3)
    w = np.random.default_rng(0).integers(1, 4, size=len(X)).astype(float)
    m = LatentClassModel(2, covariance="VVV", random_state=0).fit(X, sample_weight=w)
    chunks = [b.prepare(m._block_input(X, cols, b)) for b, cols in m._blocks]
    rep = np.repeat(np.arange(len(X)), w.astype(int))
    chunks_r = [b.prepare(m._block_input(X[rep], cols, b)) for b, cols in m._blocks]
    log_resp, _ = m._log_resp(X)
    eta = np.exp(log_resp)
    Z = np.random.default_rng(1).normal(size=X.shape)
    a = m._splits(m._params, eta, chunks, Z, w, np.random.default_rng(2))
    b = m._splits(m._params, eta[rep], chunks_r, Z[rep], None, np.random.default_rng(2))
    for sa, sb in zip(a, b, strict=True):
        np.testing.assert_allclose(sa.log_weights, sb.log_weights, atol=1e-12)
        np.testing.assert_allclose(sa.blocks[0].means, sb.blocks[0].means, atol=1e-10)
        np.testing.assert_allclose(sa.blocks[0].covariances, sb.blocks[0].covariances, atol=1e-10)


def test_no_grown_starts_for_a_given_start_or_one_class() -> None:
    X = planted_profiles(200, seed=5, D=3)
    given = LatentClassModel(
        2,
        covariance="VVI",
        weights_init=[0.5, 0.5],
        means_init=X[:2],
        covariances_init=np.ones((2, 3)),
    )
    assert given._grown_starts(_prepared(given, X), np.random.RandomState(0)) == ([], 0)
    one = LatentClassModel(1, covariance="VVI")
    assert one._grown_starts(_prepared(one, X), np.random.RandomState(0)) == ([], 0)
