"""Stepwise (online) EM for the Bernoulli mixture: the math behind ``partial_fit``.

Stepwise EM (Sato & Ishii 2000; Cappé & Moulines 2009; Liang & Klein 2009) keeps a running
average ``s`` of the per-sample sufficient statistics (Σ η, Σ η x, Σ η·[observed], divided
by the number of rows) and, after each mini-batch b, moves it towards the batch average:

    s ← (1 − γ_t) s + γ_t s_b,      γ_t = (t + t₀)^(−κ),  κ ∈ (0.5, 1]

then runs the ordinary (MAP) M-step on ``s`` scaled to the number of rows seen so far. With
κ ∈ (0.5, 1] the step sizes satisfy Σγ = ∞, Σγ² < ∞, the Robbins–Monro conditions under
which the iterates converge to a stationary point of the likelihood. κ = 1, t₀ = 1 is
exactly the cumulative average of all batches (incremental EM over one pass).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from emnet.mixture.kernels.bernoulli_math import SuffStats, m_step_from_stats

__all__ = [
    "OnlineState",
    "step_size",
    "stepwise_update",
    "online_m_step",
    "partial_fit_step",
    "record_step",
]


class OnlineState(NamedTuple):
    """Running per-sample statistics of stepwise EM, plus counters."""

    resp_sum: np.ndarray  # (K,)   average of Σ_i η_ik per row
    resp_x: np.ndarray  # (K, D) average of Σ_i η_ik x_id per row
    resp_obs: np.ndarray | None  # (K, D) average of Σ_i η_ik [x_id observed] per row
    n_seen: float  # rows seen so far
    n_batches: int  # batches seen so far (t)
    loglik_avg: float  # running average of log p(x) per row under the parameters of each batch


def step_size(t: int, decay: float = 0.6, offset: float = 2.0) -> float:
    """γ_t = (t + offset)^(−decay) for batch number t = 0, 1, ...; the first step is 1."""
    if not 0.5 < decay <= 1.0:
        raise ValueError(f"decay must be in (0.5, 1], got {decay!r}")
    if offset < 1.0:
        raise ValueError(f"offset must be >= 1, got {offset!r}")
    return 1.0 if t == 0 else float((t + offset) ** (-decay))


def _obs_or_full(stats_obs: np.ndarray | None, resp_sum: np.ndarray, d: int) -> np.ndarray:
    return stats_obs if stats_obs is not None else np.repeat(resp_sum[:, None], d, axis=1)


def stepwise_update(
    state: OnlineState | None, batch: SuffStats, decay: float = 0.6, offset: float = 2.0
) -> OnlineState:
    """Fold one batch's statistics into the running state (a new state; inputs untouched)."""
    if batch.n <= 0:
        raise ValueError("a partial_fit batch must contain at least one row")
    b_sum = batch.resp_sum / batch.n
    b_x = batch.resp_x / batch.n
    b_obs = None if batch.resp_obs is None else batch.resp_obs / batch.n
    b_ll = batch.loglik / batch.n
    if state is None:
        return OnlineState(b_sum, b_x, b_obs, float(batch.n), 1, b_ll)
    gamma = step_size(state.n_batches, decay, offset)
    obs = None
    if state.resp_obs is not None or b_obs is not None:
        d = b_x.shape[1]
        obs = (1 - gamma) * _obs_or_full(state.resp_obs, state.resp_sum, d) + gamma * (
            _obs_or_full(b_obs, b_sum, d)
        )
    return OnlineState(
        resp_sum=(1 - gamma) * state.resp_sum + gamma * b_sum,
        resp_x=(1 - gamma) * state.resp_x + gamma * b_x,
        resp_obs=obs,
        n_seen=state.n_seen + batch.n,
        n_batches=state.n_batches + 1,
        loglik_avg=(1 - gamma) * state.loglik_avg + gamma * b_ll,
    )


def online_m_step(
    state: OnlineState,
    alpha: float = 1.0,
    beta: float = 1.0,
    weight_concentration: float = 1.0,
    *,
    prev_means: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP M-step on the running statistics, scaled to the rows seen so far."""
    n = state.n_seen
    stats = SuffStats(
        n=n,
        resp_sum=state.resp_sum * n,
        resp_x=state.resp_x * n,
        resp_obs=None if state.resp_obs is None else state.resp_obs * n,
        loglik=state.loglik_avg * n,
    )
    return m_step_from_stats(stats, alpha, beta, weight_concentration, prev_means=prev_means)


def partial_fit_step(estimator: Any, X: Any, decay: float = 0.6, offset: float = 2.0) -> Any:
    """One stepwise-EM update of ``estimator`` (a BernoulliMixture) on the batch ``X``.

    The first call (or the first after ``fit``) starts the running statistics: from the
    fitted parameters when the estimator is fitted, else from an initialisation on this
    batch (``init_params``, ``means_init``/``weights_init``). Each call then runs one
    E-step on the batch, folds its statistics in with step γ_t and takes the M-step.
    ``history_`` records the batch's objective under the parameters it was scored with.
    """
    estimator._check_parameters()
    state: OnlineState | None = getattr(estimator, "_online_state", None)
    fitted = hasattr(estimator, "means_")
    if fitted and getattr(estimator, "_online_means", None) is not estimator.means_:
        state = None  # refitted (or loaded) since the last partial_fit: start afresh
    X = estimator._validate_X(X, reset=not fitted)
    if X.shape[0] == 0:
        raise ValueError("X: a partial_fit batch must contain at least one row")
    backend = estimator._backend()
    data = estimator._prepare(X, backend)
    if fitted:
        params = estimator._get_fitted()
    else:
        rng = check_random_state(estimator.random_state)
        params = estimator._initialize(data, None, rng)
        state = None
    weights, means = params
    stats = estimator._make_stats_fn(data, None, backend, patterns=False)(params)
    objective = estimator._objective(stats, params)
    state = stepwise_update(state, stats, decay, offset)
    weights, means = online_m_step(
        state,
        estimator.alpha,
        estimator.beta,
        estimator.weight_concentration,
        prev_means=means,
    )
    estimator.weights_, estimator.means_ = weights, means
    record_step(estimator, objective, fitted)
    estimator._online_state = state
    estimator._online_means = means
    return estimator


def record_step(model: Any, objective: float, fitted: bool) -> None:
    """The trace of one ``partial_fit`` step (every estimator's): ``history_`` gains the
    batch's objective (a fresh history unless the model was ``fitted`` before the step),
    ``n_iter_`` counts the steps, ``converged_`` is False, ``lower_bound_`` the objective."""
    history = list(getattr(model, "history_", [])) if fitted else []
    model.history_ = np.asarray([*history, objective])
    model.n_iter_ = int(getattr(model, "n_iter_", 0)) + 1 if fitted else 1
    model.converged_ = False
    model.lower_bound_ = objective
