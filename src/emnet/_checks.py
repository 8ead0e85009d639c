"""Argument checks and small shared values that every system may use (a leaf: it imports
nothing of emnet, and torch only inside :func:`resolve_device`).

Every check raises a TypeError (wrong kind) or ValueError (wrong value) whose message
starts with the argument's name, so the CLI can show it as the flag.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import NamedTuple

#: The widths C the write-up trains ResNet(C) with (3(c), 3(d)): the CLI default and the
#: report's sweep.
WIDTHS: tuple[int, ...] = (1, 2, 4, 64)

#: The largest float32: a learning rate or weight decay above it overflows torch's weights.
FLOAT32_MAX = 3.4028234663852886e38

#: Where a device may be: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
DEVICES = ("auto", "cpu", "cuda", "cuda:N")


class Erratum(NamedTuple):
    """A claim of the write-up, what is right instead, and the computed evidence."""

    where: str
    writeup: str
    correct: str
    evidence: str


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """``value`` as an int (bool refused; numpy integers accepted), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_number(
    value: object,
    name: str,
    minimum: float | None = None,
    *,
    finite: bool = True,
    maximum: float | None = None,
) -> float:
    """``value`` as a float (bool refused), finite unless ``finite=False``, within
    [``minimum``, ``maximum``] where given."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected a finite number >= {minimum:g}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected a number <= {maximum:.2g}, got {value}")
    return value


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {value!r}")
    return value


def resolve_device(device: object, name: str = "device") -> str:
    """ "auto", "cpu", "cuda" or "cuda:N" (or a torch.device) → "cpu", "cuda" or "cuda:N".

    "auto" is CUDA when torch sees a device, else the CPU; a CUDA device torch does not
    see is a ValueError naming ``name``.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"{name}: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    index = device[5:] if device.startswith("cuda:") else None
    if device != "cuda" and not (index and index.isdigit()):
        raise ValueError(f"{name}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"{name}: {device!r} requested but no CUDA device is available")
    if index is not None and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"{name}: {device!r} requested but torch sees {torch.cuda.device_count()} CUDA "
            "device(s)"
        )
    return device


def describe_value(value: float) -> str:
    """A found entry as an error message shows it (integers without a trailing .0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def non_binary_error(name: str, value: float, row: int, col: int) -> ValueError:
    """The one wording of "this data is not 0/1" (mixture inputs, ``emnet em --data``)."""
    msg = (
        f"{name} must be binary (0/1, NaN for missing): found {describe_value(value)} at "
        f"row {row}, column {col}"
    )
    if value < 0:
        msg += " (Negative values in data are not allowed)"
    return ValueError(msg)
