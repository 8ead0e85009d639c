"""EM of :class:`~emnet.mixture.CategoricalMixture` on Dask collections (its compiled
per-chunk statistics, summed on the workers).

Input: a ``dask.array.Array`` of answers (numbers; NaN missing) or a
``dask.dataframe.DataFrame`` (numbers, text, bools, pandas categoricals with the same
categories in every partition). A fit:

1. **learns the encoding in one pass over the chunks**: each chunk's distinct answers
   per item (:func:`~emnet.mixture.core.encoding.distinct_values`) are merged pairwise in
   a tree on the workers, and the categories are learned from the merged table on the
   client — the categories of all rows (:func:`~emnet.mixture.core.encoding.learn_encoding`
   reads only which answers occur);
2. **codes every chunk where it lives** and compresses it to its distinct response
   patterns with counts; those are persisted on the workers, once;
3. **initialises on the client** from a uniform sample of at most
   :data:`~emnet.mixture.backends.family_dask.INIT_SAMPLE_ROWS` rows (all rows, in
   order, when there are no more; ``init_params="random"`` draws no rows at all; with
   ``sample_weight``, rows drawn in proportion to their weights, or all rows with
   their weights);
4. **each EM step**: the class weights and the log table go to the workers once (one
   shared key); every chunk runs the compiled E-step pass
   (:func:`~emnet.mixture.kernels.codes.code_stats`: Σ w η, the (M, K) answer counts,
   the (J, K) observed counts, Σ w log p) where it lives; the statistics are summed
   pairwise in a tree on the workers and the compiled MAP M-step
   (:func:`~emnet.mixture.kernels.codes.categorical_m_from`) runs on the client on the
   M × K numbers. The EM loop sees the in-memory fit's ``stats(params)``, so the fits
   agree to the order of floating-point sums.

``sample_weight`` (a numpy array or a 1-D dask array, checked as in memory:
:func:`~emnet.mixture.backends.family_dask.check_weights_parts`) is persisted beside each
chunk; a chunk's patterns carry its rows' summed weights (patterns of weight 0 dropped, as
in memory), so every E-step's sums, the log-likelihood and N = Σ w are weighted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emnet.mixture.backends.family_dask import (
    _lazy_log_resp,
    _partitions,
    _sample,
    _shared,
    _tree,
    check_weights_parts,
    weight_parts,
)
from emnet.mixture.core.em import FitData
from emnet.mixture.core.encoding import Encoding, distinct_values, encode, merge_distinct
from emnet.mixture.kernels.codes import (
    FusedStep,
    add_code_stats,
    categorical_m_from,
    code_log_resp,
    code_stats,
    compress_rows,
    offsets_of,
)

__all__ = ["estimate", "prepare_fit"]


Chunk = tuple[np.ndarray, np.ndarray, bool, int]


def _code_part(part: Any, encoding: Encoding, weights: np.ndarray | None = None) -> Chunk:
    """(distinct patterns, their counts or summed weights — those of weight 0 dropped —,
    any answer missing, the chunk's row count) of one chunk."""
    codes = encode(part, encoding)
    patterns, totals, _ = compress_rows(codes, weights)
    if weights is not None:
        keep = totals > 0
        patterns, totals = patterns[keep], totals[keep]
    return np.ascontiguousarray(patterns), totals, bool((patterns < 0).any()), len(codes)


def _flags(chunk: Chunk) -> tuple[int, bool]:
    return chunk[3], chunk[2]


def _stats_part(chunk: Chunk, offsets: np.ndarray, params: Any, missing: bool) -> Any:
    patterns, totals = chunk[0], chunk[1]
    return code_stats(patterns, totals, offsets, params.log_weights, params.log_table, missing)


def prepare_fit(model: Any, X: Any, sample_weight: Any, *, reset: bool) -> FitData:
    """``CategoricalMixture._prepare_fit`` for Dask input (the module docstring's steps)."""
    import dask

    parts, _, D, known_rows = _partitions(X)
    # the weights are cut at the chunks' bounds: a DataFrame's partitions are counted
    # (with the distinct answers' pass when there is one)
    count = dask.delayed(len, pure=True)
    lengths = [count(p) for p in parts] if sample_weight is not None and known_rows is None else []
    if reset:
        distinct = dask.delayed(distinct_values, pure=True)
        merge = dask.delayed(merge_distinct, pure=True)
        table, *sizes = dask.compute(_tree([distinct(p) for p in parts], merge), *lengths)
        model._coded(table, reset=True)  # learns categories_, names, n_features_in_
    elif model.n_features_in_ != D:
        raise ValueError(
            f"X has {D} features, but CategoricalMixture is expecting "
            f"{model.n_features_in_} features as input (one per item)"
        )
    else:
        sizes = list(dask.compute(*lengths))
    weights = None
    if sample_weight is not None:
        sized = known_rows if known_rows is not None else [int(r) for r in sizes]
        weights = check_weights_parts(sample_weight, sized)
    encoding = _shared(model._encoding, "encoding")
    code = dask.delayed(_code_part, pure=True)
    chunk_w = weight_parts(weights, len(parts))
    chunks = dask.persist(*[code(p, encoding, w) for p, w in zip(parts, chunk_w, strict=True)])
    flags = dask.compute(*[dask.delayed(_flags, pure=True)(c) for c in chunks])
    rows = [int(n) for n, _ in flags]
    n = sum(rows)
    if reset and n < model.n_components:
        raise ValueError(f"n_components={model.n_components} must be <= n_samples={n}")
    missing = any(m for _, m in flags)
    sample_raw, sample_w = _sample(parts, rows, model.random_state, weights)
    sample = encode(sample_raw, model._encoding)
    offsets = offsets_of(model.n_categories_)
    a, c = float(model.prob_concentration), float(model.weight_concentration)
    task = dask.delayed(_stats_part, pure=True)
    add = dask.delayed(add_code_stats, pure=True)
    shared_offsets = _shared(offsets, "offsets")

    def stats(p: Any) -> FusedStep:
        params = _shared(p, "params")
        parts_stats = [task(ch, shared_offsets, params, missing) for ch in chunks]
        (s,) = dask.compute(_tree(parts_stats, add))
        obs = s.obs if s.obs is not None else np.zeros((1, len(s.resp_sum)))
        log_w, log_t = categorical_m_from(
            s.counts, s.resp_sum, obs, offsets, p.log_table, a, c, missing
        )
        return FusedStep(s.n, s.loglik, type(p)(log_w, log_t))

    return FitData(sample, sample_w, stats)


def _log_resp_part(
    part: Any, encoding: Encoding, weights: np.ndarray, log_table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    codes = encode(part, encoding)
    offsets = offsets_of(np.array([len(c) for c in encoding.categories]))
    return code_log_resp(codes, offsets, weights, log_table)


def estimate(model: Any, X: Any) -> tuple[Any, Any]:
    """Lazy (log η (n, K), log p(x) (n,)) dask arrays of a fitted model on Dask input."""
    import dask

    parts, _, D, rows = _partitions(X)
    if model.n_features_in_ != D:
        raise ValueError(
            f"X has {D} features, but CategoricalMixture is expecting "
            f"{model.n_features_in_} features as input (one per item)"
        )
    encoding = _shared(model._encoding, "encoding")
    weights = np.asarray(model.weights_, dtype=np.float64)
    table = _shared(np.ascontiguousarray(model.log_table_), "table")
    task = dask.delayed(_log_resp_part, pure=True, nout=2)
    pieces = [task(p, encoding, weights, table) for p in parts]
    return _lazy_log_resp(pieces, rows, len(weights))
