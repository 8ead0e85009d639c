"""The reverse-mode engine: a numpy-backed :class:`Tensor` that records how it was made.

Every op is one method below. It computes its forward value with numpy and defines its
*local* chain rule twice, side by side:

* ``backward(g)`` on numpy arrays: given ``g`` = ∂L/∂out it returns ∂L/∂input for each
  input (``None`` for an input that needs no gradient). This is the fast, plain path.
* ``graph_backward(g, out)`` on Tensors: the same vector-Jacobian product written with
  Tensor ops, so that ``backward(create_graph=True)`` records the backward pass as a
  graph of its own and gradients of gradients (Hessian-vector products) work.

A closure may return a gradient in the broadcast shape of the output;
:meth:`Tensor.backward` sums it back down to the input's shape (:func:`unbroadcast`), so
broadcasting is handled in exactly one place.

:meth:`Tensor.backward` is a topological sort of the graph followed by one loop over
it in reverse: each node's adjoint is complete before its closure runs. Every node that
requires grad adds its adjoint to ``.grad``, so gradients accumulate over backward
calls until :meth:`Tensor.zero_grad`. With ``create_graph=True`` the adjoints, and so
``.grad``, are Tensors in the recorded graph (torch's convention); without it ``.grad``
is a numpy array.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Tensor", "gradients", "is_grad_enabled", "no_grad", "unbroadcast", "where"]

Axis = int | Sequence[int] | None
Backward = Callable[[np.ndarray], Sequence[np.ndarray | None]]
GraphBackward = Callable[["Tensor", "Tensor"], Sequence["Tensor | None"]]

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


@contextlib.contextmanager
def _enable_grad() -> Iterator[None]:
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
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


def _unbroadcast_t(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """:func:`unbroadcast` written with Tensor ops (for ``create_graph``)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad if grad.shape == shape else grad.reshape(shape)


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


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` (all when None) set to 1 (keepdims=True)."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


#: Below this many elements a reduction's gradient is materialised (one small copy is
#: cheaper than numpy's broadcast_to machinery); above it, a broadcast view is returned.
_SMALL = 65536


def _expand(g: np.ndarray, kept: tuple[int, ...], shape: tuple[int, ...], size: int) -> np.ndarray:
    """The gradient of a reduction, ``g`` (reduced shape), spread back over ``shape``."""
    g = np.reshape(g, kept)
    if size > _SMALL:
        return np.broadcast_to(g, shape)
    full = np.empty(shape, dtype=g.dtype)
    full[...] = g
    return full


def _reduced_size(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    if axes is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


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


def _broadcast_error(op: str, a: Tensor, b: Tensor) -> ValueError:
    return ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together")


def _swap_last(t: Tensor) -> Tensor:
    """``t`` with its last two axes swapped, as a Tensor op."""
    order = (*range(t.ndim - 2), t.ndim - 1, t.ndim - 2)
    return t.transpose(order)


def topological_order(output: Tensor, *, only_requires_grad: bool = False) -> list[Tensor]:
    """The graph's one walk: every node ``output`` depends on through ``parents``, each
    after all of its parents (iterative DFS, so deep graphs do not hit the recursion
    limit). ``only_requires_grad``: follow only parents that require grad (what a
    backward pass visits; then the last parent is explored first). Otherwise every node,
    first parent first (the order pictures and node tables list them in)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(output, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            if only_requires_grad:
                stack.extend(
                    (p, False) for p in node.parents if p.requires_grad and id(p) not in seen
                )
            else:
                stack.extend((p, False) for p in reversed(node.parents) if id(p) not in seen)
    return order


class Tensor:
    """An n-d float array that remembers the op that made it, for reverse-mode autodiff.

    ``data`` is any real array-like (stored as float64 unless ``dtype`` says otherwise);
    ``requires_grad`` marks a leaf whose gradient you want; ``name`` labels the node in
    :func:`~emnet.autodiff.to_dot` pictures. ``op`` is the name of the op that made the
    tensor ("" for a leaf) and ``parents`` its inputs. ``grad`` is None, a numpy array
    (after a plain :meth:`backward`) or a Tensor (after ``backward(create_graph=True)``).
    """

    __array_ufunc__ = None  # make numpy defer to our reflected operators (np.ndarray * Tensor)
    __slots__ = (
        "__weakref__",
        "_backward",
        "_graph_backward",
        "data",
        "grad",
        "name",
        "op",
        "parents",
        "requires_grad",
    )

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
        self._set_node(_as_float_array(data, dtype, "Tensor"), bool(requires_grad), name)

    def _set_node(
        self,
        data: np.ndarray,
        requires_grad: bool = False,
        name: str | None = None,
        op: str = "",
        parents: tuple[Tensor, ...] = (),
        backward: Backward | None = None,
        graph_backward: GraphBackward | None = None,
    ) -> None:
        """Every field of a node, set in this one place (leaves, op results, constants)."""
        self.data: np.ndarray = data
        self.requires_grad = requires_grad
        self.name = name
        self.grad: np.ndarray | Tensor | None = None
        self.op = op
        self.parents: tuple[Tensor, ...] = parents
        self._backward: Backward | None = backward
        self._graph_backward: GraphBackward | None = graph_backward

    # ----------------------------------------------------------------- plumbing
    @classmethod
    def _make(
        cls,
        op: str,
        data: np.ndarray,
        parents: tuple[Tensor, ...],
        backward: Backward,
        graph_backward: GraphBackward | None = None,
    ) -> Tensor:
        """The output of ``op``: records its parents and chain rule while grad is enabled.

        ``graph_backward`` (the chain rule in Tensor ops) is what ``create_graph`` needs; an
        op without it still works in plain backward passes."""
        out = cls.__new__(cls)
        if not _grad_enabled:
            out._set_node(data)
        elif any(parent.requires_grad for parent in parents):
            out._set_node(data, True, None, op, parents, backward, graph_backward)
        else:  # recorded for pictures (op, parents), but nothing to differentiate
            out._set_node(data, False, None, op, parents)
        return out

    @staticmethod
    def _constant(array: np.ndarray) -> Tensor:
        """A leaf that wraps ``array`` as is (no copy, no checks): internal constants."""
        out = Tensor.__new__(Tensor)
        out._set_node(array)
        return out

    def _lift(self, other: Any) -> Tensor:
        """Wrap a constant operand as a Tensor of this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, float | int) and not isinstance(other, bool):
            return Tensor._constant(np.array(other, dtype=self.data.dtype))
        return Tensor(other, dtype=self.data.dtype)

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
        """Nodes that require grad, every node after all of its parents."""
        return topological_order(self, only_requires_grad=True)

    def _seed(self, grad: Any, what: str) -> np.ndarray:
        if not self.requires_grad:
            raise ValueError(
                f"{what}: this tensor does not require grad (no input had requires_grad=True,"
                " or it was computed under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"{what}: grad can be left out only for a one-element output, got shape "
                    f"{self.shape}; pass grad= with that shape"
                )
            return np.ones_like(self.data)
        seed = _as_float_array(grad, self.data.dtype, f"{what}: grad")
        if seed.shape != self.shape:
            raise ValueError(
                f"{what}: grad has shape {seed.shape}, expected the output's shape {self.shape}"
            )
        return seed

    def backward(self, grad: Any = None, create_graph: bool = False) -> None:
        """Accumulate ∂self/∂node into ``node.grad`` for every node that requires grad.

        ``grad`` (the adjoint of ``self``) may be left out only for a one-element tensor.
        With ``create_graph=True`` the backward pass is itself recorded as Tensor ops and
        ``.grad`` becomes a Tensor in that graph, so it can be differentiated again.
        """
        if not isinstance(create_graph, bool):
            raise TypeError(f"create_graph: expected a bool, got {type(create_graph).__name__}")
        seed = self._seed(grad, "backward")
        order = self._topological_order()
        if create_graph:
            _backprop_graph(self, Tensor._constant(seed), order, None)
        else:
            _backprop(self, seed, order, None)

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other: Any) -> Tensor:
        other = self._lift(other)
        try:
            out = self.data + other.data
        except ValueError:
            raise _broadcast_error("add", self, other) from None

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return g, g

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
            return g, g

        return Tensor._make("add", out, (self, other), backward, graph_backward)

    def __sub__(self, other: Any) -> Tensor:
        other = self._lift(other)
        try:
            out = self.data - other.data
        except ValueError:
            raise _broadcast_error("sub", self, other) from None

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            return g, (-g if other.requires_grad else None)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor, Tensor | None]:
            return g, (-g if other.requires_grad else None)

        return Tensor._make("sub", out, (self, other), backward, graph_backward)

    def __mul__(self, other: Any) -> Tensor:
        other = self._lift(other)
        a, b = self.data, other.data
        try:
            out = a * b
        except ValueError:
            raise _broadcast_error("mul", self, other) from None

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            return (
                g * b if self.requires_grad else None,
                g * a if other.requires_grad else None,
            )

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor | None, Tensor | None]:
            return (
                g * other if self.requires_grad else None,
                g * self if other.requires_grad else None,
            )

        return Tensor._make("mul", out, (self, other), backward, graph_backward)

    def __truediv__(self, other: Any) -> Tensor:
        other = self._lift(other)
        a, b = self.data, other.data
        try:
            out = a / b
        except ValueError:
            raise _broadcast_error("div", self, other) from None

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            return (
                g / b if self.requires_grad else None,
                -g * a / (b * b) if other.requires_grad else None,
            )

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor | None, Tensor | None]:
            return (
                g / other if self.requires_grad else None,
                -g * self / (other * other) if other.requires_grad else None,
            )

        return Tensor._make("div", out, (self, other), backward, graph_backward)

    def __pow__(self, exponent: Any) -> Tensor:
        exponent = self._lift(exponent)
        a, b = self.data, exponent.data
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise _broadcast_error("pow", self, exponent) from None
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

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor | None, Tensor | None]:
            grad_a = grad_b = None
            with np.errstate(divide="ignore", invalid="ignore"):
                if self.requires_grad:
                    grad_a = g * exponent * self ** (exponent - 1.0)
                    if np.any(b == 0):
                        grad_a = where(b == 0, 0.0, grad_a)
                if exponent.requires_grad:
                    grad_b = g * out * self.log()
                    constant_in_b = (a == 0) & (b >= 0)
                    if np.any(constant_in_b):
                        grad_b = where(constant_in_b, 0.0, grad_b)
            return grad_a, grad_b

        return Tensor._make("pow", out, (self, exponent), backward, graph_backward)

    def __neg__(self) -> Tensor:
        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (-g,)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (-g,)

        return Tensor._make("neg", -self.data, (self,), backward, graph_backward)

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
        a_vec, b_vec = a.ndim == 1, b.ndim == 1

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            if not (a_vec or b_vec) and g.ndim == 2:  # the common matrix case
                return (
                    g @ b.T if self.requires_grad else None,
                    a.T @ g if other.requires_grad else None,
                )
            a2 = a[None, :] if a_vec else a
            b2 = b[:, None] if b_vec else b
            g2 = g[..., None] if b_vec else g
            g2 = g2[..., None, :] if a_vec else g2
            grad_a = grad_b = None
            if self.requires_grad:
                grad_a = g2 @ np.swapaxes(b2, -1, -2)
                grad_a = grad_a[..., 0, :] if a_vec else grad_a
            if other.requires_grad:
                grad_b = np.swapaxes(a2, -1, -2) @ g2
                grad_b = grad_b[..., 0] if b_vec else grad_b
            return grad_a, grad_b

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor | None, Tensor | None]:
            a2 = self.reshape(1, -1) if a_vec else self
            b2 = other.reshape(-1, 1) if b_vec else other
            g2 = g.reshape(*g.shape, 1) if b_vec else g
            g2 = g2.reshape(*g2.shape[:-1], 1, g2.shape[-1]) if a_vec else g2
            grad_a = grad_b = None
            if self.requires_grad:
                grad_a = g2 @ _swap_last(b2)
                if a_vec:
                    grad_a = grad_a.reshape(*grad_a.shape[:-2], grad_a.shape[-1])
            if other.requires_grad:
                grad_b = _swap_last(a2) @ g2
                if b_vec:
                    grad_b = grad_b.reshape(grad_b.shape[:-1])
            return grad_a, grad_b

        return Tensor._make("matmul", out, (self, other), backward, graph_backward)

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._lift(other) @ self

    def linear(self, weight: Any, bias: Any = None) -> Tensor:
        """``self @ weight.T + bias`` as one op (torch's ``F.linear``): input (..., in),
        weight (out, in), bias (out,) or None."""
        weight = self._lift(weight)
        x, w = self.data, weight.data
        if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
            raise ValueError(
                f"linear: expected input (..., {w.shape[-1] if w.ndim else '?'}) and weight "
                f"(out, in), got shapes {x.shape} and {w.shape}"
            )
        out = x @ w.T
        parents: tuple[Tensor, ...] = (self, weight)
        bias_t: Tensor | None = None
        if bias is not None:
            bias_t = self._lift(bias)
            if bias_t.shape != (w.shape[0],):
                raise ValueError(
                    f"linear: bias must have shape ({w.shape[0]},), got {bias_t.shape}"
                )
            out += bias_t.data
            parents = (self, weight, bias_t)

        def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
            g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
            grad_x = g @ w if self.requires_grad else None
            grad_w = None
            if weight.requires_grad:
                x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
                grad_w = g2.T @ x2
            if bias_t is None:
                return grad_x, grad_w
            return grad_x, grad_w, (g2.sum(axis=0) if bias_t.requires_grad else None)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor | None, ...]:
            g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
            grad_x = g @ weight if self.requires_grad else None
            grad_w = None
            if weight.requires_grad:
                x2 = self if self.ndim == 2 else self.reshape(-1, self.shape[-1])
                grad_w = g2.T @ x2
            if bias_t is None:
                return grad_x, grad_w
            return grad_x, grad_w, (g2.sum(axis=0) if bias_t.requires_grad else None)

        return Tensor._make("linear", out, parents, backward, graph_backward)

    # ----------------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        out = np.exp(self.data)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * out,)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g * out,)

        return Tensor._make("exp", out, (self,), backward, graph_backward)

    def log(self) -> Tensor:
        x = self.data

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g / x,)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g / self,)

        return Tensor._make("log", np.log(x), (self,), backward, graph_backward)

    def sigmoid(self) -> Tensor:
        e = np.exp(-np.abs(self.data))  # never overflows
        out = np.where(self.data >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * out * (1.0 - out),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g * out * (1.0 - out),)

        return Tensor._make("sigmoid", out, (self,), backward, graph_backward)

    def tanh(self) -> Tensor:
        out = np.tanh(self.data)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * (1.0 - out * out),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g * (1.0 - out * out),)

        return Tensor._make("tanh", out, (self,), backward, graph_backward)

    def relu(self) -> Tensor:
        positive = self.data > 0

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * positive,)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g * positive,)

        out = np.where(positive, self.data, 0.0)
        return Tensor._make("relu", out, (self,), backward, graph_backward)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise max; at ties the gradient is split equally (as in torch)."""
        other = self._lift(other)
        a, b = self.data, other.data
        try:
            out = np.maximum(a, b)
        except ValueError:
            raise _broadcast_error("maximum", self, other) from None

        def share() -> np.ndarray:
            return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))

        def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            s = share()
            return g * s, g * (1.0 - s)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
            s = share()
            return g * s, g * (1.0 - s)

        return Tensor._make("maximum", out, (self, other), backward, graph_backward)

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

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
            return g.where(cond, 0.0), where(cond, 0.0, g)

        return Tensor._make("where", out, (self, other), backward, graph_backward)

    # ----------------------------------------------------------------- reductions
    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        shape = self.shape
        axes = _axis_arg(axis, self.ndim, "sum")
        out = self.data.sum(axis=axes, keepdims=keepdims)
        kept = _kept_shape(shape, axes)
        size = self.data.size

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (_expand(g, kept, shape, size),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g.reshape(kept).broadcast_to(shape),)

        return Tensor._make("sum", np.asarray(out), (self,), backward, graph_backward)

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        shape = self.shape
        axes = _axis_arg(axis, self.ndim, "mean")
        out = self.data.mean(axis=axes, keepdims=keepdims)
        kept = _kept_shape(shape, axes)
        count = _reduced_size(shape, axes)
        size = self.data.size

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (_expand(g / count, kept, shape, size),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return ((g.reshape(kept) / float(count)).broadcast_to(shape),)

        return Tensor._make("mean", np.asarray(out), (self,), backward, graph_backward)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; tied maxima share the gradient equally (as torch's amax)."""
        shape = self.shape
        axes = _axis_arg(axis, self.ndim, "max")
        out = self.data.max(axis=axes, keepdims=keepdims)
        kept = _kept_shape(shape, axes)

        def share() -> np.ndarray:
            winners = self.data == np.reshape(out, kept)
            return winners / np.sum(winners, axis=axes, keepdims=True)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g.reshape(kept) * share(),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g.reshape(kept) * share(),)

        return Tensor._make("max", np.asarray(out), (self,), backward, graph_backward)

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

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g.reshape(old_shape),)

        return Tensor._make("reshape", out, (self,), backward, graph_backward)

    def flatten(self, start_axis: int = 1) -> Tensor:
        """Merge the axes from ``start_axis`` on into one (torch's ``flatten(start_dim)``)."""
        (start,) = normalize_axis_tuple(start_axis, max(self.ndim, 1))
        return self.reshape(*self.shape[:start], -1)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        """``self`` broadcast to ``shape`` (numpy's rules); the gradient sums back."""
        shape = tuple(int(n) for n in shape)
        old_shape = self.shape
        try:
            out = np.broadcast_to(self.data, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast {old_shape} to {shape}") from None

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (unbroadcast(g, old_shape),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (_unbroadcast_t(g, old_shape),)

        return Tensor._make("broadcast_to", out, (self,), backward, graph_backward)

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
        inverse = tuple(int(i) for i in np.argsort(normalized))

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g.transpose(inverse),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g.transpose(inverse),)

        return Tensor._make(
            "transpose", self.data.transpose(normalized), (self,), backward, graph_backward
        )

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's name
        return self.transpose()

    def __getitem__(self, index: Any) -> Tensor:
        index = _plain_index(index)
        shape = self.shape
        out = self.data[index]
        scatter_add = _has_array_index(index)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (_scatter_array(g, index, shape, scatter_add),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g._scatter(index, shape, scatter_add),)

        return Tensor._make("index", np.array(out, copy=True), (self,), backward, graph_backward)

    def _scatter(self, index: Any, shape: tuple[int, ...], scatter_add: bool) -> Tensor:
        """Zeros of ``shape`` with ``self`` added at ``index``: the adjoint of indexing."""

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (np.array(g[index], copy=True),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g[index],)

        out = _scatter_array(self.data, index, shape, scatter_add)
        return Tensor._make("scatter", out, (self,), backward, graph_backward)

    # ----------------------------------------------------------------- softmax family
    def softmax(self, axis: int = -1) -> Tensor:
        shifted = self.data - np.max(
            self.data, axis=_axis_arg(axis, self.ndim, "softmax"), keepdims=True
        )
        e = np.exp(shifted)
        out = e / e.sum(axis=axis, keepdims=True)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)

        return Tensor._make("softmax", out, (self,), backward, graph_backward)

    def log_softmax(self, axis: int = -1) -> Tensor:
        shifted = self.data - np.max(
            self.data, axis=_axis_arg(axis, self.ndim, "log_softmax"), keepdims=True
        )
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            return (g - out.exp() * g.sum(axis=axis, keepdims=True),)

        return Tensor._make("log_softmax", out, (self,), backward, graph_backward)

    def cross_entropy(self, targets: Any, reduction: str = "mean") -> Tensor:
        """Cross-entropy of logits ``self`` (n, classes) against integer class ``targets`` (n,).

        ``reduction``: "mean" (default, as torch), "sum" or "none". One op: its gradient
        is (softmax − one-hot) times the upstream gradient.
        """
        if self.ndim != 2:
            raise ValueError(
                f"cross_entropy: expected logits of shape (n, classes), got {self.shape}"
            )
        labels = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        n, classes = self.shape
        if labels.shape != (n,):
            raise ValueError(
                f"cross_entropy: targets must have shape ({n},) for logits {self.shape},"
                f" got {labels.shape}"
            )
        if labels.size and (
            (labels.dtype.kind not in "iu" and not np.all(labels == np.round(labels)))
            or labels.min() < 0
            or labels.max() >= classes
        ):
            raise ValueError(
                f"cross_entropy: targets must be integers in [0, {classes}), "
                f"got values in [{labels.min()}, {labels.max()}]"
            )
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
        rows, picks = np.arange(n), labels.astype(np.intp, copy=False)
        x = self.data
        shifted = x - x.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        losses = np.log(total[:, 0]) - shifted[rows, picks]
        if reduction == "mean":
            out = np.asarray(losses.mean() if n else np.nan)
        elif reduction == "sum":
            out = np.asarray(losses.sum())
        else:
            out = losses

        def scale(g: Any) -> Any:
            if reduction == "mean":
                return g / float(n)
            return g if reduction == "sum" else g.reshape(n, 1)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            grad = e / total
            grad[rows, picks] -= 1.0
            return (grad * scale(g),)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            one_hot = np.zeros(self.shape, dtype=self.dtype)
            one_hot[rows, picks] = 1.0
            return ((self.softmax(axis=1) - one_hot) * scale(g),)

        return Tensor._make("cross_entropy", out, (self,), backward, graph_backward)

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
        geometry = _ConvGeometry((sh, sw), (ph, pw))
        result = _conv_op(self, weight, geometry)
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
        x_padded = (
            np.pad(self.data, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
            if ph or pw
            else self.data
        )
        windows = sliding_window_view(x_padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][
            :, :, :ho, :wo
        ]
        windows = windows.reshape(n, c, ho, wo, kh * kw)
        winner = np.argmax(windows, axis=-1)
        out = np.take_along_axis(windows, winner[..., None], axis=-1)[..., 0]
        shape = self.shape

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            grad_padded = np.zeros(x_padded.shape, dtype=g.dtype)
            for k in range(kh * kw):
                i, j = divmod(k, kw)
                grad_padded[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += g * (winner == k)
            return (grad_padded[:, :, ph : ph + h, pw : pw + w],)

        def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor]:
            # the flat position in the (unpadded) input of each window's maximum
            di, dj = np.divmod(winner, kw)
            rows = np.arange(ho)[:, None] * sh + di - ph
            cols = np.arange(wo)[None, :] * sw + dj - pw
            planes = np.arange(n * c).reshape(n, c, 1, 1)
            flat = ((planes * h + rows) * w + cols).reshape(-1)
            scattered = g.reshape(-1)._scatter(flat, (n * c * h * w,), True)
            return (scattered.reshape(shape),)

        return Tensor._make("max_pool2d", out, (self,), backward, graph_backward)


def _scatter_array(
    g: np.ndarray, index: Any, shape: tuple[int, ...], scatter_add: bool
) -> np.ndarray:
    full = np.zeros(shape, dtype=g.dtype)
    if scatter_add:  # repeated integer indices must add up, not overwrite
        np.add.at(full, index, g)
    else:
        full[index] += g
    return full


# --------------------------------------------------------------------- convolution ops
class _ConvGeometry:
    """Stride and padding of one convolution (shared by its three bilinear ops)."""

    __slots__ = ("padding", "stride")

    def __init__(self, stride: tuple[int, int], padding: tuple[int, int]) -> None:
        self.stride, self.padding = stride, padding

    def windows(self, x: np.ndarray, kh: int, kw: int, ho: int, wo: int) -> np.ndarray:
        """The (N, C, Ho, Wo, kh, kw) window view of the zero-padded input."""
        (sh, sw), (ph, pw) = self.stride, self.padding
        padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        return sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :ho, :wo]

    def out_size(self, h: int, w: int, kh: int, kw: int) -> tuple[int, int]:
        (sh, sw), (ph, pw) = self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def forward(self, x: np.ndarray, weight: np.ndarray, windows: np.ndarray | None = None):
        ho, wo = self.out_size(*x.shape[2:], *weight.shape[2:])
        if windows is None:
            windows = self.windows(x, *weight.shape[2:], ho, wo)
        out = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out)

    def grad_input(self, g: np.ndarray, weight: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
        """∂⟨g, conv(x, weight)⟩/∂x: col2im of the filters weighted by ``g``."""
        (sh, sw), (ph, pw) = self.stride, self.padding
        n, c, h, w = x_shape
        kh, kw = weight.shape[2:]
        ho, wo = g.shape[2:]
        cols = np.tensordot(g, weight, axes=([1], [0]))  # (N, Ho, Wo, C, kh, kw)
        grad_padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                grad_padded[:, :, i : i + sh * ho : sh, j : j + sw * wo : sw] += cols[
                    ..., i, j
                ].transpose(0, 3, 1, 2)
        return grad_padded[:, :, ph : ph + h, pw : pw + w]

    def grad_weight(
        self,
        g: np.ndarray,
        x: np.ndarray,
        w_shape: tuple[int, ...],
        windows: np.ndarray | None = None,
    ) -> np.ndarray:
        """∂⟨g, conv(x, weight)⟩/∂weight: the windows of x contracted with ``g``."""
        if windows is None:
            windows = self.windows(x, *w_shape[2:], *g.shape[2:])
        return np.tensordot(g, windows, axes=([0, 2, 3], [0, 2, 3]))


def _conv_op(x: Tensor, weight: Tensor, geo: _ConvGeometry) -> Tensor:
    """conv(x, weight): bilinear, so its adjoints are the two ops below and itself."""
    kh, kw = weight.shape[2:]
    ho, wo = geo.out_size(*x.shape[2:], kh, kw)
    windows = geo.windows(x.data, kh, kw, ho, wo)
    out = geo.forward(x.data, weight.data, windows)
    filters, x_shape, w_shape = weight.data, x.shape, weight.shape

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            geo.grad_input(g, filters, x_shape) if x.requires_grad else None,
            geo.grad_weight(g, x.data, w_shape, windows) if weight.requires_grad else None,
        )

    def graph_backward(g: Tensor, out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return (
            _conv_grad_input_op(g, weight, x_shape, geo) if x.requires_grad else None,
            _conv_grad_weight_op(g, x, w_shape, geo) if weight.requires_grad else None,
        )

    return Tensor._make("conv2d", out, (x, weight), backward, graph_backward)


def _conv_grad_input_op(
    g: Tensor, weight: Tensor, x_shape: tuple[int, ...], geo: _ConvGeometry
) -> Tensor:
    """grad_input(g, weight) as a Tensor op. With upstream u (x's shape), its adjoints are
    conv(u, weight) for g and grad_weight(g, u) for the weight."""
    out = geo.grad_input(g.data, weight.data, x_shape)
    w_shape = weight.shape

    def backward(u: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            geo.forward(u, weight.data) if g.requires_grad else None,
            geo.grad_weight(g.data, u, w_shape) if weight.requires_grad else None,
        )

    def graph_backward(u: Tensor, out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return (
            _conv_op(u, weight, geo) if g.requires_grad else None,
            _conv_grad_weight_op(g, u, w_shape, geo) if weight.requires_grad else None,
        )

    return Tensor._make("conv2d_grad_input", out, (g, weight), backward, graph_backward)


def _conv_grad_weight_op(
    g: Tensor, x: Tensor, w_shape: tuple[int, ...], geo: _ConvGeometry
) -> Tensor:
    """grad_weight(g, x) as a Tensor op. With upstream u (the weight's shape), its adjoints
    are conv(x, u) for g and grad_input(g, u) for x."""
    out = geo.grad_weight(g.data, x.data, w_shape)
    x_shape = x.shape

    def backward(u: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            geo.forward(x.data, u) if g.requires_grad else None,
            geo.grad_input(g.data, u, x_shape) if x.requires_grad else None,
        )

    def graph_backward(u: Tensor, out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return (
            _conv_op(x, u, geo) if g.requires_grad else None,
            _conv_grad_input_op(g, u, x_shape, geo) if x.requires_grad else None,
        )

    return Tensor._make("conv2d_grad_weight", out, (g, x), backward, graph_backward)


# --------------------------------------------------------------------- the backward sweeps
def _needed(order: list[Tensor], targets: Sequence[Tensor]) -> set[int]:
    """Ids of the nodes of ``order`` that lie on a path from a target to the output."""
    needed = {id(t) for t in targets}
    for node in order:
        if id(node) not in needed and any(id(p) in needed for p in node.parents):
            needed.add(id(node))
    return needed


def _backprop(
    root: Tensor, seed: np.ndarray, order: list[Tensor], targets: Sequence[Tensor] | None
) -> dict[int, np.ndarray]:
    """The plain reverse sweep on numpy arrays.

    Without ``targets`` every node's adjoint is added to its ``.grad``; with them nothing
    is stored and the targets' adjoints are returned (by id).
    """
    adjoints: dict[int, np.ndarray] = {id(root): seed}
    found: dict[int, np.ndarray] = {}
    wanted = None if targets is None else {id(t) for t in targets}
    needed = None if targets is None else _needed(order, targets)
    for node in reversed(order):
        key = id(node)
        g = adjoints.pop(key, None)
        if g is None:
            continue
        if wanted is None:
            previous = node.grad
            if previous is None:
                node.grad = np.array(g, copy=True)
            else:
                node.grad = (previous.data if isinstance(previous, Tensor) else previous) + g
        elif key in wanted:
            found[key] = g
        backward = node._backward
        if backward is None:
            continue
        for parent, parent_grad in zip(node.parents, backward(g)):
            if parent_grad is None or not parent.requires_grad:
                continue
            pkey = id(parent)
            if needed is not None and pkey not in needed:
                continue
            if parent_grad.shape != parent.data.shape:
                parent_grad = unbroadcast(np.asarray(parent_grad), parent.data.shape)
            previous_adjoint = adjoints.get(pkey)
            adjoints[pkey] = (
                parent_grad if previous_adjoint is None else previous_adjoint + parent_grad
            )
    return found


def _backprop_graph(
    root: Tensor, seed: Tensor, order: list[Tensor], targets: Sequence[Tensor] | None
) -> dict[int, Tensor]:
    """The reverse sweep recorded as Tensor ops (``create_graph=True``), as :func:`_backprop`."""
    adjoints: dict[int, Tensor] = {id(root): seed}
    found: dict[int, Tensor] = {}
    wanted = None if targets is None else {id(t) for t in targets}
    needed = None if targets is None else _needed(order, targets)
    with _enable_grad():
        for node in reversed(order):
            key = id(node)
            g = adjoints.pop(key, None)
            if g is None:
                continue
            if wanted is None:
                previous = node.grad
                if previous is None:
                    node.grad = g
                elif isinstance(previous, Tensor):
                    node.grad = previous + g
                else:
                    node.grad = Tensor._constant(previous) + g
            elif key in wanted:
                found[key] = g
            if node._backward is None:
                continue
            graph_backward = node._graph_backward
            if graph_backward is None:
                raise NotImplementedError(
                    f"create_graph: op {node.op!r} has no chain rule in Tensor ops "
                    "(graph_backward), so its gradient cannot be differentiated again"
                )
            for parent, parent_grad in zip(node.parents, graph_backward(g, node)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                pkey = id(parent)
                if needed is not None and pkey not in needed:
                    continue
                if parent_grad.shape != parent.shape:
                    parent_grad = _unbroadcast_t(parent_grad, parent.shape)
                previous_adjoint = adjoints.get(pkey)
                adjoints[pkey] = (
                    parent_grad if previous_adjoint is None else previous_adjoint + parent_grad
                )
    return found


def gradients(
    output: Tensor,
    inputs: Sequence[Tensor],
    grad_output: Any = None,
    create_graph: bool = False,
) -> list[np.ndarray] | list[Tensor]:
    """∂output/∂input for each of ``inputs``, without touching any ``.grad`` (torch's
    ``torch.autograd.grad``).

    ``grad_output`` is the adjoint of ``output`` (left out only for one element). Inputs
    that ``output`` does not depend on get zeros. With ``create_graph=True`` the results
    are Tensors in a recorded graph (differentiable again); otherwise numpy arrays.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"output: expected a Tensor, got {type(output).__name__}")
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs[{i}]: expected a Tensor, got {type(t).__name__}")
        if not t.requires_grad:
            raise ValueError(f"inputs[{i}]: the tensor does not require grad")
    seed = output._seed(grad_output, "gradients")
    order = output._topological_order()
    if create_graph:
        found_t = _backprop_graph(output, Tensor._constant(seed), order, inputs)
        return [
            found_t.get(id(t), Tensor._constant(np.zeros(t.shape, dtype=t.dtype))) for t in inputs
        ]
    found = _backprop(output, seed, order, inputs)
    return [
        np.array(found[id(t)], copy=True) if id(t) in found else np.zeros(t.shape, dtype=t.dtype)
        for t in inputs
    ]


def _axis_arg(axis: Axis, ndim: int, op: str) -> tuple[int, ...] | None:
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
