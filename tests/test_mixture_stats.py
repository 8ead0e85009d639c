"""Latent class statistics (issue 11): formulas written out here, finite differences,
parametric bootstrap, BLRT, selection table and summary."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import planted_categorical, quiet_fit
from scipy import stats as sps

from emnet.datasets import values
from emnet.mixture import BernoulliMixture, CategoricalMixture, select_n_components
from emnet.mixture.inference.selection import format_selection_table
from emnet.mixture.inference.stats import _layout, _pack, _unpack, coded_view, information


def planted(n, cats, weights, seed, sep=0.4):
    X, probs, _ = planted_categorical(
        n, cats, len(weights), seed, weights=weights, concentration=sep
    )
    return X, probs


def loglik_written_out(X, weights, probs):
    total = np.zeros(len(X))
    for k, wk in enumerate(weights):
        term = np.full(len(X), wk)
        for j, p in enumerate(probs):
            seen = ~np.isnan(X[:, j])
            term[seen] *= p[k, X[seen, j].astype(int)]
        total += term
    return np.log(total)


@pytest.fixture(scope="module")
def values_fit():
    X = values()
    return X, quiet_fit(CategoricalMixture(2, n_init=10, random_state=0), X).reorder("weight")


def test_information_criteria_follow_their_formulas(values_fit):
    X, m = values_fit
    ll = m.score_samples(X).sum()
    p = 1 + 2 * 4
    n = len(X)
    assert m.n_parameters_ == p
    assert m.bic(X) == pytest.approx(-2 * ll + p * np.log(n))
    assert m.aic(X) == pytest.approx(-2 * ll + 2 * p)
    assert m.sabic(X) == pytest.approx(-2 * ll + p * np.log((n + 2) / 24))
    assert m.caic(X) == pytest.approx(-2 * ll + p * (np.log(n) + 1))
    w = np.linspace(0.5, 1.5, n)
    llw = m.score_samples(X) @ w
    assert m.caic(X, sample_weight=w) == pytest.approx(-2 * llw + p * (np.log(w.sum()) + 1))
    b = quiet_fit(BernoulliMixture(3, random_state=0), X.to_numpy() - 1)
    assert b.n_parameters_ == 3 * 4 + 2


def test_relative_entropy_and_classification_table(values_fit):
    X, m = values_fit
    eta = m.predict_proba(X)
    ent = -(eta * np.log(np.clip(eta, 1e-300, None))).sum()
    assert m.relative_entropy(X) == pytest.approx(1 - ent / (len(X) * np.log(2)), rel=1e-10)
    one = quiet_fit(CategoricalMixture(1), X)
    assert one.relative_entropy(X) == 1.0
    table = m.classification_table(X)
    modal = eta.argmax(axis=1)
    np.testing.assert_allclose(table.sizes, np.bincount(modal, minlength=2))
    for k in range(2):
        np.testing.assert_allclose(table.mean_posterior[k], eta[modal == k].mean(axis=0))


def test_goodness_of_fit_follows_poLCA_definitions(values_fit):
    X, m = values_fit
    Xc = X.to_numpy()
    patterns = np.array(list(itertools.product([1, 2], repeat=4)))
    obs = np.array([(Xc == pat).all(axis=1).sum() for pat in patterns], dtype=float)
    expected = len(Xc) * np.exp(m.score_samples(pd.DataFrame(patterns, columns=X.columns)))
    seen = obs > 0
    g2 = 2 * np.sum(obs[seen] * np.log(obs[seen] / expected[seen]))
    x2 = np.sum((obs[seen] - expected[seen]) ** 2 / expected[seen]) + (
        len(Xc) - expected[seen].sum()
    )
    fit = m.goodness_of_fit(X)
    assert fit.g2 == pytest.approx(g2, rel=1e-9)
    assert fit.x2 == pytest.approx(x2, rel=1e-9)
    assert fit.df == min(len(Xc), 2**4 - 1) - 9 == 6
    assert fit.p_g2 == pytest.approx(sps.chi2.sf(g2, 6))
    boot = m.goodness_of_fit(X, n_bootstrap=19, random_state=0)
    assert 0.0 < boot.p_bootstrap <= 1.0 and (boot.p_bootstrap * 20) % 1 == pytest.approx(0.0)


def _hessian_by_differences(X, model):
    """−∂² log L / ∂β² of the same free log-odds, by second differences of log L."""
    view = coded_view(model, X)
    lay = _layout(view)
    beta = _pack(view, lay)

    def loglik(b):
        w, log_t = _unpack(view, lay, b)
        probs = [np.exp(log_t[view.offsets[j] : view.offsets[j + 1]]).T for j in range(X.shape[1])]
        return loglik_written_out(X, w, probs).sum()

    P, h = len(beta), 1e-4
    H = np.empty((P, P))
    for i in range(P):
        for j in range(P):
            e_i, e_j = np.eye(P)[i] * h, np.eye(P)[j] * h
            H[i, j] = (
                loglik(beta + e_i + e_j)
                - loglik(beta + e_i - e_j)
                - loglik(beta - e_i + e_j)
                + loglik(beta - e_i - e_j)
            ) / (4 * h * h)
    return -H


def test_observed_information_equals_finite_difference_hessian():
    X, _ = planted(400, [2, 3, 2, 3], [0.6, 0.4], seed=1, sep=2.0)
    model = quiet_fit(CategoricalMixture(2, n_init=5, random_state=0), X)
    _, info = information(coded_view(model, X), "hessian")
    np.testing.assert_allclose(info, _hessian_by_differences(X, model), rtol=2e-4, atol=2e-3)
    _, opg = information(coded_view(model, X), "opg")
    assert opg.shape == info.shape and np.all(np.linalg.eigvalsh(opg) > 0)


@pytest.mark.slow
def test_standard_errors_match_the_parametric_bootstrap_spread():
    rng = np.random.default_rng(3)
    X, _ = planted(3000, [2, 2, 3, 2, 3], [0.55, 0.45], seed=3, sep=1.5)
    model = quiet_fit(CategoricalMixture(2, n_init=10, random_state=0), X).reorder("weight")
    se_h = model.standard_errors(X, "hessian")
    se_o = model.standard_errors(X, "opg")
    draws = []
    for _ in range(150):
        Xb = model.sample(len(X))[0].astype(float)
        fb = quiet_fit(
            CategoricalMixture(2, probs_init=model.probs_, weights_init=model.weights_), Xb
        )
        if [len(c) for c in fb.categories_] != [len(c) for c in model.categories_]:
            continue
        ref = np.concatenate(model.probs_, axis=1)
        est = np.concatenate(fb.probs_, axis=1)
        if np.abs(est[[1, 0]] - ref).sum() < np.abs(est - ref).sum():  # align the labels
            fb.reorder([1, 0])
        draws.append(np.concatenate([fb.weights_] + [p.ravel() for p in fb.probs_]))
        model.random_state = int(rng.integers(2**31))
    spread = np.std(draws, axis=0, ddof=1)
    for se in (se_h, se_o):
        est = np.concatenate([se.weights] + [p.ravel() for p in se.probs])
        ok = np.isfinite(est) & (spread > 1e-6)
        ratio = est[ok] / spread[ok]
        # 150 draws: the spread is known to about ±12%; allow for that and a little more
        assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio
        assert abs(np.median(ratio) - 1) < 0.15


def test_standard_errors_are_zero_and_flagged_on_the_boundary():
    # items 0 and 1 equal the class: their θ sit at the floor (0) in each class
    rng = np.random.default_rng(4)
    z = rng.integers(0, 2, size=300)
    X = np.column_stack(
        [z, z, rng.uniform(size=300) < 0.3 + 0.4 * z, rng.uniform(size=300) < 0.2 + 0.6 * z]
    ).astype(float)
    model = quiet_fit(CategoricalMixture(2, n_init=5, random_state=0), X)
    se = model.standard_errors(X)
    for j in (0, 1):
        boundary = model.probs_[j] < 1e-7
        assert boundary.sum() == 2
        assert np.all(se.probs[j] == 0.0)  # held at 0, and the complement at 1
        assert np.all(se.boundary[j])
    for j in (2, 3):
        assert np.all(np.isfinite(se.probs[j])) and np.all(se.probs[j] > 0)
    assert np.all(np.isfinite(se.weights)) and not se.weights_boundary.any()
    assert se.n_boundary == 8 and not se.boundary[2].any() and not se.boundary[3].any()


def test_reorder_permutes_every_fitted_array(values_fit):
    X, m = values_fit
    before = (m.weights_.copy(), [p.copy() for p in m.probs_], m.predict_proba(X))
    m.reorder([1, 0])
    np.testing.assert_array_equal(m.weights_, before[0][[1, 0]])
    for a, b in zip(m.probs_, before[1], strict=True):
        np.testing.assert_array_equal(a, b[[1, 0]])
    np.testing.assert_allclose(m.predict_proba(X), before[2][:, [1, 0]])
    m.reorder("weight")
    assert m.weights_[0] >= m.weights_[1]
    with pytest.raises(ValueError, match="order: expected a permutation"):
        m.reorder([0, 0])
    b = quiet_fit(BernoulliMixture(3, random_state=0), X.to_numpy() - 1)
    means = b.means_.copy()
    b.reorder([2, 0, 1])
    np.testing.assert_array_equal(b.means_, means[[2, 0, 1]])


def test_blrt_finds_three_planted_classes():
    X, _ = planted(600, [2] * 6, [0.4, 0.35, 0.25], seed=5, sep=0.3)
    sel = select_n_components(
        X, [2, 3, 4], n_init=4, estimator="categorical", blrt=99, blrt_n_init=2, random_state=0
    )
    p = dict(zip(sel.ks, sel.blrt_p, strict=True))
    assert p[3] <= 0.01  # 1/100 is the smallest p with 99 samples
    assert p[4] > 0.05
    assert sel.best_k == 3
    row = sel.table()[1]
    for key in ("sabic", "caic", "entropy", "g2", "x2", "df", "blrt_p", "n_at_best"):
        assert key in row
    text = format_selection_table(sel)
    assert "BLRT p" in text and "best K by BIC: 3" in text


@pytest.mark.slow
def test_blrt_null_p_values_are_roughly_uniform():
    p_values = []
    for seed in range(30):
        X, _ = planted(300, [2] * 5, [0.5, 0.5], seed=100 + seed, sep=0.5)
        sel = select_n_components(
            X, [2, 3], n_init=3, estimator="categorical", blrt=19, blrt_n_init=2,
            random_state=seed, fit_statistics=False,
        )  # fmt: skip
        p_values.append(sel.blrt_p[1])
    p_values = np.array(p_values)
    assert sps.kstest(p_values, "uniform").pvalue > 0.01
    assert np.mean(p_values < 0.05) < 0.2


def test_summary_prints_and_tabulates(values_fit):
    X, m = values_fit
    s = m.summary(X)
    text = str(s)
    for line in ("$A", "Estimated class population shares", "number of observations: 216",
                 "number of estimated parameters: 9", "residual degrees of freedom: 6",
                 "maximum log-likelihood: -504.4677", "G^2(2)", "entropy R^2"):  # fmt: skip
        assert line in text, line
    frame = s.to_frame()
    assert list(frame.columns) == ["item", "answer", "class", "estimate", "se"]
    assert len(frame) == 4 * 2 * 2
    np.testing.assert_allclose(frame.groupby(["item", "class"])["estimate"].sum(), 1.0)
    tables = s.tables()
    assert set(tables) == {"classes", "probabilities", "fit", "classification"}
    bern = quiet_fit(BernoulliMixture(2, n_init=5, random_state=0), X.to_numpy() - 1).reorder(
        "weight"
    )
    sb = bern.summary(X.to_numpy() - 1, feature_names=list("ABCD"))
    assert sb.loglik == pytest.approx(s.loglik, abs=1e-4)
    assert "$D" in str(sb)
    with pytest.raises(ValueError, match="feature_names: expected 4 names"):
        bern.summary(X.to_numpy() - 1, feature_names=["a"])
