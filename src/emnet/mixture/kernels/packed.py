"""The bit-packed form of complete binary data (built by ``kernels.bitpack.pack_binary``).

A leaf module of its own, so that the backends can check for it without importing numba
and the kernels can build it without importing the backends.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PackedBinary(NamedTuple):
    """A complete binary (n, D) matrix packed 8 to a byte, both ways (big-endian bits).

    ``rows`` (n, ⌈D/8⌉): bit 7 − j of ``rows[i, b]`` is x[i, 8b + j].
    ``cols`` (⌈n/8⌉, D): bit 7 − j of ``cols[g, d]`` is x[8g + j, d] (0 past the last row).
    Built by ``kernels.bitpack.pack_binary``; defined here so that checking for it does not
    import numba.
    """

    rows: np.ndarray
    cols: np.ndarray
    shape: tuple[int, int]
