"""Item 7 and 12: the closed forms near the end of the float range, negative numbers on the
command line, and no numpy warnings on stderr."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

from emnet.cli import main
from emnet.deepnet import adjoints, backward, forward, gradients_by_method


def test_closed_form_does_not_overflow_where_the_true_value_is_finite() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        grads = backward(forward(1.5, 0.3, -1.2, 1.7e308))
        by_method = gradients_by_method(1.5, 0.3, -1.2, 1.7e308)
    assert math.isfinite(grads.df_dw1)
    np.testing.assert_allclose(grads.df_dw1, -1.59499532803e307, rtol=1e-10)
    for name, values in by_method.items():
        np.testing.assert_allclose(values[0], grads.df_dw1, rtol=1e-8, err_msg=name)
    ad = {a.node: a.value for a in adjoints(forward(1.5, 0.3, -1.2, 1.7e308))}
    assert ad["w1"] == grads.df_dw1 and math.isfinite(ad["x"])


def test_product_is_the_plain_product_in_range_and_scaled_outside() -> None:
    from emnet.deepnet.network import product

    rng = np.random.default_rng(0)
    for _ in range(2000):
        factors = rng.uniform(-3, 3, size=7)
        plain = 1.0
        for f in factors:
            plain *= float(f)
        assert product(*factors) == plain
    assert product(1.7e308, -1.2, 0.5) == pytest.approx(-1.02e308)
    assert product(1e308, 1e308) == math.inf  # the product itself is out of range
    np.testing.assert_array_equal(product(np.array([1.0, 2.0]), 3.0), [3.0, 6.0])


def test_negative_numbers_are_option_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grad", "--x", "-1e300", "--w1", "-1E-3", "--no-picture"]) == 0
    assert "x = -1e+300, w1 = -0.001" in capsys.readouterr().out


def test_overflow_is_flagged_on_stdout_and_nothing_leaks_to_stderr() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emnet", "grad", "--w3", "1.7e308", "--x", "1e300", "--w1",
         "1e-300", "--no-picture"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "note: not finite" in proc.stdout and "closed form ∂f/∂w1 = -inf" in proc.stdout
