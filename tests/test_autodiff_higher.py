"""Higher-order gradients: backward(create_graph=True), gradients(), grad/hvp/hessian.

Hessian-vector products and Hessians equal torch.autograd.functional's on the write-up's
f = w3·σ(w2·σ(w1·x)), on an MLP loss, on a small CNN loss, op by op, and on random
expression graphs drawn by the strategies of test_autodiff_hypothesis.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from test_autodiff_hypothesis import EngineOps, TorchOps, programs, run

from emnet.autodiff import Tensor, grad, gradients, hessian, hvp, nn, where

TOL = {"rtol": 1e-9, "atol": 1e-10}


# ---------------------------------------------------------------------- create_graph
def test_create_graph_leaves_tensor_grads_that_differentiate_again() -> None:
    x = Tensor([0.5, -1.5, 2.0], requires_grad=True)
    y = (x * x * x).sum()
    y.backward(create_graph=True)
    first = x.grad
    assert isinstance(first, Tensor) and first.requires_grad
    np.testing.assert_allclose(first.data, 3 * x.data**2)
    x.zero_grad()
    first.sum().backward()  # d/dx Σ 3x² = 6x
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, 6 * x.data)


def test_plain_backward_is_unchanged_after_a_create_graph_pass() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward(create_graph=True)
    (x * x).sum().backward()  # a plain pass accumulates by value: an array again
    assert type(x.grad) is np.ndarray
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    x.zero_grad()
    (x * x).sum().backward()
    assert type(x.grad) is np.ndarray
    x.grad = np.array([1.0, 1.0])
    (x * x).sum().backward(create_graph=True)  # an array grad plus a Tensor adjoint
    assert isinstance(x.grad, Tensor)
    np.testing.assert_allclose(x.grad.data, [3.0, 5.0])
    with pytest.raises(TypeError, match="create_graph"):
        (x * x).sum().backward(create_graph=1)


def test_gradients_leaves_grad_alone_and_zero_fills_unused_inputs() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0], requires_grad=True)
    unused = Tensor([[1.0]], requires_grad=True)
    out = (a * b).sum()
    ga, gb, gu = gradients(out, [a, b, unused])
    np.testing.assert_array_equal(ga, [3.0, 3.0])
    np.testing.assert_array_equal(gb, [3.0])
    np.testing.assert_array_equal(gu, np.zeros((1, 1)))
    assert a.grad is None and b.grad is None and out.grad is None
    # an intermediate node as the input: the adjoint of that node
    h = a * 2.0
    (gh,) = gradients((h * h).sum(), [h])
    np.testing.assert_allclose(gh, 2 * h.data)
    (g2,) = gradients(out * 1.0, [a], grad_output=np.array(2.0))
    np.testing.assert_array_equal(g2, [6.0, 6.0])
    with pytest.raises(ValueError, match="does not require grad"):
        gradients(out, [Tensor([1.0])])
    with pytest.raises(ValueError, match="one-element"):
        gradients(a * b, [a])


def test_functional_grad_argnums_and_nesting() -> None:
    f = lambda x, y: (x * x * y).sum()
    x, y = np.array([1.0, -2.0]), np.array([3.0, 0.5])
    np.testing.assert_allclose(grad(f)(x, y), 2 * x * y)
    gx, gy = grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, 2 * x * y)
    np.testing.assert_allclose(gy, x * x)
    # third derivative of sin-free polynomial x⁴: 24 x
    quartic = lambda t: t * t * t * t
    assert float(grad(grad(grad(quartic)))(1.5)) == pytest.approx(36.0, rel=1e-12)
    assert float(grad(grad(quartic))(1.5)) == pytest.approx(12 * 1.5**2, rel=1e-12)
    np.testing.assert_array_equal(grad(lambda t: Tensor(1.0) * 2.0)(0.0), 0.0)
    with pytest.raises(ValueError, match="one element"):
        grad(lambda t: t * 2.0)(np.ones(2))
    with pytest.raises(ValueError, match="argnums"):
        grad(f, argnums=2)(x, y)


# ---------------------------------------------------------------------- the write-up's f
def writeup_f(module):
    def f(w: object) -> object:
        x = 1.5
        if module is torch:
            return w[2] * torch.sigmoid(w[1] * torch.sigmoid(w[0] * x))
        return w[2] * (w[1] * (w[0] * x).sigmoid()).sigmoid()

    return f


@pytest.mark.parametrize("w", [[0.3, -1.2, 2.0], [1.1, 0.4, -0.7], [-2.0, 3.0, 0.5]])
def test_writeup_network_hessian_and_hvp_equal_torch(w: list[float]) -> None:
    w = np.array(w)
    ours = hessian(writeup_f(None), w)
    theirs = torch.autograd.functional.hessian(writeup_f(torch), torch.tensor(w)).numpy()
    np.testing.assert_allclose(ours, theirs, **TOL)
    assert ours[2, 2] == 0.0 and abs(ours[0, 0]) > 1e-3  # f is linear in w3 only
    np.testing.assert_allclose(ours, ours.T, **TOL)
    v = np.array([0.3, -0.8, 1.7])
    value, product = hvp(writeup_f(None), w, v)
    ref_value, ref_product = torch.autograd.functional.hvp(
        writeup_f(torch), torch.tensor(w), torch.tensor(v)
    )
    assert float(value) == pytest.approx(ref_value.item(), rel=1e-14)
    np.testing.assert_allclose(product, ref_product.numpy(), **TOL)


# ---------------------------------------------------------------------- network losses
SIZES = [3, 4, 2]
RNG = np.random.default_rng(0)
X_MLP, Y_MLP = RNG.normal(size=(7, 3)), RNG.integers(0, 2, 7)


def unpack(theta, module):
    params, k = [], 0
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        w = theta[k : k + n_in * n_out].reshape(n_out, n_in)
        k += n_in * n_out
        params.append((w, theta[k : k + n_out]))
        k += n_out
    return params


def mlp_loss_engine(theta: Tensor) -> Tensor:
    (w1, b1), (w2, b2) = unpack(theta, None)
    hidden = Tensor(X_MLP).linear(w1, b1).tanh()
    return nn.cross_entropy(hidden.linear(w2, b2), Y_MLP) + 0.1 * nn.mse(
        hidden, np.full(hidden.shape, 0.5)
    )


def mlp_loss_torch(theta: torch.Tensor) -> torch.Tensor:
    (w1, b1), (w2, b2) = unpack(theta, torch)
    hidden = torch.tanh(F.linear(torch.tensor(X_MLP), w1, b1))
    loss = F.cross_entropy(F.linear(hidden, w2, b2), torch.tensor(Y_MLP))
    return loss + 0.1 * F.mse_loss(hidden, torch.full_like(hidden, 0.5))


def test_mlp_loss_hessian_equals_torch() -> None:
    n = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))
    theta = np.random.default_rng(1).normal(size=n)
    ours = hessian(mlp_loss_engine, theta)
    theirs = torch.autograd.functional.hessian(mlp_loss_torch, torch.tensor(theta)).numpy()
    assert ours.shape == (n, n)
    np.testing.assert_allclose(ours, theirs, **TOL)
    assert np.abs(ours).max() > 1e-2


def test_cnn_loss_hvp_equals_torch_for_input_and_every_parameter() -> None:
    rng = np.random.default_rng(2)
    arrays = (
        rng.normal(size=(2, 2, 7, 6)),  # x
        rng.normal(size=(3, 2, 3, 2)) * 0.5,  # conv weight
        rng.normal(size=3) * 0.1,  # conv bias
        rng.normal(size=(4, 3 * 3 * 3)) * 0.3,  # linear weight
    )
    labels = np.array([1, 3])

    def ours(x, w, b, fc):
        h = x.conv2d(w, b, stride=(2, 1), padding=1).tanh().max_pool2d(2, padding=(1, 0))
        return nn.cross_entropy(h.flatten().linear(fc), labels)

    def theirs(x, w, b, fc):
        h = F.max_pool2d(torch.tanh(F.conv2d(x, w, b, stride=(2, 1), padding=1)), 2, padding=(1, 0))
        return F.cross_entropy(F.linear(h.flatten(1), fc), torch.tensor(labels))

    vs = tuple(rng.normal(size=a.shape) for a in arrays)
    value, products = hvp(ours, arrays, vs)
    ref_value, ref_products = torch.autograd.functional.hvp(
        theirs, tuple(map(torch.tensor, arrays)), tuple(map(torch.tensor, vs))
    )
    assert float(value) == pytest.approx(ref_value.item(), rel=1e-12)
    for k, (p, r) in enumerate(zip(products, ref_products)):
        np.testing.assert_allclose(p, r.numpy(), **TOL, err_msg=f"input {k}")


# ---------------------------------------------------------------------- op by op
def _both(fn_ours: Callable, fn_torch: Callable, *arrays: np.ndarray, seed: int = 0) -> None:
    """H·v of Σ c·tanh(op(...)) over all inputs jointly equals torch's."""
    rng = np.random.default_rng(seed)
    out_shape = fn_ours(*map(Tensor, arrays)).shape
    c = rng.normal(size=out_shape)
    vs = tuple(rng.normal(size=a.shape) for a in arrays)
    _, products = hvp(lambda *t: (fn_ours(*t).tanh() * c).sum(), arrays, vs)
    _, ref = torch.autograd.functional.hvp(
        lambda *t: (torch.tanh(fn_torch(*t)) * torch.tensor(c)).sum(),
        tuple(map(torch.tensor, arrays)),
        tuple(map(torch.tensor, vs)),
    )
    for k, (p, r) in enumerate(zip(products, ref)):
        np.testing.assert_allclose(p, r.numpy(), **TOL, err_msg=f"input {k}")


def r(*shape: int, low: float = -1.5, high: float = 1.5) -> np.ndarray:
    return np.random.default_rng(sum(shape) + len(shape)).uniform(low, high, size=shape)


IDX = np.array([0, 2, 2, 1])
COND = np.array([[True, False, True], [False, True, True]])
OPS = {
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, r(2, 3), r(3, 4)),
    "matmul vec@mat": (lambda a, b: a @ b, lambda a, b: a @ b, r(3), r(3, 2)),
    "matmul batch@vec": (lambda a, b: a @ b, lambda a, b: a @ b, r(2, 2, 3), r(3)),
    "matmul batch": (lambda a, b: a @ b, lambda a, b: a @ b, r(2, 2, 3), r(3, 2)),
    "linear": (lambda x, w, b: x.linear(w, b), F.linear, r(4, 3), r(2, 3), r(2)),
    "linear 3-d": (lambda x, w: x.linear(w), F.linear, r(2, 4, 3), r(2, 3)),
    "div": (lambda a, b: a / (b * b + 0.5), lambda a, b: a / (b * b + 0.5), r(2, 3), r(3)),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, r(2, 3, low=0.5, high=2), r(2, 1)),
    "rpow": (lambda a: 2.0**a, lambda a: 2.0**a, r(3)),
    "exp log": (lambda a: (a.exp() + 1.0).log(), lambda a: torch.log(torch.exp(a) + 1), r(3)),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, r(2, 3)),
    "relu maximum": (
        lambda a, b: a.relu() * b.maximum(a),
        lambda a, b: torch.relu(a) * torch.maximum(b, a),
        r(2, 3),
        r(3),
    ),
    "where": (
        lambda a, b: where(COND, a * a, b),
        lambda a, b: torch.where(torch.tensor(COND), a * a, b),
        r(2, 3),
        r(3),
    ),
    "index": (lambda a: a[:, IDX] * a[1], lambda a: a[:, torch.tensor(IDX)] * a[1], r(2, 4)),
    "slice": (lambda a: a[::-1, 1:] ** 3, lambda a: a.flip(0)[:, 1:] ** 3, r(3, 3)),
    "broadcast_to": (
        lambda a: a.broadcast_to((3, 2, 2)) * a,
        lambda a: a.expand(3, 2, 2) * a,
        r(2, 1),
    ),
    "sum mean max": (
        lambda a: a.sum(axis=0) * a.mean(axis=1, keepdims=True) + a.max(axis=1, keepdims=True),
        lambda a: a.sum(0) * a.mean(1, keepdim=True) + a.amax(1, keepdim=True),
        r(3, 4),
    ),
    "softmax": (lambda a: a.softmax(axis=0) * a, lambda a: torch.softmax(a, 0) * a, r(3, 2)),
    "log_softmax": (
        lambda a: a.log_softmax(axis=1) * a,
        lambda a: torch.log_softmax(a, 1) * a,
        r(3, 2),
    ),
    "cross_entropy": (
        lambda a: a.cross_entropy(IDX[:3], reduction="none") * a.sum(axis=1),
        lambda a: F.cross_entropy(a, torch.tensor(IDX[:3]), reduction="none") * a.sum(1),
        r(3, 4),
    ),
    "transpose reshape": (
        lambda a: a.T.reshape(6) * a.reshape(-1),
        lambda a: a.T.reshape(6) * a.reshape(-1),
        r(2, 3),
    ),
    "conv2d": (
        lambda x, w: x.conv2d(w, stride=2, padding=(1, 2)),
        lambda x, w: F.conv2d(x, w, stride=2, padding=(1, 2)),
        r(2, 2, 5, 6),
        r(3, 2, 3, 2),
    ),
    "max_pool2d": (
        lambda x: x.max_pool2d(3, stride=2, padding=1) * x.max_pool2d(3, stride=2, padding=1),
        lambda x: F.max_pool2d(x, 3, stride=2, padding=1) ** 2,
        r(2, 2, 6, 5),
    ),
}


@pytest.mark.parametrize("name", list(OPS))
def test_second_order_of_each_op_equals_torch(name: str) -> None:
    ours, theirs, *arrays = OPS[name]
    _both(ours, theirs, *arrays)


# ---------------------------------------------------------------------- random graphs
@settings(max_examples=60, deadline=None)
@given(programs())
def test_random_expression_graphs_hvp_matches_torch(program) -> None:
    leaves, steps = program
    rng = np.random.default_rng(len(steps))
    vs = [rng.normal(size=np.shape(leaf)) for leaf in leaves]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out, inputs = run(EngineOps, leaves, steps)
        assume(np.isfinite(out.data).all() and abs(out.item()) < 1e6)
        first = gradients(out, inputs, create_graph=True)
        inner = sum((g * v).sum() for g, v in zip(first, vs))
        ours = (
            gradients(inner, inputs)
            if inner.requires_grad
            else [np.zeros(np.shape(leaf)) for leaf in leaves]
        )
    ref, ref_inputs = run(TorchOps, leaves, steps)
    ref_first = torch.autograd.grad(ref, ref_inputs, create_graph=True, allow_unused=True)
    ref_inner = sum((g * torch.tensor(v)).sum() for g, v in zip(ref_first, vs) if g is not None)
    theirs = [np.zeros(np.shape(leaf)) for leaf in leaves]
    if isinstance(ref_inner, torch.Tensor) and ref_inner.requires_grad:
        grads = torch.autograd.grad(ref_inner, ref_inputs, allow_unused=True)
        theirs = [t if g is None else g.numpy() for t, g in zip(theirs, grads)]
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assume(np.isfinite(b).all() and np.abs(b).max(initial=0) < 1e6)
        scale = max(1.0, float(np.abs(b).max(initial=0.0)))
        np.testing.assert_allclose(
            a, b, rtol=1e-7, atol=1e-7 * scale, err_msg=f"H·v for leaf {k}; steps {steps}"
        )


def test_every_op_has_a_chain_rule_in_tensor_ops() -> None:
    from emnet.autodiff import graph_nodes

    a = Tensor(r(2, 3), requires_grad=True)
    b = Tensor(r(3), requires_grad=True)
    img = Tensor(r(1, 2, 4, 4), requires_grad=True)
    w = Tensor(r(2, 2, 3, 3), requires_grad=True)
    parts = [
        (a + b) - b * a / (b * b + 1.0),
        (a.sigmoid() + 0.5) ** b,
        2.0**a,
        -a.exp().log().tanh().relu(),
        a.maximum(b).where(COND, b),
        a.sum(axis=0) + a.mean() + a.max(axis=1).sum(),
        a.reshape(3, 2).T.flatten(0).broadcast_to((2, 6)),
        a[:, IDX[:3]] + a[::-1],
        a.softmax(axis=1) + a.log_softmax(axis=0),
        a @ b + b @ a.T.sum(axis=1, keepdims=True),
        a.linear(Tensor(r(4, 3), requires_grad=True), b[:1].broadcast_to((4,))),
        a.cross_entropy([0, 2]),
        img.conv2d(w, b[:2], stride=1, padding=1).max_pool2d(2),
    ]
    out = sum(part.sum() for part in parts)
    nodes = [n for n in graph_nodes(out) if n._backward is not None]
    assert len({n.op for n in nodes}) >= 25
    assert all(n._graph_backward is not None for n in nodes), {
        n.op for n in nodes if n._graph_backward is None
    }
    out.backward(create_graph=True)
    assert all(isinstance(t.grad, Tensor) for t in (a, b, img, w))


def _chain(value: float, depth: int = 1500) -> tuple[Tensor, Tensor]:
    x = Tensor(value, requires_grad=True)
    y = x
    for _ in range(depth):
        y = (y * 1.001).tanh() + 0.0
    return x, y


def test_create_graph_on_a_deep_chain_does_not_recurse() -> None:
    x, y = _chain(0.3)
    (g,) = gradients(y, [x], create_graph=True)
    (h,) = gradients(g, [x])  # the second pass walks a graph of ~10,000 nodes
    eps = 1e-5
    plus, minus = (
        gradients(out, [leaf])[0] for leaf, out in (_chain(0.3 + eps), _chain(0.3 - eps))
    )
    assert float(h) == pytest.approx(float((plus - minus) / (2 * eps)), rel=1e-4, abs=1e-9)
    assert abs(float(h)) > 1e-6


def test_module_doctests_run() -> None:
    import doctest

    from emnet.autodiff import functional, optim

    for module in (nn, optim, functional):
        result = doctest.testmod(module, verbose=False)
        assert result.attempted >= 2 and result.failed == 0, module.__name__
