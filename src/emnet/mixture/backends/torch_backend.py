"""Torch backend for the Bernoulli-mixture E and M steps (CPU or CUDA, float32/float64).

Same math as the numpy backend (SPEC §1), one chunk of rows at a time:

- E-step: ``log P(x|p_k) = X·(log p − log(1−p))ᵀ + Σ_d log(1−p_d)`` — one GEMM. With
  missing entries (NaN) the observed mask ``M`` enters the same product:
  ``[X₀, M] · [log p − log(1−p); log(1−p)]ᵀ`` (still one GEMM, of width 2D).
- M-step statistics: ``Rᵀ·X₀`` (and ``Rᵀ·M`` with NaN) — one more GEMM.
- Responsibilities below the smallest normal number of the compute dtype are flushed to
  zero: they change no result but make the M-step GEMM several times slower.

Inputs: numpy arrays of any real/bool/uint8 dtype (cast per chunk on the device, never a
float copy of the whole matrix) and scipy.sparse matrices (densified a sub-chunk of rows
at a time). Statistics come back as float64 numpy arrays, accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from emnet.mixture.kernels.bernoulli_math import SuffStats, clamp_means

__all__ = ["TorchBackend", "resolve_device", "resolve_dtype"]

# Rows of a sparse matrix densified at once (bounds the working memory of sparse input).
_SPARSE_ROWS = 4096


def resolve_device(device: str | torch.device) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available) → torch.device, by the
    one resolver of ``emnet._checks``."""
    from emnet._checks import resolve_device as resolve

    return torch.device(resolve(device, "device"))


def resolve_dtype(dtype: Any) -> torch.dtype:
    """float32/float64 given as numpy dtype, torch dtype or string → torch dtype."""
    if dtype in (torch.float32, torch.float64):
        return dtype
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        np_dtype = None
    if np_dtype == np.float32:
        return torch.float32
    if np_dtype == np.float64:
        return torch.float64
    raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")


class TorchBackend:
    """E/M-step kernels in torch; see the module docstring for the math."""

    takes_integer_input = True  # prepare() casts integer/bool X itself (see there)

    def __init__(self, device: str | torch.device = "cpu", dtype: Any = np.float64) -> None:
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype)
        self.dtype = np.dtype(np.float32 if self.torch_dtype == torch.float32 else np.float64)
        self._tiny = torch.finfo(self.torch_dtype).tiny

    def __repr__(self) -> str:
        return f"TorchBackend(device={str(self.device)!r}, dtype={self.dtype.name!r})"

    # ---------------------------------------------------------------- helpers
    def _params(
        self, weights: np.ndarray, means: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log π, log p − log(1−p) as D×K, log(1−p) as D×K) in the compute dtype.

        The logs are taken in float64 (K×D numbers) and then cast, so float32 compute
        never sees log(1 − p) of a rounded p. Means are clamped like the numpy backend's.
        """
        means = clamp_means(means)
        log_p = np.log(means)
        log_1mp = np.log1p(-means)
        with np.errstate(divide="ignore"):
            log_w = np.log(np.asarray(weights, dtype=np.float64))
        to = lambda a: torch.as_tensor(np.ascontiguousarray(a), device=self.device).to(
            self.torch_dtype
        )
        return to(log_w), to((log_p - log_1mp).T), to(log_1mp.T)

    def _to_device(self, X: Any) -> torch.Tensor:
        """A dense 2-D array as a tensor on the device, in its own dtype (bool → uint8)."""
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-dimensional, got shape {arr.shape}")
        if not arr.flags.writeable or not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr) if arr.flags.writeable else np.array(arr, order="C")
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        return torch.from_numpy(arr).to(self.device)

    def _dense_blocks(self, X: Any) -> Iterator[tuple[torch.Tensor, bool]]:
        """Yield (block as a device tensor of the compute dtype, may it hold NaN)."""
        if isinstance(X, torch.Tensor):  # from prepare(): already on the device
            yield X.to(self.device, self.torch_dtype), X.is_floating_point()
            return
        if hasattr(X, "tocsr") and hasattr(X, "nnz"):  # scipy.sparse
            X = X.tocsr()
            for start in range(0, X.shape[0], _SPARSE_ROWS):
                yield from self._dense_blocks(X[start : start + _SPARSE_ROWS].toarray())
            return
        t = self._to_device(X)
        yield t.to(self.torch_dtype), t.is_floating_point()

    def _log_joint(
        self,
        x: torch.Tensor,
        may_nan: bool,
        params: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(n×K log π_k + log P(x_i | p_k), X with NaN → 0, observed mask or None).

        One GEMM. A NaN in X shows up as NaN in its row of the product, so missing entries
        are detected at O(n) cost; only then is the masked product (width 2D) formed.
        """
        log_w, logit, log_1mp = params
        joint = torch.addmm(log_w + log_1mp.sum(0), x, logit)
        if not may_nan or not bool(torch.isnan(joint[:, 0]).any()):
            return joint, x, None
        nan = torch.isnan(x)
        mask = (~nan).to(self.torch_dtype)
        x0 = torch.nan_to_num(x, nan=0.0)
        joint = torch.addmm(log_w, torch.cat([x0, mask], 1), torch.cat([logit, log_1mp], 0))
        return joint, x0, mask

    # ---------------------------------------------------------------- API
    def prepare(self, X_chunk: Any) -> Any:
        """Dense rows → one tensor on the device, made once per fit (or per chunk with
        ``batch_size``): the EM iterations then read X where they run, with no copy from
        the host per iteration. On the CPU it is cast to the compute dtype here, once; on
        a GPU integer and bool X stays in its compact dtype and each iteration casts it
        there. Sparse input is left as it is (densified a block of rows at a time)."""
        if not isinstance(X_chunk, np.ndarray):
            return X_chunk
        t = self._to_device(X_chunk)
        return t.to(self.torch_dtype) if self.device.type == "cpu" or t.is_floating_point() else t

    def log_resp(
        self, X_chunk: Any, weights: np.ndarray, means: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(log responsibilities n×K, log p(x_i) per row) as float64 numpy arrays."""
        params = self._params(weights, means)
        out_r, out_p = [], []
        with torch.no_grad():
            for x, may_nan in self._dense_blocks(X_chunk):
                joint, _, _ = self._log_joint(x, may_nan, params)
                log_prob = torch.logsumexp(joint, dim=1)
                out_r.append((joint - log_prob[:, None]).double().cpu().numpy())
                out_p.append(log_prob.double().cpu().numpy())
        if not out_r:
            k = np.asarray(means).shape[0]
            return np.empty((0, k)), np.empty(0)
        return np.concatenate(out_r), np.concatenate(out_p)

    def chunk_stats(
        self,
        X_chunk: Any,
        weights: np.ndarray,
        means: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> SuffStats:
        """Sufficient statistics of one chunk: n, Σ η, Σ η x, Σ η·[observed], Σ log p(x).

        With ``sample_weight`` every sum over rows is weighted (n is Σ w)."""
        params = self._params(weights, means)
        k, d = np.asarray(means).shape
        f64 = torch.float64
        n = 0.0
        resp_sum = torch.zeros(k, dtype=f64, device=self.device)
        resp_x = torch.zeros(k, d, dtype=f64, device=self.device)
        resp_obs: torch.Tensor | None = None
        loglik = torch.zeros((), dtype=f64, device=self.device)
        row0 = 0
        with torch.no_grad():
            for x, may_nan in self._dense_blocks(X_chunk):
                resp, x0, mask = self._log_joint(x, may_nan, params)
                log_prob = torch.logsumexp(resp, dim=1)
                resp.sub_(log_prob[:, None]).exp_()  # in place: joint → responsibilities
                resp.masked_fill_(resp < self._tiny, 0.0)  # flush subnormals
                if sample_weight is None:
                    n += x0.shape[0]
                    loglik += log_prob.sum(dtype=f64)
                else:  # blocks run over the rows in order
                    w = torch.as_tensor(
                        np.asarray(sample_weight[int(row0) : int(row0) + x0.shape[0]]),
                        dtype=f64,
                        device=self.device,
                    )
                    row0 += x0.shape[0]
                    n += float(w.sum())
                    loglik += (log_prob.to(f64) * w).sum()
                    resp.mul_(w.to(resp.dtype)[:, None])
                block_sum = resp.sum(0, dtype=f64)
                resp_sum += block_sum
                if mask is None:
                    resp_x += (resp.T @ x0).to(f64)
                    if resp_obs is not None:
                        resp_obs += block_sum[:, None]
                else:
                    both = (resp.T @ torch.cat([x0, mask], 1)).to(f64)
                    if resp_obs is None:  # earlier blocks had no NaN: all observed
                        resp_obs = (resp_sum - block_sum)[:, None].expand(k, d).clone()
                    resp_x += both[:, :d]
                    resp_obs += both[:, d:]
        return SuffStats(
            n=float(n),
            resp_sum=resp_sum.cpu().numpy(),
            resp_x=resp_x.cpu().numpy(),
            resp_obs=None if resp_obs is None else resp_obs.cpu().numpy(),
            loglik=float(loglik),
        )
