"""Split-and-merge refinement of a converged EM fit (the fit-quality remedy).

EM from k-means++ seeds stalls when two seeds land in one true cluster: that cluster is
shared by two components (or one of them starves to weight 0) while two other true
clusters are merged into one component. No EM step can undo this, because every local
move lowers the likelihood. Split-and-merge EM (Ueda, Nakano, Ghahramani & Hinton 2000)
escapes such optima by proposing a *merge* of two components that explain the same data
together with a *split* of a component that explains two clusters, and then re-running
EM from the proposed parameters; the proposal is kept only if EM ends at a higher
objective. The fit therefore never gets worse.

Candidate scores come from a bounded sample of the rows hard-assigned to each component
(at most ``sample_size``, kept as float32: K·sample_size·D·4 bytes, 78 MB at K = 50,
D = 784), so a round costs one E-step pass over the data plus work on K small samples:

- split gain of component c: a two-component mixture is fitted on half of c's sample and
  the gain in log-likelihood over the single component is measured on the other half
  (held out, so a homogeneous cluster shows no gain), scaled to c's row count.
- merge cost of components j, k: the log-likelihood their rows lose when both are
  replaced by one component with the pooled mean and the summed weight. A starved
  component (fewer than ``min_rows`` rows assigned) is a free slot of cost 0.

Disjoint moves with a positive net gain (split gain − merge cost) are applied together and
EM is re-run; if that does not raise the objective, the single best move is tried alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from emnet.mixture.core.validation import iter_chunks
from emnet.mixture.kernels.bernoulli_math import (
    chunk_stats,
    clamp_means,
    log_bernoulli,
    m_step_from_stats,
)

__all__ = ["RefineResult", "split_merge_refine"]

RunEM = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, float]]
"""run_em(weights, means) -> (weights, means, objective) runs EM to convergence."""


class RefineResult(NamedTuple):
    weights: np.ndarray
    means: np.ndarray
    objective: float
    n_moves: int  # accepted rounds
    n_rounds: int  # EM re-runs tried


class _Move(NamedTuple):
    split: int  # component split in two
    merge_keep: int  # component that absorbs merge_free (== merge_free for a starved slot)
    merge_free: int  # slot that receives the second half of the split
    net: float
    split_weights: np.ndarray  # (2,) mixing proportions within the split component
    split_means: np.ndarray  # (2, D)


def _dense_rows(X: Any, idx: np.ndarray) -> np.ndarray:
    """A few rows of X (dense, NumPy memmap or CSR) as a dense float32 array."""
    rows = X[np.sort(idx)]
    rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
    return rows.astype(np.float32)


def _assignments(
    X: Any, backend: Any, batch_size: int | None, weights: np.ndarray, means: np.ndarray
) -> np.ndarray:
    """Hard labels (argmax responsibility) of every row, one chunk at a time."""
    labels = []
    for chunk in iter_chunks(X, batch_size):
        log_resp, _ = backend.log_resp(chunk, weights, means)
        labels.append(np.argmax(log_resp, axis=1))
    return np.concatenate(labels)


def _single_loglik(rows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return log_bernoulli(rows, clamp_means(mean)[None, :])[:, 0]


def _fit_two(rows: np.ndarray, mean: np.ndarray, n_iter: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Two-component EM on ``rows`` seeded at the worst-explained row and the row farthest
    from it; Laplace-smoothed (Beta(2, 2)) so a small sample never yields means of 0 or 1."""
    filled = np.where(np.isnan(rows), 0.5, rows)
    a = int(np.argmin(_single_loglik(rows, mean)))
    b = int(np.argmax(np.abs(filled - filled[a]).sum(axis=1)))
    seeds = filled[[a, b]]
    labels = np.argmin(
        (filled**2).sum(1)[:, None] - 2 * filled @ seeds.T + (seeds**2).sum(1), axis=1
    )
    means = np.stack(
        [(filled[labels == j].sum(0) + 1.0) / ((labels == j).sum() + 2.0) for j in range(2)]
    )
    weights = np.array([(labels == 0).mean(), (labels == 1).mean()]).clip(0.05, 0.95)
    weights /= weights.sum()
    for _ in range(n_iter):
        stats = chunk_stats(rows, weights, means)
        weights, means = m_step_from_stats(stats, 2.0, 2.0, 1.0, prev_means=means)
    return weights, means


def _split_gain(rows: np.ndarray, mean: np.ndarray, n_rows: int, rng: np.random.Generator):
    """(held-out gain scaled to n_rows, split weights, split means) for one component."""
    perm = rng.permutation(len(rows))
    train, test = rows[perm[: len(rows) // 2]], rows[perm[len(rows) // 2 :]]
    one = (np.nansum(train, 0) + 1.0) / ((~np.isnan(train)).sum(0) + 2.0)
    w2, m2 = _fit_two(train, one)
    with np.errstate(divide="ignore"):  # a weight of 0 is a degenerate split: no gain
        log_w2 = np.log(w2)
    two_ll = np.logaddexp(
        log_w2[0] + _single_loglik(test, m2[0]), log_w2[1] + _single_loglik(test, m2[1])
    )
    gain = float(np.mean(two_ll - _single_loglik(test, one))) * n_rows
    return gain, w2, m2


def _merge_cost(
    samples: dict[int, np.ndarray],
    counts: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    j: int,
    k: int,
) -> float:
    """Log-likelihood lost (scaled to the row counts) by pooling components j and k."""
    nj, nk = counts[j], counts[k]
    pooled = (nj * means[j] + nk * means[k]) / (nj + nk)
    w_pool = weights[j] + weights[k]
    cost = 0.0
    for c, n_c in ((j, nj), (k, nk)):
        rows = samples[c]
        own = np.log(max(weights[c], 1e-300)) + _single_loglik(rows, means[c])
        new = np.log(w_pool) + _single_loglik(rows, pooled)
        cost += float(np.mean(own - new)) * n_c
    return cost


def _propose(
    X: Any,
    backend: Any,
    batch_size: int | None,
    weights: np.ndarray,
    means: np.ndarray,
    rng: np.random.Generator,
    sample_size: int,
    min_rows: int,
    n_neighbours: int,
) -> list[_Move]:
    """Disjoint split/merge moves with positive net gain, best first."""
    k_total = len(weights)
    labels = _assignments(X, backend, batch_size, weights, means)
    counts = np.bincount(labels, minlength=k_total)
    samples: dict[int, np.ndarray] = {}
    for c in range(k_total):
        if counts[c] >= min_rows:
            idx = np.flatnonzero(labels == c)
            if len(idx) > sample_size:
                idx = rng.choice(idx, size=sample_size, replace=False)
            samples[c] = _dense_rows(X, idx)

    splits = []
    for c, rows in samples.items():
        if counts[c] >= 2 * min_rows:
            gain, w2, m2 = _split_gain(rows, means[c], int(counts[c]), rng)
            if gain > 0:
                splits.append((gain, c, w2, m2))
    if not splits:
        return []
    splits.sort(key=lambda s: -s[0])

    # Merge candidates: starved slots cost nothing; else each component's nearest neighbours.
    free = [(0.0, c, c) for c in range(k_total) if counts[c] < min_rows]
    big = [c for c in samples]
    pairs = []
    if len(big) > 1:
        m = clamp_means(means[big])
        logit = np.log(m) - np.log1p(-m)
        # symmetric KL between the Bernoulli means of every pair of components (row by row:
        # O(K·D) memory)
        dist = np.stack([((m[a] - m) * (logit[a] - logit)).sum(1) for a in range(len(big))])
        np.fill_diagonal(dist, np.inf)
        seen = set()
        for a in range(len(big)):
            for b in np.argsort(dist[a])[:n_neighbours]:
                j, k = sorted((big[a], big[int(b)]))
                if (j, k) not in seen:
                    seen.add((j, k))
                    pairs.append((_merge_cost(samples, counts, weights, means, j, k), j, k))
    merges = sorted(free + pairs, key=lambda m: m[0])

    moves: list[_Move] = []
    used: set[int] = set()
    for gain, c, w2, m2 in splits:
        if c in used:
            continue
        for cost, j, k in merges:
            if {c, j, k} & used or c in (j, k):
                continue
            if gain - cost > 0:
                moves.append(_Move(c, j, k, gain - cost, w2, m2))
                used |= {c, j, k}
            break
    moves.sort(key=lambda mv: -mv.net)
    return moves


def _apply(
    weights: np.ndarray, means: np.ndarray, moves: list[_Move]
) -> tuple[np.ndarray, np.ndarray]:
    w, m = weights.copy(), means.copy()
    for mv in moves:
        if mv.merge_keep != mv.merge_free:
            j, k = mv.merge_keep, mv.merge_free
            pooled = w[j] + w[k]
            m[j] = (w[j] * m[j] + w[k] * m[k]) / max(pooled, 1e-300)
            w[j] = pooled
            w[k] = 0.0
        c, k = mv.split, mv.merge_free
        total = w[c] + w[k]  # w[k] is 0 after a merge, tiny for a starved slot
        w[c], w[k] = total * mv.split_weights[0], total * mv.split_weights[1]
        m[c], m[k] = mv.split_means[0], mv.split_means[1]
    w = np.maximum(w, 1e-12)
    return w / w.sum(), clamp_means(m)


def split_merge_refine(
    X: Any,
    backend: Any,
    batch_size: int | None,
    weights: np.ndarray,
    means: np.ndarray,
    objective: float,
    run_em: RunEM,
    *,
    random_state: np.random.Generator | int | None = None,
    max_rounds: int | None = None,
    sample_size: int = 500,
    min_rows: int = 8,
    n_neighbours: int = 3,
    rtol: float = 1e-7,
) -> RefineResult:
    """Improve a converged fit by split-and-merge moves (module docstring).

    ``objective`` is the converged fit's objective (mean penalised log-likelihood per row);
    ``run_em`` re-runs EM to convergence from given parameters. Returns the best parameters
    found; their objective is never below the input's.
    """
    rng = np.random.default_rng(random_state)
    k_total = len(weights)
    if k_total < 3:  # a move needs a split component plus a distinct merge pair
        return RefineResult(weights, means, objective, 0, 0)
    max_rounds = 2 * k_total if max_rounds is None else max_rounds
    n_moves = n_rounds = 0
    while n_rounds < max_rounds:
        moves = _propose(
            X, backend, batch_size, weights, means, rng, sample_size, min_rows, n_neighbours
        )
        if not moves:
            break
        accepted = False
        for batch in [moves, moves[:1]] if len(moves) > 1 else [moves]:
            n_rounds += 1
            w_new, m_new, obj_new = run_em(*_apply(weights, means, batch))
            if obj_new > objective + rtol * abs(objective):
                weights, means, objective = w_new, m_new, obj_new
                n_moves += 1
                accepted = True
                break
            if n_rounds >= max_rounds:
                break
        if not accepted:
            break
    return RefineResult(weights, means, objective, n_moves, n_rounds)


def refine_run(estimator: Any, run: Any, data: Any, backend: Any, stats_fn: Any, rng: Any) -> Any:
    """Split-and-merge refinement of a converged ``EMRun`` of a ``BaseEMMixture``.

    Re-runs use the estimator's own EM loop (same ``tol``/``max_iter``); the returned run
    is the last accepted one (its ``history`` is that run's, so it is monotone), or
    ``run`` unchanged when no move improves the objective. ``estimator.n_split_merge_``
    records the number of accepted rounds.
    """
    estimator.n_split_merge_ = 0
    weights, means = run.params
    if not run.converged or len(weights) < 3:
        return run
    last = {"run": run}
    make = type(run.params)

    def run_em(weights: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        new = estimator._run_em(stats_fn, make(weights, means))
        if new.lower_bound > last["run"].lower_bound:
            last["run"] = new
        return *new.params, new.lower_bound

    seed = int(rng.randint(2**31)) if hasattr(rng, "randint") else rng
    result = split_merge_refine(
        data,
        backend,
        estimator.batch_size,
        weights,
        means,
        run.lower_bound,
        run_em,
        random_state=seed,
    )
    estimator.n_split_merge_ = result.n_moves
    return last["run"] if result.n_moves else run
