"""Compute backends: where the E-step and its sufficient statistics run.

A backend offers two methods on one chunk of rows (dense array of any real dtype, or CSR):

- ``chunk_stats(X_chunk, weights, means) -> SuffStats``
- ``log_resp(X_chunk, weights, means) -> (log_resp (n, K), log_prob (n,))`` as numpy arrays.

:class:`NumpyBackend` runs :mod:`emnet.mixture._math`; ``backend="torch"`` loads
``emnet.mixture._torch.TorchBackend`` lazily.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from emnet.mixture._math import SuffStats, chunk_stats, e_step, work_dtype

BACKENDS = ("numpy", "torch")
DEVICES = ("cpu", "cuda", "auto")


class Backend(Protocol):
    dtype: np.dtype

    def chunk_stats(self, X_chunk: object, weights: np.ndarray, means: np.ndarray) -> SuffStats:
        """E-step on a chunk and its sufficient statistics."""
        ...

    def log_resp(
        self, X_chunk: object, weights: np.ndarray, means: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log responsibilities and per-sample log-likelihood of a chunk."""
        ...


class NumpyBackend:
    """The numpy/BLAS backend (CPU), float32 or float64."""

    def __init__(self, dtype: object = np.float64) -> None:
        self.dtype = work_dtype(None, dtype)

    def chunk_stats(self, X_chunk: object, weights: np.ndarray, means: np.ndarray) -> SuffStats:
        return chunk_stats(X_chunk, weights, means, dtype=self.dtype)

    def log_resp(
        self, X_chunk: object, weights: np.ndarray, means: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return e_step(X_chunk, weights, means, dtype=self.dtype)


def make_backend(backend: str, device: str, dtype: object) -> Backend:
    """The backend object for the estimator's ``backend``/``device``/``dtype`` parameters."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
    if backend == "numpy":
        if device == "cuda":
            raise ValueError("device='cuda' needs backend='torch' (the numpy backend is CPU only)")
        return NumpyBackend(dtype)
    try:
        from emnet.mixture._torch import TorchBackend
    except ImportError as exc:
        raise ImportError(f"backend='torch' is not available: {exc}") from exc
    return TorchBackend(device=device, dtype=dtype)
