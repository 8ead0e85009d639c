"""emnet.mixture.plot_profile: binary lines with error bars; polytomous items one panel
each, their own answers on the x axis, grouped bars per class with error bars."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from emnet.datasets import lsat7, values
from emnet.mixture import BernoulliMixture, CategoricalMixture, plot_profile

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bernoulli():
    X = lsat7()
    return X, BernoulliMixture(3, n_init=3, random_state=0).fit(X).reorder("weight")


@pytest.fixture(scope="module")
def categorical_binary():
    X = values()
    return X, CategoricalMixture(2, n_init=3, random_state=0).fit(X).reorder("weight")


@pytest.fixture(scope="module")
def polytomous():
    rng = np.random.default_rng(0)
    X = rng.integers(1, 4, size=(240, 5))
    X[:120, :2] = 1
    frame = pd.DataFrame(X, columns=["satisfaction", "trust", "income", "age", "q5"])
    return frame, CategoricalMixture(3, n_init=2, random_state=0).fit(frame).reorder("weight")


def _data_lines(ax):
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 1]


def _tick_labels(ax):
    return [t.get_text() for t in ax.get_xticklabels()]


def test_bernoulli_one_line_per_class_named_items(bernoulli):
    X, model = bernoulli
    fig = plot_profile(model)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    lines = _data_lines(ax)
    assert len(lines) == 3
    for k, line in enumerate(lines):
        np.testing.assert_allclose(line.get_ydata(), model.means_[k])
    assert _tick_labels(ax) == list(X.columns)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"class {k + 1} ({100 * w:.1f}%)" for k, w in enumerate(model.weights_)]
    assert ax.get_ylabel() == "P(answer = 1)"


def test_feature_names_override_and_checked(bernoulli):
    _, model = bernoulli
    names = ["first question", "second question", "third", "fourth", "fifth"]
    (ax,) = plot_profile(model, names).axes
    assert _tick_labels(ax) == names
    assert ax.get_xticklabels()[0].get_rotation() > 0  # long names are turned
    with pytest.raises(ValueError, match="feature_names: expected 5 names"):
        plot_profile(model, ["a"])


def test_error_bars_are_1_96_standard_errors(categorical_binary):
    X, model = categorical_binary
    se = model.standard_errors(X)
    (ax,) = plot_profile(model, standard_errors=se).axes
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(bars) == 2  # one set of error bars per class
    p = np.stack([q[:, 1] for q in model.probs_], axis=1)
    s = np.stack([q[:, 1] for q in se.probs], axis=1)
    for k, coll in enumerate(bars):
        for j, seg in enumerate(coll.get_segments()):
            lo, hi = seg[0][1], seg[1][1]
            assert lo == pytest.approx(max(0.0, p[k, j] - 1.96 * s[k, j]))
            assert hi == pytest.approx(min(1.0, p[k, j] + 1.96 * s[k, j]))
    assert _tick_labels(ax) == ["A", "B", "C", "D"]
    assert ax.get_ylabel() == "P(answer = 2)"  # the values data codes answers 1/2
    with pytest.raises(ValueError, match="standard_errors"):
        plot_profile(model, standard_errors=[np.zeros((2, 3))])


def _panels(fig):
    """The drawn panels (the grid's spare axes are switched off)."""
    return [a for a in fig.axes if a.axison]


def _class_bars(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def _legend_texts(fig):
    legends = list(fig.legends) + [a.get_legend() for a in fig.axes if a.get_legend()]
    assert len(legends) == 1, "one class legend for the figure"
    return [t.get_text() for t in legends[0].get_texts()]


def _class_legend(model):
    return [f"class {k + 1} ({100 * w:.1f}%)" for k, w in enumerate(model.weights_)]


def test_polytomous_one_panel_per_item_with_its_answers(polytomous):
    X, model = polytomous
    fig = plot_profile(model)
    panels = _panels(fig)
    assert len(panels) == 5
    assert [a.get_title() for a in panels] == list(X.columns)
    for j, ax in enumerate(panels):
        assert _tick_labels(ax) == ["1", "2", "3"]
        bars = _class_bars(ax)
        assert len(bars) == 3  # one set of bars per class
        for k, c in enumerate(bars):
            np.testing.assert_allclose([p.get_height() for p in c.patches], model.probs_[j][k])
            assert c.errorbar is None  # no standard errors given: no error bars
    # one legend for the figure, one entry per class with its share: none per answer code
    assert _legend_texts(fig) == _class_legend(model)


def test_polytomous_error_bars_are_1_96_standard_errors(polytomous):
    X, model = polytomous
    se = model.standard_errors(X)
    fig = plot_profile(model, standard_errors=se)
    panels = _panels(fig)
    for j, ax in enumerate(panels):
        bars = _class_bars(ax)
        assert all(c.errorbar is not None for c in bars)
        for k, c in enumerate(bars):
            segments = c.errorbar.lines[2][0].get_segments()
            assert len(segments) == 3
            for r, seg in enumerate(segments):
                p, s = model.probs_[j][k, r], se.probs[j][k, r]
                if not np.isfinite(s):
                    assert len(seg) == 0  # a boundary estimate: no bar
                    continue
                assert seg[0][1] == pytest.approx(max(0.0, p - 1.96 * s))
                assert seg[1][1] == pytest.approx(min(1.0, p + 1.96 * s))
    assert "±1.96 SE" in fig.legends[0].get_title().get_text()


def test_nan_and_zero_standard_errors(polytomous):
    _, model = polytomous
    se = [np.full(p.shape, 0.05) for p in model.probs_]
    se[0][0, 0] = np.nan  # on the boundary
    se[0][1, 0] = 0.0
    (ax, *_) = _panels(plot_profile(model, standard_errors=se))
    bars = _class_bars(ax)
    assert len(bars[0].errorbar.lines[2][0].get_segments()[0]) == 0  # NaN: no bar
    zero = bars[1].errorbar.lines[2][0].get_segments()[0]
    assert zero[0][1] == zero[1][1] == pytest.approx(model.probs_[0][1, 0])  # SE 0: length 0
    full = bars[2].errorbar.lines[2][0].get_segments()[0]
    assert full[1][1] - full[0][1] > 0


def test_items_with_different_answers_keep_their_own_labels():
    rng = np.random.default_rng(1)
    X = rng.integers(1, 4, size=(200, 3)).astype(object)
    X[:, 2] = rng.choice(["no", "yes"], size=200)
    model = CategoricalMixture(2, n_init=1, random_state=0).fit(pd.DataFrame(X))
    fig = plot_profile(model)
    panels = _panels(fig)
    assert [_tick_labels(a) for a in panels] == [["1", "2", "3"], ["1", "2", "3"], ["no", "yes"]]
    assert [len(_class_bars(a)[0].patches) for a in panels] == [3, 3, 2]
    assert _legend_texts(fig) == _class_legend(model)


@pytest.fixture(scope="module")
def many_answers():
    rng = np.random.default_rng(2)
    n = 4000
    frame = pd.DataFrame(
        {
            "occupation": [f"job {r:03d}" for r in rng.integers(0, 200, n)],
            "sex": rng.choice(["f", "m"], n),
        }
    )
    return frame, CategoricalMixture(2, n_init=1, random_state=0, max_iter=200).fit(frame)


def test_an_item_with_200_answers_is_summarised(many_answers):
    _, model = many_answers
    assert model.n_categories_[0] == 200
    fig = plot_profile(model, standard_errors=[np.full(p.shape, 0.01) for p in model.probs_])
    ax = _panels(fig)[0]
    ticks = _tick_labels(ax)
    assert len(ticks) == 10 <= 11
    assert ticks[-1] == "other (191 answers)"
    assert "top 9 of 200 answers" in ax.get_title()
    bars = _class_bars(ax)
    assert sum(len(c.patches) for c in bars) == 2 * 10
    overall = model.weights_ @ model.probs_[0]
    top = np.sort(np.argsort(-overall)[:9])
    assert ticks[:9] == [str(model.categories_[0][r]) for r in top]
    for k, c in enumerate(bars):
        heights = [p.get_height() for p in c.patches]
        np.testing.assert_allclose(heights[:9], model.probs_[0][k, top])
        assert heights[9] == pytest.approx(1.0 - model.probs_[0][k, top].sum())
        assert len(c.errorbar.lines[2][0].get_segments()[9]) == 0  # SE of "other" unknown
    assert len(_legend_texts(fig)) == 2  # per class, never per answer
    assert "top" not in _panels(fig)[1].get_title()
    # the cut is adjustable
    assert len(_tick_labels(_panels(plot_profile(model, max_answers=5))[0])) == 5
    with pytest.raises(ValueError, match="max_answers"):
        plot_profile(model, max_answers=1)


def test_twelve_items_with_long_labels_in_a_grid():
    rng = np.random.default_rng(3)
    words = [
        "strongly disagree with the statement",
        "disagree",
        "neither agree nor disagree",
        "agree somewhat",
        "strongly agree",
        "don't know",
    ]
    n_answers = [2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 3, 4]
    names = [f"Q{j + 1}: how much do you trust institution number {j + 1}" for j in range(12)]
    frame = pd.DataFrame(
        {name: rng.choice(words[:R], 300) for name, R in zip(names, n_answers, strict=True)}
    )
    model = CategoricalMixture(3, n_init=1, random_state=0).fit(frame)
    fig = plot_profile(model)
    panels = _panels(fig)
    assert len(panels) == 12
    grid = fig.axes[0].get_gridspec()  # 12 wide panels (6 answers × 3 classes): 3 × 4
    assert (grid.nrows, grid.ncols) == (4, 3)
    assert [a.get_title() for a in panels] == names  # full names fit in two lines
    for ax, categories in zip(panels, model.categories_, strict=True):
        ticks = _tick_labels(ax)
        assert all(len(t) <= 20 for t in ticks)
        expected = [c if len(c) <= 20 else c[:19].rstrip() + "…" for c in categories]
        assert ticks == expected
    assert "neither agree nor d…" in _tick_labels(panels[3])
    assert "disagree" in _tick_labels(panels[1])  # short labels are whole
    assert len(_legend_texts(fig)) == 3


def test_draws_on_given_axes_and_writes_file(tmp_path, bernoulli, polytomous):
    _, model = bernoulli
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_profile(model, ax=ax) is ax
    assert len(_data_lines(ax)) == 3
    path = plot_profile(model, path=tmp_path / "p.png")
    assert path == tmp_path / "p.png" and path.read_bytes()[:8] == PNG
    _, poly = polytomous
    assert plot_profile(poly, path=tmp_path / "q.svg").read_text().lstrip().startswith("<")
    with pytest.raises(ValueError, match="not both"):
        plot_profile(model, ax=ax, path=tmp_path / "x.png")
    with pytest.raises(TypeError, match="fitted BernoulliMixture"):
        plot_profile(object())


def test_backend_and_pyplot_untouched(tmp_path):
    code = (
        "import sys, matplotlib\n"
        # rcParams' raw entry: get_backend() itself would import pyplot to resolve 'auto'
        "before = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
        "from emnet.datasets import lsat6\n"
        "from emnet.mixture import BernoulliMixture, plot_profile\n"
        "X = lsat6()\n"
        "m = BernoulliMixture(2, random_state=0).fit(X)\n"
        f"plot_profile(m, standard_errors=m.standard_errors(X), path={str(tmp_path / 'a.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert dict.__getitem__(matplotlib.rcParams, 'backend') == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG


def test_grid_columns_follow_the_panel_count_and_width():
    from emnet.mixture.plots.profile import _grid_columns

    narrow = [_grid_columns(n, 3.0) for n in (1, 2, 3, 4, 5, 9, 10, 16, 17, 20)]
    assert narrow == [1, 2, 3, 2, 3, 3, 4, 4, 5, 5]
    assert _grid_columns(12, 6.0) == 3  # wide panels: fewer columns (at most 20 inches)
    assert _grid_columns(12, 25.0) == 1


def test_polytomous_draws_on_given_axes(polytomous):
    X, model = polytomous
    fig = Figure()
    axes = fig.subplots(2, 3).ravel()
    assert plot_profile(model, ax=axes) is axes
    assert [a.get_title() for a in axes[:5]] == list(X.columns)
    assert not axes[5].axison  # the spare one is switched off
    assert len(fig.axes[0].get_legend().get_texts()) == 3
    with pytest.raises(ValueError, match="expected at least 5 axes"):
        plot_profile(model, ax=Figure().add_subplot())
    one = CategoricalMixture(2, random_state=0).fit(X[["satisfaction"]])
    ax = Figure().add_subplot()
    assert plot_profile(one, ax=ax) is ax
    assert _tick_labels(ax) == ["1", "2", "3"]


def test_polytomous_profile_leaves_backend_and_pyplot_alone(tmp_path):
    code = (
        "import sys, matplotlib\n"
        "matplotlib.use('svg')\n"
        "import numpy as np\n"
        "from emnet.mixture import CategoricalMixture, plot_profile\n"
        "X = np.random.default_rng(0).integers(0, 4, size=(100, 3))\n"
        "m = CategoricalMixture(2, random_state=0).fit(X)\n"
        f"plot_profile(m, standard_errors=m.standard_errors(X), path={str(tmp_path / 'a.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.get_backend() == 'svg'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG


def test_dollar_signs_in_names_and_answers_are_plain_text(tmp_path):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            r"cost in $\bad$": rng.choice(["$5", "$10 or $\\x", "free"], 150),
            "income $": rng.choice(["a", "b", "c"], 150),
        }
    )
    model = CategoricalMixture(2, random_state=0).fit(frame)
    fig = plot_profile(model)
    # mathtext would fail on \bad when the figure is drawn
    path = plot_profile(model, path=tmp_path / "d.png")
    assert path.read_bytes()[:8] == PNG
    panels = _panels(fig)
    assert panels[0].get_title() == r"cost in $\bad$"
    assert _tick_labels(panels[0]) == sorted(["$5", "$10 or $\\x", "free"])
    binary = BernoulliMixture(2, random_state=0).fit(lsat7())
    assert plot_profile(binary, ["$a$", r"$\b", "c", "d", "e"], path=tmp_path / "b.png").exists()
