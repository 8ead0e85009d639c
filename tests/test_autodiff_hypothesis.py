"""Random expression graphs: the engine's values and gradients equal torch.autograd's.

Hypothesis draws a small program (leaves with broadcastable shapes, then a sequence of
ops over earlier nodes); one interpreter runs it on emnet.autodiff and on torch, and the
output and every leaf's gradient must agree to 1e-8 (relative to the output's scale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from emnet.autodiff import Tensor

FULL = (2, 3)
LEAF_SHAPES = [(2, 3), (3,), (2, 1), (1, 3), ()]
MASK = np.array([[True, False, True], [False, False, True]])
GATHER = np.array([0, 2, 2])


class EngineOps:
    """The engine's spelling of each op in a program."""

    @staticmethod
    def leaf(a: np.ndarray) -> Tensor:
        return Tensor(a, requires_grad=True)

    sum = staticmethod(lambda t, axis: t.sum(axis=axis, keepdims=True))
    mean = staticmethod(lambda t, axis: t.mean(axis=axis, keepdims=True))
    amax = staticmethod(lambda t, axis: t.max(axis=axis, keepdims=True))
    softmax = staticmethod(lambda t, axis: t.softmax(axis=axis))
    log_softmax = staticmethod(lambda t, axis: t.log_softmax(axis=axis))
    maximum = staticmethod(lambda a, b: a.maximum(b))
    where = staticmethod(lambda a, b: a.where(MASK, b))
    swap = staticmethod(lambda t: t.transpose())
    gather = staticmethod(lambda t: t[:, GATHER])
    exp = staticmethod(Tensor.exp)
    sigmoid = staticmethod(Tensor.sigmoid)
    tanh = staticmethod(Tensor.tanh)
    relu = staticmethod(Tensor.relu)
    log = staticmethod(Tensor.log)


class TorchOps:
    """torch's spelling of the same ops."""

    @staticmethod
    def leaf(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    sum = staticmethod(lambda t, axis: t.sum(dim=axis, keepdim=True))
    mean = staticmethod(lambda t, axis: t.mean(dim=axis, keepdim=True))
    amax = staticmethod(
        lambda t, axis: torch.amax(t, dim=() if axis is None else axis, keepdim=True)
    )
    softmax = staticmethod(lambda t, axis: torch.softmax(t, dim=axis))
    log_softmax = staticmethod(lambda t, axis: torch.log_softmax(t, dim=axis))
    maximum = staticmethod(torch.maximum)
    where = staticmethod(lambda a, b: torch.where(torch.tensor(MASK), a, b))
    swap = staticmethod(lambda t: t.transpose(0, 1))
    gather = staticmethod(lambda t: t[:, torch.tensor(GATHER)])
    exp = staticmethod(torch.exp)
    sigmoid = staticmethod(torch.sigmoid)
    tanh = staticmethod(torch.tanh)
    relu = staticmethod(torch.relu)
    log = staticmethod(torch.log)


UNARY = [
    "neg",
    "exp",
    "log1p_square",
    "sigmoid",
    "tanh",
    "relu",
    "square",
    "cube",
    "sum",
    "mean",
    "amax",
    "softmax",
    "log_softmax",
    "gather",
    "swap_reshape",
]
BINARY = ["add", "sub", "mul", "div", "maximum", "pow", "where", "matmul", "rconst"]


def apply(ops: Any, name: str, a: Any, b: Any, axis_pick: int) -> Any:
    """One program step; decisions depend only on shapes, so both backends take the same path."""
    shape_a, shape_b = tuple(a.shape), tuple(b.shape)
    axis = None if not shape_a else axis_pick % len(shape_a)
    if name in ("gather", "swap_reshape") and shape_a != FULL:
        name = "tanh"
    if name in ("softmax", "log_softmax") and axis is None:
        name = "sigmoid"
    if name == "matmul" and (shape_a, shape_b) != (FULL, FULL):
        name = "mul"
    table: dict[str, Callable[[], Any]] = {
        "neg": lambda: -a,
        "exp": lambda: ops.exp(a),
        "log1p_square": lambda: ops.log(a * a + 1.0),
        "sigmoid": lambda: ops.sigmoid(a),
        "tanh": lambda: ops.tanh(a),
        "relu": lambda: ops.relu(a),
        "square": lambda: a**2,
        "cube": lambda: a**3,
        "sum": lambda: ops.sum(a, axis),
        "mean": lambda: ops.mean(a, axis),
        "amax": lambda: ops.amax(a, axis),
        "softmax": lambda: ops.softmax(a, axis),
        "log_softmax": lambda: ops.log_softmax(a, axis),
        "gather": lambda: ops.gather(a),
        "swap_reshape": lambda: ops.swap(a).reshape(FULL),
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div": lambda: a / (b * b + 0.5),
        "maximum": lambda: ops.maximum(a, b),
        "pow": lambda: (ops.sigmoid(a) + 0.5) ** b,
        "where": lambda: ops.where(a, b),
        "matmul": lambda: (a @ ops.swap(b)) @ a * 0.25,
        "rconst": lambda: 1.5 / (a * a + 1.0) - 0.5 * b,
    }
    return table[name]()


def run(
    ops: Any, leaves: list[np.ndarray], steps: list[tuple[str, int, int, int]]
) -> tuple[Any, list]:
    inputs = [ops.leaf(v) for v in leaves]
    pool = list(inputs)
    for name, i, j, axis_pick in steps:
        pool.append(apply(ops, name, pool[i % len(pool)], pool[j % len(pool)], axis_pick))
    # every node made by the program reaches the output, with its own weight
    output = sum((k + 1) * 0.1 * node.sum() for k, node in enumerate(pool[len(inputs) :]))
    return output, inputs


@st.composite
def programs(draw: st.DrawFn) -> tuple[list[np.ndarray], list[tuple[str, int, int, int]]]:
    n_leaves = draw(st.integers(1, 4))
    shapes = [draw(st.sampled_from(LEAF_SHAPES)) for _ in range(n_leaves)]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    leaves = [rng.uniform(-1.5, 1.5, size=s) for s in shapes]
    n_steps = draw(st.integers(1, 8))
    steps = [
        (
            draw(st.sampled_from(UNARY + BINARY)),
            draw(st.integers(0, 20)),
            draw(st.integers(0, 20)),
            draw(st.integers(0, 2)),
        )
        for _ in range(n_steps)
    ]
    return leaves, steps


def assert_close(ours: np.ndarray, theirs: np.ndarray, scale: float, what: str) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-8 * scale, err_msg=what)


@settings(max_examples=120, deadline=None)
@given(programs())
def test_random_expression_graphs_match_torch(program) -> None:
    leaves, steps = program
    with np.errstate(over="ignore", invalid="ignore"):
        out, inputs = run(EngineOps, leaves, steps)
    ref, ref_inputs = run(TorchOps, leaves, steps)
    assume(np.isfinite(out.data).all() and abs(out.item()) < 1e12)
    scale = max(1.0, abs(ref.item()))
    assert_close(out.data, ref.detach().numpy(), scale, "output")
    with np.errstate(over="ignore", invalid="ignore"):
        out.backward()
    ref.backward()
    for k, (t, r) in enumerate(zip(inputs, ref_inputs)):
        expected = np.zeros(t.shape) if r.grad is None else r.grad.numpy()
        got = np.zeros(t.shape) if t.grad is None else t.grad
        assume(np.isfinite(expected).all())
        grad_scale = max(scale, float(np.abs(expected).max(initial=0.0)))
        assert got.shape == t.shape
        assert_close(got, expected, grad_scale, f"gradient of leaf {k} {t.shape}; steps {steps}")


@st.composite
def conv_pool_cases(draw: st.DrawFn) -> dict[str, Any]:
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    return {
        "x": (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w),
        "filters": draw(st.integers(1, 4)),
        "kernel": (kh, kw),
        "stride": (sh, sw),
        "padding": (ph, pw),
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@settings(max_examples=60, deadline=None)
@given(conv_pool_cases())
def test_random_conv2d_then_max_pool2d_match_torch(case) -> None:
    rng = np.random.default_rng(case["seed"])
    n, c, h, w = case["x"]
    arrays = [rng.normal(size=case["x"]), rng.normal(size=(case["filters"], c, *case["kernel"]))]
    if case["bias"]:
        arrays.append(rng.normal(size=case["filters"]))
    conv = {"stride": case["stride"], "padding": case["padding"]}
    pool = {"kernel_size": case["kernel"], "stride": case["stride"], "padding": case["padding"]}

    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [TorchOps.leaf(a) for a in arrays]
    y = ours[0].conv2d(ours[1], *ours[2:], **conv)
    y_ref = torch.nn.functional.conv2d(theirs[0], theirs[1], *theirs[2:], **conv)
    assert y.shape == tuple(y_ref.shape)
    # pool the conv output when the window fits, else pool the input itself
    source, source_ref = (
        (y, y_ref) if min(y.shape[2:]) >= max(case["kernel"]) else (ours[0], theirs[0])
    )
    z = source.max_pool2d(**pool)
    z_ref = torch.nn.functional.max_pool2d(source_ref, **pool)
    assert z.shape == tuple(z_ref.shape)
    upstream = rng.normal(size=z.shape)
    ((z * upstream).sum() + y.sum()).backward()
    ((z_ref * torch.tensor(upstream)).sum() + y_ref.sum()).backward()
    np.testing.assert_allclose(z.data, z_ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    for k, (t, r) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(
            t.grad, r.grad.numpy(), rtol=1e-8, atol=1e-8, err_msg=f"input {k}"
        )
