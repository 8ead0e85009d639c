"""The write-up's deep net f(x) = w₃·σ(w₂·σ(w₁·x)): forward pass, closed-form backward pass,
σ-evaluation counting, and the three gradients cross-checked by five methods (SPEC §2).

>>> from emnet.deepnet import forward, backward
>>> [round(g, 6) for g in backward(forward(1.5, 0.3, -1.2, 2.0))]
[-0.187647, 0.267742, 0.324588]
"""

from emnet.deepnet.methods import (
    METHODS,
    Erratum,
    Identity,
    by_backprop,
    by_closed_form,
    by_finite_differences,
    by_sympy,
    by_torch,
    errata,
    gradients_by_method,
    graph,
    symbolic,
    sympy_identities,
)
from emnet.deepnet.network import (
    Adjoint,
    Cache,
    Gradients,
    SigmoidCounts,
    adjoints,
    backward,
    check_inputs,
    count_sigmoid,
    forward,
    gradients_from_scratch,
    reset_sigmoid_calls,
    sigmoid,
    sigmoid_calls,
    sigmoid_counts,
)

__all__ = [
    "METHODS",
    "Adjoint",
    "Cache",
    "Erratum",
    "Gradients",
    "Identity",
    "SigmoidCounts",
    "adjoints",
    "backward",
    "by_backprop",
    "by_closed_form",
    "by_finite_differences",
    "by_sympy",
    "by_torch",
    "check_inputs",
    "count_sigmoid",
    "errata",
    "forward",
    "gradients_by_method",
    "gradients_from_scratch",
    "graph",
    "reset_sigmoid_calls",
    "sigmoid",
    "sigmoid_calls",
    "sigmoid_counts",
    "symbolic",
    "sympy_identities",
]
