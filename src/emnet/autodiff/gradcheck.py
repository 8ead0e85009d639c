"""Check an engine gradient against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from emnet.autodiff.tensor import Tensor, no_grad

__all__ = ["GradcheckError", "gradcheck", "numerical_jacobian"]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with central finite differences."""


def _output(fn: Callable[..., Any], inputs: tuple[Any, ...]) -> Tensor:
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"fn: expected it to return a Tensor, got {type(out).__name__}")
    return out


def numerical_jacobian(
    fn: Callable[..., Tensor], inputs: tuple[Any, ...], index: int, eps: float = 1e-6
) -> np.ndarray:
    """∂fn/∂inputs[index] by central differences: shape (output size, input size)."""
    flat = inputs[index].data.flat  # perturbs the input in place, contiguous or not
    with no_grad():
        size = _output(fn, inputs).data.size
        jacobian = np.empty((size, inputs[index].data.size))
        for k in range(inputs[index].data.size):
            saved = float(flat[k])
            flat[k] = saved + eps
            plus = _output(fn, inputs).data.reshape(-1)
            flat[k] = saved - eps
            minus = _output(fn, inputs).data.reshape(-1)
            flat[k] = saved
            jacobian[:, k] = (plus - minus) / (2 * eps)
    return jacobian


def analytic_jacobian(fn: Callable[..., Tensor], inputs: tuple[Any, ...], index: int) -> np.ndarray:
    """∂fn/∂inputs[index] by the engine: one backward pass per output element."""
    x = inputs[index]
    out = _output(fn, inputs)
    jacobian = np.zeros((out.data.size, x.data.size))
    if not out.requires_grad:
        return jacobian
    for row in range(out.data.size):
        seed = np.zeros(out.data.size)
        seed[row] = 1.0
        for t in inputs:
            if isinstance(t, Tensor):
                t.zero_grad()
        out.backward(seed.reshape(out.shape))
        if x.grad is not None:
            jacobian[row] = x.grad.reshape(-1)
    return jacobian


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """True when the engine's Jacobian of ``fn(*inputs)`` matches central differences.

    Every input that is a float64 Tensor with ``requires_grad=True`` is checked over the
    full Jacobian (all output elements × all input elements); other inputs are held fixed.
    A mismatch raises :class:`GradcheckError` naming the input and the worst element
    (or returns False with ``raise_exception=False``). The inputs' ``.grad`` are reset.
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    if not eps > 0:
        raise ValueError(f"eps: expected a positive step, got {eps!r}")
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("inputs: expected at least one Tensor with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"inputs[{i}]: gradcheck needs float64 tensors, got {inputs[i].dtype}")
    try:
        for i in checked:
            analytic = analytic_jacobian(fn, inputs, i)
            numeric = numerical_jacobian(fn, inputs, i, eps)
            if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
                error = np.abs(analytic - numeric) - rtol * np.abs(numeric)
                row, col = np.unravel_index(np.argmax(error), error.shape)
                name = inputs[i].name or f"inputs[{i}]"
                if not raise_exception:
                    return False
                raise GradcheckError(
                    f"gradcheck: gradient of output element {row} with respect to {name} "
                    f"element {col}: analytic {analytic[row, col]:.10g} != numerical "
                    f"{numeric[row, col]:.10g} (atol={atol}, rtol={rtol})"
                )
    finally:
        for t in inputs:
            if isinstance(t, Tensor):
                t.zero_grad()
    return True
