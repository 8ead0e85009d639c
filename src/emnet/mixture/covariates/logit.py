"""Latent class regression: covariates that predict class membership (SPEC §1b).

P(class k | z_i) = softmax_k(β_k · d_i) with d_i = [1, z_i] and β_0 = 0 (the first class is
the reference). ``coef_`` holds β_1..β_{K−1} as a (K − 1, 1 + q) array.

**Design.** :func:`learn_design` turns the covariates (an (n, q) array or DataFrame) into
d_i: numeric columns as they are; string, bool and categorical columns one-hot encoded
with their first level as the reference. A column mixing numbers and strings is an error
naming it; so is a column with no value, a constant one (a single level, or one value on
every row the fit uses: it cannot predict the classes, and its coefficient would share
the intercept's information) and one collinear with the columns before it (the message
names them). Rows with a missing covariate are dropped with a warning saying how many.

**Units.** The fit runs on the design centred and scaled (:func:`standardizer`: every
non-intercept column to weighted mean 0 and standard deviation 1) and maps the
coefficients and their covariance back (:func:`unstandardize`), so ``coef_`` is in the
covariates' own units while the Newton steps, the ridge and the finite differences of
the information see unit-free columns: coefficients, standard errors and z do not depend
on the units (a covariate ×1e12 gives coefficients ×1e-12 and the same z).

**One-step** (``covariate_method="one-step"``, the default with covariates): EM over all
parameters at once (each start first runs EM without covariates, which is cheap, and the
regression starts from there with slopes 0). The E-step has per-row class probabilities; the M-step for θ is the
usual one and the M-step for β maximises Σ_i w_i Σ_k η_ik log P(k | z_i), a weighted
multinomial logistic regression with soft labels, solved by Newton–Raphson with a
backtracking line search, warm-started from the current β (:func:`logit_m_step`). A
ridge of ``RIDGE`` · ‖slopes‖²/2 (not on the intercepts; on the standardised slopes) keeps
the Newton system definite when classes separate; it is part of the objective, so EM
stays monotone. The SQUAREM acceleration runs on (β, log-odds of θ).

**Three-step** (``"bch"``, ``"ml"``): the measurement model is fitted without covariates,
each row is assigned its modal class ŵ_i, and the classification-error matrix
D_ts = P(ŵ = s | class t) = Σ_i w_i η_it [ŵ_i = s] / Σ_i w_i η_it is formed. The naive
third step (a logit of ŵ on z) is biased towards zero; the corrections are:
BCH (Bolck, Croon & Hagenaars 2004; Vermunt 2010): maximise
Σ_i w_i Σ_t (D⁻¹)_{ŵ_i t} log P(t | z_i); ML (Vermunt 2010): maximise
Σ_i w_i log Σ_t P(t | z_i) D_{t ŵ_i}, by EM with the same logit M-step.

**Standard errors** of β: one-step, from the observed information of all parameters
(central differences of the exact gradient); three-step, from that of the step-3
objective with the measurement model held fixed (so they leave out step 1's uncertainty,
as stepmix's default does). Wald z = β/SE and two-sided normal p-values.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numba
import numpy as np
import pandas as pd
from scipy import stats as sps

from emnet.mixture.inference.numdiff import covariance, observed_information

RIDGE = 1e-6
METHODS = ("one-step", "bch", "ml", "naive")


class Design(NamedTuple):
    """How covariate columns become the design d_i = [1, z_i]."""

    columns: list[str]  # original column names
    kinds: list[str]  # "numeric" or "categorical"
    levels: list[list[Any] | None]  # categorical levels (first = reference)
    names: list[str]  # design column names, intercept first


class CovParams(NamedTuple):
    """EM parameters with covariates: β (1 + q, K − 1) and log θ (M, K)."""

    beta: np.ndarray
    log_table: np.ndarray


def _frame(Z: Any, n: int) -> pd.DataFrame:
    if isinstance(Z, pd.DataFrame):
        frame = Z.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
    else:
        try:
            arr = np.asarray(Z)
        except ValueError:
            raise ValueError("covariates: expected a 2-D table (rows of equal length)") from None
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"covariates: expected a 2-D table, got shape {arr.shape}")
        frame = pd.DataFrame(arr, columns=[f"z{j + 1}" for j in range(arr.shape[1])])
    if len(frame) != n:
        raise ValueError(f"covariates: expected {n} rows (one per row of X), got {len(frame)}")
    if frame.shape[1] == 0:
        raise ValueError("covariates: expected at least one column")
    return frame


def _kind(col: pd.Series, name: str) -> str:
    if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == bool:
        return "categorical"
    if pd.api.types.is_numeric_dtype(col.dtype):
        return "numeric"
    values = col.dropna()
    if len(values) == 0:
        raise ValueError(f"covariates: column {name!r} has no value (every entry is missing)")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return "numeric"
    if numeric.notna().any():
        bad = values[numeric.isna()].iloc[0]
        raise ValueError(
            f"covariates: column {name!r} mixes numbers and text (e.g. {bad!r}); "
            "make it all numbers or all categories"
        )
    return "categorical"


def learn_design(Z: Any, n: int) -> tuple[Design, np.ndarray, np.ndarray]:
    """(design spec, d (n_kept, 1 + q), kept-rows mask) from the covariates of ``fit``."""
    frame = _frame(Z, n)
    kinds, levels = [], []
    for name in frame.columns:
        col = frame[name]
        if col.isna().all():
            raise ValueError(f"covariates: column {name!r} has no value (every entry is missing)")
        kind = _kind(col, name)
        kinds.append(kind)
        if kind == "categorical":
            if isinstance(col.dtype, pd.CategoricalDtype):
                present = set(col.dropna().tolist())
                lv = [c for c in col.cat.categories.tolist() if c in present]
            else:
                lv = sorted(set(col.dropna().tolist()), key=lambda v: (str(type(v)), v))
            if not lv:
                raise ValueError(f"covariates: column {name!r} has no value")
            levels.append(lv)
        else:
            levels.append(None)
    names = ["intercept"]
    for name, kind, lv in zip(frame.columns, kinds, levels, strict=True):
        names += [name] if kind == "numeric" else [f"{name}={v}" for v in lv[1:]]
    design = Design(list(frame.columns), kinds, levels, names)
    D, keep = apply_design(frame, design, n, drop_missing=True)
    _check_rank(D, design)
    return design, D, keep


class FitDesign(NamedTuple):
    """The covariates of a fit: the learned ``design``, the kept-rows mask, their weights,
    the standardising map ``A`` and the unit-free design rows ``D @ A``."""

    design: Design
    keep: np.ndarray
    weights: np.ndarray
    A: np.ndarray
    D: np.ndarray


def fit_design(covariates: Any, n: int, sample_weight: Any) -> FitDesign:
    """Learn the design of a fit's covariates (rows with a missing covariate left out, with
    a warning) and standardise its columns (coefficients are mapped back by ``A``)."""
    from emnet.mixture.core.validation import check_weights

    design, D, keep = learn_design(covariates, n)
    w_all = check_weights(sample_weight, n)
    w = (np.ones(n) if w_all is None else w_all)[keep]
    A = standardizer(D, w)
    return FitDesign(design, keep, w, A, D @ A)


def fitted_design_rows(
    covariates: Any, design: Design, n: int, sample_weight: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(design rows d (n_kept, 1 + q), kept-rows mask, their weights) of a fitted model's
    covariates: rows with a missing covariate left out silently (the fit warned)."""
    from emnet.mixture.core.validation import check_weights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        D, keep = apply_design(covariates, design, n, drop_missing=True)
    w = check_weights(sample_weight, n)
    return D, keep, (np.ones(n) if w is None else w)[keep]


def apply_design(
    Z: Any, design: Design, n: int, *, drop_missing: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(d (n_kept, 1 + q), kept-rows mask) for new covariates under ``design``."""
    frame = _frame(Z, n)
    if list(frame.columns) != design.columns and not (
        not isinstance(Z, pd.DataFrame) and frame.shape[1] == len(design.columns)
    ):
        raise ValueError(
            f"covariates: expected the columns {design.columns}, got {list(frame.columns)}"
        )
    parts = [np.ones((n, 1))]
    missing = np.zeros(n, dtype=bool)
    for j, (kind, lv) in enumerate(zip(design.kinds, design.levels, strict=True)):
        col = frame.iloc[:, j]
        miss = col.isna().to_numpy()
        missing |= miss
        if kind == "numeric":
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(values) & ~miss
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"covariates: column {design.columns[j]!r} holds {col.iloc[i]!r} (row {i}), "
                    "not a number"
                )
            if not np.all(np.isfinite(values[~miss])):
                raise ValueError(
                    f"covariates: column {design.columns[j]!r} holds an infinite value"
                )
            parts.append(values[:, None])
        else:
            idx = pd.Index(lv).get_indexer(col.to_numpy(dtype=object))
            unseen = (idx < 0) & ~miss
            if unseen.any():
                i = int(np.flatnonzero(unseen)[0])
                raise ValueError(
                    f"covariates: column {design.columns[j]!r} has the level {col.iloc[i]!r} "
                    f"(row {i}) that was not seen in fit"
                )
            onehot = np.zeros((n, len(lv) - 1))
            rows = np.flatnonzero(idx > 0)
            onehot[rows, idx[rows] - 1] = 1.0
            parts.append(onehot)
    D = np.concatenate(parts, axis=1)
    keep = ~missing
    if missing.any() and not drop_missing:
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(f"covariates: row {i} has a missing covariate")
    if drop_missing and missing.any():
        if not keep.any():
            raise ValueError("covariates: every row has a missing covariate")
        warnings.warn(
            f"covariates: {int(missing.sum())} of {n} rows have a missing covariate and are "
            "left out of the fit (as poLCA does)",
            UserWarning,
            stacklevel=4,
        )
    return D[keep], keep


def _check_rank(D: np.ndarray, design: Design) -> None:
    """A ValueError naming a constant column, or one collinear with the columns before it
    (and the intercept), over the rows the fit uses."""
    for name, kind, lv in zip(design.columns, design.kinds, design.levels, strict=True):
        if kind == "categorical" and len(lv) < 2:
            raise ValueError(
                f"covariates: covariate {name!r} is constant (every row has the level "
                f"{lv[0]!r}); it cannot predict the classes, drop it"
            )
    scale = np.maximum(np.abs(D).max(axis=0), 1e-300)
    S = D / scale  # unit-free: a column ×1e12 is the same column
    for c in range(1, D.shape[1]):
        col = S[:, c]
        if np.ptp(col) <= 1e-12:
            raise ValueError(
                f"covariates: covariate {design.names[c]!r} is constant (every row has "
                f"{D[0, c]:g}); it cannot predict the classes, drop it"
            )
        coef, *_ = np.linalg.lstsq(S[:, :c], col, rcond=None)
        residual = col - S[:, :c] @ coef
        if np.sqrt(np.mean(residual**2)) <= 1e-9 * np.sqrt(np.mean((col - col.mean()) ** 2)):
            others = ", ".join(repr(design.names[i]) for i in range(1, c) if abs(coef[i]) > 1e-9)
            raise ValueError(
                f"covariates: covariate {design.names[c]!r} is perfectly collinear with "
                f"{others or 'the other covariates'} (and the intercept); drop it"
            )


def standardizer(D: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A (p, p): the design D (intercept first) centred and scaled by the weighted mean
    and standard deviation of each other column is D @ A, and coefficients β̃ on it are
    β = A β̃ on D. Fitting on D @ A makes the Newton steps, the ridge, the finite
    differences of the information and so the standard errors independent of the
    covariates' units (a column ×1e12 gives coefficients ×1e-12 and the same z)."""
    p = D.shape[1]
    A = np.eye(p)
    total = float(w.sum())
    for j in range(1, p):
        mean = float(w @ D[:, j]) / total
        sd = float(np.sqrt(w @ (D[:, j] - mean) ** 2 / total))
        if not sd > 0:  # constant on these rows (new data): centre only
            sd = 1.0
        A[j, j] = 1.0 / sd
        A[0, j] = -mean / sd
    return A


def unstandardize(
    A: np.ndarray, beta: np.ndarray, cov: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """β (p, K − 1) and the covariance of β.ravel() on D from those on D @ A."""
    T = np.kron(A, np.eye(beta.shape[1]))
    return A @ beta, T @ cov @ T.T


def class_log_probs(D: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """log P(k | z_i) (n, K): log-softmax of [0, D β]."""
    eta = np.concatenate([np.zeros((D.shape[0], 1)), D @ beta], axis=1)
    m = eta.max(axis=1, keepdims=True)
    return eta - m - np.log(np.exp(eta - m).sum(axis=1, keepdims=True))


def _penalty(beta: np.ndarray) -> float:
    return 0.5 * RIDGE * float((beta[1:] ** 2).sum())


def logit_objective(D: np.ndarray, targets: np.ndarray, beta: np.ndarray) -> float:
    """Σ_i Σ_k targets_ik log P(k | z_i) − ridge (targets: weighted soft labels (n, K))."""
    return float((targets * class_log_probs(D, beta)).sum()) - _penalty(beta)


def logit_m_step(
    D: np.ndarray, targets: np.ndarray, beta: np.ndarray, max_steps: int = 25, tol: float = 1e-12
) -> np.ndarray:
    """Newton–Raphson with backtracking for max_β Σ_i Σ_k targets_ik log P(k | z_i) − ridge,
    from ``beta``; never returns a β with a lower objective than the start. One compiled
    call (:func:`_logit_newton`): an EM step of a latent class regression makes one."""
    D = np.ascontiguousarray(D, dtype=np.float64)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    return _logit_newton(D, targets, beta.copy(), int(max_steps), float(tol), RIDGE)


@numba.njit(cache=True, nogil=True)
def _class_log_probs_nb(D: np.ndarray, beta: np.ndarray) -> np.ndarray:
    n, p = D.shape
    K1 = beta.shape[1]
    out = np.empty((n, K1 + 1))
    for i in range(n):
        m = 0.0
        for k in range(K1):
            e = 0.0
            for a in range(p):
                e += D[i, a] * beta[a, k]
            out[i, k + 1] = e
            if e > m:
                m = e
        total = np.exp(-m)
        for k in range(K1):
            total += np.exp(out[i, k + 1] - m)
        lse = m + np.log(total)
        out[i, 0] = -lse
        for k in range(K1):
            out[i, k + 1] -= lse
    return out


@numba.njit(cache=True, nogil=True)
def _logit_value(targets: np.ndarray, logp: np.ndarray, beta: np.ndarray, ridge: float) -> float:
    value = 0.0
    for i in range(targets.shape[0]):
        for k in range(targets.shape[1]):
            value += targets[i, k] * logp[i, k]
    pen = 0.0
    for a in range(1, beta.shape[0]):
        for k in range(beta.shape[1]):
            pen += beta[a, k] * beta[a, k]
    return value - 0.5 * ridge * pen


@numba.njit(cache=True, nogil=True)
def _logit_newton(
    D: np.ndarray, targets: np.ndarray, beta: np.ndarray, max_steps: int, tol: float,
    ridge_value: float,
) -> np.ndarray:  # fmt: skip
    """:func:`logit_m_step`'s Newton–Raphson: H[(a, k), (b, m)] = Σ_i D_ia D_ib mass_i
    π_ik (δ_km − π_im) + ridge, a backtracking line search that never lowers the
    objective, stop when the gain is below tol · max(1, |objective|)."""
    n, p = D.shape
    K1 = beta.shape[1]
    P = p * K1
    mass = np.zeros(n)
    for i in range(n):
        for k in range(targets.shape[1]):
            mass[i] += targets[i, k]
    logp = _class_log_probs_nb(D, beta)
    current = _logit_value(targets, logp, beta, ridge_value)
    for _ in range(max_steps):
        grad = np.zeros(P)  # index a * K1 + k
        H = np.zeros((P, P))
        for i in range(n):
            for k in range(K1):
                pik = np.exp(logp[i, k + 1])
                r = targets[i, k + 1] - mass[i] * pik
                for a in range(p):
                    grad[a * K1 + k] += D[i, a] * r
                for m in range(K1):
                    pim = np.exp(logp[i, m + 1])
                    c = mass[i] * pik * ((1.0 if k == m else 0.0) - pim)
                    if c == 0.0:
                        continue
                    for a in range(p):
                        da = D[i, a] * c
                        for b in range(p):
                            H[a * K1 + k, b * K1 + m] += da * D[i, b]
        for a in range(1, p):
            for k in range(K1):
                grad[a * K1 + k] -= ridge_value * beta[a, k]
                H[a * K1 + k, a * K1 + k] += ridge_value
        for q in range(P):
            H[q, q] += 1e-12
        ok = True
        step = np.empty(P)
        try:
            step[:] = np.linalg.solve(H, grad)
        except Exception:  # noqa: BLE001 - a singular H: a gradient step
            ok = False
        if not ok:
            step[:] = grad
        t = 1.0
        accepted = False
        trial = np.empty_like(beta)
        trial_logp = logp
        value = current
        while t > 1e-8:
            for a in range(p):
                for k in range(K1):
                    trial[a, k] = beta[a, k] + t * step[a * K1 + k]
            trial_logp = _class_log_probs_nb(D, trial)
            value = _logit_value(targets, trial_logp, trial, ridge_value)
            if value >= current:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        gain = value - current
        beta = trial.copy()
        current = value
        logp = trial_logp
        if gain < tol * max(1.0, abs(current)):
            break
    return beta


def information_beta(grad: Any, beta: np.ndarray) -> np.ndarray:
    """−Hessian of a β objective from its exact gradient ``grad(beta (p, K − 1))``."""
    return observed_information(lambda flat: grad(flat.reshape(beta.shape)), beta)


class CoefTable(NamedTuple):
    coef: np.ndarray  # (K − 1, 1 + q)
    se: np.ndarray
    z: np.ndarray
    p: np.ndarray
    names: list[str]
    method: str

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for k in range(self.coef.shape[0]):
            for j, name in enumerate(self.names):
                rows.append({"class": k + 2, "term": name, "coef": self.coef[k, j],
                             "se": self.se[k, j], "z": self.z[k, j], "p": self.p[k, j]})  # fmt: skip
        return pd.DataFrame(rows)


def coef_table(beta: np.ndarray, cov: np.ndarray, names: list[str], method: str) -> CoefTable:
    """Wald table of β (p, K − 1) with covariance ``cov`` of β.ravel()."""
    var = np.diag(cov).reshape(beta.shape)
    se = np.sqrt(np.where(var >= 0, var, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    p = 2 * sps.norm.sf(np.abs(z))
    return CoefTable(beta.T.copy(), se.T.copy(), z.T.copy(), p.T.copy(), names, method)


# -- three-step ---------------------------------------------------------------------------


def error_matrix(eta: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(modal assignment ŵ (n,), D (K, K) with D[t, s] = P(ŵ = s | class t))."""
    K = eta.shape[1]
    modal = eta.argmax(axis=1)
    onehot = np.eye(K)[modal]
    D = (eta * w[:, None]).T @ onehot
    D /= D.sum(axis=1, keepdims=True)
    return modal, D


def three_step(
    eta: np.ndarray, w: np.ndarray, design: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(β, covariance of β.ravel(), info) by the naive, BCH or ML three-step method."""
    K = eta.shape[1]
    modal, Derr = error_matrix(eta, w)
    beta0 = np.zeros((design.shape[1], K - 1))
    onehot = np.eye(K)[modal]
    if method == "naive":
        targets = onehot * w[:, None]
    elif method == "bch":
        targets = np.linalg.inv(Derr)[modal] * w[:, None]
    elif method == "ml":
        lik = Derr[:, modal].T  # (n, K): P(ŵ_i | class t)
        beta = beta0
        prev = -np.inf
        for _ in range(500):
            logp = class_log_probs(design, beta)
            joint = np.exp(logp) * lik
            value = float(w @ np.log(joint.sum(axis=1))) - _penalty(beta)
            post = joint / joint.sum(axis=1, keepdims=True)
            beta = logit_m_step(design, post * w[:, None], beta)
            if value - prev < 1e-10 * max(1.0, abs(value)):
                break
            prev = value

        def grad(b: np.ndarray) -> np.ndarray:
            logp = class_log_probs(design, b)
            joint = np.exp(logp) * lik
            post = joint / joint.sum(axis=1, keepdims=True)
            return design.T @ ((post - np.exp(logp)) * w[:, None])[:, 1:]

        cov = covariance(information_beta(grad, beta))
        return beta, cov, {"error_matrix": Derr, "modal": modal}
    else:
        raise ValueError(f"covariate_method: expected one of {METHODS}, got {method!r}")
    beta = logit_m_step(design, targets, beta0, max_steps=100)

    def grad(b: np.ndarray) -> np.ndarray:
        pi = np.exp(class_log_probs(design, b))
        return design.T @ (targets - targets.sum(axis=1)[:, None] * pi)[:, 1:]

    cov = covariance(information_beta(grad, beta))
    return beta, cov, {"error_matrix": Derr, "modal": modal}
