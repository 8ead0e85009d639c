"""The write-up's network: closed forms against backprop, finite differences, torch, sympy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emnet.autodiff import graph_nodes, to_dot
from emnet.deepnet import (
    METHODS,
    Cache,
    adjoints,
    backward,
    by_backprop,
    by_finite_differences,
    by_sympy,
    by_torch,
    count_sigmoid,
    errata,
    forward,
    gradients_by_method,
    gradients_from_scratch,
    graph,
    reset_sigmoid_calls,
    sigmoid,
    sigmoid_calls,
    sigmoid_counts,
    sympy_identities,
)

EXAMPLE = (1.5, 0.3, -1.2, 2.0)
HYP = settings(max_examples=25, deadline=None)
xs = st.floats(-4, 4, allow_nan=False)
ws = st.floats(-3, 3, allow_nan=False)


def close(a, b, rtol: float = 1e-12, atol: float = 1e-14) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol))


def reference(x: float, w1: float, w2: float, w3: float) -> tuple[float, float, float]:
    """Hand-expanded derivatives with math.exp (independent of the package's sigmoid)."""
    s = lambda u: 1.0 / (1.0 + math.exp(-u))
    h1 = s(w1 * x)
    h2 = s(w2 * h1)
    return (w3 * h2 * (1 - h2) * w2 * h1 * (1 - h1) * x, w3 * h2 * (1 - h2) * h1, h2)


def test_forward_values_at_the_example() -> None:
    c = forward(*EXAMPLE)
    assert c.a == pytest.approx(0.45)
    assert c.h1 == pytest.approx(1 / (1 + math.exp(-0.45)), rel=1e-15)
    assert c.b == pytest.approx(-1.2 * c.h1)
    assert c.h2 == pytest.approx(1 / (1 + math.exp(1.2 * c.h1)), rel=1e-15)
    assert c.f == pytest.approx(2.0 * c.h2)
    assert close(backward(c), reference(*EXAMPLE))


@HYP
@given(x=xs, w1=ws, w2=ws, w3=ws)
def test_closed_form_equals_backprop_torch_and_hand_expansion(x, w1, w2, w3) -> None:
    closed = backward(forward(x, w1, w2, w3))
    assert close(closed, reference(x, w1, w2, w3), rtol=1e-12, atol=1e-15)
    assert close(closed, by_backprop(x, w1, w2, w3), rtol=1e-12, atol=1e-15)
    assert close(closed, by_torch(x, w1, w2, w3), rtol=1e-12, atol=1e-15)
    assert close(closed, gradients_from_scratch(x, w1, w2, w3), rtol=1e-12, atol=1e-15)


@HYP
@given(x=xs, w1=ws, w2=ws, w3=ws)
def test_closed_form_equals_finite_differences(x, w1, w2, w3) -> None:
    closed = backward(forward(x, w1, w2, w3))
    assert close(closed, by_finite_differences(x, w1, w2, w3), rtol=1e-7, atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(x=xs, w1=ws, w2=ws, w3=ws)
def test_closed_form_equals_sympy(x, w1, w2, w3) -> None:
    assert close(backward(forward(x, w1, w2, w3)), by_sympy(x, w1, w2, w3), rtol=1e-12, atol=1e-15)


def test_sympy_proves_the_writeups_derivatives() -> None:
    identities = sympy_identities()
    claims = [i.claim for i in identities]
    assert "σ'(u) = σ(u)(1 − σ(u))" in claims and "eq. 20 = eq. 21" in claims
    assert any(c.startswith("eq. 22") for c in claims) and any(
        c.startswith("eq. 24") for c in claims
    )
    assert all(i.holds for i in identities), [i for i in identities if not i.holds]


def test_errata_eq23_is_off_by_w3_and_1_over_w2() -> None:
    items = {e.where: e for e in errata()}
    assert items["eq. 23 (middle)"].evidence.endswith("= w3")
    assert items["eq. 23 (right-hand side)"].evidence.endswith("= 1/w2")


@HYP
@given(x=xs, w1=ws, w2=ws, w3=ws)
def test_adjoint_sweep_matches_engine_node_by_node(x, w1, w2, w3) -> None:
    sweep = {a.node: a.value for a in adjoints(forward(x, w1, w2, w3))}
    nodes = {n.name: n for n in graph_nodes(graph(x, w1, w2, w3))}
    assert set(sweep) == set(nodes)
    for name, value in sweep.items():
        assert close(nodes[name].grad, value, rtol=1e-12, atol=1e-15), name
    assert close([sweep["w1"], sweep["w2"], sweep["w3"]], backward(forward(x, w1, w2, w3)))


def test_gradients_by_method_has_every_method_and_they_agree() -> None:
    results = gradients_by_method(*EXAMPLE)
    assert tuple(results) == METHODS
    ref = results["closed form"]
    for name, grads in results.items():
        assert len(grads) == 3 and all(isinstance(g, float) for g in grads)
        tol = 1e-8 if name == "finite differences" else 1e-13
        assert close(grads, ref, rtol=tol, atol=tol), name


def test_vector_x_is_elementwise_and_methods_sum_over_inputs() -> None:
    x = np.array([1.5, -2.0, 0.1, 3.0])
    cache = forward(x, 0.3, -1.2, 2.0)
    per_input = np.stack(backward(cache))
    for i, xi in enumerate(x):
        assert close(per_input[:, i], backward(forward(float(xi), 0.3, -1.2, 2.0)))
    results = gradients_by_method(x, 0.3, -1.2, 2.0)
    for name, grads in results.items():
        tol = 1e-8 if name == "finite differences" else 1e-13
        assert close(grads, per_input.sum(axis=1), rtol=tol, atol=tol), name
    assert graph(x, 0.3, -1.2, 2.0).name == "sum f"


def test_sigmoid_counts_cached_versus_from_scratch() -> None:
    counts = sigmoid_counts(*EXAMPLE)
    # cached: σ once per layer in the forward pass, none in the backward pass
    assert (counts.forward, counts.backward_cached, counts.cached_total) == (2, 0, 2)
    # (d), eq. 22 and eq. 24 as written contain 2, 5 and 6 σ(·)
    assert (counts.from_scratch_w3, counts.from_scratch_w2, counts.from_scratch_w1) == (2, 5, 6)
    assert counts.from_scratch_total == 13 > counts.cached_total


def test_sigmoid_counter_api() -> None:
    reset_sigmoid_calls()
    assert sigmoid_calls() == 0
    cache = forward(*EXAMPLE)
    assert sigmoid_calls() == 2
    with count_sigmoid() as outer:
        backward(cache)
        assert outer.calls == 0
        with count_sigmoid() as inner:
            gradients_from_scratch(*EXAMPLE)
        forward(np.arange(5.0), 1.0, 1.0, 1.0)  # an array input is one call per layer
    assert (inner.calls, outer.calls) == (13, 15)
    assert sigmoid_calls() == 17
    sigmoid(0.0)
    assert outer.calls == 15  # frozen after the block


def test_sigmoid_is_stable_and_matches_torch() -> None:
    u = np.array([-1000.0, -40.0, -1.0, 0.0, 1e-9, 2.5, 40.0, 1000.0])
    ours = sigmoid(u)
    assert np.all(np.isfinite(ours))
    assert close(ours, torch.sigmoid(torch.tensor(u, dtype=torch.float64)).numpy(), rtol=1e-15)
    assert sigmoid(0.0) == 0.5 and isinstance(sigmoid(0.0), float)
    big = backward(forward(50.0, 40.0, 30.0, 1.0))  # saturated: derivatives underflow to 0
    assert all(np.isfinite(big))


def test_graph_is_named_for_drawing() -> None:
    out = graph(*EXAMPLE, run_backward=False)
    assert out.name == "f" and out.grad is None
    dot = to_dot(out)
    for name in ("x", "w1", "w2", "w3", "a", "h1", "b", "h2", "f"):
        assert f"{name}\\n" in dot or f"→ {name}\\n" in dot, name
    drawn = graph(*EXAMPLE)
    assert float(drawn.grad) == 1.0


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (("a", 0.3, -1.2, 2.0), TypeError, "x: expected a number"),
        ((1.5, None, -1.2, 2.0), TypeError, "w1: expected a number"),
        ((1.5, 0.3, float("nan"), 2.0), ValueError, "w2: expected a finite number"),
        ((1.5, 0.3, -1.2, True), TypeError, "w3: expected a number"),
        ((1.5, np.array([1.0, 2.0]), -1.2, 2.0), TypeError, "w1: expected a number"),
        (([1.0, float("inf")], 0.3, -1.2, 2.0), ValueError, "x must contain finite"),
        (([], 0.3, -1.2, 2.0), TypeError, "non-empty array"),
    ],
)
def test_bad_inputs_name_the_argument(args, exc, match: str) -> None:
    with pytest.raises(exc, match=match):
        forward(*args)
    with pytest.raises(exc, match=match):
        gradients_by_method(*args)


def test_backward_needs_a_cache_and_fd_a_positive_step() -> None:
    with pytest.raises(TypeError, match="Cache returned by forward"):
        backward((1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps must be a positive"):
        by_finite_differences(*EXAMPLE, eps=0.0)
    assert isinstance(forward(np.float32(1.5), np.int64(1), 0.5, 2), Cache)
