"""LatentClassModel: the latent class family over measurement blocks (SPEC §1c).

P(x_i) = Σ_k π_k Π_b f_b(x_ib | θ_kb): the columns are split into blocks of one
measurement type each (:mod:`emnet.mixture.measurement`: Gaussian with mclust's EEI, VVI,
EEE, VVV covariances — latent profile analysis — and Poisson); the per-class
log-likelihoods of the blocks add. The EM loop, restarts, SQUAREM, weights, criteria and
prediction are :class:`~emnet.mixture.core.em.BaseEMMixture`'s; this module only joins the
blocks' pieces (E-step: sum of block log-likelihoods; M-step: each block's from its own
additive statistics).

**Proper maxima** (``proper_maxima=True``). A Gaussian class with its own covariance can
collapse onto a few (tied) rows — a spurious maximum whose likelihood is higher than the
meaningful one (iris, VVV, K = 3: random starts reach −99 by collapsing a class, against
the well-known −180.19). After each start the model asks every block whether a class is
degenerate (:meth:`Measurement.degenerate`; the Gaussian rule — effective size below the
rows that determine the covariance, or a standardised covariance eigenvalue below 1e-3 or
condition number above 1e6 — is documented in
:mod:`emnet.mixture.measurement.gaussian`) and sets such starts aside: the reported
solution is the best *proper* maximum. ``n_degenerate_starts_`` counts the starts set
aside, ``init_degenerate_`` marks them among ``init_lower_bounds_`` (their real
objectives) and ``proper_maxima_note_`` is the sentence for a summary. If every start is
degenerate, the best of them is reported with a warning.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from emnet.mixture.backends.family_common import (
    block_input,
    check_columns_observed,
    check_rows,
    observed_counts,
    setup_input,
)
from emnet.mixture.backends.family_dask import is_dask_collection
from emnet.mixture.core.em import SCREEN_TOL, BaseEMMixture, EMRun, FitData
from emnet.mixture.core.validation import check_int, check_real, check_weights, checked_answer_probs
from emnet.mixture.kernels.codes import log_normalised, log_shares, posterior_rows
from emnet.mixture.measurement import STRUCTURES, TYPES, Measurement, make_measurement

INIT_PARAMS = ("kmeans++", "random_from_data", "random")
SEARCH_KINDS = {
    "kmeans++": ("random", "kmeans++"),
    "random_from_data": ("random", "random_from_data"),
}
"""The start kinds the start search takes in turn, per ``init_params`` (after the grown
starts, :meth:`LatentClassModel._grown_starts`)."""
GROWTH_ROUNDS = 4
"""Random split directions per class at each level of the grown starts."""
MAX_CATEGORICAL_VALUES = 10
"""``measurement=None``: whole-number columns with at most this many distinct values are
read as categorical items."""
EM_BLAS_THREADS = 1
"""BLAS threads during an EM run. The E-step's matrix products are thin (K columns out,
or K rows): memory-bound, so BLAS threads gain little on them (measured: at most 1.25×
at 20 000 × 10 on an idle 2-core machine, none at 100 000 × 10) and lose up to 10× when
the cores are busy (threads waiting on each other). None: BLAS's own setting."""
CONCURRENT_MIN_SECONDS = 3e-4
"""An in-memory fit runs its starts after the first on one thread per core when one
E-step (timed at the first start's end, the fastest of two) takes at least this long:
the E-step's products and compiled kernels release the GIL, and each run is the same
computation as alone, so the result equals the serial one. Below it the threads' turns
at the GIL cost more than they gain. Measured on 2 cores (E-step; all starts' time,
serial over threaded): iris and wine 0.03-0.08 ms, 0.6-0.75×; breast cancer VVI 0.11
ms, 0.8-0.9×; 1 000 × 10 planted VVV 0.18 ms, 1.3×; breast cancer VVV 0.47 ms, 1.5×
(docs/benchmarks.md, lpa-threads)."""


class LatentParams(NamedTuple):
    """log π (K,) and one parameter object per block."""

    log_weights: np.ndarray
    blocks: tuple[Any, ...]


class LatentStats(NamedTuple):
    """One E-step over all rows: Σ w, Σ w log p(x), Σ w η (K,), the blocks' statistics."""

    n: float
    loglik: float
    nk: np.ndarray
    blocks: tuple[Any, ...]


class LatentClassModel(BaseEMMixture):
    """A latent class (profile) model: a mixture of K products of measurement blocks.

    Parameters
    ----------
    n_components : number of latent classes K.
    measurement : "binary", "categorical", "gaussian" or "poisson" for every column, or a
        dict {type: [columns]} of column names (DataFrame input) or 0-based positions
        (every column in exactly one block), or None (the default): inferred per column
        from its dtype and values (``measurement_`` and the summary's blocks say what
        was chosen): text, pandas categorical and other non-numeric columns →
        categorical; bool columns and numeric columns whose observed values are all 0
        or 1 → binary; whole numbers with at most :data:`MAX_CATEGORICAL_VALUES` (10)
        distinct values → categorical; non-negative whole numbers in an *integer*
        column (numpy or pandas integer dtype) → poisson; everything else → gaussian —
        so an array or DataFrame of float measurements is a latent profile model, even
        where a column holds whole numbers (wine's magnesium); declare counts stored as
        floats (a pandas column with missing values) as ``{"poisson": [...]}``.
        Categorical answers may be numbers, strings, bools or pandas categoricals (in
        their declared order); NaN, None and pd.NA mark a missing entry.
    covariance : the Gaussian block's structure, "EEI", "VVI", "EEE" or "VVV" (mclust's
        names; see :mod:`emnet.mixture.measurement.gaussian`).
    n_init : starts; the best proper maximum is kept.
    tol, max_iter : stop when the objective (mean penalised log-likelihood per unit of
        weight) changes by less than ``tol`` in one iteration; iterations per start.
    init_params : "kmeans++" (k-means++ seeds on the standardised, mean-imputed data;
        each row to its nearest seed), "random_from_data" (K random rows as seeds) or
        "random" (random soft partition, Dirichlet(1) per row).
    reg_covar : the Gaussian covariance floor relative to each column's variance
        (MAP under an improper inverse-Wishart prior; 0 = plain maximum likelihood).
    prob_concentration : the symmetric Dirichlet prior (>= 1; 1 = none) on the answer
        probabilities of the categorical and binary blocks (CategoricalMixture's).
    weights_init (K,), means_init (K, D_gauss), covariances_init (the structure's
        compact form: VVV (K, D, D), VVI (K, D), EEE (D, D), EEI (D,)): a fixed start
        for the class shares and the Gaussian block (override the partition's).
    probs_init : a fixed start for the categorical and binary blocks: a dict
        {column: (K, R_j) answer probabilities, in the order of ``categories_[column]``}
        or a list of such arrays, one per categorical/binary column in the input's column
        order (a binary column: (P(0), P(1))).
    proper_maxima : set starts that end in a degenerate class aside (module docstring).
    search_budget : the start search after the ``n_init`` starts, as in
        :class:`~emnet.mixture.CategoricalMixture` (0: off), but 4.0 by default: Gaussian
        likelihoods are far more multimodal than categorical ones (iris, wine and breast
        cancer, K = 2..6, the four structures, 5 seeds: the best value reached in 210 of
        300 fits against 179 with 0.5 and no grown starts, for 2.5× the time;
        docs/lca.md). Its first extra starts are grown from one class, a class at a time
        (:meth:`_grown_starts`); then it takes random soft partitions and
        ``init_params`` in turn (:data:`SEARCH_KINDS`). While every start so far ended in
        a collapsed class it goes on past its budget (up to 5 × ``n_init`` extra starts).
    accelerate, random_state, warm_start, verbose : as in
        :class:`~emnet.mixture.CategoricalMixture`.
    backend : "numpy" or "torch" (the E-step as matrix products on ``device``, "cpu",
        "cuda" or "auto", in ``dtype``, float64 by default:
        :mod:`emnet.mixture.backends.family_torch`). A Dask array or DataFrame passed to
        ``fit`` / ``predict`` runs on the cluster (:mod:`emnet.mixture.backends.family_dask`);
        ``partial_fit`` is stepwise EM (:mod:`emnet.mixture.backends.family_online`).

    Attributes
    ----------
    weights_ (K,); means_ (K, D): E[x | class] of every column (Gaussian means, Poisson
    rates) in the input's column order; covariances_ (K, D_g, D_g) of the Gaussian
    columns (expanded from the shared or diagonal form); rates_ (K, D_p) of the Poisson
    columns; categories_ and probs_: dicts {column: answers in code order} and {column:
    (K, R_j) answer probabilities} of the categorical and binary columns (means_ holds
    Σ_r θ_kjr · answer_r for numeric answers, P(x = 1) for binary ones, NaN for text);
    measurement_ ({type: [column names or positions]}, the blocks as fitted),
    block_columns_ (the columns of each block), measurement_types_;
    n_degenerate_starts_, init_degenerate_, proper_maxima_note_; and the base's
    history_, lower_bound_, n_iter_, converged_, init_lower_bounds_, n_features_in_,
    feature_names_in_ (DataFrame input).
    """

    _whole_fit_selection = True  # the proper-maxima rule compares a fit's starts
    _blrt_replicate = "family_replicate"  # the BLRT through the measurement blocks
    _saved_array_names = (
        "weights_", "init_degenerate_", "gaussian_means", "gaussian_covariances",
        "gaussian_scale", "gaussian_center", "gaussian_columns", "poisson_rates",
        "poisson_floor", "poisson_center", "poisson_columns", "categorical_probs",
        "categorical_columns", "binary_probs", "binary_columns",
    )  # fmt: skip

    _input_tags = ("allow_nan", "categorical", "string")

    def __init__(
        self,
        n_components: int = 1,
        *,
        measurement: Any = None,
        covariance: str = "VVI",
        n_init: int = 10,
        tol: float = 1e-10,
        max_iter: int = 5000,
        init_params: str = "kmeans++",
        reg_covar: float = 1e-6,
        weights_init: Any = None,
        means_init: Any = None,
        covariances_init: Any = None,
        prob_concentration: float = 1.0,
        probs_init: Any = None,
        proper_maxima: bool = True,
        accelerate: bool = True,
        search_budget: float = 4.0,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        backend: str = "numpy",
        device: str = "cpu",
        dtype: Any = np.float64,
    ) -> None:
        self._store_params(locals())

    # -- checks and data -----------------------------------------------------------------
    def _check_parameters(self) -> None:
        self._check_em_parameters(
            INIT_PARAMS,
            priors=("prob_concentration",),
            flags=("proper_maxima",),
            init_arrays=("weights_init", "means_init", "covariances_init"),
        )
        if isinstance(self.probs_init, str):
            raise ValueError("probs_init: expected arrays of probabilities or None")
        check_real("reg_covar", self.reg_covar, 0.0)
        if self.backend not in ("numpy", "torch"):
            raise ValueError(f"backend: expected 'numpy' or 'torch', got {self.backend!r}")
        if self.covariance not in STRUCTURES:
            raise ValueError(f"covariance: expected one of {STRUCTURES}, got {self.covariance!r}")

    def _as_array(self, X: Any, *, reset: bool) -> np.ndarray:
        """(n, D): a float array (NaN missing) when every column is numeric; otherwise an
        object array whose numeric columns hold floats and whose other columns (text,
        pandas categoricals) their values as they are (missing: NaN, None, pd.NA)."""
        names = None
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            names = [str(c) for c in X.columns]
            A, kinds = _frame_values(X)
        else:
            A, kinds = _array_values(X)
        check_rows(A, kinds)
        if reset:
            check_columns_observed(observed_counts(A), names)
            self.n_features_in_ = A.shape[1]
            if names is not None:
                self.feature_names_in_ = np.asarray(names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self._columns = names
            self._column_kinds = kinds
        elif A.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {A.shape[1]} columns; the model was fitted on "
                             f"{self.n_features_in_}")  # fmt: skip
        return A

    def _block_input(self, A: np.ndarray, cols: np.ndarray, m: Measurement) -> np.ndarray:
        """Block m's columns of ``_as_array``'s A (:func:`~emnet.mixture.backends.
        family_common.block_input`)."""
        return block_input(A, cols, m, getattr(self, "_columns", None))

    def _setup_input(self, X: Any, A: np.ndarray, cols: np.ndarray, m: Measurement) -> Any:
        """What block m learns its constants from: its columns, with a DataFrame's pandas
        categoricals as they are (:func:`~emnet.mixture.backends.family_common.setup_input`)."""
        return setup_input(X, A, cols, m, getattr(self, "_columns", None))

    def _infer_measurement(self, A: np.ndarray) -> dict[str, list[int]]:
        """The blocks of ``measurement=None`` (the rule in the class docstring)."""
        kinds = getattr(self, "_column_kinds", None) or ["number"] * A.shape[1]
        found: dict[str, list[int]] = {}
        for j in range(A.shape[1]):
            found.setdefault(_inferred_type(A[:, j], kinds[j]), []).append(j)
        return {kind: found[kind] for kind in TYPES if kind in found}

    def _resolve_blocks(self, D: int, spec: Any = None) -> list[tuple[str, np.ndarray]]:
        spec = self.measurement if spec is None else spec
        if isinstance(spec, str):
            if spec not in TYPES:
                raise ValueError(f"measurement: expected one of {TYPES} or a dict, got {spec!r}")
            return [(spec, np.arange(D))]
        if not isinstance(spec, dict) or not spec:
            raise ValueError("measurement: expected a type name or a dict {type: [columns]}")
        names = getattr(self, "_columns", None)
        owner: dict[int, str] = {}
        blocks = []
        for kind, cols in spec.items():
            if kind not in TYPES:
                raise ValueError(f"measurement: unknown type {kind!r} (expected {TYPES})")
            idx = []
            for c in [cols] if isinstance(cols, str | int) else list(cols):
                if isinstance(c, int | np.integer) and not isinstance(c, bool):
                    j = int(c)
                    if not 0 <= j < D:
                        raise ValueError(f"measurement[{kind!r}]: column {j} out of range")
                elif names is not None and str(c) in names:
                    j = names.index(str(c))
                else:
                    raise ValueError(f"measurement[{kind!r}]: no column {c!r}")
                if j in owner:
                    raise ValueError(f"measurement: column {c!r} is in two blocks")
                owner[j] = kind
                idx.append(j)
            if idx:
                blocks.append((kind, np.asarray(idx)))
        missing = sorted(set(range(D)) - set(owner))
        if missing:
            shown = [names[j] for j in missing] if names is not None else missing
            raise ValueError(f"measurement: columns {shown} are in no block")
        return blocks

    def _make_blocks(self, A: np.ndarray, w: np.ndarray | None, X: Any = None) -> None:
        spec = self._infer_measurement(A) if self.measurement is None else self.measurement
        blocks = []
        for kind, cols in self._resolve_blocks(A.shape[1], spec):
            m = self._new_block(kind)
            m.labels = [str(self._name(j)) for j in cols]
            data = self._setup_input(X, A, cols, m)
            m.check_input(data, [self._name(j) for j in cols])
            m.setup(data, w)
            blocks.append((m, cols))
        self._blocks: list[tuple[Measurement, np.ndarray]] = blocks
        self._describe_blocks()

    def _new_block(self, kind: str) -> Measurement:
        return make_measurement(
            kind,
            covariance=self.covariance,
            reg_covar=self.reg_covar,
            prob_concentration=self.prob_concentration,
        )

    def _describe_blocks(self) -> None:
        blocks = self._blocks
        self.block_columns_ = [cols for _, cols in blocks]
        self.measurement_types_ = [m.name for m, _ in blocks]
        self.measurement_ = {m.name: [self._name(int(j)) for j in cols] for m, cols in blocks}

    def _name(self, j: int) -> Any:
        names = getattr(self, "_columns", None)
        return names[j] if names is not None else j

    # -- fitting -------------------------------------------------------------------------
    def _fit_covariates(
        self, X: Any, covariates: Any, sample_weight: Any, method: str
    ) -> LatentClassModel:
        """Latent class (profile) regression, P(class k | z) = softmax_k(β_k · [1, z]) with
        class 1 the reference, for any measurement
        (:mod:`emnet.mixture.covariates.family_regression`): ``method`` "one-step" (EM over
        β and every block; standard errors from the information of all parameters), "bch",
        "ml" or "naive" (three-step). Rows with a missing covariate are left out with a
        warning."""
        from emnet.mixture.covariates.family_regression import fit_latent_regression

        return fit_latent_regression(self, X, covariates, sample_weight, method)

    def _fit_plain(self, X: Any, sample_weight: Any) -> LatentClassModel:
        """The base's fit, keeping the best *proper* maximum (``_marks``: each run's real
        objective, see :meth:`_run_em`)."""
        self._marks: dict[int, EMRun] | None = {}
        try:
            super()._fit_plain(X, sample_weight)
        finally:
            self._marks = None
        return self

    def _prepare_fit(self, X: Any, sample_weight: Any, *, reset: bool) -> FitData:
        if is_dask_collection(X):  # EM on the cluster: emnet.mixture.backends.family_dask
            from emnet.mixture.backends.family_dask import prepare_fit

            return prepare_fit(self, X, sample_weight, reset=reset, values=_VALUES)
        A = self._as_array(X, reset=reset)
        n = A.shape[0]
        if reset and n < self.n_components:
            raise ValueError(f"n_components={self.n_components} must be <= n_samples={n}")
        w = check_weights(sample_weight, n)
        if reset or not hasattr(self, "_blocks"):
            self._make_blocks(A, w, X)
        chunks = [m.prepare(self._block_input(A, cols, m)) for m, cols in self._blocks]
        stats = _stats_function(self._blocks, chunks, w, n)
        self._fit_matrix = A
        self._fit_chunks = chunks
        if self.backend == "torch":  # emnet.mixture.backends.family_torch
            from emnet.mixture.backends.family_torch import TorchFamily

            blocks = [m for m, _ in self._blocks]
            return FitData(A, w, TorchFamily(blocks, chunks, w, self.device, self.dtype).stats)
        return FitData(A, w, stats, concurrent=True)  # on threads if heavy (_run_starts)

    def _joint_log_lik(self, p: LatentParams, chunks: list[Any]) -> np.ndarray:
        """(n, K): log π_k + Σ_b log f_b(x_ib | k), a fresh array."""
        return _joint_log_lik(self._blocks, p, chunks)

    def _initialize(
        self,
        A: np.ndarray,
        sample_weight: np.ndarray | None,
        rng: np.random.RandomState,
        kind: str | None = None,
    ) -> LatentParams:
        """One start of ``kind`` (default: ``init_params``)."""
        kind = self.init_params if kind is None else kind
        K, n = self.n_components, A.shape[0]
        w = np.ones(n) if sample_weight is None else sample_weight
        chunks = self._chunks_of(A)
        random = kind == "random"
        given = self._start_is_given()
        if given:  # every parameter below is replaced: no seeds drawn
            resp = np.full((n, K), 1.0 / K)
        elif random:
            resp = rng.dirichlet(np.ones(K), size=n)
        else:
            resp = self._seed_partition(self._standardised_seeds(A, chunks), w, rng, kind)
        fixed = {"means_init": self.means_init, "covariances_init": self.covariances_init}
        blocks = []
        for (m, _), chunk in zip(self._blocks, chunks, strict=True):
            # a block's own random start (categorical: θ from a flat Dirichlet, poLCA's)
            p = m.random_params(K, rng) if random else None
            if p is None and given:  # the given start itself (no partition to summarise)
                p = m.given_params(K, fixed)
            blocks.append(m.initialize(chunk, resp, sample_weight) if p is None else p)
        blocks = tuple(blocks)
        nk = w @ resp + 10.0 * np.finfo(np.float64).eps
        weights = nk / nk.sum()
        return self._apply_init_arrays(LatentParams(np.log(weights), blocks))

    def _chunks_of(self, A: np.ndarray) -> list[Any]:
        """The blocks' prepared chunks of A, for the starts of a fit: the fit's own when A
        is its matrix. (Prediction prepares its input anew: after a fit, the caller's
        array may have changed.)"""
        if A is getattr(self, "_fit_matrix", None):
            return self._fit_chunks
        return [m.prepare(self._block_input(A, cols, m)) for m, cols in self._blocks]

    def _search_start(
        self, fit_data: FitData, rng: np.random.RandomState, index: int
    ) -> tuple[Any, int]:
        """The start search's extra starts: first the grown starts
        (:meth:`_grown_starts`), then in turn ``init_params`` and a random soft partition
        (:data:`SEARCH_KINDS`): partitions around seeds and random soft partitions fall
        into different maxima (breast cancer, VVV, K >= 5: every k-means++ start
        collapses a class; wine, EEE, K = 6: random starts reach the best maximum more
        often), so the search does not depend on one kind's luck."""
        cost = 0
        if getattr(self, "_grown", None) is None:  # made at the first extra start, which
            self._grown, cost = self._grown_starts(fit_data, rng)  # bears their cost
        if index < len(self._grown):
            return self._grown[index], cost
        kinds = SEARCH_KINDS.get(self.init_params, (self.init_params,))
        kind = kinds[(index - len(self._grown)) % len(kinds)]
        return self._initialize(fit_data.data, fit_data.sample_weight, rng, kind), cost

    def _search_starts(
        self, fit_data: FitData, runs: list[EMRun], rng: np.random.RandomState
    ) -> tuple[list[EMRun], int]:
        """The base's start search, its grown starts made once per search (when first
        asked for) and not kept after it; its runs under one BLAS limit (threads:
        :meth:`_run_starts`)."""
        self._grown: list[LatentParams] | None = None
        try:
            with self._blas_limit():
                return super()._search_starts(fit_data, runs, rng)
        finally:
            self._grown = None

    def _start_is_given(self) -> bool:
        """``weights_init`` and every block's ``*_init`` options are given: the start is
        fixed whatever the seed partition (which :meth:`_apply_init_arrays` replaces)."""
        return self.weights_init is not None and all(
            m.init_options and all(getattr(self, o) is not None for o in m.init_options)
            for m, _ in self._blocks
        )

    def _seed_matrix(self, A: np.ndarray, chunks: list[Any]) -> np.ndarray:
        """A float matrix for the seed partition: the numeric columns of A, and after them
        each block's own :meth:`Measurement.seed_features` where it has them (categorical
        and binary blocks: the answers as 0/1 indicators, NaN if missing)."""
        keep = np.ones(A.shape[1], dtype=bool)
        parts = []
        for (m, cols), chunk in zip(self._blocks, chunks, strict=True):
            features = m.seed_features(chunk)
            if features is not None:
                keep[cols] = False
                parts.append(features)
        if not parts:
            return A
        return np.hstack([np.asarray(A[:, keep], dtype=np.float64), *parts])

    def _seed_partition(
        self, Z: np.ndarray, w: np.ndarray, rng: np.random.RandomState, kind: str
    ) -> np.ndarray:
        """Hard partition: each row to its nearest of K seeds (k-means++ or random rows) on
        the standardised, mean-imputed data Z (:meth:`_standardised_seeds`)."""
        K, n = self.n_components, Z.shape[0]
        p = w / w.sum()
        positive = int(np.sum(w > 0))
        if kind == "random_from_data":
            seeds = rng.choice(n, size=K, replace=positive < K, p=p)
            centers = Z[seeds]
        else:
            centers = np.empty((K, Z.shape[1]))
            centers[0] = Z[rng.choice(n, p=p)]
            d2 = ((Z - centers[0]) ** 2).sum(axis=1)
            for k in range(1, K):
                mass = w * d2
                q = mass / mass.sum() if mass.sum() > 0 else p
                centers[k] = Z[rng.choice(n, p=q)]
                d2 = np.minimum(d2, ((Z - centers[k]) ** 2).sum(axis=1))
        dist = ((Z[:, None, :] - centers[None]) ** 2).sum(axis=2)
        resp = np.zeros((n, K))
        resp[np.arange(n), dist.argmin(axis=1)] = 1.0
        return resp

    def _apply_init_arrays(self, params: LatentParams) -> LatentParams:
        log_w = params.log_weights
        wi = self._checked_weights_init()
        if wi is not None:
            log_w = np.log(wi)
        blocks = list(params.blocks)
        if self.means_init is not None or self.covariances_init is not None:
            g = [i for i, (m, _) in enumerate(self._blocks) if "means_init" in m.init_options]
            if len(g) != 1:
                raise ValueError("means_init / covariances_init need one Gaussian block")
            given = {"means_init": self.means_init, "covariances_init": self.covariances_init}
            blocks[g[0]] = self._blocks[g[0]][0].init_from(blocks[g[0]], given)
        if self.probs_init is not None:
            given = self._probs_init_by_column()
            for b, (m, cols) in enumerate(self._blocks):
                if "probs_init" in m.init_options:
                    probs = [given[int(j)] for j in cols]
                    blocks[b] = m.init_from(blocks[b], {"probs_init": probs})
        return LatentParams(log_w, tuple(blocks))

    def _column_index(self, c: Any, where: str) -> int:
        """The position of column ``c`` (a name, or a 0-based position)."""
        names, D = getattr(self, "_columns", None), self.n_features_in_
        if isinstance(c, int | np.integer) and not isinstance(c, bool):
            if not 0 <= int(c) < D:
                raise ValueError(f"{where}: column {int(c)} out of range")
            return int(c)
        if names is not None and str(c) in names:
            return names.index(str(c))
        raise ValueError(f"{where}: no column {c!r}")

    def _probs_init_by_column(self) -> dict[int, np.ndarray]:
        """``probs_init`` checked: {column position: (K, R_j) probabilities}."""
        K = self.n_components
        coded = {
            int(j): r
            for m, cols in self._blocks
            if (counts := m.answer_counts()) is not None
            for j, r in zip(cols, counts, strict=True)
        }
        if not coded:
            raise ValueError("probs_init: the model has no categorical or binary column")
        spec = self.probs_init
        if isinstance(spec, dict):
            given = {self._column_index(c, "probs_init"): v for c, v in spec.items()}
        else:
            items = list(spec)
            if len(items) != len(coded):
                raise ValueError(f"probs_init: expected {len(coded)} arrays (one per "
                                 f"categorical/binary column), got {len(items)}")  # fmt: skip
            given = dict(zip(sorted(coded), items, strict=True))
        out = {}
        for j, r in coded.items():
            if j not in given:
                raise ValueError(f"probs_init: no probabilities for column {self._name(j)!r}")
            out[j] = checked_answer_probs(given[j], f"probs_init[{self._name(j)!r}]", K, r)
        extra = sorted(set(given) - set(coded))
        if extra:
            raise ValueError(f"probs_init: column {self._name(extra[0])!r} is not categorical")
        return out

    def _m_step(self, stats: LatentStats, params: LatentParams) -> LatentParams:
        log_w = log_shares(stats.nk, stats.n)
        blocks = tuple(m.m_step(s) for (m, _), s in zip(self._blocks, stats.blocks, strict=True))
        return LatentParams(log_w, blocks)

    def _log_prior(self, params: LatentParams) -> float:
        return float(
            sum(m.log_prior(p) for (m, _), p in zip(self._blocks, params.blocks, strict=True))
        )

    def _n_parameters(self) -> int:
        K = self.n_components
        return (K - 1) + sum(m.n_parameters(K) for m, _ in self._blocks)

    def _to_unconstrained(self, params: LatentParams) -> np.ndarray:
        lw = params.log_weights
        parts = [lw - lw.sum() / len(lw)]  # the mean, without np.mean's overhead
        parts += [m.to_unconstrained(p) for (m, _), p in zip(self._blocks, params.blocks,
                                                               strict=True)]  # fmt: skip
        return np.concatenate(parts)

    def _from_unconstrained(self, vector: np.ndarray, like: LatentParams) -> LatentParams:
        K = len(like.log_weights)
        lw = log_normalised(vector[:K])
        at = K
        blocks = []
        for (m, _), p in zip(self._blocks, like.blocks, strict=True):
            size = m.unconstrained_size(p)
            blocks.append(m.from_unconstrained(vector[at : at + size], p))
            at += size
        return LatentParams(lw, tuple(blocks))

    # -- the proper-maxima rule ----------------------------------------------------------
    def _degenerate_classes(self, params: LatentParams, sizes: np.ndarray) -> np.ndarray:
        bad = np.zeros(len(sizes), dtype=bool)
        for (m, _), p in zip(self._blocks, params.blocks, strict=True):
            bad |= m.degenerate(p, sizes)
        return bad

    def _run_em(self, stats_fn: Any, params: Any, ops: Any = None, tol: Any = None) -> EMRun:
        """The base's EM run; then the proper-maxima rule. The E-steps of the last few
        parameter values are kept (the rule's class sizes are those of the run's end), and
        the run holds BLAS to :data:`EM_BLAS_THREADS` threads (restored after) unless its
        caller holds that limit already (:meth:`_run_starts`)."""
        recent: list[tuple[Any, Any]] = []  # (params, stats): held, so ``is`` is safe

        def memo(p: Any) -> Any:
            for q, s in recent:
                if q is p:
                    return s
            s = stats_fn(p)
            recent[:] = [(p, s), *recent[:2]]
            return s

        held = getattr(self, "_blas_held", False)  # the caller holds the limit already
        with _blas_threads(None if held else EM_BLAS_THREADS):
            run = super()._run_em(memo, params, ops, tol)
            marks = getattr(self, "_marks", None)
            if marks is None or ops is not None or not self.proper_maxima:
                return run
            if self._degenerate_classes(run.params, memo(run.params).nk).any():
                marks[id(run.params)] = run
                return run._replace(lower_bound=-np.inf)
        return run

    def _run_starts(self, fit_data: FitData, starts: list[Any]) -> list[EMRun]:
        """One EM run per start, in order: the first alone, then the others (and later
        the start search's screening runs) on one thread per core when an E-step takes at
        least :data:`CONCURRENT_MIN_SECONDS` (``fit_data.concurrent``: the backend allows
        threads)."""
        self._threaded = False
        with self._blas_limit():
            if not fit_data.concurrent or self.n_components == 1 or len(starts) < 3:
                return super()._run_starts(fit_data, starts)
            first = self._run_em(fit_data.stats, starts[0])
            seconds = _seconds_per_call(fit_data.stats, first.params)
            self._threaded = seconds >= CONCURRENT_MIN_SECONDS
            return [first, *super()._run_starts(fit_data, starts[1:])]

    def _start_threads(self, fit_data: FitData) -> int:
        return super()._start_threads(fit_data) if getattr(self, "_threaded", False) else 1

    @contextlib.contextmanager
    def _blas_limit(self) -> Iterator[None]:
        """BLAS held to :data:`EM_BLAS_THREADS` threads once around many runs (their own
        limits left out): threads taking and giving it back in turn would restore each
        other's settings."""
        with _blas_threads(EM_BLAS_THREADS):
            self._blas_held = True
            try:
                yield
            finally:
                self._blas_held = False

    def _refine(self, run: EMRun, fit_data: FitData, rng: np.random.RandomState) -> EMRun:
        marks = self._marks or {}
        if id(run.params) in marks:  # every start degenerate: the best of them, flagged
            run = max(marks.values(), key=lambda r: r.lower_bound)
            warnings.warn(
                "every start ended in a degenerate (collapsed) class; the best of them is "
                "reported. Increase reg_covar, n_init, or use a shared covariance.",
                UserWarning,
                stacklevel=4,
            )
        return run

    def _forget_runs(self, runs: list[EMRun]) -> None:
        """The start search's runs screened ahead and not taken leave no set-aside mark."""
        marks = self._marks or {}
        for r in runs:
            marks.pop(id(r.params), None)

    def _record_runs(self, best: EMRun, runs: list[EMRun]) -> None:
        super()._record_runs(best, runs)
        marks = self._marks or {}
        bad = np.array([id(r.params) in marks for r in runs], dtype=bool)
        self.init_degenerate_ = bad
        self.init_lower_bounds_ = np.array(
            [marks[id(r.params)].lower_bound if b else r.lower_bound
             for r, b in zip(runs, bad, strict=True)]
        )  # fmt: skip
        self.n_degenerate_starts_ = int(bad.sum())
        self.proper_maxima_note_ = (
            f"{self.n_degenerate_starts_} of {len(runs)} starts ended in a collapsed class "
            "and were set aside"
            if self.n_degenerate_starts_
            else None
        )

    def n_starts_at_best(self, tol: float = 1e-6) -> int:
        """How many proper (not set-aside) starts reached the best objective within tol."""
        check_is_fitted(self, "init_lower_bounds_")
        proper = self.init_lower_bounds_[~self.init_degenerate_]
        if not len(proper):
            return 0
        return int(np.sum(proper >= proper.max() - tol))

    # -- fitted state --------------------------------------------------------------------
    def _get_fitted(self) -> LatentParams:
        return self._params

    def _set_fitted(self, params: LatentParams) -> None:
        self._params = params
        w = np.exp(params.log_weights)
        self.weights_ = w / w.sum()
        K = len(w)
        means = np.full((K, self.n_features_in_), np.nan)
        self.covariances_ = None
        self.rates_ = None
        self.categories_, self.probs_ = {}, {}
        for (m, cols), p in zip(self._blocks, params.blocks, strict=True):
            means[:, cols] = m.class_means(p)
            names = [self._name(int(j)) for j in cols]
            for key, value in m.fitted_attributes(p, K, names).items():
                if isinstance(value, dict) and isinstance(getattr(self, key, None), dict):
                    getattr(self, key).update(value)
                else:
                    setattr(self, key, value)
        self.means_ = means

    def _permute(self, perm: np.ndarray) -> None:
        p = self._params
        blocks = tuple(m.permute(b, perm) for (m, _), b in zip(self._blocks, p.blocks,
                                                               strict=True))  # fmt: skip
        self._set_fitted(LatentParams(p.log_weights[perm], blocks))

    def _log_resp(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        if is_dask_collection(X):  # lazy dask arrays (emnet.mixture.backends.family_dask)
            from emnet.mixture.backends.family_dask import estimate

            return estimate(self, X, _VALUES)
        A = self._as_array(X, reset=False)
        chunks = [m.prepare(self._block_input(A, cols, m)) for m, cols in self._blocks]
        if getattr(self, "backend", "numpy") == "torch":
            from emnet.mixture.backends.family_torch import TorchFamily

            blocks = [m for m, _ in self._blocks]
            return TorchFamily(blocks, chunks, None, self.device, self.dtype).log_resp(self._params)
        ll = self._joint_log_lik(self._params, chunks)
        log_p = logsumexp(ll, axis=1)
        return ll - log_p[:, None], log_p

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> LatentClassModel:
        """One stepwise (online) EM update on the batch X (running statistics, then every
        block's M-step; :mod:`emnet.mixture.backends.family_online`). The first call on an
        unfitted model learns the blocks' constants and the start from its batch."""
        from emnet.mixture.backends.family_online import partial_fit_step

        return partial_fit_step(self, X, sample_weight)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` rows: (X (n, D), class labels)."""
        check_is_fitted(self, "weights_")
        check_int("n_samples", n_samples, 1)
        rng = check_random_state(self.random_state)
        z = np.repeat(np.arange(self.n_components), rng.multinomial(n_samples, self.weights_))
        parts = [m.sample(p, z, rng) for (m, _), p in zip(self._blocks, self._params.blocks,
                                                          strict=True)]  # fmt: skip
        numeric = all(np.asarray(part).dtype.kind in "biuf" for part in parts)
        X = np.empty((n_samples, self.n_features_in_), dtype=np.float64 if numeric else object)
        for (_, cols), part in zip(self._blocks, parts, strict=True):
            X[:, cols] = part
        return X, z

    # -- saving (npz + JSON through the base's save/load; never pickle) ------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._state_arrays()
        arrays["weights_"] = np.asarray(self.weights_, dtype=np.float64)
        if hasattr(self, "init_degenerate_"):
            arrays["init_degenerate_"] = self.init_degenerate_.astype(np.float64)
        for (m, cols), p in zip(self._blocks, self._params.blocks, strict=True):
            for key, value in m.to_arrays(p).items():
                arrays[f"{m.name}_{key}"] = np.asarray(value, dtype=np.float64)
            arrays[f"{m.name}_columns"] = cols.astype(np.float64)
            for key, value in m.state_arrays().items():
                arrays[f"{m.name}_{key}"] = value
        return arrays

    def _state_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"types": [m.name for m, _ in self._blocks]}
        saved = ((m.name, m.state_json()) for m, _ in self._blocks)
        coded = {name: value for name, value in saved if value is not None}
        if coded:
            meta["categories"] = coded
        return meta

    def _restore_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        from emnet.mixture.persistence import check_weights_array

        K, D = self.n_components, self.n_features_in_
        weights = check_weights_array(arrays.pop("weights_", None), K)
        types = state.get("types")
        if not isinstance(types, list) or not types or not set(types) <= set(TYPES):
            raise ValueError(f"the measurement types {types!r} are not a list of {TYPES}")

        def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
            a = arrays.pop(name, None)
            if a is None or a.dtype.kind != "f" or a.shape != shape or not np.isfinite(a).all():
                raise ValueError(f"{name} must be a finite float array of shape {shape}")
            return a.astype(np.float64)

        blocks, params, seen = [], [], []
        for kind in types:
            cols_f = arrays.pop(f"{kind}_columns", None)
            if cols_f is None or cols_f.ndim != 1 or not len(cols_f):
                raise ValueError(f"{kind}_columns is missing")
            cols = cols_f.astype(np.int64)
            if np.any(cols != cols_f) or np.any((cols < 0) | (cols >= D)):
                raise ValueError(f"{kind}_columns must hold column positions below {D}")
            seen.extend(cols.tolist())
            d = len(cols)
            m = self._new_block(kind)
            p = m.load_state(
                lambda key, shape, kind=kind: take(f"{kind}_{key}", shape),
                K, d, state.get("categories"),
            )  # fmt: skip
            blocks.append((m, cols))
            params.append(p)
        if sorted(seen) != list(range(D)):
            raise ValueError(f"the blocks' columns must cover the {D} columns once each")
        if "init_degenerate_" in arrays:
            self.init_degenerate_ = arrays.pop("init_degenerate_") > 0.5
            self.n_degenerate_starts_ = int(self.init_degenerate_.sum())
        self._blocks = blocks
        names = getattr(self, "feature_names_in_", None)
        self._columns = None if names is None else [str(c) for c in names]
        for m, cols in blocks:
            m.labels = [str(self._name(int(j))) for j in cols]
        self._describe_blocks()
        self._set_fitted(LatentParams(np.log(np.maximum(weights, 1e-300)), tuple(params)))

    # -- latent class statistics through the contract (emnet.mixture.inference.family_stats) ------
    def _family_view(self, X: Any, sample_weight: Any = None) -> Any:
        """The fitted model and data X as :mod:`emnet.mixture.inference.family_stats` takes them."""
        from emnet.mixture.inference.family_stats import FamilyView

        check_is_fitted(self, "weights_")
        A = self._as_array(X, reset=False)
        w = check_weights(sample_weight, A.shape[0])
        return FamilyView(
            [m for m, _ in self._blocks],
            [m.prepare(self._block_input(A, cols, m)) for m, cols in self._blocks],
            self._params.log_weights,
            self._params.blocks,
            np.ones(A.shape[0]) if w is None else w,
            [[str(self._name(j)) for j in cols] for _, cols in self._blocks],
            self._to_unconstrained,
            self._from_unconstrained,
            self._params,
        )

    def _posterior(self, X: Any, sample_weight: Any) -> tuple[np.ndarray, np.ndarray]:
        eta = self.predict_proba(X)
        w = check_weights(sample_weight, eta.shape[0])
        return eta, np.ones(eta.shape[0]) if w is None else w

    def standard_errors(
        self, X: Any, method: str = "hessian", sample_weight: Any = None, covariates: Any = None
    ) -> Any:
        """Standard errors of ``weights_`` and of every block's parameters.

        ``method="hessian"``: the observed information (of the log-likelihood, in the
        unconstrained parametrisation); ``"opg"``: the outer product of the per-row
        scores. Mapped to the natural parameters (shares; Gaussian means and covariances
        in the structure's compact form; Poisson rates) by the delta method. A class
        share on the boundary (under 0.1 rows) is held with its class's parameters:
        standard error 0, flagged; none is NaN (:mod:`emnet.mixture.inference.family_stats`).
        Returns a ``FamilyStandardErrors``: ``.weights``, ``.blocks[b]`` keyed as the
        block's arrays (``.block("gaussian")["means"]``), ``.boundary``."""
        from emnet.mixture.inference.family_stats import standard_errors

        if method not in ("hessian", "opg"):
            raise ValueError(f"method: expected 'hessian' or 'opg', got {method!r}")
        if hasattr(self, "coef_"):  # a latent class regression: the shares are β's
            from emnet.mixture.covariates.family_regression import covariate_standard_errors

            if covariates is None:
                raise ValueError(
                    "covariates: this model was fitted with covariates; pass "
                    "standard_errors(X, covariates=Z)"
                )
            if method != "hessian":
                raise ValueError("method: a model with covariates has 'hessian' errors only")
            return covariate_standard_errors(self, X, covariates, sample_weight)
        if covariates is not None:
            raise ValueError("covariates: this model was fitted without covariates")
        return standard_errors(self._family_view(X, sample_weight), method)

    def goodness_of_fit(self, X: Any, sample_weight: Any = None, **kwargs: Any) -> Any:
        """Not defined here: G² and X² compare a table of response patterns, which
        continuous (Gaussian) and count (Poisson) items do not have."""
        raise ValueError(
            "goodness_of_fit: G2 and X2 are defined for categorical items only (a table "
            "of response patterns); compare models by BIC or the BLRT instead"
        )

    def _summary(self, X: Any, feature_names: Any, sample_weight: Any, covariates: Any) -> Any:
        """``FamilySummary``: class shares, each block's class-specific parameters with
        standard errors, LL, parameters, AIC, BIC, SABIC, CAIC, entropy R², the
        classification table, starts at the best, and the proper-maxima note."""
        from emnet.mixture.inference.summary import make_family_summary

        if covariates is not None or hasattr(self, "coef_"):
            from emnet.mixture.covariates.family_regression import covariate_family_summary

            return covariate_family_summary(self, X, feature_names, sample_weight, covariates)
        return make_family_summary(
            self, X, feature_names=feature_names, sample_weight=sample_weight
        )

    @staticmethod
    def _make_params(log_weights: np.ndarray, blocks: tuple[Any, ...]) -> LatentParams:
        """The model's parameter record (for modules the model imports)."""
        return LatentParams(log_weights, blocks)

    def _profile_items(self, standard_errors: Any = None) -> list[Any]:
        """Every column's panel of the profile plot, from its block (the contract's
        ``profile_items``), in the blocks' order; ``standard_errors`` from
        :meth:`standard_errors` (or None)."""
        check_is_fitted(self, "weights_")
        items = []
        for b, ((m, cols), p) in enumerate(zip(self._blocks, self._params.blocks, strict=True)):
            se = None if standard_errors is None else standard_errors.blocks[b]
            items += m.profile_items(p, se, [str(self._name(int(j))) for j in cols])
        return items

    def _proper_run(self, run: EMRun, fit_data: FitData) -> bool:
        """The proper-maxima rule for a run from an extra start (the BLRT's)."""
        if not self.proper_maxima:
            return True
        return not self._degenerate_classes(run.params, fit_data.stats(run.params).nk).any()

    def _split_starts(self, X: Any, rng: np.random.Generator) -> list[LatentParams]:
        """Starts with K + 1 classes from this fit on X (the BLRT's; :meth:`_splits`)."""
        A = self._as_array(X, reset=False)
        log_resp, _ = self._log_resp(A)
        chunks = [m.prepare(self._block_input(A, cols, m)) for m, cols in self._blocks]
        Z = self._standardised_seeds(A, chunks)
        return self._splits(self._params, np.exp(log_resp), chunks, Z, None, rng)

    def _standardised_seeds(self, A: np.ndarray, chunks: list[Any]) -> np.ndarray:
        """The seed matrix (:meth:`_seed_matrix`) standardised, missing entries at 0."""
        S = self._seed_matrix(A, chunks)  # floats: numeric columns and answer indicators
        mean = np.nanmean(S, axis=0)
        sd = np.nanstd(S, axis=0)
        return (np.where(np.isnan(S), mean, S) - mean) / np.where(sd > 0, sd, 1.0)

    def _splits(
        self,
        params: LatentParams,
        eta: np.ndarray,
        chunks: list[Any],
        Z: np.ndarray,
        sample_weight: np.ndarray | None,
        rng: np.random.Generator,
    ) -> list[LatentParams]:
        """Starts with K + 1 classes from K-class ``params`` and their posteriors ``eta``
        (n, K): for each class c, its posterior mass split in two along a random direction
        of the standardised data Z (weights s_i, 1 − s_i with s_i = (1 + tanh(2 t_i)) / 2,
        t_i the row's projection standardised over the class's weighted mass), and one
        more split of the largest class with s_i = 1/2 + 1e-3 tanh(t_i) only, whose
        likelihood is the fit's to about 1e-6;
        each start is the M-step of every block from that partition (the contract's
        ``sufficient_stats`` and ``m_step``, with the rows' weights), so no start depends
        on a block's type."""
        n, K = eta.shape
        w = np.ones(n) if sample_weight is None else sample_weight
        plan = [(c, False) for c in range(K)] + [(int(np.argmax(params.log_weights)), True)]
        starts = []
        for c, tiny in plan:
            t = Z @ rng.standard_normal(Z.shape[1])
            mass_c = eta[:, c] * w
            mass = mass_c.sum()
            center = (mass_c @ t) / mass if mass > 0 else 0.0
            spread = np.sqrt((mass_c @ (t - center) ** 2) / mass) if mass > 0 else 1.0
            t = (t - center) / (spread if spread > 0 else 1.0)
            s = 0.5 + 1e-3 * np.tanh(t) if tiny else 0.5 * (1.0 + np.tanh(2.0 * t))
            resp = np.column_stack([eta, eta[:, c] * (1.0 - s)])
            resp[:, c] = eta[:, c] * s
            perm = np.append(np.arange(K), c)
            blocks = tuple(
                m.m_step(m.sufficient_stats(m.permute(p, perm), chunk, resp, sample_weight))
                for (m, _), p, chunk in zip(self._blocks, params.blocks, chunks, strict=True)
            )
            nk = w @ resp + 10.0 * np.finfo(np.float64).eps
            starts.append(LatentParams(np.log(nk / nk.sum()), blocks))
        return starts

    def _grown_starts(
        self, fit_data: FitData, rng: np.random.RandomState
    ) -> tuple[list[LatentParams], int]:
        """K-class starts grown from one class (the start search's first extra starts),
        and the E-steps spent growing them.

        From the one-class fit, each level k = 1, ..., K − 2 runs the split starts of
        :meth:`_splits` (:data:`GROWTH_ROUNDS` random directions per class) to the search's
        loose tolerance and keeps the best proper run; the split starts of the K − 1 level
        are returned. Classes found one at a time, each where the data ask for one more,
        reach maxima that partitions drawn at once rarely do (breast cancer, VVV, K = 4
        to 6: above mclust's hierarchical starts in some seeds; see docs/benchmarks.md).
        The levels run in memory on ``fit_data.data``: the rows themselves, or on Dask
        input the start sample (:mod:`emnet.mixture.backends.family_dask`); a level's runs
        take the starts' threads when the fit's starts did (:meth:`_run_starts`). None (an
        empty list) for one class, a given start, or a level whose runs all collapsed."""
        K, A, w = self.n_components, fit_data.data, fit_data.sample_weight
        if K < 2 or not isinstance(A, np.ndarray) or self._start_is_given():
            return [], 0
        chunks = self._chunks_of(A)
        stats = _stats_function(self._blocks, chunks, w, A.shape[0])
        level_data = FitData(A, w, stats, concurrent=True)  # the starts' threads, if any
        Z = self._standardised_seeds(A, chunks)
        gen = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
        one = np.ones((A.shape[0], 1))
        blocks = tuple(m.initialize(c, one, w) for (m, _), c in zip(self._blocks, chunks,
                                                                     strict=True))  # fmt: skip
        params = LatentParams(np.zeros(1), blocks)
        spent = 0
        saved, self._marks = getattr(self, "_marks", None), {}  # not this fit's starts
        try:
            for k in range(1, K):
                eta = self._joint_log_lik(params, chunks)
                eta = np.exp(eta - logsumexp(eta, axis=1, keepdims=True))
                starts = [
                    start
                    for _ in range(GROWTH_ROUNDS)
                    for start in self._splits(params, eta, chunks, Z, w, gen)
                ]
                if k == K - 1:
                    return starts, spent
                runs = self._runs_of(level_data, starts, tol=SCREEN_TOL)
                spent += sum(r.n_em_steps for r in runs)
                best = max(runs, key=lambda r: r.lower_bound)
                if not np.isfinite(best.lower_bound):
                    return [], spent
                params = best.params
        finally:
            self._marks = saved
        return [], spent

    # -- latent class regression (emnet.mixture.covariates.family_regression) ----------------------
    def _estimate(self, X: Any, covariates: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(log η, log p(x | z)) given the covariates for a model fitted with them."""
        check_is_fitted(self, "weights_")
        if hasattr(self, "coef_") or covariates is not None:
            from emnet.mixture.covariates.family_regression import log_resp

            return log_resp(self, X, covariates)
        return self._log_resp(X)


def _joint_log_lik(blocks: list[Any], p: LatentParams, chunks: list[Any]) -> np.ndarray:
    """(n, K): log π_k + Σ_b log f_b(x_ib | k) over the (measurement, columns) ``blocks``,
    a fresh array."""
    ll = None
    for (m, _), pb, chunk in zip(blocks, p.blocks, chunks, strict=True):
        term = m.log_likelihood(pb, chunk)
        if ll is None:
            ll = term + p.log_weights
        else:
            ll += term
    return np.zeros((0, len(p.log_weights))) if ll is None else ll


def _stats_function(blocks: list[Any], chunks: list[Any], w: np.ndarray | None, n: int) -> Any:
    """The in-memory E-step over the n rows' prepared ``chunks``: params →
    :class:`LatentStats`."""
    total = float(n if w is None else w.sum())
    row_w = np.ones(n) if w is None else w

    def stats(p: LatentParams) -> LatentStats:
        resp = _joint_log_lik(blocks, p, chunks)  # a fresh array: normalised in place
        loglik, nk = posterior_rows(resp, row_w)
        parts = tuple(
            m.sufficient_stats(pb, chunk, resp, w)
            for (m, _), pb, chunk in zip(blocks, p.blocks, chunks, strict=True)
        )
        return LatentStats(total, loglik, nk, parts)

    return stats


def _seconds_per_call(fn: Any, arg: Any, repeat: int = 2) -> float:
    """The fastest of ``repeat`` timed calls fn(arg) (one slow call, e.g. the machine busy
    for a moment, does not decide)."""
    best = math.inf
    for _ in range(repeat):
        began = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - began)
    return best


def _frame_values(X: Any) -> tuple[np.ndarray, list[str]]:
    """(values, per column "integer" / "number" / "bool" / "text") of a DataFrame
    (``_as_array``): "integer" for integer dtypes (numpy's and pandas' nullable ones),
    "number" for the other numeric ones."""
    cols = [X.iloc[:, j] for j in range(X.shape[1])]
    kinds = []
    for c in cols:
        if isinstance(c.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(c.dtype):
            kinds.append("text")
        elif pd.api.types.is_bool_dtype(c.dtype):
            kinds.append("bool")
        else:
            kinds.append("integer" if pd.api.types.is_integer_dtype(c.dtype) else "number")
    try:
        if "text" not in kinds:
            return X.to_numpy(dtype=np.float64, na_value=np.nan), kinds
        A = np.empty(X.shape, dtype=object)
        for j, c in enumerate(cols):
            if kinds[j] == "text":
                A[:, j] = c.to_numpy(dtype=object)
            else:
                A[:, j] = c.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValueError("X: a numeric column holds values that are not numbers") from None
    return A, kinds


def _array_values(X: Any) -> tuple[np.ndarray, list[str]]:
    """(values, per column kinds) of an array or list of rows (``_as_array``): numbers
    and bools as floats; a column with text (or other non-numbers) as it is. Kinds as in
    :func:`_frame_values` ("integer": an integer array, or a column of Python or numpy
    integers only)."""
    try:
        raw = np.asarray(X)
    except ValueError:
        raise ValueError("X: expected a 2-D table (rows of equal length)") from None
    if raw.dtype.kind in "biuf":
        kind = {"b": "bool", "i": "integer", "u": "integer"}.get(raw.dtype.kind, "number")
        width = raw.shape[1] if raw.ndim == 2 else 0
        return raw.astype(np.float64), [kind] * width
    A = np.asarray(raw, dtype=object)
    if A.ndim != 2:
        return A, []
    kinds = []
    for j in range(A.shape[1]):
        col = A[:, j]
        seen = [v for v in col if not pd.isna(v)]
        if all(isinstance(v, bool | np.bool_) for v in seen) and seen:
            kinds.append("bool")
        elif all(isinstance(v, int | float | np.number) and not isinstance(v, str) for v in seen):
            whole = all(isinstance(v, int | np.integer) for v in seen) and seen
            kinds.append("integer" if whole else "number")
        else:
            kinds.append("text")
            continue
        A[:, j] = np.array([np.nan if pd.isna(v) else float(v) for v in col], dtype=np.float64)
    if "text" not in kinds:
        return A.astype(np.float64), kinds
    return A, kinds


def _inferred_type(column: np.ndarray, kind: str) -> str:
    """One column's type under ``measurement=None`` (LatentClassModel's docstring): a
    float column of whole numbers with many values (wine's magnesium in mg, a scale
    score) stays Gaussian; only an integer column is read as counts."""
    if kind == "text":
        return "categorical"
    if kind == "bool":
        return "binary"
    x = np.asarray(column, dtype=np.float64)
    values = np.unique(x[~np.isnan(x)])
    if np.all((values == 0) | (values == 1)):
        return "binary"
    if np.all(values == np.round(values)):
        if len(values) <= MAX_CATEGORICAL_VALUES:
            return "categorical"
        if kind == "integer" and values[0] >= 0:
            return "poisson"
    return "gaussian"


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def _blas_threads(limit: int | None) -> Iterator[None]:
    """BLAS held to ``limit`` threads inside the block (None: as it is); restored after."""
    if limit is None:
        yield
        return
    with _blas_controller().limit(limits=limit, user_api="blas"):
        yield


_VALUES = (_frame_values, _array_values)
"""The model's readers of a DataFrame's and an array's values (for the Dask backend)."""
