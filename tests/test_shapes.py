"""emnet.shapes against PyTorch: per-dimension formulas, whole stacks, solve, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from emnet.shapes import (
    LENET_SPEC,
    Conv2d,
    Input,
    conv_out,
    errata,
    format_table,
    lenet_table,
    parse,
    pool_out,
    solve,
    trace,
)

HYP = settings(max_examples=60, deadline=None)

# ------------------------------------------------------------------ one dimension


def _torch_len(module: nn.Module, size: int) -> int | None:
    """Output width of ``module`` on a 1×1×1×size input, or None when torch refuses."""
    try:
        with torch.no_grad():
            return int(module(torch.zeros(1, 1, 1, size)).shape[-1])
    except RuntimeError:
        return None


def _ours(fn, *args, **kwargs) -> int | None:
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return None


@HYP
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_conv_out_matches_torch(
    size: int, kernel: int, stride: int, padding: int, dilation: int
) -> None:
    conv = nn.Conv2d(1, 1, (1, kernel), (1, stride), (0, padding), (1, dilation))
    assert _ours(conv_out, size, kernel, stride, padding, dilation) == _torch_len(conv, size)


@HYP
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
    ceil_mode=st.booleans(),
    avg=st.booleans(),
)
def test_pool_out_matches_torch(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool, avg: bool
) -> None:
    if avg:
        dilation = 1  # AvgPool2d has no dilation
        pool: nn.Module = nn.AvgPool2d((1, kernel), (1, stride), (0, padding), ceil_mode)
    else:
        pool = nn.MaxPool2d(
            (1, kernel), (1, stride), (0, padding), (1, dilation), ceil_mode=ceil_mode
        )
    ours = _ours(pool_out, size, kernel, stride, padding, dilation, ceil_mode)
    assert ours == _torch_len(pool, size)


def test_pool_ceil_mode_drops_a_window_starting_in_the_right_padding() -> None:
    # ceil((5 + 2 − 1 − 1) / 2) + 1 = 4, but the 4th window would start at 6 ≥ 5 + 1.
    assert pool_out(5, 2, stride=2, padding=1, ceil_mode=True) == 3
    assert pool_out(5, 2, stride=2, padding=1, ceil_mode=False) == 3
    assert pool_out(5, 2, ceil_mode=True) == 3
    assert pool_out(5, 2) == 2
    pool = nn.MaxPool2d((1, 2), (1, 2), (0, 1), ceil_mode=True)
    assert _torch_len(pool, 5) == 3


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: conv_out(0, 3), "size: expected an integer >= 1"),
        (lambda: conv_out(8, 3, stride=0), "stride: expected an integer >= 1"),
        (lambda: conv_out(8, 2.5), "kernel: expected an integer"),
        (lambda: conv_out(8, True), "kernel: expected an integer"),
        (lambda: conv_out(4, 5), "output size 0 < 1"),
        (lambda: pool_out(8, 3, padding=2), "padding must be at most half"),
        (lambda: pool_out(8, 2, ceil_mode=1), "ceil_mode must be a bool"),
    ],
)
def test_formula_errors_name_the_argument(call, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ------------------------------------------------------------------ whole stacks vs torch


@st.composite
def stacks(draw: st.DrawFn) -> tuple[tuple[int, int, int], list[str], list[nn.Module]]:
    """A random stack as spec tokens plus the same layers built independently in torch."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(4, 24)), draw(st.integers(4, 24)))
    tokens: list[str] = []
    modules: list[nn.Module] = []

    def pair(lo: int, hi: int) -> tuple[int, int]:
        a = draw(st.integers(lo, hi))
        return (a, a) if draw(st.booleans()) else (a, draw(st.integers(lo, hi)))

    def fmt(p: tuple[int, int]) -> str:
        return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"

    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["conv", "pool", "avgpool", "bn", "act"]))
        if kind == "conv":
            out = draw(st.integers(1, 6))
            k, s, p, d = pair(1, 4), pair(1, 2), pair(0, 2), pair(1, 2)
            groups = draw(st.sampled_from([1, 1, 2]))
            bias = draw(st.booleans())
            tokens.append(
                f"conv{out}k{fmt(k)}s{fmt(s)}p{fmt(p)}d{fmt(d)}"
                + (f"g{groups}" if groups > 1 else "")
                + ("" if bias else "b0")
            )
            modules.append(nn.LazyConv2d(out, k, s, p, d, groups=groups, bias=bias))
        elif kind in ("pool", "avgpool"):
            k, p = pair(1, 3), pair(0, 1)
            s = pair(1, 3) if draw(st.booleans()) else None
            ceil = draw(st.booleans())
            d = pair(1, 2) if kind == "pool" else (1, 1)
            tokens.append(
                f"{kind}{fmt(k)}"
                + (f"s{fmt(s)}" if s else "")
                + f"p{fmt(p)}"
                + (f"d{fmt(d)}" if kind == "pool" else "")
                + ("c1" if ceil else "")
            )
            if kind == "pool":
                modules.append(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil))
            else:
                modules.append(nn.AvgPool2d(k, s, p, ceil_mode=ceil))
        elif kind == "bn":
            tokens.append("bn")
            modules.append(nn.LazyBatchNorm2d())
        else:
            name = draw(st.sampled_from(["relu", "tanh", "sigmoid"]))
            tokens.append(name)
            modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[name]())
    if draw(st.booleans()):
        tokens.append("gap")
        modules.append(nn.AdaptiveAvgPool2d(1))
    if draw(st.booleans()):
        tokens.append("flatten")
        modules.append(nn.Flatten())
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                n, bias = draw(st.integers(1, 12)), draw(st.booleans())
                tokens.append(f"fc{n}" + ("" if bias else "b0"))
                modules.append(nn.LazyLinear(n, bias=bias))
            else:
                tokens.append("bn")
                modules.append(nn.LazyBatchNorm1d())
    return shape, tokens, modules


def _run_torch(shape: tuple[int, int, int], modules: list[nn.Module]) -> tuple[list, int | None]:
    """Per-layer (output shape, parameter count) in torch, and the index that failed."""
    x = torch.zeros(1, *shape)
    rows = []
    with torch.no_grad():
        for i, module in enumerate(modules, start=1):
            module.eval()
            try:
                x = module(x)
            except (RuntimeError, ValueError):
                return rows, i
            rows.append((tuple(x.shape[1:]), sum(p.numel() for p in module.parameters())))
    return rows, None


@settings(max_examples=80, deadline=None)
@given(stacks())
def test_random_stacks_match_torch(stack: tuple) -> None:
    shape, tokens, modules = stack
    spec = "x".join(map(str, shape)) + " " + " ".join(tokens)
    expected, failed_at = _run_torch(shape, modules)
    try:
        rows = trace(None, spec)
    except ValueError as exc:
        assert failed_at is not None, f"{spec}: we refused ({exc}) but torch ran"
        assert str(exc).startswith(f"layer {failed_at} ({parse(spec)[failed_at].spec})")
        return
    assert failed_at is None, f"{spec}: torch failed at layer {failed_at}, we did not"
    assert rows[0].out_shape == shape
    assert [(r.out_shape, r.params) for r in rows[1:]] == expected
    assert [r.name for r in rows[1:]] == [layer.spec for layer in parse(spec)[1:]]


@settings(max_examples=40, deadline=None)
@given(stacks())
def test_canonical_spec_round_trips(stack: tuple) -> None:
    shape, tokens, _ = stack
    layers = parse("x".join(map(str, shape)) + " " + " ".join(tokens))
    again = parse(" ".join(layer.spec for layer in layers))
    assert again == layers


def test_conv_macs_and_linear_macs() -> None:
    rows = trace((3, 32, 32), "conv16k3p1 flatten fc10")
    assert rows[1].macs == 16 * 32 * 32 * 3 * 3 * 3
    assert rows[3].macs == 16 * 32 * 32 * 10
    grouped = trace((4, 8, 8), "conv8k3g2")
    assert grouped[1].params == 8 * 2 * 9 + 8
    assert grouped[1].macs == 8 * 6 * 6 * 2 * 9


# ------------------------------------------------------------------ the write-up's LeNet


def test_lenet_matches_the_writeup() -> None:
    rows = lenet_table()
    assert [r.out_shape for r in rows[1:5]] == [(20, 24, 24), (20, 12, 12), (50, 8, 8), (50, 4, 4)]
    assert rows[1].params == 520
    assert rows[3].params == 25_050
    assert [r.params for r in rows[6:]] == [400_500, 5_010]
    assert sum(r.params for r in rows) == 431_080
    table = format_table(rows)
    assert "25,050" in table and "431,080" in table and "50×4×4" in table
    assert trace(None, LENET_SPEC) == rows


def test_errata_are_backed_by_computation() -> None:
    items = {e.where: e for e in errata()}
    assert set(items) == {"2(g)", "2(h)"}
    assert "conv_out(28, 4) = 25" in items["2(g)"].evidence
    assert "25,050" in items["2(h)"].evidence and "= 5" in items["2(h)"].evidence


def test_parse_options_and_input() -> None:
    layers = parse("3x32x32 conv8k3x5s2p1x2d1g1b0 pool3s2p1d2c1 fc4")
    assert layers[0] == Input((3, 32, 32))
    assert layers[1] == Conv2d(8, (3, 5), (2, 2), (1, 2), (1, 1), 1, False)
    assert layers[1].spec == "conv8k3x5s2p1x2b0"
    assert layers[2].spec == "pool3s2p1d2c1"
    assert parse("CONV4K3, relu")[0].spec == "conv4k3"


# ------------------------------------------------------------------ solve


def test_solve_writeup_2h() -> None:
    assert solve(12, 8, stride=1, padding=0) == 5
    assert solve(28, 24, stride=1, padding=0) == 5


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
    target=st.integers(1, 45),
)
def test_solve_is_the_smallest_solution(
    size: int, kernel: int, stride: int, padding: int, dilation: int, target: int
) -> None:
    """Each unknown: solve's answer reproduces the target and nothing smaller does; when
    solve refuses, no value in a range wide enough to contain every solution works."""

    def brute(name: str, limit: int) -> list[int]:
        lo = 0 if name == "padding" else 1
        found = []
        for v in range(lo, limit):
            args = {"kernel": kernel, "stride": stride, "padding": padding, name: v}
            if _ours(conv_out, size, dilation=dilation, **args) == target:
                found.append(v)
        return found

    for name, limit in (
        ("kernel", size + 2 * padding + 2),
        ("stride", size + 2 * padding + 2),
        ("padding", target * stride + 10),
    ):
        given_args = {"kernel": kernel, "stride": stride, "padding": padding, name: None}
        solutions = brute(name, limit)
        if solutions:
            assert solve(size, target, dilation=dilation, **given_args) == solutions[0]
        else:
            with pytest.raises(ValueError, match=f"no integer {name}"):
                solve(size, target, dilation=dilation, **given_args)


def test_solve_errors() -> None:
    with pytest.raises(ValueError, match="no integer kernel turns size 12 into 9"):
        solve(12, 9, stride=2, padding=0)
    with pytest.raises(ValueError, match="exactly one of kernel, stride, padding"):
        solve(12, 8, stride=1)
    with pytest.raises(ValueError, match="none unknown"):
        solve(12, 8, kernel=5, stride=1, padding=0)
    with pytest.raises(ValueError, match="out_size: expected an integer >= 1"):
        solve(12, 0, stride=1, padding=0)


# ------------------------------------------------------------------ errors name the layer


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("1x28x28 conv20k5 pool2 conv50k13", r"layer 3 \(conv50k13\): output size"),
        ("1x28x28 conv20k5 pool2 conv50k5 pool2 pool2 pool2 pool2", r"layer 7 \(pool2\)"),
        ("1x28x28 fc10", r"layer 1 \(fc10\): needs a flat input"),
        ("784 conv3k3", r"layer 1 \(conv3k3\): needs a C×H×W input"),
        ("1x8x8 conv3k3g2", r"layer 1 \(conv3k3g2\): groups 2 must divide"),
        ("1x8x8 conv3q3", r"token 2 'conv3q3': unknown option 'q'"),
        ("1x8x8 conv3", r"conv needs a kernel size"),
        ("1x8x8 pool", r"pool needs a number"),
        ("1x8x8 relu3", r"relu takes no number"),
        ("1x8x8 pool2c2", r"takes 0 or 1"),
        ("1x8x8 conv0k3", r"output channels must be >= 1"),
        ("1x8x8 widget", r"unknown layer"),
        ("8x8 conv1k3", r"expected CxHxW"),
        ("1x8x8 relu 1x8x8", r"may only be the first token"),
        ("   ", r"spec is empty"),
    ],
)
def test_bad_stacks_raise_value_errors_naming_the_layer(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        trace(None, spec)


def test_trace_input_shape_checks() -> None:
    assert trace((1, 8, 8), [Conv2d(2, (3, 3))])[1].out_shape == (2, 6, 6)
    with pytest.raises(ValueError, match="input_shape must be"):
        trace((8, 8), "relu")
    with pytest.raises(ValueError, match="input_shape is missing"):
        trace(None, "relu")
    with pytest.raises(ValueError, match="disagrees"):
        trace((1, 9, 9), "1x8x8 relu")
    with pytest.raises(TypeError, match="layer 1 must be"):
        trace((1, 8, 8), ["relu"])  # type: ignore[list-item]


def test_layer_constructors_validate() -> None:
    from emnet.shapes import Activation, Linear, MaxPool2d

    assert Conv2d(4, 3).kernel == (3, 3)
    assert MaxPool2d(2).stride == (2, 2)
    assert MaxPool2d(3, 2) == MaxPool2d((3, 3), (2, 2))
    for build, match in (
        (lambda: Conv2d(0, 3), "out_channels must be a positive integer"),
        (lambda: Conv2d(2, 3, groups=0), "groups must be a positive integer"),
        (lambda: Linear(0), "out_features must be a positive integer"),
        (lambda: Activation("elu"), "relu, sigmoid or tanh"),
        (lambda: Conv2d(2, (3, 3, 3)), "an int or a pair"),
    ):
        with pytest.raises(ValueError, match=match):
            build()
