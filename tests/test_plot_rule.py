"""One ax=/path= rule for every plotting function of emnet.mixture
(``plots.common.figure_result``): ``ax`` → drawn there and returned; ``path`` → written
(atomically) and the Path returned; neither → a new Figure returned; both → ValueError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import planted_categorical, quiet_fit
from matplotlib.figure import Figure

from emnet.mixture import (
    CategoricalMixture,
    plot_bic,
    plot_covariate_effect,
    plot_history,
    plot_means,
    plot_profile,
    select_n_components,
)


@pytest.fixture(scope="module")
def fitted():
    X, _, _ = planted_categorical(300, [2, 3, 2], 2, seed=3)
    Z = np.random.default_rng(0).normal(size=(300, 1))
    model = quiet_fit(CategoricalMixture(2, n_init=2, random_state=0), X)
    regression = quiet_fit(CategoricalMixture(2, n_init=2, random_state=0), X, covariates=Z)
    sel = select_n_components(X, [1, 2], n_init=2, estimator="categorical")
    return X, Z, model, regression, sel


def _calls(fitted):
    X, Z, model, regression, sel = fitted
    means = np.random.default_rng(1).uniform(size=(2, 4))
    return {
        "plot_means": lambda **kw: plot_means(means, **kw),
        "plot_history": lambda **kw: plot_history([-3.0, -2.0, -1.5], **kw),
        "plot_bic": lambda **kw: plot_bic(sel, **kw),
        "plot_profile": lambda **kw: plot_profile(model, **kw),
        "plot_covariate_effect": lambda **kw: plot_covariate_effect(regression, "z1", data=Z, **kw),
    }


@pytest.mark.parametrize(
    "name", ["plot_means", "plot_history", "plot_bic", "plot_profile", "plot_covariate_effect"]
)
def test_one_rule_for_ax_and_path(fitted, name, tmp_path):
    call = _calls(fitted)[name]
    fig = call()
    assert isinstance(fig, Figure) and fig.axes
    out = call(path=tmp_path / f"{name}.png")
    assert isinstance(out, Path) and out.read_bytes()[:4] == b"\x89PNG"
    # a profile of three polytomous items draws one panel per item
    ax = Figure().subplots(1, 3) if name == "plot_profile" else Figure().add_subplot()
    assert call(ax=ax) is ax
    assert all(a.has_data() for a in np.ravel(ax))
    with pytest.raises(ValueError, match=f"{name}: pass ax or path, not both"):
        call(ax=Figure().add_subplot(), path=tmp_path / "both.png")
    assert not (tmp_path / "both.png").exists()
