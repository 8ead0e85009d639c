"""Sweep settings for the report's §3 (``emnet report`` and ``emnet report --quick``).

Use as ``sweep(REPORT_WIDTHS, **REPORT_SETTINGS["full"])``. Measured on the 2-core
development machine while other jobs shared it, all four widths, results and plots
written, 1 torch thread:

* "full" (50 epochs, 3 seeds): 42.5 s for the whole sweep (training and evaluation:
  C = 1, 2, 4 about 2.5 s each, C = 64 6.2 s; the rest is start-up, checkpoints and
  plots). Load average 3–4.5, 2026-11-24, after the dense small-map convolution and
  chunked evaluation; before them it took 70 s at load average 5.7–6.6.
* "quick" (10 epochs, 2 seeds): 12.3 s (before: 13 s).

``drop_last=True``: 1,617 = 101·16 + 1, so at batch size 16 every epoch would otherwise
end on a one-sample batch whose BatchNorm statistics spoil the running averages; the
resulting spikes (C = 64 at chance accuracy for its first epochs) bury the write-up's
finding — the wider the net, the faster and smoother the loss falls — which these
settings show plainly (C = 64: train loss ≈ 0 within 10 epochs, test accuracy ≈ 0.95).
"""

from __future__ import annotations

from typing import Any

from emnet._checks import WIDTHS

REPORT_WIDTHS: tuple[int, ...] = WIDTHS

REPORT_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "epochs": 50,
        "seeds": 3,
        "batch_size": 16,
        "optimizer": "sgd",
        "lr": 0.1,
        "drop_last": True,
    },
    "quick": {
        "epochs": 10,
        "seeds": 2,
        "batch_size": 16,
        "optimizer": "sgd",
        "lr": 0.1,
        "drop_last": True,
    },
}
