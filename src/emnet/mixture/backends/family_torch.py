"""The E-step of the latent class family on torch (CPU or CUDA), through the contract.

Every measurement type of the family is an exponential family: a block's per-class
log-likelihood is ``Phi @ W + c + base`` with a per-row feature map Phi (the contract's
``features``: answer indicators for categorical and binary items; [x², x, observed] or
[x_a x_b, x, 1] for Gaussian columns; [x, observed] with base −log x! for counts; a
missing entry contributes zero features) and the natural parameters (W, c) of
``natural_params``. One E-step is then, per block, two matrix products on the device:
``Phi @ W`` (n, K) for the log-likelihoods and ``(w η)ᵀ Phi`` (K, P) for the moments, from
which ``stats_from_moments`` gives the block's statistics (the M-steps run in numpy on
the K × P numbers).

A block whose ``features`` is None for the data — a full-covariance Gaussian (EEE, VVV)
with missing entries, whose exact E-step needs the conditional moments of each
missingness pattern — runs its own numpy ``log_likelihood`` / ``sufficient_stats`` in
the same E-step (the other blocks stay on the device); the result is the same.

The features are built once per fit and kept on the device. ``dtype`` float64 (the
default) gives the numpy fit's numbers to rounding; float32 halves the memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from emnet.mixture.backends.family_common import FamilyStats
from emnet.mixture.measurement.base import Measurement

__all__ = ["TorchFamily"]


class TorchFamily:
    """The family's E-step over prepared in-memory chunks on one torch device."""

    def __init__(
        self,
        blocks: Sequence[Measurement],
        chunks: Sequence[Any],
        sample_weight: np.ndarray | None,
        device: Any = "cpu",
        dtype: Any = np.float64,
    ) -> None:
        import torch

        from emnet.mixture.backends.torch_backend import resolve_device, resolve_dtype

        self.torch = torch
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.blocks = list(blocks)
        self.chunks = list(chunks)
        self.weight_np = sample_weight
        self.weight = None if sample_weight is None else self._t(sample_weight)
        self.parts: list[tuple[Any, Any] | None] = []
        for m, chunk in zip(self.blocks, self.chunks, strict=True):
            f = m.features(chunk)
            if f is None:
                self.parts.append(None)
            else:
                phi, base = f
                self.parts.append((self._t(phi), None if base is None else self._t(base)))

    def _t(self, a: Any) -> Any:
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        return self.torch.as_tensor(arr, device=self.device).to(self.dtype)

    def _np(self, t: Any) -> np.ndarray:
        return t.detach().to(self.torch.float64).cpu().numpy()

    def joint(self, params: Any) -> Any:
        """(n, K) tensor: log π_k + Σ_b log f_b(x_ib | k)."""
        ll = None
        for m, pb, chunk, part in zip(self.blocks, params.blocks, self.chunks, self.parts,
                                      strict=True):  # fmt: skip
            if part is None:
                term = self._t(m.log_likelihood(pb, chunk))
            else:
                phi, base = part
                W, c = m.natural_params(pb)
                term = self.torch.addmm(self._t(c), phi, self._t(W))
                if base is not None:
                    term += base[:, None]
            ll = term if ll is None else ll + term
        if ll is None:
            raise ValueError("X: the model has no measurement block")
        return ll + self._t(params.log_weights)

    def stats(self, params: Any) -> FamilyStats:
        """One E-step over all rows (statistics as numpy float64)."""
        torch = self.torch
        ll = self.joint(params)
        top = ll.max(dim=1).values
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        resp = torch.exp(ll - top[:, None])
        mass = resp.sum(dim=1)
        resp /= mass[:, None]
        log_p = torch.log(mass) + top
        if self.weight is None:
            loglik, r, total = log_p.sum(), resp, float(resp.shape[0])
        else:
            loglik, r = (self.weight * log_p).sum(), resp * self.weight[:, None]
            total = float(self.weight_np.sum())
        nk = self._np(r.sum(dim=0))
        resp_np = None
        out = []
        for m, pb, chunk, part in zip(self.blocks, params.blocks, self.chunks, self.parts,
                                      strict=True):  # fmt: skip
            if part is None:
                resp_np = self._np(resp) if resp_np is None else resp_np
                out.append(m.sufficient_stats(pb, chunk, resp_np, self.weight_np))
            else:
                out.append(m.stats_from_moments(pb, self._np(r.T @ part[0]), nk))
        return FamilyStats(total, float(loglik), nk, tuple(out))

    def log_resp(self, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """(log η (n, K), log p(x_i) (n,)) as numpy float64."""
        ll = self.joint(params)
        log_p = self.torch.logsumexp(ll, dim=1)
        return self._np(ll - log_p[:, None]), self._np(log_p)
