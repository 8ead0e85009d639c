"""CategoricalMixture: latent class analysis with polytomous items, by (MAP-)EM (SPEC §1b).

The data are coded once per fit (``emnet.mixture.core.encoding``): each item's categories are
learned from the data, answers become small integer codes (−1 for missing), and the rows
are compressed to their distinct response patterns with summed weights. Every EM step is
then one compiled pass over the patterns (``emnet.mixture.kernels.codes``; on many distinct
patterns, over blocks of items read as one code: ``emnet.mixture.kernels.blocked``). The loop, restarts,
SQUAREM acceleration and convergence are the shared ones of ``emnet.mixture.core.em``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from emnet.mixture.backends.family_dask import is_dask_collection
from emnet.mixture.core.coded import CodedLatentClassMixture
from emnet.mixture.core.em import FitData
from emnet.mixture.core.encoding import Encoding, encode, learn_encoding
from emnet.mixture.core.validation import check_int, check_weights, checked_answer_probs
from emnet.mixture.kernels.blocked import categorical_blocked_step, maybe_blocks
from emnet.mixture.kernels.codes import (
    FusedStep,
    categorical_em_step,
    categorical_m_step,
    code_log_resp,
    compress_rows,
    floor_probs,
    from_unconstrained,
    offsets_of,
    to_unconstrained,
)

INIT_PARAMS = ("random", "random_from_data")


class CategoricalParams(NamedTuple):
    """The parameters EM iterates, in logs: log π (K,) and log θ (M, K), M = Σ_j R_j."""

    log_weights: np.ndarray
    log_table: np.ndarray


class CategoricalMixture(CodedLatentClassMixture):
    """Latent class model: a mixture of K products of categorical distributions.

    P(x) = Σ_k π_k Π_j θ_{k, j, x_j} (missing items left out of the product). With
    ``prob_concentration = weight_concentration = 1`` EM maximises the likelihood;
    otherwise the posterior under a symmetric Dirichlet prior on every θ_kj and on π.

    Parameters
    ----------
    n_components : number of latent classes K.
    tol : stop when the objective (mean penalised log-likelihood per unit of weight)
        changes by less in one iteration (one SQUAREM cycle with ``accelerate``).
    max_iter : iterations per start (0 evaluates the start only).
    n_init : random starts; the best objective is kept (``init_lower_bounds_`` has all).
    init_params : 'random' (θ_kj drawn from a flat Dirichlet, equal weights; poLCA's way)
        or 'random_from_data' (each class starts at a random row, smoothed halfway towards
        the items' marginal distribution).
    weights_init : (K,) positive initial weights summing to 1, or None.
    probs_init : a list with one (K, R_j) array of initial probabilities per item (rows
        summing to 1, in the order of ``categories_``), or None.
    prob_concentration, weight_concentration : Dirichlet priors, >= 1 (1 = none).
    accelerate : SQUAREM acceleration (the objective still never decreases).
    search_budget : after the ``n_init`` starts, more random starts are screened at a
        loose tolerance (1e-6) and only those that can still reach the best objective are
        run to convergence (``emnet.mixture.core.em``). They may spend up to this share of
        the E-steps the ``n_init`` starts took, times the share of those starts that
        missed the best objective: data whose starts agree cost nothing extra, flat
        multi-modal likelihoods (K = 4 on five binary items) get up to 5·n_init more
        starts. 0 turns the search off. Not run for covariate fits.
    random_state, warm_start, verbose : as in scikit-learn.

    Attributes
    ----------
    categories_ : list of arrays, the answers of each item in code order (learned in fit:
        numbers and bools sorted, strings sorted, pandas categoricals in their own order;
        only answers that occur). ``n_categories_`` (J,).
    weights_ (K,), probs_ : list of (K, R_j) arrays, each row summing to 1.
    history_, lower_bound_, n_iter_, n_em_steps_, converged_, init_lower_bounds_ (every
    start run to convergence: the ``n_init``, then the search's), n_screened_ (extra
    starts the search screened),
    n_features_in_, feature_names_in_ (DataFrame input).

    A Dask array or DataFrame passed to ``fit`` / ``predict`` runs on the cluster
    (:mod:`emnet.mixture.backends.categorical_dask`); ``partial_fit`` is stepwise EM
    (:mod:`emnet.mixture.backends.categorical_online`).

    Input: a 2-D array, list of rows or DataFrame of answers (numbers, strings, bools,
    pandas categoricals); NaN, None and pd.NA mark a missing answer (marginalised). A row
    must have at least one answer. An answer at ``predict`` time that ``fit`` never saw is
    a ValueError naming the item and the value.
    """

    _takes_text = True

    _saved_array_names = ("weights_", "log_table_")

    _input_tags = ("allow_nan", "categorical", "string")

    def __init__(
        self,
        n_components: int = 1,
        *,
        tol: float = 1e-10,
        max_iter: int = 5000,
        n_init: int = 1,
        init_params: str = "random",
        weights_init: Any = None,
        probs_init: Any = None,
        prob_concentration: float = 1.0,
        weight_concentration: float = 1.0,
        accelerate: bool = True,
        search_budget: float = 0.5,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
    ) -> None:
        self._store_params(locals())

    # -- checks --------------------------------------------------------------------------
    def _check_parameters(self) -> None:
        self._check_em_parameters(
            INIT_PARAMS,
            priors=("prob_concentration", "weight_concentration"),
            init_arrays=("weights_init", "probs_init"),
        )

    @property
    def _encoding(self) -> Encoding:
        return Encoding(list(self.categories_), getattr(self, "feature_names_in_", None))

    def _coded(self, X: Any, *, reset: bool) -> np.ndarray:
        if reset:
            encoding = learn_encoding(X)
            self.categories_ = encoding.categories
            self.n_categories_ = np.array([len(c) for c in encoding.categories])
            self._item_offsets = offsets_of(self.n_categories_)
            self.n_features_in_ = len(encoding.categories)
            if encoding.feature_names is not None:
                self.feature_names_in_ = np.asarray(encoding.feature_names, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        check_is_fitted(self, "categories_")
        return encode(X, self._encoding)

    # -- fitting -------------------------------------------------------------------------
    def _prepare_fit(self, X: Any, sample_weight: Any, *, reset: bool) -> FitData:
        if is_dask_collection(X):  # EM on the cluster: emnet.mixture.backends.categorical_dask
            from emnet.mixture.backends.categorical_dask import prepare_fit

            return prepare_fit(self, X, sample_weight, reset=reset)
        codes = self._coded(X, reset=reset)
        n = codes.shape[0]
        if reset and n < self.n_components:
            raise ValueError(f"n_components={self.n_components} must be <= n_samples={n}")
        w = check_weights(sample_weight, n)
        patterns, totals, _ = compress_rows(codes, w)
        keep = totals > 0
        patterns, totals = np.ascontiguousarray(patterns[keep]), totals[keep]
        has_missing = bool((patterns < 0).any())
        offsets = offsets_of(self.n_categories_)
        total = float(totals.sum())
        a, c = float(self.prob_concentration), float(self.weight_concentration)

        blocked = maybe_blocks(patterns, self.n_categories_)
        step = categorical_em_step if blocked is None else categorical_blocked_step
        rows = patterns if blocked is None else blocked

        def stats(p: CategoricalParams) -> FusedStep:
            loglik, log_w, log_t = step(
                rows, totals, offsets, p.log_weights, p.log_table, a, c, has_missing
            )
            return FusedStep(total, loglik, CategoricalParams(log_w, log_t))

        return FitData(codes, w, stats, None, concurrent=blocked is not None)

    def _initialize(
        self, codes: np.ndarray, sample_weight: np.ndarray | None, rng: np.random.RandomState
    ) -> CategoricalParams:
        K = self.n_components
        R = self.n_categories_
        offsets = offsets_of(R)
        weights = self._checked_weights_init()
        probs = self._checked_probs_init()
        if probs is None:
            if self.init_params == "random":
                probs = rng.gamma(1.0, size=(K, int(offsets[-1])))
                sums = np.add.reduceat(probs, offsets[:-1], axis=1)
                probs = probs / np.repeat(sums, R, axis=1)
            else:
                probs = self._rows_init(codes, sample_weight, rng, offsets)
        if weights is None:
            weights = np.full(K, 1.0 / K)
        table = floor_probs(probs, offsets).T
        return CategoricalParams(
            np.log(np.maximum(weights, 1e-300)), np.ascontiguousarray(np.log(table))
        )

    def _rows_init(
        self,
        codes: np.ndarray,
        sample_weight: np.ndarray | None,
        rng: np.random.RandomState,
        offsets: np.ndarray,
    ) -> np.ndarray:
        """Each class starts at one random row (∝ weight), halfway to the marginals."""
        K, n = self.n_components, codes.shape[0]
        w = np.ones(n) if sample_weight is None else sample_weight
        rows = (
            rng.choice(n, size=K, replace=False, p=w / w.sum())
            if np.sum(w > 0) >= K
            else (rng.choice(n, size=K, replace=False))
        )
        M = int(offsets[-1])
        marginal = np.zeros(M)
        for j in range(codes.shape[1]):
            seen = codes[:, j] >= 0
            counts = np.bincount(
                codes[seen, j], weights=w[seen], minlength=offsets[j + 1] - offsets[j]
            )
            marginal[offsets[j] : offsets[j + 1]] = (counts + 1.0) / (counts.sum() + len(counts))
        probs = np.tile(0.5 * marginal, (K, 1))
        for k, i in enumerate(rows):
            for j in range(codes.shape[1]):
                c = codes[i, j]
                if c >= 0:
                    probs[k, offsets[j] + c] += 0.5
                else:
                    probs[k, offsets[j] : offsets[j + 1]] *= 2.0
        return probs

    def _checked_probs_init(self) -> np.ndarray | None:
        if self.probs_init is None:
            return None
        K, R = self.n_components, self.n_categories_
        items = list(self.probs_init)
        if len(items) != len(R):
            raise ValueError(
                f"probs_init: expected {len(R)} arrays (one per item), got {len(items)}"
            )
        blocks = []
        for j, (block, r) in enumerate(zip(items, R, strict=True)):
            blocks.append(checked_answer_probs(block, f"probs_init[{j}]", K, r))
        return np.concatenate(blocks, axis=1)

    def _m_step(self, stats: FusedStep, params: CategoricalParams) -> CategoricalParams:
        return stats.next

    def _log_prior(self, params: CategoricalParams) -> float:
        total = 0.0
        if self.prob_concentration != 1.0:
            total += (self.prob_concentration - 1.0) * float(params.log_table.sum())
        if self.weight_concentration != 1.0:
            total += (self.weight_concentration - 1.0) * float(params.log_weights.sum())
        return total

    def _n_parameters(self) -> int:
        return (self.n_components - 1) + self.n_components * int(np.sum(self.n_categories_ - 1))

    def _to_unconstrained(self, params: CategoricalParams) -> np.ndarray:
        return to_unconstrained(params.log_weights, params.log_table, self._item_offsets)

    def _from_unconstrained(self, vector: np.ndarray, like: CategoricalParams) -> CategoricalParams:
        return CategoricalParams(
            *from_unconstrained(vector, self._item_offsets, len(like.log_weights))
        )

    # -- fitted state --------------------------------------------------------------------
    def _get_fitted(self) -> CategoricalParams:
        return CategoricalParams(np.log(np.maximum(self.weights_, 1e-300)), self.log_table_)

    def _set_fitted(self, params: CategoricalParams) -> None:
        w = np.exp(params.log_weights)
        self.weights_ = w / w.sum()
        self.log_table_ = params.log_table

    # -- coded form, for covariates (emnet.mixture.covariates.regression) --------------------------
    def _codes_for(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._coded(X, reset=False), self._item_offsets

    def _table_of(self, params: CategoricalParams) -> np.ndarray:
        return params.log_table

    def _table_m_step(self, stats: Any, prev_log_table: np.ndarray) -> np.ndarray:
        _, probs = categorical_m_step(
            stats, self.n_categories_, self._item_offsets, self.prob_concentration, 1.0,
            prev_probs=np.exp(prev_log_table).T,
        )  # fmt: skip
        return np.ascontiguousarray(np.log(probs).T)

    def _table_log_prior(self, log_table: np.ndarray) -> float:
        if self.prob_concentration == 1.0:
            return 0.0
        return (self.prob_concentration - 1.0) * float(log_table.sum())

    def _from_table(self, weights: np.ndarray, log_table: np.ndarray) -> CategoricalParams:
        return CategoricalParams(np.log(np.maximum(weights, 1e-300)), log_table)

    def _shares_of(self, params: CategoricalParams) -> np.ndarray:
        return np.exp(params.log_weights)

    def _answers(self) -> list[list[Any]]:
        return [list(np.asarray(c).tolist()) for c in self.categories_]

    def _answer_rows(self, full_offsets: np.ndarray) -> np.ndarray | None:
        rows = np.concatenate(
            [
                full_offsets[j] + np.asarray(c, dtype=np.int64)
                for j, c in enumerate(self.categories_)
            ]
        )
        return None if len(rows) == full_offsets[-1] else rows

    def _permute(self, perm: np.ndarray) -> None:
        self.weights_ = np.asarray(self.weights_)[perm]
        self.log_table_ = np.ascontiguousarray(self.log_table_[:, perm])

    @property
    def probs_(self) -> list[np.ndarray]:
        """Item-response probabilities: per item a (K, R_j) array, rows summing to 1."""
        check_is_fitted(self, "log_table_")
        table = np.exp(self.log_table_).T
        offsets = offsets_of(self.n_categories_)
        return [table[:, offsets[j] : offsets[j + 1]].copy() for j in range(len(offsets) - 1)]

    def _log_resp(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        if is_dask_collection(X):  # lazy dask arrays (emnet.mixture.backends.categorical_dask)
            from emnet.mixture.backends.categorical_dask import estimate

            return estimate(self, X)
        codes = self._coded(X, reset=False)
        offsets = offsets_of(self.n_categories_)
        return code_log_resp(codes, offsets, self.weights_, np.ascontiguousarray(self.log_table_))

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> CategoricalMixture:
        """One stepwise (online) EM update on the batch X (running statistics, then the
        MAP M-step; :mod:`emnet.mixture.backends.categorical_online`). The first call on
        an unfitted model learns the answers and the start from its batch."""
        from emnet.mixture.backends.categorical_online import partial_fit_step

        return partial_fit_step(self, X, sample_weight)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` rows: (answers (n, J) as category labels, class labels)."""
        check_is_fitted(self, "log_table_")
        check_int("n_samples", n_samples, 1)
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        y = np.repeat(np.arange(len(counts)), counts)
        columns = []
        for cats, probs in zip(self.categories_, self.probs_, strict=True):
            cum = np.cumsum(probs[y], axis=1)
            u = rng.uniform(size=(n_samples, 1)) * cum[:, -1:]
            idx = np.minimum((u > cum).sum(axis=1), len(cats) - 1)
            columns.append(np.asarray(cats)[idx])
        kinds = {np.asarray(c).dtype.kind for c in self.categories_}
        if kinds <= set("biuf"):
            return np.column_stack(columns), y
        out = np.empty((n_samples, len(columns)), dtype=object)
        for j, col in enumerate(columns):
            out[:, j] = col
        return out, y

    # -- saving --------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._state_arrays()
        arrays["weights_"] = np.asarray(self.weights_, dtype=np.float64)
        arrays["log_table_"] = np.asarray(self.log_table_, dtype=np.float64)
        return arrays

    def _state_meta(self) -> dict[str, Any]:
        from emnet.mixture.core.encoding import categories_to_json

        return {"categories": categories_to_json(self.categories_)}

    def _restore_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        from emnet.mixture.core.encoding import categories_from_json
        from emnet.mixture.persistence import check_weights_array

        categories = categories_from_json(state.get("categories"))
        if len(categories) != self.n_features_in_:
            raise ValueError(
                f"{len(categories)} items of categories but n_features_in_ is {self.n_features_in_}"
            )
        self.categories_ = categories
        self.n_categories_ = np.array([len(c) for c in categories])
        self._item_offsets = offsets_of(self.n_categories_)
        K = self.n_components
        self.weights_ = check_weights_array(arrays.pop("weights_", None), K)
        table = arrays.pop("log_table_", None)
        M = int(self.n_categories_.sum())
        if table is None or table.dtype.kind != "f" or table.shape != (M, K):
            raise ValueError(f"log_table_ must be a ({M}, {K}) float table")
        probs = np.exp(table)
        sums = np.add.reduceat(probs, offsets_of(self.n_categories_)[:-1], axis=0)
        if not np.all(np.isfinite(table)) or np.any(np.abs(sums - 1.0) > 1e-6):
            raise ValueError("log_table_ must hold log-probabilities summing to 1 per item")
        self.log_table_ = table
