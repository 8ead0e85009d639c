"""LatentClassModel's starts on threads (``_run_starts``): when the first start's run is
heavy per E-step, the others run on one thread per core, with the same results as one
after another, and BLAS's thread setting as it was after the fit."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import MIXED, planted_mixed, planted_profiles, quiet_fit
from threadpoolctl import threadpool_info

from emnet.mixture import LatentClassModel
from emnet.mixture.core import em
from emnet.mixture.estimators import latent


def _blas_settings() -> list[tuple[str, int]]:
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info())


def _fit(
    threaded: bool,
    X: np.ndarray,
    sample_weight: np.ndarray | None = None,
    omp: str | None = None,
    **kw: object,
) -> tuple[LatentClassModel, list[str]]:
    """A fit with the starts after the first on threads (``threaded``) or not, and the
    names of the threads that ran starts; ``OMP_NUM_THREADS`` set to ``omp`` (None:
    unset)."""
    on_threads: list[str] = []
    real = LatentClassModel._run_em

    def run_em(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = threading.current_thread().name
        if name.startswith("emnet-start"):
            on_threads.append(name)
        return real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(latent, "CONCURRENT_MIN_SECONDS", 0.0 if threaded else np.inf)
        mp.setattr(em, "_n_cores", lambda: 2)  # threads even on a one-core runner
        if omp is None:
            mp.delenv("OMP_NUM_THREADS", raising=False)
        else:
            mp.setenv("OMP_NUM_THREADS", omp)
        mp.setattr(LatentClassModel, "_run_em", run_em)
        model = quiet_fit(
            LatentClassModel(**{"random_state": 3, **kw}), X, sample_weight=sample_weight
        )
    return model, on_threads


@pytest.mark.parametrize(
    ("data", "kw"),
    [
        ("profiles", {"n_components": 3, "covariance": "VVV", "n_init": 6}),
        ("profiles", {"n_components": 4, "covariance": "EEI", "n_init": 5}),
        ("mixed", {"n_components": 3, "measurement": MIXED, "n_init": 5}),
        ("missing, weighted", {"n_components": 3, "covariance": "VVV", "n_init": 5}),
    ],
)
def test_threaded_starts_equal_serial_ones(data: str, kw: dict) -> None:
    X = planted_profiles(400, seed=4, D=4) if data != "mixed" else planted_mixed(500, seed=5)[0]
    fit_kw = {}
    if data == "missing, weighted":  # the Gaussian E-step per missingness pattern
        rng = np.random.default_rng(8)
        X = X.copy()
        X[rng.random(X.shape) < 0.1] = np.nan
        fit_kw["sample_weight"] = rng.uniform(0.5, 2.0, size=len(X))
    before = _blas_settings()
    serial, serial_threads = _fit(False, X, **kw, **fit_kw)
    threaded, threads = _fit(True, X, **kw, **fit_kw)
    assert serial_threads == [] and len(threads) >= kw["n_init"] - 1  # the first: alone
    assert threaded.n_screened_ == serial.n_screened_
    np.testing.assert_array_equal(threaded.init_lower_bounds_, serial.init_lower_bounds_)
    np.testing.assert_array_equal(threaded.init_degenerate_, serial.init_degenerate_)
    assert threaded.lower_bound_ == serial.lower_bound_
    assert threaded.n_iter_ == serial.n_iter_
    np.testing.assert_array_equal(threaded.weights_, serial.weights_)
    np.testing.assert_array_equal(threaded.predict_proba(X), serial.predict_proba(X))
    assert np.isfinite(serial.lower_bound_)
    assert _blas_settings() == before  # the limit is taken and given back once


def test_starts_run_under_one_blas_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The threads' runs do not take the limit themselves: taken and given back from two
    threads in turn, each would restore the other's setting (BLAS left at one thread)."""
    taken: list[object] = []
    real = latent._blas_threads

    def counting(limit):  # type: ignore[no-untyped-def]
        taken.append(limit)
        return real(limit)

    monkeypatch.setattr(latent, "_blas_threads", counting)
    X = planted_profiles(300, seed=7, D=3)
    model, threads = _fit(True, X, n_components=4, covariance="VVV", n_init=4)
    assert model.n_screened_ > 0 and len(threads) >= 3 + model.n_screened_
    assert len(taken) >= len(threads)
    assert all(t is None for t in taken if t != latent.EM_BLAS_THREADS)  # the runs'
    assert taken.count(latent.EM_BLAS_THREADS) == 2  # around the starts, around the search
    assert all(t is None for t in taken if t != latent.EM_BLAS_THREADS)
    assert np.isfinite(model.lower_bound_)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_start_search_on_threads_equals_the_serial_search(seed: int) -> None:
    """Extra starts screened ahead on threads are taken in order as if screened one after
    another: the same search (the same starts screened and finished, the same fit), and
    those screened ahead but not taken leave the generator and the record of set-aside
    starts as they were."""
    X = planted_profiles(300, seed=10 + seed, D=3, shift=1.5)
    kw = {"n_components": 5, "covariance": "VVV", "n_init": 4, "search_budget": 2.0}
    serial, _ = _fit(False, X, **kw)
    threaded, threads = _fit(True, X, **kw)
    assert serial.n_screened_ > 0
    assert len(threads) >= 3 + serial.n_screened_
    assert threaded.n_screened_ == serial.n_screened_
    np.testing.assert_array_equal(threaded.init_lower_bounds_, serial.init_lower_bounds_)
    np.testing.assert_array_equal(threaded.init_degenerate_, serial.init_degenerate_)
    assert threaded.lower_bound_ == serial.lower_bound_
    np.testing.assert_array_equal(threaded.predict_proba(X), serial.predict_proba(X))


def test_starts_screened_ahead_and_not_taken_are_undone() -> None:
    """The search's generator ends where a one-at-a-time search leaves it, and the
    set-aside marks of runs screened ahead but not taken are dropped."""
    X = planted_profiles(300, seed=20, D=3, shift=1.5)
    ends = {}
    for threaded in (False, True):
        m = LatentClassModel(4, covariance="VVV", n_init=3, random_state=0, search_budget=0.5)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(em, "_n_cores", lambda: 3)
            mp.delenv("OMP_NUM_THREADS", raising=False)
            data = m._prepare_fit(X, None, reset=True)
            m._marks = {}
            rng = np.random.RandomState(5)
            runs = m._run_starts(data, [m._initialize(data.data, None, rng) for _ in range(3)])
            runs[0] = runs[0]._replace(lower_bound=runs[0].lower_bound - 1.0)  # disagree
            m._threaded = threaded
            found, screened = m._search_starts(data, runs, rng)
        ends[threaded] = (rng.randint(1 << 30), screened, [r.lower_bound for r in found],
                          len(m._marks))  # fmt: skip
    assert ends[True] == ends[False]
    assert ends[False][1] % 3 != 0  # the threaded search screened ahead past its stop


@pytest.mark.parametrize(("omp", "expected"), [("1", 1), ("2", 2), ("", 3), ("none", 3)])
def test_start_threads_share_the_cores_omp_num_threads_gives(
    monkeypatch: pytest.MonkeyPatch, omp: str, expected: int
) -> None:
    """joblib's and Dask's worker processes set OMP_NUM_THREADS to share the cores: a fit
    there runs its starts on at most that many threads (not one per core in each)."""
    monkeypatch.setattr(em, "_n_cores", lambda: 3)
    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    model = LatentClassModel(2)
    model._threaded = True
    data = em.FitData(None, None, None, concurrent=True)
    assert model._start_threads(data) == expected
    assert model._start_threads(data._replace(concurrent=False)) == 1
    X = planted_profiles(300, seed=9, D=3)
    if expected == 1:  # a whole fit keeps its starts in the calling thread
        _, threads = _fit(True, X, omp=omp, n_components=3, covariance="VVV", n_init=4)
        assert threads == []


@pytest.mark.parametrize(
    ("data", "structure", "K", "seed"),
    [("iris", "EEE", 4, 0), ("iris", "EEE", 4, 1), ("wine", "VVI", 3, 0), ("iris", "VVV", 5, 0)],
)
def test_runs_finished_ahead_give_the_serial_search(
    data: str, structure: str, K: int, seed: int
) -> None:
    """Screened starts that reach the search's bar two or more at a time are run on to
    convergence ahead, on the threads; the search takes those it would have finished and
    drops the others: the same fit, search and record as one after another (real data,
    where the search screens dozens of starts)."""
    from sklearn.datasets import load_iris, load_wine

    X = {"iris": load_iris, "wine": load_wine}[data]().data
    kw = {"n_components": K, "covariance": structure, "n_init": 12}
    ahead: list[int] = []
    real = em.BaseEMMixture._screen_ahead

    def counting(self, *args):  # type: ignore[no-untyped-def]
        out = real(self, *args)
        ahead.append(sum(i.finished is not None for i in out))
        return out

    serial, _ = _fit(False, X, random_state=seed, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(em.BaseEMMixture, "_screen_ahead", counting)
        threaded, _ = _fit(True, X, random_state=seed, **kw)
    assert sum(ahead) > 0  # runs were finished ahead
    assert serial.n_screened_ > 5
    assert threaded.n_screened_ == serial.n_screened_
    np.testing.assert_array_equal(threaded.init_lower_bounds_, serial.init_lower_bounds_)
    np.testing.assert_array_equal(threaded.init_degenerate_, serial.init_degenerate_)
    assert threaded.lower_bound_ == serial.lower_bound_
    np.testing.assert_array_equal(threaded.predict_proba(X), serial.predict_proba(X))
