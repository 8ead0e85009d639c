"""Binary (0/1) items: a Bernoulli block, the two-answer case of the categorical block.

Every column's answers are 0 and 1 (True/False read as 1/0), whether or not both occur
in the data, so a column has one free parameter per class, p_kj = P(x_ij = 1 | k), and
the block K·D. Everything else — the likelihood, statistics, the Dirichlet(a) M-step with
its floor (θ >= 1e-10; the Bernoulli clamp [1e-10, 1 − 1e-10]), the log-odds
parametrisation (logit p), saving — is :class:`~emnet.mixture.measurement.categorical.
Categorical`'s, so a two-answer categorical block gives the same fit to rounding.
``class_means`` are the p_kj; ``sample`` draws 0.0/1.0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from emnet.mixture.measurement.categorical import Categorical, CategoricalParams, CodedChunk


class Binary(Categorical):
    """A block of 0/1 columns (see the module docstring)."""

    name = "binary"

    def _values(self, X: Any) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            X = np.column_stack([X.iloc[:, j].to_numpy(dtype=object) for j in range(X.shape[1])])
        A = np.asarray(X)
        if A.ndim != 2:
            raise ValueError("binary block: expected a 2-D table")
        missing = np.asarray(pd.isna(A), dtype=bool)
        out = np.full(A.shape, np.nan)
        for j in range(A.shape[1]):
            label = self.labels[j] if self.labels is not None else j
            col = A[:, j]
            seen = ~missing[:, j]
            try:
                vals = np.asarray(col[seen], dtype=np.float64)
            except (TypeError, ValueError):
                vals = None
            if vals is None or not np.all((vals == 0) | (vals == 1)):
                bad = col[seen][0] if vals is None else col[seen][(vals != 0) & (vals != 1)][0]
                raise ValueError(
                    f"binary column {label!r}: expected 0/1 (or True/False) answers, got "
                    f"{bad!r}; use the 'categorical' type for other answers"
                )
            out[seen, j] = vals
        return out

    def setup(self, X: Any, sample_weight: np.ndarray | None) -> None:
        if self.labels is None and isinstance(X, pd.DataFrame):
            self.labels = [str(c) for c in X.columns]
        D = self._values(X).shape[1]
        self.set_categories([np.array([0, 1], dtype=np.int64) for _ in range(D)])

    def encode(self, X: Any) -> np.ndarray:
        A = self._values(X)
        if A.shape[1] != len(self.categories):
            raise ValueError(f"binary block: expected {len(self.categories)} columns")
        return np.where(np.isnan(A), -1, A).astype(np.int16)

    def prepare(self, X: Any) -> CodedChunk:
        if isinstance(X, CodedChunk):
            return X
        return self.chunk_of_codes(self.encode(X))

    def _summary_answers(self, j: int) -> range:
        return range(1, 2)  # P(1) only: P(0) = 1 − P(1)

    def class_means(self, params: CategoricalParams) -> np.ndarray:
        return np.exp(params.log_table[1::2]).T
