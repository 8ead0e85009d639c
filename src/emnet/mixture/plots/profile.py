"""The profile plot of a latent class model: what each class answers, item by item.

:func:`plot_profile` draws a fitted :class:`~emnet.mixture.BernoulliMixture` or
:class:`~emnet.mixture.CategoricalMixture`:

- **binary items** (a Bernoulli mixture, or categorical items that all have two answers):
  the probability of the second answer (of a 1 for 0/1 items) per item, items on the x
  axis by name, one line per class (the legend gives the class shares), with error bars of
  ±1.96 standard errors when ``standard_errors`` is given;
- **polytomous items** (any item with more than two answers): one panel per item in a
  grid (1–3 panels side by side, then 2, 3, 4 or 5 columns), the item's own answers on
  its x axis (labels cut at ``label_chars`` with "…", turned when they would collide),
  one bar per class and answer in the class's colour, with ±1.96 SE error bars when
  ``standard_errors`` is given; one class legend for the figure, with the class shares.
  An item with more than ``max_answers`` answers shows its ``max_answers - 1`` most likely
  answers (by Σ_k π_k p_kr, kept in code order) and one "other (n answers)" bar (no error
  bar: the SE of a sum needs covariances), noted in the panel title.

Item names and answers are drawn as plain text (``parse_math=False``: a "$" is a dollar,
never mathtext). matplotlib's object-oriented API only (``matplotlib.figure.Figure``): the caller's backend
and pyplot state are never touched. Files are written atomically (:func:`emnet._io.savefig`).
"""

from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np

from emnet.mixture.core.validation import item_names
from emnet.mixture.plots.common import check_target, figure_result

__all__ = ["plot_profile"]


def _class_labels(weights: np.ndarray) -> list[str]:
    return [f"class {k + 1} ({100 * w:.1f}%)" for k, w in enumerate(weights)]


def _label_x(ax: Any, positions: Any, names: list[str]) -> None:
    long = max((len(n) for n in names), default=0)
    rotate = long > 6 or (len(names) > 10 and long > 2)
    if rotate:
        ax.set_xticks(
            positions, names, rotation=35, ha="right", rotation_mode="anchor", parse_math=False
        )
    else:
        ax.set_xticks(positions, names, parse_math=False)


def _fmt(answer: Any) -> str:
    """An answer as text: 2.0 → "2" (CSV numbers are floats), others as they are."""
    if isinstance(answer, float) and answer.is_integer():
        return str(int(answer))
    return str(answer)


def _common_answer(answers: list[list[Any]], r: int) -> Any:
    values = {_fmt(a[r]) for a in answers if len(a) > r}
    return values.pop() if len(values) == 1 else None


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
            s1 = np.stack([s[:, 1] for s in se], axis=1)[k]
            ax.errorbar(
                x + offsets[k],
                p1[k],
                yerr=_error_bars(p1[k], s1),
                capsize=3,
                label=labels[k],
                **style,
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


#: Answers drawn per item before the rest are pooled into one "other" bar.
MAX_ANSWERS = 10
#: Answer labels longer than this are cut (with "…") on the x axis.
LABEL_CHARS = 20


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _grid_columns(n_panels: int, panel_width: float, max_width: float = 20.0) -> int:
    """Columns of the panel grid: 1–3 panels side by side, 4 as 2 × 2, then 3, 4 and 5
    columns, fewer when the panels are wide (many answers × classes)."""
    if n_panels <= 3:
        cols = n_panels
    elif n_panels == 4:
        cols = 2
    elif n_panels <= 9:
        cols = 3
    elif n_panels <= 16:
        cols = 4
    else:
        cols = 5
    return max(1, min(cols, int(max_width // panel_width)))


def _shown_answers(
    p: np.ndarray,
    answers: list[Any],
    s: np.ndarray | None,
    weights: np.ndarray,
    max_answers: int,
) -> tuple[np.ndarray, list[str], np.ndarray | None, str | None]:
    """The (K, n) probabilities, labels and SEs drawn for one item, and the note on what
    was pooled: an item with more than ``max_answers`` answers keeps its ``max_answers - 1``
    most likely answers overall (Σ_k π_k p_kr), in code order, and pools the rest into
    "other (n answers)", whose SE is not known from the per-answer SEs (no bar)."""
    labels = [_fmt(a) for a in answers]
    n_answers = p.shape[1]
    if n_answers <= max_answers:
        return p, labels, s, None
    overall = weights @ p
    keep = np.sort(np.argsort(-overall, kind="stable")[: max_answers - 1])
    rest = np.setdiff1d(np.arange(n_answers), keep)
    shown = np.concatenate([p[:, keep], p[:, rest].sum(axis=1, keepdims=True)], axis=1)
    shown_se = None
    if s is not None:
        shown_se = np.concatenate([s[:, keep], np.full((p.shape[0], 1), np.nan)], axis=1)
    labels = [labels[r] for r in keep] + [f"other ({len(rest)} answers)"]
    return shown, labels, shown_se, f"top {max_answers - 1} of {n_answers} answers"


def _error_bars(p: np.ndarray, s: np.ndarray | None) -> np.ndarray | None:
    """±1.96 SE as (2, n) lower/upper lengths, cut at 0 and 1; NaN (an estimate on the
    boundary, or the pooled "other") stays NaN, which draws no bar; an SE of 0 draws a
    bar of length 0 (its caps sit on the bar's top)."""
    if s is None:
        return None
    err = 1.96 * s
    return np.stack([np.minimum(err, p), np.minimum(err, 1.0 - p)])


def _turned(labels: list[str], width: float, label_chars: int) -> bool:
    """Whether a panel ``width`` inches wide turns its answer labels: when they would not
    fit side by side (about 0.075 inch a character at 8 points)."""
    long = max(len(_short(t, label_chars)) for t in labels)
    return len(labels) * max(long, 1) * 0.075 > width - 0.5


def _panel_layout(
    items: list[tuple[np.ndarray, list[str], Any, Any]], K: int, label_chars: int
) -> tuple[float, float]:
    """Width and height of one panel (inches): room for the most answers × classes, and
    below the panels for the longest turned label."""
    n_max = max(len(labels) for _, labels, _, _ in items)
    long = max(len(_short(t, label_chars)) for _, labels, _, _ in items for t in labels)
    width = float(np.clip(1.3 + 0.13 * K * n_max + 0.06 * n_max * min(long, 6), 2.8, 6.0))
    turned = any(_turned(labels, width, label_chars) for _, labels, _, _ in items)
    height = 2.7 + (0.055 * long if turned else 0.0)
    return width, height


def _panel_title(name: str, note: str | None, width: float) -> str:
    """The item's name wrapped to the panel (at most two lines, cut with "…"), and the
    note on pooled answers on its own line."""
    per_line = max(20, int(12 * width))
    lines = textwrap.wrap(name, per_line) or [""]
    if len(lines) > 2:
        lines = [lines[0], _short(" ".join(lines[1:]), per_line)]
    if note is not None:
        lines.append(f"({note})")
    return "\n".join(lines)


def _draw_panel(
    ax: Any,
    p: np.ndarray,
    labels: list[str],
    s: np.ndarray | None,
    title: str,
    note: str | None,
    class_labels: list[str],
    colors: Any,
    label_chars: int,
    width: float | None,
) -> None:
    K, n = p.shape
    x = np.arange(n, dtype=np.float64)
    bar = 0.8 / K
    err = _error_bars(p, s)
    for k in range(K):
        ax.bar(
            x - 0.4 + bar * (k + 0.5),
            p[k],
            width=bar * 0.9,
            color=colors[k],
            label=class_labels[k],
            yerr=None if err is None else err[:, k],
            error_kw={"elinewidth": 0.9, "capsize": 2 if bar > 0.1 else 0, "ecolor": "0.2"},
        )
    ticks = [_short(t, label_chars) for t in labels]
    if width is None:  # the caller's axes: the width in inches from its place in the figure
        width = max(1.0, ax.get_position().width * ax.figure.get_figwidth())
    if _turned(labels, width, label_chars):
        ax.set_xticks(
            x, ticks, rotation=40, ha="right", rotation_mode="anchor", fontsize=8, parse_math=False
        )
    else:
        ax.set_xticks(x, ticks, fontsize=8, parse_math=False)
    ax.tick_params(axis="x", length=0)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(0.0, 1.02)
    ax.set_yticks(np.linspace(0.0, 1.0, 5))
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(_panel_title(title, note, width), fontsize=9, parse_math=False)


def _draw_panels(
    axes: list[Any],
    probs: list[np.ndarray],
    answers: list[list[Any]],
    names: list[str],
    weights: np.ndarray,
    se: list[np.ndarray] | None,
    max_answers: int,
    label_chars: int,
    width: float | None = None,
) -> tuple[list[Any], list[str]]:
    """One panel per item on ``axes``; the bar handles and labels of the class legend."""
    from matplotlib import colormaps

    K = len(weights)
    palette = "tab10" if K <= 10 else "tab20"  # more than 20 classes repeat colours
    colors = colormaps[palette](np.arange(K) % colormaps[palette].N)
    class_labels = _class_labels(weights)
    items = [
        _shown_answers(p, a, None if se is None else se[j], weights, max_answers)
        for j, (p, a) in enumerate(zip(probs, answers))
    ]
    for j, (p, labels, s, note) in enumerate(items):
        _draw_panel(axes[j], p, labels, s, names[j], note, class_labels, colors, label_chars, width)
    for a in axes[len(items) :]:
        a.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    return handles[:K], labels[:K]


def plot_profile(
    model: Any,
    feature_names: Any = None,
    *,
    standard_errors: Any = None,
    ax: Any = None,
    path: str | os.PathLike[str] | None = None,
    max_answers: int = MAX_ANSWERS,
    label_chars: int = LABEL_CHARS,
    standardize: bool = True,
) -> Any:
    """Draw the profile of a fitted latent class model (see the module docstring).

    Parameters
    ----------
    model : a fitted ``BernoulliMixture``, ``CategoricalMixture`` or ``LatentClassModel``
        (continuous and count columns: class means in one panel; categorical and binary
        columns: their answers, as for the other two).
    feature_names : item names for the x axis or the panel titles (default:
        ``model.feature_names_in_``, else "item 1", ...).
    standard_errors : ``model.standard_errors(X)`` (or a list of (K, R_j) arrays) for
        error bars of ±1.96 SE, cut at 0 and 1; NaN (an estimate on the boundary) draws no
        bar, 0 a bar of length 0.
    ax : where to draw (returned). Binary items: one Axes. Polytomous items: one Axes per
        item, a sequence of at least J (e.g. ``fig.subplots(r, c).ravel()``; the extra
        ones are switched off) or a single Axes when there is one item; the class legend
        goes on the first.
    path : a file to write (PNG/SVG/PDF by suffix; returned as a Path).
    max_answers : answers drawn per item (polytomous items, at least 2); an item with more
        shows its ``max_answers - 1`` most likely answers and an "other (n answers)" bar,
        noted in its panel's title.
    label_chars : answer labels longer than this are cut with "…".
    standardize : continuous and count columns of a ``LatentClassModel``: class means as
        (mean − overall mean) / overall SD under the model, so columns of different units
        share an axis (False: in the columns' own units).

    With neither ``ax`` nor ``path`` the new ``matplotlib.figure.Figure`` is returned.
    """
    from matplotlib.figure import Figure

    check_target(ax, path, "plot_profile")
    if isinstance(max_answers, bool) or not isinstance(max_answers, int | np.integer):
        raise TypeError(f"max_answers: expected an integer, got {max_answers!r}")
    if max_answers < 2:
        raise ValueError(f"max_answers: expected at least 2, got {max_answers}")
    if isinstance(label_chars, bool) or not isinstance(label_chars, int | np.integer):
        raise TypeError(f"label_chars: expected an integer, got {label_chars!r}")
    if label_chars < 2:
        raise ValueError(f"label_chars: expected at least 2, got {label_chars}")
    items = _items_of(model, standard_errors, feature_names)
    if any(it.kind == "level" for it in items):
        return _plot_family(model, items, ax, path, max_answers, label_chars, standardize)
    probs = [it.values for it in items]
    answers = [list(it.answers or []) for it in items]
    names = [it.name for it in items]
    se = [it.se for it in items] if items and all(it.se is not None for it in items) else None
    weights = np.asarray(model.weights_, dtype=np.float64)
    K, J = len(weights), len(probs)
    binary = all(p.shape[1] == 2 for p in probs)
    fig = None
    if binary:
        if ax is None:
            long = max((len(n) for n in names), default=0)
            size = (min(14.0, max(6.0, 0.55 * J + 3.0)), 4.2 + min(1.5, 0.06 * long))
            fig = Figure(figsize=size, layout="constrained")
            ax = fig.add_subplot()
        _draw_binary(ax, probs, answers, names, weights, se)
    elif ax is None:
        items = [_shown_answers(p, a, None, weights, max_answers) for p, a in zip(probs, answers)]
        width, height = _panel_layout(items, K, label_chars)
        cols = _grid_columns(J, width)
        rows = -(-J // cols)
        fig = Figure(figsize=(cols * width, rows * height + 0.9), layout="constrained")
        grid = fig.subplots(rows, cols, squeeze=False, sharey=True)
        axes = list(grid.ravel())
        handles, labels = _draw_panels(
            axes, probs, answers, names, weights, se, max_answers, label_chars, width
        )
        for row in grid:
            row[0].set_ylabel("P(answer | class)", fontsize=8)
        fig.legend(
            handles,
            labels,
            loc="outside upper center",
            ncols=min(K, 5),
            fontsize=8,
            # the figure's heading: a suptitle and an outside legend would overlap
            title=f"Latent class profile (K = {K}): class (share)"
            + (", bars ±1.96 SE" if se is not None else ""),
            title_fontsize=11,
            frameon=False,
        )
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) < J:
            raise ValueError(
                f"ax: a profile of polytomous items has one panel per item: expected at "
                f"least {J} axes, got {len(axes)}"
            )
        handles, labels = _draw_panels(
            axes, probs, answers, names, weights, se, max_answers, label_chars
        )
        axes[0].set_ylabel("P(answer | class)", fontsize=8)
        axes[0].legend(
            handles,
            labels,
            fontsize=7,
            title="class (share)" + (", ±1.96 SE" if se is not None else ""),
            title_fontsize=7,
            loc="upper right",
        )
    return figure_result(fig, ax, path)


# -- LatentClassModel: panels from its blocks (the contract's ``profile_items``) ---------
def _level_panel(ax: Any, items: list[Any], weights: np.ndarray, standardize: bool) -> None:
    """Class means of the continuous and count columns, ±1.96 SE, one line per class."""
    K, J = len(weights), len(items)
    means = np.stack([it.values for it in items], axis=1)  # (K, J)
    se = None
    if all(it.se is not None for it in items):
        se = np.stack([it.se for it in items], axis=1)
    if standardize:
        var = np.stack([it.variances for it in items], axis=1)
        grand = weights @ means
        sd = np.sqrt(np.maximum(weights @ (var + means**2) - grand**2, 1e-300))
        means = (means - grand) / sd
        se = None if se is None else se / sd
    x = np.arange(J, dtype=np.float64)
    spread = min(0.25, 0.08 * (K - 1)) if se is not None and K > 1 else 0.0
    offsets = np.linspace(-spread / 2, spread / 2, K) if K > 1 else np.zeros(1)
    markers = "osD^vP*Xh<>"
    labels = _class_labels(weights)
    for k in range(K):
        style = {"marker": markers[k % len(markers)], "markersize": 5, "linewidth": 1.6}
        if se is None:
            ax.plot(x, means[k], label=labels[k], **style)
        else:
            ax.errorbar(x + offsets[k], means[k], yerr=1.96 * se[k], capsize=3,
                        label=labels[k], **style)  # fmt: skip
    if standardize:
        ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_ylabel("class mean (SD units from the overall mean)" if standardize else "class mean")
    ax.set_xlim(-0.5, J - 0.5)
    _label_x(ax, x, [it.name for it in items])
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(title="class (share)" + (", ±1.96 SE" if se is not None else ""), fontsize=8,
              title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip


def _items_of(model: Any, standard_errors: Any, feature_names: Any) -> list[Any]:
    """The model's profile panels (``model._profile_items``: the coded-item interface or
    the measurement blocks' ``profile_items``), renamed by ``feature_names`` if given."""
    if not callable(getattr(model, "_profile_items", None)):
        raise TypeError(
            "plot_profile: expected a fitted BernoulliMixture, CategoricalMixture or "
            f"LatentClassModel, got {type(model).__name__}"
        )
    items = model._profile_items(standard_errors)
    if feature_names is None:
        return items
    names = item_names(model, feature_names, len(items))
    return [it._replace(name=name) for it, name in zip(items, names, strict=True)]


def _plot_family(
    model: Any,
    items: list[Any],
    ax: Any,
    path: Any,
    max_answers: int,
    label_chars: int,
    standardize: bool,
) -> Any:
    """The profile of a model with continuous or count columns: a panel of their class
    means, then the categorical and binary columns as for the other models."""
    from matplotlib.figure import Figure

    weights = np.asarray(model.weights_, dtype=np.float64)
    K = len(weights)
    levels = [it for it in items if it.kind == "level"]
    coded = [it for it in items if it.kind == "answers"]
    probs = [it.values for it in coded]
    answers = [list(it.answers) for it in coded]
    names = [it.name for it in coded]
    se = None
    if coded and all(it.se is not None for it in coded):
        se = [it.se for it in coded]
    binary = all(p.shape[1] == 2 for p in probs)
    n_coded_panels = 0 if not coded else (1 if binary else len(coded))
    if ax is not None:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        need = (1 if levels else 0) + n_coded_panels
        if len(axes) < need:
            raise ValueError(f"ax: this profile has {need} panels; got {len(axes)} axes")
        fig = None
    else:
        width = min(14.0, max(6.0, 0.6 * max(len(levels), 1) + 3.0))
        rows = (1 if levels else 0) + (0 if not coded else 1 if binary else -(-len(coded) // 3))
        fig = Figure(figsize=(width, 4.2 * rows + 0.4), layout="constrained")
        if levels and coded and not binary:
            top, bottom = fig.subfigures(2, 1, height_ratios=[1, rows - 1])
            axes = [top.add_subplot()]
            cols = min(3, len(coded))
            axes += list(bottom.subplots(-(-len(coded) // cols), cols, squeeze=False).ravel())
        else:
            axes = list(np.ravel(fig.subplots(rows, 1, squeeze=False)))
    i = 0
    if levels:
        _level_panel(axes[0], levels, weights, standardize)
        scales = " and ".join(dict.fromkeys(it.scale for it in levels if it.scale))
        axes[0].set_title(f"Latent profile (K = {K}): {scales or 'continuous'} columns")
        i = 1
    if coded:
        if binary:
            _draw_binary(axes[i], probs, answers, names, weights, se)
        else:
            panel_width = axes[i].get_figure(root=True).get_figwidth() / min(3, len(coded))
            handles, labels = _draw_panels(
                axes[i:], probs, answers, names, weights, se, max_answers, label_chars,
                panel_width,
            )  # fmt: skip
            axes[i].set_ylabel("P(answer | class)", fontsize=8)
            if not levels:
                axes[i].legend(handles, labels, fontsize=7, title="class (share)",
                               title_fontsize=7, loc="upper right")  # fmt: skip
    return figure_result(fig, ax, path)
