"""argparse value types shared by the commands: each names what it expected."""

from __future__ import annotations

import argparse
import math

#: Dask's address schemes (distributed.comm): tcp, tls, inproc, ucx, ws, wss.
SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def n_jobs(text: str) -> int:
    """A number of parallel jobs: n >= 1, or -1 for all cores (-2 all but one, ...)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of parallel jobs >= 1, or -1 for all cores, got {text!r}"
        )
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def scheduler_address(text: str) -> str:
    """A Dask scheduler address such as tcp://host:8786 (checked, not connected to)."""
    from urllib.parse import urlsplit

    expected = f"expected a Dask scheduler address like tcp://host:8786, got {text!r}"
    try:
        parts = urlsplit(text.strip())
        port = parts.port  # ValueError for a port that is not a number in 0..65535
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if parts.scheme not in SCHEDULER_SCHEMES or "://" not in text:
        raise argparse.ArgumentTypeError(
            expected + f" (the scheme must be one of {', '.join(SCHEDULER_SCHEMES)})"
        )
    if parts.scheme != "inproc" and (not parts.hostname or port == 0):
        raise argparse.ArgumentTypeError(expected)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(expected)
    return text.strip()
