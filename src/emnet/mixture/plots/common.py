"""Pictures of a fitted Bernoulli mixture: component means and the objective per iteration.

Uses matplotlib's object API (``Figure``, Agg canvas): no global pyplot state, no display.
Files are written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emnet._io import savefig


def check_target(ax: Any, path: Any, name: str) -> None:
    """The one ax=/path= rule, checked before drawing: at most one of them."""
    if ax is not None and path is not None:
        raise ValueError(f"{name}: pass ax or path, not both")


def figure_result(fig: Any, ax: Any, path: Any, dpi: int = 120) -> Any:
    """The one ax=/path= rule of emnet's plotting functions: what was drawn on a caller's
    ``ax`` returns that ``ax``; a new figure is written to ``path`` (atomically, the written
    Path returned) or, without a path, returned."""
    if fig is None:
        return ax
    if path is None:
        return fig
    return Path(savefig(fig, path, dpi=dpi))


def plot_means(
    means: np.ndarray,
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Any = None,
    weights: np.ndarray | None = None,
    image_shape: tuple[int, int] | None = None,
    title: str | None = None,
    labels: Sequence[str] | None = None,
) -> Any:
    """Component means as a grid of images (``image_shape``) or, without one, a heat map.

    Writes ``path`` (returns it) or draws on ``ax`` (returns it): for the image grid a
    sequence of at least K axes, one per component (e.g. ``fig.subplots(r, c).ravel()``),
    for the heat map one axes. ``labels``: a title per component (default: k and its
    weight). matplotlib's object-oriented API only: the caller's backend and pyplot
    state are never touched.
    """
    from matplotlib.figure import Figure

    check_target(ax, path, "plot_means")
    means = np.asarray(means, dtype=np.float64)
    K, D = means.shape
    if labels is not None and len(labels) != K:
        raise ValueError(f"labels: expected {K} labels, got {len(labels)}")
    fig = None
    if image_shape is not None:
        h, w = image_shape
        if h * w != D:
            raise ValueError(f"image_shape: {h}x{w} does not hold {D} features")
        if ax is None:
            cols = min(K, max(5, math.ceil(math.sqrt(K))))
            rows = math.ceil(K / cols)
            fig = Figure(figsize=(1.3 * cols, 1.5 * rows + 0.4), layout="constrained")
            axes = list(np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel())
        else:
            axes = list(np.ravel(np.asarray(ax, dtype=object)))
            if len(axes) < K:
                raise ValueError(f"ax: expected at least {K} axes (one per component)")
        for k, a in enumerate(axes):
            a.set_axis_off()
            if k >= K:
                continue
            a.imshow(means[k].reshape(h, w), cmap="gray_r", vmin=0.0, vmax=1.0)
            if labels is not None:
                label = labels[k]
            else:
                label = f"k={k}" if weights is None else f"k={k}  π={weights[k]:.3f}"
            a.set_title(label, fontsize=8)
    else:
        if ax is None:
            fig = Figure(figsize=(min(12.0, 2.0 + 0.12 * D), 1.2 + 0.3 * K), layout="constrained")
            heat = fig.subplots()
        else:
            heat = ax
        im = heat.imshow(
            means, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest"
        )
        heat.set_xlabel("feature d")
        heat.set_ylabel("component k")
        if labels is not None:
            heat.set_yticks(range(K), list(labels), fontsize=7)
        elif weights is not None:
            heat.set_yticks(range(K), [f"{k} (π={weights[k]:.3f})" for k in range(K)], fontsize=7)
        heat.figure.colorbar(im, ax=heat, label="mean p_kd")
    if fig is None:
        if title is not None:
            first = ax if image_shape is None else axes[0]
            first.figure.suptitle(title)
        return ax
    fig.suptitle(title or f"Bernoulli mixture component means (K={K})")
    return figure_result(fig, ax, path)


def plot_history(
    history: np.ndarray,
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """The objective (mean log-likelihood per sample) after each EM iteration.

    Writes ``path`` (returns it) or draws on ``ax`` (returns it); no pyplot state."""
    from matplotlib.figure import Figure

    check_target(ax, path, "plot_history")
    history = np.asarray(history, dtype=np.float64)
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.0, 3.8), layout="constrained")
        ax = fig.subplots()
    ax.plot(np.arange(1, len(history) + 1), history, marker="o", markersize=3)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("log-likelihood per sample")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "EM: log-likelihood per iteration (never decreases)")
    return figure_result(fig, ax, path)
