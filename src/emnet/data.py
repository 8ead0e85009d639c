"""Embedded data sets: scikit-learn's bundled 8×8 digits, and MNIST IDX files users pass in.

Nothing here downloads anything. ``digits`` follows SPEC §3: the first 180 of the 1,797
images are the test/validation set, the other 1,617 the training set, raw 0–16 pixel
values unless a normalisation is asked for.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

N_TEST = 180
NORMALIZATIONS = (False, "unit", "standard")

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class Split(NamedTuple):
    """One part of a data set: images (n, 1, H, W) float32 and labels (n,) int64."""

    images: np.ndarray
    labels: np.ndarray


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)


def digits(normalize: bool | str = False) -> tuple[Split, Split]:
    """scikit-learn's digits as ``(train, test)``; test = the first 180 images (SPEC §3).

    ``normalize``: ``False`` (raw 0–16 values, the write-up's choice), ``"unit"``
    (divide by 16) or ``"standard"`` (subtract the training mean, divide by the training
    standard deviation; ``True`` means the same).
    """
    if normalize is True:
        normalize = "standard"
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize: expected one of False, 'unit', 'standard'; got {normalize!r}")
    images, labels = _load_digits()
    images = images[:, None, :, :]
    if normalize == "unit":
        images = images / np.float32(16.0)
    elif normalize == "standard":
        train = images[N_TEST:]
        mean, std = train.mean(), train.std()
        images = (images - mean) / std
    images = np.ascontiguousarray(images, dtype=np.float32)
    test = Split(images[:N_TEST], labels[:N_TEST])
    train = Split(images[N_TEST:], labels[N_TEST:])
    return train, test


def binarized_digits(threshold: float = 8) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits flattened to (1797, 64) uint8 with ``pixel >= threshold`` → 1."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.number):
        raise TypeError(f"threshold: expected a number, got {threshold!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number, got {threshold!r}")
    images, labels = _load_digits()
    X = (images.reshape(len(images), -1) >= threshold).astype(np.uint8)
    return X, labels


def load_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an MNIST-format IDX file (images or labels; gzip-compressed or not).

    The format: two zero bytes, a type code, the number of dimensions, one big-endian
    uint32 per dimension, then the data in C order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:  # corrupt or truncated gzip stream
        raise ValueError(f"{path}: cannot read IDX data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX file declares zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX payload is {len(raw) - header} bytes, expected {expected} for shape {shape}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)
