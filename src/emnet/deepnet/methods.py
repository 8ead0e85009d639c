"""The three gradients of f(x) = w₃·σ(w₂·σ(w₁·x)) by five independent methods, and sympy's proofs.

- closed form: :func:`emnet.deepnet.network.backward` (eq. 22, 24) on the cached forward pass;
- backprop: emnet's own reverse-mode engine (:mod:`emnet.autodiff`) on the graph of f;
- finite differences: central differences of the forward pass in float64;
- torch.autograd: PyTorch's reverse mode in float64;
- sympy: the symbolic derivative of f, evaluated at 30 significant digits.

For an array ``x`` every method gives the gradient of Σᵢ f(xᵢ) (the per-input closed forms
summed), so all five stay comparable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from emnet._checks import Erratum
from emnet.autodiff import Tensor
from emnet.deepnet.network import backward, check_inputs, forward

METHODS = (
    "closed form",
    "backprop (emnet.autodiff)",
    "finite differences",
    "torch.autograd",
    "sympy",
)

Triple = tuple[float, float, float]


def graph(x: Any, w1: Any, w2: Any, w3: Any, run_backward: bool = True) -> Tensor:
    """f as an :mod:`emnet.autodiff` graph with named nodes x, w1, a, h1, w2, b, h2, w3, f.

    Every leaf requires grad. With ``run_backward`` (the default) ``backward()`` has been
    run, so every node's ``.grad`` holds its adjoint ∂f/∂node, ready for
    :func:`emnet.autodiff.render`. For an array ``x`` the output is Σᵢ f(xᵢ), named "sum f".
    """
    xv, w1v, w2v, w3v = check_inputs(x, w1, w2, w3)
    leaves = {
        name: Tensor(value, requires_grad=True, name=name)
        for name, value in (("x", xv), ("w1", w1v), ("w2", w2v), ("w3", w3v))
    }
    a = leaves["w1"] * leaves["x"]
    a.name = "a"
    h1 = a.sigmoid()
    h1.name = "h1"
    b = leaves["w2"] * h1
    b.name = "b"
    h2 = b.sigmoid()
    h2.name = "h2"
    f = leaves["w3"] * h2
    f.name = "f"
    out = f
    if f.data.ndim:
        out = f.sum()
        out.name = "sum f"
    if run_backward:
        out.backward()
    return out


def _named_nodes(output: Tensor) -> dict[str, Tensor]:
    from emnet.autodiff import graph_nodes

    return {node.name: node for node in graph_nodes(output) if node.name}


def by_closed_form(x: Any, w1: Any, w2: Any, w3: Any) -> Triple:
    grads = backward(forward(x, w1, w2, w3))
    return tuple(float(np.sum(g)) for g in grads)  # type: ignore[return-value]


def by_backprop(x: Any, w1: Any, w2: Any, w3: Any) -> Triple:
    nodes = _named_nodes(graph(x, w1, w2, w3))
    return tuple(float(np.sum(nodes[w].grad)) for w in ("w1", "w2", "w3"))  # type: ignore[return-value]


def by_finite_differences(x: Any, w1: Any, w2: Any, w3: Any, eps: float = 1e-6) -> Triple:
    """Central differences (f(w + h) − f(w − h)) / 2h with h = eps·max(1, |w|), float64.

    The truncation error is O(h²) and the rounding error O(10⁻¹⁶/h): about 1e-10 here.
    """
    xv, *weights = check_inputs(x, w1, w2, w3)
    if not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps}")
    out = []
    for i, w in enumerate(weights):
        h = eps * max(1.0, abs(w))
        # near the end of the float range w ± h overflows: step to that side by 0 (a
        # one-sided difference) instead of evaluating f at infinity
        w_up = w + h if math.isfinite(w + h) else w
        w_down = w - h if math.isfinite(w - h) else w
        up, down = list(weights), list(weights)
        up[i], down[i] = w_up, w_down
        with np.errstate(over="ignore", invalid="ignore"):
            f_up = np.sum(forward(xv, *up).f)
            f_down = np.sum(forward(xv, *down).f)
            out.append(float((f_up - f_down) / (w_up - w_down)))
    return tuple(out)  # type: ignore[return-value]


def by_torch(x: Any, w1: Any, w2: Any, w3: Any) -> Triple:
    """torch.autograd in float64."""
    import torch

    xv, *weights = check_inputs(x, w1, w2, w3)
    xt = torch.as_tensor(np.asarray(xv), dtype=torch.float64)
    w = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in weights]
    f = w[2] * torch.sigmoid(w[1] * torch.sigmoid(w[0] * xt))
    f.sum().backward()
    return tuple(float(t.grad) for t in w)  # type: ignore[return-value,arg-type]


# ---------------------------------------------------------------------------- sympy


class _Symbolic(NamedTuple):
    symbols: tuple[Any, ...]  # x, w1, w2, w3
    u: Any
    sigma: Callable[[Any], Any]
    f: Any
    derivatives: tuple[Any, Any, Any]  # ∂f/∂w1, ∂f/∂w2, ∂f/∂w3 by sympy.diff
    numeric: Callable[..., Any]  # (x, w1, w2, w3) -> the three derivatives (mpmath)


@functools.cache
def symbolic() -> _Symbolic:
    """f and its three derivatives as sympy expressions (built once)."""
    import sympy as sp

    x, w1, w2, w3, u = sp.symbols("x w1 w2 w3 u", real=True)

    def sigma(arg: Any) -> Any:
        return 1 / (1 + sp.exp(-arg))

    f = w3 * sigma(w2 * sigma(w1 * x))
    derivatives = (sp.diff(f, w1), sp.diff(f, w2), sp.diff(f, w3))
    numeric = sp.lambdify((x, w1, w2, w3), derivatives, modules="mpmath")
    return _Symbolic((x, w1, w2, w3), u, sigma, f, derivatives, numeric)


def by_sympy(x: Any, w1: Any, w2: Any, w3: Any) -> Triple:
    """sympy's symbolic derivatives, evaluated with mpmath at 30 significant digits."""
    import mpmath

    xv, w1v, w2v, w3v = check_inputs(x, w1, w2, w3)
    numeric = symbolic().numeric
    totals = [mpmath.mpf(0)] * 3
    with mpmath.workdps(30):
        for xi in np.atleast_1d(xv):
            values = numeric(
                mpmath.mpf(float(xi)), mpmath.mpf(w1v), mpmath.mpf(w2v), mpmath.mpf(w3v)
            )
            totals = [t + v for t, v in zip(totals, values)]
        return tuple(float(t) for t in totals)  # type: ignore[return-value]


class Identity(NamedTuple):
    """A symbolic claim and whether sympy proves it (difference simplifies to 0)."""

    claim: str
    holds: bool


def sympy_identities() -> list[Identity]:
    """The write-up's derivative claims checked symbolically by sympy.

    σ' = σ(1 − σ), eq. 20 = eq. 21, and (d), eq. 22 and eq. 24 equal sympy's own
    derivatives of f. Also checks the two readings of eq. 23 that are wrong (see
    :func:`emnet.deepnet.errata`).
    """
    import sympy as sp

    s = symbolic()
    x, w1, w2, w3 = s.symbols
    u, sigma = s.u, s.sigma
    h1, h2 = sigma(w1 * x), sigma(w2 * sigma(w1 * x))
    eq20 = (1 + sp.exp(-u)) ** -2 * sp.exp(-u)
    eq21 = sigma(u) * (1 - sigma(u))
    d, eq22 = h2, w3 * h2 * (1 - h2) * h1
    eq24 = w3 * w2 * h2 * (1 - h2) * h1 * (1 - h1) * x
    df1, df2, df3 = s.derivatives

    def zero(expr: Any) -> bool:
        return sp.simplify(expr) == 0

    return [
        Identity("σ'(u) = σ(u)(1 − σ(u))", zero(sp.diff(sigma(u), u) - eq21)),
        Identity("eq. 20: σ'(u) = e^(−u) / (1 + e^(−u))²", zero(sp.diff(sigma(u), u) - eq20)),
        Identity("eq. 20 = eq. 21", zero(eq20 - eq21)),
        Identity("(d): ∂f/∂w3 = σ(w2 σ(w1 x))", zero(df3 - d)),
        Identity("eq. 22: ∂f/∂w2 = w3 h2(1 − h2) h1", zero(df2 - eq22)),
        Identity("eq. 24: ∂f/∂w1 = w3 w2 h2(1 − h2) h1(1 − h1) x", zero(df1 - eq24)),
    ]


def errata() -> list[Erratum]:
    """The write-up's mistakes in §2(b)–(f), each backed by a sympy computation."""
    import sympy as sp

    s = symbolic()
    x, w1, w2, w3 = s.symbols
    sigma = s.sigma
    h1, h2 = sigma(w1 * x), sigma(w2 * sigma(w1 * x))
    df1 = s.derivatives[0]
    y1 = sp.Symbol("y1")
    df_dy1 = sp.diff(w3 * y1, y1)  # f = w3·y1, so ∂f/∂y1 = w3
    middle = w3 * df_dy1 * sp.diff(h2, w1)  # eq. 23 as written: w3 · ∂f/∂y1 · ∂y1/∂y2 · ∂y2/∂w1
    right = w3 * h2 * (1 - h2) * h1 * (1 - h1) * x  # eq. 23's right-hand side (no w2)
    return [
        Erratum(
            where="eq. 23 (middle)",
            writeup="∂f/∂w1 = w3 · ∂f/∂y1 · ∂y1/∂y2 · ∂y2/∂w1",
            correct="∂f/∂w1 = ∂f/∂y1 · ∂y1/∂y2 · ∂y2/∂w1 (∂f/∂y1 = w3 already; the extra w3 is "
            "stray)",
            evidence=f"sympy: (written) / (true ∂f/∂w1) = {sp.simplify(middle / df1)}",
        ),
        Erratum(
            where="eq. 23 (right-hand side)",
            writeup="= w3 · σ2(1 − σ2) · ∂σ1/∂y2 · ∂y2/∂w1",
            correct="∂y1/∂y2 = σ2'(b) · w2 · σ1'(y2): the factor w2 is missing (eq. 24 has it)",
            evidence=f"sympy: (written) / (true ∂f/∂w1) = {sp.simplify(right / df1)}",
        ),
    ]


# ---------------------------------------------------------------------------- all at once

_BY_METHOD: dict[str, Callable[..., Triple]] = {
    "closed form": by_closed_form,
    "backprop (emnet.autodiff)": by_backprop,
    "finite differences": by_finite_differences,
    "torch.autograd": by_torch,
    "sympy": by_sympy,
}


def gradients_by_method(x: Any, w1: Any, w2: Any, w3: Any) -> dict[str, Triple]:
    """(∂f/∂w₁, ∂f/∂w₂, ∂f/∂w₃) by each of :data:`METHODS` (keys in that order)."""
    check_inputs(x, w1, w2, w3)
    return {name: _BY_METHOD[name](x, w1, w2, w3) for name in METHODS}
