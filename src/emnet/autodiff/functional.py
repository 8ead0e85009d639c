"""Functional helpers over the engine: ``grad(f)``, Hessian-vector products, Hessians.

They are built on :func:`~emnet.autodiff.gradients` with ``create_graph=True``: the first
backward pass is recorded as Tensor ops, and a second one differentiates it.

>>> import numpy as np
>>> from emnet.autodiff import grad, hessian
>>> f = lambda x: (x * x * x).sum()
>>> grad(f)(np.array([1.0, 2.0]))          # 3 x²
array([ 3., 12.])
>>> hessian(f, np.array([1.0, 2.0]))       # diag(6 x)
array([[ 6.,  0.],
       [ 0., 12.]])
>>> grad(grad(lambda x: x * x * x))(2.0)   # d²/dx² x³ = 6 x
array(12.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from emnet.autodiff.tensor import Tensor, gradients, is_grad_enabled

__all__ = ["grad", "hessian", "hvp"]


def _as_input(x: Any) -> tuple[Tensor, bool]:
    """A Tensor to differentiate at, and whether it belongs to an outer graph."""
    if isinstance(x, Tensor) and x.requires_grad and is_grad_enabled():
        return x, True  # nested: grad(grad(f)) differentiates through this one
    return Tensor(x.data if isinstance(x, Tensor) else x, requires_grad=True), False


def _scalar_output(out: Any, what: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{what}: f must return a Tensor, got {type(out).__name__}")
    if out.size != 1:
        raise ValueError(f"{what}: f must return one element, got shape {out.shape}")
    return out


def grad(
    f: Callable[..., Tensor], argnums: int | Sequence[int] = 0
) -> Callable[..., np.ndarray | Tensor | tuple[Any, ...]]:
    """The gradient of a scalar function: ``grad(f)(x)`` = ∂f/∂x at x.

    ``f`` takes Tensors and returns a one-element Tensor. With plain arrays as inputs the
    result is a numpy array; called on a Tensor of an enclosing graph (as in
    ``grad(grad(f))``) it is a Tensor in that graph, so it can be differentiated again.
    ``argnums`` picks the argument(s), as in JAX; a tuple gives a tuple of gradients.
    """
    if not callable(f):
        raise TypeError(f"f: expected a callable, got {type(f).__name__}")
    several = not isinstance(argnums, int)
    picks = tuple(argnums) if several else (argnums,)  # type: ignore[arg-type]

    def gradient(*args: Any) -> np.ndarray | Tensor | tuple[Any, ...]:
        for k in picks:
            if not -len(args) <= k < len(args):
                raise ValueError(f"argnums: {k} is out of range for {len(args)} arguments")
        call = list(args)
        nested = False
        wrt = []
        for k in picks:
            t, inner = _as_input(args[k])
            call[k] = t
            wrt.append(t)
            nested = nested or inner
        out = _scalar_output(f(*call), "grad")
        if not out.requires_grad:
            result: list[Any] = [np.zeros(t.shape) for t in wrt]
        else:
            result = list(gradients(out, wrt, create_graph=nested))
        return tuple(result) if several else result[0]

    return gradient


def _as_tuple(x: Any) -> tuple[tuple[Any, ...], bool]:
    return (tuple(x), True) if isinstance(x, tuple | list) else ((x,), False)


def hvp(
    f: Callable[..., Tensor], inputs: Any, v: Any
) -> tuple[np.ndarray, np.ndarray | tuple[np.ndarray, ...]]:
    """``(f(inputs), H·v)``: the Hessian of scalar ``f`` at ``inputs`` times ``v``, by
    differentiating ⟨∇f, v⟩ (as ``torch.autograd.functional.hvp``). ``inputs`` and ``v``
    are an array or a tuple of arrays of the same shapes."""
    xs, several = _as_tuple(inputs)
    vs, v_several = _as_tuple(v)
    if several != v_several or len(xs) != len(vs):
        raise ValueError("hvp: v must have the same structure as inputs (an array or a tuple)")
    leaves = [Tensor(x.data if isinstance(x, Tensor) else x, requires_grad=True) for x in xs]
    directions = [np.asarray(d, dtype=np.float64) for d in vs]
    for i, (t, d) in enumerate(zip(leaves, directions)):
        if d.shape != t.shape:
            raise ValueError(f"hvp: v[{i}] has shape {d.shape}, expected {t.shape}")
    out = _scalar_output(f(*leaves), "hvp")
    if not out.requires_grad:
        zeros = tuple(np.zeros(t.shape) for t in leaves)
        return out.data.copy(), zeros if several else zeros[0]
    first = gradients(out, leaves, create_graph=True)
    inner = first[0] * directions[0]
    total = inner.sum()
    for g, d in zip(first[1:], directions[1:]):
        total = total + (g * d).sum()
    if not total.requires_grad:  # f is linear: the Hessian is zero
        products = [np.zeros(t.shape) for t in leaves]
    else:
        products = list(gradients(total, leaves))
    return out.data.copy(), tuple(products) if several else products[0]


def hessian(f: Callable[[Tensor], Tensor], x: Any) -> np.ndarray:
    """The full Hessian of scalar ``f`` at ``x`` (shape ``x.shape + x.shape``), one
    Hessian-vector product per element of ``x``: meant for small inputs."""
    x = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float64)
    rows = np.empty((x.size, x.size))
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = 1.0
        rows[k] = np.asarray(hvp(f, x, e.reshape(x.shape))[1]).reshape(-1)
    return rows.reshape(x.shape + x.shape)
