"""BernoulliMixture: a mixture of multivariate Bernoullis fitted by (MAP-)EM (SPEC §1)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from emnet.mixture.backends.dask_backend import is_dask_array
from emnet.mixture.backends.numpy_backend import Backend, make_backend, prepared_stats
from emnet.mixture.core.coded import CodedLatentClassMixture
from emnet.mixture.core.em import EMRun, FitData
from emnet.mixture.core.starts import INIT_PARAMS, initialize
from emnet.mixture.core.validation import (
    check_binary,
    check_int,
    check_weights,
    iter_chunks,
)
from emnet.mixture.kernels.bernoulli_math import (
    MEAN_CLAMP,
    SuffStats,
    clamp_means,
    log_prior,
    m_step_from_stats,
    sum_stats,
    work_dtype,
)
from emnet.mixture.kernels.blocked import bernoulli_blocked_step, maybe_blocks
from emnet.mixture.kernels.codes import (
    FusedStep,
    bernoulli_em_step,
    bernoulli_log_table,
    binary_codes,
    binary_offsets,
    compress_rows,
)

PATTERN_MAX_FEATURES = 32
"""Dense float64 data with at most this many features runs EM over its distinct rows
(weighted by their counts) through the compiled kernels of ``kernels.codes``: on survey-shaped
data (few items, many repeated answer patterns) that is far cheaper than matrix products."""


class BernoulliParams(NamedTuple):
    """The parameters EM iterates: weights (K,) and means (K, D)."""

    weights: np.ndarray
    means: np.ndarray


class BernoulliMixture(CodedLatentClassMixture):
    """Mixture of K multivariate Bernoulli distributions over binary vectors, fitted by EM.

    P(x) = Σ_k π_k Π_d p_kd^{x_d} (1 − p_kd)^{1 − x_d}. With ``alpha = beta =
    weight_concentration = 1`` EM maximises the likelihood (the write-up's eq. 14 and 19);
    otherwise it maximises the posterior under a Beta(alpha, beta) prior on every mean and
    a symmetric Dirichlet(weight_concentration) prior on the weights.

    Parameters
    ----------
    n_components : number of components K.
    tol : stop when the objective (mean penalised log-likelihood per row) changes by less
        in one iteration.
    max_iter : EM iterations per initialisation (0 evaluates the initialisation only);
        with ``accelerate`` one iteration is one SQUAREM cycle (2–3 EM steps).
    n_init : initialisations; the run with the best objective is kept.
    init_params : 'kmeans++' (default), 'random' or 'random_from_data' (see ``_init``).
    weights_init : (K,) positive initial weights (normalised), or None.
    means_init : (K, D) initial means in [0, 1] (clamped into (0, 1)), or None.
    alpha, beta : Beta prior on each mean, both >= 1 (1 = no prior).
    weight_concentration : Dirichlet prior on the weights, >= 1 (1 = no prior).
    random_state : seed or RandomState for the initialisation.
    warm_start : start a new ``fit`` from the previous solution (then n_init is 1).
    verbose : 0 silent, 1 progress bar and one line per init, 2 one line per iteration.
    backend : 'numpy' or 'torch'.  device : 'cpu', 'cuda' or 'auto' (torch backend).
    dtype : np.float32 or np.float64, the precision of the E/M-step arithmetic.
    batch_size : rows per chunk of the E and M steps (None: all rows at once). Working
        memory is O(batch_size·K + K·D) beyond X; uint8/bool X is converted per chunk.
    bitpack : numpy backend only: run complete dense 0/1 data (no NaN) through the
        bit-packed table kernels of ``emnet.mixture.kernels.bitpack`` instead of matrix products
        — the same numbers to rounding, about twice as fast; X is packed once per fit
        (n·D/4 bytes) or per chunk with ``batch_size``. Other input uses the products.
        The kernels compile on first use (about 12 s, once: numba caches them on disk).
    accelerate : SQUAREM acceleration of EM (``emnet.mixture.core.em``); the objective still
        never decreases (an extrapolation that does not improve on plain EM is dropped).
    split_merge : after EM converges, try split-and-merge moves (merge two components that
        share a cluster, split one that covers two, re-run EM) and keep them only when the
        objective rises (``emnet.mixture.core.refine``). Escapes the stalls of k-means++
        seeding; skipped for K < 3 and for dask input.
    search_budget : extra random starts after the ``n_init``, screened at a loose
        tolerance and finished only when they can reach the best, spending at most this
        share of the starts' E-steps (scaled by the share of starts that missed the best;
        ``emnet.mixture.core.em``). 0 (default) turns it off; ``CategoricalMixture``
        defaults to 0.5.

    Attributes
    ----------
    weights_ (K,), means_ (K, D) in (0, 1), converged_, n_iter_, n_em_steps_ (E-steps
    evaluated), lower_bound_ (the final objective), history_ (objective after each
    iteration of the kept run), init_lower_bounds_ (each start's final objective),
    n_features_in_, feature_names_in_ (DataFrame input).

    ``fit``, ``score``, ``bic`` and ``aic`` take ``sample_weight`` (non-negative per-row
    weights; integer weights equal repeated rows, BIC's n is Σ w). Dense float64 data with
    at most ``PATTERN_MAX_FEATURES`` features is fitted over its distinct rows weighted by
    their counts (pattern compression): the same numbers, to rounding, at a fraction of
    the cost; the initialisation still sees every row. On a dask array ``fit`` takes a
    numpy or 1-D dask array of weights, kept beside X's row chunks on the workers
    (``emnet.mixture.backends.dask_backend``): the same fit as in memory.

    Input: numpy arrays and lists, pandas DataFrames, scipy.sparse matrices (used as CSR,
    never densified). Values must be 0 or 1; NaN marks a missing entry, which is
    marginalised out. A row with no observed entry is an error.
    """

    _saved_array_names = ("weights_", "means_")

    _input_tags = ("allow_nan", "sparse", "positive_only")

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-8,
        max_iter: int = 500,
        n_init: int = 1,
        init_params: str = "kmeans++",
        weights_init: Any = None,
        means_init: Any = None,
        alpha: float = 1.0,
        beta: float = 1.0,
        weight_concentration: float = 1.0,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        backend: str = "numpy",
        device: str = "cpu",
        dtype: Any = np.float64,
        batch_size: int | None = None,
        accelerate: bool = True,
        split_merge: bool = True,
        bitpack: bool = True,
        search_budget: float = 0.0,
    ) -> None:
        self._store_params(locals())

    # -- checks --------------------------------------------------------------------------
    def _check_parameters(self) -> None:
        self._check_em_parameters(
            INIT_PARAMS,
            priors=("alpha", "beta", "weight_concentration"),
            flags=("split_merge", "bitpack"),
            init_arrays=("weights_init", "means_init"),
        )
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, 1)
        work_dtype(None, self.dtype)

    def _validate_X(self, X: Any, *, reset: bool) -> Any:
        X = validate_data(
            self,
            _none_as_nan(X),
            reset=reset,
            accept_sparse="csr",
            dtype="numeric",
            ensure_all_finite=False,
            ensure_min_samples=1,
        )
        if sp.issparse(X) and X.format != "csr":
            X = X.tocsr()
        check_binary(X)
        if reset and X.shape[0] < self.n_components:
            raise ValueError(f"n_components={self.n_components} must be <= n_samples={X.shape[0]}")
        if not reset and hasattr(self, "means_") and X.shape[1] != self.means_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.means_.shape[1]}"
            )
        return X

    def _checked_inits(self, n_features: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        K = self.n_components
        weights, means = self._checked_weights_init(), None
        if self.means_init is not None:
            means = _float_array("means_init", self.means_init)
            if means.shape != (K, n_features):
                raise ValueError(
                    f"means_init: expected shape ({K}, {n_features}), got {means.shape}"
                )
            if not np.all(np.isfinite(means)) or np.any((means < 0) | (means > 1)):
                raise ValueError("means_init: expected values in [0, 1]")
            means = clamp_means(means)
        return weights, means

    # -- data plumbing ---------------------------------------------------------------------
    def _backend(self) -> Backend:
        return make_backend(self.backend, self.device, self.dtype, bitpack=self.bitpack)

    def _prepare(self, X: Any, backend: Backend) -> Any:
        """Data as the loop iterates it: one float copy only when all rows are one chunk.

        Integer and bool arrays stay as they are when the backend's ``prepare`` takes them
        (bit-packing; the torch backend's cast on the device).
        """
        if self.batch_size is None and getattr(X, "dtype", None) != backend.dtype:
            integer = isinstance(X, np.ndarray) and X.dtype.kind in "biu"
            if not (integer and backend.takes_integer_input):
                return X.astype(backend.dtype)
        return X

    def _uses_patterns(self, X: Any) -> bool:
        """Run EM over distinct rows through the ``kernels.codes`` kernels (see the class doc)?"""
        return (
            self.backend == "numpy"
            and self.batch_size is None
            and isinstance(X, np.ndarray)
            and np.dtype(self.dtype) == np.float64
            and X.shape[1] <= PATTERN_MAX_FEATURES
        )

    def _make_stats_fn(
        self,
        X: Any,
        sample_weight: np.ndarray | None,
        backend: Backend,
        *,
        patterns: bool = True,
    ) -> Any:
        """``stats(params)``: one (weighted) E-step over all rows, chunk by chunk.

        All rows in one chunk are prepared (e.g. bit-packed) once, here; chunks of
        ``batch_size`` rows are prepared as they are read, so that working memory stays
        O(batch_size·K + K·D). With ``patterns`` (and data that qualifies) the statistics
        are fused EM steps over the distinct rows instead (``_pattern_stats_fn``).
        """
        if patterns and self._uses_patterns(X):
            return _pattern_stats_fn(X, sample_weight, self)
        batch_size = self.batch_size
        if batch_size is None or getattr(X, "shape", (0,))[0] <= batch_size:
            prepared = backend.prepare(X)
            return lambda p: backend.chunk_stats(
                prepared, p.weights, p.means, sample_weight=sample_weight
            )

        def stats(p: BernoulliParams) -> SuffStats:
            chunks = iter_chunks(X, batch_size)
            if sample_weight is None:
                return sum_stats(prepared_stats(backend, c, p.weights, p.means) for c in chunks)
            wchunks = iter_chunks(sample_weight, batch_size)
            return sum_stats(
                prepared_stats(backend, c, p.weights, p.means, sample_weight=w)
                for c, w in zip(chunks, wchunks, strict=True)
            )

        return stats

    def _prepare_fit(self, X: Any, sample_weight: Any, *, reset: bool) -> FitData:
        backend = self._backend()
        if is_dask_array(X):  # EM on the cluster: emnet.mixture.backends.dask_backend
            from emnet.mixture.backends.dask_backend import prepare_fit

            return prepare_fit(self, X, backend, sample_weight, reset=reset)
        X = self._validate_X(X, reset=reset)
        w = check_weights(sample_weight, X.shape[0])
        data = self._prepare(X, backend)
        stats_fn = self._make_stats_fn(data, w, backend)
        concurrent = bool(getattr(stats_fn, "concurrent", False))
        return FitData(data, w, stats_fn, (data, backend), concurrent)

    def _refine(self, run: EMRun, fit_data: FitData, rng: np.random.RandomState) -> EMRun:
        self.n_split_merge_ = 0
        if not self.split_merge or fit_data.context is None:
            return run
        from emnet.mixture.core.refine import refine_run  # fit-quality remedy

        data, backend = fit_data.context
        return refine_run(self, run, data, backend, fit_data.stats, rng)

    # -- the distribution's pieces ---------------------------------------------------------
    def _initialize(
        self, X: Any, sample_weight: np.ndarray | None, rng: np.random.RandomState
    ) -> BernoulliParams:
        weights, means = self._checked_inits(X.shape[1])
        if means is None:
            w0, means = initialize(
                X,
                self.n_components,
                self.init_params,
                rng,
                batch_size=self.batch_size,
                dtype=work_dtype(None, self.dtype),
                sample_weight=sample_weight,
            )
            weights = w0 if weights is None else weights
        elif weights is None:
            weights = np.full(self.n_components, 1.0 / self.n_components)
        return BernoulliParams(weights, means)

    def _m_step(self, stats: SuffStats | FusedStep, params: BernoulliParams) -> BernoulliParams:
        if isinstance(stats, FusedStep):  # the pattern path's compiled step did it
            return stats.next
        return BernoulliParams(
            *m_step_from_stats(
                stats, self.alpha, self.beta, self.weight_concentration, prev_means=params.means
            )
        )

    def _log_prior(self, params: BernoulliParams) -> float:
        return log_prior(
            params.weights, params.means, self.alpha, self.beta, self.weight_concentration
        )

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return K * D + K - 1

    def _to_unconstrained(self, params: BernoulliParams) -> np.ndarray:
        p = params.means  # clamped into (0, 1) by every step that makes means
        log_w = np.log(np.maximum(params.weights, 1e-300))
        return np.concatenate([log_w, (np.log(p) - np.log1p(-p)).ravel()])

    def _from_unconstrained(self, vector: np.ndarray, like: BernoulliParams) -> BernoulliParams:
        K = len(like.weights)
        log_w = vector[:K] - vector[:K].max()
        weights = np.exp(log_w)
        weights /= weights.sum()
        with np.errstate(over="ignore"):
            means = 1.0 / (1.0 + np.exp(-vector[K:].reshape(like.means.shape)))
        return BernoulliParams(weights, clamp_means(means))

    def _get_fitted(self) -> BernoulliParams:
        return BernoulliParams(self.weights_, self.means_)

    def _set_fitted(self, params: BernoulliParams) -> None:
        self.weights_, self.means_ = params.weights, params.means

    @property
    def _fit_attribute(self) -> str:
        return "means_"

    # -- coded form, for covariates (emnet.mixture.covariates.regression) --------------------------
    @property
    def _item_offsets(self) -> np.ndarray:
        """Each feature is a two-answer item: offsets 0, 2, 4, ... of the fitted log θ rows."""
        return binary_offsets(self.means_.shape[1])

    def _codes_for(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        Xv = self._validate_X(X, reset=False)
        dense = Xv.toarray() if sp.issparse(Xv) else np.asarray(Xv)
        return binary_codes(dense.astype(np.float64)), binary_offsets(dense.shape[1])

    def _table_of(self, params: BernoulliParams) -> np.ndarray:
        return np.ascontiguousarray(bernoulli_log_table(clamp_means(params.means)))

    def _table_m_step(self, stats: Any, prev_log_table: np.ndarray) -> np.ndarray:
        ones, zeros = stats.counts[1::2].T, stats.counts[0::2].T
        denom = ones + zeros + (self.alpha + self.beta - 2.0)
        prev = np.exp(prev_log_table[1::2]).T
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(denom > 0, (ones + self.alpha - 1.0) / denom, prev)
        return self._table_of(BernoulliParams(np.ones(len(means)), means))

    def _table_log_prior(self, log_table: np.ndarray) -> float:
        means = np.exp(log_table[1::2]).T
        return log_prior(np.ones(means.shape[0]), means, self.alpha, self.beta, 1.0)

    def _from_table(self, weights: np.ndarray, log_table: np.ndarray) -> BernoulliParams:
        return BernoulliParams(np.asarray(weights), clamp_means(np.exp(log_table[1::2]).T))

    def _shares_of(self, params: BernoulliParams) -> np.ndarray:
        return np.asarray(params.weights)

    def _answers(self) -> list[list[Any]]:
        return [[0, 1] for _ in range(self.means_.shape[1])]

    def _permute(self, perm: np.ndarray) -> None:
        self.weights_ = np.asarray(self.weights_)[perm]
        self.means_ = np.asarray(self.means_)[perm]

    def _log_resp(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        if is_dask_array(X):  # lazy dask arrays, computed chunk by chunk on the cluster
            from emnet.mixture.backends.dask_backend import estimate_dask

            return estimate_dask(self, X, self._backend())
        X = self._validate_X(X, reset=False)
        backend = self._backend()
        parts = [
            backend.log_resp(c, self.weights_, self.means_) for c in iter_chunks(X, self.batch_size)
        ]
        log_resp = np.concatenate([np.asarray(p[0], dtype=np.float64) for p in parts])
        log_prob = np.concatenate([np.asarray(p[1], dtype=np.float64) for p in parts])
        return log_resp, log_prob

    def partial_fit(self, X: Any, y: Any = None) -> BernoulliMixture:
        """One stepwise (online) EM update on the batch X (see emnet.mixture.backends.online).

        Running per-row statistics move towards the batch's, s ← (1 − γ_t)·s + γ_t·s_batch
        with γ_t = (t + 2)^−0.6, then the M-step runs on them. The first call initialises
        from this batch (or continues from ``fit``'s parameters). Batches can be read from
        anywhere, e.g. slices of ``np.load(path, mmap_mode="r")``.
        """
        from emnet.mixture.backends.online import partial_fit_step

        return partial_fit_step(self, X)

    # -- saving --------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._state_arrays()
        arrays["weights_"] = np.asarray(self.weights_, dtype=np.float64)
        arrays["means_"] = np.asarray(self.means_, dtype=np.float64)
        return arrays

    def _restore_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Set the fitted arrays of a loaded model after checking them (``persistence``)."""
        from emnet.mixture.persistence import check_probability_table, check_weights_array

        K = self.n_components
        means = check_probability_table("means_", arrays.pop("means_", None), K)
        if means.shape[1] != self.n_features_in_:
            raise ValueError(
                f"means_ has {means.shape[1]} columns but n_features_in_ is {self.n_features_in_}"
            )
        self.weights_ = check_weights_array(arrays.pop("weights_", None), K)
        self.means_ = means

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` rows: (X (n, D) uint8, component labels (n,)), grouped by label."""
        check_is_fitted(self, "means_")
        check_int("n_samples", n_samples, 1)
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        y = np.repeat(np.arange(len(counts)), counts)
        X = (rng.uniform(size=(n_samples, self.means_.shape[1])) < self.means_[y]).astype(np.uint8)
        return X, y


def _pattern_stats_fn(
    X: np.ndarray, sample_weight: np.ndarray | None, model: BernoulliMixture
) -> Any:
    """``stats(params)`` over the distinct rows of dense 0/1/NaN X: one compiled EM step
    (``kernels.codes.bernoulli_em_step``) whose result ``_m_step`` reads off."""
    codes, totals, _ = compress_rows(binary_codes(X), sample_weight)
    keep = totals > 0
    codes, totals = np.ascontiguousarray(codes[keep]), totals[keep]
    has_missing = bool((codes < 0).any())
    n = float(totals.sum())
    prior = (model.alpha, model.beta, model.weight_concentration, MEAN_CLAMP, has_missing)

    blocked = maybe_blocks(codes, np.full(codes.shape[1], 2))
    step = bernoulli_em_step if blocked is None else bernoulli_blocked_step
    rows = codes if blocked is None else blocked

    def stats(p: BernoulliParams) -> FusedStep:
        loglik, w, m = step(rows, totals, p.weights, p.means, *prior)
        return FusedStep(n, loglik, BernoulliParams(w, m))

    stats.concurrent = blocked is not None  # type: ignore[attr-defined]  # FitData.concurrent
    return stats


def _float_array(name: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an array of numbers, got {value!r}") from None


def _none_as_nan(X: Any) -> Any:
    """Lists (and object arrays) holding None: None is a missing value, like NaN.

    DataFrame columns that are categorical, strings or objects are read as numbers
    ("0"/"1" and categories 0/1 are accepted); anything else is a ValueError naming the
    column.
    """
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        return _frame_as_numeric(X)
    if isinstance(X, list | tuple) or (isinstance(X, np.ndarray) and X.dtype == object):
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 2:
            arr = np.where(np.equal(arr, None), np.nan, arr)
            try:
                return arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(
                    "X must hold numbers 0 or 1 (NaN or None for missing); found a value "
                    "that is not a number"
                ) from None
    return X


def _frame_as_numeric(frame: Any) -> Any:
    import pandas as pd

    out = {}
    changed = False
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_numeric_dtype(col.dtype) and not isinstance(
            col.dtype, pd.CategoricalDtype
        ):
            out[name] = col
            continue
        changed = True
        values = col.astype(object)
        missing = pd.isna(values).to_numpy()
        numbers = pd.to_numeric(values.where(~missing, None), errors="coerce").to_numpy(float)
        bad = ~missing & ~np.isin(numbers, (0.0, 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"X: column {name!r} must hold 0 or 1 (or a missing value); found "
                f"{values.iloc[i]!r} at row {i}"
            )
        out[name] = pd.Series(np.where(missing, np.nan, numbers), index=frame.index)
    return pd.DataFrame(out, index=frame.index) if changed else frame
