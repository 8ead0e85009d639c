"""The observed information from an exact gradient, and its inverse (standard errors).

The log-likelihoods of the latent class models have exact gradients (the per-row scores),
but their Hessians are long to write out. :func:`observed_information` differentiates the
gradient by central differences, one coordinate at a time (2·P gradient evaluations; step
1e-5·max(1, |x|), error O(h²) ≈ 1e-10 relative), and symmetrises the result. It is tested
against second differences of the log-likelihood itself (tests/test_mixture_stats.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def observed_information(grad: Callable[[np.ndarray], np.ndarray], x0: np.ndarray) -> np.ndarray:
    """−∂²f/∂x² at ``x0`` (P, P) from ``grad`` = ∂f/∂x (a function of a flat vector)."""
    x0 = np.asarray(x0, dtype=np.float64).ravel()
    P = len(x0)
    H = np.empty((P, P))
    for i in range(P):
        h = 1e-5 * max(1.0, abs(x0[i]))
        up, down = x0.copy(), x0.copy()
        up[i] += h
        down[i] -= h
        H[:, i] = (np.ravel(grad(up)) - np.ravel(grad(down))) / (2 * h)
    return -(H + H.T) / 2


def covariance(info: np.ndarray) -> np.ndarray:
    """The inverse of an information matrix (the pseudo-inverse where it is singular or
    the inverse is not finite)."""
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(info)
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
        return np.linalg.pinv(info)
    return cov


STEP = 1e-4
"""Relative step of the family's central differences (times max(1, |u_a|))."""


def difference_steps(u: np.ndarray) -> np.ndarray:
    """The central-difference step of every coordinate of u: STEP · max(1, |u_a|)."""
    return STEP * np.maximum(1.0, np.abs(u))


def five_point_jacobian(
    f: Callable[[np.ndarray], np.ndarray], u: np.ndarray, coords: Any, h: np.ndarray
) -> np.ndarray:
    """∂f/∂u over the coordinates ``coords`` of u, (len(f(u)), len(coords)), by five-point
    central differences with steps ``h`` (per coordinate of u): exactly 0 where a
    coordinate does not enter f."""
    base = f(u)
    cols = []
    for a in coords:
        vals = {}
        for c in (-2, -1, 1, 2):
            us = u.copy()
            us[a] += c * h[a]
            vals[c] = f(us) - base
        cols.append((vals[-2] - 8.0 * vals[-1] + 8.0 * vals[1] - vals[2]) / (12.0 * h[a]))
    return np.column_stack(cols) if cols else np.zeros((len(base), 0))
