"""Stepwise (online) EM for the latent class family: ``LatentClassModel.partial_fit``.

Stepwise EM (Sato & Ishii 2000; Cappé & Moulines 2009) keeps a running average ``s`` of
the per-row expected complete-data statistics — Σ w, Σ w log p, Σ w η and every block's
``sufficient_stats``, each divided by the batch's Σ w — and after each batch b moves it
towards the batch's average:

    s ← (1 − η_t) s + η_t s_b,      η_t = (t + t₀)^(−κ) (κ = 0.6, t₀ = 2; η_0 = 1)

(the rule of :func:`emnet.mixture.backends.online.step_size`), then runs the model's
M-step (the class shares and every block's ``m_step``) on ``s`` scaled to the rows seen
so far, so a block's prior keeps its weight relative to the data. Only the contract's
``scale_stats`` and ``add_stats`` are used, so every measurement type works.

The first call on an unfitted model learns the blocks' data constants (``setup``: the
Gaussian centre and variance floor, the categorical answers) and the start
(``init_params``) from its batch: a later batch may not hold an answer that the first
did not. On a fitted model the first call starts from the fitted parameters. The batch
may be a Dask collection (its statistics are then computed on the cluster).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sklearn.utils import check_random_state

from emnet.mixture.backends.family_common import (
    FamilyStats,
    add_family_stats,
    scale_family_stats,
)
from emnet.mixture.backends.online import record_step, step_size

__all__ = ["FamilyOnlineState", "partial_fit_step"]


class FamilyOnlineState(NamedTuple):
    """The running per-row statistics, the rows seen and the batches seen (t)."""

    stats: FamilyStats
    n_seen: float
    n_batches: int


def partial_fit_step(
    model: Any,
    X: Any,
    sample_weight: Any = None,
    *,
    decay: float = 0.6,
    offset: float = 2.0,
) -> Any:
    """One stepwise-EM update of ``model`` (a LatentClassModel) on the batch X."""
    model._check_parameters()
    fitted = hasattr(model, "weights_") and hasattr(model, "_params")
    state: FamilyOnlineState | None = getattr(model, "_online_state", None)
    if not fitted or getattr(model, "_online_params", None) is not model._params:
        state = None  # fitted, refitted or loaded since the last partial_fit: afresh
    fit_data = model._prepare_fit(X, sample_weight, reset=not fitted)
    if fitted:
        params = model._params
    else:
        rng = check_random_state(model.random_state)
        params = model._initialize(fit_data.data, fit_data.sample_weight, rng)
    blocks = [m for m, _ in model._blocks]
    batch = fit_data.stats(params)
    if not batch.n > 0:
        raise ValueError("X: a partial_fit batch needs rows of positive weight")
    objective = model._objective(batch, params)
    mean = scale_family_stats(blocks, batch, 1.0 / batch.n)
    if state is None:
        state = FamilyOnlineState(mean, float(batch.n), 1)
    else:
        eta = step_size(state.n_batches, decay, offset)
        old = scale_family_stats(blocks, state.stats, 1.0 - eta)
        new = scale_family_stats(blocks, mean, eta)
        summed = add_family_stats(blocks, old, new)
        state = FamilyOnlineState(summed, state.n_seen + batch.n, state.n_batches + 1)
    params = model._m_step(scale_family_stats(blocks, state.stats, state.n_seen), params)
    model._set_fitted(params)
    record_step(model, objective, fitted)
    model._online_state = state
    model._online_params = params
    return model
