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


def parse_k(text: str) -> int | list[int]:
    """'10' → 10; 'A:B' → [A..B]; 'A:B:S' → every S-th from A to B; 'a,b,c' → [a, b, c]."""
    text = text.strip()
    if ":" not in text and "," not in text:  # a single K
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
        return value
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            if step < 1 or stop < start:
                raise ValueError
            values = list(range(start, stop + 1, step))
        else:
            values = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer K, a range A:B (or A:B:STEP) or a list a,b,c, "
            f"got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers of components, got {text!r}")
    return values


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32), got {text!r}")
    return value


def k_list(text: str) -> list[int]:
    """:func:`parse_k`, always as a list of K values."""
    value = parse_k(text)
    return [value] if isinstance(value, int) else value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (e.g. a tolerance)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def add_header_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    """``--header/--no-header`` for commands that read a CSV (``emnet.data.load_table``)."""
    parser.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the CSV's first line holds column names (--header) or data (--no-header); "
        + default_help,
    )
