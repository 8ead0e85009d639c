"""Embedded data sets: scikit-learn's bundled 8×8 digits, and MNIST IDX files users pass in.

Nothing here downloads anything. ``digits`` follows SPEC §3: the first 180 of the 1,797
images are the test/validation set, the other 1,617 the training set, raw 0–16 pixel
values unless a normalisation is asked for.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from emnet._checks import check_number

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
    threshold = check_number(threshold, "threshold")
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


# ---------------------------------------------------------------------------- user tables


class Table(NamedTuple):
    """A user's table of numbers: ``values`` (n, D) float64 (or the .npy dtype), and the
    column names from a CSV header line (None without one)."""

    values: np.ndarray
    columns: list[str] | None


TABLE_SUFFIXES = (".csv", ".npy")


def load_table(path: str | os.PathLike[str], header: bool | None = None) -> Table:
    """Read a (n, D) table of numbers from a ``.npy`` or comma-separated ``.csv`` file.

    CSV: UTF-8 (a byte-order mark is allowed); an empty cell (or ``nan``) is a missing
    value (NaN). ``header``: True — the first line holds column names; False — every line
    is data; None (default) — decided from the first line only when that is unambiguous:
    all cells non-numeric names → a header, all numbers or empty → data. A first line that
    mixes the two is a ValueError naming line 1 (pass ``header`` to say which it is).
    Any other non-numeric cell, or a row of the wrong length, is a ValueError naming its
    line and column. ``.npy``: a numeric array, never unpickled; 1-D is one column.
    Every error is a ValueError (or TypeError for a bad ``header``) naming the file.
    """
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header: expected True, False or None, got {header!r}")
    p = Path(path)
    try:
        is_file = p.is_file()
    except OSError as exc:
        raise ValueError(f"{p}: {exc.strerror or exc}") from None
    if not is_file:
        what = "is a directory" if p.is_dir() else "does not exist or is not a file"
        raise ValueError(f"{p} {what}")
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{p}: expected a .npy or .csv file, got {p.name}")
    columns = None
    try:
        if suffix == ".npy":
            if header is not None:
                raise ValueError(f"{p}: header applies to CSV files only (this is a .npy file)")
            X = _read_npy(p)
        else:
            X, columns = _read_csv(p, header)
    except (OSError, EOFError) as exc:
        raise ValueError(f"{p}: {getattr(exc, 'strerror', None) or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not UTF-8 text") from None
    if X.ndim == 1 and X.size:
        X = X.reshape(-1, 1) if suffix == ".npy" else X.reshape(1, -1)
    if X.ndim != 2:
        raise ValueError(f"{p}: expected a 2-D table of rows, got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"{p}: holds no data")
    return Table(X, columns)


def _read_npy(p: Path) -> np.ndarray:
    try:
        X = np.load(p, allow_pickle=False)
    except OSError:
        raise
    except Exception as exc:  # object arrays, a truncated or garbled file, a broken zip
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{p}: not a readable .npy file ({reason})") from None
    if not isinstance(X, np.ndarray):  # an .npz archive under a .npy name
        with contextlib.suppress(Exception):
            X.close()
        raise ValueError(f"{p}: not a .npy file (it is an .npz archive)")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{p}: expected numbers, got an array of dtype {X.dtype}")
    return X


def _read_csv(p: Path, header: bool | None) -> tuple[np.ndarray, list[str] | None]:
    import csv

    with p.open(encoding="utf-8-sig", newline="") as fh:
        lines = [(i, row) for i, row in enumerate(csv.reader(fh), start=1) if row]
    columns = None
    if lines:
        first_line, first = lines[0]
        kinds = {_cell_kind(field) for field in first}
        if header is None:
            if kinds == {"text"}:
                header = True
            elif "text" not in kinds:
                header = False
            else:
                shown = ",".join(first)
                raise ValueError(
                    f"{p}: line {first_line} ({shown!r}) is neither a header (all column "
                    "names) nor data (all numbers); say which with --header or --no-header "
                    "(header=True/False)"
                )
        if header:
            columns = [field.strip().strip('"') for field in first]
            lines = lines[1:]
    rows: list[list[float]] = []
    width = len(columns) if columns is not None else None
    for line, row in lines:
        values = []
        for col, field in enumerate(row, start=1):
            if _cell_kind(field) == "text":
                raise ValueError(
                    f"{p}: line {line} column {col}: expected a number or an empty cell, got "
                    f"{field.strip()!r} (is the file comma-separated?)"
                )
            field = field.strip().strip('"')
            values.append(float(field) if field else np.nan)
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise ValueError(f"{p}: line {line} has {len(values)} columns, expected {width}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(len(rows), width or 0), columns


def _cell_kind(field: str) -> str:
    """'empty', 'number' or 'text'."""
    field = field.strip().strip('"').strip()
    if not field:
        return "empty"
    try:
        float(field)
    except ValueError:
        return "text"
    return "number"
