"""Fitting and predicting with covariates, for both mixtures (the math is in ``covariates.logit``).

Both estimators are latent class models on coded answers (a binary item has two answers),
so the covariate fit runs on codes for both: the estimator supplies its coding of X
(``_codes_for``), its log θ table of a parameter object (``_table_of``), the M-step of θ
from coded statistics (``_table_m_step``), its prior on θ (``_table_log_prior``) and the
way back to its own parameters (``_from_table``). The EM loop, restarts and SQUAREM are
the base's (``BaseEMMixture._run_em`` with the ``ops`` of this module).

Fitted attributes with covariates (``BaseEMMixture.COVARIATE_ATTRIBUTES``): ``coef_``
(K − 1, 1 + q), ``coef_se_``, ``coef_cov_``, ``covariate_design_`` (the design spec; the
property ``covariate_names_`` is its column names), ``covariate_method_``,
``classification_error_`` (three-step), and ``weights_`` = the average class probability
over the rows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from emnet.mixture.covariates.logit import (
    METHODS,
    CovParams,
    _penalty,
    apply_design,
    class_log_probs,
    coef_table,
    fit_design,
    fitted_design_rows,
    logit_m_step,
    standardizer,
    three_step,
    unstandardize,
)
from emnet.mixture.inference.numdiff import covariance, observed_information
from emnet.mixture.kernels.codes import (
    FusedStep,
    code_log_resp,
    from_logodds,
    rows_code_log_resp,
    rows_code_stats,
    to_logodds,
)


class _Ops(NamedTuple):
    to_unconstrained: Any
    from_unconstrained: Any
    log_prior: Any


def _ops(model: Any, offsets: np.ndarray) -> _Ops:
    def to_u(p: CovParams) -> np.ndarray:
        return np.concatenate([p.beta.ravel(), to_logodds(p.log_table, offsets).ravel()])

    def from_u(u: np.ndarray, like: CovParams) -> CovParams:
        nb = like.beta.size
        K = like.log_table.shape[1]
        return CovParams(u[:nb].reshape(like.beta.shape), from_logodds(u[nb:], offsets, K))

    def log_prior(p: CovParams) -> float:
        return model._table_log_prior(p.log_table) - _penalty(p.beta)

    return _Ops(to_u, from_u, log_prior)


def fit_with_covariates(
    model: Any, X: Any, covariates: Any, sample_weight: Any, method: str
) -> Any:
    if method not in METHODS:
        raise ValueError(f"covariate_method: expected one of {METHODS}, got {method!r}")
    model._check_parameters()
    if getattr(model, "weight_concentration", 1.0) != 1.0:
        raise ValueError(
            "weight_concentration: the Dirichlet prior is on the class weights, which the "
            "covariates replace; use weight_concentration=1 with covariates"
        )
    fit_data = model._prepare_fit(X, sample_weight, reset=True)
    codes, offsets = model._codes_for(X)
    design, keep, w, A, D = fit_design(covariates, codes.shape[0], sample_weight)
    codes = np.ascontiguousarray(codes[keep])
    if method != "one-step":
        return _three_step(model, X, codes, offsets, D, w, keep, design, method, A)
    has_missing = bool((codes < 0).any())
    total = float(w.sum())
    # identical (answers, covariates) rows enter every sum the same way: fit their distinct
    # combinations weighted by their total weight (survey covariates are mostly discrete)
    cc, Dc, wc = _distinct_rows(codes, D, w)

    def stats(p: CovParams) -> FusedStep:
        logw = class_log_probs(Dc, p.beta)
        cs, eta = rows_code_stats(cc, wc, offsets, logw, p.log_table, has_missing)
        new_t = model._table_m_step(cs, p.log_table)
        new_b = logit_m_step(Dc, eta * wc[:, None], p.beta, max_steps=3)
        return FusedStep(total, cs.loglik, CovParams(new_b, new_t))

    ops = _ops(model, offsets)
    rng = check_random_state(model.random_state)
    # each start: EM without covariates first (the fast fused steps over the patterns)
    # with the estimator's start search, then the regression from there (intercepts =
    # its class weights, slopes 0); starts that reached the same maximum without
    # covariates share one regression run
    fit_data = fit_data if keep.all() else model._prepare_fit(_rows(model, X, keep), w, reset=False)
    plain = [
        model._run_em(fit_data.stats, model._initialize(fit_data.data, w, rng))
        for _ in range(model.n_init)
    ]
    found, model.n_screened_ = model._search_starts(fit_data, plain, rng)
    done: list[tuple[Any, Any]] = []  # (a plain run, the rough regression run from it)
    of_start = []
    for p in plain + found:
        same = next((i for i, (q, _) in enumerate(done) if _same_maximum(model, p, q)), None)
        if same is None:
            weights, log_t = model._shares_of(p.params), model._table_of(p.params)
            beta = np.zeros((D.shape[1], len(weights) - 1))
            beta[0] = np.log(np.maximum(weights[1:], 1e-300)) - np.log(max(weights[0], 1e-300))
            start = CovParams(beta, log_t)
            tol = max(model.tol, SCREEN_TOL)
            done.append((p, model._run_em(stats, start, ops, tol=tol)))
            same = len(done) - 1
        of_start.append(same)
    finished = _finish(model, stats, ops, [r for _, r in done])
    runs = [finished[i] for i in of_start]
    best = max(runs, key=lambda r: r.lower_bound)
    beta, log_t = best.params
    pi = np.exp(class_log_probs(D, beta))
    model._set_fitted(model._from_table((w @ pi) / w.sum(), log_t))
    model._record_runs(best, runs)
    cov = _one_step_covariance(codes, offsets, D, w, beta, log_t)[0][: beta.size, : beta.size]
    _set_regression(model, *unstandardize(A, beta, cov), design, "one-step")
    return model


def _distinct_rows(
    codes: np.ndarray, D: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, design, weights) of the distinct (answers, covariates) rows, each weighted by
    the total weight of its copies, in order of first appearance."""
    joint = np.ascontiguousarray(np.column_stack([codes.astype(np.float64), D]))
    _, first, inverse = np.unique(joint, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    weights = np.bincount(rank[np.ravel(inverse)], weights=w, minlength=len(order))
    rows = first[order]
    return np.ascontiguousarray(codes[rows]), np.ascontiguousarray(D[rows]), weights


SCREEN_TOL = 1e-6
"""The loose tolerance regression runs are screened at (the start search's, ``core.em``)."""
AT_BEST_TOL = 1e-6


def _finish(model: Any, stats: Any, ops: Any, rough: list[Any]) -> list[Any]:
    """The regression runs, screened at the loose tolerance, run on to ``model.tol``: the
    best first; then each one whose screened objective is within reach of the best (the
    largest gain a finished run made after the screen, twice over, plus 1e-6)."""
    order = np.argsort([-r.lower_bound for r in rough], kind="stable")
    out: list[Any] = list(rough)
    best = -np.inf
    reach = 0.0
    for i in order:
        r = rough[i]
        if r.lower_bound < best - 2.0 * reach - AT_BEST_TOL:
            continue
        if model.tol < SCREEN_TOL:
            more = model._run_em(stats, r.params, ops)
            out[i] = more._replace(
                history=np.concatenate([r.history, more.history]),
                n_iter=r.n_iter + more.n_iter,
                n_em_steps=r.n_em_steps + more.n_em_steps,
            )
        reach = max(reach, out[i].lower_bound - r.lower_bound)
        best = max(best, out[i].lower_bound)
    return out


SAME_MAXIMUM_TOL = 1e-9
"""Plain runs whose objectives (per unit of weight) differ by less, with the same sorted
class weights to 1e-6, reached the same maximum."""


def _same_maximum(model: Any, a: Any, b: Any) -> bool:
    if abs(a.lower_bound - b.lower_bound) > SAME_MAXIMUM_TOL:
        return False
    wa, wb = np.sort(model._shares_of(a.params)), np.sort(model._shares_of(b.params))
    return bool(np.allclose(wa, wb, rtol=0, atol=1e-6))


def _rows(model: Any, X: Any, keep: np.ndarray) -> Any:
    """The rows ``keep`` of X, in the form the estimator takes."""
    if hasattr(X, "iloc"):
        return X.iloc[np.flatnonzero(keep)]
    if hasattr(X, "tocsr"):
        return X.tocsr()[np.flatnonzero(keep)]
    return np.asarray(X, dtype=object if model._takes_text else None)[keep]


def _set_regression(
    model: Any, beta: np.ndarray, cov: np.ndarray, design: Any, method: str
) -> None:
    """The fitted regression: ``coef_`` (K − 1, 1 + q) = βᵀ, its covariance and SEs."""
    model.coef_ = beta.T.copy()
    model.coef_cov_ = cov
    model.coef_se_ = coef_table(beta, cov, design.names, method).se
    model.covariate_design_ = design
    model.covariate_method_ = method


def _three_step(
    model: Any, X: Any, codes: np.ndarray, offsets: np.ndarray, D: np.ndarray, w: np.ndarray,
    keep: np.ndarray, design: Any, method: str, A: np.ndarray,
) -> Any:  # fmt: skip
    """Step 1 (the measurement model without covariates), then steps 2 and 3 on the
    standardised design ``D`` (coefficients mapped back by ``A``)."""
    model.fit(_rows(model, X, keep), sample_weight=w)
    log_t = model._table_of(model._get_fitted())
    lr, _ = code_log_resp(codes, offsets, np.maximum(model.weights_, 1e-300), log_t)
    beta, cov, info = three_step(np.exp(lr), w, D, method)
    _set_regression(model, *unstandardize(A, beta, cov), design, method)
    model.classification_error_ = info["error_matrix"]
    return model


def _one_step_covariance(
    codes: np.ndarray, offsets: np.ndarray, D: np.ndarray, w: np.ndarray,
    beta: np.ndarray, log_t: np.ndarray,
) -> tuple[np.ndarray, Any, Any]:  # fmt: skip
    """(covariance of [β.ravel(), free θ log-odds], their θ layout, the coded view) from the
    observed information of all parameters, by central differences of the exact gradient.
    The θ parametrisation is ``inference.stats``' (log-odds against each item's most likely answer,
    boundary entries held: ``inference.stats.boundary_masks`` with the rows' posteriors given z)."""
    from emnet.mixture.inference.stats import CodedView, _pack, _unpack, theta_layout

    K = log_t.shape[1]
    view = CodedView(codes, w, np.full(K, 1.0 / K), log_t, offsets)
    eta = np.exp(rows_code_log_resp(codes, offsets, class_log_probs(D, beta), log_t)[0])
    lay = theta_layout(view, eta)
    item_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    nb = beta.size
    has_missing = bool((codes < 0).any())

    def grad(v: np.ndarray) -> np.ndarray:
        b = v[:nb].reshape(beta.shape)
        lt = _unpack(view, lay, v[nb:])[1]
        logw = class_log_probs(D, b)
        cs, eta = rows_code_stats(codes, w, offsets, logw, lt, has_missing)
        g_b = D.T @ ((eta - np.exp(logw)) * w[:, None])[:, 1:]
        n_obs = cs.resp_sum[None, :] if cs.obs is None else cs.obs[item_of]  # (M or 1, K)
        g_t = cs.counts - np.exp(lt) * n_obs
        return np.concatenate([g_b.ravel(), g_t[lay.prob_free]])

    v0 = np.concatenate([beta.ravel(), _pack(view, lay)])
    return covariance(observed_information(grad, v0)), lay, view


def log_resp_with_covariates(model: Any, X: Any, covariates: Any) -> tuple[np.ndarray, np.ndarray]:
    """(log η, log p(x | z)) of a model fitted with covariates, on new (X, z)."""
    if not hasattr(model, "coef_"):
        raise ValueError(
            "covariates: this model was fitted without covariates; call predict(X) without them"
        )
    if covariates is None:
        raise ValueError(
            "covariates: this model was fitted with covariates "
            f"({', '.join(model.covariate_design_.columns)}); pass covariates= as well"
        )
    codes, offsets = model._codes_for(X)
    D, _ = apply_design(covariates, model.covariate_design_, codes.shape[0])
    logw = class_log_probs(D, model.coef_.T)
    return rows_code_log_resp(codes, offsets, logw, model._table_of(model._get_fitted()))


def class_probabilities(model: Any, covariates: Any) -> np.ndarray:
    """P(class k | z_i) (n, K) of a model fitted with covariates."""
    if not hasattr(model, "coef_"):
        raise ValueError("covariates: this model was fitted without covariates")
    n = len(covariates)
    D, _ = apply_design(covariates, model.covariate_design_, n)
    return np.exp(class_log_probs(D, model.coef_.T))


def coefficients(model: Any) -> Any:
    """The Wald table of ``coef_`` (coef, se, z, p per class and term)."""
    from scipy import stats as sps

    from emnet.mixture.covariates.logit import CoefTable

    with np.errstate(divide="ignore", invalid="ignore"):
        z = model.coef_ / model.coef_se_
    return CoefTable(model.coef_, model.coef_se_, z, 2 * sps.norm.sf(np.abs(z)),
                     list(model.covariate_design_.names), model.covariate_method_)  # fmt: skip


def theta_standard_errors(
    model: Any, codes: np.ndarray, offsets: np.ndarray, D: np.ndarray, w: np.ndarray
) -> list[np.ndarray]:
    """Standard errors of the item-response probabilities of a covariate model, per item
    (K, R_j); 0 on the boundary. One-step: from the information of all parameters
    (β and θ together); three-step: from the measurement model alone (step 1)."""
    from emnet.mixture.inference.stats import CodedView, item_errors, standard_errors

    log_t = model._table_of(model._get_fitted())
    if model.covariate_method_ != "one-step":
        view = CodedView(codes, w, np.asarray(model.weights_, dtype=np.float64), log_t, offsets)
        return standard_errors(view).probs
    A = standardizer(D, w)  # unit-free columns, as in the fit
    beta = np.linalg.solve(A, model.coef_.T)
    cov, lay, view = _one_step_covariance(codes, offsets, D @ A, w, beta, log_t)
    nb = model.coef_.size
    return item_errors(view, lay, cov[nb:, nb:])


def covariate_rows(model: Any, X: Any, covariates: Any, sample_weight: Any) -> tuple[Any, ...]:
    """(codes, offsets, design, row weights) of the rows with every covariate present."""
    codes, offsets = model._codes_for(X)
    D, keep, w = fitted_design_rows(covariates, model.covariate_design_, len(codes), sample_weight)
    return np.ascontiguousarray(codes[keep]), offsets, D, w
