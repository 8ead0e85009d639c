"""BernoulliMixture: a mixture of multivariate Bernoullis fitted by (MAP-)EM (SPEC §1)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from emnet.mixture._base import BaseEMMixture
from emnet.mixture._init import INIT_PARAMS, initialize
from emnet.mixture._math import SuffStats, clamp_means, log_prior, m_step_from_stats, work_dtype
from emnet.mixture._validation import check_binary


class BernoulliMixture(BaseEMMixture):
    """Mixture of K multivariate Bernoulli distributions over binary vectors, fitted by EM.

    P(x) = Σ_k π_k Π_d p_kd^{x_d} (1 − p_kd)^{1 − x_d}. With ``alpha = beta =
    weight_concentration = 1`` EM maximises the likelihood (the write-up's eq. 14 and 19);
    otherwise it maximises the posterior under a Beta(alpha, beta) prior on every mean and
    a symmetric Dirichlet(weight_concentration) prior on the weights.

    Parameters
    ----------
    n_components : number of components K.
    tol : stop when the objective (mean penalised log-likelihood per row) changes by less.
    max_iter : EM iterations per initialisation (0 evaluates the initialisation only).
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
        bit-packed table kernels of ``emnet.mixture._bitpack`` instead of matrix products
        — the same numbers to rounding, about twice as fast; X is packed once per fit
        (n·D/4 bytes) or per chunk with ``batch_size``. Other input uses the products.
        The kernels compile on first use (about 12 s, once: numba caches them on disk).
    split_merge : after EM converges, try split-and-merge moves (merge two components that
        share a cluster, split one that covers two, re-run EM) and keep them only when the
        objective rises (``emnet.mixture._refine``). Escapes the stalls of k-means++
        seeding; skipped for K < 3 and for dask input.

    Attributes
    ----------
    weights_ (K,), means_ (K, D) in (0, 1), converged_, n_iter_, lower_bound_ (the final
    objective), history_ (objective after each iteration of the kept run), n_features_in_,
    feature_names_in_ (DataFrame input).

    Input: numpy arrays and lists, pandas DataFrames, scipy.sparse matrices (used as CSR,
    never densified). Values must be 0 or 1; NaN marks a missing entry, which is
    marginalised out. A row with no observed entry is an error.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-6,
        max_iter: int = 200,
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
        split_merge: bool = True,
        bitpack: bool = True,
    ) -> None:
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.alpha = alpha
        self.beta = beta
        self.weight_concentration = weight_concentration
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.split_merge = split_merge
        self.bitpack = bitpack

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    # -- checks --------------------------------------------------------------------------
    def _check_parameters(self) -> None:
        _check_int("n_components", self.n_components, 1)
        _check_int("max_iter", self.max_iter, 0)
        _check_int("n_init", self.n_init, 1)
        _check_int("verbose", self.verbose, 0)
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, 1)
        for name in ("split_merge", "bitpack"):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"{name}: expected True or False, got {value!r}")
        _check_real("tol", self.tol, 0.0)
        for name in ("alpha", "beta", "weight_concentration"):
            _check_real(name, getattr(self, name), 1.0, why=" (the MAP M-step needs a mode)")
        if self.init_params not in INIT_PARAMS:
            raise ValueError(
                f"init_params: expected one of {INIT_PARAMS}, got {self.init_params!r}"
            )
        work_dtype(None, self.dtype)

    def _validate_X(self, X: Any, *, reset: bool) -> Any:
        X = validate_data(
            self,
            X,
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
        weights = means = None
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, dtype=np.float64)
            if weights.shape != (K,):
                raise ValueError(f"weights_init: expected shape ({K},), got {weights.shape}")
            if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
                raise ValueError("weights_init: expected positive finite weights")
            if abs(weights.sum() - 1.0) > 1e-6:
                raise ValueError(f"weights_init: weights must sum to 1, got {weights.sum():.8g}")
            weights = weights / weights.sum()
        if self.means_init is not None:
            means = np.asarray(self.means_init, dtype=np.float64)
            if means.shape != (K, n_features):
                raise ValueError(
                    f"means_init: expected shape ({K}, {n_features}), got {means.shape}"
                )
            if not np.all(np.isfinite(means)) or np.any((means < 0) | (means > 1)):
                raise ValueError("means_init: expected values in [0, 1]")
            means = clamp_means(means)
        return weights, means

    # -- the distribution's pieces ---------------------------------------------------------
    def _initialize(self, X: Any, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        weights, means = self._checked_inits(X.shape[1])
        if means is None:
            w0, means = initialize(
                X,
                self.n_components,
                self.init_params,
                rng,
                batch_size=self.batch_size,
                dtype=work_dtype(None, self.dtype),
            )
            weights = w0 if weights is None else weights
        elif weights is None:
            weights = np.full(self.n_components, 1.0 / self.n_components)
        return weights, means

    def _m_step(
        self, stats: SuffStats, weights: np.ndarray, means: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return m_step_from_stats(
            stats, self.alpha, self.beta, self.weight_concentration, prev_means=means
        )

    def _log_prior(self, weights: np.ndarray, means: np.ndarray) -> float:
        return log_prior(weights, means, self.alpha, self.beta, self.weight_concentration)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return K * D + K - 1

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` rows: (X (n, D) uint8, component labels (n,)), grouped by label."""
        check_is_fitted(self, "means_")
        _check_int("n_samples", n_samples, 1)
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        y = np.repeat(np.arange(len(counts)), counts)
        X = (rng.uniform(size=(n_samples, self.means_.shape[1])) < self.means_[y]).astype(np.uint8)
        return X, y


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")


def _check_real(name: str, value: Any, low: float, why: str = "") -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not np.isfinite(value)
        or value < low
    ):
        raise ValueError(f"{name}: expected a finite number >= {low:g}{why}, got {value!r}")
