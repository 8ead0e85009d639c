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
The engine imports numpy only.
"""

from emnet.autodiff.gradcheck import GradcheckError, gradcheck, numerical_jacobian
from emnet.autodiff.graph import graph_nodes, render, to_dot
from emnet.autodiff.tensor import Tensor, is_grad_enabled, no_grad, unbroadcast, where

__all__ = [
    "GradcheckError",
    "Tensor",
    "gradcheck",
    "graph_nodes",
    "is_grad_enabled",
    "no_grad",
    "numerical_jacobian",
    "render",
    "to_dot",
    "unbroadcast",
    "where",
]
