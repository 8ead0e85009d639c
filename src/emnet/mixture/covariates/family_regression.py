"""Latent class (profile) regression for the whole family, through the measurement contract.

P(x_i | z_i) = Σ_k π_k(z_i) Π_b f_b(x_ib | θ_kb) with π_k(z_i) = softmax_k(β_k · d_i),
d_i = [1, z_i] (the design of :mod:`emnet.mixture.covariates.logit`: numeric columns as they
are, categorical ones one-hot against their first level) and β_1 = 0 (class 1 is the
reference). Nothing here looks at a block's type: the blocks enter only through the
contract (``log_likelihood``, ``sufficient_stats``, ``m_step``, ``log_prior``,
``to_unconstrained`` / ``from_unconstrained``, ``to_arrays``, ``degenerate``), so every
measurement (Gaussian EEI/VVI/EEE/VVV, Poisson, binary, categorical, and mixtures of them)
gets covariates the same way (SPEC §1b, §1c; issues 20 and 21).

**Units.** As in :mod:`emnet.mixture.covariates.logit`, the fit runs on the design centred and
scaled (:func:`~emnet.mixture.covariates.logit.standardizer`) and maps β and its covariance
back (:func:`~emnet.mixture.covariates.logit.unstandardize`): coefficients, standard errors and
z-values do not depend on the covariates' units.

**One-step** (``covariate_method="one-step"``). EM over (β, θ): the E-step's per-row log
class priors are log π_ik(β), to which every block adds its (n, K) log-likelihood; the
M-step updates each block from its additive statistics (the contract's ``m_step``) and β
by the weighted multinomial logistic regression on the responsibilities
(:func:`~emnet.mixture.covariates.logit.logit_m_step`, three Newton steps from the current β:
a generalised EM step, so the objective never decreases). The objective is the
log-likelihood plus the blocks' log priors minus the ridge on the standardised slopes.
The loop, with its SQUAREM acceleration in (β, the blocks' unconstrained coordinates), is
the base's (``BaseEMMixture._run_em``).

*Starts*: the model's own starts, each run by EM without covariates first (the model's
``_initialize`` and start search), then the regression from each distinct maximum found
(intercepts = log-odds of its class shares, slopes 0). *Proper maxima*: every regression
run is checked with the blocks' ``degenerate`` rule at its end; a run ending in a
collapsed class is set aside (``init_degenerate_``, ``n_degenerate_starts_``,
``proper_maxima_note_``), so the reported solution is the best proper one (if every run
is degenerate, the best of them with a warning, as without covariates).

**Standard errors** (:func:`information`): the observed information of the full
log-likelihood Σ_i w_i log p(x_i | z_i) in (β on the standardised design, every block's
unconstrained coordinates), so the coefficients' standard errors carry the measurement
model's uncertainty. As in :mod:`emnet.mixture.inference.family_stats`: with ℓ_ik = log π_ik(β) +
Σ_b log f_b(x_ib | k), per-class first derivatives of each segment's (n, K) term by
five-point central differences, per-row scores s_i = Σ_k η_ik ∂ℓ_ik, and
I = Σ_i w_i [s_i s_iᵀ − Σ_k η_ik (∂²ℓ_ik + ∂ℓ_ik ∂ℓ_ikᵀ)] with second differences within
a segment wherever two coordinates move a common class (every pair of β coordinates).
Block log priors and the ridge (1e-6) are left out. The inverse is the pseudo-inverse where
the information is singular; no boundary rule is applied here.

**Three-step** (``"bch"``, ``"ml"``, ``"naive"``): step 1 is the model fitted without
covariates (every start, the proper-maxima rule); the posteriors of its rows give the
classification-error matrix and the corrected step 3 of
:func:`~emnet.mixture.covariates.logit.three_step` (its standard errors hold the measurement
model fixed, as the categorical models' three-step ones do).
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_random_state

from emnet.mixture.core.em import BaseEMMixture, EMRun
from emnet.mixture.core.validation import check_weights
from emnet.mixture.covariates import logit
from emnet.mixture.inference.numdiff import covariance, difference_steps, five_point_jacobian

SAME_MAXIMUM_TOL = 1e-9
"""Plain runs whose objectives differ by less (per unit of weight), with the same sorted
class shares to 1e-6, reached the same maximum: one regression run serves them all."""
LOGIT_STEPS = 3
"""Newton steps of the β M-step per EM iteration (warm-started)."""


class RegParams(NamedTuple):
    """β (1 + q, K − 1) on the standardised design, and one parameter object per block."""

    beta: np.ndarray
    blocks: tuple[Any, ...]


class RegStep(NamedTuple):
    """One E-step with the M-step done: Σ w, Σ w log p(x | z) at the input parameters,
    the class sizes Σ w η (K,) there, and the parameters after the M-step."""

    n: float
    loglik: float
    nk: np.ndarray
    next: RegParams


class _Ops(NamedTuple):
    to_unconstrained: Any
    from_unconstrained: Any
    log_prior: Any


class _Runner:
    """The base's EM loop (``BaseEMMixture._run_em``, SQUAREM included) over
    :class:`RegParams`: the M-step is done inside the statistics (``RegStep.next``)."""

    _run_em = BaseEMMixture._run_em
    _objective = BaseEMMixture._objective
    _progress_bar = BaseEMMixture._progress_bar

    def __init__(self, model: Any) -> None:
        self.tol = model.tol
        self.accelerate = model.accelerate
        self.max_iter = model.max_iter
        self.verbose = model.verbose

    def _m_step(self, stats: RegStep, params: RegParams) -> RegParams:
        return stats.next


class Problem(NamedTuple):
    """The data of a covariate fit, as the blocks compute on them."""

    measurements: list[Any]
    chunks: list[Any]
    D: np.ndarray  # standardised design (n, 1 + q)
    w: np.ndarray  # (n,)


def _ops(problem: Problem) -> _Ops:
    ms = problem.measurements

    def to_u(p: RegParams) -> np.ndarray:
        parts = [p.beta.ravel()] + [m.to_unconstrained(b) for m, b in zip(ms, p.blocks,
                                                                          strict=True)]  # fmt: skip
        return np.concatenate(parts)

    def from_u(u: np.ndarray, like: RegParams) -> RegParams:
        nb = like.beta.size
        at, blocks = nb, []
        for m, b in zip(ms, like.blocks, strict=True):
            size = len(m.to_unconstrained(b))
            blocks.append(m.from_unconstrained(u[at : at + size], b))
            at += size
        return RegParams(u[:nb].reshape(like.beta.shape), tuple(blocks))

    def log_prior(p: RegParams) -> float:
        return float(
            sum(m.log_prior(b) for m, b in zip(ms, p.blocks, strict=True))
        ) - logit._penalty(p.beta)

    return _Ops(to_u, from_u, log_prior)


def joint_log_lik(problem: Problem, p: RegParams) -> np.ndarray:
    """ℓ (n, K): log π_k(z_i) + Σ_b log f_b(x_ib | k)."""
    ll = logit.class_log_probs(problem.D, p.beta)
    for m, b, chunk in zip(problem.measurements, p.blocks, problem.chunks, strict=True):
        ll = ll + m.log_likelihood(b, chunk)
    return ll


def _stats_fn(problem: Problem) -> Any:
    w, total = problem.w, float(problem.w.sum())

    def stats(p: RegParams) -> RegStep:
        ll = joint_log_lik(problem, p)
        log_p = logsumexp(ll, axis=1)
        resp = np.exp(ll - log_p[:, None])
        blocks = tuple(
            m.m_step(m.sufficient_stats(b, chunk, resp, w))
            for m, b, chunk in zip(problem.measurements, p.blocks, problem.chunks, strict=True)
        )
        beta = logit.logit_m_step(problem.D, resp * w[:, None], p.beta, max_steps=LOGIT_STEPS)
        return RegStep(total, float(w @ log_p), w @ resp, RegParams(beta, blocks))

    return stats


# -- fitting --------------------------------------------------------------------------------


def _rows(X: Any, keep: np.ndarray) -> Any:
    """The rows ``keep`` of X (a DataFrame, an array or a list of rows)."""
    if keep.all():
        return X
    if hasattr(X, "iloc"):
        return X.iloc[np.flatnonzero(keep)]
    if isinstance(X, list | tuple):
        return [row for row, k in zip(X, keep, strict=True) if k]
    return np.asarray(X)[keep]


def fit_latent_regression(
    model: Any, X: Any, covariates: Any, sample_weight: Any, method: str
) -> Any:
    """``LatentClassModel.fit(X, covariates=Z, covariate_method=method)``."""
    if method not in logit.METHODS:
        raise ValueError(f"covariate_method: expected one of {logit.METHODS}, got {method!r}")
    for name in model.COVARIATE_ATTRIBUTES:
        if hasattr(model, name):
            delattr(model, name)
    model._check_parameters()
    n = model._as_array(X, reset=True).shape[0]  # X checked first, as without covariates
    design, keep, w, A, Ds = logit.fit_design(covariates, n, sample_weight)
    Xk = _rows(X, keep)
    if method != "one-step":
        return _three_step(model, Xk, w, Ds, A, design, method)
    rng = check_random_state(model.random_state)
    fit_data = model._prepare_fit(Xk, w, reset=True)
    model._marks = {}
    try:
        plain = [
            model._run_em(fit_data.stats, model._initialize(fit_data.data, w, rng))
            for _ in range(model.n_init)
        ]
        found, n_screened = model._search_starts(fit_data, plain, rng)
        marks = model._marks
        plain = [marks.get(id(r.params), r) for r in plain + found]  # the real objectives
    finally:
        model._marks = None
    Am = model._as_array(Xk, reset=False)
    problem = Problem(
        [m for m, _ in model._blocks],
        [m.prepare(model._block_input(Am, cols, m)) for m, cols in model._blocks],
        Ds,
        w,
    )
    stats, ops, runner = _stats_fn(problem), _ops(problem), _Runner(model)
    done: list[tuple[EMRun, EMRun, bool]] = []  # (plain run, regression run, degenerate)
    of_start = []
    for r in plain:
        same = next((i for i, (q, _, _) in enumerate(done) if _same_maximum(r, q)), None)
        if same is None:
            shares = np.exp(r.params.log_weights - logsumexp(r.params.log_weights))
            beta = np.zeros((Ds.shape[1], len(shares) - 1))
            beta[0] = np.log(np.maximum(shares[1:], 1e-300)) - np.log(max(shares[0], 1e-300))
            run = runner._run_em(stats, RegParams(beta, r.params.blocks), ops)
            bad = bool(model.proper_maxima) and bool(
                model._degenerate_classes(run.params, stats(run.params).nk).any()
            )
            done.append((r, run, bad))
            same = len(done) - 1
        of_start.append(same)
    proper = [i for i, (_, _, bad) in enumerate(done) if not bad]
    pool = proper or list(range(len(done)))
    best_i = max(pool, key=lambda i: done[i][1].lower_bound)  # first of equals
    if not proper:
        warnings.warn(
            "every start ended in a degenerate (collapsed) class; the best of them is "
            "reported. Increase reg_covar, n_init, or use a shared covariance.",
            UserWarning,
            stacklevel=4,
        )
    best = done[best_i][1]
    runs, model._marks = [], {}
    for i in of_start:
        run, bad = done[i][1], done[i][2]
        if bad:  # the record keeps its real objective (LatentClassModel._record_runs)
            shown = run._replace(lower_bound=-np.inf)
            model._marks[id(shown.params)] = run
            run = shown if i != best_i else run
        runs.append(run)
    try:
        beta, blocks = best.params
        prior = np.exp(logit.class_log_probs(Ds, beta))
        shares = (w @ prior) / w.sum()
        model._set_fitted(_latent_params(model, shares, blocks))
        model._record_runs(best, runs)
    finally:
        model._marks = None
    model.n_screened_ = n_screened
    info = information(problem, best.params)
    cov = covariance(info)
    nb = beta.size
    coef, coef_cov = logit.unstandardize(A, beta, cov[:nb, :nb])
    _set_regression(model, coef, coef_cov, design, "one-step")
    return model


def _latent_params(model: Any, shares: np.ndarray, blocks: tuple[Any, ...]) -> Any:
    """The model's own parameter record (its type, without importing the model's module:
    the model imports this one) with these shares and blocks."""
    return model._make_params(np.log(np.maximum(shares, 1e-300)), tuple(blocks))


def _same_maximum(a: EMRun, b: EMRun) -> bool:
    if not (np.isfinite(a.lower_bound) and np.isfinite(b.lower_bound)):
        return False
    if abs(a.lower_bound - b.lower_bound) > SAME_MAXIMUM_TOL:
        return False
    wa, wb = np.sort(np.exp(a.params.log_weights)), np.sort(np.exp(b.params.log_weights))
    return bool(np.allclose(wa / wa.sum(), wb / wb.sum(), rtol=0, atol=1e-6))


def _set_regression(
    model: Any, coef: np.ndarray, cov: np.ndarray, design: Any, method: str
) -> None:
    from emnet.mixture.covariates.regression import _set_regression as set_regression

    set_regression(model, coef, cov, design, method)


def _three_step(
    model: Any, Xk: Any, w: np.ndarray, Ds: np.ndarray, A: np.ndarray, design: Any, method: str
) -> Any:
    """Step 1 (the model without covariates, on the rows with every covariate), then the
    corrected step 3 on the standardised design (coefficients mapped back by ``A``)."""
    model.fit(Xk, sample_weight=w)
    eta = model.predict_proba(Xk)
    beta, cov, extra = logit.three_step(eta, w, Ds, method)
    _set_regression(model, *logit.unstandardize(A, beta, cov), design, method)
    model.classification_error_ = extra["error_matrix"]
    return model


# -- prediction -----------------------------------------------------------------------------


def check_covariate_model(model: Any, covariates: Any) -> None:
    if not hasattr(model, "coef_"):
        raise ValueError(
            "covariates: this model was fitted without covariates; call it without them"
        )
    if covariates is None:
        raise ValueError(
            "covariates: this model was fitted with covariates "
            f"({', '.join(model.covariate_design_.columns)}); pass covariates= as well"
        )


def log_resp(model: Any, X: Any, covariates: Any) -> tuple[np.ndarray, np.ndarray]:
    """(log η (n, K), log p(x_i | z_i) (n,)) of a model fitted with covariates; a row with
    a missing covariate is refused (drop it first)."""
    check_covariate_model(model, covariates)
    Am = model._as_array(X, reset=False)
    D, _ = logit.apply_design(covariates, model.covariate_design_, Am.shape[0])
    ll = logit.class_log_probs(D, model.coef_.T)
    for (m, cols), b in zip(model._blocks, model._get_fitted().blocks, strict=True):
        ll = ll + m.log_likelihood(b, m.prepare(model._block_input(Am, cols, m)))
    log_p = logsumexp(ll, axis=1)
    return ll - log_p[:, None], log_p


# -- the observed information ---------------------------------------------------------------


def _segments(problem: Problem, p: RegParams) -> list[slice]:
    out, at = [slice(0, p.beta.size)], p.beta.size
    for m, b in zip(problem.measurements, p.blocks, strict=True):
        size = len(m.to_unconstrained(b))
        out.append(slice(at, at + size))
        at += size
    return out


def _term(problem: Problem, p: RegParams, s: int, u_seg: np.ndarray) -> np.ndarray:
    """Segment s's additive part of ℓ (n, K): log π(z) for β, a block's log-likelihood."""
    if s == 0:
        return logit.class_log_probs(problem.D, u_seg.reshape(p.beta.shape))
    m = problem.measurements[s - 1]
    return m.log_likelihood(m.from_unconstrained(u_seg, p.blocks[s - 1]), problem.chunks[s - 1])


def information(problem: Problem, p: RegParams) -> np.ndarray:
    """−∂² Σ_i w_i log p(x_i | z_i) in (β, the blocks' unconstrained coordinates): the
    family's derivatives by segment (:func:`~emnet.mixture.inference.family_stats.segment_information`)
    with log π(z) in place of the log shares."""
    from emnet.mixture.inference.family_stats import segment_derivatives, segment_information

    u = _ops(problem).to_unconstrained(p)
    term = lambda s, us: _term(problem, p, s, us)  # noqa: E731
    der = segment_derivatives(term, u, _segments(problem, p), problem.w)
    return segment_information(term, der, problem.w, np.arange(len(u)))


def _problem(model: Any, X: Any, covariates: Any, sample_weight: Any) -> Problem:
    """The rows of (X, z) with every covariate present, on the standardised design of
    those rows (as the fit standardises)."""
    Am = model._as_array(X, reset=False)
    D, keep, w = logit.fitted_design_rows(
        covariates, model.covariate_design_, len(Am), sample_weight
    )
    Am = Am[keep]
    chunks = [m.prepare(model._block_input(Am, cols, m)) for m, cols in model._blocks]
    return Problem([m for m, _ in model._blocks], chunks, D, w)


def block_standard_errors(model: Any, X: Any, covariates: Any, sample_weight: Any = None) -> Any:
    """(standard errors of every block's arrays — a list of dicts keyed as ``to_arrays``,
    the covariance of ``coef_.T.ravel()``) of a one-step model on (X, z), from the
    observed information of all parameters; the delta method from the blocks'
    unconstrained coordinates to their arrays (five-point differences)."""
    from emnet.mixture.inference.family_stats import shaped_like

    raw = _problem(model, X, covariates, None if sample_weight is None else sample_weight)
    A = logit.standardizer(raw.D, raw.w)
    problem = raw._replace(D=raw.D @ A)
    beta = np.linalg.solve(A, model.coef_.T)
    p = RegParams(beta, tuple(model._get_fitted().blocks))
    cov = covariance(information(problem, p))
    nb = beta.size
    _, coef_cov = logit.unstandardize(A, beta, cov[:nb, :nb])
    u = _ops(problem).to_unconstrained(p)
    segs = _segments(problem, p)
    h = difference_steps(u)
    out = []
    for s, (m, b) in enumerate(zip(problem.measurements, p.blocks, strict=True), start=1):
        sl = segs[s]

        def natural(v: np.ndarray, m: Any = m, b: Any = b) -> np.ndarray:
            arrays = m.to_arrays(m.from_unconstrained(v, b))
            return np.concatenate([np.ravel(a) for a in arrays.values()])

        J = five_point_jacobian(natural, u[sl], range(sl.stop - sl.start), h[sl])
        se = np.sqrt(np.maximum(np.einsum("qp,pr,qr->q", J, cov[sl, sl], J), 0.0))
        out.append(shaped_like(m, b, se))
    return out, coef_cov


# -- the summary ----------------------------------------------------------------------------


def covariate_family_summary(
    model: Any, X: Any, feature_names: Any, sample_weight: Any, covariates: Any
) -> Any:
    """The :class:`~emnet.mixture.inference.summary.FamilySummary` of a model fitted with covariates:
    class shares = the mean of P(class | z_i) over the rows (delta-method standard errors
    from the coefficients' covariance), each block's parameters with standard errors
    (one-step: from the information of all parameters; three-step: of the measurement
    model alone), LL / AIC / BIC with the β parameters counted, entropy R² and the
    classification table from P(class | x_i, z_i), and the coefficient table."""
    from emnet.mixture.inference.family_stats import standard_errors
    from emnet.mixture.inference.summary import block_names, family_summary, share_errors

    check_covariate_model(model, covariates)
    problem = _problem(model, X, covariates, sample_weight)
    names = block_names(
        model,
        feature_names,
        [[str(model._name(int(j))) for j in cols] for _, cols in model._blocks],
    )
    params = model._get_fitted().blocks
    ll = joint_log_lik(problem, RegParams(model.coef_.T, params))
    log_p = logsumexp(ll, axis=1)
    eta = np.exp(ll - log_p[:, None])
    w = problem.w
    n, loglik = float(w.sum()), float(w @ log_p)
    if model.covariate_method_ == "one-step":
        se_blocks, _ = block_standard_errors(model, X, covariates, sample_weight)
        n_boundary = 0
    else:
        rows = _keep_rows(model, X, covariates)
        sw = check_weights(sample_weight, len(rows))
        se = standard_errors(
            model._family_view(_rows(X, rows), None if sw is None else sw[rows]), "hessian"
        )
        se_blocks, n_boundary = se.blocks, se.n_boundary
    shares, shares_se = share_errors(
        np.exp(logit.class_log_probs(problem.D, model.coef_.T)), problem.D, w, model.coef_cov_
    )
    extra = {
        "coefficients": model.coefficients(),
        "n_screened": getattr(model, "n_screened_", 0),
        "converged": bool(getattr(model, "converged_", True)),
        "standard_errors": _family_errors(model, shares_se, se_blocks),
    }
    return family_summary(
        model, problem.measurements, params, names, shares, shares_se, se_blocks, eta, w,
        loglik, n, n_boundary, extra,
    )  # fmt: skip


def _family_errors(model: Any, shares_se: np.ndarray, se_blocks: list[dict[str, Any]]) -> Any:
    """The standard errors of a covariate model as ``standard_errors`` returns them: the
    shares (mean P(class | z), delta method), every block's arrays, and the coefficients'
    covariance (``coef_cov_``)."""
    from emnet.mixture.inference.family_stats import FamilyStandardErrors

    K = len(shares_se)
    return FamilyStandardErrors(
        weights=np.asarray(shares_se, dtype=np.float64),
        blocks=list(se_blocks),
        block_types=[m.name for m, _ in model._blocks],
        method="hessian",
        covariance=np.asarray(model.coef_cov_),
        free=np.arange(np.asarray(model.coef_cov_).shape[0]),
        n_free=int(np.asarray(model.coef_cov_).shape[0]),
        weights_boundary=np.zeros(K, dtype=bool),
        boundary=[{k: np.zeros(np.shape(v), dtype=bool) for k, v in b.items()} for b in se_blocks],
        n_boundary=0,
    )


def covariate_standard_errors(
    model: Any, X: Any, covariates: Any, sample_weight: Any = None
) -> Any:
    """``LatentClassModel.standard_errors(X, covariates=Z)`` of a covariate model: the
    summary's numbers (shares, every block's arrays; ``covariance`` is ``coef_cov_``)."""
    summary = covariate_family_summary(model, X, None, sample_weight, covariates)
    return summary.extra["standard_errors"]


def _keep_rows(model: Any, X: Any, covariates: Any) -> np.ndarray:
    n = model._as_array(X, reset=False).shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, keep = logit.apply_design(covariates, model.covariate_design_, n, drop_missing=True)
    return keep
