"""Pictures of a fitted Bernoulli mixture: component means and the objective per iteration.

Uses matplotlib's object API (``Figure``, Agg canvas): no global pyplot state, no display.
Files are written atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from emnet._io import savefig


def plot_means(
    means: np.ndarray,
    path: str | os.PathLike[str],
    *,
    weights: np.ndarray | None = None,
    image_shape: tuple[int, int] | None = None,
    title: str | None = None,
) -> Path:
    """Component means as a grid of images (``image_shape``) or, without one, a heat map."""
    from matplotlib.figure import Figure

    means = np.asarray(means, dtype=np.float64)
    K, D = means.shape
    if image_shape is not None:
        h, w = image_shape
        if h * w != D:
            raise ValueError(f"image_shape: {h}x{w} does not hold {D} features")
        cols = min(K, max(5, math.ceil(math.sqrt(K))))
        rows = math.ceil(K / cols)
        fig = Figure(figsize=(1.3 * cols, 1.5 * rows + 0.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for k, ax in enumerate(axes):
            ax.set_axis_off()
            if k >= K:
                continue
            ax.imshow(means[k].reshape(h, w), cmap="gray_r", vmin=0.0, vmax=1.0)
            label = f"k={k}" if weights is None else f"k={k}  π={weights[k]:.3f}"
            ax.set_title(label, fontsize=8)
    else:
        fig = Figure(figsize=(min(12.0, 2.0 + 0.12 * D), 1.2 + 0.3 * K), layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(
            means, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest"
        )
        ax.set_xlabel("feature d")
        ax.set_ylabel("component k")
        if weights is not None:
            ax.set_yticks(range(K), [f"{k} (π={weights[k]:.3f})" for k in range(K)], fontsize=7)
        fig.colorbar(im, ax=ax, label="mean p_kd")
    fig.suptitle(title or f"Bernoulli mixture component means (K={K})")
    return savefig(fig, path, dpi=120)


def plot_history(
    history: np.ndarray, path: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """The objective (mean log-likelihood per sample) after each EM iteration."""
    from matplotlib.figure import Figure

    history = np.asarray(history, dtype=np.float64)
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.arange(1, len(history) + 1), history, marker="o", markersize=3)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("log-likelihood per sample")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "EM: log-likelihood per iteration (never decreases)")
    return savefig(fig, path, dpi=120)
