"""The bootstrap LRT and the choice of K (issue 19, tasks 2 and 3): bootstrap fits that
reach their maxima (ratios exposed, never negative, p calibrated under the null and small
under the alternative), reproducible defaults, and K that are not identified left out."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from emnet.datasets import values
from emnet.mixture import CategoricalMixture, select_n_components
from emnet.mixture.inference.blrt import bootstrap_lrt
from emnet.mixture.inference.selection import format_selection_table


def planted(n, K, seed, D=5):
    """Well separated binary classes: K = 2 (0.85 vs 0.15 on every item) or K = 3 (a
    third class agreeing with each of those on some items)."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.85] * D, [0.15] * D, [0.85, 0.85, 0.15, 0.15, 0.5]])[:K]
    z = rng.choice(K, size=n)
    return (rng.uniform(size=(n, D)) < means[z]).astype(float)


def test_ratios_are_exposed_non_negative_and_json_ready():
    sel = select_n_components(values(), [1, 2, 3], n_init=3, estimator="categorical", blrt=9)
    assert set(sel.blrt_ratios) == {2, 3}
    for k, ratios in sel.blrt_ratios.items():
        assert ratios.shape == (9,) and np.all(ratios >= -1e-6), (k, ratios)
        observed = 2 * (sel.loglik[sel.ks == k][0] - sel.loglik[sel.ks == k - 1][0])
        p = (1 + np.sum(ratios >= observed - 1e-9)) / 10
        assert sel.blrt_p[sel.ks == k][0] == pytest.approx(p)
    rows = sel.table()
    assert rows[0]["blrt_n_below"] is None  # K = 1 is not tested
    assert all(isinstance(r["blrt_n_below"], int) and r["blrt_n_below"] >= 0 for r in rows[1:])
    json.dumps(rows, allow_nan=False)
    assert "blrt_n_below" in sel.to_frame().columns


def test_default_selection_is_reproducible():
    X = planted(300, 2, seed=1)
    a = select_n_components(X, [1, 2, 3], blrt=4)
    b = select_n_components(X, [1, 2, 3], blrt=4)
    np.testing.assert_array_equal(a.loglik, b.loglik)
    np.testing.assert_array_equal(a.blrt_p, b.blrt_p)
    for k in (2, 3):
        np.testing.assert_array_equal(a.blrt_ratios[k], b.blrt_ratios[k])
    c = select_n_components(X, [1, 2, 3], blrt=4, random_state=1)
    assert not np.array_equal(a.blrt_ratios[3], c.blrt_ratios[3])  # the seed is used


def test_alternative_three_classes_gives_the_smallest_p():
    X = planted(500, 3, seed=0)
    sel = select_n_components(X, [2, 3], n_init=5, blrt=19, fit_statistics=False)
    assert sel.blrt_p[1] == pytest.approx(1 / 20)
    assert sel.best_k == 3


def test_underfitted_bootstrap_fits_are_refitted_from_split_starts():
    """With two EM iterations per fit, the random-start K fits end below the K − 1 fit
    (which starts at the generating parameters); the split starts put every ratio back at
    >= 0, and the count says how often that happened."""
    X = planted(400, 2, seed=2)
    null = CategoricalMixture(2, n_init=5, random_state=0).fit(X)
    alt = CategoricalMixture(3, n_init=5, random_state=0).fit(X)
    observed = 2 * (alt.score_samples(X).sum() - null.score_samples(X).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        test = bootstrap_lrt(
            null, observed, len(X), 6, n_init=1, random_state=0,
            estimator_params={"max_iter": 2, "accelerate": False, "search_budget": 0.0},
        )  # fmt: skip
    assert test.n_below >= 3
    assert np.all(test.null_statistics >= -1e-6 * len(X))


def test_bootstrap_fits_use_at_least_the_data_fits_starts(monkeypatch):
    import emnet.mixture.inference.blrt as blrt_module

    seen = []
    real = blrt_module._one

    def spy(null_model, n, seed, n_init, params, alt=None):
        seen.append((n_init, alt is not None))
        return real(null_model, n, seed, n_init, params, alt)

    monkeypatch.setattr(blrt_module, "_one", spy)
    select_n_components(planted(200, 2, seed=3), [1, 2], n_init=4, blrt=2, blrt_n_init=2)
    assert seen == [(4, True), (4, True)]


@pytest.mark.slow
def test_null_p_values_are_calibrated():
    """K true = 2, testing 3 vs 2: p < 0.05 in about 5% of 40 data sets (B = 19 each)."""
    p_values = []
    for seed in range(40):
        X = planted(500, 2, seed=100 + seed)
        sel = select_n_components(
            X, [2, 3], n_init=3, blrt=19, random_state=seed, fit_statistics=False
        )
        p_values.append(sel.blrt_p[1])
        assert np.all(sel.blrt_ratios[3] >= -1e-6)
    p_values = np.array(p_values)
    assert np.mean(p_values < 0.05) < 0.2
    assert np.mean(p_values <= 0.05 + 1e-12) < 0.2
    assert 0.3 < np.mean(p_values) < 0.7  # uniform on {1/20, ..., 1}: mean 0.525


# -- task 3: K that are not identified ---------------------------------------------------


def test_k_with_negative_df_is_not_identified_and_not_chosen():
    X = values()  # 4 binary items: 15 free cells; K = 4 has 19 parameters
    sel = select_n_components(X, [1, 2, 3, 4, 5], n_init=2, estimator="categorical")
    assert sel.identified.tolist() == [True, True, True, False, False]
    assert [r["identified"] for r in sel.table()] == [True, True, True, False, False]
    assert sel.to_frame()["identified"].tolist() == [True, True, True, False, False]
    text = format_selection_table(sel)
    assert "identified" in text.splitlines()[0]
    assert "no †" in text and "† not identified (K = 4, 5)" in text
    assert sel.best_k in (1, 2, 3)


def test_a_non_identified_k_that_the_criterion_prefers_is_passed_over():
    # 20 rows, 10 binary items: min(n, 2^10 - 1) = 20 < 21 parameters of K = 2
    rng = np.random.default_rng(0)
    z = rng.integers(0, 3, size=20)
    means = np.array([[0.9] * 10, [0.1] * 10, [0.9] * 5 + [0.1] * 5])
    X = (rng.uniform(size=(20, 10)) < means[z]).astype(float)
    sel = select_n_components(X, [1, 2, 3], n_init=3, criterion="aic")
    assert sel.identified.tolist() == [True, False, False]
    assert np.argmin(sel.aic) == 2  # K = 3 has the lowest AIC, but is not identified
    assert sel.best_k == 1


def test_no_identified_k_falls_back_with_a_warning():
    X = np.array([[0.0], [1.0], [1.0], [0.0], [1.0]])  # one binary item: only K = 1 fits
    with pytest.warns(UserWarning, match="no K in \\[2, 3\\] is identified"):
        sel = select_n_components(X, [2, 3], n_init=1)
    assert not sel.identified.any() and sel.best_k in (2, 3)
    assert "no K is identified" in format_selection_table(sel)
    ok = select_n_components(X, [1, 2], n_init=1)
    assert ok.identified.tolist() == [True, False] and ok.best_k == 1
    assert (
        "identified"
        not in format_selection_table(select_n_components(X, [1], n_init=1)).splitlines()[0]
    )
