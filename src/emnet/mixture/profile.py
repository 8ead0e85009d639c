"""The profile plot of a latent class model: what each class answers, item by item.

:func:`plot_profile` draws a fitted :class:`~emnet.mixture.BernoulliMixture` or
:class:`~emnet.mixture.CategoricalMixture`:

- **binary items** (a Bernoulli mixture, or categorical items that all have two answers):
  the probability of the second answer (of a 1 for 0/1 items) per item, items on the x
  axis by name, one line per class (the legend gives the class shares), with error bars of
  ±1.96 standard errors when ``standard_errors`` is given;
- **polytomous items**: stacked bars of the answer probabilities, one group of K bars per
  item (class numbers above the bars, left to right), one colour per answer.

matplotlib's object-oriented API only (``matplotlib.figure.Figure``): the caller's backend
and pyplot state are never touched. Files are written atomically (:func:`emnet._io.savefig`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from emnet.mixture._validation import item_names

__all__ = ["plot_profile"]


def _profile_data(model: Any) -> tuple[list[np.ndarray], list[list[Any]]]:
    """Per item the (K, R_j) answer probabilities and the answers, in code order."""
    if hasattr(model, "categories_"):
        probs = [np.asarray(p, dtype=np.float64) for p in model.probs_]
        answers = [list(np.asarray(c).tolist()) for c in model.categories_]
        return probs, answers
    if hasattr(model, "means_"):
        means = np.asarray(model.means_, dtype=np.float64)
        return [
            np.stack([1.0 - means[:, j], means[:, j]], axis=1) for j in range(means.shape[1])
        ], [[0, 1] for _ in range(means.shape[1])]
    raise TypeError(
        "plot_profile: expected a fitted BernoulliMixture or CategoricalMixture, "
        f"got {type(model).__name__}"
    )


def _se_arrays(standard_errors: Any, probs: list[np.ndarray]) -> list[np.ndarray] | None:
    """``standard_errors`` (the result of ``model.standard_errors(X)``, or a list of
    (K, R_j) arrays) as a list shaped like ``probs``; NaN (boundary) stays NaN."""
    if standard_errors is None:
        return None
    se = getattr(standard_errors, "probs", standard_errors)
    try:
        arrays = [np.asarray(s, dtype=np.float64) for s in se]
    except (TypeError, ValueError):
        raise ValueError(
            "standard_errors: expected model.standard_errors(X) or a list of (K, R_j) arrays"
        ) from None
    if len(arrays) != len(probs) or any(a.shape != p.shape for a, p in zip(arrays, probs)):
        raise ValueError(
            "standard_errors: shapes do not match the model's item-response probabilities "
            f"({[p.shape for p in probs]})"
        )
    return arrays


def _class_labels(weights: np.ndarray) -> list[str]:
    return [f"class {k + 1} ({100 * w:.1f}%)" for k, w in enumerate(weights)]


def _label_x(ax: Any, positions: Any, names: list[str]) -> None:
    long = max((len(n) for n in names), default=0)
    rotate = long > 6 or (len(names) > 10 and long > 2)
    if rotate:
        ax.set_xticks(positions, names, rotation=35, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(positions, names)


def _fmt(answer: Any) -> str:
    """An answer as text: 2.0 → "2" (CSV numbers are floats), others as they are."""
    if isinstance(answer, float) and answer.is_integer():
        return str(int(answer))
    return str(answer)


def _common_answer(answers: list[list[Any]], r: int) -> Any:
    values = {_fmt(a[r]) for a in answers if len(a) > r}
    return values.pop() if len(values) == 1 else None


def _position_label(answers: list[list[Any]], r: int) -> str:
    """The legend entry of the r-th answer when items differ: "answer 2: 2 / yes"."""
    seen = list(dict.fromkeys(_fmt(a[r]) for a in answers if len(a) > r))
    shown = " / ".join(seen) if len(seen) <= 3 else " / ".join(seen[:3]) + " / ..."
    return f"answer {r + 1}: {shown}"


def _draw_binary(
    ax: Any,
    probs: list[np.ndarray],
    answers: list[list[Any]],
    names: list[str],
    weights: np.ndarray,
    se: list[np.ndarray] | None,
) -> None:
    K, J = len(weights), len(probs)
    x = np.arange(J, dtype=np.float64)
    p1 = np.stack([p[:, 1] for p in probs], axis=1)  # (K, J)
    labels = _class_labels(weights)
    # Nudge the classes apart so that their error bars do not hide each other.
    spread = min(0.25, 0.08 * (K - 1)) if se is not None and K > 1 else 0.0
    offsets = np.linspace(-spread / 2, spread / 2, K) if K > 1 else np.zeros(1)
    markers = "osD^vP*Xh<>"
    for k in range(K):
        style = {"marker": markers[k % len(markers)], "markersize": 5, "linewidth": 1.6}
        if se is None:
            ax.plot(x, p1[k], label=labels[k], **style)
        else:
            err = 1.96 * np.stack([s[:, 1] for s in se], axis=1)[k]
            err = np.where(np.isfinite(err), err, 0.0)
            lower = np.minimum(err, p1[k])  # the bars stop at 0 and 1
            upper = np.minimum(err, 1.0 - p1[k])
            ax.errorbar(
                x + offsets[k], p1[k], yerr=[lower, upper], capsize=3, label=labels[k], **style
            )
    second = _common_answer(answers, 1)
    ax.set_ylabel(f"P(answer = {second})" if second is not None else "P(second answer)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(-0.5, J - 0.5)
    _label_x(ax, x, names)
    ax.set_xlabel("item")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(
        title="class (share)" + (", ±1.96 SE" if se is not None else ""),
        fontsize=8,
        title_fontsize=8,
        loc="best",
    )
    ax.set_title(f"Latent class profile (K = {K})")


def _draw_stacked(
    ax: Any,
    probs: list[np.ndarray],
    answers: list[list[Any]],
    names: list[str],
    weights: np.ndarray,
) -> None:
    from matplotlib import colormaps

    K, J = len(weights), len(probs)
    R = max(len(a) for a in answers)
    colors = colormaps["viridis"](np.linspace(0.1, 0.9, R)) if R > 1 else ["tab:blue"]
    width = 0.8 / K
    same = all(a == answers[0] for a in answers)
    for j, p in enumerate(probs):
        for k in range(K):
            x = j - 0.4 + width * (k + 0.5)
            bottom = 0.0
            for r in range(p.shape[1]):
                label = None
                if k == 0 and (j == 0 or not same):
                    label = _fmt(answers[j][r]) if same else _position_label(answers, r)
                ax.bar(
                    x,
                    p[k, r],
                    width=width * 0.92,
                    bottom=bottom,
                    color=colors[r],
                    edgecolor="white",
                    linewidth=0.5,
                    label=label,
                )
                bottom += p[k, r]
            if K > 1:
                ax.text(x, 1.01, str(k + 1), ha="center", va="bottom", fontsize=7)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # one entry per answer
    ax.legend(
        list(unique.values()),
        list(unique.keys()),
        title="answer" if same else "answer (code order)",
        fontsize=8,
        title_fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    ax.set_ylim(0, 1.08 if K > 1 else 1.0)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlim(-0.5, J - 0.5)
    _label_x(ax, np.arange(J), names)
    ax.set_ylabel("answer probability")
    shares = ", ".join(f"{k + 1}: {100 * w:.1f}%" for k, w in enumerate(weights))
    ax.set_xlabel(f"item; bars left to right: class {shares}" if K > 1 else "item")
    ax.set_title(f"Latent class profile (K = {K})")


def plot_profile(
    model: Any,
    feature_names: Any = None,
    *,
    standard_errors: Any = None,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Draw the profile of a fitted latent class model (see the module docstring).

    Parameters
    ----------
    model : a fitted ``BernoulliMixture`` or ``CategoricalMixture``.
    feature_names : item names for the x axis (default: ``model.feature_names_in_``, else
        "item 1", ...).
    standard_errors : ``model.standard_errors(X)`` (or a list of (K, R_j) arrays) for
        error bars of ±1.96 SE on the binary profile; NaN (an estimate on the boundary)
        draws no bar. Not drawn on stacked bars.
    ax : a matplotlib Axes to draw on (returned).
    path : a file to write (PNG/SVG/PDF by suffix; returned as a Path).

    With neither ``ax`` nor ``path`` the new ``matplotlib.figure.Figure`` is returned.
    """
    from matplotlib.figure import Figure

    if ax is not None and path is not None:
        raise ValueError("plot_profile: pass ax or path, not both")
    probs, answers = _profile_data(model)
    weights = np.asarray(model.weights_, dtype=np.float64)
    J = len(probs)
    names = item_names(model, feature_names, J)
    se = _se_arrays(standard_errors, probs)
    binary = all(p.shape[1] == 2 for p in probs)
    fig = None
    if ax is None:
        long = max((len(n) for n in names), default=0)
        if binary:
            size = (min(14.0, max(6.0, 0.55 * J + 3.0)), 4.2 + min(1.5, 0.06 * long))
        else:
            size = (min(16.0, max(6.5, 0.35 * J * len(weights) + 4.0)), 4.4 + min(1.5, 0.06 * long))
        fig = Figure(figsize=size, layout="constrained")
        ax = fig.add_subplot()
    if binary:
        _draw_binary(ax, probs, answers, names, weights, se)
    else:
        _draw_stacked(ax, probs, answers, names, weights)
    if fig is None:
        return ax
    if path is None:
        return fig
    from emnet._io import savefig

    return Path(savefig(fig, path, dpi=120))
