"""Compute backends: where the E-step and its sufficient statistics run.

A backend offers three methods on one chunk of rows (dense array of any real dtype, or CSR):

- ``prepare(X_chunk)``: the chunk in the form the backend computes on fastest (once per fit
  when all rows are one chunk; per chunk and iteration otherwise);
- ``chunk_stats(prepared, weights, means) -> SuffStats``;
- ``log_resp(X_chunk, weights, means) -> (log_resp (n, K), log_prob (n,))`` as numpy arrays.

:class:`NumpyBackend` runs :mod:`emnet.mixture.kernels.bernoulli_math` (matrix products) or, for complete
dense 0/1 data, the bit-packed kernels of :mod:`emnet.mixture.kernels.bitpack` (``bitpack=True``,
the default: about twice as fast). ``backend="torch"`` loads
``emnet.mixture.backends.torch_backend.TorchBackend`` lazily.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from emnet.mixture.kernels.bernoulli_math import SuffStats, chunk_stats, e_step, work_dtype
from emnet.mixture.kernels.packed import PackedBinary

BACKENDS = ("numpy", "torch")
DEVICES = ("cpu", "cuda", "auto")


class Backend(Protocol):
    dtype: np.dtype
    takes_integer_input: bool  # True: prepare() handles integer/bool X (no float copy first)

    def prepare(self, X_chunk: object) -> object:
        """The chunk as :meth:`chunk_stats` takes it (may be ``X_chunk`` itself)."""
        ...

    def chunk_stats(
        self,
        X_chunk: object,
        weights: np.ndarray,
        means: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> SuffStats:
        """E-step on a chunk and its (row-weighted) sufficient statistics."""
        ...

    def log_resp(
        self, X_chunk: object, weights: np.ndarray, means: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log responsibilities and per-sample log-likelihood of a chunk."""
        ...


class NumpyBackend:
    """The numpy/BLAS backend (CPU), float32 or float64.

    With ``bitpack=True`` a chunk that is a dense matrix of exactly 0s and 1s (no NaN) is
    packed 8 entries to a byte by :meth:`prepare` and runs through the table kernels of
    :mod:`emnet.mixture.kernels.bitpack`; anything else (sparse, missing values) runs through the
    matrix products of :mod:`emnet.mixture.kernels.bernoulli_math`. Both give the same numbers to rounding.
    """

    def __init__(self, dtype: object = np.float64, *, bitpack: bool = True) -> None:
        self.dtype = work_dtype(None, dtype)
        self.bitpack = bool(bitpack)

    @property
    def takes_integer_input(self) -> bool:
        """prepare() packs integer/bool X into bits: no float copy of it is needed."""
        return self.bitpack

    def __repr__(self) -> str:
        return f"NumpyBackend(dtype={self.dtype.name!r}, bitpack={self.bitpack})"

    def prepare(self, X_chunk: object) -> object:
        if not self.bitpack:
            return X_chunk
        from emnet.mixture.kernels.bitpack import pack_binary

        packed = pack_binary(X_chunk)
        return X_chunk if packed is None else packed

    def chunk_stats(
        self,
        X_chunk: object,
        weights: np.ndarray,
        means: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> SuffStats:
        if isinstance(X_chunk, PackedBinary):
            from emnet.mixture.kernels.bitpack import packed_stats

            return packed_stats(
                X_chunk, weights, means, dtype=self.dtype, sample_weight=sample_weight
            )
        return chunk_stats(X_chunk, weights, means, dtype=self.dtype, sample_weight=sample_weight)

    def log_resp(
        self, X_chunk: object, weights: np.ndarray, means: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        prepared = self.prepare(X_chunk)
        if isinstance(prepared, PackedBinary):
            from emnet.mixture.kernels.bitpack import packed_log_resp

            return packed_log_resp(prepared, weights, means, dtype=self.dtype)
        return e_step(X_chunk, weights, means, dtype=self.dtype)


def prepared_stats(
    backend: Backend,
    X_chunk: object,
    weights: np.ndarray,
    means: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> SuffStats:
    """``backend.chunk_stats(backend.prepare(X_chunk), …)``: one chunk from raw rows.

    Module-level so that ``functools.partial(prepared_stats, backend)`` pickles (dask).
    """
    return backend.chunk_stats(backend.prepare(X_chunk), weights, means, sample_weight)


def make_backend(backend: str, device: str, dtype: object, *, bitpack: bool = True) -> Backend:
    """The backend for the estimator's ``backend``/``device``/``dtype``/``bitpack`` parameters."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if not isinstance(device, str) or not (
        device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise ValueError(f"device: expected one of {DEVICES} or 'cuda:N', got {device!r}")
    if backend == "numpy":
        if device.startswith("cuda"):
            raise ValueError("device='cuda' needs backend='torch' (the numpy backend is CPU only)")
        return NumpyBackend(dtype, bitpack=bitpack)
    try:
        from emnet.mixture.backends.torch_backend import TorchBackend
    except ImportError as exc:
        raise ImportError(f"backend='torch' is not available: {exc}") from exc
    return TorchBackend(device=device, dtype=dtype)
