"""The bootstrap likelihood-ratio test of K classes against K − 1 (BLRT).

McLachlan (1987); Nylund, Asparouhov & Muthén (2007). The likelihood-ratio statistic
LR = 2 (log L_K − log L_{K−1}) has no chi-square reference here (the null sits on the
boundary of the K-class model), so its distribution under the null is simulated: B data
sets of the observed size are drawn from the fitted (K − 1)-class model, both K − 1 and K
classes are fitted to each (``n_init`` random starts each, the estimator's own settings),
and p = (1 + #{LR_b >= LR}) / (B + 1).

Each bootstrap sample has its own seed from one ``SeedSequence(random_state)``, so the
result does not depend on how the work is spread: serially, over processes (joblib/loky,
``n_jobs``) or over a Dask cluster (``client``). Simulated data sets are complete (no
missing answers) and unweighted, with n = Σ w rows.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning


class BLRTResult(NamedTuple):
    statistic: float  # the observed LR
    p_value: float
    null_statistics: np.ndarray  # LR_b of every bootstrap sample


def _sample(null_model: Any, n: int, seed: int) -> np.ndarray:
    from emnet.mixture._stats import CodedView, simulate_codes

    table = null_model._table_of(null_model._get_fitted())
    offsets = null_model._item_offsets
    view = CodedView(np.zeros((0, len(offsets) - 1), np.int64), np.zeros(0),
                     np.asarray(null_model.weights_), table, offsets)  # fmt: skip
    return simulate_codes(view, n, np.random.default_rng(seed))


def _one(null_model: Any, n: int, seed: int, n_init: int, params: dict[str, Any]) -> float:
    """LR of one bootstrap sample (simulate from the null, fit K − 1 and K)."""
    codes = _sample(null_model, n, seed)
    k0 = len(null_model.weights_)
    cls = type(null_model)
    lls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in (k0, k0 + 1):
            model = cls(n_components=k, n_init=n_init, random_state=seed + k, **params)
            model.fit(codes)
            lls.append(float(model.score_samples(codes).sum()))
    return 2.0 * (lls[1] - lls[0])


def bootstrap_lrt(
    null_model: Any,
    statistic: float,
    n: int,
    n_bootstrap: int,
    *,
    n_init: int = 3,
    random_state: Any = None,
    n_jobs: int | None = 1,
    client: Any = None,
    progress: bool = False,
    estimator_params: dict[str, Any] | None = None,
) -> BLRTResult:
    """p-value of the observed LR ``statistic`` of K = null K + 1 vs the fitted
    ``null_model`` (see the module docstring); ``n`` rows per bootstrap data set."""
    from tqdm.auto import tqdm

    if not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap: expected a positive integer, got {n_bootstrap!r}")
    params = dict(estimator_params or {})
    params.pop("n_components", None)
    seeds = [
        int(s) % (2**31 - 8)
        for s in np.random.SeedSequence(random_state).generate_state(n_bootstrap)
    ]
    bar = tqdm(total=n_bootstrap, desc=f"BLRT {len(null_model.weights_) + 1} vs "
               f"{len(null_model.weights_)}", unit="sample", disable=not progress)  # fmt: skip
    try:
        if client is not None:
            from distributed import as_completed

            model_future = client.scatter(null_model, broadcast=True)
            futures = [
                client.submit(_one, model_future, n, s, n_init, params, pure=False) for s in seeds
            ]
            order = {f.key: i for i, f in enumerate(futures)}
            values = np.empty(n_bootstrap)
            for fut in as_completed(futures):
                values[order[fut.key]] = fut.result()
                bar.update()
        elif n_jobs in (None, 1):
            values = np.empty(n_bootstrap)
            for i, s in enumerate(seeds):
                values[i] = _one(null_model, n, s, n_init, params)
                bar.update()
        else:
            from joblib import Parallel, delayed

            values = np.empty(n_bootstrap)
            parallel = Parallel(n_jobs=n_jobs, return_as="generator")
            for i, v in enumerate(
                parallel(delayed(_one)(null_model, n, s, n_init, params) for s in seeds)
            ):
                values[i] = v
                bar.update()
    finally:
        bar.close()
    p = float((1 + np.sum(values >= statistic - 1e-9)) / (n_bootstrap + 1))
    return BLRTResult(float(statistic), p, values)
