"""Latent class statistics for the whole family, through the measurement contract only.

A :class:`~emnet.mixture.LatentClassModel` is P(x_i) = Σ_k π_k Π_b f_b(x_ib | θ_kb) over
blocks b of any measurement type (:mod:`emnet.mixture.measurement`). Nothing here looks at
a block's type: every statistic is built from the contract's ``log_likelihood`` (n, K),
``to_unconstrained`` / ``from_unconstrained`` and ``to_arrays`` (SPEC §1b, §1c).

**The parametrisation.** The model's unconstrained vector u (``_to_unconstrained``): the
K centred log class shares, then each block's own vector (means, log variances, Cholesky
factors with log diagonal, log rates, ...). One log share, that of the largest class (the
reference), is held at its value, so the K − 1 others are log-odds against it and every
remaining coordinate is free.

**Derivatives.** ℓ_ik(u) = log π_k + Σ_b log f_b(x_ib | k), and log p(x_i) = logsumexp_k
ℓ_ik. A coordinate a of segment s (the shares, or one block) moves only that segment's
(n, K) term, so its per-class derivative ∂ℓ_ik/∂u_a is taken by a five-point central
difference of that term alone (error O(h⁴)). Then, exactly:

- per-row scores s_ia = Σ_k η_ik ∂ℓ_ik/∂u_a (Fisher's identity), the OPG information
  Σ_i w_i s_i s_iᵀ (poLCA's);
- the observed information −∂² Σ_i w_i log p(x_i) = Σ_i w_i [s_i s_iᵀ −
  Σ_k η_ik (∂²ℓ_ik + ∂ℓ_ik ∂ℓ_ikᵀ)], where ∂²ℓ_ik/∂u_a∂u_b is zero unless a and b are in
  the same segment and both move class k (which classes a coordinate moves is read off
  its first derivatives), and is otherwise a second central difference of the segment's
  term. It is the information of the log-likelihood (a block's ``log_prior``, e.g. the
  Gaussian covariance floor, is left out, as the categorical models' SEs do).

**The delta method.** The natural parameters are the class shares and every block's
``to_arrays`` (Gaussian means and covariances in the structure's compact form, Poisson
rates, ...); their Jacobian in the free coordinates is taken by central differences of
``from_unconstrained``, and SE = sqrt(diag(J V Jᵀ)), V the inverse information
(:func:`emnet.mixture.inference.numdiff.covariance`: the pseudo-inverse where it is singular).

**The boundary** (as :mod:`emnet.mixture.inference.stats` does for the categorical models): a class
whose expected count Σ_i w_i η_ik is below :data:`~emnet.mixture.inference.stats.BOUNDARY_COUNT`
rows has its share on the boundary (0). Its log share and every coordinate that moves only
such classes (its own block parameters, which the likelihood no longer sees) are held
fixed; their natural parameters get standard error 0 and are flagged
(``weights_boundary``, ``boundary``). When every other share is held, the last one is 1
and held too. No standard error is NaN.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import logsumexp

from emnet.mixture.inference.numdiff import covariance, difference_steps, five_point_jacobian
from emnet.mixture.inference.stats import BOUNDARY_COUNT, weight_unit


class FamilyView(NamedTuple):
    """A fitted family model and data, as the statistics need them."""

    measurements: list[Any]  # one Measurement per block
    chunks: list[Any]  # each block's prepared rows
    log_weights: np.ndarray  # (K,)
    params: tuple[Any, ...]  # one parameter object per block
    sample_weight: np.ndarray  # (n,)
    names: list[list[str]]  # each block's column names
    to_unconstrained: Any  # the model's (LatentParams -> u)
    from_unconstrained: Any  # the model's ((u, like) -> LatentParams)
    like: Any  # the fitted LatentParams


class FamilyStandardErrors(NamedTuple):
    """Standard errors in the shapes of the estimates; 0 for an estimate held at the
    boundary (``weights_boundary``, ``boundary``), never NaN.

    ``blocks[b]`` holds block b's standard errors keyed as its ``to_arrays`` (Gaussian:
    ``means`` (K, D) and ``covariances`` in the structure's compact form; Poisson:
    ``rates`` (K, D)); ``covariance`` is that of the free unconstrained coordinates
    ``free`` (indices into the model's ``_to_unconstrained`` vector)."""

    weights: np.ndarray  # (K,)
    blocks: list[dict[str, np.ndarray]]
    block_types: list[str]
    method: str
    covariance: np.ndarray
    free: np.ndarray
    n_free: int
    weights_boundary: np.ndarray  # (K,) bool
    boundary: list[dict[str, np.ndarray]]
    n_boundary: int

    def block(self, name: str) -> dict[str, np.ndarray]:
        """The standard errors of the (first) block of type ``name``."""
        if name not in self.block_types:
            raise KeyError(f"no {name!r} block (blocks: {self.block_types})")
        return self.blocks[self.block_types.index(name)]

    def __repr__(self) -> str:
        return (
            f"FamilyStandardErrors(method={self.method!r}, blocks={self.block_types}, "
            f"n_free={self.n_free}, n_boundary={self.n_boundary})"
        )


# -- the segments of the unconstrained vector --------------------------------------------


def _segments(view: FamilyView, u: np.ndarray) -> list[slice]:
    """The slices of u: the K log shares, then one per block."""
    K = len(view.log_weights)
    out, at = [slice(0, K)], K
    for m, p in zip(view.measurements, view.params, strict=True):
        size = len(m.to_unconstrained(p))
        out.append(slice(at, at + size))
        at += size
    return out


def _term(view: FamilyView, s: int, u_seg: np.ndarray) -> np.ndarray:
    """Segment s's additive part of ℓ (n, K), or (1, K) for the log shares."""
    if s == 0:
        return (u_seg - logsumexp(u_seg))[None, :]
    m = view.measurements[s - 1]
    return m.log_likelihood(m.from_unconstrained(u_seg, view.params[s - 1]), view.chunks[s - 1])


def _weighted_term(view: FamilyView, s: int, u_seg: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Segment s's terms of Σ_ik weights_ik ℓ_ik (``Measurement.weighted_terms``)."""
    if s == 0:
        return _term(view, 0, u_seg) * weights
    m = view.measurements[s - 1]
    p = m.from_unconstrained(u_seg, view.params[s - 1])
    return m.weighted_terms(p, view.chunks[s - 1], weights)


class _Derivatives(NamedTuple):
    u: np.ndarray
    segments: list[slice]
    owner: np.ndarray  # (P,) segment of each coordinate
    base: list[np.ndarray]  # each segment's term at u
    eta: np.ndarray  # (n, K)
    first: np.ndarray  # (P, n, K) ∂ℓ_ik/∂u_a (rows broadcast for the shares: (P, 1, K) ok)
    second_diag: np.ndarray  # (P,) Σ_i w_i Σ_k η_ik ∂²ℓ_ik/∂u_a²
    moves: np.ndarray  # (P, K) bool: the classes coordinate a moves


def _derivatives(view: FamilyView) -> _Derivatives:
    u = np.asarray(view.to_unconstrained(view.like), dtype=np.float64)
    return segment_derivatives(
        lambda s, us: _term(view, s, us), u, _segments(view, u), view.sample_weight
    )


def segment_derivatives(term: Any, u: np.ndarray, segs: list[slice], w: np.ndarray) -> _Derivatives:
    """The derivatives of ℓ_ik = Σ_s term(s, u[segs[s]]) (each (n, K) or (1, K)) in every
    coordinate of u: first (P, n, K) and the weighted second diagonal by five-point central
    differences, η from ℓ, and which classes each coordinate moves. ``term(s, u_seg)`` is
    the additive part of segment s (the family's log shares or β, then each block)."""
    owner = np.concatenate([np.full(sl.stop - sl.start, s) for s, sl in enumerate(segs)])
    base = [term(s, u[sl]) for s, sl in enumerate(segs)]
    n = len(w)
    ell = np.broadcast_to(base[0], (n, base[0].shape[1])).copy()
    for part in base[1:]:
        ell += part
    eta = np.exp(ell - logsumexp(ell, axis=1, keepdims=True))
    weta = eta * w[:, None]
    P, K = len(u), eta.shape[1]
    first = np.zeros((P, n, K))
    second = np.zeros(P)
    h = difference_steps(u)
    for a in range(P):
        s = owner[a]
        sl = segs[s]
        f = {}
        for c in (-2, -1, 1, 2):
            us = u[sl].copy()
            us[a - sl.start] += c * h[a]
            f[c] = term(s, us) - base[s]
        first[a] = (f[-2] - 8.0 * f[-1] + 8.0 * f[1] - f[2]) / (12.0 * h[a])
        d2 = (-f[2] + 16.0 * f[1] + 16.0 * f[-1] - f[-2]) / (12.0 * h[a] ** 2)
        second[a] = float(np.sum(np.broadcast_to(d2, (n, K)) * weta))
    scale = np.abs(first).max(axis=1)  # (P, K)
    moves = scale > 1e-9 * np.maximum(scale.max(axis=1, keepdims=True), 1e-300)
    return _Derivatives(u, segs, owner, base, eta, first, second, moves)


def _held(view: FamilyView, der: _Derivatives) -> tuple[np.ndarray, np.ndarray]:
    """(held classes (K,), held coordinates (P,)): the boundary rule of the docstring;
    the reference log share is held too (it is not a free parameter)."""
    w = view.sample_weight
    counts = w @ der.eta
    K = len(counts)
    held_class = counts < BOUNDARY_COUNT * weight_unit(w)
    ref = int(np.argmax(counts))
    held_class[ref] = False
    held = np.zeros(len(der.u), dtype=bool)
    held[ref] = True
    held[:K][held_class] = True
    if held_class.any():
        only_held = ~(der.moves & ~held_class[None, :]).any(axis=1)
        held |= only_held & (der.owner > 0)
    return held_class, held


def information(
    view: FamilyView, method: str = "hessian"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Derivatives]:
    """(information of the free coordinates, free indices, held classes, derivatives)."""
    if method not in ("hessian", "opg"):
        raise ValueError(f"method: expected 'hessian' or 'opg', got {method!r}")
    der = _derivatives(view)
    held_class, held = _held(view, der)
    free = np.flatnonzero(~held)
    term = lambda s, us: _term(view, s, us)  # noqa: E731
    weighted = lambda s, us, weights: _weighted_term(view, s, us, weights)  # noqa: E731
    info = segment_information(term, der, view.sample_weight, free, method, weighted)
    return info, free, held_class, der


def segment_information(
    term: Any,
    der: _Derivatives,
    w: np.ndarray,
    free: np.ndarray,
    method: str = "hessian",
    weighted: Any = None,
) -> np.ndarray:
    """The information of the coordinates ``free`` of a :func:`segment_derivatives`
    expansion: the outer product of the per-row scores (``"opg"``), or the observed
    information Σ w s sᵀ − Σ w Σ_k η ∂ℓ ∂ℓᵀ − Σ w Σ_k η ∂²ℓ (``"hessian"``; the mixed second
    differences only within a segment and where two coordinates move a common class).
    ``weighted(s, u_seg, weights)`` (optional): segment s's terms of Σ_ik weights_ik ℓ_ik
    (:meth:`Measurement.weighted_terms`) for those second differences, instead of the
    (n, K) ``term`` times the weights."""
    n = len(w)
    first = np.broadcast_to(der.first, (len(der.u), n, der.eta.shape[1]))
    S = np.einsum("ank,nk->na", first[free], der.eta)  # per-row scores (n, F)
    opg = (S * w[:, None]).T @ S
    if method == "opg":
        return opg
    weta = der.eta * w[:, None]
    # Σ_i w_i Σ_k η_ik ∂ℓ_ik/∂a ∂ℓ_ik/∂b
    outer = np.einsum("ank,nk,bnk->ab", first[free], weta, first[free])
    second = np.zeros((len(free), len(free)))
    h = difference_steps(der.u)
    if weighted is None:
        weighted = lambda s, us, weights: term(s, us) * weights  # noqa: E731
    base: dict[int, np.ndarray] = {}
    for i, a in enumerate(free):
        second[i, i] = der.second_diag[a]
        for j in range(i):
            b = free[j]
            s = der.owner[a]
            if der.owner[b] != s or not (der.moves[a] & der.moves[b]).any():
                continue
            sl = der.segments[s]
            if s not in base:
                base[s] = weighted(s, der.u[sl], weta)
            f = []
            for ca, cb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                us = der.u[sl].copy()
                us[a - sl.start] += ca * h[a]
                us[b - sl.start] += cb * h[b]
                f.append(weighted(s, us, weta) - base[s])
            d2 = (f[0] - f[1] - f[2] + f[3]) / (4.0 * h[a] * h[b])
            second[i, j] = second[j, i] = float(np.sum(d2))
    info = opg - outer - second
    return (info + info.T) / 2.0


def _natural(view: FamilyView, u: np.ndarray) -> np.ndarray:
    """The natural parameters at u, flat: class shares, then every block's arrays."""
    p = view.from_unconstrained(u, view.like)
    parts = [np.exp(p.log_weights - logsumexp(p.log_weights))]
    for m, pb in zip(view.measurements, p.blocks, strict=True):
        parts += [np.ravel(a) for a in m.to_arrays(pb).values()]
    return np.concatenate(parts)


def _jacobian(view: FamilyView, u: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """∂ natural / ∂u over ``coords`` (Q, len(coords)), five-point central differences."""
    return five_point_jacobian(lambda v: _natural(view, v), u, coords, difference_steps(u))


def shaped_like(m: Any, params: Any, flat: np.ndarray) -> dict[str, np.ndarray]:
    """``flat`` (the block's ``to_arrays`` raveled and joined) back in their shapes."""
    out, at = {}, 0
    for key, a in m.to_arrays(params).items():
        a = np.asarray(a)
        out[key] = flat[at : at + a.size].reshape(a.shape)
        at += a.size
    return out


def _reshape(view: FamilyView, flat: np.ndarray) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    K = len(view.log_weights)
    weights, at, blocks = flat[:K], K, []
    for m, pb in zip(view.measurements, view.params, strict=True):
        size = sum(np.asarray(a).size for a in m.to_arrays(pb).values())
        blocks.append(shaped_like(m, pb, flat[at : at + size]))
        at += size
    return weights, blocks


def standard_errors(view: FamilyView, method: str = "hessian") -> FamilyStandardErrors:
    """Standard errors of the class shares and of every block's arrays (module docstring)."""
    info, free, held_class, der = information(view, method)
    cov = covariance(info) if len(free) else np.zeros((0, 0))
    J = _jacobian(view, der.u, free)
    se = np.sqrt(np.maximum(np.einsum("qp,pr,qr->q", J, cov, J), 0.0))
    held_coords = np.setdiff1d(np.flatnonzero(np.ones(len(der.u), bool)), free)
    held_coords = held_coords[der.owner[held_coords] > 0]  # block coordinates held
    Jh = _jacobian(view, der.u, held_coords)
    depends_held = (np.abs(Jh) > 0).any(axis=1) if Jh.shape[1] else np.zeros(len(se), bool)
    fixed = depends_held & ~(np.abs(J) > 0).any(axis=1)
    K = len(view.log_weights)
    w_fixed = held_class.copy()
    if K > 1 and w_fixed.sum() == K - 1:  # every other share is 0: this one is 1
        w_fixed[:] = True
    fixed[:K] = w_fixed
    se[fixed] = 0.0
    se_w, se_blocks = _reshape(view, se)
    fixed_w, fixed_blocks = _reshape(view, fixed)
    return FamilyStandardErrors(
        se_w, se_blocks, [m.name for m in view.measurements], method, cov, free, len(free),
        fixed_w.astype(bool), [{k: v.astype(bool) for k, v in b.items()} for b in fixed_blocks],
        int(fixed.sum()),
    )  # fmt: skip


def log_likelihood(view: FamilyView) -> tuple[float, float]:
    """(Σ_i w_i log p(x_i), Σ_i w_i) at the fitted parameters."""
    p = view.like
    n = len(view.sample_weight)
    ell = np.broadcast_to(p.log_weights, (n, len(p.log_weights))).copy()
    for m, pb, chunk in zip(view.measurements, p.blocks, view.chunks, strict=True):
        ell += m.log_likelihood(pb, chunk)
    log_p = logsumexp(ell, axis=1)
    return float(view.sample_weight @ log_p), float(view.sample_weight.sum())
