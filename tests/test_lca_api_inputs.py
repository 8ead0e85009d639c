"""Inputs the latent class API used to take wrongly (issue 19, task 4): mixed answer types,
float codes, overflowing weights, summaries of rows without every class, constant,
collinear and badly scaled covariates, and the covariate fit's start search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import quiet_fit

from emnet.datasets import VALUES_POLCA_LOGLIK, values
from emnet.mixture import BernoulliMixture, CategoricalMixture

# -- answers -------------------------------------------------------------------------


def test_a_column_mixing_numbers_and_text_is_an_error_naming_it():
    X = values().astype(object)
    X.iloc[::2, 0] = X.iloc[::2, 0].astype(str)  # 1 and "1" in column A
    with pytest.raises(ValueError, match=r"item 'A' mixes numbers and text"):
        CategoricalMixture(2).fit(X)


def test_equal_numbers_are_one_answer_labelled_by_the_number():
    X = values().astype(object)
    X.iloc[0:5, 1] = [1.0, np.int8(1), 1, np.float32(2.0), 2]
    m = quiet_fit(CategoricalMixture(2, n_init=5, random_state=0), X)
    assert [c.tolist() for c in m.categories_] == [[1, 2]] * 4
    assert m.categories_[1].dtype.kind == "i"
    as_ints = values().copy()
    as_ints.iloc[0:5, 1] = [1, 1, 1, 2, 2]
    reference = quiet_fit(CategoricalMixture(2, n_init=5, random_state=0), as_ints)
    assert m.score_samples(X).sum() == pytest.approx(reference.score_samples(as_ints).sum())


def test_bools_mixed_with_numbers_are_an_error_naming_the_column():
    X = values().astype(object)
    X.iloc[3, 2] = True
    with pytest.raises(ValueError, match=r"item 'C' mixes True/False with numbers"):
        CategoricalMixture(2).fit(X)
    m = quiet_fit(CategoricalMixture(2, n_init=2, random_state=0), values())
    with pytest.raises(ValueError, match=r"item 'C' has the answer True \(row 3\)"):
        m.predict(X)


def test_float_codes_keep_their_integer_labels():
    X = values().astype(float)
    X.iloc[0, 0] = np.nan
    m = quiet_fit(CategoricalMixture(2, n_init=5, random_state=0), X)
    assert all(c.dtype.kind == "i" and c.tolist() == [1, 2] for c in m.categories_)
    text = str(m.summary(X))
    assert "Pr(1)" in text and "Pr(1.0)" not in text
    halves = pd.DataFrame({"a": [0.5, 1.5, 0.5, 1.5] * 10, "b": [1.0, 2.0] * 20})
    h = quiet_fit(CategoricalMixture(1), halves)
    assert h.categories_[0].tolist() == [0.5, 1.5] and h.categories_[1].tolist() == [1, 2]
    m.predict(X)  # float data still encode under integer categories


def test_values_log_likelihood_with_clean_input():
    m = quiet_fit(CategoricalMixture(2, n_init=10, random_state=0), values())
    assert m.score_samples(values()).sum() == pytest.approx(VALUES_POLCA_LOGLIK[2], abs=1e-3)


# -- weights -------------------------------------------------------------------------


@pytest.mark.parametrize("model", [CategoricalMixture(2), BernoulliMixture(2)])
def test_weights_whose_sum_overflows_are_an_error_naming_the_row(model):
    X = values().to_numpy() - 1
    w = np.full(len(X), 1e300)
    with pytest.raises(ValueError, match=r"sample_weight: the weights sum past 1e\+150 at row 0"):
        model.fit(X, sample_weight=w)
    w = np.ones(len(X))
    w[7] = np.inf
    with pytest.raises(ValueError, match=r"sample_weight: .*inf in row 7"):
        model.fit(X, sample_weight=w)
    w[7] = 6e149
    w[9] = 6e149
    with pytest.raises(ValueError, match=r"at row 9"):
        model.fit(X, sample_weight=w)


# -- summary -------------------------------------------------------------------------


def test_summary_of_rows_without_every_class_prints_no_nan():
    X = values()
    m = quiet_fit(CategoricalMixture(2, n_init=5, random_state=0), X).reorder("weight")
    few = X.iloc[:5]  # five identical rows: one modal class only
    s = m.summary(few)
    text = str(s)
    assert "nan" not in text.lower()
    empty = int(np.flatnonzero(s.modal_shares == 0)[0]) + 1
    assert f"class {empty}: — (no row has this modal class)" in text


# -- covariates ----------------------------------------------------------------------


def planted_covariate(n=400, seed=0):
    rng = np.random.default_rng(seed)
    gpa = rng.normal(3.0, 0.5, size=n)
    z = (rng.uniform(size=n) < 1 / (1 + np.exp(-(-4 + 1.2 * gpa)))).astype(int)
    means = np.array([[0.1, 0.15, 0.3, 0.2], [0.7, 0.6, 0.8, 0.75]])
    X = (rng.uniform(size=(n, 4)) < means[z]).astype(float)
    return X, gpa


def test_constant_and_collinear_covariates_are_errors_naming_them():
    X, gpa = planted_covariate()
    with pytest.raises(ValueError, match=r"covariate 'x' is constant"):
        CategoricalMixture(2).fit(X, covariates=pd.DataFrame({"gpa": gpa, "x": 3.0}))
    with pytest.raises(ValueError, match=r"covariate 'g' is constant"):
        CategoricalMixture(2).fit(X, covariates=pd.DataFrame({"gpa": gpa, "g": "yes"}))
    frame = pd.DataFrame({"a": gpa, "c": gpa**2, "b": 2 * gpa - 1})
    with pytest.raises(ValueError, match=r"covariate 'b' is perfectly collinear with 'a'"):
        CategoricalMixture(2).fit(X, covariates=frame)
    # a covariate ×1e12 is not "constant" (the test is unit-free)
    CategoricalMixture(2, random_state=0).fit(X, covariates=gpa[:, None] * 1e-12)


@pytest.mark.parametrize("method", ["one-step", "bch"])
def test_covariate_units_do_not_change_z(method):
    X, gpa = planted_covariate()
    null = np.random.default_rng(5).normal(size=len(X))  # a covariate with no effect
    Z = np.column_stack([gpa, null])
    big = Z * np.array([1.0, 1e12])
    kw = {"covariate_method": method}
    a = quiet_fit(CategoricalMixture(2, n_init=3, random_state=0), X, covariates=Z, **kw).reorder(
        "weight"
    )
    b = quiet_fit(CategoricalMixture(2, n_init=3, random_state=0), X, covariates=big, **kw)
    b.reorder("weight")
    ta, tb = a.coefficients(), b.coefficients()
    np.testing.assert_allclose(tb.z, ta.z, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tb.coef[:, 2], ta.coef[:, 2] * 1e-12, rtol=1e-6)
    np.testing.assert_allclose(tb.coef[:, :2], ta.coef[:, :2], rtol=1e-6)
    assert np.all(np.isfinite(tb.z)) and np.all(tb.se > 0)
    assert abs(ta.z[0, 2]) < 4  # the null effect is not "significant" at z = -inf


def test_covariate_fit_runs_the_start_search():
    X, gpa = planted_covariate(seed=1)
    m = quiet_fit(CategoricalMixture(3, n_init=6, random_state=0), X, covariates=gpa[:, None])
    assert m.n_screened_ >= 0 and len(m.init_lower_bounds_) >= 6
    assert m.lower_bound_ == pytest.approx(np.max(m.init_lower_bounds_))
    # the same maximum as many more starts without the search
    ref = quiet_fit(
        CategoricalMixture(3, n_init=30, random_state=1, search_budget=0.0),
        X,
        covariates=gpa[:, None],
    )
    assert m.score(X, covariates=gpa[:, None]) >= ref.score(X, covariates=gpa[:, None]) - 1e-6
