"""Bit-packed E and M steps for complete binary data (numba kernels; same math as ``kernels.bernoulli_math``).

For x ∈ {0, 1}ᴰ both products of an EM iteration can be computed without multiplying:

- **E-step** ``X·slopeᵀ``: split the D features into bytes of 8. For byte b, the table
  ``T[b, v] = Σ_{j ∈ v} slope[:, 8b + j]`` (all 256 subsets, K numbers each) turns the
  row's 8 features into one lookup: ``log P(x_i | p_k) + log π_k = bias_k + Σ_b T[b, byte_b(x_i)]``
  — D/8 additions of K-vectors instead of D multiply-adds ("method of four Russians").
- **M-step** ``Rᵀ·X``: split the rows into groups of 8. For group g, the table
  ``U[v] = Σ_{j ∈ v} η_{8g + j}`` (256 subset sums of the group's responsibility rows)
  turns each feature's 8 bits into one lookup: ``Σ_i η_ik x_id = Σ_g U_g[column byte_g(d)]_k``.

Each is exact float arithmetic in a different order of additions (results equal the
matrix products to rounding, ~1e-12 relative in float64). On 70 000 × 784 binary rows one
float64 iteration takes a third (K = 10) to a half (K = 50) of the time of the two matrix
products alone (``docs/benchmarks.md``). Rows are
packed once per fit (:func:`pack_binary`, one pass over X) into ``n·D/4`` bytes: the
row-packed bytes for the E-step and the column-packed bytes for the M-step.

The kernels run on numba's thread pool (one part of the rows per thread, partial
statistics summed at the end). Unless ``NUMBA_THREADING_LAYER`` is set, emnet selects
numba's "workqueue" layer before its first parallel call: numba would otherwise pick GNU
OpenMP, after which a process that forks (``multiprocessing``'s default on Linux) gets
children that abort on their first parallel kernel. Workqueue is fork-safe but must not be
entered from two Python threads at once, so a lock serialises the kernels' calls.
"""

from __future__ import annotations

import numba
import numpy as np

from emnet.mixture.kernels.bernoulli_math import (
    SuffStats,
    _check_shapes,
    _flush_threshold,
    _log_params,
)
from emnet.mixture.kernels.packed import PackedBinary

__all__ = ["PackedBinary", "pack_binary", "packed_log_resp", "packed_stats"]

from emnet.mixture.kernels.threads import LOCK as _LOCK  # noqa: E402 - layer set first

_KERNEL_DTYPES = tuple(
    np.dtype(t)
    for t in (np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64)
    + (np.float32, np.float64)
)
_TILE = 64  # groups of 8 rows per tile of the E-step (512 rows: measured best)
# Reassociation etc. for the table sums; not 'nnan'/'ninf': a zero weight gives bias −inf.
_FAST = {"nsz", "arcp", "contract", "reassoc"}


@numba.njit(parallel=True, cache=True, nogil=True)
def _as_bits(X, out):
    """out ← X as uint8 0/1; False when an entry is not exactly 0 or 1 (NaN included)."""
    n, D = X.shape
    bad = np.zeros(n, dtype=np.bool_)
    for i in numba.prange(n):
        flag = False
        for d in range(D):
            v = X[i, d]
            flag |= (v != 0) & (v != 1)
            out[i, d] = 1 if v == 1 else 0
        bad[i] = flag
    return not bad.any()


@numba.njit(parallel=True, cache=True, nogil=True)
def _pack_columns(bits, cols):
    """cols[g, d] ← the 8 bits of rows 8g … 8g + 7 of feature d (first row highest)."""
    n, D = bits.shape
    for g in numba.prange(cols.shape[0]):
        for j in range(min(8, n - 8 * g)):
            shift = 7 - j
            for d in range(D):
                cols[g, d] |= bits[8 * g + j, d] << shift


def pack_binary(X: object) -> PackedBinary | None:
    """``X`` packed for the kernels, or None when it is not a dense complete 0/1 matrix.

    None for sparse or non-numpy input, non-real dtypes, missing values (NaN) or any
    value other than 0 and 1; the caller then uses the matrix-product path. Costs one pass
    over X (plus a uint8 copy of it, for input that is not already bool or uint8).
    """
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        return None
    if X.dtype == np.bool_:
        bits = X.view(np.uint8)
    elif X.dtype == np.uint8:
        if X.size and X.max() > 1:
            return None
        bits = X
    elif X.dtype in _KERNEL_DTYPES:
        bits = np.empty(X.shape, dtype=np.uint8)
        if X.size:
            with _LOCK:
                if not _as_bits(X, bits):
                    return None
    elif X.dtype.kind in "uif":  # float16, non-native byte order, ...: numpy does it
        ones = X == 1
        if not (ones | (X == 0)).all():
            return None
        bits = ones.view(np.uint8)
    else:
        return None
    n, d = X.shape
    cols = np.zeros(((n + 7) // 8, d), dtype=np.uint8)
    if X.size:
        with _LOCK:
            _pack_columns(bits, cols)
    return PackedBinary(np.packbits(bits, axis=1), cols, (n, d))


@numba.njit(parallel=True, cache=True, nogil=True)
def _byte_tables_kernel(slope_t, tables):
    """tables[256b + v] ← Σ of slope_t[8b + j] over the bits 7 − j set in v (subset sums)."""
    D, K = slope_t.shape
    for b in numba.prange(tables.shape[0] // 256):
        base = 256 * b
        tables[base, :] = 0.0
        size = 1
        for bit in range(8):  # bit `bit` of a byte is feature 8b + 7 − bit
            d = 8 * b + 7 - bit
            for v in range(size):
                for k in range(K):
                    w = slope_t[d, k] if d < D else 0.0
                    tables[base + size + v, k] = tables[base + v, k] + w
            size *= 2


def _byte_tables(slope: np.ndarray) -> np.ndarray:
    """(⌈D/8⌉·256, K) table T[256b + v] = Σ of slope[:, 8b + j] over the bits j set in v.

    Built by numba, not by a matrix product: waking BLAS's threads here would leave them
    spinning against the kernels' own threads.
    """
    k, d = slope.shape
    tables = np.empty(((d + 7) // 8 * 256, k), dtype=slope.dtype)
    with _LOCK:
        _byte_tables_kernel(np.ascontiguousarray(slope.T), tables)
    return tables


@numba.njit(fastmath=_FAST, cache=True, nogil=True)
def _tile_logits(rows, lo, hi, tables, bias):
    """(hi − lo, K) array of bias + Σ_b T[256b + byte_b] for rows lo..hi−1.

    Byte-major loop over a tile of rows, two bytes per pass: each byte's table (256·K
    numbers) is read by the whole tile while it sits in cache, and the tile's sums are
    read and written once per two bytes.
    """
    K = bias.shape[0]
    n_bytes = rows.shape[1]
    out = np.empty((hi - lo, K), dtype=tables.dtype)
    for r in range(hi - lo):
        for k in range(K):
            out[r, k] = bias[k]
    for b in range(0, n_bytes - 1, 2):
        for r in range(hi - lo):
            t1 = 256 * b + rows[lo + r, b]
            t2 = 256 * (b + 1) + rows[lo + r, b + 1]
            for k in range(K):
                out[r, k] += tables[t1, k] + tables[t2, k]
    if n_bytes % 2:
        b = n_bytes - 1
        for r in range(hi - lo):
            t1 = 256 * b + rows[lo + r, b]
            for k in range(K):
                out[r, k] += tables[t1, k]
    return out


@numba.njit(inline="always")
def _normalise(row, cut, flush):
    """row (joint log-probabilities) → responsibilities in place; returns log p(x) (float64).

    As ``kernels.bernoulli_math._responsibilities_inplace``: exp's argument clamped at ``cut``, results at
    or below ``flush`` set to 0.
    """
    K = row.shape[0]
    m = row.max()
    s = 0.0
    for k in range(K):
        e = row[k] - m
        if e < cut:
            e = cut
        e = np.exp(e)
        row[k] = e
        s += e
    inv = 1.0 / s
    for k in range(K):
        r = row[k] * inv
        row[k] = r if r > flush else 0.0
    return np.float64(m) + np.log(s)


@numba.njit(inline="always")
def _log_normalise(row, cut):
    """row (joint log-probabilities) → log responsibilities in place; returns log p(x).

    As ``kernels.bernoulli_math.e_step``: the log-sum-exp's terms clamped at ``cut``, in float64.
    """
    K = row.shape[0]
    m = row.max()
    s = 0.0
    for k in range(K):
        s += np.exp(np.float64(max(row[k] - m, cut)))
    lp = np.float64(m) + np.log(s)
    for k in range(K):
        row[k] = row[k] - lp
    return lp


@numba.njit(parallel=True, cache=True, nogil=True)
def _e_kernel(rows, tables, bias, cut, flush, log_space, out, log_prob):
    """E-step by tiles of rows: log_prob (n,) = log p(x_i), and in out (n, K) the
    responsibilities (:func:`_normalise`) or, with ``log_space``, their logs."""
    n = rows.shape[0]
    tile = 8 * _TILE
    for t in numba.prange((n + tile - 1) // tile):
        lo, hi = t * tile, min(n, (t + 1) * tile)
        block = _tile_logits(rows, lo, hi, tables, bias)
        for r in range(hi - lo):
            if log_space:
                log_prob[lo + r] = _log_normalise(block[r], cut)
            else:
                log_prob[lo + r] = _normalise(block[r], cut, flush)
        out[lo:hi] = block


@numba.njit(inline="always")
def _subset_sums(subset, resp, g, n):
    """subset[v] ← Σ of resp rows 8g + j over the bits 7 − j set in v (rows ≥ n count 0)."""
    K = resp.shape[1]
    size = 1
    for bit in range(8):  # bit `bit` of a column byte is row 8g + 7 − bit
        i = 8 * g + 7 - bit
        if i < n:
            for v in range(size):
                for k in range(K):
                    subset[size + v, k] = subset[v, k] + resp[i, k]
        else:
            for v in range(size):
                for k in range(K):
                    subset[size + v, k] = subset[v, k]
        size *= 2


@numba.njit(parallel=True, fastmath=_FAST, cache=True, nogil=True)
def _resp_x_kernel(cols, resp, resp_x):
    """M-step statistic: resp_x[t] (D, K) = Σ over part t's rows of η_i x_iᵀ.

    Two groups of 8 rows per pass: the 256 subset sums of each group's responsibility
    rows, then one lookup per group and feature by the feature's column byte. (A kernel of
    its own: fused with the E-step in one loop, the pair ran 50% slower.)
    """
    n, K = resp.shape
    n_parts = resp_x.shape[0]
    G, D = cols.shape
    per = (G + n_parts - 1) // n_parts
    per += per % 2
    for t in numba.prange(n_parts):
        first = np.zeros((256, K), dtype=resp.dtype)
        second = np.zeros((256, K), dtype=resp.dtype)
        acc = resp_x[t]
        for g in range(t * per, min(G, (t + 1) * per), 2):
            _subset_sums(first, resp, g, n)
            if g + 1 < G:
                _subset_sums(second, resp, g + 1, n)
                for d in range(D):
                    c1 = cols[g, d]
                    c2 = cols[g + 1, d]
                    for k in range(K):
                        acc[d, k] += first[c1, k] + second[c2, k]
            else:
                for d in range(D):
                    c1 = cols[g, d]
                    for k in range(K):
                        acc[d, k] += first[c1, k]


def _setup(
    packed: PackedBinary, weights: np.ndarray, means: np.ndarray, dtype: object
) -> tuple[np.ndarray, np.ndarray, np.floating, np.floating]:
    dt = np.dtype(dtype)
    _check_shapes(packed, weights, means)
    params = _log_params(weights, means, dt)
    cut, flush = _flush_threshold(dt)
    return _byte_tables(params.slope), np.ascontiguousarray(params.bias, dtype=dt), cut, flush


def packed_stats(
    packed: PackedBinary,
    weights: np.ndarray,
    means: np.ndarray,
    *,
    dtype: object = np.float64,
    sample_weight: np.ndarray | None = None,
) -> SuffStats:
    """Same as :func:`emnet.mixture.kernels.bernoulli_math.chunk_stats` on the unpacked matrix."""
    tables, bias, cut, flush = _setup(packed, weights, means, dtype)
    n, d = packed.shape
    k = bias.shape[0]
    n_parts = max(1, min(numba.get_num_threads(), packed.cols.shape[0]))
    resp = np.empty((n, k), dtype=tables.dtype)
    log_prob = np.empty(n)
    resp_x = np.zeros((n_parts, d, k), dtype=tables.dtype)
    if n:
        with _LOCK:
            _e_kernel(packed.rows, tables, bias, cut, flush, False, resp, log_prob)
            if sample_weight is not None:
                resp *= np.asarray(sample_weight, dtype=resp.dtype)[:, None]
            _resp_x_kernel(packed.cols, resp, resp_x)
    if sample_weight is None:
        total, loglik = float(n), float(log_prob.sum())
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        total, loglik = float(w.sum()), float(log_prob @ w)
    return SuffStats(
        total,
        resp.sum(axis=0, dtype=np.float64),
        np.ascontiguousarray(resp_x.sum(axis=0, dtype=np.float64).T),
        None,
        loglik,
    )


def packed_log_resp(
    packed: PackedBinary, weights: np.ndarray, means: np.ndarray, *, dtype: object = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Same as :func:`emnet.mixture.kernels.bernoulli_math.e_step` on the unpacked matrix."""
    tables, bias, cut, flush = _setup(packed, weights, means, dtype)
    n = packed.shape[0]
    log_resp = np.empty((n, bias.shape[0]), dtype=tables.dtype)
    log_prob = np.empty(n)
    if n:
        with _LOCK:
            _e_kernel(packed.rows, tables, bias, cut, flush, True, log_resp, log_prob)
    return log_resp, log_prob
