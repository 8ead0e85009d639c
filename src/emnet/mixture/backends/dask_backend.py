"""EM on a ``dask.array``: sufficient statistics per chunk on the workers, reduced there.

Each EM iteration sends the current parameters (K + K·D numbers, one key shared by every
task) to the workers, computes :class:`SuffStats` of every row-chunk where the chunk lives,
and sums them pairwise in a tree on the workers; only the K×D statistics travel between
tasks, never the rows. The estimator's EM loop only ever sees ``stats(weights, means)``,
so a dask fit runs exactly the iterations of the in-memory fit (same init → same result up
to the order of floating-point sums).

``sample_weight`` (n,): a numpy array or a 1-D dask array, rechunked to X's row chunks and
checked as in memory (finite, non-negative, not all zero; errors name ``sample_weight``)
by :func:`~emnet.mixture.backends.family_dask.check_weights_parts`, which persists each
chunk's weights on the workers beside it. Every sum over rows is weighted there: each
E-step's statistics, the log-likelihood and N = Σ w. The start is drawn as for
:class:`~emnet.mixture.LatentClassModel` (:func:`~emnet.mixture.backends.family_dask._sample`):
all rows with their weights when there are at most
:data:`~emnet.mixture.backends.family_dask.INIT_SAMPLE_ROWS` (then the
start is the weighted in-memory fit's), else that many rows drawn in proportion to the
weights.

Whatever scheduler is active is used: a ``distributed.Client`` created before ``fit`` (a
``LocalCluster`` or ``Client("tcp://scheduler:8786")``), else dask's default threads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from emnet.mixture.backends import family_dask  # INIT_SAMPLE_ROWS: one for every Dask fit
from emnet.mixture.backends.family_dask import (
    Weights,
    _sample,
    _tree,
    check_weights_parts,
    weight_parts,
)
from emnet.mixture.backends.numpy_backend import prepared_stats
from emnet.mixture.core.em import FitData
from emnet.mixture.kernels.bernoulli_math import SuffStats, add_stats, chunk_stats

__all__ = [
    "is_dask_array",
    "prepare_dask_array",
    "DaskInfo",
    "dask_stats",
    "sample_rows",
    "dask_log_resp",
    "prepare_fit",
    "estimate_dask",
]

StatsFn = Callable[[np.ndarray, np.ndarray], SuffStats]


def is_dask_array(X: Any) -> bool:
    """True for a dask.array.Array (checked without importing dask when it is not loaded)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


class DaskInfo:
    """Shape facts of a validated dask array."""

    def __init__(self, n_samples: int, n_features: int, has_nan: bool) -> None:
        self.n_samples = n_samples
        self.n_features = n_features
        self.has_nan = has_nan


def _check_block(block: np.ndarray, row0: int) -> tuple[str | None, bool]:
    """(error message or None, has_nan) for one block whose first row is global row0."""
    a = np.asarray(block)
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.unsignedinteger):
        bad = a > 1
        nan = np.zeros(a.shape, dtype=bool)
    elif np.issubdtype(a.dtype, np.number):
        nan = np.isnan(a) if np.issubdtype(a.dtype, np.floating) else np.zeros(a.shape, bool)
        bad = ~nan & (a != 0) & (a != 1)
    else:
        return f"X must hold numbers, got dtype {a.dtype}", False
    if bad.any():
        r, c = np.argwhere(bad)[0]
        return (
            f"X must be binary (0/1, NaN for missing); row {row0 + r}, column {c} "
            f"holds {float(a[r, c]):g}",
            False,
        )
    if nan.any():
        empty = nan.all(axis=1)
        if empty.any():
            r = int(np.argmax(empty))
            return f"row {row0 + r} of X has no observed entry (all NaN)", True
    return None, bool(nan.any())


def prepare_dask_array(X: Any) -> tuple[Any, DaskInfo]:
    """Rechunk X to whole rows per chunk and validate every chunk on the workers.

    Raises ValueError naming the first offending row/column, like the in-memory fit.
    """
    import dask

    if X.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got a dask array of shape {X.shape}")
    if any(np.isnan(s) for s in X.shape):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    n, d = (int(s) for s in X.shape)
    if n == 0 or d == 0:
        raise ValueError(f"X is empty (shape {X.shape})")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int)
    blocks = X.to_delayed().ravel()
    checks = dask.compute(
        *[dask.delayed(_check_block)(b, int(o)) for b, o in zip(blocks, offsets, strict=True)]
    )
    for msg, _ in checks:
        if msg is not None:
            raise ValueError(msg)
    return X, DaskInfo(n, d, any(has_nan for _, has_nan in checks))


def dask_stats(
    X: Any, chunk_fn: StatsFn | None = None, weights: Weights | None = None
) -> Callable[..., SuffStats]:
    """Return ``stats(weights, means) -> SuffStats`` over all of X, computed on the workers.

    ``chunk_fn(X_chunk, weights, means)`` defaults to the numpy kernel
    :func:`emnet.mixture.kernels.bernoulli_math.chunk_stats`; a backend's bound ``chunk_stats`` (picklable)
    may be passed instead. With ``weights`` (the checked ``sample_weight`` of
    :func:`~emnet.mixture.backends.family_dask.check_weights_parts`, cut at X's row
    chunks) each chunk's persisted weights go to ``chunk_fn`` as ``sample_weight=``, so
    every sum over rows is weighted (``n`` is Σ w).
    """
    import dask

    fn = chunk_stats if chunk_fn is None else chunk_fn
    blocks = list(X.to_delayed().ravel())
    chunk_w = weight_parts(weights, len(blocks))
    task = dask.delayed(fn, pure=True)
    add = dask.delayed(add_stats, pure=True)

    def part(block: Any, w: Any, m: Any, sw: Any) -> Any:
        return task(block, w, m) if sw is None else task(block, w, m, sample_weight=sw)

    def stats(weights: np.ndarray, means: np.ndarray) -> SuffStats:
        w = dask.delayed(np.asarray(weights, dtype=np.float64), pure=True)
        m = dask.delayed(np.asarray(means, dtype=np.float64), pure=True)
        pieces = [part(b, w, m, sw) for b, sw in zip(blocks, chunk_w, strict=True)]
        (total,) = dask.compute(_tree(pieces, add))
        return total

    return stats


def sample_rows(X: Any, n_rows: int, random_state: np.random.Generator) -> np.ndarray:
    """A uniform random subset of at most ``n_rows`` rows of X, as an in-memory array."""
    n = int(X.shape[0])
    if n <= n_rows:
        return np.asarray(X.compute())
    idx = np.sort(random_state.choice(n, size=n_rows, replace=False))
    return np.asarray(X[idx].compute())


def dask_log_resp(
    X: Any, weights: np.ndarray, means: np.ndarray, log_resp_fn: Callable[..., Any]
) -> tuple[Any, Any]:
    """Lazy (log responsibilities, log p(x)) as dask arrays, chunked like X's rows."""
    k = int(np.asarray(means).shape[0])
    w = np.asarray(weights, dtype=np.float64)
    m = np.asarray(means, dtype=np.float64)
    lr = X.map_blocks(
        lambda b: log_resp_fn(b, w, m)[0], chunks=(X.chunks[0], (k,)), dtype=np.float64
    )
    lp = X.map_blocks(
        lambda b: log_resp_fn(b, w, m)[1], chunks=(X.chunks[0],), drop_axis=1, dtype=np.float64
    )
    return lr, lp


def prepare_fit(
    estimator: Any, X: Any, backend: Any, sample_weight: Any = None, *, reset: bool
) -> FitData:
    """``BernoulliMixture._prepare_fit`` on a dask array: the in-memory start sample (and
    its weights) and the distributed ``stats(params)``.

    Validates X on the workers, records ``n_features_in_``, checks ``sample_weight`` (a
    numpy or 1-D dask array, cut at X's row chunks and persisted beside them: see the
    module docstring) and builds the distributed ``stats`` with the estimator's backend
    kernel. The initialisation (k-means++ etc.) runs on at most
    :data:`~emnet.mixture.backends.family_dask.INIT_SAMPLE_ROWS` rows: a uniform sample
    without weights; with them all rows and their weights when there are no more, else
    rows drawn in proportion to the weights.
    """
    X, info = prepare_dask_array(X)
    if reset:
        estimator.n_features_in_ = info.n_features
        if info.n_samples < estimator.n_components:
            raise ValueError(
                f"n_components={estimator.n_components} must be <= n_samples={info.n_samples}"
            )
    elif info.n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {info.n_features} features, but {type(estimator).__name__} was fitted "
            f"with {estimator.n_features_in_}"
        )
    rows = [int(r) for r in X.chunks[0]]
    weights = check_weights_parts(sample_weight, rows)
    seed = check_random_state(estimator.random_state).randint(2**31) if reset else 0
    if weights is None:
        sample = sample_rows(X, family_dask.INIT_SAMPLE_ROWS, np.random.default_rng(seed))
        sample_w = None
    else:  # the family's weighted start sample (rows ∝ weights, or all with their weights)
        sample, sample_w = _sample(list(X.to_delayed().ravel()), rows, seed, weights)
    stats = dask_stats(X, functools.partial(prepared_stats, backend), weights)
    return FitData(np.asarray(sample), sample_w, lambda p: stats(p.weights, p.means))


def estimate_dask(estimator: Any, X: Any, backend: Any) -> tuple[Any, Any]:
    """Lazy (log responsibilities, log p(x)) of a fitted estimator on a dask array.

    X is validated on the workers first (binary, no empty row, the fitted feature count);
    ``predict``/``predict_proba``/``score_samples`` then return dask arrays.
    """
    X, info = prepare_dask_array(X)
    if info.n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {info.n_features} features, but {type(estimator).__name__} was fitted "
            f"with {estimator.n_features_in_}"
        )
    return dask_log_resp(X, estimator.weights_, estimator.means_, backend.log_resp)
