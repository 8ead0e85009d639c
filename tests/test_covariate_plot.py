"""plot_covariate_effect: predicted class probabilities against one covariate (issue 13).

The curves are the model's own ``class_probabilities`` on the grid, the bands (delta
method on ``coef_cov_``) lie in [0, 1] and match a numerical Jacobian, the other
covariates are held at their mean / reference level or at ``at``, bad names are
ValueErrors naming them, and the caller's matplotlib backend is left alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from emnet.mixture import BernoulliMixture, CategoricalMixture, plot_covariate_effect
from emnet.mixture.plots.covariate_effect import N_GRID, _delta_se, predicted_prevalence

PNG = b"\x89PNG\r\n\x1a\n"


def _planted(n=800, K=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 1.5, n)
    g = rng.integers(0, 3, n)
    beta = np.array([[-0.5, 1.2, 0.8, 0.0], [0.3, -1.0, 0.0, 0.5]])[: K - 1]
    D = np.column_stack([np.ones(n), x - 2.0, g == 1, g == 2]).astype(float)
    eta = np.column_stack([np.zeros(n), D @ beta.T])
    P = np.exp(eta - eta.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    z = (P.cumsum(1) > rng.random((n, 1))).argmax(1)
    theta = np.array([[0.9] * 6, [0.1] * 6, [0.8, 0.8, 0.8, 0.2, 0.2, 0.2]])[:K]
    X = (rng.random((n, 6)) < theta[z]).astype(float)
    Z = pd.DataFrame({"age": x, "group": np.array(["a", "b", "c"])[g]})
    return X, Z


@pytest.fixture(scope="module")
def fitted():
    X, Z = _planted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BernoulliMixture(3, n_init=2, random_state=0).fit(X, covariates=Z)
    return model, X, Z


def test_one_line_per_class_equal_to_class_probabilities(fitted):
    model, _, Z = fitted
    ax = plot_covariate_effect(model, "age", data=Z, ax=Figure().add_subplot())
    assert len(ax.lines) == 3
    grid = ax.lines[0].get_xdata()
    assert len(grid) == N_GRID
    assert grid[0] == pytest.approx(Z["age"].min()) and grid[-1] == pytest.approx(Z["age"].max())
    frame = pd.DataFrame({"age": grid, "group": ["a"] * len(grid)})  # reference level
    expected = model.class_probabilities(frame)
    for k, line in enumerate(ax.lines):
        np.testing.assert_allclose(line.get_xdata(), grid)
        np.testing.assert_allclose(line.get_ydata(), expected[:, k], rtol=0, atol=1e-12)
    np.testing.assert_allclose(expected.sum(1), 1.0)
    assert "group = a" in ax.get_title()


def test_bands_lie_in_unit_interval_and_contain_the_curve(fitted):
    model, _, Z = fitted
    ax = plot_covariate_effect(model, "age", data=Z, ax=Figure().add_subplot())
    assert len(ax.collections) == 3
    for band, line in zip(ax.collections, ax.lines, strict=True):
        v = np.concatenate([p.vertices for p in band.get_paths()])
        assert np.all(v[:, 1] >= 0.0) and np.all(v[:, 1] <= 1.0)
        assert v[:, 1].max() >= line.get_ydata().max() - 1e-12
        assert v[:, 1].min() <= line.get_ydata().min() + 1e-12
    prev = predicted_prevalence(model, "age", data=Z)
    assert np.all(prev.se > 0) and np.all(np.isfinite(prev.se))


def test_delta_method_matches_numerical_jacobian(fitted):
    model, _, Z = fitted
    prev = predicted_prevalence(model, "age", data=Z, at={"group": "c"})
    from emnet.mixture.covariates.logit import apply_design, class_log_probs

    D, _ = apply_design(prev.frame, model.covariate_design_, len(prev.grid))
    beta = model.coef_.T.copy()  # (1 + q, K - 1): coef_cov_ is of beta.ravel()
    flat = beta.ravel()
    J = np.empty((len(prev.grid), 3, flat.size))
    for i in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        pu = np.exp(class_log_probs(D, up.reshape(beta.shape)))
        pd_ = np.exp(class_log_probs(D, down.reshape(beta.shape)))
        J[:, :, i] = (pu - pd_) / 2e-6
    se = np.sqrt(np.einsum("gka,ab,gkb->gk", J, model.coef_cov_, J))
    np.testing.assert_allclose(prev.se, se, rtol=1e-5)
    np.testing.assert_allclose(_delta_se(prev.probs, D, model.coef_cov_), se, rtol=1e-5)


def test_reordered_model_and_held_values(fitted):
    model, X, Z = fitted
    import copy

    m2 = copy.deepcopy(model).reorder([2, 0, 1])
    prev = predicted_prevalence(model, "age", data=Z, at={"group": "b"})
    prev2 = predicted_prevalence(m2, "age", data=Z, at={"group": "b"})
    # relabelled classes: the same curves and bands, in the new order
    np.testing.assert_allclose(prev2.probs, prev.probs[:, [2, 0, 1]], atol=1e-10)
    np.testing.assert_allclose(prev2.se, prev.se[:, [2, 0, 1]], rtol=1e-6, atol=1e-12)
    assert prev.held == {"group": "b"}


def test_numeric_others_held_at_mean_or_at(fitted):
    rng = np.random.default_rng(1)
    X, Z = _planted(n=500, K=2, seed=3)
    Z = Z.assign(income=rng.normal(10, 2, len(Z)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BernoulliMixture(2, n_init=1, random_state=0).fit(X, covariates=Z)
    prev = predicted_prevalence(model, "age", data=Z)
    assert prev.held["income"] == pytest.approx(Z["income"].mean())
    np.testing.assert_allclose(prev.frame["income"], Z["income"].mean())
    prev = predicted_prevalence(model, "income", values=Z["income"], at={"age": 1.0})
    assert prev.held == {"age": 1.0, "group": "a"}
    assert prev.grid[0] == pytest.approx(Z["income"].min())
    with pytest.raises(ValueError, match="'age'"):  # no data: a numeric one needs at=
        predicted_prevalence(model, "income", values=Z["income"])


def test_categorical_mixture_and_array_covariates():
    X, Z = _planted(n=500, K=2, seed=5)
    Zn = np.column_stack([Z["age"], (Z["group"] == "b").astype(float)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CategoricalMixture(2, n_init=1, random_state=0).fit(
            X.astype(int), covariates=Zn, covariate_method="bch"
        )
    fig = plot_covariate_effect(model, "z1", data=Zn)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    grid = ax.lines[0].get_xdata()
    expected = model.class_probabilities(
        np.column_stack([grid, np.full(len(grid), Zn[:, 1].mean())])
    )
    np.testing.assert_allclose(ax.lines[1].get_ydata(), expected[:, 1], atol=1e-12)


def test_writes_png(fitted, tmp_path):
    model, _, Z = fitted
    out = plot_covariate_effect(model, "age", data=Z, path=tmp_path / "eff.png")
    assert out == tmp_path / "eff.png" and out.read_bytes()[:8] == PNG


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"covariate": "agee"}, "'agee'"),
        ({"covariate": "group"}, "'group' is categorical"),
        ({"covariate": "age", "at": {"sex": 1}}, "'sex'"),
        ({"covariate": "age", "at": {"group": "z"}}, "'group'"),
        ({"covariate": "age", "at": {"age": 1.0}}, "'age'"),
        ({"covariate": "age", "data": None}, "data="),
    ],
)
def test_bad_names_are_value_errors_naming_them(fitted, kwargs, match):
    model, _, Z = fitted
    kwargs = {"data": Z, **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_covariate_effect(model, **kwargs)


def test_model_without_covariates_and_ax_with_path(fitted, tmp_path):
    model, X, Z = fitted
    plain = BernoulliMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="without covariates"):
        plot_covariate_effect(plain, "age", data=Z)
    with pytest.raises(ValueError, match="not both"):
        plot_covariate_effect(
            model, "age", data=Z, ax=Figure().add_subplot(), path=tmp_path / "a.png"
        )


def test_backend_and_pyplot_untouched(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, warnings
        import matplotlib
        matplotlib.use("svg")
        before = matplotlib.get_backend()
        import numpy as np, pandas as pd
        from emnet.mixture import BernoulliMixture, plot_covariate_effect
        rng = np.random.default_rng(0)
        X = (rng.random((200, 4)) < 0.5).astype(float)
        Z = pd.DataFrame({{"x": rng.normal(size=200)}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = BernoulliMixture(2, random_state=0).fit(X, covariates=Z)
        plot_covariate_effect(m, "x", data=Z, path={str(tmp_path / "e.png")!r})
        plot_covariate_effect(m, "x", data=Z)
        assert matplotlib.get_backend() == before, matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
        print("ok")
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
