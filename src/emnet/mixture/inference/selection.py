"""Choosing the number of classes: fit a range of K with restarts, compare the criteria.

Every (K, restart) pair is an independent fit of :class:`BernoulliMixture` or
:class:`CategoricalMixture` (``estimator``) with its own seed, so the work spreads over
processes (``n_jobs``, via joblib) or over a Dask cluster (``client``). A
:class:`LatentClassModel` (``estimator="latent"``, ``"gaussian"``, ``"poisson"``, the class or
an instance) is fitted once per K with all ``n_init`` starts, so that its proper-maxima rule
can set collapsed starts aside (``n_set_aside``); its table has no G², X² or df. For each K the
restart with the highest log-likelihood is kept, and the table reports what LCA papers
report: log-likelihood, parameters, AIC, BIC, SABIC, CAIC, entropy R², G², X², residual df
and, with ``blrt=B``, the bootstrap likelihood-ratio test of K against K − 1
(:mod:`emnet.mixture.inference.blrt`). The best K minimises ``criterion``. ``plot_bic`` draws the
information criteria against K.
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

_CRITERIA = ("bic", "aic", "sabic", "caic")
ESTIMATORS = ("bernoulli", "categorical", "latent", "gaussian", "poisson")
"""``estimator`` names: "latent" is LatentClassModel as ``measurement`` says; "gaussian"
(latent profile analysis) and "poisson" are it with every column of that type."""


@dataclass
class SelectionResult:
    """Per-K results of :func:`select_n_components` (one row per K, ascending)."""

    ks: np.ndarray
    loglik: np.ndarray  # total (weighted) log-likelihood of the data under the best restart
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
    sabic: np.ndarray | None = None
    caic: np.ndarray | None = None
    entropy: np.ndarray | None = None
    g2: np.ndarray | None = None
    x2: np.ndarray | None = None
    df: np.ndarray | None = None
    n_at_best: np.ndarray | None = None  # restarts within 1e-6 (per row) of the best
    blrt_p: np.ndarray | None = None  # p-value of K vs K − 1 (NaN where not tested)
    # per K: bootstrap samples whose random-start K fit ended below the K − 1 fit (-1: none)
    blrt_n_below: np.ndarray | None = None
    blrt_ratios: dict[int, np.ndarray] | None = field(default=None, repr=False)  # K -> LR_b
    # free parameters <= min(n, Π_j R_j − 1) (LatentClassModel: <= n): K with more are not
    # identified (df < 0); left out of the choice of best K
    identified: np.ndarray | None = None
    # LatentClassModel: starts that ended in a collapsed class and were set aside, per K
    n_set_aside: np.ndarray | None = None
    # LatentClassModel: every start of K collapsed (its fit is the best collapsed one);
    # left out of the choice of best K
    all_set_aside: np.ndarray | None = None
    n_unconverged: np.ndarray | None = None  # starts that stopped at max_iter, per K

    def table(self) -> list[dict[str, float | int | bool | None]]:
        """The per-K table as a list of plain dicts (JSON-ready; NaN → None)."""
        columns = {
            "k": self.ks,
            "loglik": self.loglik,
            "loglik_per_sample": self.loglik_per_sample,
            "n_params": self.n_params,
            "aic": self.aic,
            "bic": self.bic,
            "sabic": self.sabic,
            "caic": self.caic,
            "entropy": self.entropy,
            "g2": self.g2,
            "x2": self.x2,
            "df": self.df,
            "blrt_p": self.blrt_p,
            "blrt_n_below": self.blrt_n_below,
            "identified": self.identified,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "n_at_best": self.n_at_best,
            "n_set_aside": self.n_set_aside,
            "all_set_aside": self.all_set_aside,
            "n_unconverged": self.n_unconverged,
            "seconds": self.seconds,
        }
        rows = []
        for i in range(len(self.ks)):
            row: dict[str, float | int | bool | None] = {}
            for name, values in columns.items():
                if values is None:
                    continue
                v = values[i]
                if isinstance(v, np.bool_ | bool):
                    row[name] = bool(v)
                elif name == "blrt_n_below":
                    row[name] = None if v < 0 else int(v)
                elif isinstance(v, np.integer | int):
                    row[name] = int(v)
                else:
                    row[name] = None if not np.isfinite(v) else float(v)
            rows.append(row)
        return rows

    def to_frame(self) -> Any:
        """The per-K table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.table())


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


def _estimator_class(estimator: Any) -> tuple[type, dict[str, Any]]:
    """(the estimator class, its default parameters) from ``estimator``: a name of
    :data:`ESTIMATORS`, one of the classes, or an unfitted instance of one of them (its
    parameters, but K, starts and seed, become the defaults)."""
    from emnet.mixture.estimators.bernoulli import BernoulliMixture
    from emnet.mixture.estimators.categorical import CategoricalMixture
    from emnet.mixture.estimators.latent import LatentClassModel

    if isinstance(estimator, str):
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
        if estimator in ("gaussian", "poisson"):
            return LatentClassModel, {"measurement": estimator}
        named = {"bernoulli": BernoulliMixture, "categorical": CategoricalMixture}
        return named.get(estimator, LatentClassModel), {}
    if isinstance(estimator, type) and estimator in (
        BernoulliMixture, CategoricalMixture, LatentClassModel
    ):  # fmt: skip
        return estimator, {}
    if isinstance(estimator, BernoulliMixture | CategoricalMixture | LatentClassModel):
        params = estimator.get_params(deep=False)
        for name in ("n_components", "n_init", "random_state", "warm_start"):
            params.pop(name, None)
        return type(estimator), params
    raise ValueError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")


def _whole_fits(cls: type) -> bool:
    """Whether each K is one fit with all its starts (the estimator's declared
    ``_whole_fit_selection``; LatentClassModel: its proper-maxima rule compares the
    starts, so they cannot run as separate one-start fits)."""
    return bool(cls._whole_fit_selection)


def _fit_one(
    X: Any, k: int, seed: int, params: dict[str, Any], cls: Any = None, sample_weight: Any = None
) -> tuple[int, Any, float, float]:
    """Fit one restart; returns (k, model, total log-likelihood, seconds)."""
    from emnet.mixture.estimators.bernoulli import BernoulliMixture

    cls = BernoulliMixture if cls is None else cls
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # convergence is reported per K in the table instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = cls(n_components=k, random_state=seed, **{"n_init": 1, **params}).fit(
            X, sample_weight=sample_weight
        )
    loglik = model._weighted_loglik(X, sample_weight)[0]
    return k, model, loglik, time.perf_counter() - t0


def select_n_components(
    X: Any,
    ks: Any,
    n_init: int = 5,
    *,
    estimator: Any = "bernoulli",
    criterion: str = "bic",
    sample_weight: Any = None,
    blrt: int = 0,
    blrt_n_init: int | None = None,
    fit_statistics: bool = True,
    n_jobs: int | None = 1,
    client: Any = None,
    random_state: int | None = 0,
    progress: bool = False,
    **estimator_params: Any,
) -> SelectionResult:
    """Fit the mixture for every K in ``ks`` with ``n_init`` restarts each.

    Parameters
    ----------
    X : array-like (or, for binary items, scipy.sparse) of shape (n_samples, n_items).
    ks : iterable of int (e.g. ``range(1, 7)``).
    n_init : restarts per K (independent seeds); the one with the best log-likelihood wins.
    estimator : 'bernoulli' (BernoulliMixture, binary items), 'categorical'
        (CategoricalMixture, items with any answers), 'latent' (LatentClassModel over
        the measurement blocks that ``measurement=`` names), 'gaussian' (latent profile
        analysis: LatentClassModel with every column Gaussian, ``covariance=`` "EEI",
        "VVI", "EEE" or "VVV") or 'poisson'; or one of the classes, or an unfitted
        instance of one whose parameters are the defaults. A LatentClassModel is fitted
        once per K with ``n_init`` starts (its proper-maxima rule sets starts that end in
        a collapsed class aside: ``n_set_aside``; its BLRT refits keep to it too); the
        table has no G², X² or df for it (they need a table of response patterns). A K
        whose every start collapsed (``all_set_aside``) or with more free parameters than
        rows (``identified`` False) is left out of the choice of best K.
    criterion : 'bic' (default), 'aic', 'sabic' or 'caic'; the best K minimises it.
    sample_weight : per-row weights (survey weights), used in every fit and statistic.
    blrt : bootstrap samples of the likelihood-ratio test of K vs K − 1 for every K >= 2
        in ``ks`` (0: no test; :mod:`emnet.mixture.inference.blrt`). Each sample fits K − 1 and K
        with max(``n_init``, ``blrt_n_init``) random starts each, plus the generating
        parameters (K − 1), the data's K fit and a split of every class of the bootstrap
        K − 1 fit (K). The ratios are ``blrt_ratios`` (K -> LR_b, all >= 0), and
        ``blrt_n_below`` counts the samples whose random-start K fit ended below the K − 1
        fit (rescued by the split starts).
    blrt_n_init : random starts of each bootstrap fit, at least ``n_init`` (None: ``n_init``).
    fit_statistics : compute entropy R², G², X² and df (needs dense data).
    n_jobs : parallel processes for the fits (joblib; -1 = all cores). Ignored with client.
    client : a ``distributed.Client``; the fits run as tasks on its workers.
    random_state : seed of the seeds of all restarts and bootstrap samples; the default 0
        makes two calls with the same arguments give the same result (None: fresh
        entropy, a different result each call).
    progress : show a tqdm bar over the fits.
    **estimator_params : passed to every estimator (tol, max_iter, priors, ...).
    """
    cls, defaults = _estimator_class(estimator)
    whole = _whole_fits(cls)
    if criterion not in _CRITERIA:
        raise ValueError(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
    if not isinstance(n_init, int | np.integer) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
    if not isinstance(blrt, int | np.integer) or blrt < 0:
        raise ValueError(f"blrt: expected a number of bootstrap samples >= 0, got {blrt!r}")
    if blrt_n_init is not None and (
        not isinstance(blrt_n_init, int | np.integer) or blrt_n_init < 1
    ):
        raise ValueError(f"blrt_n_init: expected a positive integer or None, got {blrt_n_init!r}")
    for bad in ("n_components", "n_init", "random_state"):
        if bad in estimator_params:
            raise TypeError(f"{bad} is set by select_n_components; do not pass it")
    estimator_params = {**defaults, **estimator_params}
    if not hasattr(X, "shape"):
        X = np.asarray(X, dtype=object if cls._takes_text else None)
    k_values = _parse_ks(ks, int(X.shape[0]))
    seeds = np.random.SeedSequence(random_state).generate_state(len(k_values) * n_init + 1)
    jobs = [(k, int(seeds[i * n_init + j])) for i, k in enumerate(k_values) for j in range(n_init)]
    fit_params = estimator_params
    if whole:  # one fit per K with every start (see ``estimator``)
        jobs = [(k, int(seeds[i * n_init])) for i, k in enumerate(k_values)]
        fit_params = {**estimator_params, "n_init": n_init}

    results = _run_jobs(X, jobs, fit_params, n_jobs, client, progress, cls, sample_weight)

    best: dict[int, tuple[Any, float]] = {}
    seconds: dict[int, float] = dict.fromkeys(k_values, 0.0)
    bounds: dict[int, list[float]] = {k: [] for k in k_values}
    fitted: dict[int, list[Any]] = {k: [] for k in k_values}
    for k, model, loglik, secs in results:
        seconds[k] += secs
        bounds[k].append(model.lower_bound_)
        fitted[k].append(model)
        if k not in best or loglik > best[k][1]:
            best[k] = (model, loglik)
    models = {k: best[k][0] for k in k_values}
    for i, k in enumerate(k_values if not whole else []):  # fit's start search, over restarts
        t0 = time.perf_counter()
        seed = int(np.random.SeedSequence([int(seeds[-1]), 1, i]).generate_state(1)[0])
        kept = models[k].lower_bound_
        found = models[k]._search_after(X, sample_weight, fitted[k], seed)
        if models[k].lower_bound_ != kept:  # the search replaced the fit
            best[k] = (models[k], float(models[k]._weighted_loglik(X, sample_weight)[0]))
        seconds[k] += time.perf_counter() - t0
        bounds[k].extend(found)
    unconverged = {  # starts (the separate one-start fits, or one fit's record of them)
        k: sum(int(np.sum(~np.asarray(getattr(m, "init_converged_", [m.converged_]))))
               for m in fitted[k])
        for k in k_values
    }  # fmt: skip
    for k, model in models.items():  # the kept model records every restart of its K
        if not whole:
            model.init_lower_bounds_ = np.array(bounds[k])
    n = float(models[k_values[0]]._weighted_loglik(X, sample_weight)[1])
    loglik = np.array([best[k][1] for k in k_values])
    n_params = np.array([models[k]._n_parameters() for k in k_values])
    from emnet.mixture.inference.stats import information_criteria

    crit = information_criteria(loglik, n_params, n)
    extra: dict[str, Any] = {}
    if fit_statistics:
        extra["entropy"] = np.array(
            [models[k].relative_entropy(X, sample_weight) for k in k_values]
        )
    if fit_statistics and not whole:
        fits = [models[k].goodness_of_fit(X, sample_weight) for k in k_values]
        extra["g2"] = np.array([f.g2 for f in fits])
        extra["x2"] = np.array([f.x2 for f in fits])
        extra["df"] = np.array([f.df for f in fits])
    if whole:
        extra["n_set_aside"] = np.array([models[k].n_degenerate_starts_ for k in k_values])
        extra["all_set_aside"] = np.array([all_starts_set_aside(models[k]) for k in k_values])
    if blrt:
        from emnet.mixture.inference.blrt import bootstrap_lrt

        p_values, n_below, ratios = [], [], {}
        boot_n_init = max(int(n_init), int(blrt_n_init or 0))
        for i, k in enumerate(k_values):
            null = models.get(k - 1)
            if k == 1:
                p_values.append(np.nan)
                n_below.append(-1)
                continue
            if null is None and whole:
                seed = np.random.SeedSequence([int(seeds[-1]), 2, k]).generate_state(1)[0]
                null = _fit_one(X, k - 1, int(seed), fit_params, cls, sample_weight)[1]
            elif null is None:
                null = max(
                    (_fit_one(X, k - 1, int(s), estimator_params, cls, sample_weight)
                     for s in np.random.SeedSequence([int(seeds[-1]), 2, k]).generate_state(n_init)),
                    key=lambda r: r[2],
                )[1]  # fmt: skip
            observed = 2.0 * (loglik[i] - null._weighted_loglik(X, sample_weight)[0])
            test = bootstrap_lrt(
                null, observed, int(n), blrt, n_init=boot_n_init,
                random_state=int(seeds[-1]) + k, n_jobs=n_jobs, client=client,
                progress=progress, estimator_params=estimator_params, alt_model=models[k],
            )  # fmt: skip
            p_values.append(test.p_value)
            n_below.append(test.n_below)
            ratios[k] = test.null_statistics
        extra["blrt_p"] = np.array(p_values)
        extra["blrt_n_below"] = np.array(n_below, dtype=np.int64)
        extra["blrt_ratios"] = ratios
    identified = np.array([_identified(models[k], n, whole) for k in k_values])
    collapsed = extra.get("all_set_aside", np.zeros(len(k_values), dtype=bool))
    scores = np.where(admissible_ks(identified, collapsed), crit[criterion], np.inf)
    if not identified.any():
        bound = "n" if whole else "min(n, number of response patterns - 1) (negative df)"
        warnings.warn(
            f"no K in {k_values} is identified: each has more free parameters than "
            f"{bound}; the best K by {criterion.upper()} is reported, but its estimates "
            "are not unique",
            UserWarning,
            stacklevel=2,
        )
    elif not (identified & ~collapsed).any():
        warnings.warn(
            f"every start of every K in {k_values} ended in a collapsed class; the best K "
            f"by {criterion.upper()} is reported, but it is not a proper maximum (more "
            "rows, fewer classes, or a shared covariance)",
            UserWarning,
            stacklevel=2,
        )
    best_k = k_values[int(np.argmin(scores))]
    return SelectionResult(
        ks=np.array(k_values),
        loglik=loglik,
        loglik_per_sample=loglik / n,
        bic=crit["bic"],
        aic=crit["aic"],
        n_params=n_params,
        n_iter=np.array([models[k].n_iter_ for k in k_values]),
        converged=np.array([bool(models[k].converged_) for k in k_values]),
        seconds=np.array([seconds[k] for k in k_values]),
        criterion=criterion,
        best_k=best_k,
        best_model=models[best_k],
        models=models,
        sabic=crit["sabic"],
        caic=crit["caic"],
        n_at_best=np.array([models[k].n_starts_at_best() for k in k_values]),
        identified=identified,
        n_unconverged=np.array([unconverged[k] for k in k_values]),
        **extra,
    )


def admissible_ks(identified: np.ndarray, all_set_aside: np.ndarray) -> np.ndarray:
    """(K,) bool: the K the best is chosen among — identified with a proper maximum; when
    none is, the identified; when none is identified, all (the caller warns)."""
    ok = identified & ~all_set_aside
    if ok.any():
        return ok
    return identified if identified.any() else np.ones(len(identified), dtype=bool)


def all_starts_set_aside(model: Any) -> bool:
    """Whether every start of a fitted LatentClassModel ended in a collapsed class."""
    return bool(model.n_degenerate_starts_ >= len(model.init_lower_bounds_))


def _identified(model: Any, n: float, whole: bool = False) -> bool:
    """Whether ``model``'s free parameters fit in min(n, Π_j R_j − 1), the most a
    table of response patterns can identify (poLCA warns when they do not: df < 0); a
    LatentClassModel (``whole``): in n (continuous items have no table of patterns; with
    more parameters than rows its estimates are not unique)."""
    if whole:
        return bool(model._n_parameters() <= n)
    n_answers = np.diff(np.asarray(model._item_offsets)).astype(np.float64)
    log_cells = float(np.log(n_answers).sum())
    cells = np.inf if log_cells > 700 else float(np.exp(log_cells))
    return bool(model._n_parameters() <= min(n, cells - 1.0))


def _run_jobs(
    X: Any,
    jobs: list[tuple[int, int]],
    params: dict[str, Any],
    n_jobs: int | None,
    client: Any,
    progress: bool,
    cls: Any = None,
    sample_weight: Any = None,
) -> list[tuple[int, Any, float, float]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="K x restarts", unit="fit", disable=not progress)
    try:
        if client is not None:
            from distributed import as_completed

            x_future = client.scatter(X, broadcast=True)
            futures = [
                client.submit(_fit_one, x_future, k, s, params, cls, sample_weight, pure=False)
                for k, s in jobs
            ]
            out = []
            for fut in as_completed(futures):
                out.append(fut.result())
                bar.update()
            return out
        if n_jobs in (None, 1):
            out = []
            for k, s in jobs:
                out.append(_fit_one(X, k, s, params, cls, sample_weight))
                bar.update()
            return out
        from joblib import Parallel, delayed

        out = []
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        fits = (delayed(_fit_one)(X, k, s, params, cls, sample_weight) for k, s in jobs)
        for res in parallel(fits):
            out.append(res)
            bar.update()
        return out
    finally:
        bar.close()


def format_selection_table(result: SelectionResult) -> str:
    """A plain-text table of the per-K results, the best K marked with '*'; a K that is
    not identified (more free parameters than min(n, Π_j R_j − 1)) is marked 'no' in an
    "identified" column with a footnote, and bootstrap K fits the split starts rescued are
    counted under the table."""
    cols = [("K", "k", "{:>3}"), ("LL", "loglik", "{:>12.4f}"), ("npar", "n_params", "{:>5}"),
            ("AIC", "aic", "{:>11.2f}"), ("BIC", "bic", "{:>11.2f}"), ("SABIC", "sabic", "{:>11.2f}"),
            ("CAIC", "caic", "{:>11.2f}"), ("entropy", "entropy", "{:>8.3f}"), ("G2", "g2", "{:>10.2f}"),
            ("X2", "x2", "{:>10.2f}"), ("df", "df", "{:>6}"), ("BLRT p", "blrt_p", "{:>7.3f}"),
            ("starts@best", "n_at_best", "{:>11}"), ("set aside", "n_set_aside", "{:>11}"),
            ("identified", "identified", "{:>10}")]  # fmt: skip
    rows = result.table()
    not_identified = [row["k"] for row in rows if row.get("identified") is False]
    present = [c for c in cols if c[1] in rows[0] and (c[1] != "identified" or not_identified)]
    widths = [len(fmt.format(0 if key != "k" else 0)) for _, key, fmt in present]
    head = " ".join(name.rjust(w) for (name, _, _), w in zip(present, widths, strict=True))
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = []
        for (_, key, fmt), w in zip(present, widths, strict=True):
            v = row[key]
            if key == "identified":
                cells.append(("yes" if v else "no †").rjust(w))
            elif key == "n_set_aside" and row.get("all_set_aside"):
                cells.append(f"all {v} ‡".rjust(w))
            else:
                cells.append("-".rjust(w) if v is None else fmt.format(v))
        mark = " *" if row["k"] == result.best_k else ""
        lines.append(" ".join(cells) + mark)
    lines.append(f"best K by {result.criterion.upper()}: {result.best_k}")
    if not_identified:
        left_out = len(not_identified) < len(rows)
        bound = (
            "n" if result.n_set_aside is not None
            else "min(n, number of response patterns - 1), negative df"
        )  # fmt: skip
        lines.append(
            f"† not identified (K = {', '.join(map(str, not_identified))}): more free "
            f"parameters than {bound}; "
            + ("left out of the choice of best K" if left_out else "no K is identified")
        )
    collapsed = [row["k"] for row in rows if row.get("all_set_aside")]
    if collapsed:
        lines.append(
            f"‡ every start ended in a collapsed class (K = {', '.join(map(str, collapsed))}): "
            "no proper maximum was found; "
            + (
                "left out of the choice of best K"
                if len(collapsed) < len(rows)
                else "no K has a proper maximum"
            )
        )
    below = {row["k"]: row["blrt_n_below"] for row in rows if row.get("blrt_n_below")}
    if below:
        counts = ", ".join(f"K = {k}: {b}" for k, b in below.items())
        lines.append(
            f"BLRT: bootstrap samples whose K-class fit from random starts ended below the "
            f"K - 1 fit, refitted from split starts ({counts})"
        )
    return "\n".join(lines)


def plot_bic(result: SelectionResult, path: str | Path | None = None, *, ax: Any = None) -> Any:
    """Information criteria (BIC, AIC, and SABIC/CAIC when present) against K, best K
    marked. Draws on ``ax`` if given (returns it), else writes ``path`` (PNG/SVG/PDF by
    suffix, returns the path). Uses matplotlib's object-oriented API only: the caller's
    backend and pyplot state are never touched."""
    from matplotlib.figure import Figure

    from emnet.mixture.plots.common import check_target, figure_result

    check_target(ax, path, "plot_bic")
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.4, 4.0))
        ax = fig.add_subplot()
    styles = [("bic", "o-", "tab:blue", "BIC"), ("aic", "s--", "tab:orange", "AIC"),
              ("sabic", "^-.", "tab:green", "SABIC"), ("caic", "d:", "tab:purple", "CAIC")]  # fmt: skip
    for key, style, color, label in styles:
        values = getattr(result, key)
        if values is not None:
            ax.plot(result.ks, values, style, color=color, label=label)
    best = getattr(result, result.criterion)[list(result.ks).index(result.best_k)]
    ax.plot([result.best_k], [best], "*", color="tab:red", ms=16, label=f"best K = {result.best_k}")
    ax.set_xlabel("number of classes K")
    ax.set_ylabel("criterion (lower is better)")
    ax.set_title("Model selection")
    ax.set_xticks(result.ks)
    ax.grid(alpha=0.3)
    ax.legend()
    if fig is not None:
        fig.tight_layout()
    return figure_result(fig, ax, path)
