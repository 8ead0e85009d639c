"""CategoricalMixture (latent class analysis, SPEC §1b): math, inputs, invariants, recovery."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import planted_categorical, quiet_fit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from emnet.datasets import VALUES_POLCA_LOGLIK, lsat6, values
from emnet.mixture import BernoulliMixture, CategoricalMixture


def brute_loglik(X, weights, probs):
    """log Σ_k π_k Π_j θ_{k j x_j} row by row, missing items skipped (written out)."""
    out = []
    for row in X:
        total = 0.0
        for k in range(len(weights)):
            p = weights[k]
            for j, x in enumerate(row):
                if not np.isnan(x):
                    p *= probs[j][k, int(x)]
            total += p
        out.append(np.log(total))
    return np.array(out)


def fit(X, K, **kw):
    return quiet_fit(CategoricalMixture(K, **kw), X)


# -- inputs and categories -------------------------------------------------------------


def test_categories_are_learned_from_every_kind_of_column():
    frame = pd.DataFrame(
        {
            "num": [3, 1, 2, 3, 1, 2],
            "text": ["yes", "no", None, "yes", "maybe", "no"],
            "flag": [True, False, True, True, False, False],
            "cat": pd.Categorical(
                ["hi", "lo", "hi", pd.NA, "lo", "hi"], categories=["lo", "hi", "mid"]
            ),
            "float": [0.5, np.nan, 1.5, 0.5, 1.5, 0.5],
        }
    )
    model = fit(frame, 2, random_state=0)
    cats = [list(c) for c in model.categories_]
    assert cats == [[1, 2, 3], ["maybe", "no", "yes"], [False, True], ["lo", "hi"], [0.5, 1.5]]
    assert list(model.n_categories_) == [3, 3, 2, 2, 2]
    assert list(model.feature_names_in_) == ["num", "text", "flag", "cat", "float"]
    for p, r in zip(model.probs_, model.n_categories_, strict=True):
        assert p.shape == (2, r)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert model.n_parameters_ == 1 + 2 * (2 + 2 + 1 + 1 + 1)
    # missing answers (None, pd.NA, NaN) are marginalised: same score as dropping the item
    proba = model.predict_proba(frame)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_strings_in_a_list_and_none_as_missing():
    rows = [["a", "x"], ["b", None], ["a", "y"], ["b", "x"], [None, "y"]]
    model = fit(rows, 2, random_state=1)
    assert [list(c) for c in model.categories_] == [["a", "b"], ["x", "y"]]
    assert model.score_samples(rows).shape == (5,)


def test_unseen_answer_at_predict_names_the_item_and_the_value():
    frame = pd.DataFrame({"q1": [1, 2, 1, 2], "q2": ["a", "b", "b", "a"]})
    model = fit(frame, 1)
    with pytest.raises(ValueError, match=r"item 'q2' has the answer 'c' \(row 1\)"):
        model.predict(pd.DataFrame({"q1": [1, 2], "q2": ["a", "c"]}))
    with pytest.raises(ValueError, match=r"item 'q1' has the answer 7 .*categories are \[1, 2\]"):
        model.predict(np.array([[7, "a"]], dtype=object))


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.zeros((3,)), "Expected 2D array"),
        (np.full((3, 2), np.nan), "no observed answer"),
        ([[1, 2], [np.nan, np.nan], [2, 1]], "row 1 has no observed answer"),
        (np.array([[1.0, np.inf], [2.0, 1.0]]), "infinite"),
    ],
)
def test_bad_input_is_a_clear_value_error(X, message):
    with pytest.raises(ValueError, match=message):
        CategoricalMixture(1).fit(X)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_components": 0}, "n_components"),
        ({"tol": -1.0}, "tol"),
        ({"prob_concentration": 0.5}, "prob_concentration"),
        ({"init_params": "kmeans"}, "init_params"),
        ({"weights_init": "uniform"}, "weights_init"),
        ({"accelerate": "yes"}, "accelerate"),
        ({"n_components": 2, "weights_init": [0.5, 0.6]}, "weights_init"),
        ({"n_components": 2, "probs_init": [np.ones((2, 2))]}, "probs_init"),
    ],
)
def test_bad_parameters_name_the_parameter(params, message):
    X = np.array([[0, 1], [1, 0], [1, 1], [0, 0]])
    with pytest.raises(ValueError, match=message):
        CategoricalMixture(**params).fit(X)


# -- the math --------------------------------------------------------------------------


def test_score_samples_equal_brute_force_enumeration_with_missing():
    X, probs, weights = planted_categorical(60, [3, 2, 4], 3, seed=2, missing=0.2)
    model = fit(X, 3, random_state=0, max_iter=20)
    codes_probs = model.probs_
    # category codes are the sorted answers 0..R-1 here
    assert all(list(c) == list(range(len(c))) for c in model.categories_)
    expected = brute_loglik(X, model.weights_, codes_probs)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-12)
    # the likelihood sums to 1 over every complete answer pattern
    patterns = np.array(list(itertools.product(*[range(r) for r in model.n_categories_])))
    assert np.exp(model.score_samples(patterns.astype(float))).sum() == pytest.approx(
        1.0, abs=1e-12
    )


def test_one_iteration_matches_the_map_formulas():
    X, _, _ = planted_categorical(80, [3, 2], 2, seed=3, missing=0.1)
    w0 = np.array([0.4, 0.6])
    p0 = [np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]), np.array([[0.7, 0.3], [0.2, 0.8]])]
    a, c = 2.5, 3.0
    model = fit(
        X, 2, weights_init=w0, probs_init=p0, max_iter=1, tol=0.0, accelerate=False,
        prob_concentration=a, weight_concentration=c,
    )  # fmt: skip
    eta = np.array(w0)[None, :] * np.ones((len(X), 1))
    for j in range(2):
        seen = ~np.isnan(X[:, j])
        eta[seen] *= p0[j][:, X[seen, j].astype(int)].T
    eta /= eta.sum(axis=1, keepdims=True)
    N = eta.sum(axis=0)
    np.testing.assert_allclose(model.weights_, (N + c - 1) / (len(X) + 2 * (c - 1)), rtol=1e-12)
    for j, r in enumerate((3, 2)):
        seen = ~np.isnan(X[:, j])
        for k in range(2):
            counts = np.array([eta[seen & (X[:, j] == v), k].sum() for v in range(r)])
            expect = (counts + a - 1) / (eta[seen, k].sum() + r * (a - 1))
            np.testing.assert_allclose(model.probs_[j][k], expect, rtol=1e-12)


@pytest.mark.parametrize("accelerate", [False, True])
def test_two_category_items_give_exactly_the_bernoulli_fit(accelerate):
    X, _, _ = planted_categorical(400, [2] * 6, 3, seed=5, missing=0.05)
    rng = np.random.default_rng(5)
    means = rng.uniform(0.2, 0.8, size=(3, 6))
    weights = np.array([0.3, 0.3, 0.4])
    kw = dict(tol=0.0, max_iter=60, accelerate=accelerate)
    bern = BernoulliMixture(3, means_init=means, weights_init=weights, split_merge=False, **kw)
    cat = CategoricalMixture(
        3, weights_init=weights, probs_init=[np.c_[1 - means[:, j], means[:, j]] for j in range(6)],
        **kw,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bern.fit(X)
        cat.fit(X)
    # the same EM steps (and, accelerated, the same extrapolations: the log-odds against
    # the first answer are exactly the Bernoulli logits) to rounding; an extrapolation of
    # step length α multiplies rounding differences by up to α², hence the looser bound
    tol = 1e-8 if accelerate else 1e-12
    assert cat.n_iter_ == bern.n_iter_ == 60
    np.testing.assert_allclose(cat.history_, bern.history_, rtol=tol)
    np.testing.assert_allclose(cat.weights_, bern.weights_, atol=tol)
    for j in range(6):
        np.testing.assert_allclose(cat.probs_[j][:, 1], bern.means_[:, j], atol=tol)
    np.testing.assert_allclose(cat.score_samples(X), bern.score_samples(X), rtol=tol)
    assert cat.bic(X) == pytest.approx(bern.bic(X), rel=tol)
    assert cat.n_parameters_ == bern._n_parameters()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 60),
    cats=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    K=st.integers(1, 4),
    missing=st.sampled_from([0.0, 0.2]),
    accelerate=st.booleans(),
    prior=st.sampled_from([(1.0, 1.0), (1.5, 2.0)]),
)
def test_objective_never_decreases_and_probabilities_stay_valid(
    seed, n, cats, K, missing, accelerate, prior
):
    X, _, _ = planted_categorical(n, cats, min(K, 3), seed, missing)
    K = min(K, n)
    model = fit(
        X, K, random_state=seed, max_iter=60, tol=0.0, accelerate=accelerate,
        prob_concentration=prior[0], weight_concentration=prior[1],
    )  # fmt: skip
    h = model.history_
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:]) - 1e-12)
    assert np.all(np.isfinite(model.weights_)) and model.weights_.sum() == pytest.approx(1.0)
    for p in model.probs_:
        assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


def test_squarem_converges_in_fewer_steps_to_the_same_maximum():
    X = lsat6()
    kw = dict(n_init=5, random_state=0, tol=1e-12, max_iter=20000)
    plain = fit(X, 2, accelerate=False, **kw)
    fast = fit(X, 2, accelerate=True, **kw)
    assert fast.n_em_steps_ < plain.n_em_steps_ / 3
    assert fast.score(X) * 1000 == pytest.approx(plain.score(X) * 1000, abs=1e-6)
    assert np.all(np.diff(fast.history_) >= -1e-14)


def test_recovers_planted_classes():
    X, probs, weights = planted_categorical(20_000, [2, 3, 4, 2, 5, 3], 3, seed=11, missing=0.05)
    model = fit(X, 3, n_init=10, random_state=0)
    truth = np.concatenate([p for p in probs], axis=1)
    est = np.concatenate(model.probs_, axis=1)
    order = [int(np.argmin(((est - t) ** 2).sum(axis=1))) for t in truth]
    assert sorted(order) == [0, 1, 2]
    assert np.abs(est[order] - truth).max() < 0.03
    np.testing.assert_allclose(model.weights_[order], weights, atol=0.02)


def test_values_data_reach_poLCA_published_maxima():
    X = values()
    for K, published in VALUES_POLCA_LOGLIK.items():
        model = fit(X, K, n_init=20, random_state=0)
        assert model.score(X) * len(X) == pytest.approx(published, abs=1e-4)
        assert len(model.init_lower_bounds_) >= 20  # the n_init starts, then the search's
        assert 1 <= model.n_starts_at_best(1e-6) <= 20


def test_defaults_with_20_starts_reach_the_best_maximum_on_planted_survey_data():
    # survey-shaped: 8 items with 2-4 answers, K = 3, weakly separated classes
    rng = np.random.default_rng(21)
    cats = [2, 3, 4, 2, 3, 4, 2, 3]
    weights = np.array([0.5, 0.3, 0.2])
    probs = [rng.dirichlet(np.full(r, 1.5), size=3) for r in cats]
    z = rng.choice(3, size=3000, p=weights)
    X = np.column_stack(
        [(rng.uniform(size=(len(z), 1)) > np.cumsum(p[z], axis=1)).sum(axis=1) for p in probs]
    )
    reference = max(
        fit(X, 3, n_init=60, random_state=s, tol=1e-12, init_params=init).score(X) * len(X)
        for s, init in ((1, "random"), (2, "random_from_data"))
    )
    default = fit(X, 3, n_init=20, random_state=0)
    assert default.score(X) * len(X) >= reference - 1e-3


def test_sample_returns_category_labels():
    frame = pd.DataFrame({"a": ["x", "y", "x", "y"] * 5, "b": [1, 2, 3, 1] * 5})
    model = fit(frame, 2, random_state=0)
    X, y = model.sample(50)
    assert X.shape == (50, 2) and y.shape == (50,)
    assert set(X[:, 0]) <= {"x", "y"} and set(X[:, 1]) <= {1, 2, 3}
    numeric = fit(np.array([[1, 2], [2, 1], [1, 1]]), 1).sample(5)[0]
    assert numeric.dtype.kind in "iuf"


def test_save_load_round_trip(tmp_path):
    frame = pd.DataFrame(
        {"a": ["x", "y", None, "y"] * 5, "b": [1, 2, 3, 1] * 5, "c": [True, False] * 10}
    )
    model = fit(frame, 2, random_state=0, n_init=3)
    path = tmp_path / "lca.npz"
    model.save(path)
    loaded = CategoricalMixture.load(path)
    np.testing.assert_array_equal(loaded.score_samples(frame), model.score_samples(frame))
    assert [list(c) for c in loaded.categories_] == [list(c) for c in model.categories_]
    np.testing.assert_array_equal(loaded.init_lower_bounds_, model.init_lower_bounds_)
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not a saved BernoulliMixture"):
        BernoulliMixture.load(path)


def test_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(CategoricalMixture(2, max_iter=20, random_state=0), on_fail=None)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    # same reason as for BernoulliMixture: shuffled weighted rows vs random starts
    allowed = {"check_sample_weight_equivalence_on_dense_data"}
    assert set(failed) <= allowed, failed
    assert sum(r["status"] == "passed" for r in results) >= 30
