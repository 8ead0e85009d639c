"""CNN shape calculator: output sizes, parameters and MACs of conv/pool/linear stacks.

PyTorch's arithmetic, without torch: :func:`conv_out` and :func:`pool_out` for one
dimension, :func:`parse` for the compact stack syntax (:data:`SYNTAX`), :func:`trace` for
a whole stack, :func:`solve` for one unknown hyper-parameter (the write-up's 2(h)).
"""

from emnet.shapes.formulas import conv_out, pool_out, solve
from emnet.shapes.layers import (
    SYNTAX,
    Activation,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Input,
    Layer,
    Linear,
    MaxPool2d,
    format_shape,
    parse,
    parse_layer,
)
from emnet.shapes.trace import (
    LENET_SPEC,
    Erratum,
    LayerInfo,
    errata,
    format_table,
    lenet_table,
    total_macs,
    total_params,
    trace,
)

__all__ = [
    "LENET_SPEC",
    "SYNTAX",
    "Activation",
    "AvgPool2d",
    "BatchNorm",
    "Conv2d",
    "Erratum",
    "Flatten",
    "GlobalAvgPool",
    "Input",
    "Layer",
    "LayerInfo",
    "Linear",
    "MaxPool2d",
    "conv_out",
    "errata",
    "format_shape",
    "format_table",
    "lenet_table",
    "parse",
    "parse_layer",
    "pool_out",
    "solve",
    "total_macs",
    "total_params",
    "trace",
]
