"""Predicted class probabilities as a function of one covariate ("predicted prevalence").

:func:`plot_covariate_effect` draws, for a latent class model fitted with covariates
(``fit(X, covariates=Z)``), P(class k | z) over a grid of one numeric covariate, with the
other covariates held fixed: numeric ones at their mean over ``data`` (the covariates used
in the fit), categorical ones at their reference level (the first), or each at the value
given in ``at``. One line per class, with a band of ±1.96 standard errors from the delta
method on the softmax:

    π_k(β) = softmax_k(0, d·β_2, …, d·β_K),   ∂π_k/∂β_{j,m} = π_k (δ_km − π_m) d_j,
    Var π_k ≈ J_k Σ J_kᵀ,

with Σ = ``model.coef_cov_``, the covariance of β = ``coef_.T`` (shape (1 + q, K − 1))
flattened row-major (term-major, class-minor: the order of ``coef_.T.ravel()``, which is
how ``emnet.mixture.covariates.regression`` computes it and ``reorder`` transforms it). The band is
clipped to [0, 1]. This is poLCA's "predicted prevalence" figure, with its uncertainty.

matplotlib's object-oriented API only (``matplotlib.figure.Figure``): the caller's backend
and pyplot state are never touched. Files are written atomically (:func:`emnet._io.savefig`).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from emnet.mixture.plots.common import check_target, figure_result

__all__ = ["plot_covariate_effect", "predicted_prevalence"]

N_GRID = 101


class Prevalence(NamedTuple):
    """The curves of :func:`plot_covariate_effect`: ``grid`` (G,), ``probs`` and ``se``
    (G, K), and the values the other covariates are held at (``held``: name → value)."""

    grid: np.ndarray
    probs: np.ndarray
    se: np.ndarray
    held: dict[str, Any]
    frame: Any  # the (G, q) covariate table the curves are predicted from


def _design_of(model: Any) -> Any:
    design = getattr(model, "covariate_design_", None)
    if design is None or not hasattr(model, "coef_"):
        raise ValueError(
            "plot_covariate_effect: the model was fitted without covariates; "
            "fit it with fit(X, covariates=Z) first"
        )
    return design


def _column(data: Any, design: Any, name: str) -> np.ndarray | None:
    """Column ``name`` of the fit's covariates ``data`` (a DataFrame or an (n, q) array)."""
    if data is None:
        return None
    if hasattr(data, "columns"):
        cols = [str(c) for c in data.columns]
        if name not in cols:
            raise ValueError(
                f"data: has no column {name!r} (the model's covariates are {design.columns})"
            )
        return np.asarray(data.iloc[:, cols.index(name)].to_numpy(dtype=object))
    arr = np.asarray(data, dtype=object)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != len(design.columns):
        raise ValueError(
            f"data: expected the {len(design.columns)} covariate columns used in fit "
            f"({design.columns}), got shape {arr.shape}"
        )
    return arr[:, design.columns.index(name)]


def _numeric(values: Any, what: str) -> np.ndarray:
    import pandas as pd

    v = pd.to_numeric(pd.Series(np.asarray(values, dtype=object).ravel()), errors="coerce")
    v = v.to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError(f"{what}: no finite number to take the range or mean from")
    return v


def predicted_prevalence(
    model: Any, covariate: str, *, data: Any = None, values: Any = None, at: Any = None
) -> Prevalence:
    """The numbers :func:`plot_covariate_effect` draws (see there for the arguments)."""
    import pandas as pd

    from emnet.mixture.covariates.logit import apply_design

    design = _design_of(model)
    covariate = str(covariate)
    if covariate not in design.columns:
        raise ValueError(
            f"covariate: the model has no covariate {covariate!r} "
            f"(its covariates are {', '.join(map(repr, design.columns))})"
        )
    j = design.columns.index(covariate)
    if design.kinds[j] != "numeric":
        raise ValueError(
            f"covariate: {covariate!r} is categorical (levels {design.levels[j]}); "
            "plot_covariate_effect draws a numeric covariate"
        )
    at = dict(at or {})
    unknown = [str(k) for k in at if str(k) not in design.columns]
    if unknown:
        raise ValueError(
            f"at: the model has no covariate {unknown[0]!r} "
            f"(its covariates are {', '.join(map(repr, design.columns))})"
        )
    at = {str(k): v for k, v in at.items()}
    if covariate in at:
        raise ValueError(f"at: {covariate!r} is the covariate on the x axis; it cannot be held")
    if values is None:
        values = _column(data, design, covariate)
        if values is None:
            raise ValueError(
                f"plot_covariate_effect: give data= (the covariates used in fit) or values= "
                f"(the values of {covariate!r}) for the range of the grid"
            )
    observed = _numeric(values, "values" if data is None else f"data[{covariate!r}]")
    lo, hi = float(observed.min()), float(observed.max())
    grid = np.linspace(lo, hi, N_GRID) if hi > lo else np.array([lo])

    held: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    for name, kind, levels in zip(design.columns, design.kinds, design.levels, strict=True):
        if name == covariate:
            columns[name] = grid
            continue
        if name in at:
            value = at[name]
            if kind == "numeric":
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"at: {name!r} is numeric, got {value!r}") from None
                if not np.isfinite(value):
                    raise ValueError(f"at: {name!r} must be finite, got {value!r}")
            elif value not in levels:
                raise ValueError(f"at: {name!r} has the levels {levels}, got {value!r}")
        elif kind == "numeric":
            col = _column(data, design, name)
            if col is None:
                raise ValueError(
                    f"plot_covariate_effect: give data= (the covariates used in fit) or "
                    f"at={{{name!r}: value}} to hold the numeric covariate {name!r} fixed"
                )
            value = float(_numeric(col, f"data[{name!r}]").mean())
        else:
            value = levels[0]
        held[name] = value
        if kind == "numeric":
            columns[name] = np.full(len(grid), value, dtype=np.float64)
        else:
            columns[name] = pd.Series([value] * len(grid), dtype=object)
    frame = pd.DataFrame(columns, columns=list(design.columns))
    probs = np.asarray(model.class_probabilities(frame), dtype=np.float64)
    D, _ = apply_design(frame, design, len(grid))
    se = _delta_se(probs, D, np.asarray(model.coef_cov_, dtype=np.float64))
    return Prevalence(grid, probs, se, held, frame)


def _delta_se(probs: np.ndarray, D: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Standard errors of π (G, K) = softmax(0, D β) by the delta method; ``cov`` is the
    covariance of β.ravel() for β of shape (p, K − 1) (term-major)."""
    G, K = probs.shape
    p = D.shape[1]
    if cov.shape != (p * (K - 1), p * (K - 1)):
        raise ValueError(
            f"coef_cov_: expected shape {(p * (K - 1),) * 2} for {p} terms and {K} classes, "
            f"got {cov.shape}"
        )
    # A[g, k, m] = ∂π_gk / ∂η_g,m+1 = π_gk (δ_k,m+1 − π_g,m+1)
    A = probs[:, :, None] * (np.eye(K)[:, 1:][None] - probs[:, None, 1:])
    J = (A[:, :, None, :] * D[:, None, :, None]).reshape(G, K, p * (K - 1))
    var = np.einsum("gka,ab,gkb->gk", J, cov, J)
    return np.sqrt(np.maximum(var, 0.0))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def plot_covariate_effect(
    model: Any,
    covariate: str,
    *,
    data: Any = None,
    values: Any = None,
    at: Any = None,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Predicted class probabilities P(class k | z) against one numeric covariate.

    Parameters
    ----------
    model : a ``BernoulliMixture`` or ``CategoricalMixture`` fitted with covariates (any
        ``covariate_method``).
    covariate : the name of a numeric covariate (one of ``model.covariate_design_.columns``;
        an array's columns are named "z1", "z2", ...).
    data : the covariates used in fit (DataFrame or (n, q) array): the grid spans the
        covariate's observed range (101 points) and the other numeric covariates are held
        at their means.
    values : the covariate's values (used for its range instead of ``data``).
    at : ``{name: value}`` to hold other covariates at (default: mean / reference level).
    ax : a matplotlib Axes to draw on (returned).
    path : a file to write (PNG/SVG/PDF by suffix; returned as a Path).

    With neither ``ax`` nor ``path`` the new ``matplotlib.figure.Figure`` is returned.
    The K lines are ``ax.lines`` (x: the grid, y: ``model.class_probabilities`` there);
    the bands (±1.96 SE, delta method on ``model.coef_cov_``, clipped to [0, 1]) are
    ``ax.collections``. A bad name is a ValueError naming it.
    """
    from matplotlib.figure import Figure

    check_target(ax, path, "plot_covariate_effect")
    prev = predicted_prevalence(model, covariate, data=data, values=values, at=at)
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot()
    K = prev.probs.shape[1]
    colors = [f"C{k % 10}" for k in range(K)]
    shares = np.asarray(getattr(model, "weights_", np.full(K, np.nan)), dtype=np.float64)
    for k in range(K):
        lower = np.clip(prev.probs[:, k] - 1.96 * prev.se[:, k], 0.0, 1.0)
        upper = np.clip(prev.probs[:, k] + 1.96 * prev.se[:, k], 0.0, 1.0)
        ax.fill_between(prev.grid, lower, upper, color=colors[k], alpha=0.18, linewidth=0)
        ax.plot(prev.grid, prev.probs[:, k], color=colors[k], linewidth=1.8,
                label=f"class {k + 1} ({100 * shares[k]:.1f}%)")  # fmt: skip
    if len(prev.grid) > 1:
        ax.set_xlim(prev.grid[0], prev.grid[-1])
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(str(covariate))
    ax.set_ylabel("P(class | covariates)")
    ax.grid(True, alpha=0.3)
    title = f"Predicted class probabilities by {covariate}"
    if prev.held:
        title += "\nothers held at " + ", ".join(f"{n} = {_fmt(v)}" for n, v in prev.held.items())
    ax.set_title(title, fontsize=10)
    method = getattr(model, "covariate_method_", None)
    ax.legend(
        title="class (share), ±1.96 SE" + (f", {method}" if method else ""),
        fontsize=8,
        title_fontsize=8,
        loc="best",
    )
    return figure_result(fig, ax, path)
