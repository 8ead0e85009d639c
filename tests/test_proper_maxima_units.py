"""The proper-maxima rule measures a class's covariance against the data's covariance in
each direction, not against the columns' variances alone: strongly correlated columns
(breast cancer's radius, perimeter and area: correlations above 0.99) made every start of
every full-covariance fit look collapsed, and the fit fell back to "every start ended in
a degenerate class" with the best improper run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from emnet.mixture import LatentClassModel
from emnet.mixture.measurement.gaussian import Gaussian, GaussianParams

CANCER = load_breast_cancer().data


@pytest.mark.parametrize("structure", ["EEE", "VVV"])
def test_correlated_columns_are_not_a_collapse(structure):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "every start ended in a degenerate class"
        m = LatentClassModel(2, covariance=structure, n_init=10, random_state=0).fit(CANCER)
    assert m.n_degenerate_starts_ < 10
    assert not m.init_degenerate_[int(np.argmax(m.init_lower_bounds_))] or m.n_degenerate_starts_


@pytest.mark.parametrize("structure", ["EEE", "VVV"])
def test_the_verdict_does_not_depend_on_the_units(structure):
    """Generalised eigenvalues against the total covariance are invariant under any
    invertible linear map of the columns (x → A x): the same classes, the same verdict."""
    rng = np.random.default_rng(4)
    K, D = 3, 4
    means = rng.normal(size=(K, D))
    B = rng.normal(size=(K, D, D))
    covs = B @ np.transpose(B, (0, 2, 1)) + 0.1 * np.eye(D)
    covs[2] = 1e-5 * np.eye(D) + 1e-7  # a collapsed class
    if structure == "EEE":
        covs = covs[0]  # one shared (D, D) covariance
    sizes = np.array([50.0, 40.0, 10.0])
    A = rng.normal(size=(D, D)) + 3 * np.eye(D)
    block, moved = Gaussian(structure), Gaussian(structure)
    X = rng.normal(size=(30, D))
    block.setup(X, None)
    moved.setup(X @ A.T, None)
    eig = block.standardized_eigenvalues(GaussianParams(means, covs), sizes)
    eig_moved = moved.standardized_eigenvalues(GaussianParams(means @ A.T, A @ covs @ A.T), sizes)
    np.testing.assert_allclose(eig, eig_moved, rtol=1e-8, atol=1e-12)
    verdict = block.degenerate(GaussianParams(means, covs), sizes)
    assert np.array_equal(
        verdict, moved.degenerate(GaussianParams(means @ A.T, A @ covs @ A.T), sizes)
    )
    if structure == "VVV":
        assert verdict.tolist() == [False, False, True]
