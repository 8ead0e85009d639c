"""Standard errors on poLCA's gss82 (issue 19): at the default tolerance, with estimates
on the boundary, the OPG standard errors equal poLCA's (1.6.0.2, run once with R on the
same data: ``poLCA(cbind(PURPOSE, ACCURACY, UNDERSTA, COOPERAT) ~ 1, gss82, nclass = 3,
nrep = 20)``, LL −2754.545). Before the boundary rule, the class-share SEs were 0.140 /
0.144 / 0.035 at the default tolerance."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from emnet.mixture import CategoricalMixture

# gss82's 1202 rows as answer patterns and counts (GSS 1982, poLCA's data set)
PATTERNS = """PURPOSE,ACCURACY,UNDERSTA,COOPERAT,n
Depends,Mostly true,Fair/Poor,Cooperative,2
Depends,Mostly true,Fair/Poor,Interested,6
Depends,Mostly true,Good,Cooperative,4
Depends,Mostly true,Good,Impatient,1
Depends,Mostly true,Good,Interested,23
Depends,Not true,Fair/Poor,Cooperative,3
Depends,Not true,Fair/Poor,Impatient,2
Depends,Not true,Fair/Poor,Interested,9
Depends,Not true,Good,Cooperative,9
Depends,Not true,Good,Impatient,2
Depends,Not true,Good,Interested,43
Good,Mostly true,Fair/Poor,Cooperative,25
Good,Mostly true,Fair/Poor,Impatient,5
Good,Mostly true,Fair/Poor,Interested,71
Good,Mostly true,Good,Cooperative,35
Good,Mostly true,Good,Impatient,2
Good,Mostly true,Good,Interested,419
Good,Not true,Fair/Poor,Cooperative,16
Good,Not true,Fair/Poor,Impatient,5
Good,Not true,Fair/Poor,Interested,42
Good,Not true,Good,Cooperative,25
Good,Not true,Good,Impatient,4
Good,Not true,Good,Interested,270
Waste of time,Mostly true,Fair/Poor,Cooperative,2
Waste of time,Mostly true,Fair/Poor,Interested,1
Waste of time,Mostly true,Good,Cooperative,3
Waste of time,Mostly true,Good,Interested,26
Waste of time,Not true,Fair/Poor,Cooperative,12
Waste of time,Not true,Fair/Poor,Impatient,8
Waste of time,Not true,Fair/Poor,Interested,13
Waste of time,Not true,Good,Cooperative,23
Waste of time,Not true,Good,Impatient,6
Waste of time,Not true,Good,Interested,85
"""

# poLCA's estimates and OPG standard errors, classes by size (0.6208, 0.2070, 0.1723);
# answers in poLCA's factor order
POLCA_SHARES = [0.620750, 0.206965, 0.172285]
POLCA_SHARE_SE = [0.045542, 0.051941, 0.035058]
POLCA_ITEM_SE = {
    "PURPOSE": (["Good", "Depends", "Waste of time"],
                [[0.020216, 0.011589, 0.015689], [0.039337, 0.025080, 0.024514],
                 [0.108177, 0.044789, 0.092105]]),
    "ACCURACY": (["Mostly true", "Not true"],
                 [[0.024067, 0.024067], [0.051506, 0.051506], [0.061908, 0.061908]]),
    "UNDERSTA": (["Good", "Fair/Poor"],
                 [[0.0, 0.0], [0.153020, 0.153020], [0.038559, 0.038559]]),
    "COOPERAT": (["Interested", "Cooperative", "Impatient"],
                 [[0.018613, 0.018613, 0.0], [0.037045, 0.034762, 0.018768],
                  [0.043103, 0.036683, 0.025112]]),
}  # fmt: skip


@pytest.fixture(scope="module")
def gss82():
    table = pd.read_csv(io.StringIO(PATTERNS))
    X = table.loc[table.index.repeat(table.pop("n"))].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = CategoricalMixture(3, n_init=20, random_state=0).fit(X).reorder("weight")
    return X, model


def test_maximum_is_polca_s(gss82):
    X, model = gss82
    assert model.score(X) * len(X) == pytest.approx(-2754.545, abs=1e-3)
    np.testing.assert_allclose(model.weights_, POLCA_SHARES, atol=2e-4)


def test_opg_standard_errors_equal_polca_at_the_default_tolerance(gss82):
    X, model = gss82
    se = model.standard_errors(X, method="opg")
    np.testing.assert_allclose(se.weights, POLCA_SHARE_SE, rtol=2e-3)
    for j, item in enumerate(X.columns):
        answers, expected = POLCA_ITEM_SE[item]
        order = [list(model.categories_[j]).index(a) for a in answers]
        np.testing.assert_allclose(se.probs[j][:, order], expected, rtol=2e-3, atol=2e-5)
    assert se.n_boundary >= 2 and not np.isnan(se.weights).any()
    # the observed information gives nearly the same numbers (poLCA reports only OPG)
    hess = model.standard_errors(X)
    np.testing.assert_allclose(hess.weights, POLCA_SHARE_SE, rtol=0.05)
