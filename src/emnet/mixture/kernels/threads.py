"""numba's thread pool for emnet's parallel kernels: the layer, and one lock.

Unless ``NUMBA_THREADING_LAYER`` is set, emnet selects numba's "workqueue" layer before its
first parallel call: numba would otherwise pick GNU OpenMP, after which a process that
forks (``multiprocessing``'s default on Linux) gets children that abort on their first
parallel kernel. Workqueue is fork-safe but must not be entered from two Python threads
at once, so every parallel kernel call holds :data:`LOCK`.
"""

from __future__ import annotations

import os
import threading

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

LOCK = threading.Lock()
