"""Latent class math on coded data (SPEC §1b): E-step statistics as one compiled pass.

A data set of n rows and J items is held as ``codes`` (n, J) small integers: item j's
answer as 0..R_j − 1, and −1 where it is missing. The item-response probabilities of all
items sit side by side in one (K, M) array, M = Σ_j R_j, item j in the columns
``offsets[j]:offsets[j + 1]``; the kernels take their logarithms transposed, (M, K), so the
inner loop over classes is contiguous.

One E-step is then, per row i, a sum of J table lookups per class,
``a_ik = log π_k + Σ_j log θ_{k, j, x_ij}`` (missing items left out), a log-sum-exp, and the
weighted responsibilities folded straight into the M-step statistics (``counts`` (M, K),
Σ_i w_i η_ik [x_ij = r]; ``resp_sum`` (K,); ``obs`` (J, K), Σ_i w_i η_ik [x_ij observed]):
one pass over the rows, no (n, K) temporary, no per-iteration Python beyond a few calls.
This is what makes 20 restarts of a survey-sized model cost milliseconds.

A binary (Bernoulli) item is the two-answer case with θ_{k,j,·} = (1 − p_kj, p_kj): the
Bernoulli estimator runs its pattern-compressed and weighted fits through these kernels
(:func:`bernoulli_log_table`, :func:`bernoulli_em_step`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np

PROB_FLOOR = 1e-10
"""Item-response probabilities are kept >= PROB_FLOOR (the largest answer of each item
takes the remainder), so that every log θ stays finite; a two-answer item then matches
the Bernoulli clamp [1e-10, 1 − 1e-10] exactly."""


class CodeStats(NamedTuple):
    """Weighted sufficient statistics of one E-step on coded rows.

    ``n``: Σ w_i; ``resp_sum`` (K,); ``counts`` (M, K): Σ_i w_i η_ik [x_ij = r] at row
    offsets[j] + r; ``obs`` (J, K): Σ_i w_i η_ik [x_ij observed], or None when no answer
    is missing (then it equals ``resp_sum`` for every item); ``loglik``: Σ_i w_i log p(x_i).
    """

    n: float
    resp_sum: np.ndarray
    counts: np.ndarray
    obs: np.ndarray | None
    loglik: float


@numba.njit(cache=True, nogil=True)
def _floor_one(v, floor):  # pragma: no cover - compiled
    """In place on one item's probabilities ``v`` (a 1-D view): every entry >= floor,
    the largest takes 1 − Σ(others) (the rule of :data:`PROB_FLOOR`)."""
    best = 0
    for c in range(1, v.shape[0]):
        if v[c] > v[best]:
            best = c
    rest = 0.0
    for c in range(v.shape[0]):
        if c != best:
            if v[c] < floor:
                v[c] = floor
            rest += v[c]
    v[best] = 1.0 - rest


@numba.njit(cache=True, nogil=True)
def exp_shift(a):  # pragma: no cover - compiled
    """In place a_k ← exp(a_k − max a); returns (max a, Σ_k of the new a): the two halves
    of a log-sum-exp, log Σ exp(a) = max + log(sum)."""
    m = a[0]
    for k in range(1, a.shape[0]):
        if a[k] > m:
            m = a[k]
    s = 0.0
    for k in range(a.shape[0]):
        a[k] = math.exp(a[k] - m)
        s += a[k]
    return m, s


def posterior_rows(ll: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """In place on ll (n, K), the joint log-likelihoods log π_k + log f(x_i | k): each row
    becomes its posterior η_i· (shifted by its maximum, set to 0 where that is not
    finite; IEEE division, so a row of −inf gives NaN posteriors and log p = −inf).
    Returns (Σ_i w_i log p(x_i), Σ_i w_i η_i· (K,)). Two compiled passes around numpy's
    exp (vectorised: several times libm's speed)."""
    top = _shift_rows(ll)
    np.exp(ll, out=ll)
    return _normalise_rows(ll, top, w)


@numba.njit(cache=True, nogil=True)
def log_shares(nk, n):  # pragma: no cover - compiled
    """log max(N_k / n, 1e-300) per class (NaN stays NaN, as with np.maximum): the
    M-step's log class shares."""
    out = np.empty(nk.shape[0])
    for k in range(nk.shape[0]):
        share = nk[k] / n
        out[k] = math.log(share if share >= 1e-300 or share != share else 1e-300)
    return out


@numba.njit(cache=True, nogil=True)
def log_normalised(v):  # pragma: no cover - compiled
    """v − log Σ_k exp v_k (the maximum shifted out) of a short vector."""
    top, s = exp_shift(v.copy())
    return v - (top + math.log(s))


@numba.njit(cache=True, nogil=True)
def _shift_rows(ll):  # pragma: no cover - compiled
    """In place ll_ik ← ll_ik − max_k ll_ik (NaN wins, as in np.maximum; a maximum that is
    not finite counts as 0); returns the maxima (n,)."""
    n, K = ll.shape
    top = np.empty(n)
    for i in range(n):
        t = ll[i, 0]
        for k in range(1, K):
            if ll[i, k] > t or ll[i, k] != ll[i, k]:
                t = ll[i, k]
        if not math.isfinite(t):
            t = 0.0
        top[i] = t
        for k in range(K):
            ll[i, k] -= t
    return top


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _normalise_rows(resp, top, w):  # pragma: no cover - compiled
    """In place each row of exp-shifted ``resp`` divided by its sum; returns
    (Σ_i w_i (log sum_i + top_i), Σ_i w_i resp_i·)."""
    n, K = resp.shape
    nk = np.zeros(K)
    loglik = 0.0
    for i in range(n):
        mass = 0.0
        for k in range(K):
            mass += resp[i, k]
        for k in range(K):
            resp[i, k] /= mass
            nk[k] += w[i] * resp[i, k]
        loglik += w[i] * (math.log(mass) + top[i])
    return loglik, nk


@numba.njit(cache=True, nogil=True)
def _class_stats_kernel(
    codes, w, offsets, log_w, log_t, counts, resp_sum, obs, want_obs, eta, want_eta
):  # pragma: no cover - compiled
    """The E-step pass (module docstring). ``log_w`` is (1, K) (the same class weights for
    every row) or (n, K) (per-row class probabilities: covariates); with ``want_eta`` the
    responsibilities (unweighted) go to ``eta`` (n, K)."""
    n, J = codes.shape
    K = log_t.shape[1]
    per_row = log_w.shape[0] > 1
    a = np.empty(K)
    loglik = 0.0
    for i in range(n):
        r = i if per_row else 0
        for k in range(K):
            a[k] = log_w[r, k]
        for j in range(J):
            c = codes[i, j]
            if c >= 0:
                col = offsets[j] + c
                for k in range(K):
                    a[k] += log_t[col, k]
        m, s = exp_shift(a)
        wi = w[i]
        loglik += wi * (m + math.log(s))
        for k in range(K):
            a[k] /= s
            if want_eta:
                eta[i, k] = a[k]
            a[k] *= wi
            resp_sum[k] += a[k]
        for j in range(J):
            c = codes[i, j]
            if c >= 0:
                col = offsets[j] + c
                for k in range(K):
                    counts[col, k] += a[k]
                if want_obs:
                    for k in range(K):
                        obs[j, k] += a[k]
    return loglik


@numba.njit(cache=True, nogil=True)
def _stats_kernel(
    codes, w, offsets, log_w, log_t, counts, resp_sum, obs, want_obs
):  # pragma: no cover - compiled
    """One set of class weights ``log_w`` (K,) for all rows."""
    no_eta = np.empty((1, 1))
    return _class_stats_kernel(
        codes,
        w,
        offsets,
        log_w.reshape(1, -1),
        log_t,
        counts,
        resp_sum,
        obs,
        want_obs,
        no_eta,
        False,
    )


class FusedStep(NamedTuple):
    """One compiled EM step: the objective's data term at the input parameters and the
    parameters after the M-step (the E-step statistics are consumed inside the kernel)."""

    n: float  # Σ w
    loglik: float  # Σ w log p(x) at the input parameters
    next: Any  # the M-step's parameters


@numba.njit(cache=True, nogil=True)
def _categorical_m_kernel(
    counts, resp_sum, obs, offsets, log_t, a, c, floor, out_w, out_t, want_obs
):  # pragma: no cover - compiled
    """The MAP M-step of θ and π from E-step statistics, in logs, into (out_w, out_t)."""
    M, K = log_t.shape
    J = offsets.shape[0] - 1
    total = 0.0
    for k in range(K):
        total += resp_sum[k] + (c - 1.0)
    for k in range(K):
        wk = (resp_sum[k] + (c - 1.0)) / total
        out_w[k] = math.log(wk) if wk > 1e-300 else math.log(1e-300)
    for j in range(J):
        lo = offsets[j]
        hi = offsets[j + 1]
        R = hi - lo
        for k in range(K):
            denom = (obs[j, k] if want_obs else resp_sum[k]) + R * (a - 1.0)
            if denom <= 0.0:  # no responsibility on this item: keep the previous answer
                for col in range(lo, hi):
                    out_t[col, k] = log_t[col, k]
                continue
            for col in range(lo, hi):
                out_t[col, k] = (counts[col, k] + (a - 1.0)) / denom
            _floor_one(out_t[lo:hi, k], floor)
            for col in range(lo, hi):
                out_t[col, k] = math.log(out_t[col, k])


@numba.njit(cache=True, nogil=True)
def _categorical_em_kernel(
    codes, w, offsets, log_w, log_t, a, c, floor, want_obs
):  # pragma: no cover - compiled
    """E-step at (log_w, log_t) and the MAP M-step: (loglik, next log_w, next log_t)."""
    M, K = log_t.shape
    out_w = np.empty(K)
    out_t = np.empty((M, K))
    J = offsets.shape[0] - 1
    counts = np.zeros((M, K))
    resp_sum = np.zeros(K)
    obs = np.zeros((J if want_obs else 1, K))
    loglik = _stats_kernel(codes, w, offsets, log_w, log_t, counts, resp_sum, obs, want_obs)
    _categorical_m_kernel(
        counts, resp_sum, obs, offsets, log_t, a, c, floor, out_w, out_t, want_obs
    )
    return loglik, out_w, out_t


@numba.njit(parallel=True, cache=True, nogil=True)
def _parallel_stats_kernel(
    codes, w, offsets, log_w, log_t, want_obs, n_parts
):  # pragma: no cover - compiled
    """:func:`_stats_kernel` over ``n_parts`` blocks of rows on numba's threads; the
    blocks' statistics are summed at the end (the same numbers up to rounding)."""
    n, J = codes.shape
    M, K = log_t.shape
    counts = np.zeros((n_parts, M, K))
    resp_sum = np.zeros((n_parts, K))
    obs = np.zeros((n_parts, J if want_obs else 1, K))
    loglik = np.zeros(n_parts)
    step = (n + n_parts - 1) // n_parts
    for t in numba.prange(n_parts):
        lo = t * step
        hi = min(n, lo + step)
        if lo < hi:
            loglik[t] = _stats_kernel(
                codes[lo:hi],
                w[lo:hi],
                offsets,
                log_w,
                log_t,
                counts[t],
                resp_sum[t],
                obs[t],
                want_obs,
            )
    return loglik.sum(), counts.sum(axis=0), resp_sum.sum(axis=0), obs.sum(axis=0)


@numba.njit(cache=True, nogil=True)
def _bernoulli_tables(weights, means):  # pragma: no cover - compiled
    """(log π (K,), log θ (2D, K)) of Bernoulli parameters: rows 2d, 2d + 1 hold
    log(1 − p_d), log p_d."""
    K, D = means.shape
    log_t = np.empty((2 * D, K))
    for k in range(K):
        for d in range(D):
            log_t[2 * d, k] = math.log1p(-means[k, d])
            log_t[2 * d + 1, k] = math.log(means[k, d])
    log_w = np.empty(K)
    for k in range(K):
        log_w[k] = math.log(weights[k]) if weights[k] > 0.0 else -np.inf
    return log_w, log_t


@numba.njit(cache=True, nogil=True)
def _bernoulli_m_kernel(
    counts, resp_sum, obs, means, a, b, c, clamp, out_w, out_m, want_obs
):  # pragma: no cover - compiled
    """The MAP M-step of the means and weights from E-step statistics on binary codes."""
    K, D = means.shape
    total = 0.0
    for k in range(K):
        total += resp_sum[k] + (c - 1.0)
    for k in range(K):
        out_w[k] = (resp_sum[k] + (c - 1.0)) / total
        for d in range(D):
            denom = (obs[d, k] if want_obs else resp_sum[k]) + (a + b - 2.0)
            if denom <= 0.0:
                out_m[k, d] = means[k, d]
                continue
            p = (counts[2 * d + 1, k] + (a - 1.0)) / denom
            out_m[k, d] = min(max(p, clamp), 1.0 - clamp)


@numba.njit(cache=True, nogil=True)
def _bernoulli_em_kernel(
    codes, w, weights, means, a, b, c, clamp, out_w, out_m, want_obs
):  # pragma: no cover - compiled
    """E-step at (weights, means) of binary codes and the MAP M-step into (out_w, out_m)."""
    K, D = means.shape
    log_w, log_t = _bernoulli_tables(weights, means)
    offsets = np.arange(0, 2 * D + 1, 2)
    counts = np.zeros((2 * D, K))
    resp_sum = np.zeros(K)
    obs = np.zeros((D if want_obs else 1, K))
    loglik = _stats_kernel(codes, w, offsets, log_w, log_t, counts, resp_sum, obs, want_obs)
    _bernoulli_m_kernel(counts, resp_sum, obs, means, a, b, c, clamp, out_w, out_m, want_obs)
    return loglik


@numba.njit(cache=True, nogil=True)
def _class_log_resp_kernel(
    codes, offsets, log_w, log_t, out, log_prob
):  # pragma: no cover - compiled
    """log η and log p(x_i); ``log_w`` (1, K) for all rows or (n, K) per row."""
    n, J = codes.shape
    K = log_t.shape[1]
    per_row = log_w.shape[0] > 1
    for i in range(n):
        r = i if per_row else 0
        for k in range(K):
            out[i, k] = log_w[r, k]
        for j in range(J):
            c = codes[i, j]
            if c >= 0:
                col = offsets[j] + c
                for k in range(K):
                    out[i, k] += log_t[col, k]
        m = out[i, 0]
        for k in range(1, K):
            if out[i, k] > m:
                m = out[i, k]
        s = 0.0
        for k in range(K):
            s += math.exp(out[i, k] - m)
        lp = m + math.log(s)
        log_prob[i] = lp
        for k in range(K):
            out[i, k] -= lp


@numba.njit(cache=True, nogil=True)
def _floor_blocks(probs, offsets, floor):  # pragma: no cover - compiled
    """In place: :func:`_floor_one` on every class's block of every item of (K, M)."""
    for k in range(probs.shape[0]):
        for j in range(offsets.shape[0] - 1):
            _floor_one(probs[k, offsets[j] : offsets[j + 1]], floor)


@numba.njit(cache=True, nogil=True)
def _to_logodds_kernel(log_t, offsets, out):  # pragma: no cover - compiled
    """out[(row of answer r >= 1 of item j), k] = log θ_kjr − log θ_kj0."""
    K = log_t.shape[1]
    J = offsets.shape[0] - 1
    row = 0
    for j in range(J):
        lo = offsets[j]
        for col in range(lo + 1, offsets[j + 1]):
            for k in range(K):
                out[row, k] = log_t[col, k] - log_t[lo, k]
            row += 1


@numba.njit(cache=True, nogil=True)
def _from_logodds_kernel(u, offsets, floor, out):  # pragma: no cover - compiled
    """The inverse of :func:`_to_logodds_kernel` (softmax with answer 0 as reference),
    floored like the M-step, as log θ (M, K)."""
    K = out.shape[1]
    J = offsets.shape[0] - 1
    row = 0
    for j in range(J):
        lo = offsets[j]
        hi = offsets[j + 1]
        for k in range(K):
            m = 0.0
            for r in range(hi - lo - 1):
                if u[row + r, k] > m:
                    m = u[row + r, k]
            s = math.exp(-m)
            for r in range(hi - lo - 1):
                s += math.exp(u[row + r, k] - m)
            out[lo, k] = math.exp(-m) / s
            for r in range(hi - lo - 1):
                out[lo + 1 + r, k] = math.exp(u[row + r, k] - m) / s
            _floor_one(out[lo:hi, k], floor)
            for col in range(lo, hi):
                out[col, k] = math.log(out[col, k])
        row += hi - lo - 1


@numba.njit(cache=True, nogil=True)
def _unconstrained_kernel(log_w, log_t, offsets):  # pragma: no cover - compiled
    """[log π (K,), log-odds (M − J, K) row-major] as one vector."""
    M, K = log_t.shape
    J = offsets.shape[0] - 1
    out = np.empty(K + (M - J) * K)
    out[:K] = log_w
    _to_logodds_kernel(log_t, offsets, out[K:].reshape(M - J, K))
    return out


@numba.njit(cache=True, nogil=True)
def _constrained_kernel(vector, offsets, n_classes, floor):  # pragma: no cover - compiled
    """The inverse of :func:`_unconstrained_kernel`: (log π normalised and floored at
    1e-300, log θ (M, K) floored like the M-step)."""
    K = n_classes
    m, s = exp_shift(vector[:K].copy())
    log_w = np.empty(K)
    low = math.log(1e-300)
    for k in range(K):
        log_w[k] = max(vector[k] - m - math.log(s), low)
    M = offsets[-1]
    J = offsets.shape[0] - 1
    log_t = np.empty((M, K))
    _from_logodds_kernel(vector[K:].reshape(M - J, K), offsets, floor, log_t)
    return log_w, log_t


def to_unconstrained(log_weights: np.ndarray, log_table: np.ndarray, offsets: np.ndarray):
    """One vector [log π, log-odds of every answer against each item's first]."""
    return _unconstrained_kernel(log_weights, log_table, offsets)


def from_unconstrained(
    vector: np.ndarray, offsets: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(log π, log θ (M, K)) of :func:`to_unconstrained`'s vector (any log π: normalised)."""
    return _constrained_kernel(np.ascontiguousarray(vector), offsets, n_classes, PROB_FLOOR)


def to_logodds(log_table: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """log-odds of every answer against each item's first answer: (M − J, K)."""
    M, K = log_table.shape
    out = np.empty((M - (len(offsets) - 1), K))
    _to_logodds_kernel(log_table, offsets, out)
    return out


def from_logodds(u: np.ndarray, offsets: np.ndarray, n_classes: int) -> np.ndarray:
    """log θ (M, K) from log-odds (M − J, K), floored at :data:`PROB_FLOOR`."""
    out = np.empty((int(offsets[-1]), n_classes))
    _from_logodds_kernel(np.ascontiguousarray(u).reshape(-1, n_classes), offsets, PROB_FLOOR, out)
    return out


def offsets_of(n_categories: np.ndarray) -> np.ndarray:
    """Column offsets (J + 1,) of the items' blocks in the flattened (K, M) layout."""
    return np.concatenate([[0], np.cumsum(n_categories)]).astype(np.int64)


def _log_weights(weights: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(weights, dtype=np.float64))


def code_log_resp(
    codes: np.ndarray, offsets: np.ndarray, weights: np.ndarray, log_table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(log responsibilities (n, K), log p(x_i) (n,)) of coded rows, one set of weights."""
    return rows_code_log_resp(codes, offsets, _log_weights(weights).reshape(1, -1), log_table)


def floor_probs(probs: np.ndarray, offsets: np.ndarray, floor: float = PROB_FLOOR) -> np.ndarray:
    """A copy of ``probs`` (K, M) with every entry >= floor and each item summing to 1."""
    out = np.array(probs, dtype=np.float64, order="C")
    _floor_blocks(out, offsets, floor)
    return out


def categorical_m_step(
    stats: CodeStats,
    n_categories: np.ndarray,
    offsets: np.ndarray,
    prob_concentration: float = 1.0,
    weight_concentration: float = 1.0,
    prev_probs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP M-step (SPEC §1b): (weights (K,), probs (K, M)).

    θ_kjr = (count + a − 1) / (N_kj + R_j(a − 1)) with N_kj = Σ_i w_i η_ik [x_ij observed];
    π_k = (N_k + c − 1) / (n + K(c − 1)). Where N_kj + R_j(a − 1) is 0 (a class with no
    responsibility on item j, ML) θ keeps ``prev_probs`` (uniform when None). Then floored
    at :data:`PROB_FLOOR`.
    """
    w = stats.resp_sum + (weight_concentration - 1.0)
    weights = w / w.sum()
    obs = stats.resp_sum[None, :] if stats.obs is None else stats.obs  # (J or 1, K)
    denom = obs.T + n_categories[None, :] * (prob_concentration - 1.0)  # (K, J)
    denom = np.broadcast_to(denom, (len(weights), len(n_categories)))
    full = np.repeat(denom, n_categories, axis=1)  # (K, M)
    numer = stats.counts.T + (prob_concentration - 1.0)
    empty = full <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        probs = numer / np.where(empty, 1.0, full)
    if empty.any():
        if prev_probs is None:
            prev_probs = np.repeat(1.0 / n_categories, n_categories)[None, :]
        probs[empty] = np.broadcast_to(prev_probs, probs.shape)[empty]
    _floor_blocks(probs, offsets, PROB_FLOOR)
    return weights, probs


# -- binary items through the same kernels ------------------------------------------------


def bernoulli_log_table(means: np.ndarray) -> np.ndarray:
    """(2D, K) log table of Bernoulli means (rows 2d, 2d + 1: log(1 − p_d), log p_d)."""
    K, D = means.shape
    table = np.empty((D, 2, K))
    table[:, 0, :] = np.log1p(-means).T
    table[:, 1, :] = np.log(means).T
    return table.reshape(2 * D, K)


def binary_codes(X: np.ndarray) -> np.ndarray:
    """Dense 0/1/NaN (n, D) data as int8 codes (NaN → −1)."""
    X = np.asarray(X)
    if X.dtype.kind == "f":
        codes = np.where(np.isnan(X), -1, X).astype(np.int8)
    else:
        codes = X.astype(np.int8)
    return np.ascontiguousarray(codes)


def binary_offsets(n_features: int) -> np.ndarray:
    return np.arange(0, 2 * n_features + 1, 2, dtype=np.int64)


def compress_rows(
    codes: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct rows, their summed weights, inverse index) of integer ``codes``.

    Rows are compared whole (a byte view), so −1 (missing) compares equal to −1.
    """
    codes = np.ascontiguousarray(codes)
    n = codes.shape[0]
    if n == 0:
        return codes, np.zeros(0), np.zeros(0, dtype=np.intp)
    view = codes.view(np.dtype((np.void, codes.dtype.itemsize * codes.shape[1])))
    _, first, inverse = np.unique(view.ravel(), return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    w = np.ones(n) if sample_weight is None else sample_weight
    totals = np.bincount(inverse, weights=w, minlength=len(first))
    return codes[first], totals, inverse


PARALLEL_ROWS = 20_000
"""Row counts at or above which an EM step runs on numba's threads (``kernels.threads``)."""


def _parallel_parts(n: int) -> int:
    """How many blocks of rows to run on threads (1: the serial kernel)."""
    if n < PARALLEL_ROWS:
        return 1
    return max(1, min(numba.get_num_threads(), n // (PARALLEL_ROWS // 2)))


def _parallel_stats(codes, w, offsets, log_w, log_t, want_obs, parts):  # noqa: ANN001
    from emnet.mixture.kernels.threads import LOCK

    with LOCK:
        return _parallel_stats_kernel(codes, w, offsets, log_w, log_t, want_obs, parts)


def categorical_m_from(
    counts: np.ndarray,
    resp_sum: np.ndarray,
    obs: np.ndarray,
    offsets: np.ndarray,
    log_table: np.ndarray,
    a: float,
    c: float,
    has_missing: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(next log weights, next log table): the compiled MAP M-step of E-step statistics
    (``log_table`` is the current one, kept where an item has no responsibility)."""
    out_w = np.empty(log_table.shape[1])
    out_t = np.empty_like(log_table)
    _categorical_m_kernel(
        counts, resp_sum, obs, offsets, log_table, a, c, PROB_FLOOR, out_w, out_t, has_missing
    )
    return out_w, out_t


def bernoulli_m_from(
    counts: np.ndarray,
    resp_sum: np.ndarray,
    obs: np.ndarray,
    means: np.ndarray,
    prior: tuple[float, float, float, float],
    has_missing: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(next weights, next means): the compiled MAP M-step of E-step statistics on binary
    codes; ``prior`` = (alpha, beta, weight_concentration, clamp)."""
    out_w = np.empty(means.shape[0])
    out_m = np.empty(means.shape)
    _bernoulli_m_kernel(counts, resp_sum, obs, means, *prior, out_w, out_m, has_missing)
    return out_w, out_m


def categorical_em_step(
    codes: np.ndarray,
    sample_weight: np.ndarray,
    offsets: np.ndarray,
    log_weights: np.ndarray,
    log_table: np.ndarray,
    prob_concentration: float = 1.0,
    weight_concentration: float = 1.0,
    has_missing: bool = True,
) -> tuple[float, np.ndarray, np.ndarray]:
    """(Σ w log p(x) at the input, next log weights (K,), next log table (M, K)): one EM step.

    The E-step of :func:`rows_code_stats` followed by :func:`categorical_m_step`, in one
    compiled call (logs in, logs out; weights floored at 1e-300 inside the log); on
    ``PARALLEL_ROWS`` rows or more the E-step runs on numba's threads.
    """
    a, c = float(prob_concentration), float(weight_concentration)
    parts = _parallel_parts(codes.shape[0])
    if parts > 1:
        loglik, counts, resp_sum, obs = _parallel_stats(
            codes, sample_weight, offsets, log_weights, log_table, has_missing, parts
        )
        return (
            float(loglik),
            *categorical_m_from(counts, resp_sum, obs, offsets, log_table, a, c, has_missing),
        )
    return _categorical_em_kernel(
        codes, sample_weight, offsets, log_weights, log_table, a, c, PROB_FLOOR, has_missing
    )


def bernoulli_em_step(
    codes: np.ndarray,
    sample_weight: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    alpha: float,
    beta: float,
    weight_concentration: float,
    clamp: float,
    has_missing: bool,
) -> tuple[float, np.ndarray, np.ndarray]:
    """(Σ w log p(x) at the input, next weights, next means): one compiled Bernoulli EM
    step over binary codes (same math as ``kernels.bernoulli_math.chunk_stats`` + ``m_step_from_stats``);
    on ``PARALLEL_ROWS`` rows or more the E-step runs on numba's threads."""
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    means = np.ascontiguousarray(means, dtype=np.float64)
    prior = (float(alpha), float(beta), float(weight_concentration), clamp)
    parts = _parallel_parts(codes.shape[0])
    if parts > 1:
        log_w, log_t = _bernoulli_tables(weights, means)
        offsets = binary_offsets(means.shape[1])
        loglik, counts, resp_sum, obs = _parallel_stats(
            codes, sample_weight, offsets, log_w, log_t, has_missing, parts
        )
        return float(loglik), *bernoulli_m_from(counts, resp_sum, obs, means, prior, has_missing)
    out_w = np.empty(weights.shape[0])
    out_m = np.empty(means.shape)
    loglik = _bernoulli_em_kernel(
        codes, sample_weight, weights, means, *prior, out_w, out_m, has_missing
    )
    return float(loglik), out_w, out_m


def rows_code_stats(
    codes: np.ndarray,
    sample_weight: np.ndarray,
    offsets: np.ndarray,
    log_w_rows: np.ndarray,
    log_table: np.ndarray,
    has_missing: bool = True,
) -> tuple[CodeStats, np.ndarray]:
    """(weighted statistics, responsibilities (n, K)) with per-row class log-probabilities."""
    M, K = log_table.shape
    J = codes.shape[1]
    counts = np.zeros((M, K))
    resp_sum = np.zeros(K)
    obs = np.zeros((J, K)) if has_missing else np.zeros((1, K))
    eta = np.empty((codes.shape[0], K))
    loglik = _class_stats_kernel(
        codes, sample_weight, offsets, np.ascontiguousarray(log_w_rows), log_table, counts,
        resp_sum, obs, has_missing, eta, True,
    )  # fmt: skip
    stats = CodeStats(
        float(sample_weight.sum()), resp_sum, counts, obs if has_missing else None, float(loglik)
    )
    return stats, eta


def rows_code_log_resp(
    codes: np.ndarray, offsets: np.ndarray, log_w_rows: np.ndarray, log_table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`code_log_resp` with class log-probabilities per row (n, K), or (1, K) for
    all rows alike."""
    n, K = codes.shape[0], log_table.shape[1]
    out = np.empty((n, K))
    log_prob = np.empty(n)
    _class_log_resp_kernel(
        codes,
        offsets,
        np.ascontiguousarray(log_w_rows),
        np.ascontiguousarray(log_table),
        out,
        log_prob,
    )
    return out, log_prob


def code_stats(
    codes: np.ndarray,
    sample_weight: np.ndarray,
    offsets: np.ndarray,
    log_weights: np.ndarray,
    log_table: np.ndarray,
    has_missing: bool = True,
) -> CodeStats:
    """The weighted E-step statistics of coded rows under one set of class weights, in
    one serial compiled pass (a chunk's part of an E-step: the Dask and online backends
    sum or average them, then take :func:`categorical_m_from`)."""
    M, K = log_table.shape
    counts = np.zeros((M, K))
    resp_sum = np.zeros(K)
    obs = np.zeros((codes.shape[1] if has_missing else 1, K))
    loglik = _stats_kernel(
        np.ascontiguousarray(codes), np.ascontiguousarray(sample_weight, dtype=np.float64),
        offsets, np.ascontiguousarray(log_weights, dtype=np.float64),
        np.ascontiguousarray(log_table), counts, resp_sum, obs, has_missing,
    )  # fmt: skip
    return CodeStats(
        float(np.sum(sample_weight)), resp_sum, counts, obs if has_missing else None, float(loglik)
    )


def add_code_stats(a: CodeStats, b: CodeStats) -> CodeStats:
    """The statistics of two chunks together."""
    obs = None if a.obs is None or b.obs is None else a.obs + b.obs
    return CodeStats(
        a.n + b.n, a.resp_sum + b.resp_sum, a.counts + b.counts, obs, a.loglik + b.loglik
    )
