"""Gaussian items (latent profile analysis) with mclust's four covariance structures.

Class k draws x ~ N(μ_k, Σ_k). ``structure`` (mclust's names; scikit-learn's in brackets):

- ``"EEI"``: one diagonal covariance shared by the classes (D variances);
- ``"VVI"`` ["diag"]: a diagonal covariance per class (K·D);
- ``"EEE"`` ["tied"]: one full covariance shared by the classes (D(D+1)/2);
- ``"VVV"`` ["full"]: a full covariance per class (K·D(D+1)/2);

plus K·D means. The stored covariance is in the structure's compact form (VVV (K, D, D),
VVI (K, D), EEE (D, D), EEI (D,)); :func:`expand` gives (K, D, D) for every structure.

**Computation.** The block works on the rows centred at the column means c (so the sums
below stay well scaled whatever the columns' offsets). When no entry is missing, a row's
log-density is linear in its *features* φ(x) = (the products x_a x_b, a ≤ b — for the
diagonal structures the squares x_a² —, x, 1):
log f(x | k) = φ(x) · w_k with w_k built from Σ_k⁻¹, Σ_k⁻¹ μ_k and the constant. The
feature matrix Φ (n, F + D + 1) is built once per fit (when it fits in
:data:`FEATURE_BUDGET` entries), so an E-step is two matrix products: the
log-likelihoods Φ W (n, K) and the statistics Rᵀ Φ (K, F + D + 1), which hold N_k,
Σ r x and Σ r x xᵀ at once. The class factorisations are batched over the classes and
cached per covariance array, so the log prior and the unconstrained form of the same
parameters reuse them. The small per-iteration pieces (the factorisations, W, the M-step,
the unconstrained form) are compiled kernels: on small data an iteration is bound by the
number of numpy calls, not by the arithmetic.

**Missing entries** (NaN) are marginalised: a row contributes the density of its observed
sub-vector under the observed sub-vector of μ_k and sub-matrix of Σ_k. Rows are grouped
by missingness pattern, so each pattern costs one Cholesky factorisation per class. The
E-step is the exact one of EM with missing data: per class the missing entries are
replaced by their conditional expectation E[x_m | x_o, k] = μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o)
and the second moments receive the conditional covariance Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om. With
it EM never decreases the (penalised) log-likelihood. (For the diagonal structures the
conditional moments are simply μ_kj and σ²_kj.)

**Covariance floor** (``reg_covar``, default 1e-6). Let v_j be the (weighted) variance of
column j over its observed entries and Ψ = reg_covar · diag(v). The M-step is
Σ_k = (W_k + Ψ) / N_k (W_k the class's expected scatter, N_k = Σ_i w_i η_ik); for the
shared structures Σ = (Σ_k W_k + Ψ) / N. This is scikit-learn's ``reg_covar`` made
relative to each column's scale and written as the exact MAP M-step of an improper
inverse-Wishart prior, log p(Σ_k) = −½ tr(Ψ Σ_k⁻¹) (shape 0; the same form as the
conjugate priors of Fraley & Raftery 2007), so that EM still never decreases the
objective log-likelihood + log prior and the likelihood stays bounded
(Σ_k ⪰ Ψ / Σ_i w_i). With ``reg_covar=0`` the M-step is exactly scikit-learn's with
``reg_covar=0``.

**Degenerate (spurious) maxima** (:meth:`Gaussian.degenerate`). A class with its own
covariance can collapse onto a few (tied) points: its likelihood grows without a real
cluster (Day 1969; Hathaway 1985 bounds the ratio of the classes' variances for this
reason; Latent GOLD and mclust's ``priorControl`` add prior mass). A class is degenerate
when

1. its effective size N_k is below the fewest rows that determine its covariance:
   D + 1 for VVV, 2 for VVI (:data:`MIN_CLASS_SIZE`) — the shared structures pool the
   classes and have no such bound; or
2. the smallest eigenvalue of its covariance in the data's units is below
   :data:`EIGEN_FLOOR` = 1e-3: a direction in which the class has under 1/1000 of the
   data's variance in that direction — λ_min(T^{-1/2} Σ_k T^{-1/2}) with T the model's
   total covariance Σ_k π_k (Σ_k + (μ_k − μ̄)(μ_k − μ̄)ᵀ) (at a maximum, the data's
   covariance), so that strongly correlated columns (breast cancer's radius, perimeter
   and area) do not make every class look collapsed; for a diagonal covariance: a column
   whose class variance is below 1/1000 of its total variance; or
3. the condition number of that standardised covariance exceeds :data:`MAX_CONDITION`
   = 1e6.

On iris (VVV, K = 3) the well-known maximum −180.19 has λ_min ≈ 0.017 in these units;
the collapsed maxima of random starts have λ_min ≈ 1e-6 (the floor). ``LatentClassModel``
sets starts ending in a degenerate class aside and reports the best proper maximum.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np

from emnet.mixture.measurement.base import (
    InvalidParameters,
    MomentsMeasurement,
    ProfileItem,
    nan_filled,
    table_rows,
)

STRUCTURES = ("EEI", "VVI", "EEE", "VVV")
SKLEARN_NAMES = {"VVV": "full", "VVI": "diag", "EEE": "tied"}
EIGEN_FLOOR = 1e-3
"""A class covariance with a standardised eigenvalue below this is degenerate."""
MAX_CONDITION = 1e6
"""A class covariance whose standardised condition number exceeds this is degenerate."""
MIN_CLASS_SIZE = {"VVV": "D + 1", "VVI": "2", "EEE": "none", "EEI": "none"}
INIT_SHRINK = 1.0
"""Initial covariances are shrunk towards diag(v) with (D + 1) · this many pseudo-rows."""
FEATURE_BUDGET = 1 << 24
"""Complete data: the feature matrix Φ is built when it has at most this many entries
(128 MiB); otherwise the log-likelihoods and statistics are taken class by class."""
_LOG_2PI = math.log(2.0 * math.pi)
EMPTY_GUARD = 10.0 * np.finfo(np.float64).eps
"""Added to every class's N_k in the M-step: an empty class stays finite."""
SPLIT_MIN_SAVING = 10_000
"""Multiplications per E-step the shared covariances' split products must save (measured:
below it, the two extra numpy calls cost more; iris EEE stays whole, wine EEE splits)."""
_CACHE_SIZE = 4


class GaussianParams(NamedTuple):
    """means (K, D); covariances in the structure's compact form (see the module)."""

    means: np.ndarray
    covariances: np.ndarray


class GaussianStats(NamedTuple):
    """Additive E-step statistics about the column centre c: Σ r (K,), Σ r (x̂ − c)
    (K, D), Σ r E[(x − c)(x − c)ᵀ] ((K, D, D) full, (K, D) diagonal). The shared
    structures' M-step uses only the sum of ``sum_xx`` over the classes (the split
    feature path, :meth:`Gaussian._split_features`, gives that sum in class 0)."""

    nk: np.ndarray
    sum_x: np.ndarray
    sum_xx: np.ndarray


class GaussianChunk(NamedTuple):
    """Rows centred at the column means (NaN missing), grouped by missingness pattern:
    (observed columns, row indices) per group; ``features``: Φ of complete rows (or
    None: rows with missing entries, or Φ over :data:`FEATURE_BUDGET`)."""

    X: np.ndarray
    groups: list[tuple[np.ndarray, np.ndarray]]
    complete: bool
    features: np.ndarray | None = None


class _Factor(NamedTuple):
    """Cholesky factors L (M, D, D) of the M distinct full covariances, L⁻¹, Σ⁻¹ and
    log det Σ (M,)."""

    chol: np.ndarray
    chol_inv: np.ndarray
    precision: np.ndarray
    logdet: np.ndarray


def is_diagonal(structure: str) -> bool:
    return structure in ("EEI", "VVI")


def is_shared(structure: str) -> bool:
    return structure in ("EEI", "EEE")


def expand(covariances: np.ndarray, structure: str, K: int) -> np.ndarray:
    """(K, D, D) covariances from the structure's compact form."""
    c = np.asarray(covariances, dtype=np.float64)
    if structure == "VVV":
        return c.copy()
    if structure == "EEE":
        return np.repeat(c[None], K, axis=0)
    diag = np.repeat(c[None], K, axis=0) if structure == "EEI" else c
    D = diag.shape[1]
    out = np.zeros((K, D, D))
    idx = np.arange(D)
    out[:, idx, idx] = diag
    return out


NOT_POSITIVE_DEFINITE = (
    "a class covariance is not positive definite (a class collapsed onto a few points); "
    "use reg_covar > 0"
)


def _factor(S: np.ndarray) -> _Factor:
    """The factorisation of a stack (M, D, D) of covariances (batched over M)."""
    L, Linv, P, logdet, ok = _factor_kernel(np.ascontiguousarray(S, dtype=np.float64))
    if not ok:
        raise InvalidParameters(NOT_POSITIVE_DEFINITE)
    return _Factor(L, Linv, P, logdet)


class Gaussian(MomentsMeasurement):
    """A block of Gaussian columns (see the module docstring)."""

    name = "gaussian"
    init_options = ("means_init", "covariances_init")

    def __init__(self, structure: str = "VVI", reg_covar: float = 1e-6) -> None:
        if structure not in STRUCTURES:
            raise ValueError(f"covariance: expected one of {STRUCTURES}, got {structure!r}")
        self.structure = structure
        self.reg_covar = float(reg_covar)
        self.scale: np.ndarray | None = None  # column variances v (setup)
        self.center: np.ndarray | None = None  # column means (setup)
        self._factors: list[tuple[np.ndarray, _Factor]] = []

    # -- data ------------------------------------------------------------------------------
    def use_moments(self, mean: np.ndarray, var: np.ndarray) -> None:
        """The column centre and the variances the covariance floor is relative to. A
        column whose observed values are all equal is refused, named: it has no
        variance to model, and its class variances would sit on the floor (every start
        "collapsed")."""
        constant = np.flatnonzero(~(var > 0))
        if len(constant):
            j = int(constant[0])
            name = self.labels[j] if self.labels is not None else j
            raise ValueError(
                f"column {name!r}: every observed value is {float(mean[j]):g}; a constant "
                "continuous column cannot tell the classes apart: leave it out"
            )
        self.center = mean
        self.scale = var  # every variance > 0 (the check above)

    def _shift(self, D: int) -> np.ndarray:
        return self.center if self.center is not None else np.zeros(D)

    def prepare(self, X: Any) -> GaussianChunk:
        if isinstance(X, GaussianChunk):
            return X
        X = np.asarray(X, dtype=np.float64)
        n, D = X.shape
        X = X - self._shift(D)
        observed = ~np.isnan(X)
        if observed.all():
            F = D if is_diagonal(self.structure) else D * (D + 1) // 2
            features = None
            if n * (F + D + 1) <= FEATURE_BUDGET:
                features = _feature_matrix(X, is_diagonal(self.structure))
            return GaussianChunk(X, [(np.arange(D), np.arange(n))], True, features)
        patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
        groups = [
            (np.flatnonzero(patterns[g]), order[bounds[g] : bounds[g + 1]])
            for g in range(len(patterns))
        ]
        return GaussianChunk(X, groups, False)

    def _reg(self) -> np.ndarray:
        """Ψ's diagonal reg_covar · v (kept while the scale array and reg_covar are)."""
        memo = getattr(self, "_reg_memo", None)
        if memo is not None and memo[0] is self.scale and memo[1] == self.reg_covar:
            return memo[2]
        reg = self.reg_covar * self.scale
        self._reg_memo = (self.scale, self.reg_covar, reg)
        return reg

    def _split_features(self, chunk: GaussianChunk, K: int) -> bool:
        """A shared covariance's Φ products split in two: the quadratic features (the
        same weights in every class; only Σ_k of their statistics is used) as one
        column, the rest per class — when the products saved, (K − 1) · F · n, outweigh
        two more numpy calls (:data:`SPLIT_MIN_SAVING`)."""
        if chunk.features is None or not is_shared(self.structure):
            return False
        n, P = chunk.features.shape
        F = P - chunk.X.shape[1] - 1
        return (K - 1) * F * n >= SPLIT_MIN_SAVING

    def _factors_of(self, covariances: np.ndarray) -> _Factor:
        """The factorisation of a full structure's covariances (cached per array: the
        E-step, the log prior and the unconstrained form of one parameter value share
        it)."""
        cache = getattr(self, "_factors", [])
        for key, value in cache:
            if key is covariances:
                return value
        mats = covariances if self.structure == "VVV" else covariances[None]
        value = _factor(mats)
        self._factors = [(covariances, value), *cache[: _CACHE_SIZE - 1]]
        return value

    # -- likelihood ------------------------------------------------------------------------
    def _feature_weights(self, params: GaussianParams, K: int) -> np.ndarray:
        """W (F + D + 1, K): log f(x | k) = φ(x) · W[:, k] on centred rows."""
        means = params.means
        center = self._shift(means.shape[1])
        if is_diagonal(self.structure):
            var = np.asarray(params.covariances, dtype=np.float64)
            return _diag_weights(var.reshape(-1, means.shape[1]), means, center)
        f = self._factors_of(params.covariances)
        return _full_weights(f.precision, f.logdet, means, center)

    def log_likelihood(self, params: GaussianParams, X: Any) -> np.ndarray:
        chunk = self.prepare(X)
        K = params.means.shape[0]
        if chunk.features is not None:
            W = self._feature_weights(params, K)
            F = W.shape[0] - chunk.X.shape[1] - 1
            if not self._split_features(chunk, K):
                return chunk.features @ W
            out = chunk.features[:, F:] @ W[F:]  # the shared covariance: its quadratic
            out += (chunk.features[:, :F] @ W[:F, 0])[:, None]  # part is one column
            return out
        mc = params.means - self._shift(params.means.shape[1])
        if is_diagonal(self.structure):
            var = expand_diag(params.covariances, self.structure, K)  # (K, D)
            X0, obs = nan_filled(chunk.X)
            inv = 1.0 / var
            # Σ_j obs_ij [log 2πσ² + (x − μ)²/σ²] = obs@(log2πσ² + μ²/σ²) − 2 x@(μ/σ²) + x²@(1/σ²)
            quad = (X0**2) @ inv.T - 2.0 * X0 @ (mc * inv).T
            const = obs @ (_LOG_2PI + np.log(var) + mc**2 * inv).T
            return -0.5 * (quad + const)
        if chunk.complete:
            f = self._factors_of(params.covariances)
            out = np.empty((chunk.X.shape[0], K))
            for k in range(K):
                j = k if len(f.logdet) == K else 0
                z = (chunk.X - mc[k]) @ f.chol_inv[j].T
                out[:, k] = -0.5 * (len(mc[k]) * _LOG_2PI + f.logdet[j] + (z * z).sum(axis=1))
            return out
        covs = expand(params.covariances, self.structure, K)
        out = np.empty((chunk.X.shape[0], K))
        for o, rows in chunk.groups:
            if len(o) == 0:
                out[rows] = 0.0
                continue
            f = _factor(covs[:, o[:, None], o])
            diff = chunk.X[np.ix_(rows, o)][None] - mc[:, None, o]  # (K, n_g, |o|)
            z = np.matmul(diff, np.swapaxes(f.chol_inv, 1, 2))
            quad = (z * z).sum(axis=2)  # (K, n_g)
            out[rows] = -0.5 * (len(o) * _LOG_2PI + f.logdet[None, :] + quad.T)
        return out

    def weighted_terms(self, params: GaussianParams, X: Any, weights: np.ndarray) -> np.ndarray:
        """Complete rows: log f(x_i | k) = φ(x_i) · W_k, so Σ_ik weights_ik log f = Σ_k S_k ·
        W_k with S = weightsᵀ Φ (K, F + D + 1), summed over the rows once per ``weights``
        array: the terms S ⊙ Wᵀ cost no pass over the rows (the observed information of a
        30-column VVV block: minutes to seconds). Rows with missing entries: the default."""
        chunk = self.prepare(X)
        if chunk.features is None:
            return super().weighted_terms(params, chunk, weights)
        memo = getattr(self, "_weighted_memo", None)
        if memo is None or memo[0] is not weights or memo[1] is not chunk.features:
            memo = (weights, chunk.features, weights.T @ chunk.features)
            self._weighted_memo = memo
        return memo[2] * self._feature_weights(params, weights.shape[1]).T

    def sufficient_stats(
        self,
        params: GaussianParams,
        X: Any,
        resp: np.ndarray,
        sample_weight: np.ndarray | None,
    ) -> GaussianStats:
        chunk = self.prepare(X)
        r = resp if sample_weight is None else resp * sample_weight[:, None]
        K = resp.shape[1]
        D = chunk.X.shape[1]
        if chunk.features is not None:
            F = chunk.features.shape[1] - D - 1
            if self._split_features(chunk, K):  # the classes' Σ r φ_quad summed, in class 0
                S = np.empty((K, chunk.features.shape[1]))
                S[:, F:] = r.T @ chunk.features[:, F:]
                S[0, :F] = (r @ np.ones(K)) @ chunk.features[:, :F]
                S[1:, :F] = 0.0
            else:
                S = r.T @ chunk.features  # (K, F + D + 1)
            sum_xx = S[:, :F] if is_diagonal(self.structure) else _unpack_pairs(S, D)
            return GaussianStats(S[:, -1].copy(), S[:, F : F + D], sum_xx)
        nk = r.sum(axis=0)
        if is_diagonal(self.structure):
            mc = params.means - self._shift(D)
            var = expand_diag(params.covariances, self.structure, K)
            X0, obs = nan_filled(chunk.X)
            miss = r.T @ (1.0 - obs)  # (K, D): Σ r over rows missing column j
            sum_x = r.T @ X0 + mc * miss
            sum_xx = r.T @ (X0**2) + (mc**2 + var) * miss
            return GaussianStats(nk, sum_x, sum_xx)
        if chunk.complete:
            sum_x = r.T @ chunk.X
            sum_xx = np.empty((K, D, D))
            for k in range(K):
                sum_xx[k] = (chunk.X * r[:, k : k + 1]).T @ chunk.X
            return GaussianStats(nk, sum_x, sum_xx)
        mc = params.means - self._shift(D)
        covs = expand(params.covariances, self.structure, K)
        sum_x = np.zeros((K, D))
        sum_xx = np.zeros((K, D, D))
        for o, rows in chunk.groups:
            m = np.setdiff1d(np.arange(D), o)
            Xo = chunk.X[np.ix_(rows, o)]
            rg = r[rows]  # (n_g, K)
            Xhat = np.empty((K, len(rows), D))
            Xhat[:, :, o] = Xo
            if len(m):
                if len(o):
                    f = _factor(covs[:, o[:, None], o])
                    S_om = covs[:, o[:, None], m]
                    # Bᵀ = Σ_oo⁻¹ Σ_om (K, |o|, |m|): E[x_m | x_o] = μ_m + (x_o − μ_o) Bᵀ
                    Bt = np.matmul(f.precision, S_om)
                    Xhat[:, :, m] = mc[:, None, m] + np.matmul(Xo[None] - mc[:, None, o], Bt)
                    C = covs[:, m[:, None], m] - np.matmul(np.swapaxes(S_om, 1, 2), Bt)
                else:
                    Xhat[:, :, m] = mc[:, None, m]
                    C = covs[:, m[:, None], m]
                sum_xx[:, m[:, None], m] += rg.sum(axis=0)[:, None, None] * C
            weighted = Xhat * rg.T[:, :, None]  # (K, n_g, D)
            sum_x += weighted.sum(axis=1)
            sum_xx += np.matmul(np.swapaxes(weighted, 1, 2), Xhat)
        return GaussianStats(nk, sum_x, sum_xx)

    def add_stats(self, a: GaussianStats, b: GaussianStats) -> GaussianStats:
        return GaussianStats(a.nk + b.nk, a.sum_x + b.sum_x, a.sum_xx + b.sum_xx)

    def m_step(self, stats: GaussianStats) -> GaussianParams:
        """Σ_k = (W_k + Ψ) / N_k (shared: (Σ_k W_k + Ψ) / N) with W_k the symmetrised
        scatter about the class mean (diagonal structures: floored at the smallest
        normal float), in one compiled pass."""
        step = _diag_m_step if is_diagonal(self.structure) else _full_m_step
        shared = is_shared(self.structure)
        center = self._shift(stats.sum_x.shape[1])
        means, cov = step(stats.nk, stats.sum_x, stats.sum_xx, self._reg(), center, shared)
        return GaussianParams(means, cov[0] if shared else cov)

    def log_prior(self, params: GaussianParams) -> float:
        if self.reg_covar == 0.0:
            return 0.0
        reg = self._reg()
        if is_diagonal(self.structure):
            cov = params.covariances
            return -0.5 * _prior_ratio(cov.reshape(-1, cov.shape[-1]), reg)
        return -0.5 * _prior_trace(self._factors_of(params.covariances).precision, reg)

    def n_parameters(self, n_components: int) -> int:
        K, D = n_components, len(self.scale) if self.scale is not None else 0
        return K * D + covariance_parameters(self.structure, K, D)

    # -- unconstrained form: means, then log variances / Cholesky with log diagonal --------
    def to_unconstrained(self, params: GaussianParams) -> np.ndarray:
        cov = params.covariances
        if is_diagonal(self.structure):
            return _log_to_vector(params.means, cov.reshape(-1, cov.shape[-1]))
        return _chol_to_vector(params.means, self._factors_of(cov).chol)

    def unconstrained_size(self, params: GaussianParams) -> int:
        K, D = params.means.shape
        if is_diagonal(self.structure):
            return K * D + params.covariances.size
        return K * D + (K if self.structure == "VVV" else 1) * (D * (D + 1) // 2)

    def from_unconstrained(self, vector: np.ndarray, like: GaussianParams) -> GaussianParams:
        K, D = like.means.shape
        M = 1 if is_shared(self.structure) else K
        back = _vector_to_variances if is_diagonal(self.structure) else _vector_to_covariances
        means, cov = back(vector, K, M, D)
        return GaussianParams(means, cov[0] if is_shared(self.structure) else cov)

    # -- start, sampling, relabelling, arrays ----------------------------------------------
    def initialize(
        self, X: Any, resp: np.ndarray, sample_weight: np.ndarray | None
    ) -> GaussianParams:
        """Means and covariances of the partition ``resp`` on the mean-imputed data, the
        covariances shrunk towards diag(v) with (D + 1) pseudo-rows (so a small part
        still gives a positive definite start)."""
        chunk = self.prepare(X)
        Xf = np.where(np.isnan(chunk.X), 0.0, chunk.X)  # centred: the mean is 0
        r = resp if sample_weight is None else resp * sample_weight[:, None]
        K, D = resp.shape[1], Xf.shape[1]
        nk = r.sum(axis=0) + EMPTY_GUARD
        mc = (r.T @ Xf) / nk[:, None]
        lam = INIT_SHRINK * (D + 1)
        covs = np.empty((K, D, D))
        prior = lam * np.diag(self.scale)
        for k in range(K):
            d = Xf - mc[k]
            covs[k] = ((d * r[:, k : k + 1]).T @ d + prior) / (nk[k] + lam)
        if self.structure == "VVV":
            cov = covs
        elif self.structure == "VVI":
            cov = np.diagonal(covs, axis1=1, axis2=2).copy()
        else:
            pooled = np.einsum("k,kij->ij", nk + lam, covs) / (nk + lam).sum()
            cov = pooled if self.structure == "EEE" else np.diag(pooled).copy()
        return GaussianParams(mc + self._shift(D), cov)

    def sample(
        self, params: GaussianParams, z: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        K, D = params.means.shape
        covs = expand(params.covariances, self.structure, K)
        out = np.empty((len(z), D))
        for k in range(K):
            rows = np.flatnonzero(z == k)
            if len(rows):
                L = np.linalg.cholesky(covs[k])
                out[rows] = params.means[k] + rng.standard_normal((len(rows), D)) @ L.T
        return out

    def permute(self, params: GaussianParams, perm: np.ndarray) -> GaussianParams:
        cov = params.covariances if is_shared(self.structure) else params.covariances[perm]
        return GaussianParams(params.means[perm], cov)

    def to_arrays(self, params: GaussianParams) -> dict[str, np.ndarray]:
        return {"means": np.asarray(params.means), "covariances": np.asarray(params.covariances)}

    def from_arrays(self, arrays: dict[str, np.ndarray]) -> GaussianParams:
        return GaussianParams(
            np.asarray(arrays["means"], np.float64), np.asarray(arrays["covariances"], np.float64)
        )

    def class_means(self, params: GaussianParams) -> np.ndarray:
        return params.means

    def init_from(self, params: GaussianParams, given: dict[str, Any]) -> GaussianParams:
        """``means_init`` (K, D) and ``covariances_init`` (the structure's compact form)."""
        means, cov = params.means, params.covariances
        if given.get("means_init") is not None:
            means = np.asarray(given["means_init"], dtype=np.float64)
            if means.shape != params.means.shape:
                raise ValueError(f"means_init: expected shape {params.means.shape}, "
                                 f"got {means.shape}")  # fmt: skip
        if given.get("covariances_init") is not None:
            cov = np.asarray(given["covariances_init"], dtype=np.float64)
            if cov.shape != params.covariances.shape:
                raise ValueError(
                    f"covariances_init: expected shape {params.covariances.shape} for "
                    f"{self.structure}, got {cov.shape}"
                )
        return GaussianParams(means.copy(), cov.copy())

    def given_params(self, n_components: int, given: dict[str, Any]) -> GaussianParams | None:
        """The start when ``means_init`` and ``covariances_init`` are both given (checked
        by :meth:`init_from`), else None."""
        if given.get("means_init") is None or given.get("covariances_init") is None:
            return None
        K, D = n_components, len(self.scale)
        shape = compact_shape(self.structure, K, D)
        return self.init_from(GaussianParams(np.empty((K, D)), np.empty(shape)), given)

    def fitted_attributes(
        self, params: GaussianParams, n_components: int, names: list[Any]
    ) -> dict[str, Any]:
        """``covariances_``: (K, D, D) for every structure."""
        return {"covariances_": expand(params.covariances, self.structure, n_components)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The columns' scale and center (learned by :meth:`setup`)."""
        return {"scale": self.scale, "center": self.center}

    def load_state(
        self, take: Any, n_components: int, n_columns: int, saved_json: Any
    ) -> GaussianParams:
        K, d = n_components, n_columns
        self.scale, self.center = take("scale", (d,)), take("center", (d,))
        cov = take("covariances", compact_shape(self.structure, K, d))
        full = expand(cov, self.structure, K)
        if np.any(np.linalg.eigvalsh(full)[:, 0] <= 0) or np.any(
            np.abs(full - np.transpose(full, (0, 2, 1))) > 1e-8 * np.abs(full).max()
        ):
            raise ValueError("gaussian_covariances must be symmetric positive definite")
        return GaussianParams(take("means", (K, d)), cov)

    # -- the proper-maxima rule ------------------------------------------------------------
    def standardized_eigenvalues(
        self, params: GaussianParams, class_sizes: np.ndarray | None = None
    ) -> np.ndarray:
        """(K, D) eigenvalues of each class covariance in the data's units, ascending.

        Diagonal structures: the class variances over the columns' variances. Full
        structures: the generalised eigenvalues of Σ_k against the model's total
        covariance T = Σ_k π_k (Σ_k + (μ_k − μ̄)(μ_k − μ̄)ᵀ) with π_k the shares of
        ``class_sizes`` (the data's covariance at a maximum): the share of the data's
        variance in a direction that the class keeps, whatever the columns'
        correlations. Without ``class_sizes``: against V = diag(column variances)."""
        K = params.means.shape[0]
        if is_diagonal(self.structure):  # the standardised variances themselves
            return np.sort(expand_diag(params.covariances, self.structure, K) / self.scale, axis=1)
        covs = expand(params.covariances, self.structure, K)
        if class_sizes is None:
            s = 1.0 / np.sqrt(self.scale)
            return np.linalg.eigvalsh(covs * s[None, :, None] * s[None, None, :])
        pi = np.asarray(class_sizes, dtype=np.float64)
        pi = pi / pi.sum()
        centred = params.means - pi @ params.means
        total = np.einsum("k,kij->ij", pi, covs) + (centred.T * pi) @ centred
        s = 1.0 / np.sqrt(np.diag(total))  # the total in correlation units, then whitened
        factor = np.linalg.cholesky(total * s[:, None] * s[None, :])
        inv = np.linalg.inv(factor)
        own = covs[:1] if is_shared(self.structure) else covs  # shared: one factorisation
        whitened = inv[None] @ (own * s[None, :, None] * s[None, None, :]) @ inv.T[None]
        return np.broadcast_to(np.linalg.eigvalsh(whitened), (K, covs.shape[1]))

    def degenerate(self, params: GaussianParams, class_sizes: np.ndarray) -> np.ndarray:
        D = params.means.shape[1]
        eig = self.standardized_eigenvalues(params, class_sizes)
        bad = (eig[:, 0] < EIGEN_FLOOR) | (eig[:, -1] > MAX_CONDITION * eig[:, 0])
        if self.structure == "VVV":
            bad |= class_sizes < D + 1
        elif self.structure == "VVI":
            bad |= class_sizes < 2
        return bad

    # -- summary ---------------------------------------------------------------------------
    def describe(self) -> str:
        return f"gaussian, {self.structure} covariance"

    def profile_items(
        self, params: GaussianParams, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[ProfileItem]:
        """One "level" item per column: class means, within-class variances, mean SEs."""
        K, _ = params.means.shape
        var = expand_diag_of(params.covariances, self.structure, K)
        s = None if se is None else np.asarray(se["means"], dtype=np.float64)
        return [
            ProfileItem(name, "level", params.means[:, j].copy(),
                        None if s is None else s[:, j].copy(), variances=var[:, j].copy(),
                        scale="continuous")
            for j, name in enumerate(names)
        ]  # fmt: skip

    def summary_rows(
        self, params: GaussianParams, se: dict[str, np.ndarray] | None, names: list[str]
    ) -> list[dict[str, Any]]:
        """Means, variances, and (full structures) covariances per class; a shared
        structure's variances and covariances repeat in every class."""
        K, D = params.means.shape
        cov = expand(params.covariances, self.structure, K)
        if se is None:
            se = {"means": np.full((K, D), np.nan), "covariances": np.full_like(cov, np.nan)}
        se_cov = expand(se["covariances"], self.structure, K)
        idx = np.arange(D)
        rows = table_rows("mean", params.means, se["means"], names)
        rows += table_rows("variance", cov[:, idx, idx], se_cov[:, idx, idx], names)
        if not is_diagonal(self.structure):
            a, b = np.triu_indices(D, 1)
            pairs = [f"{names[i]} ~ {names[j]}" for i, j in zip(a, b, strict=True)]
            rows += table_rows("covariance", cov[:, a, b], se_cov[:, a, b], pairs)
        return rows

    # -- the backends' pieces (emnet.mixture.measurement.base) ------------------------------
    def features(self, chunk: Any) -> tuple[np.ndarray, None] | None:
        """Diagonal structures: Phi = [x², x, observed] (n, 3D) of the centred rows (0
        where missing). Full structures: Phi = [x_a x_b (a ≤ b), x, 1] of complete rows;
        None for a chunk with missing entries (the exact E-step needs the conditional
        moments of each missingness pattern: the backend runs this block's numpy
        methods)."""
        chunk = self.prepare(chunk)
        if is_diagonal(self.structure):
            X0, obs = nan_filled(chunk.X)
            return np.hstack([X0 * X0, X0, obs]), None
        if not chunk.complete:
            return None
        if chunk.features is not None:
            return chunk.features, None
        X, D = chunk.X, chunk.X.shape[1]
        a, b = np.triu_indices(D)
        return np.hstack([X[:, a] * X[:, b], X, np.ones((X.shape[0], 1))]), None

    def natural_params(self, params: GaussianParams) -> tuple[np.ndarray, np.ndarray]:
        """W for :meth:`features` ((3D, K) diagonal, (D(D+1)/2 + D + 1, K) full); c = 0."""
        K, D = params.means.shape
        if not is_diagonal(self.structure):
            return self._feature_weights(params, K), np.zeros(K)
        var = expand_diag(params.covariances, self.structure, K)
        mc = params.means - self._shift(D)
        inv = 1.0 / var
        const = -0.5 * (_LOG_2PI + np.log(var) + mc**2 * inv)
        return np.vstack([-0.5 * inv.T, (mc * inv).T, const.T]), np.zeros(K)

    def stats_from_moments(
        self, params: GaussianParams, moments: np.ndarray, nk: np.ndarray
    ) -> GaussianStats:
        """Diagonal: a missing entry takes its class mean and variance (the exact
        E-step), weighted by N_k − Σ η [observed]; full: the sums of Phi unpacked."""
        K = moments.shape[0]
        if is_diagonal(self.structure):
            D = moments.shape[1] // 3
            mc = params.means - self._shift(D)
            var = expand_diag(params.covariances, self.structure, K)
            miss = nk[:, None] - moments[:, 2 * D :]
            sum_x = moments[:, D : 2 * D] + mc * miss
            sum_xx = moments[:, :D] + (mc**2 + var) * miss
            return GaussianStats(np.asarray(nk, dtype=np.float64).copy(), sum_x, sum_xx)
        D = params.means.shape[1]
        F = D * (D + 1) // 2
        S = np.ascontiguousarray(moments)
        return GaussianStats(S[:, -1].copy(), S[:, F : F + D].copy(), _unpack_pairs(S, D))


def expand_diag_of(covariances: np.ndarray, structure: str, K: int) -> np.ndarray:
    """(K, D) within-class variances of any structure."""
    cov = expand(covariances, structure, K)
    idx = np.arange(cov.shape[-1])
    return cov[:, idx, idx]


def expand_diag(covariances: np.ndarray, structure: str, K: int) -> np.ndarray:
    """(K, D) variances of a diagonal structure."""
    c = np.asarray(covariances, dtype=np.float64)
    return np.repeat(c[None], K, axis=0) if structure == "EEI" else c


def compact_shape(structure: str, K: int, D: int) -> tuple[int, ...]:
    """The shape of the structure's compact covariances (module docstring)."""
    return {"VVV": (K, D, D), "VVI": (K, D), "EEE": (D, D), "EEI": (D,)}[structure]


def covariance_parameters(structure: str, K: int, D: int) -> int:
    """Free covariance parameters (mclust's counts)."""
    full = D * (D + 1) // 2
    return {"EEI": D, "VVI": K * D, "EEE": full, "VVV": K * full}[structure]


# -- compiled kernels: the per-iteration pieces of a few numpy calls each, fused -------------
# (small data is bound by the calls, not the arithmetic; each kernel follows the numpy
# expression it replaced, in the same order of operations)
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _factor_kernel(S):  # pragma: no cover - compiled
    """(L, L⁻¹, Σ⁻¹, log det Σ, ok) of a stack (M, D, D); ok False: a matrix is not
    positive definite (LAPACK's test: a pivot ≤ 0 or NaN)."""
    M, D = S.shape[0], S.shape[1]
    L = np.zeros((M, D, D))
    Linv = np.zeros((M, D, D))
    P = np.empty((M, D, D))
    logdet = np.zeros(M)
    for m in range(M):
        for j in range(D):
            s = S[m, j, j]
            for p in range(j):
                s -= L[m, j, p] * L[m, j, p]
            if not s > 0.0:
                return L, Linv, P, logdet, False
            d = math.sqrt(s)
            L[m, j, j] = d
            logdet[m] += 2.0 * math.log(d)
            for i in range(j + 1, D):
                t = S[m, i, j]
                for p in range(j):
                    t -= L[m, i, p] * L[m, j, p]
                L[m, i, j] = t / d
        for j in range(D):
            Linv[m, j, j] = 1.0 / L[m, j, j]
            for i in range(j + 1, D):
                t = 0.0
                for p in range(j, i):
                    t -= L[m, i, p] * Linv[m, p, j]
                Linv[m, i, j] = t / L[m, i, i]
        for a in range(D):
            for b in range(a, D):
                t = 0.0
                for p in range(b, D):
                    t += Linv[m, p, a] * Linv[m, p, b]
                P[m, a, b] = t
                P[m, b, a] = t
    return L, Linv, P, logdet, True


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _full_weights(P, logdet, means, center):  # pragma: no cover - compiled
    """W (F + D + 1, K) of full covariances: the precisions P (M, D, D) and log
    determinants (M,) (M = K, or 1 shared), the means (K, D) and the column centre."""
    mc = means - center
    K, D = mc.shape
    F = D * (D + 1) // 2
    W = np.empty((F + D + 1, K))
    for k in range(K):
        j = k if P.shape[0] == K else 0
        q = 0
        for a in range(D):
            for b in range(a, D):
                W[q, k] = P[j, a, b] * (-0.5 if a == b else -1.0)
                q += 1
        dot = 0.0
        for a in range(D):
            t = 0.0
            for b in range(D):
                t += P[j, a, b] * mc[k, b]
            W[F + a, k] = t
            dot += mc[k, a] * t
        W[F + D, k] = -0.5 * (D * _LOG_2PI + logdet[j] + dot)
    return W


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _diag_weights(var, means, center):  # pragma: no cover - compiled
    """W (2D + 1, K) of diagonal covariances: the variances var (M, D) (M = K, or 1
    shared), the means (K, D) and the column centre."""
    mc = means - center
    K, D = mc.shape
    W = np.empty((2 * D + 1, K))
    for k in range(K):
        j = k if var.shape[0] == K else 0
        logdet = 0.0
        dot = 0.0
        for a in range(D):
            inv = 1.0 / var[j, a]
            lin = mc[k, a] * inv
            W[a, k] = -0.5 * inv
            W[D + a, k] = lin
            logdet += math.log(var[j, a])
            dot += mc[k, a] * lin
        W[2 * D, k] = -0.5 * (D * _LOG_2PI + logdet + dot)
    return W


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _full_m_step(nk, sum_x, sum_xx, reg, center, shared):  # pragma: no cover - compiled
    """(means (K, D), covariances (M, D, D)) of the full M-step (M = 1 shared) from the
    statistics about ``center``; every N_k gets :data:`EMPTY_GUARD`."""
    nk = nk + EMPTY_GUARD
    K, D = sum_x.shape
    mc = np.empty((K, D))
    for k in range(K):
        for a in range(D):
            mc[k, a] = sum_x[k, a] / nk[k]
    cov = np.zeros((1 if shared else K, D, D))
    total = 0.0
    for k in range(K):
        j = 0 if shared else k
        total += nk[k]
        for a in range(D):
            for b in range(a, D):
                s_ab = sum_xx[k, a, b] - nk[k] * (mc[k, a] * mc[k, b])
                s_ba = sum_xx[k, b, a] - nk[k] * (mc[k, b] * mc[k, a])
                cov[j, a, b] += 0.5 * (s_ab + s_ba)
    for j in range(cov.shape[0]):
        div = total if shared else nk[j]
        for a in range(D):
            cov[j, a, a] += reg[a]
            for b in range(a, D):
                cov[j, a, b] /= div
                cov[j, b, a] = cov[j, a, b]
    return mc + center, cov


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _diag_m_step(nk, sum_x, sum_xx, reg, center, shared):  # pragma: no cover - compiled
    """(means (K, D), variances (M, D)) of the diagonal M-step (M = 1 shared) from the
    statistics about ``center``; every N_k gets :data:`EMPTY_GUARD`."""
    nk = nk + EMPTY_GUARD
    K, D = sum_x.shape
    tiny = np.finfo(np.float64).tiny
    mc = np.empty((K, D))
    var = np.zeros((1 if shared else K, D))
    total = 0.0
    for k in range(K):
        j = 0 if shared else k
        total += nk[k]
        for a in range(D):
            mc[k, a] = sum_x[k, a] / nk[k]
            var[j, a] += sum_xx[k, a] - nk[k] * mc[k, a] ** 2
    for j in range(var.shape[0]):
        div = total if shared else nk[j]
        for a in range(D):
            var[j, a] = max((var[j, a] + reg[a]) / div, tiny)
    return mc + center, var


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _chol_to_vector(means, L):  # pragma: no cover - compiled
    """[means, the lower triangles of L (M, D, D) row by row with log diagonals]."""
    K, D = means.shape
    out = np.empty(K * D + L.shape[0] * (D * (D + 1) // 2))
    q = 0
    for k in range(K):
        for a in range(D):
            out[q] = means[k, a]
            q += 1
    for m in range(L.shape[0]):
        for a in range(D):
            for b in range(a + 1):
                out[q] = math.log(L[m, a, a]) if a == b else L[m, a, b]
                q += 1
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_to_vector(means, var):  # pragma: no cover - compiled
    """[means, log variances (M, D)] as one vector."""
    K, D = means.shape
    out = np.empty(K * D + var.shape[0] * D)
    for k in range(K):
        for a in range(D):
            out[k * D + a] = means[k, a]
    for m in range(var.shape[0]):
        for a in range(D):
            out[K * D + m * D + a] = math.log(var[m, a])
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vector_to_means(vector, K, D):  # pragma: no cover - compiled
    means = np.empty((K, D))
    for k in range(K):
        for a in range(D):
            means[k, a] = vector[k * D + a]
    return means


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vector_to_variances(vector, K, M, D):  # pragma: no cover - compiled
    """(means (K, D), variances (M, D)) of :func:`_log_to_vector`'s vector."""
    var = np.empty((M, D))
    for m in range(M):
        for a in range(D):
            var[m, a] = math.exp(vector[K * D + m * D + a])
    return _vector_to_means(vector, K, D), var


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vector_to_covariances(vector, K, M, D):  # pragma: no cover - compiled
    """(means (K, D), L Lᵀ (M, D, D)) of :func:`_chol_to_vector`'s vector (the
    triangles' diagonals exponentiated)."""
    rest = vector[K * D :]
    L = np.zeros((M, D, D))
    q = 0
    for m in range(M):
        for a in range(D):
            for b in range(a + 1):
                L[m, a, b] = math.exp(rest[q]) if a == b else rest[q]
                q += 1
    out = np.empty((M, D, D))
    for m in range(M):
        for a in range(D):
            for b in range(a + 1):
                t = 0.0
                for p in range(D):
                    t += L[m, a, p] * L[m, b, p]
                out[m, a, b] = t
                out[m, b, a] = t
    return _vector_to_means(vector, K, D), out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _unpack_pairs(S, D):  # pragma: no cover - compiled
    """(K, D, D) symmetric matrices from the first D(D+1)/2 columns of S (K, ·), the
    upper triangles row by row (Φ's order)."""
    K = S.shape[0]
    out = np.empty((K, D, D))
    for k in range(K):
        q = 0
        for a in range(D):
            for b in range(a, D):
                out[k, a, b] = S[k, q]
                out[k, b, a] = S[k, q]
                q += 1
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prior_trace(P, reg):  # pragma: no cover - compiled
    """Σ_m tr(Ψ P_m) = Σ_m Σ_a P[m, a, a] reg[a] of precisions P (M, D, D)."""
    total = 0.0
    for m in range(P.shape[0]):
        t = 0.0
        for a in range(P.shape[1]):
            t += P[m, a, a] * reg[a]
        total += t
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prior_ratio(var, reg):  # pragma: no cover - compiled
    """Σ_m Σ_a reg[a] / var[m, a]: tr(Ψ Σ⁻¹) of diagonal covariances var (M, D)."""
    total = 0.0
    for m in range(var.shape[0]):
        for a in range(var.shape[1]):
            total += reg[a] / var[m, a]
    return total


@numba.njit(cache=True, nogil=True)
def _feature_matrix(X, diagonal):  # pragma: no cover - compiled
    """Φ (n, F + D + 1) of centred complete rows: the squares (diagonal) or the products
    x_a x_b, a ≤ b row by row, then x, then 1."""
    n, D = X.shape
    F = D if diagonal else D * (D + 1) // 2
    out = np.empty((n, F + D + 1))
    for i in range(n):
        q = 0
        for a in range(D):
            if diagonal:
                out[i, q] = X[i, a] * X[i, a]
                q += 1
            else:
                for b in range(a, D):
                    out[i, q] = X[i, a] * X[i, b]
                    q += 1
        for a in range(D):
            out[i, F + a] = X[i, a]
        out[i, F + D] = 1.0
    return out
