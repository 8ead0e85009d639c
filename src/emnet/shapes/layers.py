"""CNN layers as plain descriptions, and the compact one-line syntax that names them.

A stack is written as whitespace-separated tokens, e.g.
``"1x28x28 conv20k5 pool2 conv50k5 pool2 flatten fc500 fc10"`` (the course's LeNet).
:data:`SYNTAX` documents every token; :func:`parse` turns a string into layers.

Each layer knows its output shape, parameter count and multiply-accumulates for a given
input shape: ``(C, H, W)`` for feature maps, ``(F,)`` for flat feature vectors. The
arithmetic is PyTorch's (see :mod:`emnet.shapes.formulas`); nothing here imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from emnet.shapes.formulas import conv_out, pool_out

Shape = tuple[int, ...]
Pair = tuple[int, int]

SYNTAX = """\
A stack is whitespace-separated tokens (case-insensitive), e.g. the course's LeNet:
  1x28x28 conv20k5 pool2 conv50k5 pool2 flatten fc500 fc10

input (first token, optional if --input is given)
  CxHxW            feature maps, e.g. 1x28x28 or 3x32x32
  F                a flat feature vector, e.g. 784
conv<OUT>k<K>...   Conv2d with OUT output channels and kernel K; options:
                     s<S> stride (1)   p<P> padding (0)   d<D> dilation (1)
                     g<G> groups (1)   b0 no bias (b1, the default, has a bias)
                   e.g. conv20k5, conv64k3s2p1b0, conv32k3d2p2
pool<K>...         MaxPool2d with kernel K (alias maxpool<K>); options:
                     s<S> stride (K)   p<P> padding (0, at most K // 2)
                     d<D> dilation (1) c1 ceil_mode (c0, floor, is the default)
                   e.g. pool2, pool3s2p1, pool3s2c1
avgpool<K>...      AvgPool2d with kernel K; options s<S>, p<P>, c1 as for pool
gap                global average pooling (AdaptiveAvgPool2d(1)): C x 1 x 1
bn                 BatchNorm (2d on feature maps, 1d on flat vectors): 2 params per channel
relu sigmoid tanh  element-wise activations
flatten            C x H x W -> C*H*W
fc<N>...           Linear layer to N features (alias linear<N>); option b0 no bias

Any K, S, P or D may be a pair HxW for different heights and widths, e.g. conv8k3x5p1x2.
Parameters count weights and biases (BatchNorm: weight and bias; running statistics are
buffers, not parameters). MACs count the multiply-accumulates of conv and linear layers
for one input (bias additions, normalisation, activations and pooling count as 0).
"""


def _pair(value: int | Pair) -> Pair:
    if isinstance(value, int):
        return (value, value)
    if len(value) != 2:
        raise ValueError(f"expected an int or a pair of ints, got {value!r}")
    return (int(value[0]), int(value[1]))


def _positive(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _fmt_pair(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def format_shape(shape: Shape) -> str:
    """``(20, 24, 24)`` → ``'20×24×24'``."""
    return "×".join(str(s) for s in shape)


def _need_maps(in_shape: Shape) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ValueError(f"needs a C×H×W input, got the flat shape {format_shape(in_shape)}")
    return in_shape[0], in_shape[1], in_shape[2]


@dataclass(frozen=True)
class Layer:
    """Base of every layer: shape-preserving, no parameters, no MACs."""

    kind: ClassVar[str] = "layer"

    @property
    def spec(self) -> str:
        """The layer's token in the compact syntax (canonical form)."""
        return self.kind

    def describe(self, in_shape: Shape) -> str:
        """A short human description, e.g. ``Conv2d(1→20, 5×5)``."""
        return self.kind

    def output_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def param_count(self, in_shape: Shape) -> int:
        return 0

    def mac_count(self, in_shape: Shape, out_shape: Shape) -> int:
        return 0


@dataclass(frozen=True)
class Input(Layer):
    """The stack's input shape (first token of a spec)."""

    shape: Shape
    kind: ClassVar[str] = "input"

    @property
    def spec(self) -> str:
        return "x".join(str(s) for s in self.shape)

    def describe(self, in_shape: Shape) -> str:
        return "Input"


@dataclass(frozen=True)
class Conv2d(Layer):
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    kind: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        _positive(self.out_channels, "out_channels")
        _positive(self.groups, "groups")
        for name in ("kernel", "stride", "padding", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name)))

    @property
    def spec(self) -> str:
        s = f"conv{self.out_channels}k{_fmt_pair(self.kernel)}"
        for letter, value, default in (
            ("s", self.stride, (1, 1)),
            ("p", self.padding, (0, 0)),
            ("d", self.dilation, (1, 1)),
        ):
            if value != default:
                s += f"{letter}{_fmt_pair(value)}"
        if self.groups != 1:
            s += f"g{self.groups}"
        return s if self.bias else s + "b0"

    def describe(self, in_shape: Shape) -> str:
        c_in = in_shape[0] if in_shape else "?"
        return f"Conv2d({c_in}→{self.out_channels}, {self.kernel[0]}×{self.kernel[1]})"

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _need_maps(in_shape)
        if c % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups {self.groups} must divide the input channels ({c}) and the output "
                f"channels ({self.out_channels})"
            )
        return (
            self.out_channels,
            conv_out(h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
            conv_out(w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]),
        )

    def param_count(self, in_shape: Shape) -> int:
        per_filter = (in_shape[0] // self.groups) * self.kernel[0] * self.kernel[1]
        return self.out_channels * per_filter + (self.out_channels if self.bias else 0)

    def mac_count(self, in_shape: Shape, out_shape: Shape) -> int:
        per_output = (in_shape[0] // self.groups) * self.kernel[0] * self.kernel[1]
        return out_shape[0] * out_shape[1] * out_shape[2] * per_output


@dataclass(frozen=True)
class MaxPool2d(Layer):
    kernel: Pair
    stride: Pair | None = None  # None: the kernel size
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    ceil_mode: bool = False
    kind: ClassVar[str] = "pool"
    torch_name: ClassVar[str] = "MaxPool2d"

    def __post_init__(self) -> None:
        for name in ("kernel", "padding", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name)))
        stride = self.kernel if self.stride is None else _pair(self.stride)
        object.__setattr__(self, "stride", stride)

    @property
    def spec(self) -> str:
        s = f"{self.kind}{_fmt_pair(self.kernel)}"
        if self.stride != self.kernel:
            s += f"s{_fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f"p{_fmt_pair(self.padding)}"
        if self.dilation != (1, 1):
            s += f"d{_fmt_pair(self.dilation)}"
        return s + ("c1" if self.ceil_mode else "")

    def describe(self, in_shape: Shape) -> str:
        return f"{self.torch_name}({self.kernel[0]}×{self.kernel[1]})"

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _need_maps(in_shape)
        stride = self.stride or self.kernel  # always set by __post_init__
        return (
            c,
            pool_out(
                h, self.kernel[0], stride[0], self.padding[0], self.dilation[0], self.ceil_mode
            ),
            pool_out(
                w, self.kernel[1], stride[1], self.padding[1], self.dilation[1], self.ceil_mode
            ),
        )


@dataclass(frozen=True)
class AvgPool2d(MaxPool2d):
    kind: ClassVar[str] = "avgpool"
    torch_name: ClassVar[str] = "AvgPool2d"


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    kind: ClassVar[str] = "gap"

    def describe(self, in_shape: Shape) -> str:
        return "AdaptiveAvgPool2d(1)"

    def output_shape(self, in_shape: Shape) -> Shape:
        c, _, _ = _need_maps(in_shape)
        return (c, 1, 1)


@dataclass(frozen=True)
class BatchNorm(Layer):
    kind: ClassVar[str] = "bn"

    def describe(self, in_shape: Shape) -> str:
        return f"BatchNorm{'2' if len(in_shape) == 3 else '1'}d({in_shape[0]})"

    def param_count(self, in_shape: Shape) -> int:
        return 2 * in_shape[0]


@dataclass(frozen=True)
class Activation(Layer):
    function: str = "relu"
    kind: ClassVar[str] = "activation"

    def __post_init__(self) -> None:
        if self.function not in ("relu", "sigmoid", "tanh"):
            raise ValueError(f"function must be relu, sigmoid or tanh, got {self.function!r}")

    @property
    def spec(self) -> str:
        return self.function

    def describe(self, in_shape: Shape) -> str:
        return {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}[self.function]


@dataclass(frozen=True)
class Flatten(Layer):
    kind: ClassVar[str] = "flatten"

    def describe(self, in_shape: Shape) -> str:
        return "Flatten"

    def output_shape(self, in_shape: Shape) -> Shape:
        n = 1
        for s in in_shape:
            n *= s
        return (n,)


@dataclass(frozen=True)
class Linear(Layer):
    out_features: int
    bias: bool = True
    kind: ClassVar[str] = "fc"

    def __post_init__(self) -> None:
        _positive(self.out_features, "out_features")

    @property
    def spec(self) -> str:
        return f"fc{self.out_features}" + ("" if self.bias else "b0")

    def describe(self, in_shape: Shape) -> str:
        return f"Linear({in_shape[0] if in_shape else '?'}→{self.out_features})"

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            raise ValueError(
                f"needs a flat input, got {format_shape(in_shape)}; put 'flatten' before it"
            )
        return (self.out_features,)

    def param_count(self, in_shape: Shape) -> int:
        return in_shape[0] * self.out_features + (self.out_features if self.bias else 0)

    def mac_count(self, in_shape: Shape, out_shape: Shape) -> int:
        return in_shape[0] * self.out_features


# ---------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r"^(?P<kind>[a-z]+)(?P<lead>\d+(?:x\d+)?)?(?P<opts>(?:[a-z]\d+(?:x\d+)?)*)$")
_OPTION = re.compile(r"([a-z])(\d+(?:x\d+)?)")
_INPUT = re.compile(r"^\d+(?:x\d+)*$")

# kind -> (class, needs a leading number, allowed option letters)
_KINDS: dict[str, tuple[str, bool, str]] = {
    "conv": ("conv", True, "kspdgb"),
    "pool": ("pool", True, "spdc"),
    "maxpool": ("pool", True, "spdc"),
    "avgpool": ("avgpool", True, "spc"),
    "gap": ("gap", False, ""),
    "bn": ("bn", False, ""),
    "relu": ("relu", False, ""),
    "sigmoid": ("sigmoid", False, ""),
    "tanh": ("tanh", False, ""),
    "flatten": ("flatten", False, ""),
    "fc": ("fc", True, "b"),
    "linear": ("fc", True, "b"),
}

_OPTION_NAMES = {
    "k": "kernel",
    "s": "stride",
    "p": "padding",
    "d": "dilation",
    "g": "groups",
    "b": "bias",
    "c": "ceil_mode",
}


def _parse_number(text: str, what: str, minimum: int) -> int | Pair:
    parts = [int(p) for p in text.split("x")]
    if len(parts) > 2:
        raise ValueError(f"{what} '{text}' has more than two parts")
    for p in parts:
        if p < minimum:
            raise ValueError(f"{what} must be >= {minimum}, got {p}")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


_EXAMPLES = {
    "conv": "conv20k5 or conv64k3s2p1",
    "pool": "pool2 or pool3s2p1",
    "avgpool": "avgpool2 or avgpool3s2",
    "fc": "fc500 or fc10b0",
}


def _malformed(token: str, kind: str) -> str:
    """Why ``token``, which starts with the known layer name ``kind``, does not parse."""
    rest = token.strip().lower()[len(kind) :]
    bad = re.search(r"[^a-z0-9x]", rest)
    canonical = _KINDS[kind][0]
    example = _EXAMPLES.get(canonical, canonical)
    if not _KINDS[kind][1]:
        return f"'{token}': {kind} takes no number or options (write just '{kind}')"
    if not rest[:1].isdigit():
        return f"'{token}': {kind} needs a number right after it, e.g. {example}"
    if bad is not None:
        return (
            f"'{token}': {kind} sizes and options are whole numbers >= 0, but "
            f"'{rest[bad.start() :]}' follows '{kind}{rest[: bad.start()]}' (e.g. {example})"
        )
    return f"'{token}': not a valid {kind} layer (expected e.g. {example}; see --help)"


def _bad_input(token: str) -> str:
    return (
        f"input shape '{token}': expected CxHxW with whole numbers >= 1 (e.g. 1x28x28) or a "
        "feature count (e.g. 784)"
    )


def _parse_input(token: str) -> Input:
    parts = tuple(int(p) for p in token.split("x"))
    if len(parts) not in (1, 3):
        raise ValueError(
            f"input shape '{token}': expected CxHxW (e.g. 1x28x28) or a feature count (e.g. 784)"
        )
    if min(parts) < 1:
        raise ValueError(f"input shape '{token}': every size must be >= 1")
    return Input(parts)


def _flag(value: int | Pair, letter: str) -> bool:
    if value not in (0, 1):
        raise ValueError(f"option {letter} ({_OPTION_NAMES[letter]}) takes 0 or 1, got {value}")
    return bool(value)


def parse_layer(token: str) -> Layer:
    """One token of the compact syntax (see :data:`SYNTAX`) as a :class:`Layer`."""
    text = token.strip().lower()
    m = _TOKEN.match(text)
    if not m or m.group("kind") not in _KINDS:
        known_prefix = [k for k in sorted(_KINDS, key=len, reverse=True) if text.startswith(k)]
        if known_prefix:
            raise ValueError(_malformed(token, known_prefix[0]))
        if text[:1].isdigit() or text[:1] in "-+.":
            raise ValueError(_bad_input(token))
        known = ", ".join(sorted(_KINDS))
        raise ValueError(f"'{token}': unknown layer (expected one of: {known}; see --help)")
    kind, needs_number, allowed = _KINDS[m.group("kind")]
    lead, opts_text = m.group("lead"), m.group("opts") or ""
    if needs_number and lead is None:
        raise ValueError(f"'{token}': {m.group('kind')} needs a number, e.g. {m.group('kind')}2")
    if not needs_number and (lead is not None or opts_text):
        raise ValueError(f"'{token}': {m.group('kind')} takes no number or options")
    opts: dict[str, int | Pair] = {}
    for letter, value in _OPTION.findall(opts_text):
        if letter not in allowed:
            expected = ", ".join(allowed) if allowed else "none"
            raise ValueError(
                f"'{token}': unknown option '{letter}' for {m.group('kind')} (expected {expected})"
            )
        if letter in opts:
            raise ValueError(f"'{token}': option '{letter}' given twice")
        minimum = 0 if letter in "pbc" else 1
        opts[letter] = _parse_number(value, f"'{token}': {_OPTION_NAMES[letter]}", minimum)
    if kind == "conv":
        if "k" not in opts:
            raise ValueError(f"'{token}': conv needs a kernel size, e.g. conv{lead}k3")
        out = _parse_number(lead, f"'{token}': output channels", 1)
        if not isinstance(out, int):
            raise ValueError(f"'{token}': output channels must be a single number")
        groups = opts.get("g", 1)
        if not isinstance(groups, int):
            raise ValueError(f"'{token}': groups must be a single number")
        return Conv2d(
            out_channels=out,
            kernel=_pair(opts["k"]),
            stride=_pair(opts.get("s", 1)),
            padding=_pair(opts.get("p", 0)),
            dilation=_pair(opts.get("d", 1)),
            groups=groups,
            bias=_flag(opts.get("b", 1), "b"),
        )
    if kind in ("pool", "avgpool"):
        cls = MaxPool2d if kind == "pool" else AvgPool2d
        kernel = _pair(_parse_number(lead, f"'{token}': kernel", 1))
        return cls(
            kernel=kernel,
            stride=_pair(opts["s"]) if "s" in opts else None,
            padding=_pair(opts.get("p", 0)),
            dilation=_pair(opts.get("d", 1)),
            ceil_mode=_flag(opts.get("c", 0), "c"),
        )
    if kind == "fc":
        out = _parse_number(lead, f"'{token}': output features", 1)
        if not isinstance(out, int):
            raise ValueError(f"'{token}': output features must be a single number")
        return Linear(out_features=out, bias=_flag(opts.get("b", 1), "b"))
    if kind in ("relu", "sigmoid", "tanh"):
        return Activation(kind)
    return {"gap": GlobalAvgPool, "bn": BatchNorm, "flatten": Flatten}[kind]()


def parse(spec: str) -> list[Layer]:
    """Parse a stack written in the compact syntax (see :data:`SYNTAX`).

    The first token may be the input shape (``1x28x28`` or ``784``); it becomes an
    :class:`Input` layer at the head of the list.

    >>> [layer.spec for layer in parse("1x28x28 conv20k5 pool2 flatten fc10")]
    ['1x28x28', 'conv20k5', 'pool2', 'flatten', 'fc10']
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string, got {type(spec).__name__}")
    tokens = spec.replace(",", " ").split()
    if not tokens:
        raise ValueError("spec is empty: expected e.g. '1x28x28 conv20k5 pool2 flatten fc10'")
    layers: list[Layer] = []
    for i, token in enumerate(tokens):
        if _INPUT.match(token.lower()):
            if i != 0:
                raise ValueError(
                    f"token {i + 1} '{token}': an input shape may only be the first token"
                )
            layers.append(_parse_input(token.lower()))
        else:
            try:
                layers.append(parse_layer(token))
            except ValueError as exc:
                raise ValueError(f"token {i + 1} {exc}") from None
    return layers
