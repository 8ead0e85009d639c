"""plot_profile for LatentClassModel (issue 20): the panels come from the blocks (the
contract's ``profile_items``): class means of continuous and count columns with ±1.96 SE
(standardised or in their units), and the answers of categorical and binary columns."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from emnet.mixture import LatentClassModel, plot_profile, select_n_components


def _mixed(n=900, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    health = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.6, 0.2]])[z]
    return pd.DataFrame(
        {
            "smoker": (rng.random(n) < np.array([0.1, 0.7, 0.4])[z]).astype(float),
            "health": np.array(["1 poor", "2 fair", "3 good"])[
                (rng.random((n, 1)) > np.cumsum(health, axis=1)).sum(axis=1)
            ],
            "bmi": rng.normal(np.array([23.0, 31.0, 27.0])[z], 2.0),
            "sleep": rng.normal(np.array([7.5, 6.0, 6.8])[z], 0.6),
            "visits": rng.poisson(np.array([1.0, 5.0, 2.5])[z]).astype(float),
        }
    )


MEASUREMENT = {"binary": ["smoker"], "categorical": ["health"], "gaussian": ["bmi", "sleep"],
               "poisson": ["visits"]}  # fmt: skip


@pytest.fixture(scope="module")
def mixed():
    X = _mixed()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LatentClassModel(3, measurement=MEASUREMENT, n_init=5, random_state=0).fit(X)
    return X, model, model.standard_errors(X)


def test_level_panel_standardised_means_and_error_bars(mixed):
    X, model, se = mixed
    fig = plot_profile(model, standard_errors=se)
    assert isinstance(fig, Figure)
    level = fig.axes[0]
    assert [t.get_text() for t in level.get_xticklabels()] == ["bmi", "sleep", "visits"]
    # the class means, standardised by the model's overall mean and SD of each column
    w = model.weights_
    means = np.column_stack([model.means_[:, 2], model.means_[:, 3], model.rates_[:, 0]])
    var = np.column_stack(
        [model.covariances_[:, 0, 0], model.covariances_[:, 1, 1], model.rates_[:, 0]]
    )
    grand = w @ means
    sd = np.sqrt(w @ (var + means**2) - grand**2)
    z = (means - grand) / sd
    drawn = [line.get_ydata() for line in level.lines if len(line.get_ydata()) == 3]
    for k in range(3):
        assert any(np.allclose(y, z[k]) for y in drawn)
    # the standardised means under the model are centred: Σ_k π_k z_k = 0
    np.testing.assert_allclose(w @ z, 0.0, atol=1e-12)
    assert len(level.containers) == 3  # one errorbar container per class


def test_raw_units_and_answer_panels(mixed):
    X, model, se = mixed
    fig = plot_profile(model, standard_errors=se, standardize=False)
    level = fig.axes[0]
    drawn = [line.get_ydata() for line in level.lines if len(line.get_ydata()) == 3]
    assert any(np.allclose(y, [model.means_[0, 2], model.means_[0, 3], model.rates_[0, 0]])
               for y in drawn)  # fmt: skip
    titles = [ax.get_title() for ax in fig.axes]
    assert "smoker" in titles and "health" in titles
    health = fig.axes[titles.index("health")]
    assert [t.get_text() for t in health.get_xticklabels()] == ["1 poor", "2 fair", "3 good"]


def test_the_level_panel_title_names_the_columns_it_shows(mixed):
    X, model, _ = mixed
    assert plot_profile(model).axes[0].get_title().endswith(": continuous and count columns")
    only = LatentClassModel(3, measurement="gaussian", n_init=1, random_state=0)
    only.fit(X[["bmi", "sleep"]])
    assert plot_profile(only).axes[0].get_title() == "Latent profile (K = 3): continuous columns"
    counts = LatentClassModel(2, measurement="poisson", n_init=1, random_state=0)
    counts.fit(X[["visits"]])
    assert plot_profile(counts).axes[0].get_title() == "Latent profile (K = 2): count columns"


def test_without_standard_errors_no_bars_and_path(mixed, tmp_path):
    _, model, _ = mixed
    fig = plot_profile(model)
    assert len(fig.axes[0].containers) == 0
    out = plot_profile(model, path=tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_blrt_split_starts_take_text_answers():
    """The BLRT's split starts standardise numeric columns and answer indicators (text
    answers used to raise a TypeError inside np.nanmean)."""
    X = _mixed(n=300, seed=1)[["health", "bmi"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = select_n_components(
            X, [1, 2], estimator="latent", measurement={"categorical": ["health"],
            "gaussian": ["bmi"]}, n_init=2, blrt=3, random_state=0,
        )  # fmt: skip
    p = sel.blrt_p[1]
    assert 0 < p <= 1
