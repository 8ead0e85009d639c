"""The bootstrap likelihood-ratio test of K classes against K − 1 (BLRT).

McLachlan (1987); Nylund, Asparouhov & Muthén (2007). The likelihood-ratio statistic
LR = 2 (log L_K − log L_{K−1}) has no chi-square reference here (the null sits on the
boundary of the K-class model), so its distribution under the null is simulated: B data
sets of the observed size are drawn from the fitted (K − 1)-class model, both K − 1 and K
classes are fitted to each, and p = (1 + #{LR_b >= LR}) / (B + 1).

**The bootstrap fits must reach their maxima** (SPEC §1c): a K-class fit that stops at a
local maximum makes LR_b too small, and then every observed LR looks significant (p =
1/(B + 1) for every K). So each bootstrap data set is fitted at least as hard as the data
were, and more:

- K − 1 classes: ``n_init`` random starts (the data fit's count; the estimator's start
  search, ``search_budget``, as for the data) plus the generating parameters themselves
  (the null model: Mplus TECH14 starts its K − 1 bootstrap fits there only,
  ``LRTSTARTS = 0 0 20 5``);
- K classes: ``n_init`` random starts (and the search), plus the data's own K-class fit
  (``alt_model``) as a start, plus one start per class c of the bootstrap K − 1 fit that
  splits c in two (halves of its share, its answer probabilities perturbed in opposite
  directions by exp(±0.5 u), u standard normal), and one more split of the largest class
  perturbed by exp(±0.001 u) only. That start has the K − 1 fit's likelihood to about
  1e-6 and EM never decreases it, so LR_b >= 0 (to that accuracy) is reached by a real
  K-class fit, not by setting LR_b to 0.

``n_below`` counts the bootstrap samples whose K-class fit from the random starts (and the
data's K fit) ended below the K − 1 fit: those the split starts rescued. It measures how
hard the K-class likelihood is to maximise here; a large count says that more starts
(``n_init``) are worth their time.

**LatentClassModel** (any measurement blocks; :func:`family_replicate`): the same plan through
the measurement contract — samples from the null's ``sample``; the K − 1 refit starts
from the null's parameters too, the K refit from the data's K fit and from the bootstrap
K − 1 fit's split starts (``LatentClassModel._split_starts``: a class's posterior mass
split in two, each block's M-step from that partition; one split of 1e-3 only keeps
LR_b >= 0). Every refit and extra start keeps to the proper-maxima rule: a run ending in
a collapsed class is set aside, as in the data's fits.

Each bootstrap sample has its own seed from one ``SeedSequence(random_state)``, so the
result does not depend on how the work is spread: serially, over processes (joblib/loky,
``n_jobs``) or over a Dask cluster (``client``). Simulated data sets are complete (no
missing answers) and unweighted, with n = Σ w rows.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning

SPLIT_SCALE = 0.5
"""The perturbation of a split start: θ · exp(±SPLIT_SCALE · u), u ~ N(0, 1)."""
BELOW_TOL = 1e-6
"""A K-class fit counts as below the K − 1 fit when its log-likelihood is lower by more
than this times n."""


class BLRTResult(NamedTuple):
    statistic: float  # the observed LR
    p_value: float
    null_statistics: np.ndarray  # LR_b of every bootstrap sample (>= 0)
    n_below: int = 0  # samples whose random-start K fit ended below the K − 1 fit


def _sample(null_model: Any, n: int, seed: int) -> np.ndarray:
    from emnet.mixture.inference.stats import CodedView, simulate_codes

    table = null_model._table_of(null_model._get_fitted())
    offsets = null_model._item_offsets
    view = CodedView(np.zeros((0, len(offsets) - 1), np.int64), np.zeros(0),
                     np.asarray(null_model.weights_), table, offsets)  # fmt: skip
    return simulate_codes(view, n, np.random.default_rng(seed))


def _normalised(log_table: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty_like(log_table)
    for j in range(len(offsets) - 1):
        block = log_table[offsets[j] : offsets[j + 1]]
        block = block - block.max(axis=0)
        out[offsets[j] : offsets[j + 1]] = block - np.log(np.exp(block).sum(axis=0))
    return out


def _in_encoding(model: Any, log_table: np.ndarray, full_offsets: np.ndarray) -> np.ndarray:
    """A log θ table over all the null model's answers, restricted to the answers
    ``model`` learned from a bootstrap sample (an answer may not occur in it)."""
    rows = model._answer_rows(full_offsets)
    if rows is None:
        return log_table
    return _normalised(log_table[rows], model._item_offsets)


def _run_from(model: Any, fit_data: Any, weights: np.ndarray, log_table: np.ndarray) -> None:
    """EM from (weights, log θ) in ``model``'s encoding; kept if better than its fit."""
    start = model._from_table(np.asarray(weights, np.float64), np.ascontiguousarray(log_table))
    _run_from_params(model, fit_data, start)


def _run_from_params(model: Any, fit_data: Any, start: Any) -> None:
    """EM from the parameters ``start``; kept if better than ``model``'s fit and a proper
    maximum (``LatentClassModel``'s rule: no collapsed class)."""
    run = model._run_em(fit_data.stats, start)
    if run.lower_bound > model.lower_bound_ and model._proper_run(run, fit_data):
        model._set_fitted(run.params)
        model._keep_run(run)


def _split_starts(model: Any, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """One start with K + 1 classes per class of the fitted ``model``: that class split in
    two, its probabilities perturbed apart (see the module docstring); and one more that
    splits the largest class with a perturbation of 1e-3 only, whose likelihood is the
    fit's to about 1e-6."""
    weights = np.asarray(model.weights_, dtype=np.float64)
    table = model._table_of(model._get_fitted())
    offsets = model._item_offsets
    starts = []
    plan = [(c, SPLIT_SCALE) for c in range(len(weights))] + [(int(np.argmax(weights)), 1e-3)]
    for c, scale in plan:
        u = scale * rng.standard_normal(table.shape[0])
        split = np.column_stack([table, table[:, c] + u])
        split[:, c] = table[:, c] - u
        w = np.append(weights, weights[c] / 2.0)
        w[c] /= 2.0
        starts.append((w, _normalised(split, offsets)))
    return starts


def _loglik(model: Any, codes: np.ndarray) -> float:
    return float(model.score_samples(codes).sum())


def _one(
    null_model: Any, n: int, seed: int, n_init: int, params: dict[str, Any], alt: Any = None
) -> tuple[float, bool]:
    """(LR, whether the random-start K fit ended below the K − 1 fit) of one bootstrap
    sample: simulate from the null, fit K − 1 and K (see the module docstring), by the
    replicate the estimator declares (``_blrt_replicate``): :func:`coded_replicate` for
    the coded items' estimators, :func:`family_replicate` for LatentClassModel."""
    replicate = REPLICATES[null_model._blrt_replicate]
    return replicate(null_model, n, seed, n_init, params, alt)


def coded_replicate(
    null_model: Any, n: int, seed: int, n_init: int, params: dict[str, Any], alt: Any = None
) -> tuple[float, bool]:
    """:func:`_one` for the coded-item estimators (``core.coded``): the sample is drawn
    from the null's log θ table; the starts are the null's and the data's K fit's tables
    and the split starts of :func:`_split_starts`."""
    codes = _sample(null_model, n, seed)
    k0 = len(null_model.weights_)
    cls = type(null_model)
    offsets = null_model._item_offsets
    rng = np.random.default_rng([seed, 7])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        small = cls(n_components=k0, n_init=n_init, random_state=seed, **params).fit(codes)
        data = small._prepare_fit(codes, None, reset=False)
        null_table = null_model._table_of(null_model._get_fitted())
        _run_from(small, data, null_model.weights_, _in_encoding(small, null_table, offsets))
        big = cls(n_components=k0 + 1, n_init=n_init, random_state=seed + 1, **params)
        big.fit(codes)
        data = big._prepare_fit(codes, None, reset=False)
        if alt is not None:
            alt_table = alt._table_of(alt._get_fitted())
            _run_from(big, data, alt.weights_, _in_encoding(big, alt_table, offsets))
        ll0 = _loglik(small, codes)
        below = _loglik(big, codes) < ll0 - BELOW_TOL * n
        for w, table in _split_starts(small, rng):
            _run_from(big, data, w, table)
        ll1 = _loglik(big, codes)
    return 2.0 * (ll1 - ll0), bool(below)


def family_replicate(
    null_model: Any, n: int, seed: int, n_init: int, params: dict[str, Any], alt: Any = None
) -> tuple[float, bool]:
    """:func:`_one` for a ``LatentClassModel`` (any measurement blocks): the sample is
    drawn by the null model's ``sample``; the starts are the null's and the data's K fit's
    parameters and the K − 1 bootstrap fit's split starts (``_split_starts``: its classes
    split through the blocks' M-steps); every fit and extra start keeps to the
    proper-maxima rule."""
    import copy

    gen = copy.copy(null_model)
    gen.random_state = seed
    X, _ = gen.sample(n)
    names = getattr(null_model, "feature_names_in_", None)
    if names is not None:  # a measurement given by column names needs them
        import pandas as pd

        X = pd.DataFrame(X, columns=list(names))
    k0 = len(null_model.weights_)
    cls = type(null_model)
    rng = np.random.default_rng([seed, 7])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="every start ended in a degenerate")
        small = cls(n_components=k0, n_init=n_init, random_state=seed, **params).fit(X)
        _start_if_it_fits(small, X, null_model._get_fitted())
        big = cls(n_components=k0 + 1, n_init=n_init, random_state=seed + 1, **params).fit(X)
        if alt is not None:
            _start_if_it_fits(big, X, alt._get_fitted())
        ll0 = _loglik(small, X)
        below = _loglik(big, X) < ll0 - BELOW_TOL * n
        data = big._prepare_fit(X, None, reset=False)
        for start in small._split_starts(X, rng):
            _run_from_params(big, data, start)
        ll1 = _loglik(big, X)
    return 2.0 * (ll1 - ll0), bool(below)


REPLICATES = {"coded_replicate": coded_replicate, "family_replicate": family_replicate}
"""The bootstrap replicates by the name an estimator declares (``_blrt_replicate``)."""


def _start_if_it_fits(model: Any, X: np.ndarray, start: Any) -> None:
    """EM from another fit's parameters (a block learned from other data may not take
    them, e.g. an answer the sample lacks: then the start is skipped)."""
    data = model._prepare_fit(X, None, reset=False)
    with contextlib.suppress(ValueError, IndexError):
        _run_from_params(model, data, start)


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
    alt_model: Any = None,
) -> BLRTResult:
    """p-value of the observed LR ``statistic`` of K = null K + 1 vs the fitted
    ``null_model`` (see the module docstring); ``n`` rows per bootstrap data set,
    ``n_init`` random starts for each bootstrap fit, ``alt_model`` the data's K-class fit
    (a start for every bootstrap K-class fit; optional)."""
    from tqdm.auto import tqdm

    if not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap: expected a positive integer, got {n_bootstrap!r}")
    if not isinstance(n_init, int | np.integer) or n_init < 1:
        raise ValueError(f"n_init: expected a positive integer, got {n_init!r}")
    params = dict(estimator_params or {})
    for name in ("n_components", "n_init", "random_state", "warm_start"):
        params.pop(name, None)
    seeds = [
        int(s) % (2**31 - 8)
        for s in np.random.SeedSequence(random_state).generate_state(n_bootstrap)
    ]
    k0 = len(null_model.weights_)
    bar = tqdm(total=n_bootstrap, desc=f"BLRT {k0 + 1} vs {k0}", unit="sample",
               disable=not progress)  # fmt: skip
    out: list[tuple[float, bool]] = [(np.nan, False)] * n_bootstrap
    try:
        if client is not None:
            from distributed import as_completed

            null_future = client.scatter(null_model, broadcast=True)
            alt_future = None if alt_model is None else client.scatter(alt_model, broadcast=True)
            futures = [
                client.submit(_one, null_future, n, s, n_init, params, alt_future, pure=False)
                for s in seeds
            ]
            order = {f.key: i for i, f in enumerate(futures)}
            for fut in as_completed(futures):
                out[order[fut.key]] = fut.result()
                bar.update()
        elif n_jobs in (None, 1):
            for i, s in enumerate(seeds):
                out[i] = _one(null_model, n, s, n_init, params, alt_model)
                bar.update()
        else:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=n_jobs, return_as="generator")
            jobs = (delayed(_one)(null_model, n, s, n_init, params, alt_model) for s in seeds)
            for i, v in enumerate(parallel(jobs)):
                out[i] = v
                bar.update()
    finally:
        bar.close()
    values = np.array([v for v, _ in out])
    n_below = int(sum(b for _, b in out))
    p = float((1 + np.sum(values >= statistic - 1e-9)) / (n_bootstrap + 1))
    return BLRTResult(float(statistic), p, values, n_below)
