"""Choosing the number of components: fit a range of K with restarts, compare BIC/AIC.

Every (K, restart) pair is an independent fit of :class:`BernoulliMixture` with its own
seed, so the work spreads over processes (``n_jobs``, via joblib) or over a Dask cluster
(``client``). For each K the restart with the highest log-likelihood is kept; the best K
minimises BIC (or AIC). ``plot_bic`` draws both criteria against K.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["SelectionResult", "select_n_components", "plot_bic", "format_selection_table"]

_CRITERIA = ("bic", "aic")


@dataclass
class SelectionResult:
    """Per-K results of :func:`select_n_components` (one row per K, ascending)."""

    ks: np.ndarray
    loglik: np.ndarray  # total log-likelihood of the data under the best restart
    loglik_per_sample: np.ndarray
    bic: np.ndarray
    aic: np.ndarray
    n_params: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    seconds: np.ndarray  # wall seconds summed over the restarts of each K
    criterion: str
    best_k: int
    best_model: Any
    models: dict[int, Any] = field(default_factory=dict, repr=False)

    def table(self) -> list[dict[str, float | int | bool]]:
        """The per-K table as a list of plain dicts (JSON-ready)."""
        return [
            {
                "k": int(k),
                "loglik": float(ll),
                "loglik_per_sample": float(lps),
                "bic": float(b),
                "aic": float(a),
                "n_params": int(p),
                "n_iter": int(it),
                "converged": bool(c),
                "seconds": float(s),
            }
            for k, ll, lps, b, a, p, it, c, s in zip(
                self.ks,
                self.loglik,
                self.loglik_per_sample,
                self.bic,
                self.aic,
                self.n_params,
                self.n_iter,
                self.converged,
                self.seconds,
                strict=True,
            )
        ]


def _parse_ks(ks: Any, n_samples: int) -> list[int]:
    if isinstance(ks, int | np.integer):
        ks = [ks]
    try:
        values = sorted({int(k) for k in ks})
    except (TypeError, ValueError):
        raise TypeError(f"ks must be an iterable of positive integers, got {ks!r}") from None
    if not values:
        raise ValueError("ks must name at least one number of components")
    if values[0] < 1:
        raise ValueError(f"ks must be positive integers, got {values[0]}")
    if values[-1] > n_samples:
        raise ValueError(f"ks holds K = {values[-1]} but X has only {n_samples} rows")
    return values


def _fit_one(X: Any, k: int, seed: int, params: dict[str, Any]) -> tuple[int, Any, float, float]:
    """Fit one restart; returns (k, model, total log-likelihood, seconds)."""
    from emnet.mixture import BernoulliMixture

    t0 = time.perf_counter()
    with warnings.catch_warnings():  # convergence is reported per K in the table instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BernoulliMixture(n_components=k, n_init=1, random_state=seed, **params).fit(X)
    loglik = float(np.sum(model.score_samples(X)))
    return k, model, loglik, time.perf_counter() - t0


def select_n_components(
    X: Any,
    ks: Any,
    n_init: int = 5,
    *,
    criterion: str = "bic",
    n_jobs: int | None = 1,
    client: Any = None,
    random_state: int | None = None,
    progress: bool = False,
    **estimator_params: Any,
) -> SelectionResult:
    """Fit ``BernoulliMixture`` for every K in ``ks`` with ``n_init`` restarts each.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_samples, n_features), binary.
    ks : iterable of int (e.g. ``range(2, 21)``).
    n_init : restarts per K (independent seeds); the one with the best log-likelihood wins.
    criterion : 'bic' (default) or 'aic'; the best K minimises it.
    n_jobs : parallel processes for the fits (joblib; -1 = all cores). Ignored with client.
    client : a ``distributed.Client``; the fits run as tasks on its workers.
    random_state : seed of the seeds of all restarts (reproducible selection).
    progress : show a tqdm bar over the fits.
    **estimator_params : passed to every ``BernoulliMixture`` (tol, max_iter, alpha, ...).
    """
    if criterion not in _CRITERIA:
        raise ValueError(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
    if not isinstance(n_init, int | np.integer) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
    for bad in ("n_components", "n_init", "random_state"):
        if bad in estimator_params:
            raise TypeError(f"{bad} is set by select_n_components; do not pass it")
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    k_values = _parse_ks(ks, int(X.shape[0]))
    seeds = np.random.SeedSequence(random_state).generate_state(len(k_values) * n_init)
    jobs = [(k, int(seeds[i * n_init + j])) for i, k in enumerate(k_values) for j in range(n_init)]

    results = _run_jobs(X, jobs, estimator_params, n_jobs, client, progress)

    best: dict[int, tuple[Any, float]] = {}
    seconds: dict[int, float] = dict.fromkeys(k_values, 0.0)
    for k, model, loglik, secs in results:
        seconds[k] += secs
        if k not in best or loglik > best[k][1]:
            best[k] = (model, loglik)
    n = float(X.shape[0])
    models = {k: best[k][0] for k in k_values}
    loglik = np.array([best[k][1] for k in k_values])
    n_params = np.array([k - 1 + k * int(X.shape[1]) for k in k_values])
    bic = -2 * loglik + n_params * np.log(n)
    aic = -2 * loglik + 2 * n_params
    scores = bic if criterion == "bic" else aic
    best_k = k_values[int(np.argmin(scores))]
    return SelectionResult(
        ks=np.array(k_values),
        loglik=loglik,
        loglik_per_sample=loglik / n,
        bic=bic,
        aic=aic,
        n_params=n_params,
        n_iter=np.array([models[k].n_iter_ for k in k_values]),
        converged=np.array([bool(models[k].converged_) for k in k_values]),
        seconds=np.array([seconds[k] for k in k_values]),
        criterion=criterion,
        best_k=best_k,
        best_model=models[best_k],
        models=models,
    )


def _run_jobs(
    X: Any,
    jobs: list[tuple[int, int]],
    params: dict[str, Any],
    n_jobs: int | None,
    client: Any,
    progress: bool,
) -> list[tuple[int, Any, float, float]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="K x restarts", unit="fit", disable=not progress)
    try:
        if client is not None:
            from distributed import as_completed

            x_future = client.scatter(X, broadcast=True)
            futures = [client.submit(_fit_one, x_future, k, s, params, pure=False) for k, s in jobs]
            out = []
            for fut in as_completed(futures):
                out.append(fut.result())
                bar.update()
            return out
        if n_jobs in (None, 1):
            out = []
            for k, s in jobs:
                out.append(_fit_one(X, k, s, params))
                bar.update()
            return out
        from joblib import Parallel, delayed

        out = []
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        for res in parallel(delayed(_fit_one)(X, k, s, params) for k, s in jobs):
            out.append(res)
            bar.update()
        return out
    finally:
        bar.close()


def format_selection_table(result: SelectionResult) -> str:
    """A plain-text table of the per-K results, the best K marked with '*'."""
    head = f"{'K':>4} {'loglik/sample':>14} {'BIC':>14} {'AIC':>14} {'iters':>6} {'conv':>5}"
    lines = [head, "-" * len(head)]
    for row in result.table():
        mark = " *" if row["k"] == result.best_k else ""
        lines.append(
            f"{row['k']:>4} {row['loglik_per_sample']:>14.4f} {row['bic']:>14.1f} "
            f"{row['aic']:>14.1f} {row['n_iter']:>6} {'yes' if row['converged'] else 'no':>5}"
            f"{mark}"
        )
    lines.append(f"best K by {result.criterion.upper()}: {result.best_k}")
    return "\n".join(lines)


def plot_bic(result: SelectionResult, path: str | Path) -> Path:
    """Plot BIC and AIC against K (best K marked) to ``path`` (PNG/SVG/PDF by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emnet._io import savefig

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(result.ks, result.bic, "o-", color="tab:blue", label="BIC")
    ax.plot(result.ks, result.aic, "s--", color="tab:orange", label="AIC")
    best = getattr(result, result.criterion)[list(result.ks).index(result.best_k)]
    ax.plot([result.best_k], [best], "*", color="tab:red", ms=16, label=f"best K = {result.best_k}")
    ax.set_xlabel("number of components K")
    ax.set_ylabel("criterion (lower is better)")
    ax.set_title("Bernoulli mixture: model selection")
    ax.set_xticks(result.ks)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        return savefig(fig, path, dpi=120)
    finally:
        plt.close(fig)
