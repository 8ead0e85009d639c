"""The E-step of the latent class family on one chunk of rows, through the measurement
contract only (:mod:`emnet.mixture.measurement.base`): what the Dask, torch and online
backends of :class:`~emnet.mixture.LatentClassModel` share, and how a block's columns are
read from a table of rows and its values checked (:func:`block_input`, :func:`setup_input`,
:func:`check_rows`: the in-memory model and the Dask backend alike).

A model's parameters are anything with ``log_weights`` (K,) and ``blocks`` (one parameter
object per block); its statistics a :class:`FamilyStats` (the fields of the model's own
statistics record, so the model's ``_m_step`` takes either). No function here knows a
measurement type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from emnet.mixture.measurement.base import Measurement

__all__ = [
    "FamilyStats",
    "add_family_stats",
    "block_input",
    "check_columns_observed",
    "check_rows",
    "observed_counts",
    "chunk_stats",
    "joint_log_lik",
    "log_resp",
    "posterior",
    "scale_family_stats",
    "setup_input",
]


class FamilyStats(NamedTuple):
    """Σ w, Σ w log p(x), Σ w η (K,), and each block's statistics (additive over chunks)."""

    n: float
    loglik: float
    nk: np.ndarray
    blocks: tuple[Any, ...]


def joint_log_lik(blocks: Sequence[Measurement], params: Any, chunks: Sequence[Any]) -> np.ndarray:
    """(n, K): log π_k + Σ_b log f_b(x_ib | k), a fresh array."""
    ll = None
    for m, pb, chunk in zip(blocks, params.blocks, chunks, strict=True):
        term = m.log_likelihood(pb, chunk)
        ll = term + params.log_weights if ll is None else ll + term
    return np.zeros((0, len(params.log_weights))) if ll is None else ll


def posterior(ll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(η (n, K), log p(x_i) (n,)) from the joint log-likelihoods; ``ll`` is overwritten.
    A row whose maximum is not finite is shifted by 0 (the in-memory E-step's rule)."""
    top = ll.max(axis=1) if ll.shape[1] else np.zeros(ll.shape[0])
    top[~np.isfinite(top)] = 0.0
    ll -= top[:, None]
    resp = np.exp(ll, out=ll)
    mass = resp.sum(axis=1)
    resp /= mass[:, None]
    return resp, np.log(mass) + top


def chunk_stats(
    blocks: Sequence[Measurement],
    params: Any,
    chunks: Sequence[Any],
    sample_weight: np.ndarray | None = None,
) -> FamilyStats:
    """One E-step over a chunk of rows (``chunks``: each block's prepared rows)."""
    resp, log_p = posterior(joint_log_lik(blocks, params, chunks))
    n = resp.shape[0]
    w = sample_weight
    loglik = float(log_p.sum() if w is None else w @ log_p)
    nk = resp.sum(axis=0) if w is None else w @ resp
    stats = tuple(
        m.sufficient_stats(pb, chunk, resp, w)
        for m, pb, chunk in zip(blocks, params.blocks, chunks, strict=True)
    )
    return FamilyStats(float(n if w is None else w.sum()), loglik, nk, stats)


def add_family_stats(blocks: Sequence[Measurement], a: Any, b: Any) -> FamilyStats:
    """The statistics of two chunks together (each block's ``add_stats``)."""
    return FamilyStats(
        a.n + b.n,
        a.loglik + b.loglik,
        a.nk + b.nk,
        tuple(m.add_stats(x, y) for m, x, y in zip(blocks, a.blocks, b.blocks, strict=True)),
    )


def scale_family_stats(blocks: Sequence[Measurement], s: Any, factor: float) -> FamilyStats:
    """The statistics times ``factor`` (each block's ``scale_stats``)."""
    return FamilyStats(
        s.n * factor,
        s.loglik * factor,
        s.nk * factor,
        tuple(m.scale_stats(x, factor) for m, x in zip(blocks, s.blocks, strict=True)),
    )


def log_resp(
    blocks: Sequence[Measurement], params: Any, chunks: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(log η (n, K), log p(x_i) (n,)) of a chunk."""
    ll = joint_log_lik(blocks, params, chunks)
    log_p = logsumexp(ll, axis=1)
    return ll - log_p[:, None], log_p


def check_rows(A: np.ndarray, kinds: Sequence[str] | None = None, chunk: int | None = None) -> None:
    """The checks of a table's values ``A``: two dimensions, no infinity (in an object
    array: in its numeric columns, when their ``kinds`` are given), no row without an
    observed entry (named by its position, in ``chunk`` when given)."""
    if A.ndim != 2:
        raise ValueError(f"X: expected a 2-D array, got {A.ndim} dimension(s)")
    if A.dtype == object:
        missing = np.asarray(pd.isna(A), dtype=bool)
        numeric = np.array([k != "text" for k in kinds or []], dtype=bool)
        if numeric.any() and np.isinf(A[:, numeric].astype(np.float64)).any():
            raise ValueError("X: infinite values (NaN marks a missing entry)")
    else:
        missing = np.isnan(A)
        if np.isinf(A).any():
            raise ValueError("X: infinite values (NaN marks a missing entry)")
    if A.shape[0] and missing.all(axis=1).any():
        i = int(np.flatnonzero(missing.all(axis=1))[0])
        where = "" if chunk is None else f" of chunk {chunk}"
        raise ValueError(f"X: row {i}{where} has no observed entry")


def observed_counts(A: np.ndarray) -> np.ndarray:
    """(D,) the number of observed (not missing) entries of each column of a table."""
    missing = np.asarray(pd.isna(A), dtype=bool) if A.dtype == object else np.isnan(A)
    return A.shape[0] - missing.sum(axis=0)


def check_columns_observed(counts: np.ndarray, names: Sequence[str] | None) -> None:
    """Every column has an observed entry (``counts``: :func:`observed_counts`, summed over
    the chunks), or a ValueError naming the first that has none: a block cannot learn
    its constants or its class parameters from a column that is all missing."""
    empty = np.flatnonzero(np.asarray(counts) == 0)
    if len(empty):
        raise ValueError(
            f"X: column {_label(names, int(empty[0]))!r} has no observed value (every entry "
            "is missing); leave it out"
        )


def _label(names: Sequence[str] | None, j: int) -> Any:
    return names[j] if names is not None else j


def block_input(
    A: np.ndarray,
    cols: np.ndarray,
    m: Measurement,
    names: Sequence[str] | None,
    *,
    row_numbers: bool = True,
) -> np.ndarray:
    """Block m's columns of a table's values ``A`` (n, D): as they are for a block that
    takes text (:attr:`Measurement.takes_text`), as floats for the others (text there is
    an error naming the column, from ``names`` or its position, and with ``row_numbers``
    the row: not for one chunk of a larger table, whose rows are not the table's)."""
    if m.takes_text or A.dtype != object:
        return A[:, cols]
    for j in cols:
        try:
            np.asarray(A[:, j], dtype=np.float64)
        except (TypeError, ValueError):
            bad = [i for i, v in enumerate(A[:, j]) if isinstance(v, str) or v is pd.NA]
            i = bad[0] if bad else 0
            where = f" in row {i}" if row_numbers else ""
            raise ValueError(
                f"column {_label(names, j)!r}: a {m.name} block needs numbers, got "
                f"{A[i, j]!r}{where} (use the 'categorical' type for text answers)"
            ) from None
    return np.asarray(A[:, cols], dtype=np.float64)


def setup_input(
    X: Any,
    A: np.ndarray,
    cols: np.ndarray,
    m: Measurement,
    names: Sequence[str] | None,
    *,
    row_numbers: bool = True,
) -> Any:
    """:func:`block_input`, but with a pandas DataFrame's categoricals as they are (their
    declared order is the answers' order) for a block that takes text: what the block
    learns its constants from."""
    data = block_input(A, cols, m, names, row_numbers=row_numbers)
    if not m.takes_text or not isinstance(X, pd.DataFrame):
        return data
    if not any(isinstance(X.dtypes.iloc[j], pd.CategoricalDtype) for j in cols):
        return data
    parts = {}
    for i, j in enumerate(cols):
        col = X.iloc[:, j]
        categorical = isinstance(col.dtype, pd.CategoricalDtype)
        parts[i] = col.reset_index(drop=True) if categorical else pd.Series(data[:, i])
    frame = pd.DataFrame(parts)
    frame.columns = [str(_label(names, j)) for j in cols]
    return frame
