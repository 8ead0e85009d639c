"""BLAS threading for the report's small problems.

The digits are 1,797 × 64: every matrix product of §1 and of the EM errata is tiny, and
multithreaded OpenBLAS only adds synchronisation. On a busy machine it is far worse:
measured here on 2 cores shared with other jobs (load ≈ 7), the K = 10, n_init = 10 fit
took 27 s with numpy's 2 BLAS threads and 0.5 s with 1. The report therefore runs those
sections with one BLAS thread; the numbers are the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS libraries (OpenBLAS, MKL, ...) to one thread inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
