"""Walk a layer stack: each layer's output shape, parameter count and multiply-accumulates."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import NamedTuple

from emnet._checks import Erratum
from emnet.shapes.formulas import conv_out, solve
from emnet.shapes.layers import Input, Layer, Shape, format_shape, parse

LENET_SPEC = "1x28x28 conv20k5 pool2 conv50k5 pool2 flatten fc500 fc10"
"""The course's LeNet on 28×28 MNIST (the write-up's 2(g)–(h), plus the usual classifier)."""


class LayerInfo(NamedTuple):
    """One row of a trace. ``name`` is the layer's token in the compact syntax."""

    name: str
    out_shape: Shape
    params: int
    macs: int
    in_shape: Shape
    description: str
    index: int  # 0 for the input row, then 1, 2, ... for the layers


def _check_shape(shape: object) -> Shape:
    """``shape`` as a tuple of positive ints of length 1 or 3, else a ValueError."""
    message = f"input_shape must be (C, H, W) or (F,) of positive integers, got {shape!r}"
    if isinstance(shape, str | bytes) or not isinstance(shape, Sequence):
        raise ValueError(message)
    dims: list[int] = []
    for s in shape:
        if isinstance(s, bool):
            raise ValueError(message)
        try:
            dims.append(operator.index(s))
        except TypeError:
            raise ValueError(message) from None
    if len(dims) not in (1, 3) or min(dims) < 1:
        raise ValueError(message)
    return tuple(dims)


def trace(input_shape: Sequence[int] | None, layers: Sequence[Layer] | str) -> list[LayerInfo]:
    """Shapes, parameters and MACs of ``layers`` applied to one input of ``input_shape``.

    ``layers`` is a list of :class:`~emnet.shapes.layers.Layer` (or a spec string, see
    :func:`~emnet.shapes.layers.parse`). ``input_shape`` is ``(C, H, W)`` or ``(F,)``; it may
    be None when the stack starts with an input token. The first row is the input itself.
    A layer that cannot apply (output smaller than 1, a flat input to a conv, ...) raises
    ValueError naming the layer by position and token.

    >>> [row.out_shape for row in trace(None, "1x28x28 conv20k5 pool2")]
    [(1, 28, 28), (20, 24, 24), (20, 12, 12)]
    """
    stack = parse(layers) if isinstance(layers, str) else list(layers)
    if stack and isinstance(stack[0], Input):
        head = stack.pop(0)
        assert isinstance(head, Input)
        if input_shape is not None and tuple(input_shape) != head.shape:
            raise ValueError(
                f"input_shape {tuple(input_shape)} disagrees with the stack's input "
                f"{format_shape(head.shape)}"
            )
        input_shape = head.shape
    if input_shape is None:
        raise ValueError("input_shape is missing: pass it, or start the spec with e.g. 1x28x28")
    shape = _check_shape(input_shape)
    rows = [LayerInfo("x".join(map(str, shape)), shape, 0, 0, shape, "Input", 0)]
    for i, layer in enumerate(stack, start=1):
        if not isinstance(layer, Layer) or isinstance(layer, Input):
            raise TypeError(f"layer {i} must be an emnet.shapes Layer, got {layer!r}")
        try:
            out = layer.output_shape(shape)
        except ValueError as exc:
            raise ValueError(f"layer {i} ({layer.spec}): {exc}") from None
        rows.append(
            LayerInfo(
                name=layer.spec,
                out_shape=out,
                params=layer.param_count(shape),
                macs=layer.mac_count(shape, out),
                in_shape=shape,
                description=layer.describe(shape),
                index=i,
            )
        )
        shape = out
    return rows


def total_params(rows: Sequence[LayerInfo]) -> int:
    return sum(r.params for r in rows)


def total_macs(rows: Sequence[LayerInfo]) -> int:
    return sum(r.macs for r in rows)


def format_table(rows: Sequence[LayerInfo]) -> str:
    """A plain-text table of a trace with a total row."""
    header = ("#", "layer", "type", "output", "params", "MACs")
    body = [
        (
            str(r.index),
            r.name,
            r.description,
            format_shape(r.out_shape),
            f"{r.params:,}",
            f"{r.macs:,}",
        )
        for r in rows
    ]
    body.append(("", "total", "", "", f"{total_params(rows):,}", f"{total_macs(rows):,}"))
    widths = [max(len(line[j]) for line in [header, *body]) for j in range(len(header))]
    right = {0, 4, 5}

    def fmt(line: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[j]) if j in right else cell.ljust(widths[j])
            for j, cell in enumerate(line)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(b) for b in body[:-1]), rule, fmt(body[-1])])


def lenet_table() -> list[LayerInfo]:
    """The trace of the course's LeNet (:data:`LENET_SPEC`)."""
    return trace(None, LENET_SPEC)


def errata() -> list[Erratum]:
    """The write-up's mistakes in 2(g)–(h), each checked by computation here."""
    rows = lenet_table()
    conv1, conv2 = rows[1], rows[3]
    even = conv_out(28, 4)
    k = solve(12, 8, stride=1, padding=0)
    return [
        Erratum(
            where="2(g)",
            writeup="the output side is 28 − 2·2 = 24",
            correct="out = 28 − (5 − 1) = 24 (in general ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1)",
            evidence=(
                f"conv_out(28, 5) = {conv_out(28, 5)}; '28 − 2·⌊k/2⌋' holds only for odd k at "
                f"stride 1 without padding: for k = 4 it gives 24, but conv_out(28, 4) = {even}"
            ),
        ),
        Erratum(
            where="2(h)",
            writeup="we need 2.5 ≈ 3 filters in the second convolution",
            correct="50 output channels need 50 filters, each 5×5×20 (it spans all 20 input "
            "channels)",
            evidence=(
                f"conv1 {format_shape(conv1.out_shape)} with {conv1.params:,} parameters; conv2 "
                f"{format_shape(conv2.out_shape)} with {conv2.params:,} = 50·(5·5·20) + 50 "
                f"parameters; solve(12, 8, stride=1, padding=0) = {k} confirms the 5×5 kernel"
            ),
        ),
    ]
