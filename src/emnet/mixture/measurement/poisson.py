"""Poisson counts: one rate λ_kj per class and column (SPEC §1c).

log f(x_i | k) = Σ_j over observed j [x_ij log λ_kj − λ_kj − log x_ij!]; missing entries
drop out. M-step: λ_kj = Σ_i r_ik x_ij / Σ_i r_ik [x_ij observed], held at or above
:data:`RATE_FLOOR` × the column's mean (a class with only zeros in a column would have
λ = 0 and log λ = −∞; the floor keeps the unconstrained form, log λ, finite; the M-step
is then the exact maximiser over λ ≥ floor, so EM stays monotone).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import gammaln

from emnet.mixture.measurement.base import (
    MomentsMeasurement,
    ProfileItem,
    nan_filled,
    table_rows,
)

RATE_FLOOR = 1e-10


class PoissonParams(NamedTuple):
    """rates (K, D)."""

    rates: np.ndarray


class PoissonStats(NamedTuple):
    """Σ r [observed] (K, D), Σ r x (K, D)."""

    n_obs: np.ndarray
    sum_x: np.ndarray


def check_counts(X: np.ndarray, columns: Any = None) -> None:
    """Raise ValueError unless every observed entry is a non-negative integer."""
    bad = ~np.isnan(X) & ((X < 0) | (np.round(X) != X) | ~np.isfinite(X))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        name = j if columns is None else columns[j]
        raise ValueError(
            f"Poisson column {name!r}: expected non-negative whole numbers, got {X[i, j]!r} "
            f"in row {i}"
        )


class Poisson(MomentsMeasurement):
    """A block of Poisson count columns."""

    name = "poisson"

    def __init__(self) -> None:
        self.floor: np.ndarray | None = None
        self.center: np.ndarray | None = None

    def use_moments(self, mean: np.ndarray, var: np.ndarray) -> None:
        """The column means: the centre and the rate floor's scale."""
        self.center = mean
        self.floor = RATE_FLOOR * np.where(mean > 0, mean, 1.0)

    def prepare(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if isinstance(X, tuple):
            return X
        X = np.asarray(X, dtype=np.float64)
        X0, obs = nan_filled(X)
        return X0, obs, (gammaln(X0 + 1.0) * obs).sum(axis=1)

    def log_likelihood(self, params: PoissonParams, X: Any) -> np.ndarray:
        X0, obs, log_fact = self.prepare(X)
        rates = params.rates
        return X0 @ np.log(rates).T - obs @ rates.T - log_fact[:, None]

    def sufficient_stats(
        self, params: PoissonParams, X: Any, resp: np.ndarray, sample_weight: np.ndarray | None
    ) -> PoissonStats:
        X0, obs, _ = self.prepare(X)
        r = resp if sample_weight is None else resp * sample_weight[:, None]
        return PoissonStats(r.T @ obs, r.T @ X0)

    def add_stats(self, a: PoissonStats, b: PoissonStats) -> PoissonStats:
        return PoissonStats(a.n_obs + b.n_obs, a.sum_x + b.sum_x)

    def m_step(self, stats: PoissonStats) -> PoissonParams:
        n = np.where(stats.n_obs > 0, stats.n_obs, 1.0)
        rates = np.where(stats.n_obs > 0, stats.sum_x / n, self.center)
        return PoissonParams(np.maximum(rates, self.floor))

    def n_parameters(self, n_components: int) -> int:
        return n_components * (len(self.floor) if self.floor is not None else 0)

    def to_unconstrained(self, params: PoissonParams) -> np.ndarray:
        return np.log(params.rates).ravel()

    def from_unconstrained(self, vector: np.ndarray, like: PoissonParams) -> PoissonParams:
        return PoissonParams(np.exp(vector).reshape(like.rates.shape))

    def initialize(
        self, X: Any, resp: np.ndarray, sample_weight: np.ndarray | None
    ) -> PoissonParams:
        """Rates of the partition, shrunk towards the column means by one pseudo-row."""
        stats = self.sufficient_stats(None, X, resp, sample_weight)
        rates = (stats.sum_x + self.center) / (stats.n_obs + 1.0)
        return PoissonParams(np.maximum(rates, self.floor))

    def sample(
        self, params: PoissonParams, z: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        return rng.poisson(params.rates[z]).astype(np.float64)

    def permute(self, params: PoissonParams, perm: np.ndarray) -> PoissonParams:
        return PoissonParams(params.rates[perm])

    def profile_items(
        self, params: PoissonParams, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[ProfileItem]:
        """One "level" item per column: class rates (= within-class variances), SEs."""
        s = None if se is None else np.asarray(se["rates"], dtype=np.float64)
        return [
            ProfileItem(name, "level", params.rates[:, j].copy(),
                        None if s is None else s[:, j].copy(), variances=params.rates[:, j].copy(),
                        scale="count")
            for j, name in enumerate(names)
        ]  # fmt: skip

    def to_arrays(self, params: PoissonParams) -> dict[str, np.ndarray]:
        return {"rates": np.asarray(params.rates)}

    def from_arrays(self, arrays: dict[str, np.ndarray]) -> PoissonParams:
        return PoissonParams(np.asarray(arrays["rates"], np.float64))

    def class_means(self, params: PoissonParams) -> np.ndarray:
        return params.rates

    def check_input(self, X: np.ndarray, names: list[Any]) -> None:
        """Every observed entry must be a non-negative integer."""
        check_counts(X, names)

    def fitted_attributes(
        self, params: PoissonParams, n_components: int, names: list[Any]
    ) -> dict[str, Any]:
        """``rates_``: (K, D)."""
        return {"rates_": params.rates.copy()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The columns' floor and center (learned by :meth:`setup`)."""
        return {"floor": self.floor, "center": self.center}

    def load_state(
        self, take: Any, n_components: int, n_columns: int, saved_json: Any
    ) -> PoissonParams:
        self.floor, self.center = take("floor", (n_columns,)), take("center", (n_columns,))
        rates = take("rates", (n_components, n_columns))
        if np.any(rates <= 0):
            raise ValueError("poisson_rates must be positive")
        return self.from_arrays({"rates": rates})

    def summary_rows(
        self, params: PoissonParams, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[dict[str, Any]]:
        """The rate of every column per class."""
        s = np.full(params.rates.shape, np.nan) if se is None else se["rates"]
        return table_rows("rate", params.rates, s, names)

    # -- the backends' pieces (emnet.mixture.measurement.base) ------------------------------
    def features(self, chunk: Any) -> tuple[np.ndarray, np.ndarray]:
        """Phi = [x (0 where missing), observed] (n, 2D); base = −Σ_j log x_ij!."""
        X0, obs, log_fact = self.prepare(chunk)
        return np.hstack([X0, obs]), -log_fact

    def natural_params(self, params: PoissonParams) -> tuple[np.ndarray, np.ndarray]:
        """W = [log λᵀ; −λᵀ] (2D, K), c = 0."""
        rates = params.rates
        return np.vstack([np.log(rates).T, -rates.T]), np.zeros(rates.shape[0])

    def stats_from_moments(
        self, params: PoissonParams, moments: np.ndarray, nk: np.ndarray
    ) -> PoissonStats:
        D = moments.shape[1] // 2
        return PoissonStats(moments[:, D:].copy(), moments[:, :D].copy())
