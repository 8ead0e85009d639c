"""The EM loop on sufficient statistics, shared by mixture estimators.

In the spirit of scikit-learn's ``mixture/_base.py``: the loop, ``n_init`` restarts,
``tol``, ``max_iter``, ``warm_start``, the ConvergenceWarning, prediction and saving live
here once; a subclass supplies its distribution's pieces (parameter checks, input checks,
initialisation, M-step, prior, parameter count, sampling).

The loop sees the data only through ``stats(weights, means) -> SuffStats`` (all rows, one
E-step), built by :meth:`BaseEMMixture._make_stats_fn` from chunks of ``batch_size`` rows
run through the backend. Each iteration is one M-step followed by one E-step, so the
objective recorded in ``history_`` — (log-likelihood + log prior) / n — is exact for the
parameters after that iteration, and EM guarantees it never decreases.
"""

from __future__ import annotations

import json
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from emnet._io import atomic_path
from emnet.mixture._backend import Backend, make_backend, prepared_stats
from emnet.mixture._dask import is_dask_array
from emnet.mixture._math import SuffStats, sum_stats
from emnet.mixture._validation import iter_chunks

StatsFn = Callable[[np.ndarray, np.ndarray], SuffStats]
FORMAT_VERSION = 1


class EMRun(NamedTuple):
    """The outcome of one EM run from one initialisation."""

    weights: np.ndarray
    means: np.ndarray
    history: np.ndarray
    converged: bool
    n_iter: int
    lower_bound: float


class BaseEMMixture(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """EM for a mixture with ``weights_`` (K,) and ``means_`` (K, D) (see module docstring)."""

    _fitted_arrays = ("weights_", "means_", "history_")
    _fitted_scalars = ("converged_", "n_iter_", "lower_bound_", "n_features_in_")

    # -- hooks a distribution supplies -------------------------------------------------
    @abstractmethod
    def _check_parameters(self) -> None:
        """Supplied by the distribution."""

    @abstractmethod
    def _validate_X(self, X: Any, *, reset: bool) -> Any:
        """Supplied by the distribution."""

    @abstractmethod
    def _initialize(self, X: Any, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """Supplied by the distribution."""

    @abstractmethod
    def _m_step(
        self, stats: SuffStats, weights: np.ndarray, means: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Supplied by the distribution."""

    @abstractmethod
    def _log_prior(self, weights: np.ndarray, means: np.ndarray) -> float:
        """Supplied by the distribution."""

    @abstractmethod
    def _n_parameters(self) -> int:
        """Supplied by the distribution."""

    # -- plumbing ------------------------------------------------------------------------
    def _backend(self) -> Backend:
        return make_backend(
            self.backend, self.device, self.dtype, bitpack=getattr(self, "bitpack", True)
        )

    def _prepare(self, X: Any, backend: Backend) -> Any:
        """Data as the loop iterates it: one float copy only when all rows are one chunk.

        Integer and bool arrays stay as they are when the backend's ``prepare`` takes them
        (bit-packing; the torch backend's cast on the device).
        """
        if self.batch_size is None and getattr(X, "dtype", None) != backend.dtype:
            integer = isinstance(X, np.ndarray) and X.dtype.kind in "biu"
            if not (integer and getattr(backend, "takes_integer_input", False)):
                return X.astype(backend.dtype)
        return X

    def _make_stats_fn(self, X: Any, backend: Backend) -> StatsFn:
        """``stats(weights, means)``: one E-step over all rows, chunk by chunk.

        All rows in one chunk are prepared (e.g. bit-packed) once, here; chunks of
        ``batch_size`` rows are prepared as they are read, so that working memory stays
        O(batch_size·K + K·D).
        """
        batch_size = self.batch_size
        if batch_size is None or getattr(X, "shape", (0,))[0] <= batch_size:
            prepared = backend.prepare(X)
            return lambda weights, means: backend.chunk_stats(prepared, weights, means)

        def stats(weights: np.ndarray, means: np.ndarray) -> SuffStats:
            chunks = iter_chunks(X, batch_size)
            return sum_stats(prepared_stats(backend, c, weights, means) for c in chunks)

        return stats

    def _objective(self, stats: SuffStats, weights: np.ndarray, means: np.ndarray) -> float:
        """(log-likelihood + log prior) / n: what EM never decreases."""
        return (stats.loglik + self._log_prior(weights, means)) / stats.n

    # -- the EM loop ---------------------------------------------------------------------
    def _run_em(self, stats_fn: StatsFn, weights: np.ndarray, means: np.ndarray) -> EMRun:
        """EM from (weights, means) until the objective changes by less than ``tol``."""
        stats = stats_fn(weights, means)
        objective = self._objective(stats, weights, means)
        history: list[float] = []
        converged = False
        progress = self._progress_bar()
        for _ in range(self.max_iter):
            weights, means = self._m_step(stats, weights, means)
            stats = stats_fn(weights, means)
            new = self._objective(stats, weights, means)
            change, objective = new - objective, new
            history.append(objective)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(objective=f"{objective:.6f}")
            if self.verbose >= 2:
                print(
                    f"  iteration {len(history)}: objective {objective:.8f} (change {change:.3g})"
                )
            if abs(change) < self.tol:
                converged = True
                break
        if progress is not None:
            progress.close()
        return EMRun(weights, means, np.asarray(history), converged, len(history), objective)

    def _progress_bar(self) -> Any:
        if self.verbose < 1:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.max_iter, desc="EM", unit="it", leave=False)

    def fit(self, X: Any, y: Any = None) -> BaseEMMixture:
        """Fit by EM with ``n_init`` restarts, keeping the run with the best objective."""
        self._check_parameters()
        fitted = hasattr(self, "converged_")
        do_init = not (self.warm_start and fitted)
        backend = self._backend()
        if is_dask_array(X):  # EM on the cluster: emnet.mixture._dask
            from emnet.mixture._dask import prepare_fit

            data, stats_fn = prepare_fit(self, X, backend, reset=do_init)
        else:
            X = self._validate_X(X, reset=do_init)
            data = self._prepare(X, backend)
            stats_fn = self._make_stats_fn(data, backend)
        rng = check_random_state(self.random_state)
        best: EMRun | None = None
        for init in range(self.n_init if do_init else 1):
            if do_init:
                weights, means = self._initialize(data, rng)
            else:
                weights, means = self.weights_, self.means_
            run = self._run_em(stats_fn, weights, means)
            if self.verbose >= 1:
                state = "converged" if run.converged else "did not converge"
                print(
                    f"init {init + 1}: {state} after {run.n_iter} iterations, "
                    f"objective {run.lower_bound:.6f}"
                )
            if best is None or run.lower_bound > best.lower_bound:
                best = run
        if getattr(self, "split_merge", False) and not is_dask_array(X):
            from emnet.mixture._refine import refine_run  # fit-quality remedy

            best = refine_run(self, best, data, backend, stats_fn, rng)
        self.weights_, self.means_ = best.weights, best.means
        self.history_ = best.history
        self.converged_, self.n_iter_ = best.converged, best.n_iter
        self.lower_bound_ = best.lower_bound
        if not best.converged:
            warnings.warn(
                f"EM did not converge in max_iter={self.max_iter} iterations (last objective "
                f"change above tol={self.tol}); increase max_iter or tol, or check the data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def partial_fit(self, X: Any, y: Any = None) -> BaseEMMixture:
        """One stepwise (online) EM update on the batch X (see emnet.mixture._online).

        Running per-row statistics move towards the batch's, s ← (1 − γ_t)·s + γ_t·s_batch
        with γ_t = (t + 2)^−0.6, then the M-step runs on them. The first call initialises
        from this batch (or continues from ``fit``'s parameters). Batches can be read from
        anywhere, e.g. slices of ``np.load(path, mmap_mode="r")``.
        """
        from emnet.mixture._online import partial_fit_step

        return partial_fit_step(self, X)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then the most responsible component of each row of X."""
        return self.fit(X).predict(X)

    # -- prediction ----------------------------------------------------------------------
    def _estimate(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "means_")
        if is_dask_array(X):  # lazy dask arrays, computed chunk by chunk on the cluster
            from emnet.mixture._dask import estimate_dask

            return estimate_dask(self, X, self._backend())
        X = self._validate_X(X, reset=False)
        backend = self._backend()
        parts = [
            backend.log_resp(c, self.weights_, self.means_) for c in iter_chunks(X, self.batch_size)
        ]
        log_resp = np.concatenate([np.asarray(p[0], dtype=np.float64) for p in parts])
        log_prob = np.concatenate([np.asarray(p[1], dtype=np.float64) for p in parts])
        return log_resp, log_prob

    def predict(self, X: Any) -> np.ndarray:
        """The most responsible component of each row (argmax of eq. 6)."""
        return self._estimate(X)[0].argmax(axis=1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities η (eq. 6), rows summing to 1."""
        return np.exp(self._estimate(X)[0])

    def score_samples(self, X: Any) -> np.ndarray:
        """log P(x_i | π, p) per row (missing entries marginalised)."""
        return self._estimate(X)[1]

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per row."""
        return float(self.score_samples(X).mean())

    def bic(self, X: Any) -> float:
        """Bayesian information criterion: −2 log L + (#parameters) log n (lower is better)."""
        s = self.score_samples(X)
        return float(-2.0 * s.sum() + self._n_parameters() * np.log(len(s)))

    def aic(self, X: Any) -> float:
        """Akaike information criterion: −2 log L + 2 (#parameters) (lower is better)."""
        return float(-2.0 * self.score_samples(X).sum() + 2.0 * self._n_parameters())

    # -- saving (npz + JSON; never pickle) -------------------------------------------------
    def _params_json(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params, arrays = {}, {}
        for key, value in self.get_params(deep=False).items():
            if isinstance(value, np.ndarray | list | tuple):
                arrays[f"param_{key}"] = np.asarray(value, dtype=np.float64)
            elif key == "dtype":
                params[key] = np.dtype(value).name
            elif key == "random_state":
                params[key] = (
                    value if value is None or isinstance(value, int | np.integer) else None
                )
            else:
                params[key] = value
        return params, arrays

    def save(self, path: Any) -> None:
        """Write the fitted model to ``path`` as ``.npz`` (arrays + JSON metadata), atomically."""
        check_is_fitted(self, "means_")
        params, arrays = self._params_json()
        meta = {
            "format": FORMAT_VERSION,
            "class": type(self).__name__,
            "params": params,
            **{k: _scalar(getattr(self, k)) for k in self._fitted_scalars},
        }
        for name in self._fitted_arrays:
            arrays[name] = np.asarray(getattr(self, name))
        if hasattr(self, "feature_names_in_"):
            arrays["feature_names_in_"] = np.asarray(self.feature_names_in_, dtype=str)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, meta=np.asarray(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: Any) -> BaseEMMixture:
        """Read a model written by :meth:`save` (no pickle: npz with ``allow_pickle=False``)."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                arrays = {k: npz[k] for k in npz.files if k != "meta"}
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"path: {path} is not a saved {cls.__name__} ({exc})") from None
        if meta.get("class") != cls.__name__ or meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"path: {path} holds {meta.get('class')!r}, not a {cls.__name__}")
        params = dict(meta["params"])
        for key in list(arrays):
            if key.startswith("param_"):
                params[key[len("param_") :]] = arrays.pop(key)
        if "dtype" in params:
            params["dtype"] = np.dtype(params["dtype"]).type
        model = cls(**params)
        for name in cls._fitted_scalars:
            setattr(model, name, meta[name])
        for name, value in arrays.items():
            setattr(model, name, value)
        return model


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
