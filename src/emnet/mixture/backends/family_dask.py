"""EM of the latent class family (:class:`~emnet.mixture.LatentClassModel`) on Dask
collections, written only against the measurement contract.

Input: a ``dask.array.Array`` (numbers, NaN for missing; column chunks are merged so that
every chunk holds whole rows) or a ``dask.dataframe.DataFrame`` (numbers, text, pandas
categoricals — with the same categories in every partition, e.g. after
``ddf.categorize()`` — as in memory).

What a fit computes where (nothing but statistics and small summaries reaches the client):

1. **One pass over the chunks** (on the workers): each chunk's values are checked (no
   infinite value, no row without an observed entry) and their rows counted; with
   ``measurement=None`` each numeric column's *profile* (up to 11 distinct values, its
   minimum, one non-whole value if any) is taken, merged on the client and read by the
   model's own inference rule — so the types are those the in-memory fit would infer.
2. **The blocks' data constants**, by reductions over the chunks: each block's
   ``setup_summary`` per chunk (and its ``check_input``), summed pairwise in a tree on the
   workers with ``merge_setup``, then ``setup_from_summary`` on the client (Gaussian and
   Poisson: the column means and variances merged by Chan's formula; categorical: the
   distinct answers, from which the answers' encoding is learned).
3. **The prepared chunks** (each block's ``prepare``: a categorical block's codes, a
   Gaussian block's centred rows and features) are persisted on the workers, once.
4. **The initialisation** runs on the client on a uniform sample of at most
   :data:`INIT_SAMPLE_ROWS` rows (all rows, in order, when there are no more: then the
   starts are those of the in-memory fit; with ``sample_weight``, rows drawn with
   probability proportional to their weights, or all rows with their weights).
5. **Each E-step**: the parameters go to the workers once (one shared key), every chunk
   computes its per-class log-likelihood, posterior and each block's
   ``sufficient_stats`` where it lives, and the statistics are summed pairwise in a tree
   on the workers with the blocks' ``add_stats``. The model's EM loop only sees
   ``stats(params)``, so a Dask fit runs the iterations of the in-memory fit (equal to
   the order of floating-point sums).

``sample_weight`` (n,): a numpy array or a 1-D dask array (rechunked to X's row chunks),
checked as in memory (finite, non-negative, not all zero). Each chunk's weights are
persisted on the workers beside it (:func:`check_weights_parts`) and weigh every sum over
rows there: the setup summaries (the Gaussian and Poisson column moments), each E-step's
statistics, the log-likelihood and N = Σ w.

Whatever scheduler is active is used: a ``distributed.Client`` created before ``fit``,
else dask's default threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from emnet.mixture.backends.family_common import (
    add_family_stats,
    check_columns_observed,
    check_rows,
    chunk_stats,
    log_resp,
    observed_counts,
    setup_input,
)
from emnet.mixture.core.em import FitData
from emnet.mixture.core.validation import MAX_TOTAL_WEIGHT, check_weights
from emnet.mixture.measurement.base import Measurement

__all__ = [
    "INIT_SAMPLE_ROWS",
    "Weights",
    "check_weights_parts",
    "estimate",
    "is_dask_collection",
    "prepare_fit",
]

INIT_SAMPLE_ROWS = 20_000
"""Rows drawn (uniformly, or in proportion to ``sample_weight``, on the cluster) to
initialise a Dask fit."""
PROFILE_VALUES = 11
"""Distinct values a column profile keeps (one more than the categorical rule's 10)."""

Values = tuple[Callable[[Any], Any], Callable[[Any], Any]]


def is_dask_collection(X: Any) -> bool:
    """True for a dask array or DataFrame (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


class ChunkSpec(NamedTuple):
    """What a worker needs to read a chunk: the model's value readers (DataFrame, array),
    its blocks (measurement, columns) and the column names (None: positions)."""

    values: Values
    blocks: list[tuple[Measurement, np.ndarray]]
    names: list[str] | None


class Scan(NamedTuple):
    """One chunk's row count, per-column kinds, (``measurement=None``) profiles and
    observed entries per column."""

    n: int
    kinds: list[str]
    profiles: list[tuple[np.ndarray, float, float]] | None
    observed: np.ndarray


def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes")


def _partitions(X: Any) -> tuple[list[Any], list[str] | None, int, list[int] | None]:
    """(delayed chunks of whole rows, column names, D, rows per chunk if known)."""
    if _is_frame(X):
        names = [str(c) for c in X.columns]
        return list(X.to_delayed()), names, len(names), None
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array, got a dask array of shape {X.shape}")
    if any(np.isnan(s) for s in X.shape):
        raise ValueError("X: unknown chunk sizes; call X.compute_chunk_sizes() first")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return list(X.to_delayed().ravel()), None, int(X.shape[1]), [int(c) for c in X.chunks[0]]


def _read(part: Any, values: Values) -> tuple[np.ndarray, list[str]]:
    return values[0](part) if _is_frame(part) else values[1](part)


def _profile(column: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(up to PROFILE_VALUES distinct values, minimum, a non-whole value or NaN)."""
    x = np.asarray(column, dtype=np.float64)
    x = x[~np.isnan(x)]
    if np.isinf(x).any():
        raise ValueError("X: infinite values (NaN marks a missing entry)")
    values = np.unique(x)[:PROFILE_VALUES]
    odd = x[x != np.round(x)]
    return values, float(x.min()) if len(x) else np.nan, float(odd[0]) if len(odd) else np.nan


def _merge_profile(
    a: tuple[np.ndarray, float, float], b: tuple[np.ndarray, float, float]
) -> tuple[np.ndarray, float, float]:
    values = np.unique(np.concatenate([a[0], b[0]]))[:PROFILE_VALUES]
    low = np.nanmin([a[1], b[1]]) if not (np.isnan(a[1]) and np.isnan(b[1])) else np.nan
    odd = a[2] if not np.isnan(a[2]) else b[2]
    return values, float(low), float(odd)


def _scan(part: Any, values: Values, chunk: int, profile: bool) -> Scan:
    A, kinds = _read(part, values)
    check_rows(A, chunk=chunk)
    profiles = None
    if profile:
        profiles = [
            _profile(A[:, j]) if kinds[j] != "text" else (np.zeros(0), np.nan, np.nan)
            for j in range(A.shape[1])
        ]
    return Scan(A.shape[0], list(kinds), profiles, observed_counts(A))


def _merged_kinds(scans: Sequence[Scan], D: int) -> list[str]:
    kinds = []
    for j in range(D):
        seen = {s.kinds[j] for s in scans if s.n}
        if "text" in seen:
            kinds.append("text")
        else:  # one kind in every chunk ("bool", "integer"), or numbers
            kinds.append(seen.pop() if seen in ({"bool"}, {"integer"}) else "number")
    return kinds


def _stand_in(scans: Sequence[Scan], kinds: list[str]) -> np.ndarray:
    """A small float table whose columns the model's type rule reads as it would read all
    rows: each column's kept distinct values, its minimum and a non-whole value."""
    columns = []
    for j, kind in enumerate(kinds):
        if kind == "text":
            columns.append(np.array([np.nan]))
            continue
        prof = None
        for s in scans:
            if s.n and s.profiles is not None:
                p = s.profiles[j]
                prof = p if prof is None else _merge_profile(prof, p)
        values, low, odd = prof if prof is not None else (np.zeros(0), np.nan, np.nan)
        extra = [v for v in (low, odd) if not np.isnan(v)]
        columns.append(np.concatenate([values, extra]) if len(values) or extra else np.zeros(1))
    n = max(len(c) for c in columns)
    return np.column_stack([np.concatenate([c, np.repeat(c[:1], n - len(c))]) for c in columns])


def _block_data(part: Any, A: np.ndarray, cols: np.ndarray, m: Measurement, spec: ChunkSpec) -> Any:
    """Block m's columns of a chunk, as the model hands them to the block (a DataFrame's
    pandas categoricals kept for a block that takes text); no row is named in an error,
    the chunk's rows not being the table's."""
    return setup_input(part, A, cols, m, spec.names, row_numbers=False)


def _setup_part(part: Any, spec: ChunkSpec, weights: np.ndarray | None = None) -> list[Any]:
    A, _ = _read(part, spec.values)
    out = []
    for m, cols in spec.blocks:
        data = _block_data(part, A, cols, m, spec)
        m.check_input(data, [spec.names[j] if spec.names else int(j) for j in cols])
        out.append(m.setup_summary(data, weights))
    return out


def _merge_setups(spec: ChunkSpec, a: list[Any], b: list[Any]) -> list[Any]:
    return [m.merge_setup(x, y) for (m, _), x, y in zip(spec.blocks, a, b, strict=True)]


def _prepare_part(part: Any, spec: ChunkSpec) -> list[Any]:
    A, _ = _read(part, spec.values)
    return [m.prepare(_block_data(part, A, cols, m, spec)) for m, cols in spec.blocks]


def _take_rows(part: Any, idx: np.ndarray | None) -> Any:
    if idx is None:
        return part
    return part.iloc[idx] if _is_frame(part) else np.asarray(part)[idx]


def _concat(parts: list[Any]) -> Any:
    if _is_frame(parts[0]):
        return pd.concat(parts, ignore_index=True)
    arrays = [np.asarray(p) for p in parts]
    if len({a.dtype for a in arrays}) > 1:
        arrays = [a.astype(object) for a in arrays]
    return np.concatenate(arrays, axis=0)


def _tree(parts: list[Any], add: Callable[[Any, Any], Any]) -> Any:
    """Pairwise tree reduction of delayed values (depth log2 of the chunk count)."""
    while len(parts) > 1:
        nxt = [add(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


def _shared(value: Any, what: str) -> Any:
    """``value`` as one key of the graph, shared by every task that takes it."""
    import dask

    return dask.delayed(value, name=f"emnet-{what}-{uuid.uuid4().hex}", traverse=False)


def _stats_task(
    spec: ChunkSpec, params: Any, chunks: list[Any], weights: np.ndarray | None = None
) -> Any:
    return chunk_stats([m for m, _ in spec.blocks], params, chunks, weights)


def _add_task(spec: ChunkSpec, a: Any, b: Any) -> Any:
    return add_family_stats([m for m, _ in spec.blocks], a, b)


class Weights(NamedTuple):
    """Checked ``sample_weight`` of a Dask fit: per chunk of rows, its float64 weights (a
    persisted delayed value on the cluster) and their sum; all of them on the client when
    given as a numpy array (else None)."""

    parts: list[Any]
    totals: np.ndarray
    local: np.ndarray | None


def _weight_summary(w: np.ndarray) -> tuple[int, float, float]:
    """(first row that is not a finite non-negative number or −1, its value, Σ w)."""
    w = np.asarray(w, dtype=np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return i, float(w[i]), np.nan
    with np.errstate(over="ignore"):
        return -1, np.nan, float(w.sum())


def _as_float(w: np.ndarray) -> np.ndarray:
    return np.asarray(w, dtype=np.float64)


def check_weights_parts(sample_weight: Any, rows: list[int]) -> Weights | None:
    """``sample_weight`` for a Dask fit whose chunks hold ``rows`` rows each: a numpy array
    (or anything ``check_weights`` takes) checked on the client and cut at the chunks'
    bounds, or a 1-D dask array rechunked to those bounds and checked on the workers —
    the in-memory checks (finite, non-negative, not all zero; errors name
    ``sample_weight`` and the row). Each chunk's weights are persisted on the cluster."""
    import dask

    if sample_weight is None:
        return None
    n = int(sum(rows))
    bounds = np.concatenate([[0], np.cumsum(rows)]).astype(int)
    if not is_dask_collection(sample_weight):
        w = check_weights(sample_weight, n)
        assert w is not None
        pieces = [w[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        parts = dask.persist(*[_shared(p, "weights") for p in pieces])
        return Weights(list(parts), np.array([p.sum() for p in pieces]), w)
    w = sample_weight
    if hasattr(w, "to_dask_array"):  # a dask Series
        w = w.to_dask_array(lengths=True)
    shape = tuple(getattr(w, "shape", ()))
    if len(shape) != 1:
        raise ValueError(f"sample_weight: expected a 1-D array of {n} weights, got shape {shape}")
    if np.isnan(shape[0]):
        raise ValueError("sample_weight: unknown chunk sizes; call compute_chunk_sizes() first")
    if shape[0] != n:
        raise ValueError(f"sample_weight: expected shape ({n},), got {shape}")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight: expected {n} non-negative numbers")
    w = w.rechunk((tuple(int(r) for r in rows),))
    as_float = dask.delayed(_as_float, pure=True)
    parts = list(dask.persist(*[as_float(p) for p in w.to_delayed().ravel()]))
    summary = dask.delayed(_weight_summary, pure=True)
    found = dask.compute(*[summary(p) for p in parts])
    totals = np.zeros(len(parts))
    for c, (i, value, total) in enumerate(found):
        if i >= 0:
            raise ValueError(
                "sample_weight: expected finite non-negative numbers, got "
                f"{value!r} in row {int(bounds[c]) + i}"
            )
        totals[c] = total
    with np.errstate(over="ignore"):
        total = float(totals.sum())
    if n and not total <= MAX_TOTAL_WEIGHT:
        raise ValueError(
            f"sample_weight: the weights sum past {MAX_TOTAL_WEIGHT:g}; sums and squares of "
            "sums that large overflow the statistics. Rescale the weights (e.g. to sum to "
            "the number of rows): only their ratios change the estimates"
        )
    if n and not total > 0:
        raise ValueError(
            "sample_weight: all weights are zero (at least one row needs a positive weight)"
        )
    return Weights(parts, totals, None)


def weight_parts(weights: Weights | None, count: int) -> list[Any]:
    """Each chunk's weights (None for every chunk without weights)."""
    return [None] * count if weights is None else list(weights.parts)


def _weighted_rows(w: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` row positions of a chunk drawn with replacement ∝ its weights, sorted."""
    p = np.asarray(w, dtype=np.float64)
    return np.sort(np.random.default_rng(seed).choice(len(p), count, p=p / p.sum()))


def _take_weighted(part: Any, w: np.ndarray, count: int, seed: int) -> Any:
    return _take_rows(part, _weighted_rows(w, count, seed))


def _sample(
    parts: list[Any], rows: list[int], random_state: Any, weights: Weights | None = None
) -> tuple[Any, np.ndarray | None]:
    """(rows, their weights) to initialise from, as an in-memory chunk: all rows (in
    order, with their weights) when there are at most INIT_SAMPLE_ROWS, else a sample of
    that many (seeded from ``random_state``; None weights): uniform without replacement,
    or with ``weights`` drawn with replacement in proportion to them (the chunks by a
    multinomial draw on their sums, the rows within a chunk on its worker)."""
    import dask

    n = sum(rows)
    if n <= INIT_SAMPLE_ROWS:
        taken = [p for p, r in zip(parts, rows, strict=True) if r]
        if weights is None:
            sample_w = None
        elif weights.local is not None:
            sample_w = weights.local
        else:
            kept = [w for w, r in zip(weights.parts, rows, strict=True) if r]
            sample_w = np.concatenate([np.zeros(0), *dask.compute(*kept)])
        return _concat(list(dask.compute(*taken))), sample_w
    seed = check_random_state(random_state).randint(2**31) if random_state is not None else 0
    if weights is not None:
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(INIT_SAMPLE_ROWS, weights.totals / weights.totals.sum())
        seeds = rng.integers(2**31, size=len(parts))
        take = dask.delayed(_take_weighted, pure=True)
        drawn = [
            take(p, w, int(k), int(s))
            for p, w, k, s in zip(parts, weights.parts, counts, seeds, strict=True)
            if k
        ]
        return _concat(list(dask.compute(*drawn))), None
    chosen = np.sort(np.random.default_rng(seed).choice(n, INIT_SAMPLE_ROWS, replace=False))
    bounds = np.concatenate([[0], np.cumsum(rows)])
    picks = [chosen[(chosen >= lo) & (chosen < hi)] - lo
             for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]  # fmt: skip
    taken = [
        dask.delayed(_take_rows)(p, idx)
        for p, idx, r in zip(parts, picks, rows, strict=True)
        if r and len(idx)
    ]
    return _concat(list(dask.compute(*taken))), None


def prepare_fit(model: Any, X: Any, sample_weight: Any, *, reset: bool, values: Values) -> FitData:
    """``LatentClassModel._prepare_fit`` for Dask input (the module docstring's steps)."""
    import dask

    parts, names, D, _ = _partitions(X)
    if not reset and model.n_features_in_ != D:
        raise ValueError(f"X has {D} columns; the model was fitted on {model.n_features_in_}")
    new_blocks = reset or not hasattr(model, "_blocks")
    profile = new_blocks and model.measurement is None
    scan = dask.delayed(_scan, pure=True)
    scans = list(dask.compute(*[scan(p, values, c, profile) for c, p in enumerate(parts)]))
    rows = [s.n for s in scans]
    n = sum(rows)
    if reset:
        if n < model.n_components:
            raise ValueError(f"n_components={model.n_components} must be <= n_samples={n}")
        model.n_features_in_ = D
        if names is not None:
            model.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(model, "feature_names_in_"):
            del model.feature_names_in_
        model._columns = names
        model._column_kinds = _merged_kinds(scans, D)
        check_columns_observed(sum(s.observed for s in scans), names)
    weights = check_weights_parts(sample_weight, rows)
    chunk_w = weight_parts(weights, len(parts))
    if new_blocks:
        declared = model.measurement
        if declared is None:
            declared = model._infer_measurement(_stand_in(scans, model._column_kinds))
        blocks = []
        for kind, cols in model._resolve_blocks(D, declared):
            m = model._new_block(kind)
            m.labels = [str(model._name(int(j))) for j in cols]
            blocks.append((m, cols))
        spec = ChunkSpec(values, blocks, names)
        setup = dask.delayed(_setup_part, pure=True)
        merge = dask.delayed(_merge_setups, pure=True)
        shared = _shared(spec, "spec")
        total = _tree(
            [setup(p, shared, w) for p, w in zip(parts, chunk_w, strict=True)],
            lambda a, b: merge(shared, a, b),
        )
        (summaries,) = dask.compute(total)
        for (m, _), s in zip(blocks, summaries, strict=True):
            m.setup_from_summary(s)
        model._blocks = blocks
        model._describe_blocks()
    spec = ChunkSpec(values, model._blocks, names)
    shared = _shared(spec, "spec")
    prepare = dask.delayed(_prepare_part, pure=True)
    prepared = dask.persist(*[prepare(p, shared) for p in parts])
    sample_raw, sample_w = _sample(parts, rows, model.random_state, weights)
    sample, _ = _read(sample_raw, values)
    model._fit_matrix = sample
    model._fit_chunks = _prepare_part(sample_raw, spec)
    task = dask.delayed(_stats_task, pure=True)
    add = dask.delayed(_add_task, pure=True)

    def stats(params: Any) -> Any:
        p = _shared(params, "params")
        (out,) = dask.compute(
            _tree(
                [task(shared, p, c, w) for c, w in zip(prepared, chunk_w, strict=True)],
                lambda a, b: add(shared, a, b),
            )
        )
        return out

    return FitData(sample, sample_w, stats)


def _log_resp_part(part: Any, spec: ChunkSpec, params: Any) -> tuple[np.ndarray, np.ndarray]:
    chunks = _prepare_part(part, spec)
    return log_resp([m for m, _ in spec.blocks], params, chunks)


def estimate(model: Any, X: Any, values: Values) -> tuple[Any, Any]:
    """Lazy (log η (n, K), log p(x) (n,)) dask arrays of a fitted model on Dask input,
    chunked like X's rows (unknown chunk sizes for a DataFrame)."""
    import dask

    parts, names, D, rows = _partitions(X)
    if model.n_features_in_ != D:
        raise ValueError(f"X has {D} columns; the model was fitted on {model.n_features_in_}")
    spec = _shared(ChunkSpec(values, model._blocks, names), "spec")
    params = _shared(model._params, "params")
    K = len(model.weights_)
    task = dask.delayed(_log_resp_part, pure=True, nout=2)
    pieces = [task(p, spec, params) for p in parts]
    return _lazy_log_resp(pieces, rows, K)


def _lazy_log_resp(pieces: list[Any], rows: list[int] | None, K: int) -> tuple[Any, Any]:
    """The dask arrays (log η (n, K), log p(x) (n,)) of per-chunk delayed pairs, chunked
    like the rows (``rows`` per chunk; None: unknown chunk sizes, as for a DataFrame)."""
    import dask.array as da

    sizes = rows if rows is not None else [np.nan] * len(pieces)
    lr = da.concatenate(
        [da.from_delayed(lr, shape=(s, K), dtype=np.float64)
         for (lr, _), s in zip(pieces, sizes, strict=True)]
    )  # fmt: skip
    lp = da.concatenate(
        [da.from_delayed(lp, shape=(s,), dtype=np.float64)
         for (_, lp), s in zip(pieces, sizes, strict=True)]
    )  # fmt: skip
    return lr, lp
