"""Pure log-domain math of the Bernoulli mixture (SPEC §1), on dense, NaN and sparse data.

Every function here is pure: arrays in, arrays out. ``X`` may be a dense array (any real
dtype; NaN marks a missing entry) or a scipy.sparse CSR matrix (never densified; a stored
NaN marks a missing entry). Arithmetic runs in ``dtype`` (float32 or float64; by default
X's own float dtype, else float64); statistics are accumulated in float64.

The log-likelihood of every sample under every component is one matrix product (SPEC §1):

    log P(x | p⁽ᵏ⁾) = x · (log p⁽ᵏ⁾ − log(1 − p⁽ᵏ⁾)) + Σ_d log(1 − p_d⁽ᵏ⁾)

and the M-step statistic Σ_i η_ik x⁽ⁱ⁾ is another (Rᵀ·X). With missing entries the sum runs
over observed d only: the product uses X with NaN → 0, minus (missing mask)·log(1 − p)ᵀ.

Numerics:

- Means are clamped to ``[MEAN_CLAMP, 1 − MEAN_CLAMP]`` (1e-10) after every M-step, so
  ``log p`` and ``log(1 − p)`` stay finite where the maximum-likelihood estimate hits 0
  or 1. The clamped value is the maximiser of the M-step objective over that box (it is
  concave in each p_d), so EM stays monotone.
- Responsibilities below the smallest normal float are flushed to zero (precisely: all
  at or below e·tiny, ≈ 6e-308 in float64, 3e-38 in float32): this changes no result and
  keeps subnormal arithmetic out of the M-step matrix product, where it costs several
  times the normal speed; for the same reason exp's argument is clamped at log(tiny) + 1.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

MEAN_CLAMP = 1e-10
"""Means are kept inside ``[MEAN_CLAMP, 1 − MEAN_CLAMP]`` (documented clamp, SPEC §1)."""

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class SuffStats(NamedTuple):
    """Sufficient statistics of one E-step over some rows (add them with :func:`add_stats`).

    ``n``: number of rows; ``resp_sum`` (K,): Σ_i η_ik; ``resp_x`` (K, D): Σ_i η_ik x_id
    (missing entries count as 0); ``resp_obs`` (K, D): Σ_i η_ik [x_id observed], or None
    when no entry is missing (then it equals ``resp_sum`` in every column); ``loglik``:
    Σ_i log p(x_i) under the parameters the E-step used.
    """

    n: float
    resp_sum: np.ndarray
    resp_x: np.ndarray
    resp_obs: np.ndarray | None
    loglik: float


class _LogParams(NamedTuple):
    slope: np.ndarray  # (K, D): log p − log(1 − p)
    log1mp: np.ndarray  # (K, D): log(1 − p)
    bias: np.ndarray  # (K,): Σ_d log(1 − p_d) (+ log π_k)


# ---------------------------------------------------------------------------------------
# helpers


def work_dtype(X: object, dtype: object = None) -> np.dtype:
    """The float dtype computations on ``X`` run in: ``dtype``, else X's float dtype, else f64."""
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in FLOAT_DTYPES:
            raise ValueError(f"dtype: expected float32 or float64, got {dt}")
        return dt
    dt = getattr(X, "dtype", None)
    return np.dtype(dt) if dt is not None and np.dtype(dt) in FLOAT_DTYPES else np.dtype(np.float64)


def as_float(X: object, dtype: np.dtype) -> np.ndarray | sp.csr_matrix:
    """``X`` as a float array of ``dtype`` (no copy when it already is one); CSR stays CSR."""
    if sp.issparse(X):
        X = X.tocsr() if X.format != "csr" else X
        return X if X.dtype == dtype else X.astype(dtype)
    return np.asarray(X, dtype=dtype)


def clamp_means(means: np.ndarray) -> np.ndarray:
    """Means clipped into ``[MEAN_CLAMP, 1 − MEAN_CLAMP]`` (float64)."""
    return np.clip(np.asarray(means, dtype=np.float64), MEAN_CLAMP, 1.0 - MEAN_CLAMP)


def _safe_log(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(a)


def _log_params(weights: np.ndarray | None, means: np.ndarray, dtype: np.dtype) -> _LogParams:
    p = clamp_means(means)
    log_p = np.log(p)
    log1mp = np.log1p(-p)
    bias = log1mp.sum(axis=1)
    if weights is not None:
        bias = bias + _safe_log(np.asarray(weights, dtype=np.float64))
    return _LogParams(
        (log_p - log1mp).astype(dtype), log1mp.astype(dtype), bias.astype(dtype, copy=False)
    )


def _product(X: np.ndarray | sp.csr_matrix, M: np.ndarray) -> np.ndarray:
    """X · Mᵀ as a dense (n, K) array, for dense or CSR X."""
    out = X @ M.T
    return np.asarray(out)


def _split_missing(X: np.ndarray | sp.csr_matrix) -> tuple[object, object]:
    """(X with NaN → 0, missing mask as 0/1 of X's dtype), both dense or both CSR."""
    if sp.issparse(X):
        nan = np.isnan(X.data)
        filled = X.copy()
        filled.data[nan] = 0
        # copies of the index arrays: eliminate_zeros works in place and must not touch X
        mask = sp.csr_matrix(
            (nan.astype(X.dtype), X.indices.copy(), X.indptr.copy()), shape=X.shape
        )
        mask.eliminate_zeros()
        return filled, mask
    nan = np.isnan(X)
    return np.where(nan, X.dtype.type(0), X), nan.astype(X.dtype)


def _joint_log_prob(
    Xf: np.ndarray | sp.csr_matrix, params: _LogParams
) -> tuple[np.ndarray, object, object]:
    """(A, X with NaN → 0, missing mask or None): A[i, k] = log P(x_i | p_k) + bias_k.

    The fast path is the single product; a NaN in X shows up as NaN in its row of the
    product, which is how missing entries are detected at O(n) cost.
    """
    A = _product(Xf, params.slope)
    mask = None
    if A.shape[0] and A.shape[1] and np.isnan(A[:, 0]).any():
        Xf, mask = _split_missing(Xf)
        A = _product(Xf, params.slope)
        A -= _product(mask, params.log1mp)
    A += params.bias
    return A, Xf, mask


def _log_normalizer(A: np.ndarray) -> np.ndarray:
    """Row-wise log Σ_k exp(A_ik) (float64), stable; terms clamped as in the E-step."""
    m = A.max(axis=1, keepdims=True)
    shifted = A - m
    np.maximum(shifted, _flush_threshold(A.dtype)[0], out=shifted)
    s = np.exp(shifted, out=shifted).sum(axis=1, keepdims=True)
    return (m.astype(np.float64) + np.log(s.astype(np.float64))).ravel()


def _flush_threshold(dtype: np.dtype) -> tuple[np.floating, np.floating]:
    """(cut, flush): exp's argument is clamped at ``cut`` = log(tiny) + 1 and every
    normalised responsibility <= ``flush`` = e·tiny is set to 0 (≈ 6e-308 in float64)."""
    tiny = np.finfo(dtype).tiny
    cut = dtype.type(np.log(tiny) + 1.0)
    return cut, np.exp(cut)


def _responsibilities_inplace(A: np.ndarray) -> np.ndarray:
    """Turn A (joint log-probabilities) into responsibilities in place; return log p(x_i).

    Terms more than ~707 nats (float64; ~86 in float32) below a row's best component are
    clamped before exp — exp would return a subnormal there, on its slow path — and all
    responsibilities at or below e·tiny are flushed to 0 after normalising (module
    docstring). Either way the change is below 1e-307 per entry.
    """
    cut, flush = _flush_threshold(A.dtype)
    m = A.max(axis=1, keepdims=True)
    A -= m
    np.maximum(A, cut, out=A)
    np.exp(A, out=A)
    s = A.sum(axis=1, keepdims=True)
    A *= 1.0 / s
    np.multiply(A, np.greater(A, flush), out=A)  # flush (cheaper than a masked store)
    return m.ravel().astype(np.float64) + np.log(s.ravel().astype(np.float64))


def _rt_x(resp: np.ndarray, X: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """Rᵀ · X as a dense float64 (K, D) array."""
    if sp.issparse(X):
        return np.asarray(X.T @ resp, dtype=np.float64).T.copy()
    return np.asarray(resp.T @ X, dtype=np.float64)


def _stats_from_resp(Xf: object, mask: object, resp: np.ndarray, loglik: float) -> SuffStats:
    resp_sum = resp.sum(axis=0, dtype=np.float64)
    resp_x = _rt_x(resp, Xf)
    resp_obs = None
    if mask is not None:
        resp_obs = np.maximum(resp_sum[:, None] - _rt_x(resp, mask), 0.0)
    return SuffStats(float(resp.shape[0]), resp_sum, resp_x, resp_obs, float(loglik))


def _check_shapes(X: object, weights: object, means: object, resp: object = None) -> None:
    """ValueError naming the argument when shapes disagree (O(K·D) checks only)."""
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"X: expected a 2-D array or CSR matrix, got shape {shape}")
    if means is not None:
        m = np.asarray(means)
        if m.ndim != 2 or m.shape[1] != shape[1]:
            raise ValueError(f"means: expected shape (K, {shape[1]}), got {m.shape}")
        if not np.all((m >= 0) & (m <= 1)):
            raise ValueError("means: expected values in [0, 1]")
        k = m.shape[0]
    else:
        k = None
    if weights is not None:
        w = np.asarray(weights)
        if w.shape != (k,):
            raise ValueError(f"weights: expected shape ({k},), got {w.shape}")
        if not np.all(w >= 0):
            raise ValueError("weights: expected non-negative values")
    if resp is not None:
        r = np.asarray(resp)
        if r.ndim != 2 or r.shape[0] != shape[0] or (k is not None and r.shape[1] != k):
            want = f"({shape[0]}, {'K' if k is None else k})"
            raise ValueError(f"resp: expected shape {want}, got {r.shape}")


def _has_nan(X: object) -> bool:
    data = X.data if sp.issparse(X) else X
    return bool(np.isnan(data).any())


# ---------------------------------------------------------------------------------------
# public functions


def log_bernoulli(X: object, means: np.ndarray, *, dtype: object = None) -> np.ndarray:
    """(n, K) matrix of log P(x_i | p⁽ᵏ⁾) (seed eq. 1), one matrix product; NaN marginalised."""
    _check_shapes(X, None, means)
    dt = work_dtype(X, dtype)
    A, _, _ = _joint_log_prob(as_float(X, dt), _log_params(None, means, dt))
    return A


def e_step(
    X: object, weights: np.ndarray, means: np.ndarray, *, dtype: object = None
) -> tuple[np.ndarray, np.ndarray]:
    """E-step (eq. 5–6): (log responsibilities (n, K), per-sample log-likelihood (n,))."""
    _check_shapes(X, weights, means)
    dt = work_dtype(X, dtype)
    A, _, _ = _joint_log_prob(as_float(X, dt), _log_params(weights, means, dt))
    log_prob = _log_normalizer(A)
    log_resp = A - log_prob[:, None].astype(A.dtype)
    return log_resp, log_prob


def resp_stats(X: object, resp: np.ndarray, *, dtype: object = None) -> SuffStats:
    """Sufficient statistics of given responsibilities (``loglik`` is 0: no parameters)."""
    _check_shapes(X, None, None, resp)
    dt = work_dtype(X, dtype)
    Xf = as_float(X, dt)
    mask = None
    if _has_nan(Xf):
        Xf, mask = _split_missing(Xf)
    return _stats_from_resp(Xf, mask, np.asarray(resp, dtype=dt), 0.0)


def chunk_stats(
    X_chunk: object,
    weights: np.ndarray,
    means: np.ndarray,
    *,
    dtype: object = None,
    sample_weight: np.ndarray | None = None,
) -> SuffStats:
    """E-step on one chunk of rows and its sufficient statistics (two matrix products).

    With ``sample_weight`` (n,) every sum over rows is weighted (``n`` is Σ w).
    """
    _check_shapes(X_chunk, weights, means)
    dt = work_dtype(X_chunk, dtype)
    A, Xf, mask = _joint_log_prob(as_float(X_chunk, dt), _log_params(weights, means, dt))
    log_prob = _responsibilities_inplace(A)
    if sample_weight is None:
        return _stats_from_resp(Xf, mask, A, float(log_prob.sum()))
    w = np.asarray(sample_weight, dtype=np.float64)
    A *= w[:, None].astype(A.dtype)
    stats = _stats_from_resp(Xf, mask, A, float(log_prob @ w))
    return stats._replace(n=float(w.sum()))


def add_stats(a: SuffStats, b: SuffStats) -> SuffStats:
    """The statistics of the union of two disjoint sets of rows."""
    if a.resp_obs is None and b.resp_obs is None:
        resp_obs = None
    else:
        oa = (
            a.resp_obs
            if a.resp_obs is not None
            else np.broadcast_to(a.resp_sum[:, None], a.resp_x.shape)
        )
        ob = (
            b.resp_obs
            if b.resp_obs is not None
            else np.broadcast_to(b.resp_sum[:, None], b.resp_x.shape)
        )
        resp_obs = oa + ob
    return SuffStats(
        a.n + b.n, a.resp_sum + b.resp_sum, a.resp_x + b.resp_x, resp_obs, a.loglik + b.loglik
    )


def sum_stats(parts: Iterable[SuffStats]) -> SuffStats:
    """:func:`add_stats` folded over ``parts`` (one per chunk of rows; at least one)."""
    return functools.reduce(add_stats, parts)


def m_step_from_stats(
    stats: SuffStats,
    alpha: float = 1.0,
    beta: float = 1.0,
    weight_concentration: float = 1.0,
    *,
    prev_means: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP M-step (SPEC §1) from sufficient statistics: (weights (K,), means (K, D)).

    p̂_d⁽ᵏ⁾ = (Σ_i η_ik x_id + a − 1) / (Σ_i η_ik [x_id observed] + a + b − 2) and
    π̂_k = (N_k + c − 1) / (n + K(c − 1)); a = b = c = 1 is eq. 14 and 19. Means are then
    clamped into [MEAN_CLAMP, 1 − MEAN_CLAMP]. Where the denominator is 0 (a component with
    no responsibility under maximum likelihood) the mean is undetermined: it keeps
    ``prev_means`` (0.5 when not given), which leaves the objective unchanged.
    """
    resp_sum = np.asarray(stats.resp_sum, dtype=np.float64)
    w = resp_sum + (weight_concentration - 1.0)
    weights = w / w.sum()  # = (N_k + c − 1) / (n + K(c − 1)) since Σ_k N_k = n
    obs = stats.resp_obs if stats.resp_obs is not None else resp_sum[:, None]
    denom = obs + (alpha + beta - 2.0)
    numer = stats.resp_x + (alpha - 1.0)
    empty = np.broadcast_to(denom <= 0, numer.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = numer / np.where(denom <= 0, 1.0, denom)
    if empty.any():
        fill = 0.5 if prev_means is None else np.broadcast_to(prev_means, means.shape)[empty]
        means[empty] = fill
    return weights, clamp_means(means)


def m_step(
    X: object,
    resp: np.ndarray,
    alpha: float = 1.0,
    beta: float = 1.0,
    weight_concentration: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """M-step (eq. 14, 19; MAP with priors) from data and responsibilities (n, K)."""
    return m_step_from_stats(resp_stats(X, resp), alpha, beta, weight_concentration)


def log_prior(
    weights: np.ndarray,
    means: np.ndarray,
    alpha: float = 1.0,
    beta: float = 1.0,
    weight_concentration: float = 1.0,
) -> float:
    """log Beta(a, b) prior of the means + log Dirichlet(c) prior of the weights.

    Up to their normalising constants (which do not depend on the parameters); 0 when
    a = b = c = 1. Terms with a zero coefficient are skipped, so a zero weight under
    c = 1 gives 0, not NaN.
    """
    p = clamp_means(means)
    total = 0.0
    if alpha != 1.0:
        total += (alpha - 1.0) * float(np.log(p).sum())
    if beta != 1.0:
        total += (beta - 1.0) * float(np.log1p(-p).sum())
    if weight_concentration != 1.0:
        total += (weight_concentration - 1.0) * float(_safe_log(np.asarray(weights)).sum())
    return total


def expected_complete_loglik(
    X: object, resp: np.ndarray, weights: np.ndarray, means: np.ndarray
) -> float:
    """Eq. 7: Σ_i Σ_k η_ik [log π_k + Σ_d x_d log p_d⁽ᵏ⁾ + (1 − x_d) log(1 − p_d⁽ᵏ⁾)].

    Missing entries are left out of the inner sum; terms with η_ik = 0 contribute 0.
    """
    _check_shapes(X, weights, means, resp)
    A = log_bernoulli(X, means, dtype=np.float64) + _safe_log(np.asarray(weights, np.float64))
    resp = np.asarray(resp, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # 0 · (−inf) where a weight is 0: masked below
        return float(np.where(resp > 0, resp * A, 0.0).sum())
