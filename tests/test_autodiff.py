"""emnet.autodiff: every op's value and gradient against torch.autograd (float64, 1e-8),
gradcheck, graph drawing, no_grad/zero_grad/accumulation and the error messages."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emnet.autodiff import (
    GradcheckError,
    Tensor,
    gradcheck,
    graph_nodes,
    is_grad_enabled,
    no_grad,
    render,
    to_dot,
    unbroadcast,
    where,
)

TOL = {"rtol": 1e-8, "atol": 1e-8}


def assert_matches_torch(
    engine_fn: Callable[..., Tensor],
    torch_fn: Callable[..., torch.Tensor],
    *arrays: np.ndarray,
    seed: int = 0,
) -> None:
    """Same value and same gradient for every input, under a random upstream gradient."""
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = engine_fn(*ours)
    ref = torch_fn(*theirs)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL)
    upstream = np.random.default_rng(seed).normal(size=out.shape)
    out.backward(upstream)
    ref.backward(torch.tensor(upstream))
    for i, (t, r) in enumerate(zip(ours, theirs)):
        expected = np.zeros(arrays[i].shape) if r.grad is None else r.grad.numpy()
        got = np.zeros(arrays[i].shape) if t.grad is None else t.grad
        assert got.shape == arrays[i].shape, f"input {i}: grad shape {got.shape}"
        np.testing.assert_allclose(got, expected, **TOL, err_msg=f"gradient of input {i}")


def randn(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed + 7 * len(shape) + sum(shape)).normal(size=shape)


def positive(*shape: int, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).uniform(0.5, 2.0, size=shape)


BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((2, 1, 4), (3, 1)),
    ((), (3,)),
    ((5, 1), (1,)),
]


@pytest.mark.parametrize(("sa", "sb"), BROADCAST_PAIRS)
@pytest.mark.parametrize(
    ("op", "reference"),
    [
        (lambda a, b: a + b, lambda a, b: a + b),
        (lambda a, b: a - b, lambda a, b: a - b),
        (lambda a, b: a * b, lambda a, b: a * b),
        (lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
        (lambda a, b: a.maximum(b), torch.maximum),
    ],
    ids=["add", "sub", "mul", "div", "maximum"],
)
def test_binary_ops_with_broadcasting_match_torch(op, reference, sa, sb) -> None:
    assert_matches_torch(op, reference, randn(*sa), randn(*sb, seed=5))


@pytest.mark.parametrize(("sa", "sb"), BROADCAST_PAIRS)
def test_pow_with_tensor_exponent_matches_torch(sa, sb) -> None:
    assert_matches_torch(lambda a, b: a**b, lambda a, b: a**b, positive(*sa), randn(*sb))


@pytest.mark.parametrize(
    ("op", "reference", "make"),
    [
        (lambda a: -a, lambda a: -a, randn),
        (lambda a: a**3, lambda a: a**3, randn),
        (lambda a: a**2.5, lambda a: a**2.5, positive),
        (lambda a: a**-1.5, lambda a: a**-1.5, positive),
        (lambda a: 2.0 - a, lambda a: 2.0 - a, randn),
        (lambda a: 3.0 / a, lambda a: 3.0 / a, positive),
        (lambda a: 1.7**a, lambda a: 1.7**a, randn),
        (lambda a: 4.0 + a * 0.5, lambda a: 4.0 + a * 0.5, randn),
        (lambda a: np.arange(4.0) * a, lambda a: torch.arange(4.0, dtype=torch.float64) * a, randn),
        (
            lambda a: np.float64(2.5) * a + np.ones(4),
            lambda a: 2.5 * a + torch.ones(4, dtype=torch.float64),
            randn,
        ),
        (lambda a: a.exp(), torch.exp, randn),
        (lambda a: a.log(), torch.log, positive),
        (lambda a: a.sigmoid(), torch.sigmoid, randn),
        (lambda a: (a * 40).sigmoid(), lambda a: torch.sigmoid(a * 40), randn),
        (lambda a: a.tanh(), torch.tanh, randn),
        (lambda a: a.relu(), torch.relu, randn),
    ],
    ids=[
        "neg",
        "pow3",
        "pow2.5",
        "pow-1.5",
        "rsub",
        "rdiv",
        "rpow",
        "radd",
        "ndarray*",
        "npscalar*",
        "exp",
        "log",
        "sigmoid",
        "sigmoid-saturated",
        "tanh",
        "relu",
    ],
)
@pytest.mark.parametrize("shape", [(), (4,), (3, 4)])
def test_unary_ops_match_torch(op, reference, make, shape) -> None:
    assert_matches_torch(op, reference, make(*shape))


@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((3, 4), (4, 5)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 3, 4), (4, 5)),
        ((2, 3, 4), (1, 4, 5)),
        ((3,), (2, 3, 4)),
        ((2, 1, 3, 4), (5, 4, 2)),
    ],
)
def test_matmul_matches_torch_including_vectors_and_batches(sa, sb) -> None:
    assert_matches_torch(lambda a, b: a @ b, torch.matmul, randn(*sa), randn(*sb, seed=3))


def test_matmul_with_constant_operands_on_either_side() -> None:
    m = randn(4, 2, seed=9)
    assert_matches_torch(lambda a: a @ m, lambda a: a @ torch.tensor(m), randn(3, 4))
    assert_matches_torch(lambda a: m.T @ a, lambda a: torch.tensor(m.T) @ a, randn(4, 3))


REDUCTION_AXES = [
    (None, False),
    (0, False),
    (1, True),
    (-1, False),
    ((0, 2), False),
    ((0, 2), True),
]


@pytest.mark.parametrize(("axis", "keepdims"), REDUCTION_AXES)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reductions_match_torch(name, axis, keepdims) -> None:
    def reference(a: torch.Tensor) -> torch.Tensor:
        fn = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax}[name]
        if axis is None:
            return fn(a) if name != "max" else torch.amax(a)
        return fn(a, dim=axis, keepdim=keepdims)

    assert_matches_torch(
        lambda a: getattr(a, name)(axis=axis, keepdims=keepdims), reference, randn(2, 3, 4)
    )


def test_max_splits_gradient_between_ties_like_torch() -> None:
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    assert_matches_torch(lambda a: a.max(axis=1), lambda a: torch.amax(a, dim=1), data)
    assert_matches_torch(lambda a: a.max(), torch.amax, data)


def test_maximum_splits_gradient_at_ties_like_torch() -> None:
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([1.0, 0.0, 3.0, 5.0])
    assert_matches_torch(lambda x, y: x.maximum(y), torch.maximum, a, b)
    assert_matches_torch(
        lambda x: x.maximum(0.0),
        lambda x: torch.maximum(x, torch.zeros((), dtype=torch.float64)),
        a - 1.0,
    )


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        (lambda a: a.reshape(6, 4), lambda a: a.reshape(6, 4)),
        (lambda a: a.reshape((4, -1)), lambda a: a.reshape(4, -1)),
        (lambda a: a.reshape(-1), lambda a: a.reshape(-1)),
        (lambda a: a.transpose(), lambda a: a.permute(2, 1, 0)),
        (lambda a: a.transpose(1, 0, 2), lambda a: a.permute(1, 0, 2)),
        (lambda a: a.transpose((2, 0, 1)), lambda a: a.permute(2, 0, 1)),
        (lambda a: a.T, lambda a: a.permute(2, 1, 0)),
    ],
    ids=[
        "reshape",
        "reshape-tuple",
        "flatten",
        "transpose",
        "transpose-axes",
        "transpose-tuple",
        "T",
    ],
)
def test_shape_ops_match_torch(op, reference) -> None:
    assert_matches_torch(op, reference, randn(2, 3, 4))


REPEATED = np.array([0, 2, 2, 1, 2])
MASK = np.array([True, False, True, True])
INDEXES = [
    (1, 1),
    (slice(None, None, 2), slice(None, None, 2)),
    ((slice(1, 3), 2), (slice(1, 3), 2)),
    ((Ellipsis, 0), (Ellipsis, 0)),
    ((None, slice(None), 1), (None, slice(None), 1)),
    (REPEATED, torch.tensor(REPEATED)),
    ([0, 0, 3], [0, 0, 3]),
    ((slice(None), REPEATED), (slice(None), torch.tensor(REPEATED))),
    ((REPEATED, REPEATED[::-1]), (torch.tensor(REPEATED), torch.tensor(REPEATED[::-1].copy()))),
    (MASK, torch.tensor(MASK)),
    (randn(4, 3) > 0, torch.tensor(randn(4, 3) > 0)),
]


@pytest.mark.parametrize(
    ("ours", "theirs"), INDEXES, ids=[f"index{i}" for i in range(len(INDEXES))]
)
def test_indexing_matches_torch_including_repeated_indices(ours, theirs) -> None:
    assert_matches_torch(lambda a: a[ours], lambda a: a[theirs], randn(4, 3))


def test_negative_step_slices_match_torch_flip() -> None:
    assert_matches_torch(lambda a: a[::-1, ::-2], lambda a: a.flip(0, 1)[:, ::2], randn(4, 3))


def test_indexing_with_an_integer_tensor() -> None:
    idx = Tensor([2.0, 0.0, 2.0])
    assert_matches_torch(lambda a: a[idx], lambda a: a[torch.tensor([2, 0, 2])], randn(4, 3))


@pytest.mark.parametrize(
    ("sc", "sx", "sy"), [((3, 4), (3, 4), (3, 4)), ((4,), (3, 1), ()), ((3, 1), (4,), (3, 4))]
)
def test_where_matches_torch_with_broadcasting(sc, sx, sy) -> None:
    cond = randn(*sc, seed=11) > 0
    assert_matches_torch(
        lambda x, y: x.where(cond, y),
        lambda x, y: torch.where(torch.tensor(cond), x, y),
        randn(*sx),
        randn(*sy),
    )
    assert_matches_torch(
        lambda x, y: where(cond, x, y),
        lambda x, y: torch.where(torch.tensor(cond), x, y),
        randn(*sx),
        randn(*sy),
    )


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_matches_torch(name, axis) -> None:
    data = randn(3, 5) * 4
    assert_matches_torch(
        lambda a: getattr(a, name)(axis=axis), lambda a: getattr(torch, name)(a, dim=axis), data
    )


def test_log_softmax_is_numerically_stable() -> None:
    data = np.array([[1000.0, 0.0, -1000.0], [-800.0, -800.0, -801.0]])
    assert_matches_torch(lambda a: a.log_softmax(axis=1), lambda a: torch.log_softmax(a, 1), data)
    assert_matches_torch(lambda a: a.softmax(axis=1), lambda a: torch.softmax(a, 1), data)
    out = Tensor(data).log_softmax(axis=1)
    assert np.all(np.isfinite(out.data))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction) -> None:
    targets = np.array([0, 3, 3, 1, 2, 0])
    assert_matches_torch(
        lambda a: a.cross_entropy(targets, reduction=reduction),
        lambda a: F.cross_entropy(a, torch.tensor(targets), reduction=reduction),
        randn(6, 4) * 3,
    )


CONV_CASES = [
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0),
    ((2, 3, 7, 7), (4, 3, 3, 3), 2, 1),
    ((1, 2, 6, 9), (3, 2, 2, 4), (2, 3), (1, 2)),
    ((3, 1, 8, 8), (5, 1, 5, 5), 1, 2),
    ((1, 1, 4, 4), (1, 1, 4, 4), 1, 0),
]


@pytest.mark.parametrize(("xs", "ws", "stride", "padding"), CONV_CASES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d_matches_torch(xs, ws, stride, padding, with_bias) -> None:
    arrays = [randn(*xs), randn(*ws, seed=4)] + ([randn(ws[0], seed=6)] if with_bias else [])
    assert_matches_torch(
        lambda x, w, *b: x.conv2d(w, *b, stride=stride, padding=padding),
        lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding),
        *arrays,
    )


@pytest.mark.parametrize(
    ("xs", "kernel", "stride", "padding"),
    [
        ((2, 3, 8, 8), 2, None, 0),
        ((2, 3, 7, 7), 2, None, 0),
        ((1, 2, 7, 6), 3, 1, 0),
        ((1, 2, 7, 6), 3, 2, 1),
        ((1, 1, 6, 9), (2, 3), (1, 2), 0),
    ],
)
def test_max_pool2d_matches_torch(xs, kernel, stride, padding) -> None:
    assert_matches_torch(
        lambda x: x.max_pool2d(kernel, stride=stride, padding=padding),
        lambda x: F.max_pool2d(x, kernel, stride=stride, padding=padding),
        randn(*xs),
    )


def test_max_pool2d_sends_ties_to_the_first_maximum_like_torch() -> None:
    data = np.zeros((1, 1, 4, 4))
    data[0, 0, 2:, 2:] = 1.0
    assert_matches_torch(lambda x: x.max_pool2d(2), lambda x: F.max_pool2d(x, 2), data)
    assert_matches_torch(
        lambda x: x.max_pool2d(3, stride=1), lambda x: F.max_pool2d(x, 3, stride=1), data
    )


def test_reused_node_and_diamond_graph_match_torch() -> None:
    def build(a, b, exp, tanh):
        h = a * b
        return exp(h) * tanh(h) + h * h + a * a

    assert_matches_torch(
        lambda a, b: build(a, b, Tensor.exp, Tensor.tanh),
        lambda a, b: build(a, b, torch.exp, torch.tanh),
        randn(3),
        randn(3, seed=2),
    )


def test_unbroadcast_sums_back_to_the_input_shape() -> None:
    g = np.ones((2, 3, 4))
    assert unbroadcast(g, (3, 1)).tolist() == [[8.0]] * 3
    assert unbroadcast(g, ()) == 24.0
    assert unbroadcast(g, (2, 3, 4)) is g


# ------------------------------------------------------------------ backward semantics
def test_package_docstring_example_runs() -> None:
    import doctest

    import emnet.autodiff

    result = doctest.testmod(emnet.autodiff, verbose=False)
    assert result.attempted >= 4 and result.failed == 0


def test_scalar_sigmoid_gradient() -> None:
    w = Tensor(2.0, requires_grad=True, name="w")
    f = (w * 3.0).sigmoid()
    f.backward()
    s = 1 / (1 + np.exp(-6.0))
    assert f.item() == pytest.approx(s, rel=1e-15)
    assert float(w.grad) == pytest.approx(3 * s * (1 - s), rel=1e-12)


def test_gradients_accumulate_across_backward_calls_until_zero_grad() -> None:
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0, 12.0])
    (x * 10).sum().backward()  # a second graph sharing the leaf adds to it too
    np.testing.assert_array_equal(x.grad, [14.0, 18.0, 22.0])
    x.zero_grad()
    assert x.grad is None
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_intermediate_nodes_keep_their_adjoint() -> None:
    x = Tensor(0.5, requires_grad=True)
    h = x.tanh()
    f = h * 3.0
    f.backward()
    assert float(h.grad) == 3.0
    assert float(f.grad) == 1.0
    assert float(x.grad) == pytest.approx(3 * (1 - np.tanh(0.5) ** 2), rel=1e-14)


def test_grad_is_not_shared_with_other_nodes() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad[0] = 100.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_constants_get_no_grad_and_no_backward_closure() -> None:
    a = Tensor([1.0, 2.0])
    b = Tensor([3.0, 4.0], requires_grad=True)
    out = (a * b).sum()
    out.backward()
    assert a.grad is None
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])
    c = a * 2.0
    assert not c.requires_grad and c.op == "mul" and c.is_leaf


def test_no_grad_records_nothing_and_restores_the_mode() -> None:
    w = Tensor([1.0, 2.0], requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (w * 2.0).exp()
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.parents == () and y.op == ""
    with pytest.raises(ValueError, match="does not require grad"):
        y.sum().backward()
    with pytest.raises(RuntimeError), no_grad():
        raise RuntimeError("boom")
    assert is_grad_enabled()

    @no_grad()
    def evaluate(t: Tensor) -> Tensor:
        return t * 3.0

    assert not evaluate(w).requires_grad
    assert (w * 3.0).requires_grad


def test_in_place_sgd_step_on_data() -> None:
    w = Tensor([1.0, -1.0], requires_grad=True)
    for _ in range(3):
        loss = (w * w).sum()
        w.zero_grad()
        loss.backward()
        w.data -= 0.25 * w.grad
    np.testing.assert_allclose(w.data, [0.125, -0.125])


def test_tensor_copies_its_input_and_is_float64() -> None:
    source = np.arange(3)
    t = Tensor(source)
    assert t.dtype == np.float64
    t.data[0] = 7.0
    assert source[0] == 0
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float64
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert (Tensor([1, 2], dtype=np.float32) * 2.0).dtype == np.float32


def test_deep_chain_does_not_hit_the_recursion_limit() -> None:
    x = Tensor(0.1, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    y.backward()
    assert float(x.grad) == pytest.approx(1.0001**3000, rel=1e-9)


# ------------------------------------------------------------------ errors
def test_matmul_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\)"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match="at least 1-D"):
        Tensor(2.0) @ Tensor(np.ones(2))


def test_broadcast_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        Tensor(np.ones((2, 3))) + np.ones(4)
    with pytest.raises(ValueError, match="where"):
        Tensor(np.ones(3)).where(np.ones(4, dtype=bool), 0.0)


def test_backward_errors() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"one-element output, got shape \(3,\)"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\), expected .* \(3,\)"):
        (x * 2.0).backward(np.ones(2))
    with pytest.raises(ValueError, match="does not require grad"):
        Tensor(1.0).backward()
    (x * 2.0).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="real numbers"):
        Tensor("abc")
    with pytest.raises(TypeError, match="Tensor"):
        Tensor([[1.0], [2.0, 3.0]])
    with pytest.raises(TypeError, match="real numbers"):
        Tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="requires_grad"):
        Tensor(1.0, requires_grad="yes")
    with pytest.raises(TypeError, match="name"):
        Tensor(1.0, name=3)
    with pytest.raises(TypeError, match="dtype"):
        Tensor(1.0, dtype=np.int64)
    with pytest.raises(TypeError):
        Tensor(1.0) + "a"


def test_op_argument_errors() -> None:
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="sum: invalid axis 2"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match=r"cannot reshape \(2, 3\) into \(4,\)"):
        x.reshape(4)
    with pytest.raises(ValueError, match="not a permutation"):
        x.transpose(0, 0)
    with pytest.raises(TypeError, match="boolean"):
        x.where(np.ones((2, 3)), 0.0)
    with pytest.raises(ValueError, match="item"):
        x.item()
    with pytest.raises(ValueError, match=r"targets must be integers in \[0, 3\)"):
        x.cross_entropy([0, 3])
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\)"):
        x.cross_entropy([0, 1, 2])
    with pytest.raises(ValueError, match=r"logits of shape \(n, classes\)"):
        Tensor(np.ones(3)).cross_entropy([0])
    with pytest.raises(ValueError, match="reduction"):
        x.cross_entropy([0, 1], reduction="avg")


def test_conv_and_pool_argument_errors() -> None:
    x = Tensor(np.ones((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"input has 3 channels .* expects 2"):
        x.conv2d(np.ones((4, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, H, W\)"):
        Tensor(np.ones((3, 5, 5))).conv2d(np.ones((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="weight must have shape"):
        x.conv2d(np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        x.conv2d(np.ones((4, 3, 7, 7)))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        x.conv2d(np.ones((4, 3, 3, 3)), bias=np.ones(3))
    with pytest.raises(ValueError, match="stride"):
        x.conv2d(np.ones((4, 3, 3, 3)), stride=0)
    with pytest.raises(TypeError, match="padding"):
        x.conv2d(np.ones((4, 3, 3, 3)), padding=1.5)
    with pytest.raises(ValueError, match="does not fit"):
        x.max_pool2d(6)
    with pytest.raises(ValueError, match="padding"):
        x.max_pool2d(2, padding=2)


# ------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize(
    ("fn", "shapes"),
    [
        (lambda a, b: (a @ b).tanh().sum(axis=0), [(3, 4), (4, 2)]),
        (lambda a, b: (a / (b * b + 1)).log_softmax(axis=1), [(2, 3), (3,)]),
        (lambda a, b: a.maximum(b).sigmoid().mean(axis=1, keepdims=True), [(3, 2), (2,)]),
        (lambda a: a.cross_entropy([1, 0, 2]), [(3, 3)]),
        (
            lambda x, w: x.conv2d(w, stride=2, padding=1).relu().max_pool2d(2),
            [(1, 2, 6, 6), (2, 2, 3, 3)],
        ),
        (lambda a: a[[0, 0, 2]].reshape(-1).softmax() ** 2, [(3, 2)]),
    ],
    ids=[
        "matmul-tanh",
        "div-logsoftmax",
        "maximum-sigmoid",
        "cross_entropy",
        "conv-pool",
        "index-softmax",
    ],
)
def test_gradcheck_passes_for_engine_ops(fn, shapes) -> None:
    inputs = [Tensor(randn(*s, seed=i) + 0.1, requires_grad=True) for i, s in enumerate(shapes)]
    before = [t.data.copy() for t in inputs]
    assert gradcheck(fn, *inputs)
    for t, b in zip(inputs, before):
        np.testing.assert_array_equal(t.data, b)  # the perturbations were undone
        assert t.grad is None


def _square_with_wrong_gradient(x: Tensor) -> Tensor:
    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * x.data,)  # should be 2 x

    return Tensor._make("bad_square", x.data**2, (x,), backward)


def test_gradcheck_catches_a_wrong_gradient() -> None:
    x = Tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    with pytest.raises(
        GradcheckError, match="with respect to x element 2: analytic 2 != numerical 4"
    ):
        gradcheck(_square_with_wrong_gradient, x)
    assert gradcheck(_square_with_wrong_gradient, x, raise_exception=False) is False
    assert gradcheck(lambda t: t**2, x)


def test_gradcheck_holds_constant_inputs_fixed_and_validates_arguments() -> None:
    x = Tensor([0.5, 1.5], requires_grad=True)
    c = Tensor([2.0, 3.0])
    assert gradcheck(lambda a, b: (a * b).sum(), x, c)
    with pytest.raises(ValueError, match="requires_grad=True"):
        gradcheck(lambda b: b.sum(), c)
    with pytest.raises(TypeError, match="return a Tensor"):
        gradcheck(lambda a: a.data.sum(), x)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a.sum(), Tensor([1.0], requires_grad=True, dtype=np.float32))
    with pytest.raises(ValueError, match="eps"):
        gradcheck(lambda a: a.sum(), x, eps=0.0)


# ------------------------------------------------------------------ graphs
def _small_graph() -> tuple[Tensor, Tensor]:
    x = Tensor(1.5, name="x")
    w1 = Tensor(0.3, requires_grad=True, name="w1")
    w2 = Tensor(-1.2, requires_grad=True, name="w2")
    h1 = (w1 * x).sigmoid()
    h1.name = "h1"
    f = (w2 * h1).tanh()
    return f, w1


def test_to_dot_lists_ops_names_shapes_values_and_grads() -> None:
    f, w1 = _small_graph()
    f.backward()
    dot = to_dot(f)
    assert dot.startswith("digraph computation {") and dot.rstrip().endswith("}")
    for text in ['label="x\\n', 'label="w1\\n', 'label="w2\\n', "mul", "sigmoid → h1", "tanh"]:
        assert text in dot
    assert "shape ()" in dot
    assert f"value {f.item():.4g}" in dot
    assert f"grad {float(w1.grad):.4g}" in dot
    assert dot.count("->") == 6
    assert len(graph_nodes(f)) == 7


def test_to_dot_for_tensors_shows_shapes_without_values() -> None:
    a = Tensor(np.ones((2, 3)), requires_grad=True, name="a")
    out = (a @ np.ones((3, 4))).relu()
    dot = to_dot(out, rankdir="TB")
    assert "shape (2, 4)" in dot and "matmul" in dot and "relu" in dot and "rankdir=TB" in dot
    assert "value" not in dot.split("matmul")[1]
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(out, rankdir="XY")
    with pytest.raises(TypeError, match="Tensor"):
        to_dot(np.ones(2))


def test_to_dot_escapes_quotes_in_names() -> None:
    t = Tensor(1.0, name='say "hi"')
    assert 'say \\"hi\\"' in to_dot(t * 2.0)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_render_writes_valid_png_and_svg(tmp_path: Path) -> None:
    f, _ = _small_graph()
    f.backward()
    png = render(f, tmp_path / "graph.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 20
    svg = render(f, tmp_path / "sub" / "graph.SVG")
    root = ElementTree.fromstring(svg.read_bytes())
    assert root.tag.endswith("svg")
    texts = {el.text for el in root.iter() if el.tag.endswith("text")}
    assert {"sigmoid → h1", "w1", "x", "tanh"} <= texts
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["graph.SVG", "graph.png", "sub"]


def test_render_rejects_other_suffixes(tmp_path: Path) -> None:
    f, _ = _small_graph()
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        render(f, tmp_path / "graph.pdf")


def test_render_without_dot_is_a_clear_runtime_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    f, _ = _small_graph()
    with pytest.raises(RuntimeError, match="Graphviz's `dot` program was not found"):
        render(f, tmp_path / "graph.png")
    assert not (tmp_path / "graph.png").exists()


def test_pow_at_zero_follows_torch_conventions() -> None:
    base = np.array([0.0, 0.0, 0.0, 2.0])
    exponent = np.array([0.0, 2.0, 1.0, 0.0])
    assert_matches_torch(lambda a, b: a**b, lambda a, b: a**b, base, exponent)
    assert_matches_torch(lambda a: a**0, lambda a: a**0, base)


def test_comparisons_give_masks_for_where_and_conversions_work() -> None:
    x = Tensor([-1.0, 0.5, 2.0], requires_grad=True)
    mask = x > 0
    assert isinstance(mask, np.ndarray) and mask.tolist() == [False, True, True]
    assert (x <= 0.5).tolist() == [True, True, False]
    assert (x >= Tensor(2.0)).tolist() == [False, False, True]
    assert (x < 0).tolist() == [True, False, False]
    y = where(x > 0, x * x, 0.0).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 4.0])
    np.testing.assert_array_equal(np.asarray(x), [-1.0, 0.5, 2.0])
    assert float(y) == pytest.approx(4.25)
    assert {x: 1}[x] == 1  # == keeps identity semantics: tensors hash and compare by identity
    with pytest.raises(TypeError):
        np.exp(x)


def test_engine_imports_numpy_only_and_no_other_system() -> None:
    import subprocess
    import sys

    code = (
        "import sys, emnet.autodiff; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'scipy', 'sklearn') "
        "or m.startswith(('emnet.deepnet', 'emnet.shapes', 'emnet.resnet', 'emnet.mixture', "
        "'emnet.cli', 'emnet.commands', 'emnet.report'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
