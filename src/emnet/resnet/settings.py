"""Sweep settings for the report's §3 (``emnet report`` and ``emnet report --quick``).

Measured on the 2-core development machine while other jobs shared it (see the docstring
of REPORT_SETTINGS); pass them as ``sweep(widths, **REPORT_SETTINGS["full"])``.
"""

from __future__ import annotations

from typing import Any

REPORT_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "epochs": 30,
        "seeds": 3,
        "batch_size": 16,
        "optimizer": "sgd",
        "lr": 0.1,
        "drop_last": False,
    },
    "quick": {
        "epochs": 5,
        "seeds": 2,
        "batch_size": 16,
        "optimizer": "sgd",
        "lr": 0.1,
        "drop_last": False,
    },
}
