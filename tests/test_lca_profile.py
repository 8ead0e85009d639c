"""emnet.mixture.plot_profile: binary lines with error bars, polytomous stacked bars."""

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


def test_polytomous_stacked_bars(polytomous):
    X, model = polytomous
    (ax,) = plot_profile(model).axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    patches = [p for c in bars for p in c.patches]
    K, J, R = 3, 5, 3
    assert len(patches) == K * J * R
    # the stacks of each (item, class) reach 1
    tops = {}
    for patch in patches:
        x = round(patch.get_x(), 6)
        tops[x] = max(tops.get(x, 0.0), patch.get_y() + patch.get_height())
    assert len(tops) == K * J
    np.testing.assert_allclose(list(tops.values()), 1.0)
    assert _tick_labels(ax) == list(X.columns)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1", "2", "3"]


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


def test_items_with_different_answers_legend_by_position():
    rng = np.random.default_rng(1)
    X = rng.integers(1, 4, size=(200, 3)).astype(object)
    X[:, 2] = rng.choice(["no", "yes"], size=200)
    model = CategoricalMixture(2, n_init=1, random_state=0).fit(pd.DataFrame(X))
    (ax,) = plot_profile(model).axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["answer 1: 1 / no", "answer 2: 2 / yes", "answer 3: 3"]
    patches = [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]
    assert len(patches) == 2 * (3 + 3 + 2)
