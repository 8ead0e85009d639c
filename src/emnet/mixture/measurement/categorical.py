"""Categorical items: answer probabilities θ_kjr per class, item and answer (SPEC §1b).

The answers of each column are coded once per fit as 0..R_j − 1
(:func:`emnet.mixture.core.encoding.learn_encoding`: numbers and bools sorted, strings sorted,
pandas categoricals in their declared order, only answers that occur); a missing answer
(NaN, None, pd.NA) is the code −1 and drops out of the block's factor.

- log f(x_i | k) = Σ_j over observed j log θ_{k j x_ij}: one sparse product of the rows'
  answer indicators (n, M), M = Σ_j R_j, with log θ (M, K).
- Statistics (additive): counts (M, K) = Σ_i w_i η_ik [x_ij = r] and observed (J, K) =
  Σ_i w_i η_ik [x_ij observed].
- M-step with a symmetric Dirichlet(a) prior (``prob_concentration``, a >= 1):
  θ_kjr = (count + a − 1) / (N_kj + R_j(a − 1)), then every θ >= PROB_FLOOR with the
  largest answer taking the remainder (the floor rule of
  :class:`~emnet.mixture.CategoricalMixture`, so the two give the same numbers); a class
  with no weight on an item (N_kj + R_j(a − 1) = 0) gets uniform answers there (any value
  maximises; the prior is flat). log-prior (a − 1) Σ log θ.
- Free parameters K·Σ_j (R_j − 1); unconstrained form: the log-odds of every answer
  against the item's first, per class (CategoricalMixture's).
- Parameters are held as ``log_table`` (M, K), item j's answers in rows
  ``offsets[j]:offsets[j + 1]`` (CategoricalMixture's ``log_table_`` layout).
- ``class_means``: Σ_r θ_kjr · value_r for numeric answers, NaN for text answers.

The block's data constants are its ``categories`` (one array per column), learned by
:meth:`Categorical.setup`; they are saved as JSON
(:func:`~emnet.mixture.core.encoding.categories_to_json`), never pickled.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from emnet.mixture.core.encoding import (
    Encoding,
    categories_from_json,
    categories_to_json,
    distinct_values,
    encode,
    learn_encoding,
    merge_distinct,
)
from emnet.mixture.kernels.codes import (
    PROB_FLOOR,
    CodeStats,
    categorical_m_step,
    floor_probs,
    from_logodds,
    offsets_of,
    to_logodds,
)
from emnet.mixture.measurement.base import Measurement, ProfileItem, table_rows


class CategoricalParams(NamedTuple):
    """log θ (M, K): item j's answers in rows offsets[j]:offsets[j + 1]."""

    log_table: np.ndarray


class CategoricalStats(NamedTuple):
    """Σ w η [x = r] (M, K) and Σ w η [x observed] (J, K)."""

    counts: np.ndarray
    observed: np.ndarray


class CodedChunk(NamedTuple):
    """The rows as codes (n, J) (−1 missing) and answer indicators (n, M), sparse."""

    codes: np.ndarray
    indicator: sparse.csr_matrix


class Categorical(Measurement):
    """A block of categorical columns (see the module docstring)."""

    name = "categorical"
    takes_text = True
    init_options = ("probs_init",)

    def __init__(self, prob_concentration: float = 1.0) -> None:
        self.prob_concentration = float(prob_concentration)
        self.categories: list[np.ndarray] | None = None
        self.labels: list[str] | None = None  # the columns' names, for messages

    # -- data ----------------------------------------------------------------------------
    def set_categories(self, categories: list[np.ndarray]) -> None:
        """Fix the block's answers (one array per column, in code order)."""
        self.categories = [np.asarray(c) for c in categories]
        self.n_categories = np.array([len(c) for c in self.categories], dtype=np.int64)
        self.offsets = offsets_of(self.n_categories)

    def setup(self, X: Any, sample_weight: np.ndarray | None) -> None:
        encoding = learn_encoding(X)
        if self.labels is None and encoding.feature_names is not None:
            self.labels = list(encoding.feature_names)
        self.set_categories(encoding.categories)

    @property
    def encoding(self) -> Encoding:
        return Encoding(list(self.categories), self.labels)

    def encode(self, X: Any) -> np.ndarray:
        """(n, J) int16 codes, −1 missing (rows missing every item of the block allowed)."""
        if isinstance(X, pd.DataFrame):
            X = np.column_stack([X.iloc[:, j].to_numpy(dtype=object) for j in range(X.shape[1])])
        A = np.asarray(X)
        if A.ndim != 2 or A.shape[1] != len(self.categories):
            raise ValueError(f"{self.name} block: expected {len(self.categories)} columns")
        empty = np.asarray(pd.isna(A), dtype=bool).all(axis=1)
        codes = np.full(A.shape, -1, dtype=np.int16)
        if (~empty).any():
            codes[~empty] = encode(A[~empty], self.encoding)
        return codes

    def prepare(self, X: Any) -> CodedChunk:
        if isinstance(X, CodedChunk):
            return X
        return self.chunk_of_codes(self.encode(X))

    def chunk_of_codes(self, codes: np.ndarray) -> CodedChunk:
        """The chunk of (n, J) codes (−1 missing)."""
        codes = np.asarray(codes, dtype=np.int16)
        n = codes.shape[0]
        seen = codes >= 0
        rows = np.nonzero(seen)[0]
        cols = (self.offsets[:-1][None, :] + codes)[seen]
        M = int(self.offsets[-1])
        data = np.ones(len(rows))
        indicator = sparse.csr_matrix((data, (rows, cols)), shape=(n, M))
        return CodedChunk(codes, indicator)

    # -- the contract ----------------------------------------------------------------------
    def log_likelihood(self, params: CategoricalParams, X: Any) -> np.ndarray:
        chunk = self.prepare(X)
        return np.asarray(chunk.indicator @ params.log_table)

    def sufficient_stats(
        self,
        params: CategoricalParams | None,
        X: Any,
        resp: np.ndarray,
        sample_weight: np.ndarray | None,
    ) -> CategoricalStats:
        chunk = self.prepare(X)
        r = resp if sample_weight is None else resp * sample_weight[:, None]
        counts = np.asarray(chunk.indicator.T @ r)
        observed = np.add.reduceat(counts, self.offsets[:-1], axis=0)
        return CategoricalStats(counts, observed)

    def add_stats(self, a: CategoricalStats, b: CategoricalStats) -> CategoricalStats:
        return CategoricalStats(a.counts + b.counts, a.observed + b.observed)

    def m_step(self, stats: CategoricalStats) -> CategoricalParams:
        K = stats.counts.shape[1]
        code_stats = CodeStats(0.0, np.ones(K), stats.counts, stats.observed, 0.0)
        _, probs = categorical_m_step(
            code_stats, self.n_categories, self.offsets, self.prob_concentration, 1.0
        )
        return CategoricalParams(np.ascontiguousarray(np.log(probs).T))

    def log_prior(self, params: CategoricalParams) -> float:
        if self.prob_concentration == 1.0:
            return 0.0
        return (self.prob_concentration - 1.0) * float(params.log_table.sum())

    def n_parameters(self, n_components: int) -> int:
        if self.categories is None:
            return 0
        return n_components * int(np.sum(self.n_categories - 1))

    def to_unconstrained(self, params: CategoricalParams) -> np.ndarray:
        return to_logodds(np.ascontiguousarray(params.log_table), self.offsets).ravel()

    def from_unconstrained(self, vector: np.ndarray, like: CategoricalParams) -> CategoricalParams:
        return CategoricalParams(from_logodds(vector, self.offsets, like.log_table.shape[1]))

    def from_probs(self, probs: list[np.ndarray]) -> CategoricalParams:
        """Parameters from one (K, R_j) array of probabilities per column (floored)."""
        table = floor_probs(np.concatenate(probs, axis=1), self.offsets)
        return CategoricalParams(np.ascontiguousarray(np.log(table).T))

    def answer_counts(self) -> list[int]:
        return list(self.n_categories)

    def init_from(self, params: CategoricalParams, given: dict[str, Any]) -> CategoricalParams:
        """``probs_init``: one (K, R_j) array of probabilities per column (floored)."""
        probs = given.get("probs_init")
        return params if probs is None else self.from_probs(probs)

    def probs(self, params: CategoricalParams) -> list[np.ndarray]:
        """One (K, R_j) array of answer probabilities per column."""
        table = np.exp(params.log_table).T
        o = self.offsets
        return [table[:, o[j] : o[j + 1]].copy() for j in range(len(o) - 1)]

    def initialize(
        self, X: Any, resp: np.ndarray, sample_weight: np.ndarray | None
    ) -> CategoricalParams:
        """The partition's answer shares, shrunk towards each item's marginal shares by one
        pseudo-row (so no answer starts at 0)."""
        stats = self.sufficient_stats(None, X, resp, sample_weight)
        total = stats.counts.sum(axis=1)  # (M,) all classes
        per_item = np.add.reduceat(total, self.offsets[:-1])
        marginal = total / np.repeat(np.where(per_item > 0, per_item, 1.0), self.n_categories)
        numer = stats.counts + marginal[:, None]
        denom = np.repeat(stats.observed + 1.0, self.n_categories, axis=0)
        return CategoricalParams(
            np.ascontiguousarray(np.log(floor_probs((numer / denom).T, self.offsets)).T)
        )

    def random_params(self, n_components: int, rng: np.random.RandomState) -> CategoricalParams:
        """θ_kj from a flat Dirichlet (CategoricalMixture's and poLCA's random start)."""
        R, offsets = self.n_categories, self.offsets
        probs = rng.gamma(1.0, size=(n_components, int(offsets[-1])))
        sums = np.add.reduceat(probs, offsets[:-1], axis=1)
        probs = probs / np.repeat(sums, R, axis=1)
        return CategoricalParams(np.ascontiguousarray(np.log(floor_probs(probs, offsets)).T))

    def sample(
        self, params: CategoricalParams, z: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        columns = []
        for cats, probs in zip(self.categories, self.probs(params), strict=True):
            cum = np.cumsum(probs[z], axis=1)
            u = rng.uniform(size=(len(z), 1)) * cum[:, -1:]
            idx = np.minimum((u > cum).sum(axis=1), len(cats) - 1)
            columns.append(np.asarray(cats)[idx])
        if all(np.asarray(c).dtype.kind in "biuf" for c in self.categories):
            return np.column_stack(columns).astype(np.float64).reshape(len(z), -1)
        out = np.empty((len(z), len(columns)), dtype=object)
        for j, col in enumerate(columns):
            out[:, j] = col
        return out

    def permute(self, params: CategoricalParams, perm: np.ndarray) -> CategoricalParams:
        return CategoricalParams(np.ascontiguousarray(params.log_table[:, perm]))

    def to_arrays(self, params: CategoricalParams) -> dict[str, np.ndarray]:
        """{"probs": (K, M) answer probabilities} (the natural parameters: standard
        errors and summaries are of these)."""
        return {"probs": np.exp(params.log_table).T}

    def seed_features(self, chunk: CodedChunk) -> np.ndarray:
        """The answers as 0/1 indicators, one column per answer (NaN if missing)."""
        onehot = chunk.indicator.toarray()
        onehot[np.repeat(chunk.codes < 0, self.n_categories, axis=1)] = np.nan
        return onehot

    def fitted_attributes(
        self, params: CategoricalParams, n_components: int, names: list[Any]
    ) -> dict[str, Any]:
        """``categories_`` and ``probs_``: per column, its answers and (K, R_j) table."""
        categories, probs = {}, {}
        for name, cats, table in zip(names, self.categories, self.probs(params), strict=True):
            categories[name] = cats
            probs[name] = table
        return {"categories_": categories, "probs_": probs}

    def state_json(self) -> Any:
        """The answers' categories."""
        return categories_to_json(self.categories)

    def load_state(
        self, take: Any, n_components: int, n_columns: int, saved_json: Any
    ) -> CategoricalParams:
        if not isinstance(saved_json, dict):
            raise ValueError("the categories of the categorical blocks are missing")
        self.set_categories(categories_from_json(saved_json.get(self.name)))
        if len(self.categories) != n_columns:
            raise ValueError(f"{self.name}: {len(self.categories)} items of categories for "
                             f"{n_columns} columns")  # fmt: skip
        M = int(self.offsets[-1])
        return self.from_arrays({"probs": take("probs", (n_components, M))})

    def from_arrays(self, arrays: dict[str, np.ndarray]) -> CategoricalParams:
        """The parameters back, checked: positive probabilities summing to 1 per item."""
        probs = np.asarray(arrays["probs"], dtype=np.float64)
        M = int(self.offsets[-1])
        if probs.ndim != 2 or probs.shape[1] != M or not np.all(np.isfinite(probs)):
            raise ValueError(f"{self.name}_probs must be a finite (K, {M}) table")
        sums = np.add.reduceat(probs, self.offsets[:-1], axis=1)
        if np.any(probs <= 0) or np.any(probs > 1) or np.any(np.abs(sums - 1.0) > 1e-6):
            raise ValueError(f"{self.name}_probs must hold probabilities summing to 1 per item")
        return CategoricalParams(np.ascontiguousarray(np.log(probs).T))

    def describe(self) -> str:
        J = len(self.categories)
        return f"{self.name} ({J} item{'' if J == 1 else 's'})"

    def _summary_answers(self, j: int) -> range:
        return range(len(self.categories[j]))

    def profile_items(
        self, params: CategoricalParams, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[ProfileItem]:
        """One "answers" item per column: the (K, R_j) answer probabilities and SEs."""
        probs = self.to_arrays(params)["probs"]
        s = None if se is None else np.asarray(se["probs"], dtype=np.float64)
        out = []
        for j, name in enumerate(names):
            cols = slice(int(self.offsets[j]), int(self.offsets[j + 1]))
            out.append(
                ProfileItem(name, "answers", probs[:, cols].copy(),
                            None if s is None else s[:, cols].copy(),
                            answers=list(np.asarray(self.categories[j]).tolist()))
            )  # fmt: skip
        return out

    def summary_rows(
        self, params: CategoricalParams, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[dict[str, Any]]:
        """One row per item, answer and class: ``P(answer)`` with its standard error."""
        probs = self.to_arrays(params)["probs"]
        s = np.full(probs.shape, np.nan) if se is None else np.asarray(se["probs"])
        rows = []
        for j, name in enumerate(names):
            for r in self._summary_answers(j):
                col = int(self.offsets[j]) + r
                answer = self.categories[j][r]
                rows += table_rows(f"P({answer})", probs[:, [col]], s[:, [col]], [name])
        return rows

    def class_means(self, params: CategoricalParams) -> np.ndarray:
        K = params.log_table.shape[1]
        out = np.full((K, len(self.categories)), np.nan)
        for j, (cats, probs) in enumerate(zip(self.categories, self.probs(params), strict=True)):
            if np.asarray(cats).dtype.kind in "biuf":
                out[:, j] = probs @ np.asarray(cats, dtype=np.float64)
        return out

    # -- the backends' pieces (emnet.mixture.measurement.base) ------------------------------
    def setup_summary(self, X: Any, sample_weight: np.ndarray | None) -> Any:
        """The chunk's distinct answers per column
        (:func:`~emnet.mixture.core.encoding.distinct_values`)."""
        return distinct_values(X)

    def merge_setup(self, a: Any, b: Any) -> Any:
        return merge_distinct(a, b)

    def setup_from_summary(self, summary: Any) -> None:
        """The answers learned from every chunk's distinct answers (the same categories
        as :meth:`setup` on all rows)."""
        self.setup(summary, None)

    def features(self, chunk: Any) -> tuple[np.ndarray, None]:
        """Phi = the answer indicators (n, M) (a missing answer: zeros); no base."""
        return self.prepare(chunk).indicator.toarray(), None

    def natural_params(self, params: CategoricalParams) -> tuple[np.ndarray, np.ndarray]:
        """W = log θ (M, K), c = 0."""
        return params.log_table, np.zeros(params.log_table.shape[1])

    def stats_from_moments(
        self, params: CategoricalParams, moments: np.ndarray, nk: np.ndarray
    ) -> CategoricalStats:
        counts = np.ascontiguousarray(moments.T)
        return CategoricalStats(counts, np.add.reduceat(counts, self.offsets[:-1], axis=0))


__all__ = ["PROB_FLOOR", "Categorical", "CategoricalParams", "CategoricalStats", "CodedChunk"]
