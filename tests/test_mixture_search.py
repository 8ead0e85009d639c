"""The start search after the n_init starts (``search_budget``, ``emnet.mixture.core.em``).

On flat, multi-modal likelihoods (K = 4 latent classes on five binary items) a random start
finds the best maximum only 6–13% of the time, so 20 starts miss it often. The search
screens more starts at a loose tolerance and finishes the promising ones; these tests hold
the defaults to the best maximum a long search finds, and check that the search costs
nothing where the starts agree.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import quiet_fit

from emnet.datasets import lsat6, lsat7
from emnet.mixture import BernoulliMixture, CategoricalMixture, select_n_components


def fit(X, K, **kw):
    return quiet_fit(CategoricalMixture(K, **kw), X)


@pytest.fixture(scope="module", params=["lsat6", "lsat7"])
def flat(request):
    """(data, the best total log-likelihood of 150 starts without the search)."""
    X = {"lsat6": lsat6, "lsat7": lsat7}[request.param]().to_numpy()
    reference = fit(X, 4, n_init=150, random_state=123, search_budget=0.0)
    return X, reference.lower_bound_ * len(X)


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_defaults_with_20_starts_reach_the_best_maximum_on_lsat(flat, seed):
    X, best = flat
    model = fit(X, 4, n_init=20, random_state=seed)
    assert model.lower_bound_ * len(X) >= best - 1e-3
    assert model.score(X) * len(X) == pytest.approx(model.lower_bound_ * len(X), abs=1e-6)
    # every start run to convergence is recorded: the 20, then the search's finished ones
    assert len(model.init_lower_bounds_) >= 20
    assert model.n_screened_ >= len(model.init_lower_bounds_) - 20
    assert model.lower_bound_ == pytest.approx(model.init_lower_bounds_.max(), abs=1e-12)


def test_selection_runs_the_search_over_its_restarts(flat):
    X, best = flat
    result = select_n_components(X, [4], n_init=20, estimator="categorical", random_state=2)
    model = result.models[4]
    assert model.n_screened_ > 0
    assert model.lower_bound_ * len(X) >= best - 1e-3
    assert result.n_at_best[0] == model.n_starts_at_best() >= 1


def test_the_search_costs_nothing_when_every_start_agrees():
    rng = np.random.default_rng(0)
    probs = np.array([[0.9] * 6, [0.1] * 6])
    z = rng.choice(2, size=2000)
    X = (rng.uniform(size=(2000, 6)) < probs[z]).astype(int)
    model = fit(X, 2, n_init=10, random_state=0)
    assert model.n_starts_at_best() == 10
    assert model.n_screened_ == 0
    assert len(model.init_lower_bounds_) == 10


def test_search_off_is_the_plain_restarts():
    X = lsat6().to_numpy()
    off = fit(X, 4, n_init=8, random_state=1, search_budget=0.0)
    on = fit(X, 4, n_init=8, random_state=1)
    assert off.n_screened_ == 0 and len(off.init_lower_bounds_) == 8
    np.testing.assert_array_equal(on.init_lower_bounds_[:8], off.init_lower_bounds_)
    assert on.lower_bound_ >= off.lower_bound_


def test_bernoulli_takes_the_search_too():
    X = lsat6().to_numpy().astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BernoulliMixture(
            4, n_init=10, random_state=0, tol=1e-10, max_iter=5000, search_budget=0.5
        ).fit(X)
        plain = BernoulliMixture(4, n_init=10, random_state=0, tol=1e-10, max_iter=5000).fit(X)
    assert plain.n_screened_ == 0
    assert model.n_screened_ > 0
    assert model.lower_bound_ >= plain.lower_bound_ - 1e-12


@pytest.mark.parametrize("bad", [-0.1, float("nan"), "a lot"])
def test_bad_search_budget_is_named(bad):
    with pytest.raises(ValueError, match="search_budget"):
        CategoricalMixture(2, search_budget=bad).fit(lsat6().to_numpy())


@pytest.mark.parametrize("cls", [CategoricalMixture, BernoulliMixture])
def test_one_class_runs_once_and_equals_every_start(cls, monkeypatch):
    """K = 1: the run is the same from every start (responsibilities are all 1), so it
    runs once; the record equals that of separate one-start fits."""
    X = lsat7().to_numpy().astype(float)
    X[::7, 2] = np.nan
    calls = []
    real = cls._run_em
    monkeypatch.setattr(
        cls, "_run_em", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    model = cls(1, n_init=6, random_state=0).fit(X)
    assert len(calls) == 1
    monkeypatch.setattr(cls, "_run_em", real)
    for seed in range(3):
        single = cls(1, n_init=1, random_state=seed).fit(X)
        np.testing.assert_array_equal(single.history_, model.history_)
    np.testing.assert_array_equal(model.init_lower_bounds_, np.full(6, model.lower_bound_))


def test_a_covariate_fit_does_not_keep_the_previous_search_count():
    X = lsat6().to_numpy()
    model = fit(X, 4, n_init=20, random_state=2)
    assert model.n_screened_ > 0
    Z = np.random.default_rng(0).normal(size=(len(X), 1))
    model.set_params(n_init=2, search_budget=0.0)  # covariate fits run the search too
    fit_cov = model.fit(X, covariates=Z)
    assert fit_cov.n_screened_ == 0
    assert "screened" not in str(fit_cov.summary(X, covariates=Z))


@pytest.mark.parametrize("cls", [BernoulliMixture, CategoricalMixture])
def test_selection_takes_an_unfitted_coded_estimator_and_its_parameters(cls):
    """An instance of a coded-item estimator gives select_n_components its parameters (it
    took only a LatentClassModel instance), and its K run as separate one-start fits."""
    X = lsat6().to_numpy()
    if cls is CategoricalMixture:
        template = cls(prob_concentration=2.0, tol=1e-9)
        kwargs = {"prob_concentration": 2.0, "tol": 1e-9}
    else:
        template = cls(tol=1e-9, accelerate=False)
        kwargs = {"tol": 1e-9, "accelerate": False}
    by_instance = select_n_components(X, [1, 2], n_init=2, estimator=template)
    by_class = select_n_components(X, [1, 2], n_init=2, estimator=cls, **kwargs)
    np.testing.assert_allclose(by_instance.loglik, by_class.loglik, rtol=0, atol=1e-9)
    model = by_instance.models[2]
    assert type(model) is cls and model.n_init == 1 and model.tol == 1e-9
    assert not cls._whole_fit_selection
