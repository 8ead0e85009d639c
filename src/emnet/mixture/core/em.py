"""The EM loop, restarts, acceleration, weights and convergence, once for every mixture.

In the spirit of scikit-learn's ``mixture/core/em.py``: :class:`BaseEMMixture` owns ``fit``
(validation order, ``sample_weight``, ``n_init`` restarts, ``warm_start``, the
ConvergenceWarning, the per-start record ``init_lower_bounds_``), the EM loop with its
SQUAREM acceleration, prediction, the information criteria and saving. It treats the
parameters as an opaque object; a distribution (``BernoulliMixture``,
``CategoricalMixture``) supplies small pure pieces:

- ``_check_parameters()``, ``_prepare_fit(X, sample_weight, reset) -> FitData`` (validated
  data for the initialisation and ``stats(params)``: one E-step over all rows, returning
  statistics with ``.n`` (Σ w) and ``.loglik`` (Σ w log p));
- ``_initialize(data, sample_weight, rng) -> params``, ``_m_step(stats, params) -> params``,
  ``_log_prior(params)``, ``_n_parameters()``;
- ``_to_unconstrained(params) -> 1-D array`` and ``_from_unconstrained(vector) -> params``
  (log-odds / log-probabilities, so that an extrapolated point is a valid model);
- ``_get_fitted()`` / ``_set_fitted(params)`` (the trailing-underscore attributes),
  ``_log_resp(X) -> (log η (n, K), log p(x) (n,))`` on new data.

Each plain iteration is one M-step followed by one E-step, so the objective recorded in
``history_`` — (log-likelihood + log prior) / Σ w — is exact for the parameters after that
iteration, and EM guarantees it never decreases.

**Acceleration** (``accelerate=True``): SQUAREM, scheme S3 (Varadhan & Roland 2008, SPEC
§1b). From θ0 two EM steps give θ1, θ2; in the unconstrained parametrisation
r = θ1 − θ0, v = θ2 − θ1 − r, α = −‖r‖/‖v‖ (clamped to [−step_max, −1]) and
θ′ = θ0 − 2αr + α²v; one EM step from θ′ stabilises it. The result is kept only if its
objective is at least that of θ2; otherwise θ2 is kept. So the objective still never
decreases, and one iteration (one entry of ``history_``) is one such cycle of two or
three EM steps. ``step_max`` starts at 1 and is multiplied by 4 each time the step length
reaches it and is accepted, divided by 4 when such a step is rejected (the SQUAREM
package's defaults).
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from emnet._io import atomic_path
from emnet.mixture.core.validation import check_weights
from emnet.mixture.measurement.base import InvalidParameters
from emnet.mixture.persistence import FORMAT_VERSION

StatsFn = Callable[[Any], Any]
STEP_MAX_FACTOR = 4.0
SCREEN_TOL = 1e-6
"""The loose tolerance (objective change per unit of weight) of the start search."""
SEARCH_MAX_STARTS = 5
"""The start search screens at most this many times ``n_init`` extra starts."""
AT_BEST_TOL = 1e-6
"""Objectives within this (per unit of weight) of the best count as reaching it."""


class FitData(NamedTuple):
    """What ``fit`` needs from a distribution's ``_prepare_fit``."""

    data: Any  # validated rows, as ``_initialize`` takes them
    sample_weight: np.ndarray | None  # per row of ``data`` (None: all 1)
    stats: StatsFn  # params -> statistics of one E-step over all rows (weighted)
    context: Any = None  # distribution-private (e.g. what split-merge needs)
    concurrent: bool = False  # ``stats`` is heavy and releases the GIL: starts on threads


class EMRun(NamedTuple):
    """The outcome of one EM run from one initialisation."""

    params: Any
    history: np.ndarray
    converged: bool
    n_iter: int
    lower_bound: float
    n_em_steps: int  # E-steps evaluated (with acceleration, up to 4 per iteration)


class _Screened(NamedTuple):
    """One extra start of the start search, screened ahead (``_screen_ahead``)."""

    cost: int  # E-steps spent making the start
    rough: EMRun  # its run to SCREEN_TOL
    state: Any  # the generator's state before the start was drawn
    finished: EMRun | None = None  # its run on from ``rough`` to convergence, if ahead


class BaseEMMixture(DensityMixin, BaseEstimator, metaclass=ABCMeta):
    """EM for a finite mixture over opaque parameters (see the module docstring)."""

    _fitted_scalars = ("converged_", "n_iter_", "lower_bound_", "n_features_in_")
    #: what a fit with covariates adds (``emnet.mixture.covariates.regression``); a new fit clears it
    COVARIATE_ATTRIBUTES = (
        "coef_", "coef_se_", "coef_cov_", "covariate_design_", "covariate_method_",
        "classification_error_",
    )  # fmt: skip
    _saved_array_names: tuple[str, ...] = ()  # the distribution's fitted arrays in a file
    #: whether the estimator takes text answers (a list input is read as objects, not numbers)
    _takes_text: ClassVar[bool] = False
    #: scikit-learn input tags set to True (``__sklearn_tags__``)
    _input_tags: ClassVar[tuple[str, ...]] = ("allow_nan",)
    #: ``select_n_components`` fits each K as one fit with all its starts (True: the
    #: estimator compares its starts, e.g. LatentClassModel's proper-maxima rule) rather
    #: than as separate one-start fits
    _whole_fit_selection: ClassVar[bool] = False
    #: the BLRT's bootstrap replicate, a function of ``inference.blrt``: over the coded
    #: items' log θ table, or ``"family_replicate"`` through the measurement blocks
    _blrt_replicate: ClassVar[str] = "coded_replicate"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        for name in self._input_tags:
            setattr(tags.input_tags, name, True)
        return tags

    def _store_params(self, arguments: dict[str, Any]) -> None:
        """Store an estimator's constructor arguments as they are (scikit-learn's rule: no
        logic in ``__init__``; every check runs in ``fit``). Each estimator's
        ``__init__`` names its parameters and defaults and calls this with ``locals()``."""
        for name, value in arguments.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _checked_weights_init(self) -> np.ndarray | None:
        """``weights_init`` as (K,) positive shares (normalised), or None; a ValueError
        naming the argument otherwise."""
        if self.weights_init is None:
            return None
        K = self.n_components
        try:
            w = np.asarray(self.weights_init, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"weights_init: expected an array of numbers, got {self.weights_init!r}"
            ) from None
        if w.shape != (K,):
            raise ValueError(f"weights_init: expected shape ({K},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w <= 0) or abs(w.sum() - 1.0) > 1e-6:
            raise ValueError(
                f"weights_init: expected {K} positive finite weights summing to 1 "
                f"(they sum to 1 within 1e-6), got {np.array2string(w, precision=6)}"
            )
        return w / w.sum()

    # -- hooks a distribution supplies -------------------------------------------------
    @abstractmethod
    def _check_parameters(self) -> None:
        """Supplied by the distribution."""

    @abstractmethod
    def _prepare_fit(self, X: Any, sample_weight: Any, *, reset: bool) -> FitData:
        """Supplied by the distribution."""

    @abstractmethod
    def _initialize(self, data: Any, sample_weight: Any, rng: np.random.RandomState) -> Any:
        """Supplied by the distribution."""

    @abstractmethod
    def _m_step(self, stats: Any, params: Any) -> Any:
        """Supplied by the distribution."""

    @abstractmethod
    def _log_prior(self, params: Any) -> float:
        """Supplied by the distribution."""

    @abstractmethod
    def _n_parameters(self) -> int:
        """Supplied by the distribution."""

    @abstractmethod
    def _to_unconstrained(self, params: Any) -> np.ndarray:
        """Supplied by the distribution."""

    @abstractmethod
    def _from_unconstrained(self, vector: np.ndarray, like: Any) -> Any:
        """Supplied by the distribution."""

    @abstractmethod
    def _get_fitted(self) -> Any:
        """Supplied by the distribution."""

    @abstractmethod
    def _set_fitted(self, params: Any) -> None:
        """Supplied by the distribution."""

    @abstractmethod
    def _log_resp(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Supplied by the distribution."""

    def _refine(self, run: EMRun, fit_data: FitData, rng: np.random.RandomState) -> EMRun:
        """A fit-quality step after the restarts (default: none)."""
        return run

    @property
    def _fit_attribute(self) -> str:
        """An attribute that exists once the model is fitted (for ``check_is_fitted``)."""
        return "weights_"

    # -- the EM loop ---------------------------------------------------------------------
    def _objective(self, stats: Any, params: Any, ops: Any = None) -> float:
        """(log-likelihood + log prior) / Σ w: what EM never decreases."""
        log_prior = self._log_prior if ops is None else ops.log_prior
        return (stats.loglik + log_prior(params)) / stats.n

    def _run_em(
        self, stats_fn: StatsFn, params: Any, ops: Any = None, tol: float | None = None
    ) -> EMRun:
        """EM (SQUAREM-accelerated when ``accelerate``) until the objective changes < tol.

        ``ops`` (optional) replaces the estimator's ``_to_unconstrained``,
        ``_from_unconstrained`` and ``_log_prior`` for parameters of another form (the
        latent class regression of ``emnet.mixture.covariates.regression``). ``tol`` replaces the
        estimator's (the loose tolerance of the start search)."""
        tol = self.tol if tol is None else tol
        to_u = self._to_unconstrained if ops is None else ops.to_unconstrained
        from_u = self._from_unconstrained if ops is None else ops.from_unconstrained
        stats = stats_fn(params)
        objective = self._objective(stats, params, ops)
        history: list[float] = []
        converged = False
        n_steps = 1
        step_max = 1.0
        progress = self._progress_bar()
        accelerate = bool(self.accelerate)
        u_params = None  # to_u(params), when the last cycle already computed it
        while len(history) < self.max_iter:
            p1 = self._m_step(stats, params)
            s1 = stats_fn(p1)
            n_steps += 1
            new_params, new_stats, new = p1, s1, None  # new: their objective, once known
            if accelerate:
                p2 = self._m_step(s1, p1)
                s2 = stats_fn(p2)
                n_steps += 1
                new_params, new_stats = p2, s2
                u0 = to_u(params) if u_params is None else u_params
                u2 = to_u(p2)
                r = to_u(p1) - u0
                v = u2 - u0 - 2.0 * r
                u_params = u2  # the next cycle's u0 unless the extrapolation is kept
                nr, nv = math.sqrt(float(r @ r)), math.sqrt(float(v @ v))
                alpha = -nr / nv if nv > 0 else -1.0
                alpha = min(max(alpha, -step_max), -1.0) if math.isfinite(alpha) else -1.0
                at_bound = alpha <= -step_max
                if alpha < -1.0:
                    u = u0 - 2.0 * alpha * r + alpha * alpha * v
                    n_steps += 2
                    new = self._objective(s2, p2, ops)
                    try:  # an extrapolation far out may overflow: rejected below, quietly
                        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                            trial = from_u(u, params)
                            trial = self._m_step(stats_fn(trial), trial)
                            s3 = stats_fn(trial)
                            o3 = self._objective(s3, trial, ops)
                    except InvalidParameters:  # extrapolated outside the model: rejected
                        o3 = -math.inf
                    if math.isfinite(o3) and o3 >= new:
                        new_params, new_stats, new = trial, s3, o3
                        u_params = None
                    else:  # rejected: plain EM's θ2, and a shorter step next time
                        step_max = max(1.0, step_max / STEP_MAX_FACTOR) if at_bound else step_max
                        at_bound = False
                if at_bound:
                    step_max *= STEP_MAX_FACTOR
            params, stats = new_params, new_stats
            if new is None:
                new = self._objective(stats, params, ops)
            change, objective = new - objective, new
            history.append(objective)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(objective=f"{objective:.6f}")
            if self.verbose >= 2:
                print(
                    f"  iteration {len(history)}: objective {objective:.8f} (change {change:.3g})"
                )
            if abs(change) < tol:
                converged = True
                break
        if progress is not None:
            progress.close()
        return EMRun(params, np.asarray(history), converged, len(history), objective, n_steps)

    def _progress_bar(self) -> Any:
        if self.verbose < 1:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.max_iter, desc="EM", unit="it", leave=False)

    def fit(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        covariates: Any = None,
        covariate_method: str = "one-step",
    ) -> BaseEMMixture:
        """Fit by EM with ``n_init`` restarts, keeping the run with the best objective.

        ``sample_weight`` (n,): non-negative weights of the rows (survey or frequency
        weights); every sum over rows is weighted, so integer weights equal repeating rows.
        ``covariates`` (n, q array or DataFrame): latent class regression, P(class | z) a
        multinomial logit (``coef_``), by ``covariate_method`` "one-step" (joint EM),
        "bch", "ml" (bias-corrected three-step) or "naive" (``emnet.mixture.covariates.regression``).
        """
        for name in self.COVARIATE_ATTRIBUTES:
            if hasattr(self, name):
                delattr(self, name)
        self.n_screened_ = 0  # the start search's count (covariate fits: of their plain starts)
        if covariates is not None:
            return self._fit_covariates(X, covariates, sample_weight, covariate_method)
        return self._fit_plain(X, sample_weight)

    def _fit_covariates(
        self, X: Any, covariates: Any, sample_weight: Any, method: str
    ) -> BaseEMMixture:
        """A latent class regression fit (coded items: ``covariates.regression``; a model
        over measurement blocks overrides it)."""
        from emnet.mixture.covariates.regression import fit_with_covariates

        return fit_with_covariates(self, X, covariates, sample_weight, method)

    def _fit_plain(self, X: Any, sample_weight: Any) -> BaseEMMixture:
        """The fit without covariates: every start, the start search, the best run."""
        self._check_parameters()
        fitted = hasattr(self, self._fit_attribute) and hasattr(self, "converged_")
        do_init = not (self.warm_start and fitted)
        fit_data = self._prepare_fit(X, sample_weight, reset=do_init)
        rng = check_random_state(self.random_state)
        if do_init:  # all starts drawn first, in order: the same starts however they run
            starts = [
                self._initialize(fit_data.data, fit_data.sample_weight, rng)
                for _ in range(self.n_init)
            ]
        else:
            starts = [self._get_fitted()]
        runs = self._run_starts(fit_data, starts)
        n_screened = 0
        if do_init:
            found, n_screened = self._search_starts(fit_data, runs, rng)
            runs = runs + found
        if self.verbose >= 1:
            for init, run in enumerate(runs):
                state = "converged" if run.converged else "did not converge"
                print(
                    f"init {init + 1}: {state} after {run.n_iter} iterations, "
                    f"objective {run.lower_bound:.6f}"
                )
        best = max(runs, key=lambda r: r.lower_bound)  # first of equals: earliest start
        best = self._refine(best, fit_data, rng)
        self._set_fitted(best.params)
        self._record_runs(best, runs)
        self.n_screened_ = n_screened
        return self

    def _run_starts(self, fit_data: FitData, starts: list[Any]) -> list[EMRun]:
        """One EM run per start, in order. When the distribution's E-step is heavy and
        releases the GIL (``FitData.concurrent``), the starts run on one thread per CPU
        core: each run is the same computation, so the results equal the serial ones."""
        if self.n_components == 1 and len(starts) > 1:
            # One class: every responsibility is 1, so the first M-step, and with it the
            # whole run, is the same from every start. Run it once.
            run = self._run_em(fit_data.stats, starts[0])
            return [run] * len(starts)
        return self._runs_of(fit_data, starts)

    def _start_threads(self, fit_data: FitData) -> int:
        """Threads for runs from independent starts (1: this thread): one per core when
        ``fit_data.concurrent`` and not ``verbose`` (whose printout is in order), at most
        ``OMP_NUM_THREADS`` when that is set (joblib's and Dask's worker processes set it
        to share the cores between them)."""
        if not fit_data.concurrent or self.verbose >= 1:
            return 1
        return max(1, min(_n_cores(), _thread_budget()))

    def _runs_of(
        self, fit_data: FitData, starts: list[Any], tol: float | None = None
    ) -> list[EMRun]:
        """One EM run per start (to ``tol``), in order; on :meth:`_start_threads`
        threads when more than one."""
        extra = {} if tol is None else {"tol": tol}  # the estimator's own tol otherwise

        def run(p: Any) -> EMRun:
            return self._run_em(fit_data.stats, p, **extra)

        threads = min(len(starts), self._start_threads(fit_data))
        if threads <= 1:
            return [run(p) for p in starts]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads, thread_name_prefix="emnet-start") as pool:
            return list(pool.map(run, starts))

    def _search_starts(
        self, fit_data: FitData, runs: list[EMRun], rng: np.random.RandomState
    ) -> tuple[list[EMRun], int]:
        """More random starts after the ``n_init``, cheaply (``search_budget``).

        Each extra start runs only to the loose tolerance :data:`SCREEN_TOL`; one whose
        objective there is within reach of the best (the median gain the ``n_init`` starts
        made after they first passed that tolerance, read off their histories) is run on
        to convergence. E-steps spent (with those spent making the starts,
        :meth:`_search_start`): at most ``search_budget`` × (1 − the share of starts
        at the best objective) × those of the ``n_init`` starts, so data whose starts agree
        cost nothing extra; at most :data:`SEARCH_MAX_STARTS` × ``n_init`` extra starts.
        While every run so far was set aside (objective −inf: ``LatentClassModel``'s
        collapsed classes), the search goes on past the budget, up to that many starts.
        Returns (the finished runs, the number of extra starts screened)."""
        share = float(getattr(self, "search_budget", 0.0))
        if share <= 0.0 or self.tol >= SCREEN_TOL or self.max_iter == 0:
            return [], 0
        best = max(r.lower_bound for r in runs)
        # every start set aside (-inf): none is at a best, the whole budget is there
        at_best = (
            np.mean([r.lower_bound >= best - AT_BEST_TOL for r in runs])
            if math.isfinite(best)
            else 0.0
        )
        budget = share * (1.0 - at_best) * sum(r.n_em_steps for r in runs)
        reach = float(np.median([_gain_after(r.history, SCREEN_TOL) for r in runs]))
        found: list[EMRun] = []
        spent = screened = 0
        cap = SEARCH_MAX_STARTS * len(runs)
        ahead: list[_Screened] = []  # screened ahead (_screen_ahead)
        # while every run so far was set aside, the search goes on past the budget
        while (spent < budget or not math.isfinite(best)) and screened < cap:
            bar = best - reach - AT_BEST_TOL  # a screened start below it is not finished
            if not ahead:
                ahead = self._screen_ahead(fit_data, rng, screened, cap, bar)
            item = ahead.pop(0)
            rough = item.rough
            screened += 1
            spent += item.cost + rough.n_em_steps
            if rough.lower_bound < bar:
                if item.finished is not None:  # finished ahead, not wanted after all
                    self._forget_runs([item.finished])
                continue
            run = item.finished
            if run is None:
                run = self._run_em(fit_data.stats, rough.params)
            spent += run.n_em_steps
            found.append(
                run._replace(
                    history=np.concatenate([rough.history, run.history]),
                    n_iter=rough.n_iter + run.n_iter,
                    n_em_steps=rough.n_em_steps + run.n_em_steps,
                )
            )
            best = max(best, run.lower_bound)
        if ahead:  # screened ahead and not taken: as if never drawn nor run
            rng.set_state(ahead[0].state)
            self._forget_runs([r for i in ahead for r in (i.rough, i.finished) if r is not None])
        return found, screened

    def _forget_runs(self, runs: list[EMRun]) -> None:
        """Drop whatever the estimator recorded of these runs (default: nothing)."""

    def _screen_ahead(
        self, fit_data: FitData, rng: np.random.RandomState, index: int, cap: int, bar: float
    ) -> list[_Screened]:
        """The search's next extra starts from ``index``, one per :meth:`_start_threads`
        thread (at most up to ``cap``), each run to :data:`SCREEN_TOL`; when two or more
        of them reach ``bar`` (the search's at this point), those are also run on to
        convergence, on the threads. The starts are drawn in order and every run is
        independent, so the search takes them one by one as if it ran them one after
        another: the bar only rises as it goes, so every run it finishes was finished
        here; the generator's state before each draw lets it undo the draws it does not
        take."""
        m = max(1, min(self._start_threads(fit_data), cap - index))
        drawn = []
        for j in range(m):
            state = rng.get_state()
            start, cost = self._search_start(fit_data, rng, index + j)
            drawn.append((start, cost, state))
        rough = self._runs_of(fit_data, [d[0] for d in drawn], tol=SCREEN_TOL)
        promising = [i for i, r in enumerate(rough) if r.lower_bound >= bar]
        finished: dict[int, EMRun] = {}
        if len(promising) > 1:  # one alone runs when the search takes it (if it does)
            runs = self._runs_of(fit_data, [rough[i].params for i in promising])
            finished = dict(zip(promising, runs, strict=True))
        return [
            _Screened(cost, r, state, finished.get(i))
            for i, ((_, cost, state), r) in enumerate(zip(drawn, rough, strict=True))
        ]

    def _search_start(
        self, fit_data: FitData, rng: np.random.RandomState, index: int
    ) -> tuple[Any, int]:
        """The ``index``-th extra start of the start search and the E-steps spent making
        it, which count against the budget (default: one more start of the estimator's
        own kind, 0)."""
        return self._initialize(fit_data.data, fit_data.sample_weight, rng), 0

    def _search_after(
        self, X: Any, sample_weight: Any, starts: list[BaseEMMixture], seed: int
    ) -> list[float]:
        """The start search of ``fit`` for restarts that ran as separate one-start fits
        (``select_n_components``): ``self`` is the best of ``starts``; a better run found
        replaces its fit. Returns the objectives of the finished search runs."""
        self.n_screened_ = 0
        if float(getattr(self, "search_budget", 0.0)) <= 0.0 or len(starts) < 2:
            return []
        runs = [
            EMRun(m._get_fitted(), m.history_, m.converged_, m.n_iter_, m.lower_bound_,
                  m.n_em_steps_)
            for m in starts
        ]  # fmt: skip
        fit_data = self._prepare_fit(X, sample_weight, reset=False)
        found, self.n_screened_ = self._search_starts(fit_data, runs, check_random_state(seed))
        better = [r for r in found if r.lower_bound > self.lower_bound_]
        if better:
            best = max(better, key=lambda r: r.lower_bound)
            self._set_fitted(best.params)
            self._keep_run(best)
        return [r.lower_bound for r in found]

    def _keep_run(self, best: EMRun) -> None:
        """The fitted record of the kept run."""
        self.history_ = best.history
        self.converged_, self.n_iter_ = best.converged, best.n_iter
        self.n_em_steps_ = best.n_em_steps
        self.lower_bound_ = best.lower_bound

    def _record_runs(self, best: EMRun, runs: list[EMRun]) -> None:
        """The fitted record of the kept run and every start; warns if it did not converge."""
        self._keep_run(best)
        self.init_lower_bounds_ = np.array([r.lower_bound for r in runs])
        self.init_n_em_steps_ = np.array([r.n_em_steps for r in runs])
        self.init_converged_ = np.array([bool(r.converged) for r in runs])
        if not best.converged:
            warnings.warn(
                f"EM did not converge in max_iter={self.max_iter} iterations (last objective "
                f"change above tol={self.tol}); increase max_iter or tol, or check the data.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _check_em_parameters(
        self,
        init_choices: tuple[str, ...],
        *,
        priors: tuple[str, ...] = (),
        flags: tuple[str, ...] = (),
        init_arrays: tuple[str, ...] = (),
    ) -> None:
        """The checks every EM estimator's parameters share: the loop's settings, the
        estimator's ``priors`` (>= 1), boolean ``flags`` and starting arrays."""
        from emnet.mixture.core.validation import check_int, check_real

        check_int("n_components", self.n_components, 1)
        check_int("max_iter", self.max_iter, 0)
        check_int("n_init", self.n_init, 1)
        check_int("verbose", self.verbose, 0)
        check_real("tol", self.tol, 0.0)
        check_real("search_budget", getattr(self, "search_budget", 0.0), 0.0)
        for name in priors:
            check_real(name, getattr(self, name), 1.0, why=" (the MAP M-step needs a mode)")
        for name in ("accelerate", "warm_start", *flags):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise ValueError(f"{name}: expected True or False, got {value!r}")
        if self.init_params not in init_choices:
            raise ValueError(
                f"init_params: expected one of {init_choices}, got {self.init_params!r}"
            )
        for name in init_arrays:
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(
                    f"{name}: expected an array of numbers or None, got the string {value!r}"
                    " (to choose how EM starts, use init_params)"
                )

    def n_starts_at_best(self, tol: float = 1e-6) -> int:
        """How many of the last fit's starts reached the best objective within ``tol``
        (total log-likelihood units are ``tol`` · Σ w; poLCA reports this count)."""
        check_is_fitted(self, "init_lower_bounds_")
        best = float(np.max(self.init_lower_bounds_))
        return int(np.sum(self.init_lower_bounds_ >= best - tol))

    def fit_predict(
        self, X: Any, y: Any = None, sample_weight: Any = None, covariates: Any = None
    ) -> np.ndarray:
        """Fit, then the most responsible component of each row of X."""
        return self.fit(X, sample_weight=sample_weight, covariates=covariates).predict(
            X, covariates=covariates
        )

    # -- prediction ----------------------------------------------------------------------
    def _estimate(self, X: Any, covariates: Any = None) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, self._fit_attribute)
        if hasattr(self, "coef_") or covariates is not None:
            from emnet.mixture.covariates.regression import log_resp_with_covariates

            return log_resp_with_covariates(self, X, covariates)
        return self._log_resp(X)

    def predict(self, X: Any, covariates: Any = None) -> np.ndarray:
        """The most responsible component of each row (argmax of eq. 6)."""
        return self._estimate(X, covariates)[0].argmax(axis=1)

    def predict_proba(self, X: Any, covariates: Any = None) -> np.ndarray:
        """Responsibilities η (eq. 6), rows summing to 1."""
        return np.exp(self._estimate(X, covariates)[0])

    def score_samples(self, X: Any, covariates: Any = None) -> np.ndarray:
        """log P(x_i) per row (missing entries marginalised; given z_i with covariates)."""
        return self._estimate(X, covariates)[1]

    def _weighted_loglik(
        self, X: Any, sample_weight: Any, covariates: Any = None
    ) -> tuple[float, float]:
        """(Σ w log p(x_i), Σ w) on X."""
        s = np.asarray(self.score_samples(X, covariates), dtype=np.float64)
        w = check_weights(sample_weight, len(s))
        if w is None:
            return float(s.sum()), float(len(s))
        return float(s @ w), float(w.sum())

    def score(
        self, X: Any, y: Any = None, sample_weight: Any = None, covariates: Any = None
    ) -> float:
        """Mean log-likelihood per row (weighted mean with ``sample_weight``)."""
        total, n = self._weighted_loglik(X, sample_weight, covariates)
        return total / n

    def _n_free(self) -> int:
        """Free parameters of the fitted model, covariate coefficients included."""
        p = self._n_parameters()
        if hasattr(self, "coef_"):
            p += int(np.size(self.coef_)) - (len(self.weights_) - 1)
        return p

    def _criterion(self, name: str, X: Any, sample_weight: Any, covariates: Any) -> float:
        from emnet.mixture.inference.stats import information_criteria

        total, n = self._weighted_loglik(X, sample_weight, covariates)
        return float(information_criteria(total, self._n_free(), n)[name])

    def bic(self, X: Any, sample_weight: Any = None, covariates: Any = None) -> float:
        """Bayesian information criterion: −2 log L + p log n, n = Σ w (lower is better)."""
        return self._criterion("bic", X, sample_weight, covariates)

    def aic(self, X: Any, sample_weight: Any = None, covariates: Any = None) -> float:
        """Akaike information criterion: −2 log L + 2p (lower is better)."""
        return self._criterion("aic", X, sample_weight, covariates)

    def sabic(self, X: Any, sample_weight: Any = None, covariates: Any = None) -> float:
        """Sample-size adjusted BIC: −2 log L + p log((n + 2)/24), n = Σ w."""
        return self._criterion("sabic", X, sample_weight, covariates)

    def caic(self, X: Any, sample_weight: Any = None, covariates: Any = None) -> float:
        """Consistent AIC: −2 log L + p (log n + 1), n = Σ w."""
        return self._criterion("caic", X, sample_weight, covariates)

    @property
    def n_parameters_(self) -> int:
        """Free parameters: (K − 1) + K·Σ_j (R_j − 1) (K·D + K − 1 for binary items);
        with covariates (K − 1)(1 + q) in place of K − 1."""
        check_is_fitted(self, self._fit_attribute)
        return self._n_free()

    # -- latent class statistics (emnet.mixture.inference.stats) ------------------------------------
    def _view(self, X: Any, sample_weight: Any) -> Any:
        from emnet.mixture.inference.stats import coded_view

        check_is_fitted(self, self._fit_attribute)
        if hasattr(self, "coef_"):
            raise ValueError(
                "this statistic is defined for a model without covariates; with covariates "
                "see coefficients() and summary(X, covariates=Z)"
            )
        return coded_view(self, X, sample_weight)

    def _posterior(self, X: Any, sample_weight: Any) -> tuple[np.ndarray, np.ndarray]:
        """(η (n, K), row weights (n,)) of X for the classification statistics (the
        categorical models: through the coded view; ``LatentClassModel`` overrides it)."""
        from emnet.mixture.inference.stats import log_resp

        view = self._view(X, sample_weight)
        return np.exp(log_resp(view)[0]), view.sample_weight

    def relative_entropy(self, X: Any, sample_weight: Any = None) -> float:
        """Entropy R² of the classification (Mplus, Latent GOLD): 1 − Σ_i Σ_k −η log η /
        (n log K); 1 = perfectly separated classes, and 1 for K = 1."""
        from emnet.mixture.inference.stats import entropy_of

        return entropy_of(*self._posterior(X, sample_weight))

    def classification_table(self, X: Any, sample_weight: Any = None) -> Any:
        """Per modal class: its size and the average posterior of each class in it."""
        from emnet.mixture.inference.stats import classification_of

        return classification_of(*self._posterior(X, sample_weight))

    def _proper_run(self, run: EMRun, fit_data: FitData) -> bool:
        """Whether a run from an extra start (the BLRT's) may be kept (default: yes;
        ``LatentClassModel`` sets runs ending in a collapsed class aside)."""
        return True

    def goodness_of_fit(
        self,
        X: Any,
        sample_weight: Any = None,
        *,
        n_bootstrap: int = 0,
        n_init: int = 5,
        random_state: Any = None,
        progress: bool = False,
    ) -> Any:
        """G², Pearson X², residual df and chi-square p-values (poLCA's definitions,
        ``emnet.mixture.inference.stats``); with ``n_bootstrap`` > 0 also a parametric-bootstrap
        p-value of G² (fits ``n_bootstrap`` data sets simulated from this model), which is
        the one to trust when the pattern table is sparse (many cells, few rows)."""
        from emnet.mixture.inference.stats import bootstrap_g2, goodness_of_fit

        view = self._view(X, sample_weight)
        fit = goodness_of_fit(view, self._n_parameters())
        if n_bootstrap:
            p = bootstrap_g2(view, fit.g2, n_bootstrap, n_init, random_state, progress, type(self))
            fit = fit._replace(p_bootstrap=p)
        return fit

    def standard_errors(self, X: Any, method: str = "hessian", sample_weight: Any = None) -> Any:
        """Standard errors of ``weights_`` and of every item-response probability.

        ``method="hessian"``: the observed information (Hessian of the log-likelihood in
        log-odds, by central differences of its exact gradient); ``"opg"``: the outer
        product of the per-row scores (poLCA's). Mapped to probabilities by the delta
        method. An estimate on the boundary (a probability or class share that EM drives
        to 0: found by running a copy of the model on to a tight tolerance) is held
        fixed, as poLCA and Mplus do: its standard error is 0 and ``.boundary`` /
        ``.weights_boundary`` mark it; no standard error is NaN (``emnet.mixture.inference.stats``).
        """
        from emnet.mixture.inference.stats import polished_masks, standard_errors

        if method not in ("hessian", "opg"):
            raise ValueError(f"method: expected 'hessian' or 'opg', got {method!r}")
        view = self._view(X, sample_weight)
        return standard_errors(view, method, polished_masks(self, X, sample_weight))

    @property
    def covariate_names_(self) -> list[str]:
        """The regression's terms: "intercept", then the design's columns."""
        check_is_fitted(self, "covariate_design_")
        return list(self.covariate_design_.names)

    def coefficients(self) -> Any:
        """The latent class regression's Wald table (a model fitted with covariates):
        ``coef``, ``se``, ``z``, ``p`` as (K − 1, 1 + q) arrays, ``names`` of the terms and
        ``.to_frame()`` (one row per class and term; class 1 is the reference)."""
        from emnet.mixture.covariates.regression import coefficients

        check_is_fitted(self, "coef_")
        return coefficients(self)

    def class_probabilities(self, covariates: Any) -> np.ndarray:
        """P(class k | z_i) (n, K) from the fitted regression, for new covariates."""
        from emnet.mixture.covariates.regression import class_probabilities

        check_is_fitted(self, "coef_")
        return class_probabilities(self, covariates)

    def reorder(self, order: Any = "weight") -> BaseEMMixture:
        """Relabel the classes: ``order`` is a permutation (new class i = old order[i]) or
        "weight" (largest class first). Every fitted array is permuted; returns self."""
        check_is_fitted(self, self._fit_attribute)
        K = len(self.weights_)
        if isinstance(order, str):
            if order != "weight":
                raise ValueError(f"order: expected a permutation or 'weight', got {order!r}")
            perm = np.argsort(-np.asarray(self.weights_), kind="stable")
        else:
            try:
                perm = np.asarray(order, dtype=np.int64)
            except (TypeError, ValueError):
                raise ValueError("order: expected a permutation of the class indices") from None
            if perm.shape != (K,) or sorted(perm.tolist()) != list(range(K)):
                raise ValueError(f"order: expected a permutation of 0..{K - 1}, got {order!r}")
        self._permute(perm)
        if hasattr(self, "coef_"):  # re-reference the regression to the new class 1
            M = np.zeros((K - 1, K))
            for i in range(1, K):
                M[i - 1, perm[i]] += 1.0
                M[i - 1, perm[0]] -= 1.0
            M = M[:, 1:]  # the old reference class has coefficients 0
            self.coef_ = M @ self.coef_
            T = np.kron(np.eye(self.coef_.shape[1]), M)
            self.coef_cov_ = T @ self.coef_cov_ @ T.T
            self.coef_se_ = (
                np.sqrt(np.maximum(np.diag(self.coef_cov_), 0))
                .reshape(self.coef_.shape[1], K - 1)
                .T
            )
        return self

    def summary(
        self,
        X: Any,
        feature_names: Any = None,
        sample_weight: Any = None,
        covariates: Any = None,
    ) -> Any:
        """The numbers a latent class / profile paper reports, in the order poLCA and
        Mplus print them (``emnet.mixture.inference.summary``: ``LCASummary`` for coded
        items, ``FamilySummary`` for a model over measurement blocks): ``str()`` prints
        them; ``.to_frame()`` / ``.tables()`` as DataFrames. A model fitted with covariates
        needs them here too; its summary adds the coefficient table."""
        return self._summary(X, feature_names, sample_weight, covariates)

    def _summary(self, X: Any, feature_names: Any, sample_weight: Any, covariates: Any) -> Any:
        """The coded items' summary (a model over measurement blocks overrides it)."""
        from emnet.mixture.inference.summary import make_summary

        return make_summary(
            self, X, feature_names=feature_names, sample_weight=sample_weight,
            covariates=covariates,
        )  # fmt: skip

    # -- saving (npz + JSON; never pickle) -------------------------------------------------
    def _params_json(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params, arrays = {}, {}
        for key, value in self.get_params(deep=False).items():
            if isinstance(value, np.ndarray | list | tuple):
                arrays[f"param_{key}"] = np.asarray(value, dtype=np.float64)
            elif key == "dtype":
                params[key] = np.dtype(value).name
            elif key == "random_state":
                params[key] = (
                    value if value is None or isinstance(value, int | np.integer) else None
                )
            else:
                params[key] = value
        return params, arrays

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays to save (a distribution adds its own)."""
        arrays = {"history_": np.asarray(self.history_, dtype=np.float64)}
        if hasattr(self, "init_lower_bounds_"):
            arrays["init_lower_bounds_"] = np.asarray(self.init_lower_bounds_, np.float64)
        if hasattr(self, "feature_names_in_"):
            arrays["feature_names_in_"] = np.asarray(self.feature_names_in_, dtype=str)
        return arrays

    def _state_meta(self) -> dict[str, Any]:
        """Fitted JSON metadata beyond the scalars (a distribution adds its own)."""
        return {}

    def _covariate_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON, arrays) of a latent class regression, for ``save``."""
        from emnet.mixture.persistence import design_to_json

        arrays = {
            "coef_": np.asarray(self.coef_, np.float64),
            "coef_se_": np.asarray(self.coef_se_, np.float64),
            "coef_cov_": np.asarray(self.coef_cov_, np.float64),
        }
        if hasattr(self, "classification_error_"):
            arrays["classification_error_"] = np.asarray(self.classification_error_, np.float64)
        meta = {"design": design_to_json(self.covariate_design_), "method": self.covariate_method_}
        return meta, arrays

    def save(self, path: Any) -> None:
        """Write the fitted model to ``path`` as ``.npz`` (arrays + JSON metadata), atomically."""
        check_is_fitted(self, self._fit_attribute)
        target = Path(os.fspath(path))
        if target.is_dir():
            raise ValueError(f"path: {target} is a directory; give a file name (e.g. model.npz)")
        if not target.parent.is_dir():
            raise ValueError(f"path: the folder {target.parent} does not exist")
        params, arrays = self._params_json()
        meta = {
            "format": FORMAT_VERSION,
            "class": type(self).__name__,
            "params": params,
            "state": self._state_meta(),
            **{k: _scalar(getattr(self, k)) for k in self._fitted_scalars},
        }
        arrays.update(self._state_arrays())
        if hasattr(self, "coef_"):
            meta["covariates"], cov_arrays = self._covariate_state()
            arrays.update(cov_arrays)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, meta=np.asarray(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: Any) -> BaseEMMixture:
        """Read a model written by :meth:`save` (no pickle: npz with ``allow_pickle=False``)."""
        from emnet.mixture.persistence import load_model

        return load_model(cls, path)


def _gain_after(history: np.ndarray, tol: float) -> float:
    """How much a run's objective rose after its first change below ``tol``."""
    if len(history) < 2:
        return 0.0
    small = np.flatnonzero(np.abs(np.diff(history)) < tol)
    return float(history[-1] - history[small[0] + 1]) if len(small) else 0.0


def _thread_budget() -> int:
    """``OMP_NUM_THREADS`` when it is a positive whole number, else no limit."""
    try:
        limit = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return sys.maxsize
    return limit if limit >= 1 else sys.maxsize


def _n_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
