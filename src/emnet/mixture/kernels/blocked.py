"""Latent class E-steps on blocked codes: several items read as one code (SPEC §1b).

On data with many distinct answer patterns (survey-sized sets: tens of thousands of
patterns over 8–30 items) the pass of ``kernels.codes`` spends its time on J table lookups per
row and class and K exponentials per row. This module cuts both, with the same numbers:

- **Blocks of items.** Consecutive items are grouped into blocks whose joint answers
  number at most ``cap`` (an item with missing answers gets one extra "missing" answer).
  A row is coded once per fit as one code per block (mixed radix), so an E-step does B
  lookups per row and class instead of J. Per step, the block tables
  log T_b[s, k] = Σ_{j in b} log θ_{k, j, s_j} (missing: 0) are built from the item table,
  and the E-step statistics per block answer are summed back to the items' counts — both
  cost O(Σ_b S_b · K), small beside the rows when ``cap`` is a fraction of them.
- **Probabilities, not logs, per row.** p_ik = π_k Π_b T_b[s_ib, k] needs no exponential
  per class: one logarithm per row (for the log-likelihood) and one division. A row whose
  total probability is below :data:`TINY` (where products could lose precision or
  underflow) is redone in logs with a log-sum-exp, so the result is the log-domain one to
  rounding for every row.

The statistics are those of ``kernels.codes`` (``counts`` (M, K), ``resp_sum`` (K,), ``obs``
(J, K)), so the M-steps of ``kernels.codes`` apply unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from emnet.mixture.kernels.codes import (
    _bernoulli_tables,
    bernoulli_m_from,
    categorical_m_from,
    exp_shift,
)

TINY = 1e-250
"""A row's total probability below which its E-step is redone in logs."""

MAX_CAP = 4096
"""The most joint answers a block may have."""

MIN_PATTERNS = 2048
"""Distinct rows from which the blocked E-step is used (below, ``kernels.codes``'s pass is as
fast and the block tables would be a large share of a step)."""


class BlockedCodes(NamedTuple):
    """Rows coded by blocks of items, and the maps between block and item tables.

    ``codes`` (n, B) int32: per row and block, the row of the stacked block table (all
    blocks' joint answers one after another, S rows in all). ``entry_row``, ``entry_col``,
    ``entry_item`` (E,): for every stacked row s and every item j of its block, the
    item-table row offsets[j] + answer (−1 for the missing answer) and j.
    """

    codes: np.ndarray
    n_rows: int  # S
    entry_row: np.ndarray
    entry_col: np.ndarray
    entry_item: np.ndarray
    n_blocks: int


def plan_blocks(n_answers: np.ndarray, cap: int) -> list[list[int]]:
    """Consecutive items grouped greedily so that each block's product of ``n_answers`` is
    at most ``cap`` (an item alone may exceed it)."""
    blocks: list[list[int]] = []
    size = 0
    for j, r in enumerate(int(v) for v in n_answers):
        if blocks and size * r <= cap:
            blocks[-1].append(j)
            size *= r
        else:
            blocks.append([j])
            size = r
    return blocks


def block_cap(n_patterns: int) -> int:
    """The block size for ``n_patterns`` distinct rows: block tables stay a small share of
    the work per step (a sixteenth of the rows), at most :data:`MAX_CAP`."""
    return int(min(MAX_CAP, max(1, n_patterns // 16)))


def maybe_blocks(codes: np.ndarray, n_categories: np.ndarray) -> BlockedCodes | None:
    """Blocked codes of distinct rows ``codes`` when they pay (at least
    :data:`MIN_PATTERNS` rows and fewer blocks than items), else None."""
    n, J = codes.shape
    if n < MIN_PATTERNS:
        return None
    blocked = build_blocks(codes, n_categories, block_cap(n))
    return blocked if blocked.n_blocks < J else None


def build_blocks(codes: np.ndarray, n_categories: np.ndarray, cap: int) -> BlockedCodes:
    """Block codes of item ``codes`` (n, J) (−1 missing), answers 0..n_categories[j] − 1."""
    codes = np.asarray(codes)
    n, J = codes.shape
    R = np.asarray(n_categories, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(R)]).astype(np.int64)
    missing = (codes < 0).any(axis=0) if n else np.zeros(J, dtype=bool)
    radix = R + missing.astype(np.int64)  # the missing answer is answer R_j
    blocks = plan_blocks(radix, cap)
    out = np.empty((n, len(blocks)), dtype=np.int32)
    rows, cols, items = [], [], []
    start = 0
    for b, members in enumerate(blocks):
        size = int(np.prod(radix[members]))
        code = np.zeros(n, dtype=np.int64)
        # digits of every joint answer s = Σ_j d_j · Π_{later items} radix
        s = np.arange(size)
        stride = 1
        for j in reversed(members):
            d = codes[:, j].astype(np.int64)
            d = np.where(d < 0, R[j], d)
            code += d * stride
            digit = (s // stride) % radix[j]
            rows.append(start + s)
            cols.append(np.where(digit < R[j], offsets[j] + digit, -1))
            items.append(np.full(size, j))
            stride *= int(radix[j])
        out[:, b] = start + code
        start += size
    return BlockedCodes(
        np.ascontiguousarray(out),
        start,
        np.concatenate(rows).astype(np.int64),
        np.concatenate(cols).astype(np.int64),
        np.concatenate(items).astype(np.int64),
        len(blocks),
    )


@numba.njit(cache=True, nogil=True)
def _block_tables(entry_row, entry_col, n_rows, log_t):  # pragma: no cover - compiled
    """(log T (S, K), T (S, K)) of the item log table (M, K)."""
    K = log_t.shape[1]
    lt = np.zeros((n_rows, K))
    for e in range(entry_row.shape[0]):
        col = entry_col[e]
        if col >= 0:
            s = entry_row[e]
            for k in range(K):
                lt[s, k] += log_t[col, k]
    t = np.empty((n_rows, K))
    for s in range(n_rows):
        for k in range(K):
            t[s, k] = math.exp(lt[s, k])
    return lt, t


@numba.njit(cache=True, nogil=True)
def _blocked_rows_kernel(
    codes, w, log_w, lt, t, block_counts, resp_sum, lo, hi
):  # pragma: no cover
    """The E-step over blocked rows lo..hi − 1: Σ w log p(x) and, per stacked row and class,
    Σ_i w_i η_ik [row i has that block answer] into ``block_counts`` (S, K)."""
    B = codes.shape[1]
    K = lt.shape[1]
    pw = np.empty(K)
    for k in range(K):
        pw[k] = math.exp(log_w[k])
    p = np.empty(K)
    loglik = 0.0
    for i in range(lo, hi):
        for k in range(K):
            p[k] = pw[k]
        for b in range(B):
            s = codes[i, b]
            for k in range(K):
                p[k] *= t[s, k]
        tot = 0.0
        for k in range(K):
            tot += p[k]
        wi = w[i]
        if tot >= TINY:
            loglik += wi * math.log(tot)
            scale = wi / tot
            for k in range(K):
                p[k] *= scale
        else:  # redo this row in logs (underflow or lost precision)
            for k in range(K):
                p[k] = log_w[k]
            for b in range(B):
                s = codes[i, b]
                for k in range(K):
                    p[k] += lt[s, k]
            m, tot = exp_shift(p)
            loglik += wi * (m + math.log(tot))
            scale = wi / tot
            for k in range(K):
                p[k] *= scale
        for k in range(K):
            resp_sum[k] += p[k]
        for b in range(B):
            s = codes[i, b]
            for k in range(K):
                block_counts[s, k] += p[k]
    return loglik


@numba.njit(cache=True, nogil=True)
def _to_items(block_counts, entry_row, entry_col, entry_item, M, J, want_obs):  # pragma: no cover
    """Block statistics (S, K) summed to the items' ``counts`` (M, K) and ``obs`` (J, K)."""
    K = block_counts.shape[1]
    counts = np.zeros((M, K))
    obs = np.zeros((J if want_obs else 1, K))
    for e in range(entry_row.shape[0]):
        col = entry_col[e]
        if col >= 0:
            s = entry_row[e]
            for k in range(K):
                counts[col, k] += block_counts[s, k]
            if want_obs:
                j = entry_item[e]
                for k in range(K):
                    obs[j, k] += block_counts[s, k]
    return counts, obs


def blocked_stats(
    blocked: BlockedCodes,
    sample_weight: np.ndarray,
    log_weights: np.ndarray,
    log_table: np.ndarray,
    n_items: int,
    want_obs: bool,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(Σ w log p(x), counts (M, K), resp_sum (K,), obs (J or 1, K)): the E-step statistics
    of ``kernels.codes`` computed over blocked rows."""
    M, K = log_table.shape
    lt, t = _block_tables(blocked.entry_row, blocked.entry_col, blocked.n_rows, log_table)
    block_counts = np.zeros((blocked.n_rows, K))
    resp_sum = np.zeros(K)
    n = blocked.codes.shape[0]
    loglik = _blocked_rows_kernel(
        blocked.codes, sample_weight, log_weights, lt, t, block_counts, resp_sum, 0, n
    )
    counts, obs = _to_items(
        block_counts, blocked.entry_row, blocked.entry_col, blocked.entry_item, M, n_items,
        want_obs,
    )  # fmt: skip
    return float(loglik), counts, resp_sum, obs


def categorical_blocked_step(
    blocked: BlockedCodes,
    sample_weight: np.ndarray,
    offsets: np.ndarray,
    log_weights: np.ndarray,
    log_table: np.ndarray,
    prob_concentration: float = 1.0,
    weight_concentration: float = 1.0,
    has_missing: bool = True,
) -> tuple[float, np.ndarray, np.ndarray]:
    """``kernels.codes.categorical_em_step`` over blocked rows (same arguments and result)."""
    loglik, counts, resp_sum, obs = blocked_stats(
        blocked, sample_weight, log_weights, log_table, len(offsets) - 1, has_missing
    )
    a, c = float(prob_concentration), float(weight_concentration)
    return loglik, *categorical_m_from(counts, resp_sum, obs, offsets, log_table, a, c, has_missing)


def bernoulli_blocked_step(
    blocked: BlockedCodes,
    sample_weight: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    alpha: float,
    beta: float,
    weight_concentration: float,
    clamp: float,
    has_missing: bool,
) -> tuple[float, np.ndarray, np.ndarray]:
    """``kernels.codes.bernoulli_em_step`` over blocked rows (same arguments and result)."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    means = np.ascontiguousarray(means, dtype=np.float64)
    log_w, log_t = _bernoulli_tables(weights, means)
    loglik, counts, resp_sum, obs = blocked_stats(
        blocked, sample_weight, log_w, log_t, means.shape[1], has_missing
    )
    prior = (float(alpha), float(beta), float(weight_concentration), clamp)
    return loglik, *bernoulli_m_from(counts, resp_sum, obs, means, prior, has_missing)
