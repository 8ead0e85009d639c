"""The reverse-mode engine: a numpy-backed :class:`Tensor` that records how it was made.

Every op is one method below. It computes its forward value with numpy and defines a
closure ``backward(g)`` with its *local* chain rule: given ``g`` = ∂L/∂out it returns
∂L/∂input for each input (``None`` for an input that needs no gradient). The closure
may return a gradient in the broadcast shape of the output; :meth:`Tensor.backward`
sums it back down to the input's shape (:func:`unbroadcast`), so broadcasting is
handled in exactly one place.

:meth:`Tensor.backward` is a topological sort of the graph followed by one loop over
it in reverse: each node's adjoint is complete before its closure runs. Every node that
requires grad adds its adjoint to ``.grad``, so gradients accumulate over backward
calls until :meth:`Tensor.zero_grad`.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Tensor", "is_grad_enabled", "no_grad", "unbroadcast", "where"]

Axis = int | Sequence[int] | None
Backward = Callable[[np.ndarray], Sequence[np.ndarray | None]]

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph (False inside :func:`no_grad`)."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager (and decorator): ops inside record no graph and need no grad."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def _as_float_array(data: Any, dtype: Any, what: str) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what}: expected numeric array-like data, got {type(data).__name__}"
        ) from exc
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{what}: expected real numbers (bool, int or float), got dtype {array.dtype} "
            f"from {type(data).__name__}"
        )
    target = np.dtype(np.float64 if dtype is None else dtype)
    if target.kind != "f":
        raise TypeError(f"dtype: expected a floating dtype, got {target}")
    return np.array(array, dtype=target, copy=True)


def _pair(value: int | Sequence[int], name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, numbers.Integral):
        pair: tuple[Any, ...] = (value, value)
    else:
        pair = tuple(value) if isinstance(value, Sequence | np.ndarray) else ()
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) for v in pair):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"{name}: expected values >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _expand_reduced(
    g: np.ndarray, shape: tuple[int, ...], axis: Axis, keepdims: bool
) -> np.ndarray:
    """Broadcast the gradient of a reduction over ``axis`` back to the input ``shape``."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, normalize_axis_tuple(axis, len(shape)))
    return np.broadcast_to(g, shape)


def _reduced_size(shape: tuple[int, ...], axis: Axis) -> int:
    axes = range(len(shape)) if axis is None else normalize_axis_tuple(axis, len(shape))
    return int(np.prod([shape[a] for a in axes]))


def _has_array_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray | list) and np.asarray(p).dtype.kind in "iu" for p in parts)


def _plain_index(index: Any) -> Any:
    """Replace Tensor indices by their (integer) numpy data and lists by arrays."""

    def plain(part: Any) -> Any:
        if isinstance(part, Tensor):
            part = part.data
            if not np.all(part == np.round(part)):
                raise TypeError("index: a Tensor used as an index must hold whole numbers")
            return part.astype(np.intp)
        if isinstance(part, list):
            return np.asarray(part)
        return part

    return tuple(plain(p) for p in index) if isinstance(index, tuple) else plain(index)


class Tensor:
    """An n-d float array that remembers the op that made it, for reverse-mode autodiff.

    ``data`` is any real array-like (stored as float64 unless ``dtype`` says otherwise);
    ``requires_grad`` marks a leaf whose gradient you want; ``name`` labels the node in
    :func:`~emnet.autodiff.to_dot` pictures. ``op`` is the name of the op that made the
    tensor ("" for a leaf) and ``parents`` its inputs.
    """

    __array_ufunc__ = None  # make numpy defer to our reflected operators (np.ndarray * Tensor)

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        name: str | None = None,
        *,
        dtype: Any = None,
    ) -> None:
        if not isinstance(requires_grad, bool | np.bool_):
            raise TypeError(f"requires_grad: expected a bool, got {type(requires_grad).__name__}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a str or None, got {type(name).__name__}")
        self.data: np.ndarray = _as_float_array(data, dtype, "Tensor")
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.grad: np.ndarray | None = None
        self.op = ""
        self.parents: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None

    # ----------------------------------------------------------------- plumbing
    @classmethod
    def _make(
        cls, op: str, data: np.ndarray, parents: tuple[Tensor, ...], backward: Backward
    ) -> Tensor:
        """The output of ``op``: records its parents and chain rule while grad is enabled."""
        out = cls.__new__(cls)
        out.data = data
        out.name = None
        out.grad = None
        out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
        out.op = op if _grad_enabled else ""
        out.parents = parents if _grad_enabled else ()
        out._backward = backward if out.requires_grad else None
        return out

    def _lift(self, other: Any) -> Tensor:
        """Wrap a constant operand as a Tensor of this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        return Tensor(other, dtype=self.data.dtype)

    def _check_broadcast(self, other: Tensor, op: str) -> None:
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise ValueError(
                f"{op}: shapes {self.shape} and {other.shape} cannot be broadcast together"
            ) from None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        op = f", op={self.op!r}" if self.op else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4)}{grad}{op}{label})"

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item: expected a one-element tensor, got shape {self.shape}")
        return float(self.data.reshape(()))

    def numpy(self) -> np.ndarray:
        return self.data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self.data, dtype=dtype, copy=True if copy is None else copy)

    def __float__(self) -> float:
        return self.item()

    # Comparisons give plain boolean arrays (no graph): conditions for where(), masks.
    # == and != keep Python's identity semantics so tensors stay usable as dict keys.
    def __lt__(self, other: Any) -> np.ndarray:
        return self.data < self._lift(other).data

    def __le__(self, other: Any) -> np.ndarray:
        return self.data <= self._lift(other).data

    def __gt__(self, other: Any) -> np.ndarray:
        return self.data > self._lift(other).data

    def __ge__(self, other: Any) -> np.ndarray:
        return self.data >= self._lift(other).data

    def detach(self) -> Tensor:
        """The same data as a new leaf that is cut off from the graph."""
        return Tensor(self.data, dtype=self.data.dtype)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    # ----------------------------------------------------------------- backward
    def _topological_order(self) -> list[Tensor]:
        """Nodes that require grad, every node after all of its parents (iterative DFS)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for parent in node.parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
        return order

    def backward(self, grad: Any = None) -> None:
        """Accumulate ∂self/∂node into ``node.grad`` for every node that requires grad.

        ``grad`` (the adjoint of ``self``) may be left out only for a one-element tensor.
        """
        if not self.requires_grad:
            raise ValueError(
                "backward: this tensor does not require grad (no input had requires_grad=True,"
                " or it was computed under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: grad can be left out only for a one-element output, got shape "
                    f"{self.shape}; pass grad= with that shape"
                )
            seed = np.ones_like(self.data)
        else:
            seed = _as_float_array(grad, self.data.dtype, "backward: grad")
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {seed.shape}, expected the output's shape {self.shape}"
                )
        adjoints: dict[int, np.ndarray] = {id(self): seed}
        for node in reversed(self._topological_order()):
            g = adjoints.pop(id(node), None)
            if g is None:
                continue
            node.grad = np.array(g, copy=True) if node.grad is None else node.grad + g
            if node._backward is None:
                continue
            for parent, parent_grad in zip(node.parents, node._backward(g)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                parent_grad = unbroadcast(np.asarray(parent_grad), parent.shape)
                key = id(parent)
                adjoints[key] = parent_grad if key not in adjoints else adjoints[key] + parent_grad

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other: Any) -> Tensor:
        other = self._lift(other)
        self._check_broadcast(other, "add")

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return g, g

        return Tensor._make("add", self.data + other.data, (self, other), backward)

    def __sub__(self, other: Any) -> Tensor:
        other = self._lift(other)
        self._check_broadcast(other, "sub")

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return g, -g

        return Tensor._make("sub", self.data - other.data, (self, other), backward)

    def __mul__(self, other: Any) -> Tensor:
        other = self._lift(other)
        self._check_broadcast(other, "mul")
        a, b = self.data, other.data

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return g * b, g * a

        return Tensor._make("mul", a * b, (self, other), backward)

    def __truediv__(self, other: Any) -> Tensor:
        other = self._lift(other)
        self._check_broadcast(other, "div")
        a, b = self.data, other.data

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            return g / b, (-g * a / (b * b) if other.requires_grad else None)

        return Tensor._make("div", a / b, (self, other), backward)

    def __pow__(self, exponent: Any) -> Tensor:
        exponent = self._lift(exponent)
        self._check_broadcast(exponent, "pow")
        a, b = self.data, exponent.data
        out = a**b

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            grad_a = grad_b = None
            if self.requires_grad:  # x ** 0 is constant in x, even at x = 0 (torch's convention)
                with np.errstate(divide="ignore", invalid="ignore"):
                    grad_a = np.where(b == 0, 0.0, g * b * a ** (b - 1))
            if exponent.requires_grad:
                with np.errstate(divide="ignore", invalid="ignore"):
                    grad_b = g * out * np.log(a)
                # 0 ** b with b >= 0 is constant in b (torch's convention)
                grad_b = np.where((a == 0) & (b >= 0), 0.0, grad_b)
            return grad_a, grad_b

        return Tensor._make("pow", out, (self, exponent), backward)

    def __neg__(self) -> Tensor:
        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (-g,)

        return Tensor._make("neg", -self.data, (self,), backward)

    def __radd__(self, other: Any) -> Tensor:
        return self._lift(other) + self

    def __rsub__(self, other: Any) -> Tensor:
        return self._lift(other) - self

    def __rmul__(self, other: Any) -> Tensor:
        return self._lift(other) * self

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._lift(other) / self

    def __rpow__(self, other: Any) -> Tensor:
        return self._lift(other) ** self

    def __matmul__(self, other: Any) -> Tensor:
        other = self._lift(other)
        a, b = self.data, other.data
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}"
            )
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                f"{a.shape[-1]} (last dim of the left) != {inner_b} (rows of the right)"
            )
        try:
            out = a @ b
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be broadcast"
            ) from None
        # Treat vectors as matrices (a row on the left, a column on the right) so the
        # backward pass is always the matrix rule; unbroadcast sums the batch axes.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            g2 = g[..., None] if b.ndim == 1 else g
            g2 = g2[..., None, :] if a.ndim == 1 else g2
            grad_a = grad_b = None
            if self.requires_grad:
                grad_a = g2 @ np.swapaxes(b2, -1, -2)
                grad_a = grad_a[..., 0, :] if a.ndim == 1 else grad_a
            if other.requires_grad:
                grad_b = np.swapaxes(a2, -1, -2) @ g2
                grad_b = grad_b[..., 0] if b.ndim == 1 else grad_b
            return grad_a, grad_b

        return Tensor._make("matmul", out, (self, other), backward)

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._lift(other) @ self

    # ----------------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        out = np.exp(self.data)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * out,)

        return Tensor._make("exp", out, (self,), backward)

    def log(self) -> Tensor:
        x = self.data

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g / x,)

        return Tensor._make("log", np.log(x), (self,), backward)

    def sigmoid(self) -> Tensor:
        e = np.exp(-np.abs(self.data))  # never overflows
        out = np.where(self.data >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * out * (1.0 - out),)

        return Tensor._make("sigmoid", out, (self,), backward)

    def tanh(self) -> Tensor:
        out = np.tanh(self.data)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * (1.0 - out * out),)

        return Tensor._make("tanh", out, (self,), backward)

    def relu(self) -> Tensor:
        positive = self.data > 0

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * positive,)

        return Tensor._make("relu", np.where(positive, self.data, 0.0), (self,), backward)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise max; at ties the gradient is split equally (as in torch)."""
        other = self._lift(other)
        self._check_broadcast(other, "maximum")
        a, b = self.data, other.data

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            share = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))
            return g * share, g * (1.0 - share)

        return Tensor._make("maximum", np.maximum(a, b), (self, other), backward)

    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition`` holds, else ``other`` (numpy's ``where(c, self, other)``)."""
        other = self._lift(other)
        cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition)
        if cond.dtype != np.bool_:
            raise TypeError(f"where: condition must be a boolean array, got dtype {cond.dtype}")
        try:
            out = np.where(cond, self.data, other.data)
        except ValueError:
            raise ValueError(
                f"where: condition {cond.shape}, x {self.shape} and y {other.shape} "
                "cannot be broadcast together"
            ) from None

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return np.where(cond, g, 0.0), np.where(cond, 0.0, g)

        return Tensor._make("where", out, (self, other), backward)

    # ----------------------------------------------------------------- reductions
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        shape = self.shape
        out = np.sum(self.data, axis=_axis_arg(axis, self.ndim, "sum"), keepdims=keepdims)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (_expand_reduced(g, shape, axis, keepdims),)

        return Tensor._make("sum", np.asarray(out), (self,), backward)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        shape = self.shape
        out = np.mean(self.data, axis=_axis_arg(axis, self.ndim, "mean"), keepdims=keepdims)
        count = _reduced_size(shape, axis)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (_expand_reduced(g, shape, axis, keepdims) / count,)

        return Tensor._make("mean", np.asarray(out), (self,), backward)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; tied maxima share the gradient equally (as torch's amax)."""
        shape = self.shape
        out = np.max(self.data, axis=_axis_arg(axis, self.ndim, "max"), keepdims=keepdims)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            winners = self.data == _expand_reduced(out, shape, axis, keepdims)
            count = _expand_reduced(
                np.sum(winners, axis=axis, keepdims=keepdims), shape, axis, keepdims
            )
            return (_expand_reduced(g, shape, axis, keepdims) * winners / count,)

        return Tensor._make("max", np.asarray(out), (self,), backward)

    # ----------------------------------------------------------------- shapes
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        new_shape = (
            tuple(shape[0])
            if len(shape) == 1 and not isinstance(shape[0], numbers.Integral)
            else shape
        )
        old_shape = self.shape
        try:
            out = self.data.reshape(new_shape)
        except (ValueError, TypeError):
            raise ValueError(f"reshape: cannot reshape {old_shape} into {new_shape}") from None

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g.reshape(old_shape),)

        return Tensor._make("reshape", out, (self,), backward)

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        order = (
            tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], numbers.Integral) else axes
        )
        if not order:
            order = tuple(reversed(range(self.ndim)))
        try:
            normalized = normalize_axis_tuple(order, self.ndim)
        except (TypeError, ValueError):
            normalized = ()
        if sorted(normalized) != list(range(self.ndim)):
            raise ValueError(f"transpose: axes {order} are not a permutation of {self.ndim} axes")
        inverse = tuple(np.argsort(normalized))

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g.transpose(inverse),)

        return Tensor._make("transpose", self.data.transpose(order), (self,), backward)

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's name
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        index = _plain_index(index)
        shape = self.shape
        out = self.data[index]
        scatter_add = _has_array_index(index)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            full = np.zeros(shape, dtype=g.dtype)
            if scatter_add:  # repeated integer indices must add up, not overwrite
                np.add.at(full, index, g)
            else:
                full[index] += g
            return (full,)

        return Tensor._make("index", np.array(out, copy=True), (self,), backward)

    # ----------------------------------------------------------------- softmax family
    def softmax(self, axis: int = -1) -> Tensor:
        shifted = self.data - np.max(
            self.data, axis=_axis_arg(axis, self.ndim, "softmax"), keepdims=True
        )
        e = np.exp(shifted)
        out = e / e.sum(axis=axis, keepdims=True)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)

        return Tensor._make("softmax", out, (self,), backward)

    def log_softmax(self, axis: int = -1) -> Tensor:
        shifted = self.data - np.max(
            self.data, axis=_axis_arg(axis, self.ndim, "log_softmax"), keepdims=True
        )
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)

        return Tensor._make("log_softmax", out, (self,), backward)

    def cross_entropy(self, targets: Any, reduction: str = "mean") -> Tensor:
        """Cross-entropy of logits ``self`` (n, classes) against integer class ``targets`` (n,).

        ``reduction``: "mean" (default, as torch), "sum" or "none".
        """
        if self.ndim != 2:
            raise ValueError(
                f"cross_entropy: expected logits of shape (n, classes), got {self.shape}"
            )
        labels = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        if labels.shape != (self.shape[0],):
            raise ValueError(
                f"cross_entropy: targets must have shape ({self.shape[0]},) for logits {self.shape},"
                f" got {labels.shape}"
            )
        if labels.size and (
            not np.all(labels == np.round(labels))
            or labels.min() < 0
            or labels.max() >= self.shape[1]
        ):
            raise ValueError(
                f"cross_entropy: targets must be integers in [0, {self.shape[1]}), "
                f"got values in [{labels.min()}, {labels.max()}]"
            )
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
        picked = -self.log_softmax(axis=1)[np.arange(self.shape[0]), labels.astype(np.intp)]
        if reduction == "mean":
            return picked.mean()
        return picked.sum() if reduction == "sum" else picked

    # ----------------------------------------------------------------- convolution
    def conv2d(
        self,
        weight: Tensor,
        bias: Tensor | None = None,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
    ) -> Tensor:
        """2-D cross-correlation of ``self`` (N, C, H, W) with ``weight`` (F, C, kh, kw).

        im2col by stride tricks: the (N, C, Ho, Wo, kh, kw) window view of the padded input
        is contracted with the filters in one tensordot; the input's gradient adds each
        kernel offset's slice back (col2im), one offset at a time.
        """
        weight = self._lift(weight)
        if self.ndim != 4:
            raise ValueError(f"conv2d: input must have shape (N, C, H, W), got {self.shape}")
        if weight.ndim != 4:
            raise ValueError(f"conv2d: weight must have shape (F, C, kh, kw), got {weight.shape}")
        if weight.shape[1] != self.shape[1]:
            raise ValueError(
                f"conv2d: input has {self.shape[1]} channels (shape {self.shape}) but weight "
                f"expects {weight.shape[1]} (shape {weight.shape})"
            )
        sh, sw = _pair(stride, "stride", 1)
        ph, pw = _pair(padding, "padding", 0)
        n, c, h, w = self.shape
        f, _, kh, kw = weight.shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(
                f"conv2d: kernel {kh}x{kw} does not fit input {h}x{w} with padding {(ph, pw)}"
            )
        x_padded = np.pad(self.data, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = sliding_window_view(x_padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][
            :, :, :ho, :wo
        ]
        out = np.tensordot(windows, weight.data, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        filters = weight.data

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            grad_x = grad_w = None
            if weight.requires_grad:
                grad_w = np.tensordot(g, windows, axes=([0, 2, 3], [0, 2, 3]))
            if self.requires_grad:
                cols = np.tensordot(g, filters, axes=([1], [0]))  # (N, Ho, Wo, C, kh, kw)
                grad_padded = np.zeros(x_padded.shape, dtype=g.dtype)
                for i in range(kh):
                    for j in range(kw):
                        grad_padded[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += cols[
                            ..., i, j
                        ].transpose(0, 3, 1, 2)
                grad_x = grad_padded[:, :, ph : ph + h, pw : pw + w]
            return grad_x, grad_w

        result = Tensor._make("conv2d", np.ascontiguousarray(out), (self, weight), backward)
        if bias is None:
            return result
        bias = self._lift(bias)
        if bias.shape != (f,):
            raise ValueError(f"conv2d: bias must have shape ({f},), got {bias.shape}")
        return result + bias.reshape(1, f, 1, 1)

    def max_pool2d(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
    ) -> Tensor:
        """Max over kh×kw windows of ``self`` (N, C, H, W); stride defaults to the kernel.

        The gradient goes to the first maximum of each window (as in torch); padding pads
        with -inf, so a padded cell is never the maximum.
        """
        if self.ndim != 4:
            raise ValueError(f"max_pool2d: input must have shape (N, C, H, W), got {self.shape}")
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        sh, sw = _pair(kernel_size if stride is None else stride, "stride", 1)
        ph, pw = _pair(padding, "padding", 0)
        if ph > kh // 2 or pw > kw // 2:
            raise ValueError(
                f"padding: expected at most half the kernel {(kh, kw)}, got {(ph, pw)}"
            )
        n, c, h, w = self.shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"max_pool2d: kernel {kh}x{kw} does not fit input {h}x{w}")
        x_padded = np.pad(self.data, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        windows = sliding_window_view(x_padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][
            :, :, :ho, :wo
        ]
        windows = windows.reshape(n, c, ho, wo, kh * kw)
        winner = np.argmax(windows, axis=-1)
        out = np.take_along_axis(windows, winner[..., None], axis=-1)[..., 0]

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            grad_padded = np.zeros(x_padded.shape, dtype=g.dtype)
            for k in range(kh * kw):
                i, j = divmod(k, kw)
                grad_padded[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += g * (winner == k)
            return (grad_padded[:, :, ph : ph + h, pw : pw + w],)

        return Tensor._make("max_pool2d", out, (self,), backward)


def _axis_arg(axis: Axis, ndim: int, op: str) -> Axis:
    """Validate a numpy-style ``axis`` for ``op`` (int, tuple of ints or None)."""
    if axis is None:
        return None
    try:
        return normalize_axis_tuple(axis, ndim)
    except (TypeError, np.exceptions.AxisError) as exc:
        raise ValueError(f"{op}: invalid axis {axis!r} for a {ndim}-d tensor ({exc})") from None


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """``x`` where ``condition`` holds, else ``y``; gradients flow to both branches."""
    if not isinstance(x, Tensor):
        x = Tensor(x, dtype=y.dtype if isinstance(y, Tensor) else None)
    return x.where(condition, y)
