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


def _fit(threaded: bool, X: np.ndarray, **kw: object) -> tuple[LatentClassModel, list[str]]:
    """A fit with the starts after the first on threads (``threaded``) or not, and the
    names of the threads that ran starts."""
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
        mp.setattr(LatentClassModel, "_run_em", run_em)
        model = quiet_fit(LatentClassModel(random_state=3, **kw), X)
    return model, on_threads


@pytest.mark.parametrize(
    ("data", "kw"),
    [
        ("profiles", {"n_components": 3, "covariance": "VVV", "n_init": 6}),
        ("profiles", {"n_components": 4, "covariance": "EEI", "n_init": 5}),
        ("mixed", {"n_components": 3, "measurement": MIXED, "n_init": 5}),
    ],
)
def test_threaded_starts_equal_serial_ones(data: str, kw: dict) -> None:
    X = planted_profiles(400, seed=4, D=4) if data == "profiles" else planted_mixed(500, seed=5)[0]
    before = _blas_settings()
    serial, serial_threads = _fit(False, X, **kw)
    threaded, threads = _fit(True, X, **kw)
    assert serial_threads == [] and len(threads) == kw["n_init"] - 1  # the first: alone
    np.testing.assert_array_equal(threaded.init_lower_bounds_, serial.init_lower_bounds_)
    np.testing.assert_array_equal(threaded.init_degenerate_, serial.init_degenerate_)
    assert threaded.lower_bound_ == serial.lower_bound_
    assert threaded.n_iter_ == serial.n_iter_
    np.testing.assert_array_equal(threaded.weights_, serial.weights_)
    np.testing.assert_array_equal(threaded.predict_proba(X), serial.predict_proba(X))
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
    model, threads = _fit(True, X, n_components=3, covariance="VVV", n_init=4,
                          search_budget=0.0)  # fmt: skip
    assert len(threads) == 3
    assert taken.count(latent.EM_BLAS_THREADS) == 1  # around the starts, once
    assert all(t is None for t in taken if t != latent.EM_BLAS_THREADS)
    assert np.isfinite(model.lower_bound_)
