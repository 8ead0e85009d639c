"""``model.summary(X)``: the numbers a latent class paper reports, in the order poLCA and
Mplus print them — item-response probabilities per class with standard errors, class
shares (estimated and by modal assignment), then the fit block (observations, parameters,
residual df, log-likelihood, AIC, BIC, SABIC, CAIC, G², X², entropy R²), plus the
classification table and the restarts record.

``str(summary)`` is the plain-text printout; ``summary.to_frame()`` the long table of
probabilities (item, answer, class, estimate, se); ``summary.tables()`` every table as a
DataFrame (class sizes, probabilities, fit statistics, classification).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from emnet.mixture.core.validation import item_names


@dataclass
class ModelSummary:
    """What every latent class summary holds (built by keyword): the class shares with
    standard errors, the fit block, entropy, the classification table and the starts."""

    model_name: str
    n_components: int
    n_observations: float
    weights: np.ndarray
    weights_se: np.ndarray
    modal_shares: np.ndarray  # by modal assignment (0 for a class no row is assigned to)
    loglik: float
    n_parameters: int
    aic: float
    bic: float
    sabic: float
    caic: float
    entropy: float
    classification: np.ndarray  # (K, K) mean posterior per modal class
    n_init: int | None
    n_at_best: int | None
    se_method: str

    def _fit_lines(self, df_line: str | None = None) -> list[str]:
        """The fit block as poLCA prints it: n, parameters, (df), LL, the criteria."""
        K = self.n_components
        return [
            "=" * 57,
            f"Fit for {K} latent {_classes(K)}:",
            "=" * 57,
            f"number of observations: {_num(self.n_observations)}",
            f"number of estimated parameters: {self.n_parameters}",
            *([] if df_line is None else [df_line]),
            f"maximum log-likelihood: {self.loglik:.4f}",
            "",
            f"AIC({K}): {self.aic:.4f}",
            f"BIC({K}): {self.bic:.4f}",
            f"SABIC({K}): {self.sabic:.4f}",
            f"CAIC({K}): {self.caic:.4f}",
        ]


@dataclass
class LCASummary(ModelSummary):
    """The summary of a BernoulliMixture or CategoricalMixture: item-response
    probabilities with standard errors and G², X², df (poLCA's printout)."""

    feature_names: list[str]
    answers: list[list[Any]]
    probs: list[np.ndarray]  # per item (K, R_j)
    probs_se: list[np.ndarray]
    g2: float
    x2: float
    df: int | None
    p_g2: float
    p_x2: float
    extra: dict[str, Any] = field(default_factory=dict)

    # -- tables ----------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Item-response probabilities: one row per (item, answer, class)."""
        rows = []
        for name, answers, p, se in zip(
            self.feature_names, self.answers, self.probs, self.probs_se, strict=True
        ):
            for k in range(self.n_components):
                for r, a in enumerate(answers):
                    rows.append(
                        {
                            "item": name,
                            "answer": a,
                            "class": k + 1,
                            "estimate": float(p[k, r]),
                            "se": float(se[k, r]),
                        }
                    )
        return pd.DataFrame(rows)

    def fit_table(self) -> pd.DataFrame:
        names = ["observations", "parameters", "residual df", "log-likelihood", "AIC",
                 "BIC", "SABIC", "CAIC", "G2", "p(G2)", "X2", "p(X2)", "entropy R2"]  # fmt: skip
        values = [self.n_observations, self.n_parameters, self.df, self.loglik, self.aic,
                  self.bic, self.sabic, self.caic, self.g2, self.p_g2, self.x2, self.p_x2,
                  self.entropy]  # fmt: skip
        return pd.DataFrame({"statistic": names, "value": values})

    def coefficient_frame(self) -> pd.DataFrame | None:
        """The latent class regression's Wald table (None without covariates)."""
        coef = self.extra.get("coefficients")
        return None if coef is None else coef.to_frame()

    def tables(self) -> dict[str, pd.DataFrame]:
        """The summary as DataFrames: classes, probabilities, fit, classification (and
        coefficients for a latent class regression)."""
        return summary_tables(self, "probabilities")

    # -- printout --------------------------------------------------------------------
    def __str__(self) -> str:
        K = self.n_components
        out = [
            f"{self.model_name}: {K} latent {_classes(K)}",
            "Conditional item response (column) probabilities, by item, for each class "
            f"(row); standard errors ({self.se_method}) in parentheses",
        ]
        for name, answers, p, se in zip(
            self.feature_names, self.answers, self.probs, self.probs_se, strict=True
        ):
            out.append("")
            out.append(f"${name}")
            cells = [f"Pr({a})" for a in answers]
            width = max(17, *(len(c) + 2 for c in cells))
            out.append(" " * 10 + "".join(c.rjust(width) for c in cells))
            for k in range(K):
                vals = "".join(
                    f"{p[k, r]:.4f} ({_se(se[k, r])})".rjust(width) for r in range(len(answers))
                )
                out.append(f"class {k + 1}:".ljust(10) + vals)
        n_boundary = int(self.extra.get("n_boundary", 0))
        if n_boundary:
            out += [
                "",
                f"{n_boundary} estimate{'s are' if n_boundary > 1 else ' is'} on the boundary "
                "(a probability or share of 0 or 1): held fixed, standard error 0.",
            ]
        out += [
            "",
            *_share_lines(self),
            *self._fit_lines(
                f"residual degrees of freedom: {'n/a' if self.df is None else self.df}"
            ),
            f"G^2({K}): {_g(self.g2)} (Likelihood ratio/deviance statistic), p = {_p(self.p_g2)}",
            f"X^2({K}): {_g(self.x2)} (Chi-square goodness of fit), p = {_p(self.p_x2)}",
            f"entropy R^2: {self.entropy:.4f}",
        ]
        if self.n_init:
            screened = int(self.extra.get("n_screened", 0))
            search = (
                f" (including the search's, which screened {screened} more)" if screened else ""
            )
            if self.extra.get("converged", True):
                out.append(
                    f"starts run to convergence: {self.n_init}{search}; {self.n_at_best} "
                    "reached the best log-likelihood"
                )
            else:
                out.append(
                    f"starts: {self.n_init}{search}; the best did NOT converge within "
                    "max_iter: these numbers are not a maximum (raise max_iter)"
                )
        out += _coefficient_lines(self.extra.get("coefficients"), "f")
        out.append("Average posterior probabilities by modal class (rows):")
        for k in range(K):
            row = self.classification[k]
            if np.all(np.isfinite(row)):
                out.append(f" class {k + 1}: " + " ".join(f"{v:.3f}" for v in row))
            else:  # no row has this modal class: there is no average to show
                out.append(f" class {k + 1}: — (no row has this modal class)")
        return "\n".join(out)


def _classes(K: int) -> str:
    return "class" if K == 1 else "classes"


def _se(v: float) -> str:
    return "   —  " if not np.isfinite(v) else f"{v:.4f}"


def _g(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.6g}"


def _p(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.4g}"


def _num(v: float) -> str:
    return f"{int(v)}" if float(v).is_integer() else f"{v:.4f}"


def make_summary(
    model: Any, X: Any, *, feature_names: Any = None, sample_weight: Any = None,
    covariates: Any = None,
) -> LCASummary:  # fmt: skip
    """Everything :class:`LCASummary` holds, computed from the fitted ``model`` and ``X``
    (and, for a model fitted with covariates, its ``covariates``)."""
    if hasattr(model, "coef_"):
        if covariates is None:
            raise ValueError(
                "covariates: this model was fitted with covariates; pass summary(X, covariates=Z)"
            )
        return _covariate_summary(model, X, feature_names, sample_weight, covariates)
    if covariates is not None:
        raise ValueError("covariates: this model was fitted without covariates")
    from emnet.mixture.inference.stats import (
        classification_table,
        coded_view,
        goodness_of_fit,
        information_criteria,
        polished_masks,
        relative_entropy,
        standard_errors,
    )

    view = coded_view(model, X, sample_weight)
    K = len(model.weights_)
    answers = model._answers()
    J = len(answers)
    names = item_names(model, feature_names, J, X)
    se = standard_errors(view, "hessian", polished_masks(model, X, sample_weight))
    fit = goodness_of_fit(view, model._n_parameters())
    table = classification_table(view)
    n = float(view.sample_weight.sum())
    loglik = float(view.sample_weight @ _log_prob(view))
    p = model._n_parameters()
    probs = [np.exp(view.log_table[view.offsets[j] : view.offsets[j + 1]]).T for j in range(J)]
    return LCASummary(
        model_name=type(model).__name__,
        n_components=K,
        n_observations=n,
        feature_names=names,
        answers=answers,
        probs=probs,
        probs_se=se.probs,
        weights=np.asarray(model.weights_, dtype=np.float64),
        weights_se=se.weights,
        modal_shares=table.sizes / table.sizes.sum(),
        loglik=loglik,
        n_parameters=p,
        **information_criteria(loglik, p, n),
        entropy=relative_entropy(view),
        g2=fit.g2,
        x2=fit.x2,
        df=fit.df,
        p_g2=fit.p_g2,
        p_x2=fit.p_x2,
        classification=table.mean_posterior,
        n_init=len(model.init_lower_bounds_) if hasattr(model, "init_lower_bounds_") else None,
        n_at_best=model.n_starts_at_best() if hasattr(model, "init_lower_bounds_") else None,
        se_method="observed information",
        extra={
            "n_screened": getattr(model, "n_screened_", 0),
            "converged": bool(getattr(model, "converged_", True)),
            "n_boundary": se.n_boundary,
        },
    )


def _covariate_summary(
    model: Any, X: Any, feature_names: Any, sample_weight: Any, covariates: Any
) -> LCASummary:
    """The summary of a latent class regression, with the numbers poLCA reports for it:
    G², X² and df against the response-pattern table with the class shares at their mean
    over the rows (poLCA's ``P``, the mean of the class priors), the shares with delta-method
    standard errors from the coefficients' covariance, and the coefficient table."""
    from emnet.mixture.covariates.logit import class_log_probs
    from emnet.mixture.covariates.regression import covariate_rows, theta_standard_errors
    from emnet.mixture.inference.stats import (
        CodedView,
        classification_of,
        entropy_of,
        goodness_of_fit,
        information_criteria,
    )
    from emnet.mixture.kernels.codes import rows_code_log_resp

    codes, offsets, D, w = covariate_rows(model, X, covariates, sample_weight)
    log_t = model._table_of(model._get_fitted())
    log_prior = class_log_probs(D, model.coef_.T)
    lr, lp = rows_code_log_resp(codes, offsets, log_prior, log_t)
    eta = np.exp(lr)
    answers = model._answers()
    J = len(answers)
    n = float(w.sum())
    loglik = float(w @ lp)
    p = model._n_free()
    table = classification_of(eta, w)
    shares, shares_se = share_errors(np.exp(log_prior), D, w, model.coef_cov_)
    fit = goodness_of_fit(CodedView(codes, w, shares, log_t, offsets), p)
    return LCASummary(
        model_name=type(model).__name__, n_components=eta.shape[1], n_observations=n,
        feature_names=item_names(model, feature_names, J, X), answers=answers,
        probs=[np.exp(log_t[offsets[j] : offsets[j + 1]]).T for j in range(J)],
        probs_se=theta_standard_errors(model, codes, offsets, D, w),
        weights=shares, weights_se=shares_se,
        modal_shares=table.sizes / table.sizes.sum(), loglik=loglik, n_parameters=p,
        **information_criteria(loglik, p, n),
        entropy=entropy_of(eta, w), g2=fit.g2, x2=fit.x2, df=fit.df, p_g2=fit.p_g2,
        p_x2=fit.p_x2, classification=table.mean_posterior,
        n_init=len(model.init_lower_bounds_) if hasattr(model, "init_lower_bounds_") else None,
        n_at_best=model.n_starts_at_best() if hasattr(model, "init_lower_bounds_") else None,
        se_method="observed information",
        extra={"coefficients": model.coefficients(), "n_screened": getattr(model, "n_screened_", 0),
               "converged": bool(getattr(model, "converged_", True))},
    )  # fmt: skip


def share_errors(
    prior: np.ndarray, D: np.ndarray, w: np.ndarray, coef_cov: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(shares, their standard errors) of a latent class regression: share_k = Σ_i w_i
    π_ik / Σ_i w_i with π_i = softmax(β d_i) (``prior`` (n, K), design ``D`` (n, 1 + q));
    the delta method with ``coef_cov`` (the covariance of ``coef_.T.ravel()``: term-major,
    classes 2..K), ∂π_ik/∂β_lj = π_ik (δ_kl − π_il) d_ij."""
    n_w = float(w.sum())
    shares = (w @ prior) / n_w
    K = prior.shape[1]
    if K == 1:
        return shares, np.zeros(1)
    q1 = D.shape[1]
    G = np.empty((K, q1, K - 1))
    for l in range(1, K):
        d_pi = prior * ((np.arange(K) == l)[None, :] - prior[:, [l]])  # (n, K)
        G[:, :, l - 1] = (d_pi * w[:, None]).T @ D / n_w
    G = G.reshape(K, q1 * (K - 1))
    var = np.einsum("kp,pq,kq->k", G, coef_cov, G)
    return shares, np.sqrt(np.maximum(var, 0.0))


def _log_prob(view: Any) -> np.ndarray:
    from emnet.mixture.inference.stats import log_resp

    return log_resp(view)[1]


# -- the latent class family (LatentClassModel) ------------------------------------------


@dataclass
class FamilySummary(ModelSummary):
    """The summary of a :class:`~emnet.mixture.LatentClassModel` (any measurement blocks):
    what a latent class / latent profile paper reports, in that order — class shares with
    standard errors, each block's class-specific parameters with standard errors (the
    rows come from the block: ``Measurement.summary_rows``), the fit block (LL,
    parameters, AIC, BIC, SABIC, CAIC; G² and X² are n/a: they need a table of response
    patterns), entropy R², the classification table, the starts that reached the best,
    and the proper-maxima note when starts ended in a collapsed class and were set aside.
    """

    blocks: list[str]  # each block's description
    rows: list[list[dict[str, Any]]]  # each block's summary rows
    proper_maxima_note: str | None = None
    n_boundary: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    g2 = x2 = p_g2 = p_x2 = float("nan")  # not defined for continuous or count items
    df = None

    def to_frame(self) -> pd.DataFrame:
        """The class-specific parameters: one row per (block, parameter, item, class)."""
        out = [
            {"block": b + 1, **row} for b, rows in enumerate(self.rows) for row in rows
        ]  # fmt: skip
        cols = ["block", "parameter", "item", "class", "estimate", "se"]
        return pd.DataFrame(out, columns=cols)

    def fit_table(self) -> pd.DataFrame:
        names = ["observations", "parameters", "log-likelihood", "AIC", "BIC", "SABIC",
                 "CAIC", "entropy R2"]  # fmt: skip
        values = [self.n_observations, self.n_parameters, self.loglik, self.aic, self.bic,
                  self.sabic, self.caic, self.entropy]  # fmt: skip
        return pd.DataFrame({"statistic": names, "value": values})

    def tables(self) -> dict[str, pd.DataFrame]:
        """The summary as DataFrames: classes, parameters, fit, classification (and
        coefficients for a latent class regression)."""
        return summary_tables(self, "parameters")

    def coefficient_frame(self) -> pd.DataFrame | None:
        """The latent class regression's Wald table (None without covariates)."""
        coef = self.extra.get("coefficients")
        return None if coef is None else coef.to_frame()

    def __str__(self) -> str:
        K = self.n_components
        out = [
            f"{self.model_name}: {K} latent {_classes(K)}; standard errors ({self.se_method}) in "
            "parentheses",
            "",
            *_share_lines(self),
        ]
        if self.extra.get("measurement_note"):
            out += ["", self.extra["measurement_note"]]
        for b, (title, rows) in enumerate(zip(self.blocks, self.rows, strict=True)):
            out += ["", f"Block {b + 1}: {title}"]
            out += _parameter_lines(rows, K)
        if self.n_boundary:
            s = "s are" if self.n_boundary > 1 else " is"
            out += ["", f"{self.n_boundary} estimate{s} on the boundary (a class with a share "
                        "of 0, and its own parameters): held fixed, standard error 0."]  # fmt: skip
        out += [
            *self._fit_lines(),
            f"G^2({K}), X^2({K}), residual df: n/a (defined for categorical items only)",
            f"entropy R^2: {self.entropy:.4f}",
            "Average posterior probabilities by modal class (rows):",
        ]
        for k in range(K):
            row = self.classification[k]
            if np.all(np.isfinite(row)):
                out.append(f" class {k + 1}: " + " ".join(f"{v:.3f}" for v in row))
            else:
                out.append(f" class {k + 1}: — (no row has this modal class)")
        if self.n_init and self.extra.get("converged", True):
            out.append(
                f"starts run to convergence: {self.n_init}; {self.n_at_best} reached the best "
                "log-likelihood"
            )
        elif self.n_init:
            out.append(
                f"starts: {self.n_init}; the best did NOT converge within max_iter: these "
                "numbers are not a maximum (raise max_iter)"
            )
        if self.proper_maxima_note:
            out.append(f"note: {self.proper_maxima_note}")
        out += _coefficient_lines(self.extra.get("coefficients"))
        return "\n".join(out)


def _share_lines(summary: Any) -> list[str]:
    """Both printouts' class shares (with standard errors) and modal shares, as poLCA."""
    shares = zip(summary.weights, summary.weights_se, strict=True)
    return [
        "Estimated class population shares",
        " " + " ".join(f"{w:.4f} ({_se(s)})" for w, s in shares),
        "Predicted class memberships (by modal posterior prob.)",
        " " + " ".join(f"{w:.4f}" for w in summary.modal_shares),
    ]


def summary_tables(summary: Any, name: str) -> dict[str, pd.DataFrame]:
    """Both summaries' tables: classes (shares with SEs, modal shares), the parameters
    under ``name`` (``summary.to_frame()``), fit, classification, and the coefficients of
    a latent class regression."""
    K = summary.n_components
    classes = pd.DataFrame(
        {
            "class": np.arange(1, K + 1),
            "share": summary.weights,
            "share_se": summary.weights_se,
            "modal_share": summary.modal_shares,
        }
    )
    classification = pd.DataFrame(
        summary.classification,
        index=pd.Index(np.arange(1, K + 1), name="modal class"),
        columns=[f"mean P(class {k + 1})" for k in range(K)],
    ).reset_index()
    out = {
        "classes": classes,
        name: summary.to_frame(),
        "fit": summary.fit_table(),
        "classification": classification,
    }
    coef = summary.extra.get("coefficients")
    if coef is not None:
        out["coefficients"] = coef.to_frame()
    return out


def _coefficient_lines(coef: Any, style: str = "g") -> list[str]:
    """The printout of a latent class regression's Wald table (none without covariates);
    ``style`` "f" (4 decimals, poLCA's) or "g" (4 significant digits)."""
    if coef is None:
        return []
    out = ["", f"Latent class regression ({coef.method}; class 1 is the reference):"]
    out.append(f"{'':>8}{'term':>20}{'coef':>11}{'se':>10}{'z':>9}{'p':>11}")
    for k in range(coef.coef.shape[0]):
        for j, term in enumerate(coef.names):
            out.append(
                f"{f'class {k + 2}':>8}{term[:19]:>20}{coef.coef[k, j]:>11.4{style}}"
                f"{coef.se[k, j]:>10.4{style}}{coef.z[k, j]:>9.2f}{coef.p[k, j]:>11.3g}"
            )
    return out


def _estimate_cell(estimate: float, se: float) -> str:
    """ "estimate (se)" to 4 decimals, or to 4 significant digits for an estimate too small
    for them (a variance of 6e-6 printed as 0.0000 (0.0000) says nothing); an estimate
    below 1e-8 is one held at the boundary and prints as 0."""
    hidden_se = np.isfinite(se) and 0.0 < se < 5e-5  # it would print as 0.0000
    if abs(estimate) > 1e-8 and (abs(estimate) < 5e-4 or hidden_se):
        return f"{estimate:.3e} ({'   —  ' if not np.isfinite(se) else f'{se:.2e}'})"
    return f"{estimate:.4f} ({_se(se)})"


def _parameter_lines(rows: list[dict[str, Any]], K: int) -> list[str]:
    """Rows grouped by (parameter, item): one line each, the classes as columns."""
    groups: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((str(row["parameter"]), str(row["item"])), {})[row["class"]] = row
    label = max([len(f"{p} {i}") for p, i in groups] + [10])
    cells = {
        key: [
            _estimate_cell(by[k]["estimate"], by[k]["se"]) if k in by else "—"
            for k in range(1, K + 1)
        ]
        for key, by in groups.items()
    }
    width = max([len(c) + 2 for cs in cells.values() for c in cs] + [12])
    lines = [" " * label + "".join(f"class {k}".rjust(width) for k in range(1, K + 1))]
    for (param, item), cs in cells.items():
        lines.append(f"{param} {item}".ljust(label) + "".join(c.rjust(width) for c in cs))
    return lines


def make_family_summary(
    model: Any, X: Any, *, feature_names: Any = None, sample_weight: Any = None
) -> FamilySummary:
    """Everything :class:`FamilySummary` holds, from a fitted ``LatentClassModel`` and X,
    through the measurement contract (:mod:`emnet.mixture.inference.family_stats`)."""
    from emnet.mixture.inference.family_stats import log_likelihood, standard_errors

    view = model._family_view(X, sample_weight)
    names = block_names(model, feature_names, view.names)
    se = standard_errors(view, "hessian")
    eta, w = model._posterior(X, sample_weight)
    loglik, n = log_likelihood(view)
    return family_summary(
        model, view.measurements, view.params, names, np.asarray(model.weights_, np.float64),
        se.weights, se.blocks, eta, w, loglik, n, se.n_boundary,
        {"standard_errors": se, "converged": bool(getattr(model, "converged_", True))},
    )  # fmt: skip


def block_names(model: Any, feature_names: Any, default: list[list[str]]) -> list[list[str]]:
    """Each block's column names: ``feature_names`` (one per column) or ``default``."""
    if feature_names is None:
        return default
    given = [str(c) for c in feature_names]
    if len(given) != model.n_features_in_:
        raise ValueError(f"feature_names: expected {model.n_features_in_} names, got {len(given)}")
    return [[given[j] for j in cols] for cols in model.block_columns_]


def family_summary(
    model: Any,
    measurements: list[Any],
    params: Any,
    names: list[list[str]],
    weights: np.ndarray,
    weights_se: np.ndarray,
    se_blocks: list[Any],
    eta: np.ndarray,
    w: np.ndarray,
    loglik: float,
    n: float,
    n_boundary: int,
    extra: dict[str, Any],
) -> FamilySummary:
    """The :class:`FamilySummary` of a LatentClassModel from what its caller computed
    (posteriors ``eta`` with row weights ``w``; each block's standard errors): the rows
    come from the blocks, the criteria count every free parameter of the model."""
    from emnet.mixture.inference.stats import classification_of, entropy_of, information_criteria

    table = classification_of(eta, w)
    p = model._n_free()  # the regression's coefficients included
    rows = [
        m.summary_rows(b, s, nm)
        for m, b, s, nm in zip(measurements, params, se_blocks, names, strict=True)
    ]
    fitted = hasattr(model, "init_lower_bounds_")
    if getattr(model, "measurement", "declared") is None:  # said, as the issue asks
        found = ", ".join(f"{len(v)} {k}" for k, v in model.measurement_.items())
        extra = {**extra, "measurement_note": f"Measurement inferred from the data: {found} "
                 "(declare it with measurement={type: [columns]})"}  # fmt: skip
    return FamilySummary(
        model_name=type(model).__name__,
        n_components=len(model.weights_),
        n_observations=n,
        blocks=[m.describe() for m in measurements],
        rows=rows,
        weights=weights,
        weights_se=weights_se,
        modal_shares=table.sizes / table.sizes.sum(),
        loglik=loglik,
        n_parameters=p,
        **information_criteria(loglik, p, n),
        entropy=entropy_of(eta, w),
        classification=table.mean_posterior,
        n_init=len(model.init_lower_bounds_) if fitted else None,
        n_at_best=model.n_starts_at_best() if fitted else None,
        se_method="observed information",
        proper_maxima_note=getattr(model, "proper_maxima_note_", None),
        n_boundary=n_boundary,
        extra=extra,
    )
