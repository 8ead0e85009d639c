"""EM step by step with the pure functions of :mod:`emnet.mixture`: the trace §1 plots
(L, Q, H per iteration, eq. 7–9) and the random-row start the errata reuse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trace:
    """EM step by step: per-sample L(θₜ), Q(θₜ₊₁|θₜ), H(ηₜ) for t = 0..T−1, plus checks."""

    weights0: np.ndarray
    means0: np.ndarray
    loglik: np.ndarray
    q: np.ndarray
    entropy: np.ndarray
    identity_error: float
    bound_violation: float


def initial_parameters(
    X: np.ndarray, n_components: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform weights and means at ``n_components`` distinct random rows, pulled halfway
    to 1/2 (so no mean starts at 0 or 1)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(X.shape[0], size=n_components, replace=False)
    means = 0.5 * X[rows].astype(float) + 0.25
    weights = np.full(n_components, 1.0 / n_components)
    return weights, means


def em_trace(X: np.ndarray, n_components: int, n_iter: int, seed: int) -> Trace:
    """Run ``n_iter`` EM iterations with the pure functions of :mod:`emnet.mixture`."""
    from emnet.mixture.kernels.bernoulli_math import e_step, expected_complete_loglik, m_step

    n = X.shape[0]
    weights, means = initial_parameters(X, n_components, seed)
    w0, m0 = weights.copy(), means.copy()
    L, Q, H, ident = [], [], [], []
    violation = 0.0
    for _ in range(n_iter):
        log_resp, log_prob = e_step(X, weights, means)
        resp = np.exp(log_resp)
        ll = float(np.sum(log_prob)) / n
        ent = float(-np.sum(np.where(resp > 0, resp * log_resp, 0.0))) / n
        q_same = _per_sample(expected_complete_loglik(X, resp, weights, means), n)
        ident.append(abs(ll - (q_same + ent)))
        weights, means = m_step(X, resp)
        q_next = _per_sample(expected_complete_loglik(X, resp, weights, means), n)
        if L:
            # the previous step's bound: L(θₜ) ≥ Q(θₜ|θₜ₋₁) + H(ηₜ₋₁) ≥ L(θₜ₋₁)
            violation = max(violation, Q[-1] + H[-1] - ll, L[-1] - (Q[-1] + H[-1]))
        L.append(ll)
        Q.append(q_next)
        H.append(ent)
    return Trace(
        weights0=w0,
        means0=m0,
        loglik=np.array(L),
        q=np.array(Q),
        entropy=np.array(H),
        identity_error=float(max(ident)) if ident else 0.0,
        bound_violation=max(0.0, violation),
    )


def _per_sample(q: float, n: int) -> float:
    """eq. 7 is a sum over samples; the report shows it per sample like L."""
    return float(q) / n
