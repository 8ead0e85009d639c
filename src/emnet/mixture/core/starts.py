"""Initial parameters for EM: k-means++ or random seeding on the binary data.

``'kmeans++'`` and ``'random_from_data'`` pick K seed rows (k-means++ with greedy local
trials, as scikit-learn's ``kmeans_plusplus``, on squared Euclidean = Hamming distance for
binary rows; or uniformly without replacement), assign every row to its nearest seed, and
take one smoothed M-step from those hard assignments: p̂ = (Σ x + 1)/(N_k + 2),
π̂ = (N_k + 1)/(n + K) (Laplace smoothing keeps the start away from 0 and 1).
``'random'`` takes the same smoothed M-step from uniformly random responsibilities.
Missing entries count as 0.5 in the distances. Everything runs chunk by chunk.

With ``sample_weight`` every row counts with its weight: k-means++ draws seeds with
probability ∝ w·(distance²) (the first ∝ w) by inverting cumulative sums in row order, the
local trials minimise the weighted potential and the smoothed M-step uses weighted counts.
Integer weights therefore give exactly the start that repeating each row (in place) gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from emnet.mixture.core.validation import iter_chunks
from emnet.mixture.kernels.bernoulli_math import (
    SuffStats,
    as_float,
    m_step_from_stats,
    resp_stats,
    sum_stats,
)

INIT_PARAMS = ("kmeans++", "random", "random_from_data")


def _filled(chunk: object, dtype: np.dtype, has_nan: bool = True) -> object:
    """A float chunk with NaN → 0.5 (copies only when there is a NaN)."""
    Xf = as_float(chunk, dtype)
    if not has_nan:
        return Xf
    data = Xf.data if sp.issparse(Xf) else Xf
    nan = np.isnan(data)
    if not nan.any():
        return Xf
    if sp.issparse(Xf):
        Xf = Xf.copy()
        Xf.data[nan] = 0.5
        return Xf
    return np.where(nan, dtype.type(0.5), Xf)


def _rows(X: object, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of X as a dense float64 array with NaN → 0.5."""
    rows = X[np.asarray(idx)]
    rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
    rows = rows.astype(np.float64)
    rows[np.isnan(rows)] = 0.5
    return rows


def _any_nan(X: object, batch_size: int | None) -> bool:
    if not np.issubdtype(X.dtype, np.floating):
        return False
    for chunk in iter_chunks(X, batch_size):
        if np.isnan(chunk.data if sp.issparse(chunk) else chunk).any():
            return True
    return False


def _row_sq_norms(X: object, batch_size: int | None, dtype: np.dtype, has_nan: bool) -> np.ndarray:
    out = []
    for chunk in iter_chunks(X, batch_size):
        Xf = _filled(chunk, dtype, has_nan)
        sq = Xf.multiply(Xf).sum(axis=1) if sp.issparse(Xf) else np.einsum("ij,ij->i", Xf, Xf)
        out.append(np.asarray(sq, dtype=np.float64).ravel())
    return np.concatenate(out) if out else np.zeros(0)


def _sq_dists(
    X: object,
    centers: np.ndarray,
    row_sq: np.ndarray,
    batch_size: int | None,
    dtype: np.dtype,
    has_nan: bool,
) -> np.ndarray:
    """(m, n) squared distances from each of the m centers to every row of X."""
    C = centers.astype(dtype)
    c_sq = (centers**2).sum(axis=1)
    out = np.empty((len(centers), X.shape[0]))
    start = 0
    for chunk in iter_chunks(X, batch_size):
        Xf = _filled(chunk, dtype, has_nan)
        stop = start + Xf.shape[0]
        cross = np.asarray(Xf @ C.T, dtype=np.float64).T
        out[:, start:stop] = row_sq[start:stop] - 2.0 * cross + c_sq[:, None]
        start = stop
    return np.maximum(out, 0.0, out=out)


def kmeans_plusplus_seeds(
    X: object,
    n_components: int,
    rng: np.random.RandomState,
    *,
    batch_size: int | None = None,
    dtype: object = np.float64,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of K seed rows by greedy k-means++ (2 + ⌊log K⌋ local trials per seed)."""
    dtype = np.dtype(dtype)
    n = X.shape[0]
    n_trials = 2 + int(np.log(n_components))
    has_nan = _any_nan(X, batch_size)
    row_sq = _row_sq_norms(X, batch_size, dtype, has_nan)
    w = sample_weight
    cum_w = np.cumsum(np.ones(n) if w is None else w)
    # drawn by cumulative weight, so that integer weights draw exactly what repeated rows do
    first = min(int(np.searchsorted(cum_w, rng.uniform() * cum_w[-1], side="right")), n - 1)
    seeds = [first]
    closest = _sq_dists(X, _rows(X, seeds), row_sq, batch_size, dtype, has_nan)[0]
    for _ in range(1, n_components):
        mass = closest if w is None else closest * w
        potential = mass.sum()
        if potential <= 0:  # every row coincides with a seed: pick any unused row
            unused = np.setdiff1d(np.arange(n), seeds)
            seeds.append(int(rng.choice(unused)))
            continue
        cum = np.cumsum(mass)
        candidates = np.searchsorted(cum, rng.uniform(size=n_trials) * cum[-1])
        candidates = np.minimum(candidates, n - 1)
        d = _sq_dists(X, _rows(X, candidates), row_sq, batch_size, dtype, has_nan)
        np.minimum(d, closest, out=d)
        best = int(np.argmin(d.sum(axis=1) if w is None else d @ w))
        seeds.append(int(candidates[best]))
        closest = d[best]
    return np.asarray(seeds)


def _weighted_choice(w: np.ndarray, rng: np.random.RandomState, size: int) -> np.ndarray:
    """``size`` distinct row indices drawn with probability ∝ w."""
    p = np.asarray(w, dtype=np.float64) / float(np.sum(w))
    return rng.choice(len(p), size=size, replace=False, p=p)


def _weighted(resp: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    return resp if w is None else resp * w[:, None].astype(resp.dtype)


def _assignment_stats(
    X: object,
    seeds: np.ndarray,
    batch_size: int | None,
    dtype: np.dtype,
    sample_weight: np.ndarray | None = None,
) -> SuffStats:
    """Statistics of the hard assignment of every row to its nearest seed row."""
    centers = _rows(X, seeds)
    C = centers.astype(dtype)
    c_sq = (centers**2).sum(axis=1)
    has_nan = _any_nan(X, batch_size)
    parts = []
    for chunk, w in zip(
        iter_chunks(X, batch_size), _weight_chunks(X, sample_weight, batch_size), strict=True
    ):
        cross = np.asarray(_filled(chunk, dtype, has_nan) @ C.T, dtype=np.float64)
        labels = np.argmin(c_sq[None, :] - 2.0 * cross, axis=1)  # row norm is constant
        resp = np.zeros((len(labels), len(seeds)), dtype=dtype)
        resp[np.arange(len(labels)), labels] = 1
        parts.append(resp_stats(chunk, _weighted(resp, w), dtype=dtype))
    return sum_stats(parts)


def _weight_chunks(X: object, sample_weight: np.ndarray | None, batch_size: int | None) -> Any:
    """The weights chunked like ``iter_chunks(X, batch_size)`` (None per chunk without)."""
    if sample_weight is None:
        return (None for _ in iter_chunks(X, batch_size))
    return iter_chunks(sample_weight, batch_size)


def _random_resp_stats(
    X: object,
    n_components: int,
    rng: np.random.RandomState,
    batch_size: int | None,
    dtype: np.dtype,
    sample_weight: np.ndarray | None = None,
) -> SuffStats:
    parts = []
    weights = _weight_chunks(X, sample_weight, batch_size)
    for chunk, w in zip(iter_chunks(X, batch_size), weights, strict=True):
        resp = rng.uniform(size=(chunk.shape[0], n_components)).astype(dtype)
        resp /= resp.sum(axis=1, keepdims=True)
        parts.append(resp_stats(chunk, _weighted(resp, w), dtype=dtype))
    return sum_stats(parts)


def initialize(
    X: object,
    n_components: int,
    init_params: str,
    rng: np.random.RandomState,
    *,
    batch_size: int | None = None,
    dtype: object = np.float64,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Initial (weights (K,), means (K, D)) by ``init_params`` (see the module docstring)."""
    dtype = np.dtype(dtype)
    w = sample_weight
    if init_params == "kmeans++":
        seeds = kmeans_plusplus_seeds(
            X, n_components, rng, batch_size=batch_size, dtype=dtype, sample_weight=w
        )
        stats = _assignment_stats(X, seeds, batch_size, dtype, w)
    elif init_params == "random_from_data":
        if w is None:
            seeds = rng.choice(X.shape[0], size=n_components, replace=False)
        else:
            seeds = _weighted_choice(w, rng, size=min(n_components, int(np.sum(w > 0))))
            if len(seeds) < n_components:
                raise ValueError(
                    f"n_components={n_components} needs at least as many rows with a "
                    "positive sample_weight"
                )
        stats = _assignment_stats(X, seeds, batch_size, dtype, w)
    elif init_params == "random":
        stats = _random_resp_stats(X, n_components, rng, batch_size, dtype, w)
    else:
        raise ValueError(f"init_params: expected one of {INIT_PARAMS}, got {init_params!r}")
    return m_step_from_stats(stats, 2.0, 2.0, 2.0)  # Laplace-smoothed (module docstring)
