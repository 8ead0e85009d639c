"""Figures of a sweep: loss curves per width (train blue, test orange) and a width summary.

matplotlib's object-oriented API (``Figure``, saved through :func:`emnet._io.savefig`):
no pyplot, no backend chosen, nothing left open. Each function returns its Figure and
saves it when given a ``path``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emnet import _io
from emnet.resnet.results import SweepResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRAIN_COLOR = "tab:blue"
TEST_COLOR = "tab:orange"


def _figure(**kwargs: object) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        _io.savefig(fig, path, dpi=110)
    return fig


def plot_curves(
    result: SweepResult, path: str | Path | None = None, *, band: str = "minmax"
) -> Figure:
    """One panel per width: mean train (blue) and test (orange) loss per epoch over seeds,
    with a band over seeds (``band``: "minmax" or "std").

    The panels share one y-axis so widths compare at a glance; it ends a little above the
    largest untrained (epoch 0) loss, and rarer spikes above that run off the panel.
    """
    if band not in ("minmax", "std"):
        raise ValueError(f"band: expected 'minmax' or 'std', got {band!r}")
    widths = result.widths
    ncols = 2 if len(widths) in (2, 4) else min(len(widths), 3)
    nrows = math.ceil(len(widths) / ncols)
    fig = _figure(figsize=(3.9 * ncols + 0.3, 2.9 * nrows + 0.8))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    n_seeds = len(result.seeds)
    top = 0.0
    for ax, width in zip(axes.flat, widths):
        for metric, color, label in (
            ("train_loss", TRAIN_COLOR, "train"),
            ("test_loss", TEST_COLOR, "test"),
        ):
            curves = result.curves(width, metric)
            epochs = np.arange(curves.shape[1])
            mean = curves.mean(0)
            if band == "std":
                lo, hi = mean - curves.std(0), mean + curves.std(0)
            else:
                lo, hi = curves.min(0), curves.max(0)
            ax.plot(epochs, mean, color=color, lw=1.4, label=label)
            if n_seeds > 1:
                ax.fill_between(epochs, lo, hi, color=color, alpha=0.22, lw=0)
            if np.isfinite(mean[0]):
                top = max(top, float(mean[0]) * 1.1)
        ax.set_title(f"C = {width}  ({result.param_counts[width]:,} parameters)", fontsize=10)
        ax.grid(alpha=0.3)
    if top > 0:
        axes.flat[0].set_ylim(0, top)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean cross-entropy")
    for ax in list(axes.flat)[len(widths) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, loc="upper right")
    c = result.config
    band_text = "min–max" if band == "minmax" else "±1 std"
    fig.suptitle(
        f"ResNet(C) on the digits: train (blue) and test (orange) loss per epoch\n"
        f"mean of {n_seeds} seed{'s' * (n_seeds > 1)}, band {band_text}; {c['optimizer']} "
        f"lr={c['lr']}, batch {c['batch_size']}, drop_last={c['drop_last']}",
        fontsize=10,
    )
    return _finish(fig, path)


def plot_summary(result: SweepResult, path: str | Path | None = None) -> Figure:
    """Final test loss and test accuracy against width (every seed, and the mean)."""
    widths = result.widths
    fig = _figure(figsize=(8.4, 3.3))
    axes = fig.subplots(1, 2)
    for ax, metric, label in (
        (axes[0], "test_loss", "final test loss"),
        (axes[1], "test_acc", "final test accuracy"),
    ):
        finals = np.array([result.curves(w, metric)[:, -1] for w in widths])  # (W, S)
        for i, w in enumerate(widths):
            ax.scatter(
                np.full(finals.shape[1], w), finals[i], color=TEST_COLOR, alpha=0.6, s=18,
                label="each seed" if i == 0 else None,
            )  # fmt: skip
        ax.plot(widths, finals.mean(1), color="black", marker="o", lw=1.2, label="mean over seeds")
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.set_xlabel("width C (channels)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].set_ylim(0, 1.02)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"ResNet(C) after {result.config['epochs']} epochs, {len(result.seeds)} seeds", fontsize=10
    )
    return _finish(fig, path)
