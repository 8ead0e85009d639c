"""Statistics latent class papers report (SPEC §1b), for both mixtures.

Both estimators are latent class models: a binary item is the two-answer case. Every
statistic here works on a *coded view* of a fitted model and data (:func:`coded_view`):
answers as integer codes (−1 missing), the row weights, π and log θ as (M, K). Then:

- :func:`relative_entropy`: 1 − Σ_i w_i Σ_k −η_ik log η_ik / (n log K) (1 for K = 1);
- :func:`classification_table`: per modal class, its weighted size and the average
  posterior probability of every class among its rows (the diagonal near 1 means the
  classes are well separated);
- :func:`goodness_of_fit`: G² and Pearson X² against the observed response-pattern table
  with poLCA's definitions — G² = 2 Σ_obs O log(O/E), X² = Σ_obs (O − E)²/E + (N − Σ_obs E),
  df = min(N, Π_j R_j − 1) − p — over the rows with every item answered (N their total
  weight; poLCA's table is also of complete patterns), chi-square p-values from scipy;
- :func:`standard_errors`: from the observed information (the Hessian of the
  log-likelihood in an unconstrained parametrisation, by central differences of its exact
  gradient) or from the outer product of the per-row scores (poLCA's choice), mapped to
  probabilities by the delta method.

The unconstrained parametrisation is the log-odds of every answer against the item's most
likely answer in each class, and the log-odds of every class weight against the largest.

**The boundary.** A probability that EM drives to 0 has log-odds −∞ at the maximum: the
likelihood is flat there and no standard error exists. poLCA (through the pseudo-inverse
of its information) and Mplus (log-odds beyond ±15) hold such a parameter fixed and
report its standard error as 0; so does emnet. Which parameters those are cannot be read
off the estimate alone: EM approaches such a boundary only slowly (often sublinearly), so
at the default tolerance a probability that tends to 0 may have stopped at 1e-7, 1e-4
or even 0.02, and left in, its nearly flat log-odds inflates the other standard errors
several-fold (poLCA's gss82, K = 3: class shares 0.14 instead of 0.046). So the rule is
applied at the maximum itself: :func:`polished_masks` runs a copy of the model on from
its estimates to :data:`POLISH_TOL` (1e-14 per unit of weight; plain EM stays where it
is at an interior maximum, so this costs a few iterations there), and at that point
:func:`boundary_masks` takes a probability θ_kjr to be on the boundary when its expected
count θ_kjr · N_kj (N_kj = Σ_i w_i η_ik over the rows answering item j) is below
:data:`BOUNDARY_COUNT` = 0.1 rows, or θ_kjr <= :data:`BOUNDARY` (1e-7); a class share
likewise when its count Σ_i w_i η_ik is below 0.1 rows. The count, not θ, is the scale:
θ / SE(θ) ≈ √(θ N_kj), so below a tenth of a row an estimate is less than a third of
its own standard error, the normal approximation means nothing, and the data cannot tell
it from 0. A row is the mean positive weight, at most 1 (frequency weights count as the
rows they stand for; weights rescaled to sum to 1 do not make every count small). The
standard errors are then computed at the model's own estimates with those parameters
held (:class:`StandardErrors` ``.boundary``, ``.weights_boundary``, ``.n_boundary``);
an item's reference answer whose other answers are all held is 1 and held too. No
standard error is NaN. On the statistics' own functions, without the model to polish
(the latent class regression's θ), the rule is applied at the estimate as it is.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps

from emnet.mixture.core.validation import check_weights
from emnet.mixture.inference.numdiff import covariance, observed_information
from emnet.mixture.kernels.codes import code_log_resp, compress_rows

BOUNDARY = 1e-7
BOUNDARY_COUNT = 0.1
POLISH_TOL = 1e-14
POLISH_MAX_ITER = 5000


class CodedView(NamedTuple):
    codes: np.ndarray  # (n, J) int, −1 missing
    sample_weight: np.ndarray  # (n,)
    weights: np.ndarray  # (K,)
    log_table: np.ndarray  # (M, K)
    offsets: np.ndarray  # (J + 1,)

    @property
    def n_categories(self) -> np.ndarray:
        return np.diff(self.offsets)


class FitStatistics(NamedTuple):
    g2: float
    x2: float
    df: int
    p_g2: float
    p_x2: float
    n_complete: float  # Σ w over rows with every item answered
    n_patterns: int  # distinct complete patterns observed
    p_bootstrap: float | None = None  # parametric-bootstrap p-value of G² (if asked)


class ClassificationTable(NamedTuple):
    sizes: np.ndarray  # (K,) weighted count of rows whose modal class is k
    mean_posterior: np.ndarray  # (K, K): row k = mean η over rows with modal class k


class StandardErrors(NamedTuple):
    """Standard errors in the shape of the estimates; 0 for an estimate held at the
    boundary (``weights_boundary``, ``boundary``: which ones), never NaN."""

    weights: np.ndarray  # (K,)
    probs: list[np.ndarray]  # per item (K, R_j)
    method: str
    covariance: np.ndarray  # of the free unconstrained parameters
    n_free: int
    weights_boundary: np.ndarray  # (K,) bool: class shares held at 0 (or 1)
    boundary: list[np.ndarray]  # per item (K, R_j) bool: probabilities held at 0 (or 1)
    n_boundary: int  # estimates held at the boundary (shares and probabilities)

    def __repr__(self) -> str:
        return (
            f"StandardErrors(method={self.method!r}, n_free={self.n_free}, "
            f"n_boundary={self.n_boundary})"
        )


def coded_view(model: Any, X: Any, sample_weight: Any = None) -> CodedView:
    """The fitted ``model`` and data ``X`` as codes + π + log θ (see the module doc), by
    the estimator's own coding (``_codes_for``, ``_table_of``)."""
    codes, offsets = model._codes_for(X)
    table = np.ascontiguousarray(model._table_of(model._get_fitted()))
    w = check_weights(sample_weight, codes.shape[0])
    w = np.ones(codes.shape[0]) if w is None else w
    return CodedView(codes, w, np.asarray(model.weights_, dtype=np.float64), table, offsets)


def _compressed(view: CodedView) -> CodedView:
    patterns, totals, _ = compress_rows(view.codes, view.sample_weight)
    keep = totals > 0
    return view._replace(codes=np.ascontiguousarray(patterns[keep]), sample_weight=totals[keep])


def log_resp(view: CodedView) -> tuple[np.ndarray, np.ndarray]:
    return code_log_resp(view.codes, view.offsets, view.weights, view.log_table)


def information_criteria(loglik: Any, n_parameters: Any, n: float) -> dict[str, Any]:
    """AIC, BIC, SABIC and CAIC (SPEC §1b) from the total log-likelihood, the number of
    free parameters and n = Σ w (scalars or arrays alike; lower is better)."""
    deviance = -2.0 * loglik
    return {
        "aic": deviance + 2.0 * n_parameters,
        "bic": deviance + n_parameters * np.log(n),
        "sabic": deviance + n_parameters * np.log((n + 2.0) / 24.0),
        "caic": deviance + n_parameters * (np.log(n) + 1.0),
    }


def relative_entropy(view: CodedView) -> float:
    """Entropy R²: 1 − Σ w Σ_k −η log η / (Σw · log K); 1 when K = 1."""
    if len(view.weights) == 1:
        return 1.0
    return entropy_of(np.exp(log_resp(view)[0]), view.sample_weight)


def entropy_of(eta: np.ndarray, w: np.ndarray) -> float:
    """Entropy R² of responsibilities ``eta`` (n, K) with row weights ``w``."""
    K = eta.shape[1]
    if K == 1:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(eta > 0, eta * np.log(eta), 0.0).sum(axis=1)
    return float(1.0 - (w @ ent) / (w.sum() * np.log(K)))


def classification_table(view: CodedView) -> ClassificationTable:
    return classification_of(np.exp(log_resp(view)[0]), view.sample_weight)


def classification_of(eta: np.ndarray, w: np.ndarray) -> ClassificationTable:
    """Per modal class: its weighted size and the mean posterior of each class in it."""
    K = eta.shape[1]
    modal = eta.argmax(axis=1)
    sizes = np.bincount(modal, weights=w, minlength=K)
    mean = np.full((K, K), np.nan)
    for k in range(K):
        rows = modal == k
        if sizes[k] > 0:
            mean[k] = (w[rows] @ eta[rows]) / sizes[k]
    return ClassificationTable(sizes, mean)


def goodness_of_fit(view: CodedView, n_parameters: int) -> FitStatistics:
    complete = (view.codes >= 0).all(axis=1)
    sub = _compressed(
        view._replace(codes=view.codes[complete], sample_weight=view.sample_weight[complete])
    )
    O = sub.sample_weight
    N = float(O.sum())
    _, log_p = log_resp(sub)
    E = N * np.exp(log_p)
    g2 = float(2.0 * np.sum(np.where(O > 0, O * np.log(O / E), 0.0)))
    x2 = float(np.sum((O - E) ** 2 / E) + max(N - float(E.sum()), 0.0))
    cells = float(np.prod(view.n_categories.astype(float)))
    df = int(min(N, cells - 1.0) - n_parameters)
    p_g2 = float(sps.chi2.sf(g2, df)) if df > 0 else float("nan")
    p_x2 = float(sps.chi2.sf(x2, df)) if df > 0 else float("nan")
    return FitStatistics(g2, x2, df, p_g2, p_x2, N, int(len(O)))


# -- standard errors --------------------------------------------------------------------


class _Layout(NamedTuple):
    """Which unconstrained parameters are free, and their references."""

    weight_ref: int
    weight_free: np.ndarray  # (K,) bool
    prob_ref: np.ndarray  # (K, J) column index of each (class, item)'s reference answer
    prob_free: np.ndarray  # (M, K) bool
    n_free: int
    weight_boundary: np.ndarray | None = None  # (K,) bool: class shares held at 0
    prob_boundary: np.ndarray | None = None  # (M, K) bool: probabilities held at 0


def weight_unit(sample_weight: np.ndarray) -> float:
    """The unit of :data:`BOUNDARY_COUNT`: the mean weight of the rows with a positive
    weight, at most 1 (rows for unweighted and frequency-weighted data alike)."""
    w = np.asarray(sample_weight, dtype=np.float64)
    pos = w[w > 0]
    return float(min(1.0, pos.mean())) if len(pos) else 1.0


Masks = tuple[np.ndarray, np.ndarray]


def boundary_masks(view: CodedView, eta: np.ndarray | None = None) -> Masks:
    """(class shares, probabilities (M, K)) on the boundary: expected count below
    :data:`BOUNDARY_COUNT` rows (see the module docstring). ``eta`` (n, K): the rows'
    class posteriors (computed from ``view`` when None)."""
    if eta is None:
        eta = np.exp(log_resp(view)[0])
    w = view.sample_weight
    limit = BOUNDARY_COUNT * weight_unit(w)
    wk = eta * w[:, None]  # (n, K)
    share_count = wk.sum(axis=0)
    J = len(view.offsets) - 1
    table = np.exp(view.log_table)
    counts = np.empty_like(table)
    for j in range(J):
        lo, hi = view.offsets[j], view.offsets[j + 1]
        seen = view.codes[:, j] >= 0
        counts[lo:hi] = table[lo:hi] * wk[seen].sum(axis=0)  # θ_kjr · N_kj
    return share_count < limit, (counts < limit) | (table <= BOUNDARY)


def _layout(view: CodedView, eta: np.ndarray | None = None, masks: Masks | None = None) -> _Layout:
    """The free parameters of ``view``: all but the references and the estimates on the
    boundary (``masks``, from :func:`boundary_masks` of ``view`` when None)."""
    K = len(view.weights)
    table = np.exp(view.log_table)
    J = len(view.offsets) - 1
    masks = boundary_masks(view, eta) if masks is None else masks
    weight_boundary, prob_boundary = masks[0].copy(), masks[1].copy()
    weight_ref = int(np.argmax(view.weights))
    weight_boundary[weight_ref] = False
    weight_free = ~weight_boundary
    weight_free[weight_ref] = False
    prob_ref = np.zeros((K, J), dtype=np.int64)
    for j in range(J):
        lo, hi = view.offsets[j], view.offsets[j + 1]
        refs = lo + np.argmax(table[lo:hi], axis=0)
        prob_ref[:, j] = refs
        prob_boundary[refs, np.arange(K)] = False
    prob_free = ~prob_boundary
    prob_free[prob_ref.T.ravel(), np.tile(np.arange(K), J)] = False
    return _Layout(
        weight_ref, weight_free, prob_ref, prob_free, int(weight_free.sum() + prob_free.sum()),
        weight_boundary, prob_boundary,
    )  # fmt: skip


def _unpack(view: CodedView, lay: _Layout, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights, log θ) with the free parameters set to ``beta`` (the rest held)."""
    K = len(view.weights)
    nw = int(lay.weight_free.sum())
    logit_w = np.log(np.maximum(view.weights, 1e-300)) - np.log(view.weights[lay.weight_ref])
    logit_w[lay.weight_free] = beta[:nw]
    w = np.exp(logit_w - logit_w.max())
    w /= w.sum()
    log_t = np.array(view.log_table)
    J = len(view.offsets) - 1
    ref_vals = np.empty((J, K))
    for j in range(J):
        ref_vals[j] = log_t[lay.prob_ref[:, j], np.arange(K)]
    item_of = np.repeat(np.arange(J), np.diff(view.offsets))
    rel = log_t - ref_vals[item_of]
    rel[lay.prob_free] = beta[nw:]
    out = np.empty_like(rel)
    for j in range(J):
        lo, hi = view.offsets[j], view.offsets[j + 1]
        block = rel[lo:hi]
        block = block - block.max(axis=0)
        out[lo:hi] = block - np.log(np.exp(block).sum(axis=0))
    return w, out


def _pack(view: CodedView, lay: _Layout) -> np.ndarray:
    K = len(view.weights)
    logit_w = np.log(np.maximum(view.weights, 1e-300)) - np.log(view.weights[lay.weight_ref])
    J = len(view.offsets) - 1
    item_of = np.repeat(np.arange(J), np.diff(view.offsets))
    ref = np.stack([view.log_table[lay.prob_ref[:, j], np.arange(K)] for j in range(J)])
    rel = view.log_table - ref[item_of]
    return np.concatenate([logit_w[lay.weight_free], rel[lay.prob_free]])


def row_scores(view: CodedView, lay: _Layout, weights: np.ndarray, log_t: np.ndarray) -> np.ndarray:
    """(n, n_free) per-row gradients of log p(x_i) in the free unconstrained parameters:
    ∂/∂γ_k = η_ik − π_k; ∂/∂β_kjr = η_ik ([x_ij = r] − θ_kjr) where item j is observed."""
    lr, _ = code_log_resp(view.codes, view.offsets, weights, np.ascontiguousarray(log_t))
    eta = np.exp(lr)
    n, K = eta.shape
    parts = [(eta - weights)[:, lay.weight_free]]
    theta = np.exp(log_t)  # (M, K)
    blocks = np.zeros((n,) + log_t.shape)  # (n, M, K)
    for j in range(len(view.offsets) - 1):
        lo, hi = view.offsets[j], view.offsets[j + 1]
        c = view.codes[:, j]
        seen = c >= 0
        onehot = np.zeros((n, hi - lo))
        onehot[np.flatnonzero(seen), c[seen]] = 1.0
        blocks[:, lo:hi, :] = (onehot[:, :, None] - theta[None, lo:hi, :]) * (
            eta[:, None, :] * seen[:, None, None]
        )
    parts.append(blocks[:, lay.prob_free])
    return np.concatenate(parts, axis=1)


def _jacobian(
    view: CodedView, lay: _Layout, weights: np.ndarray, log_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """d(weights)/dβ (K, P) and d(θ)/dβ (M, K, P) at the estimate (softmax derivatives)."""
    K = len(weights)
    P = lay.n_free
    nw = int(lay.weight_free.sum())
    Jw = np.zeros((K, P))
    free_w = np.flatnonzero(lay.weight_free)
    for col, r in enumerate(free_w):
        Jw[:, col] = weights * ((np.arange(K) == r) - weights[r])
    theta = np.exp(log_t)
    Jt = np.zeros(theta.shape + (P,))
    free_rows, free_cols = np.nonzero(lay.prob_free)
    item_of = np.repeat(np.arange(len(view.offsets) - 1), np.diff(view.offsets))
    for col, (m, k) in enumerate(zip(free_rows, free_cols, strict=True), start=nw):
        j = item_of[m]
        lo, hi = view.offsets[j], view.offsets[j + 1]
        block = theta[lo:hi, k]
        Jt[lo:hi, k, col] = block * ((np.arange(lo, hi) == m) - theta[m, k])
    return Jw, Jt


def information(
    view: CodedView, method: str = "hessian", masks: Masks | None = None
) -> tuple[_Layout, np.ndarray]:
    """(layout, information matrix of the free parameters) by ``method``; ``masks``: the
    estimates held on the boundary (:func:`boundary_masks` of ``view`` when None)."""
    if method not in ("hessian", "opg"):
        raise ValueError(f"method: expected 'hessian' or 'opg', got {method!r}")
    lay = _layout(
        view, masks=masks
    )  # the boundary's unit is the rows' mean weight: before compressing
    sub = _compressed(view)
    beta = _pack(sub, lay)
    w = sub.sample_weight
    if method == "opg":
        S = row_scores(sub, lay, *_unpack(sub, lay, beta))
        return lay, (S * w[:, None]).T @ S

    def grad(b: np.ndarray) -> np.ndarray:
        return w @ row_scores(sub, lay, *_unpack(sub, lay, b))

    return lay, observed_information(grad, beta)


def standard_errors(
    view: CodedView, method: str = "hessian", masks: Masks | None = None
) -> StandardErrors:
    """Standard errors at ``view``'s estimates, the estimates in ``masks`` (those of
    :func:`polished_masks`, else :func:`boundary_masks` of ``view``) held at the boundary."""
    lay, info = information(view, method, masks)
    cov = covariance(info)
    Jw, _ = _jacobian(view, lay, view.weights, view.log_table)
    se_w = np.sqrt(np.maximum(np.einsum("kp,pq,kq->k", Jw, cov, Jw), 0.0))
    w_fixed = lay.weight_boundary.copy()
    if w_fixed.sum() == len(w_fixed) - 1:  # every other share is 0: this one is 1
        w_fixed[:] = True
    se_w[w_fixed] = 0.0
    fixed = prob_fixed(view, lay)
    probs = item_errors(view, lay, cov)
    return StandardErrors(
        se_w, probs, method, cov, lay.n_free, w_fixed, _per_item(view, fixed),
        int(w_fixed.sum() + fixed.sum()),
    )  # fmt: skip


def prob_fixed(view: CodedView, lay: _Layout) -> np.ndarray:
    """(M, K) bool: probabilities held at the boundary — the ones at 0, and an item's
    reference answer when every other answer of that class is at 0 (it is then 1)."""
    fixed = lay.prob_boundary.copy()
    K = len(view.weights)
    for j in range(len(view.offsets) - 1):
        lo, hi = view.offsets[j], view.offsets[j + 1]
        refs = lay.prob_ref[:, j]
        others = fixed[lo:hi].sum(axis=0) == hi - lo - 1
        fixed[refs[others], np.arange(K)[others]] = True
    return fixed


def _per_item(view: CodedView, table: np.ndarray) -> list[np.ndarray]:
    """An (M, K) table as one (K, R_j) array per item."""
    return [
        table[view.offsets[j] : view.offsets[j + 1]].T.copy() for j in range(len(view.offsets) - 1)
    ]


def polished_masks(model: Any, X: Any, sample_weight: Any = None) -> Masks:
    """:func:`boundary_masks` at the maximum ``model`` converges to: a copy of it is run on
    from its estimates (warm start, no split-merge) until the objective changes by less
    than :data:`POLISH_TOL` per unit of weight, at most :data:`POLISH_MAX_ITER`
    iterations. ``model`` itself is not changed."""
    import copy
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    polished = copy.deepcopy(model)
    params = {"tol": min(float(model.tol), POLISH_TOL), "warm_start": True, "verbose": 0,
              "max_iter": POLISH_MAX_ITER}  # fmt: skip
    if "split_merge" in polished.get_params():
        params["split_merge"] = False
    polished.set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        polished.fit(X, sample_weight=sample_weight)
    return boundary_masks(coded_view(polished, X, sample_weight))


def theta_layout(view: CodedView, eta: np.ndarray | None = None) -> _Layout:
    """The free log-odds of θ alone (class weights held): for the latent class regression,
    whose class probabilities are β's (``eta``: the rows' posteriors under it)."""
    lay = _layout(view, eta)
    K = len(view.weights)
    return lay._replace(
        weight_free=np.zeros(K, dtype=bool),
        weight_boundary=np.zeros(K, dtype=bool),
        n_free=int(lay.prob_free.sum()),
    )


def item_errors(view: CodedView, lay: _Layout, cov: np.ndarray) -> list[np.ndarray]:
    """Per item (K, R_j): the delta-method standard errors of θ from the covariance of
    ``lay``'s free parameters; 0 for a probability held at the boundary."""
    _, Jt = _jacobian(view, lay, view.weights, view.log_table)
    se_t = np.sqrt(np.maximum(np.einsum("mkp,pq,mkq->mk", Jt, cov, Jt), 0.0))
    se_t[prob_fixed(view, lay)] = 0.0
    return _per_item(view, se_t)


def simulate_codes(view: CodedView, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, J) complete answer codes drawn from the model of ``view``."""
    K = len(view.weights)
    z = rng.choice(K, size=n, p=view.weights / view.weights.sum())
    theta = np.exp(view.log_table)
    J = len(view.offsets) - 1
    codes = np.empty((n, J), dtype=np.int64)
    for j in range(J):
        lo, hi = view.offsets[j], view.offsets[j + 1]
        cum = np.cumsum(theta[lo:hi].T[z], axis=1)
        u = rng.uniform(size=(n, 1)) * cum[:, -1:]
        codes[:, j] = np.minimum((u > cum).sum(axis=1), hi - lo - 1)
    return codes


def _g2_of_refit(codes: np.ndarray, cls: type, K: int, n_init: int, seed: int) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = cls(K, n_init=n_init, random_state=seed).fit(codes)
    return goodness_of_fit(coded_view(model, codes), model._n_parameters()).g2


def bootstrap_g2(
    view: CodedView,
    g2: float,
    n_bootstrap: int,
    n_init: int,
    random_state: Any,
    progress: bool,
    cls: type,
) -> float:
    """Parametric-bootstrap p-value of G²: (1 + #{G²_b >= G²}) / (B + 1), each G²_b from a
    data set of the same size simulated from the model and refitted by the estimator class
    ``cls`` with ``n_init`` starts (the simulated answers are codes 0..R_j − 1)."""
    from tqdm.auto import tqdm

    if not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap: expected a positive integer, got {n_bootstrap!r}")
    complete = (view.codes >= 0).all(axis=1)
    n = int(round(view.sample_weight[complete].sum()))
    K = len(view.weights)
    seeds = np.random.SeedSequence(random_state).generate_state(n_bootstrap)
    exceed = 0
    for seed in tqdm(seeds, desc="bootstrap G²", unit="fit", disable=not progress):
        codes = simulate_codes(view, n, np.random.default_rng(int(seed)))
        exceed += _g2_of_refit(codes, cls, K, n_init, int(seed)) >= g2
    return float((1 + exceed) / (n_bootstrap + 1))
