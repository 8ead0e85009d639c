"""Categorical and binary measurement blocks in LatentClassModel: poLCA's maxima on the
values data, the same iterates as CategoricalMixture, binary = two-answer categorical,
text answers with missing values, planted recovery of a mixed binary + categorical +
Gaussian + Poisson model, frequency weights, the inferred measurement, and save/load."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

from emnet import datasets
from emnet.mixture import CategoricalMixture, LatentClassModel
from emnet.mixture.measurement import Binary, Categorical, make_measurement
from emnet.mixture.measurement.categorical import CategoricalParams

VALUES = datasets.values()
POLCA_MAXIMA = {1: -543.6498, 2: -504.4677, 3: -503.3011}


def _loglik(model: LatentClassModel, X, sample_weight=None) -> float:
    w = None if sample_weight is None else np.asarray(sample_weight, float)
    s = model.score_samples(X)
    return float(s.sum() if w is None else w @ s)


def _random_probs(K: int, answers: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    return [rng.dirichlet(np.ones(r), size=K) for r in answers]


def _fixed(**extra):
    """Settings of a single deterministic EM run from a given start."""
    return dict(n_init=1, accelerate=False, search_budget=0.0, tol=0.0, **extra)


# -- the values data (poLCA) ----------------------------------------------------------------
@pytest.mark.parametrize("K", [1, 2, 3])
def test_values_reaches_polca_maxima(K: int) -> None:
    n_init = 4 if K == 3 else 10  # K = 3 (14 parameters, 15 cells) converges slowly
    m = LatentClassModel(K, measurement="categorical", n_init=n_init, random_state=0).fit(VALUES)
    assert _loglik(m, VALUES) == pytest.approx(POLCA_MAXIMA[K], abs=1e-4)
    assert m.n_parameters_ == (K - 1) + K * 4
    assert m.measurement_ == {"categorical": ["A", "B", "C", "D"]}
    assert [list(c) for c in m.categories_.values()] == [[1, 2]] * 4
    if K == 2:  # the random (poLCA) start reaches it too
        r = LatentClassModel(2, measurement="categorical", init_params="random",
                             n_init=5, random_state=1).fit(VALUES)  # fmt: skip
        assert _loglik(r, VALUES) == pytest.approx(POLCA_MAXIMA[2], abs=1e-4)


@pytest.mark.parametrize("concentration", [1.0, 1.5])
def test_same_iterates_as_categorical_mixture(concentration: float) -> None:
    K = 3
    probs = _random_probs(K, [2, 2, 2, 2], seed=1)
    weights = np.array([0.5, 0.3, 0.2])
    X = VALUES.to_numpy(dtype=float)
    X[::9, 1] = np.nan  # missing answers too
    X[4::11, 3] = np.nan
    settings = _fixed(max_iter=150, weights_init=weights, probs_init=probs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = CategoricalMixture(K, prob_concentration=concentration, **settings).fit(X)
        b = LatentClassModel(
            K, measurement="categorical", prob_concentration=concentration, **settings
        ).fit(X)
    assert len(a.history_) == len(b.history_) == 150
    np.testing.assert_allclose(b.history_, a.history_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.weights_, a.weights_, atol=1e-10)
    for j in range(4):  # an array: the columns are keyed by position
        np.testing.assert_allclose(b.probs_[j], a.probs_[j], atol=1e-10)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-10)
    assert b.n_parameters_ == a.n_parameters_
    assert b.bic(X) == pytest.approx(a.bic(X), rel=1e-12)


def _binary_data(n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    z = rng.choice(2, n, p=[0.6, 0.4])
    p = np.array([[0.9, 0.8, 0.2, 0.7, 0.1], [0.2, 0.3, 0.8, 0.1, 0.6]])
    X = (rng.uniform(size=(n, 5)) < p[z]).astype(float)
    X[rng.uniform(size=X.shape) < 0.1] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    return X, z


def test_two_answer_categorical_equals_binary() -> None:
    X, _ = _binary_data()
    probs = _random_probs(2, [2] * 5, seed=4)
    settings = _fixed(max_iter=300, weights_init=[0.5, 0.5], probs_init=probs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = LatentClassModel(2, measurement="binary", **settings).fit(X)
        b = LatentClassModel(2, measurement="categorical", **settings).fit(X)
    np.testing.assert_allclose(a.history_, b.history_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-10)
    np.testing.assert_allclose(a.means_, b.means_ - 0.0, atol=1e-10)  # P(x = 1) both
    assert a.n_parameters_ == b.n_parameters_ == 1 + 2 * 5
    # from their own starts: the same maximum
    c = LatentClassModel(2, measurement="binary", random_state=0).fit(X)
    d = LatentClassModel(2, measurement="categorical", random_state=0).fit(X)
    assert _loglik(c, X) == pytest.approx(_loglik(d, X), abs=1e-6)
    # a binary column keeps both answers even where only one occurs
    Y = X.copy()
    Y[:, 4] = np.where(np.isnan(Y[:, 4]), np.nan, 0.0)
    e = LatentClassModel(2, measurement="binary", random_state=0).fit(Y)
    assert e.n_parameters_ == 1 + 2 * 5
    assert np.all(e.probs_[4][:, 1] <= 1e-9)


def test_text_answers_with_missing_give_the_same_maximum() -> None:
    codes = VALUES.to_numpy(dtype=float)
    rng = np.random.RandomState(5)
    codes[rng.uniform(size=codes.shape) < 0.08] = np.nan
    codes[np.isnan(codes).all(axis=1), 0] = 1.0
    labels = {1.0: "no", 2.0: "yes"}
    text = pd.DataFrame(
        {c: [labels.get(v) for v in codes[:, j]] for j, c in enumerate("ABCD")}
    )  # None marks a missing answer
    a = LatentClassModel(2, measurement="categorical", random_state=0).fit(codes)
    b = LatentClassModel(2, measurement="categorical", random_state=0).fit(text)
    assert _loglik(b, text) == pytest.approx(_loglik(a, codes), abs=1e-6)
    assert list(b.categories_["A"]) == ["no", "yes"]
    # pandas categoricals: the declared order is the answers' order
    cat = text.astype(pd.CategoricalDtype(["yes", "no"]))
    c = LatentClassModel(2, measurement="categorical", random_state=0).fit(cat)
    assert list(c.categories_["A"]) == ["yes", "no"]
    assert _loglik(c, cat) == pytest.approx(_loglik(a, codes), abs=1e-6)
    order = np.argsort(c.weights_)
    np.testing.assert_allclose(
        c.probs_["B"][order][:, ::-1], b.probs_["B"][np.argsort(b.weights_)], atol=1e-5
    )
    # an answer never seen in fit is an error naming the item
    bad = text.copy()
    bad.loc[0, "C"] = "maybe"
    with pytest.raises(ValueError, match="'C'.*maybe"):
        b.predict(bad)


# -- a mixed model -----------------------------------------------------------------------------
TRUE_WEIGHTS = np.array([0.45, 0.35, 0.2])
P_BINARY = np.array([[0.9, 0.2], [0.15, 0.8], [0.5, 0.9]])
P_CAT3 = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]])
P_CAT4 = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7], [0.25, 0.25, 0.4, 0.1]])
G_MEANS = np.array([[0.0, 0.0], [3.0, 1.0], [-1.0, 4.0]])
G_SD = np.array([[1.0, 0.7], [0.6, 1.2], [1.0, 1.0]])
RATES = np.array([1.0, 4.0, 10.0])


def _mixed(n: int = 2000, seed: int = 0, missing: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(seed)
    z = rng.choice(3, n, p=TRUE_WEIGHTS)
    frame = pd.DataFrame(
        {
            "b1": (rng.uniform(size=n) < P_BINARY[z, 0]).astype(float),
            "b2": (rng.uniform(size=n) < P_BINARY[z, 1]).astype(float),
            "c3": np.array(["low", "mid", "high"], dtype=object)[
                [rng.choice(3, p=P_CAT3[k]) for k in z]
            ],
            "c4": np.array([1, 2, 3, 4])[[rng.choice(4, p=P_CAT4[k]) for k in z]],
            "g1": rng.normal(G_MEANS[z, 0], G_SD[z, 0]),
            "g2": rng.normal(G_MEANS[z, 1], G_SD[z, 1]),
            "n": rng.poisson(RATES[z]).astype(float),
        }
    )
    if missing:
        for col in frame.columns:
            hole = rng.uniform(size=n) < missing
            frame.loc[hole, col] = None if col == "c3" else np.nan
    return frame, z


SPEC = {
    "binary": ["b1", "b2"],
    "categorical": ["c3", "c4"],
    "gaussian": ["g1", "g2"],
    "poisson": ["n"],
}


def test_planted_recovery_of_a_mixed_model() -> None:
    frame, z = _mixed(2000, missing=0.03)
    m = LatentClassModel(3, measurement=SPEC, covariance="VVI", random_state=0).fit(frame)
    assert m.converged_
    assert adjusted_rand_score(z, m.predict(frame)) > 0.9
    order = np.argsort(m.rates_[:, 0])  # planted rates rise with the class
    np.testing.assert_allclose(m.weights_[order], TRUE_WEIGHTS, atol=0.04)
    np.testing.assert_allclose(m.rates_[order, 0], RATES, rtol=0.1)
    np.testing.assert_allclose(m.means_[order][:, [4, 5]], G_MEANS, atol=0.2)
    np.testing.assert_allclose(np.sqrt(m.covariances_[order][:, [0, 1], [0, 1]]), G_SD, atol=0.15)
    np.testing.assert_allclose(m.means_[order][:, [0, 1]], P_BINARY, atol=0.08)
    cats3 = list(m.categories_["c3"])
    assert cats3 == ["high", "low", "mid"]  # strings sorted
    np.testing.assert_allclose(
        m.probs_["c3"][order][:, [cats3.index(a) for a in ("low", "mid", "high")]],
        P_CAT3,
        atol=0.06,
    )
    np.testing.assert_allclose(m.probs_["c4"][order], P_CAT4, atol=0.06)
    # (K − 1) + K·(2 binary + (2 + 3) categorical + 2·2 Gaussian VVI + 1 Poisson)
    assert m.n_parameters_ == 2 + 3 * (2 + 5 + 4 + 1)
    assert m.measurement_types_ == ["binary", "categorical", "gaussian", "poisson"]
    assert np.all(np.diff(m.history_) >= -1e-12)
    # sampling gives text answers where the block has them
    Xs, zs = m.sample(50)
    assert Xs.dtype == object and set(Xs[:, 2]) <= {"low", "mid", "high"}
    assert set(np.unique(Xs[:, [0, 1]].astype(float))) <= {0.0, 1.0}
    # reorder permutes the categorical blocks with the rest
    proba = m.predict_proba(frame)
    probs = m.probs_["c3"].copy()
    m.reorder([2, 0, 1])
    np.testing.assert_allclose(m.predict_proba(frame), proba[:, [2, 0, 1]], atol=1e-10)
    np.testing.assert_allclose(m.probs_["c3"], probs[[2, 0, 1]])


def test_frequency_weights_equal_repeated_rows_mixed() -> None:
    frame, _ = _mixed(150, seed=2, missing=0.05)
    counts = np.random.RandomState(0).randint(1, 4, size=len(frame))
    repeated = frame.loc[np.repeat(np.arange(len(frame)), counts)].reset_index(drop=True)
    start = LatentClassModel(3, measurement=SPEC, n_init=1, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(frame)
        fixed = dict(warm_start=True, accelerate=False, max_iter=200, tol=0.0)
        a = copy.deepcopy(start).set_params(**fixed).fit(frame, sample_weight=counts)
        b = copy.deepcopy(start).set_params(**fixed).fit(repeated)
    np.testing.assert_allclose(a.history_, b.history_, rtol=1e-10)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-9)
    for col in ("c3", "c4", "b1"):
        np.testing.assert_allclose(a.probs_[col], b.probs_[col], rtol=1e-9, atol=1e-12)
    assert a.bic(frame, sample_weight=counts) == pytest.approx(b.bic(repeated), rel=1e-10)
    # from their own starts (the weighted draws differ), the same maximum
    c = LatentClassModel(2, measurement=SPEC, random_state=0).fit(frame, sample_weight=counts)
    d = LatentClassModel(2, measurement=SPEC, random_state=0).fit(repeated)
    assert _loglik(c, frame, counts) == pytest.approx(_loglik(d, repeated), abs=1e-5)


# -- the inferred measurement ---------------------------------------------------------------
def test_measurement_inferred_from_a_dataframe() -> None:
    rng = np.random.RandomState(0)
    n = 300
    frame = pd.DataFrame(
        {
            "text": rng.choice(["a", "b", "c"], n).astype(object),
            "cat": pd.Categorical(rng.choice(["lo", "hi"], n), categories=["lo", "hi"]),
            "flag": rng.uniform(size=n) < 0.4,
            "zero_one": rng.randint(0, 2, n),
            "zero_one_float": rng.randint(0, 2, n).astype(float),
            "likert": rng.randint(1, 6, n),
            "signed": rng.randint(-3, 3, n),
            "count": rng.poisson(8.0, n),
            "wide_signed": rng.randint(-40, 40, n),
            "real": rng.normal(size=n),
        }
    )
    frame.loc[::17, "zero_one_float"] = np.nan
    frame.loc[::13, "text"] = None
    m = LatentClassModel(2, measurement=None, n_init=1, random_state=0).fit(frame)
    assert m.measurement_ == {
        "binary": ["flag", "zero_one", "zero_one_float"],
        "categorical": ["text", "cat", "likert", "signed"],
        "gaussian": ["wide_signed", "real"],
        "poisson": ["count"],
    }
    assert list(m.categories_["cat"]) == ["lo", "hi"]
    assert list(m.categories_["likert"]) == [1, 2, 3, 4, 5]
    # binary 3·1, text 2, cat 1, likert 4, signed 5, Gaussian VVI 2·2, Poisson 1
    assert m.n_parameters_ == 1 + 2 * (3 + 2 + 1 + 4 + 5 + 4 + 1)
    # arrays: positions; text columns of an object array are categorical
    arr = frame[["text", "zero_one", "real"]].to_numpy(dtype=object)
    a = LatentClassModel(2, measurement=None, n_init=1, random_state=0).fit(arr)
    assert a.measurement_ == {"binary": [1], "categorical": [0], "gaussian": [2]}


def test_the_default_measurement_is_inferred() -> None:
    """Not given, the measurement is inferred (the issue: "inferred from a DataFrame's
    dtypes when not given"): a survey frame of text, bool, Likert, count and float
    columns fits as a mixed model with no ``measurement`` argument."""
    rng = np.random.RandomState(3)
    n = 400
    z = rng.randint(0, 2, n)
    frame = pd.DataFrame(
        {
            "region": pd.Categorical(rng.choice(["N", "S", "E"], n)),
            "smoker": rng.uniform(size=n) < np.where(z == 1, 0.8, 0.2),
            "likert": rng.randint(1, 4, n) + 2 * z,
            "visits": rng.poisson(np.where(z == 1, 9.0, 2.0)) + rng.randint(0, 12, n),
            "bmi": rng.normal(np.where(z == 1, 31.0, 23.0), 3.0),
        }
    )
    frame.loc[::11, "bmi"] = np.nan
    m = LatentClassModel(2, n_init=2, random_state=0).fit(frame)
    assert m.measurement_ == {
        "binary": ["smoker"],
        "categorical": ["region", "likert"],
        "gaussian": ["bmi"],
        "poisson": ["visits"],
    }
    text = str(m.summary(frame))
    assert text.count("Block") == 4
    assert "inferred from the data: 1 binary, 2 categorical, 1 gaussian, 1 poisson" in text
    declared = LatentClassModel(2, measurement=m.measurement_, n_init=2, random_state=0)
    declared.fit(frame)
    assert declared.lower_bound_ == m.lower_bound_
    assert "inferred" not in str(declared.summary(frame))


def test_float_whole_numbers_stay_gaussian_and_integer_columns_are_counts() -> None:
    """Only an integer column of many whole numbers is read as counts: a float column of
    whole numbers (wine's magnesium and proline, in mg) stays Gaussian, so wine with no
    ``measurement`` is the latent profile model, the same fit as ``"gaussian"``."""
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).data
    for X in (wine, wine.to_numpy()):
        inferred = LatentClassModel(2, n_init=1, random_state=0).fit(X)
        declared = LatentClassModel(2, measurement="gaussian", n_init=1, random_state=0).fit(X)
        assert inferred.measurement_ == {"gaussian": list(declared.measurement_["gaussian"])}
        assert inferred.lower_bound_ == declared.lower_bound_
    counts = np.random.RandomState(0).poisson(20.0, size=(200, 2))
    for X in (counts, counts.astype(object)):
        assert LatentClassModel(1).fit(X).measurement_ == {"poisson": [0, 1]}
    frame = pd.DataFrame(counts, columns=["a", "b"]).astype("Int64")
    frame.loc[3, "a"] = pd.NA
    assert LatentClassModel(1).fit(frame).measurement_ == {"poisson": ["a", "b"]}
    assert LatentClassModel(1).fit(counts.astype(float)).measurement_ == {"gaussian": [0, 1]}


def test_bad_measurements_and_answers() -> None:
    frame, _ = _mixed(100, seed=1)
    with pytest.raises(ValueError, match="'c3'.*two blocks"):
        LatentClassModel(2, measurement={**SPEC, "gaussian": ["g1", "g2", "c3"]}).fit(frame)
    with pytest.raises(ValueError, match=r"\['n'\] are in no block"):
        LatentClassModel(2, measurement={k: v for k, v in SPEC.items() if k != "poisson"}).fit(
            frame
        )
    with pytest.raises(ValueError, match="unknown type 'ordinal'"):
        LatentClassModel(2, measurement={**SPEC, "ordinal": []}).fit(frame)
    with pytest.raises(ValueError, match="'c3'.*needs numbers"):
        LatentClassModel(2, measurement={**SPEC, "categorical": ["c4"], "gaussian": ["g1", "g2", "c3"]}).fit(frame)  # fmt: skip
    with pytest.raises(ValueError, match="binary column 'c4'.*0/1"):
        LatentClassModel(2, measurement={**SPEC, "binary": ["b1", "b2", "c4"], "categorical": ["c3"]}).fit(frame)  # fmt: skip
    with pytest.raises(ValueError, match=r"probs_init\['c3'\].*shape"):
        LatentClassModel(
            2, measurement=SPEC, probs_init={"b1": np.full((2, 2), 0.5), "b2": np.full((2, 2), 0.5),
                                             "c3": np.full((2, 2), 0.5), "c4": np.full((2, 4), 0.25)},
        ).fit(frame)  # fmt: skip
    with pytest.raises(ValueError, match="prob_concentration"):
        LatentClassModel(2, measurement=SPEC, prob_concentration=0.5).fit(frame)


def test_block_contract_pieces() -> None:
    m = make_measurement("categorical", prob_concentration=2.0)
    assert isinstance(m, Categorical) and isinstance(make_measurement("binary"), Binary)
    X = np.array([["a", "x"], ["b", None], ["a", "y"], [None, "y"]], dtype=object)
    m.setup(X, None)
    chunk = m.prepare(X)
    np.testing.assert_array_equal(chunk.codes, [[0, 0], [1, -1], [0, 1], [-1, 1]])
    params = m.from_probs([np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([[0.5, 0.5]] * 2)])
    ll = m.log_likelihood(params, chunk)
    np.testing.assert_allclose(ll[1], np.log([0.3, 0.8]))  # missing item left out
    back = m.from_unconstrained(m.to_unconstrained(params), params)
    np.testing.assert_allclose(back.log_table, params.log_table, atol=1e-12)
    assert m.n_parameters(2) == 2 * 2
    # the MAP M-step: (count + a − 1) / (N + R(a − 1))
    resp = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    new = m.m_step(m.sufficient_stats(params, chunk, resp, None))
    np.testing.assert_allclose(np.exp(new.log_table[:2, 0]), [(1 + 1) / (2 + 2), (1 + 1) / 4])
    np.testing.assert_allclose(np.exp(new.log_table[:2, 1]), [(1 + 1) / (1 + 2), 1 / 3])
    assert m.log_prior(params) == pytest.approx(float(params.log_table.sum()))
    perm = m.permute(params, np.array([1, 0]))
    np.testing.assert_allclose(perm.log_table, params.log_table[:, ::-1])
    arrays = m.to_arrays(params)
    assert isinstance(m.from_arrays(arrays), CategoricalParams)
    with pytest.raises(ValueError, match="summing to 1"):
        m.from_arrays({"probs": arrays["probs"] * 1.1})


def test_save_and_load_mixed_with_text_answers(tmp_path) -> None:
    frame, _ = _mixed(300, seed=4, missing=0.05)
    frame["c3"] = frame["c3"].astype("category")
    m = LatentClassModel(3, measurement=SPEC, random_state=0).fit(frame)
    m.save(tmp_path / "model.npz")
    back = LatentClassModel.load(tmp_path / "model.npz")
    np.testing.assert_allclose(back.predict_proba(frame), m.predict_proba(frame), rtol=1e-12)
    np.testing.assert_allclose(back.score_samples(frame), m.score_samples(frame), rtol=1e-12)
    assert back.measurement_ == m.measurement_
    assert {k: list(v) for k, v in back.categories_.items()} == {
        k: list(v) for k, v in m.categories_.items()
    }
    assert back.n_parameters_ == m.n_parameters_
    # a table whose answers do not sum to 1 is refused
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["categorical_probs"] = arrays["categorical_probs"] * 1.5
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="not a saved LatentClassModel"):
        LatentClassModel.load(tmp_path / "bad.npz")
