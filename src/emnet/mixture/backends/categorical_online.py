"""Stepwise (online) EM for :class:`~emnet.mixture.CategoricalMixture`: ``partial_fit``.

The running per-row averages of the compiled E-step's statistics (Σ w η, the answer
counts, the observed counts, Σ w log p; :func:`~emnet.mixture.kernels.codes.code_stats`)
move towards each batch's averages, s ← (1 − η_t) s + η_t s_b with η_t = (t + 2)^(−0.6)
(η_0 = 1; :func:`emnet.mixture.backends.online.step_size`, Cappé & Moulines 2009), and
the compiled MAP M-step runs on them scaled to the rows seen so far (so the Dirichlet
priors keep their weight relative to the data).

The first call on an unfitted model learns the answers (``categories_``) and the start
(``init_params``) from its batch: a later batch may not hold an answer the first did not.
On a fitted model the first call starts from the fitted parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from sklearn.utils import check_random_state

from emnet.mixture.backends.online import record_step, step_size
from emnet.mixture.core.validation import check_weights
from emnet.mixture.kernels.codes import CodeStats, categorical_m_from, code_stats, compress_rows

__all__ = ["CodedOnlineState", "partial_fit_step"]


class CodedOnlineState(NamedTuple):
    """Running per-row statistics (``CodeStats`` divided by Σ w), rows and batches seen."""

    stats: CodeStats
    n_seen: float
    n_batches: int


def _scaled(s: CodeStats, f: float) -> CodeStats:
    return CodeStats(s.n * f, s.resp_sum * f, s.counts * f, s.obs * f, s.loglik * f)


def _mix(a: CodeStats, b: CodeStats, eta: float) -> CodeStats:
    x, y = _scaled(a, 1.0 - eta), _scaled(b, eta)
    return CodeStats(x.n + y.n, x.resp_sum + y.resp_sum, x.counts + y.counts, x.obs + y.obs,
                     x.loglik + y.loglik)  # fmt: skip


def partial_fit_step(
    model: Any, X: Any, sample_weight: Any = None, *, decay: float = 0.6, offset: float = 2.0
) -> Any:
    """One stepwise-EM update of ``model`` (a CategoricalMixture) on the batch X."""
    model._check_parameters()
    fitted = hasattr(model, "log_table_")
    state: CodedOnlineState | None = getattr(model, "_online_state", None)
    if not fitted or getattr(model, "_online_table", None) is not model.log_table_:
        state = None  # fitted, refitted or loaded since the last partial_fit: afresh
    codes = model._coded(X, reset=not fitted)
    w = check_weights(sample_weight, codes.shape[0])
    patterns, totals, _ = compress_rows(codes, w)
    keep = totals > 0
    if not keep.any():
        raise ValueError("X: a partial_fit batch needs rows of positive weight")
    patterns, totals = np.ascontiguousarray(patterns[keep]), totals[keep]
    if fitted:
        params = model._get_fitted()
    else:
        params = model._initialize(codes, w, check_random_state(model.random_state))
    offsets = model._item_offsets
    batch = code_stats(patterns, totals, offsets, params.log_weights, params.log_table, True)
    objective = (batch.loglik + model._log_prior(params)) / batch.n
    mean = _scaled(batch, 1.0 / batch.n)
    if state is None:
        state = CodedOnlineState(mean, batch.n, 1)
    else:
        eta = step_size(state.n_batches, decay, offset)
        state = CodedOnlineState(
            _mix(state.stats, mean, eta), state.n_seen + batch.n, state.n_batches + 1
        )
    s = _scaled(state.stats, state.n_seen)
    a, c = float(model.prob_concentration), float(model.weight_concentration)
    log_w, log_t = categorical_m_from(s.counts, s.resp_sum, s.obs, offsets, params.log_table,
                                      a, c, True)  # fmt: skip
    model._set_fitted(type(params)(log_w, log_t))
    record_step(model, objective, fitted)
    model._online_state = state
    model._online_table = model.log_table_
    return model
