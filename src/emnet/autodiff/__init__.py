"""A small reverse-mode automatic differentiation engine on numpy (SPEC §2).

>>> from emnet.autodiff import Tensor
>>> w = Tensor(0.5, requires_grad=True, name="w")
>>> f = (w * 3.0).sigmoid()
>>> f.backward()
>>> print(f"f = {f.item():.6f}, df/dw = {float(w.grad):.6f}")  # 3 σ(1.5) (1 − σ(1.5))
f = 0.817574, df/dw = 0.447439

Each op on :class:`Tensor` holds its forward computation and its local chain rule side
by side (see :mod:`emnet.autodiff.tensor`); :func:`gradcheck` compares gradients with
central differences; :func:`to_dot` and :func:`render` draw the computation graph.
``backward(create_graph=True)`` and :func:`gradients` record the backward pass as Tensor
ops, so :func:`grad`, :func:`hvp` and :func:`hessian` give higher-order derivatives.
:mod:`emnet.autodiff.nn` has modules and losses, :mod:`emnet.autodiff.optim` SGD and
Adam/AdamW. The engine imports numpy only.
"""

from emnet.autodiff import nn, optim
from emnet.autodiff.functional import grad, hessian, hvp
from emnet.autodiff.gradcheck import GradcheckError, gradcheck, numerical_jacobian
from emnet.autodiff.graph import graph_nodes, render, to_dot
from emnet.autodiff.tensor import (
    Tensor,
    gradients,
    is_grad_enabled,
    no_grad,
    unbroadcast,
    where,
)

__all__ = [
    "GradcheckError",
    "Tensor",
    "grad",
    "gradcheck",
    "gradients",
    "graph_nodes",
    "hessian",
    "hvp",
    "is_grad_enabled",
    "nn",
    "no_grad",
    "numerical_jacobian",
    "optim",
    "render",
    "to_dot",
    "unbroadcast",
    "where",
]
