"""Input checks for binary data, and chunked iteration over rows (dense or CSR).

The checks scan the data in blocks of rows, so they never build an (n, D) temporary, and
their errors name the first offending row and column.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from emnet import _checks

_CHECK_BLOCK_ELEMENTS = 1 << 22  # ~4M entries per block of the validation scan
MAX_TOTAL_WEIGHT = 1e150
"""The largest total of ``sample_weight``: statistics square weighted totals (Pearson's
X², the outer products of the scores), so the total stays far below √(float max) ≈ 1e154."""


def row_blocks(n_rows: int, batch_size: int | None) -> Iterator[slice]:
    """Consecutive row slices of at most ``batch_size`` rows (one slice when None)."""
    step = n_rows if not batch_size else int(batch_size)
    step = max(step, 1)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def iter_chunks(X: object, batch_size: int | None) -> Iterator[object]:
    """Row chunks of ``X`` (views for dense arrays, cheap CSR row slices)."""
    if batch_size is None:
        yield X
        return
    for sl in row_blocks(X.shape[0], batch_size):
        yield X[sl]


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    i, j = np.argwhere(mask)[0]
    return int(i), int(j)


def _non_binary(name: str, value: float, row: int, col: int) -> ValueError:
    """The shared wording of ``emnet._checks`` for an entry that is not 0/1/NaN."""
    return _checks.non_binary_error(name, float(value), row, col)


def check_binary(X: np.ndarray | sp.csr_matrix, name: str = "X") -> bool:
    """Raise ValueError unless every entry is 0, 1 or NaN; return whether any NaN occurs.

    Also rejects a row whose every entry is missing. Messages name the first offending
    row and column (0-based).
    """
    n, d = X.shape
    if sp.issparse(X):
        return _check_binary_sparse(X, name)
    if X.dtype == np.bool_:
        return False
    integer = np.issubdtype(X.dtype, np.integer)
    has_nan = False
    rows = max(1, _CHECK_BLOCK_ELEMENTS // max(d, 1))
    for sl in row_blocks(n, rows):
        block = X[sl]
        if integer:
            bad = (block != 0) & (block != 1)
            nan = None
        else:
            nan = np.isnan(block)
            bad = (block != 0) & (block != 1) & ~nan
        if bad.any():
            i, j = _first_bad(bad)
            raise _non_binary(name, block[i, j], sl.start + i, j)
        if nan is not None and nan.any():
            has_nan = True
            empty = nan.all(axis=1)
            if empty.any():
                i = int(np.flatnonzero(empty)[0])
                raise ValueError(
                    f"{name}: row {sl.start + i} has no observed entry (all values are NaN)"
                )
    return has_nan


def _check_binary_sparse(X: sp.csr_matrix, name: str) -> bool:
    data = X.data
    if data.dtype == np.bool_:
        return False
    nan = np.isnan(data) if np.issubdtype(data.dtype, np.floating) else np.zeros(len(data), bool)
    bad = (data != 0) & (data != 1) & ~nan
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(X.indptr, pos, side="right") - 1)
        raise _non_binary(name, data[pos], row, int(X.indices[pos]))
    if not nan.any():
        return False
    nan_rows = np.searchsorted(X.indptr, np.flatnonzero(nan), side="right") - 1
    per_row = np.bincount(nan_rows, minlength=X.shape[0])
    empty = per_row >= X.shape[1]
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise ValueError(f"{name}: row {i} has no observed entry (all values are NaN)")
    return True


def check_int(name: str, value: Any, low: int) -> None:
    """ValueError naming ``name`` unless ``value`` is an integer >= ``low`` (bool is not);
    the shared check of ``emnet._checks`` with scikit-learn's ValueError for parameters."""
    try:
        _checks.check_int(value, name, low)
    except TypeError:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}") from None


def check_real(name: str, value: Any, low: float, why: str = "") -> None:
    """ValueError naming ``name`` unless ``value`` is a finite real number >= ``low``."""
    try:
        _checks.check_number(value, name, low)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: expected a finite number >= {low:g}{why}, got {value!r}"
        ) from None


def check_weights(sample_weight: Any, n: int, name: str = "sample_weight") -> np.ndarray | None:
    """``sample_weight`` as a float64 (n,) array of finite non-negative numbers summing to
    at most :data:`MAX_TOTAL_WEIGHT`, or None; errors name the first offending row."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {n} non-negative numbers") from None
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name}: expected finite non-negative numbers, got {float(w[i])!r} in row {i}"
        )
    with np.errstate(over="ignore"):
        running = np.cumsum(w)
    if n and not running[-1] <= MAX_TOTAL_WEIGHT:
        i = int(np.flatnonzero(~(running <= MAX_TOTAL_WEIGHT))[0])
        raise ValueError(
            f"{name}: the weights sum past {MAX_TOTAL_WEIGHT:g} at row {i} (weight {w[i]:g}); "
            "sums and squares of sums that large overflow the statistics. Rescale the "
            "weights (e.g. to sum to the number of rows): only their ratios change the "
            "estimates"
        )
    if n and not w.sum() > 0:
        raise ValueError(f"{name}: all weights are zero (at least one row needs a positive weight)")
    return w


def item_names(model: Any, feature_names: Any, n_items: int, X: Any = None) -> list[str]:
    """The items' names for outputs: ``feature_names`` if given (checked to be
    ``n_items`` long), else the columns of a DataFrame ``X``, else the model's
    ``feature_names_in_``, else "item 1", "item 2", ..."""
    if feature_names is not None:
        names = [str(f) for f in feature_names]
        if len(names) != n_items:
            raise ValueError(f"feature_names: expected {n_items} names, got {len(names)}")
        return names
    if hasattr(X, "columns"):
        return [str(c) for c in X.columns]
    if hasattr(model, "feature_names_in_"):
        return [str(c) for c in model.feature_names_in_]
    return [f"item {j + 1}" for j in range(n_items)]


def checked_answer_probs(value: Any, label: str, K: int, n_answers: int) -> np.ndarray:
    """One item's given answer probabilities (``probs_init``) as a (K, R) float array:
    finite, non-negative rows summing to 1; a ValueError naming ``label`` otherwise."""
    try:
        b = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{label}: expected an array of numbers") from None
    if b.shape != (K, n_answers):
        raise ValueError(f"{label}: expected shape ({K}, {n_answers}), got {b.shape}")
    if not np.all(np.isfinite(b)) or np.any(b < 0) or np.any(np.abs(b.sum(1) - 1) > 1e-6):
        raise ValueError(f"{label}: expected rows of probabilities summing to 1")
    return b
