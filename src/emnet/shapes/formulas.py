"""Output-size arithmetic of 2-d convolution and pooling, exactly as PyTorch computes it.

For one spatial dimension of size ``n``, kernel ``k``, stride ``s``, padding ``p`` and
dilation ``d`` (effective kernel ``d·(k − 1) + 1``)::

    conv:  out = ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1
    pool:  the same with ceil instead of floor when ``ceil_mode``, except that the last
           window must start inside the input or the left padding (PyTorch drops it
           otherwise), and ``p ≤ k // 2``.

:func:`solve` inverts the convolution formula for one unknown among kernel, stride and
padding (the write-up's exercise 2(h)).
"""

from __future__ import annotations

from typing import Any

from emnet._checks import check_int


def _int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``, else a ValueError/TypeError naming ``name``."""
    return check_int(value, name, minimum)


def _describe(size: int, kernel: int, stride: int, padding: int, dilation: int) -> str:
    return f"input {size}, kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation}"


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output size of a convolution along one dimension (``torch.nn.Conv2d``'s formula).

    Raises ValueError when the (dilated) kernel does not fit in the padded input, i.e. the
    output would be smaller than 1.

    >>> conv_out(28, 5)
    24
    >>> conv_out(32, 3, stride=2, padding=1)
    16
    """
    size = _int(size, "size", 1)
    kernel = _int(kernel, "kernel", 1)
    stride = _int(stride, "stride", 1)
    padding = _int(padding, "padding", 0)
    dilation = _int(dilation, "dilation", 1)
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"output size {out} < 1: the effective kernel {dilation * (kernel - 1) + 1} is "
            f"larger than the padded input {size + 2 * padding} "
            f"({_describe(size, kernel, stride, padding, dilation)})"
        )
    return out


def pool_out(
    size: int,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output size of max/avg pooling along one dimension (``torch.nn.MaxPool2d``'s rules).

    ``stride`` defaults to ``kernel``. PyTorch requires ``padding <= kernel // 2``; in
    ``ceil_mode`` a last window that would start beyond the input and its left padding is
    dropped. Raises ValueError for invalid arguments or an output smaller than 1.

    >>> pool_out(24, 2)
    12
    >>> pool_out(5, 2, ceil_mode=True)
    3
    """
    size = _int(size, "size", 1)
    kernel = _int(kernel, "kernel", 1)
    stride = kernel if stride is None else _int(stride, "stride", 1)
    padding = _int(padding, "padding", 0)
    dilation = _int(dilation, "dilation", 1)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be a bool, got {type(ceil_mode).__name__}")
    if padding > kernel // 2:
        raise ValueError(
            f"padding must be at most half the kernel size (kernel // 2 = {kernel // 2}), "
            f"got padding {padding} for kernel {kernel}"
        )
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-numerator // stride) + 1  # ceil division (rounds toward +inf)
        # PyTorch: the last window must start inside the input or the left padding.
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = numerator // stride + 1
    if out < 1:
        raise ValueError(
            f"output size {out} < 1: the effective pooling window "
            f"{dilation * (kernel - 1) + 1} is larger than the padded input "
            f"{size + 2 * padding} ({_describe(size, kernel, stride, padding, dilation)})"
        )
    return out


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def solve(
    in_size: int,
    out_size: int,
    kernel: int | None = None,
    stride: int | None = None,
    padding: int | None = None,
    dilation: int = 1,
) -> int:
    """The one unknown among ``kernel``, ``stride`` and ``padding`` (pass it as None).

    Inverts :func:`conv_out`: returns the value that makes ``conv_out(in_size, kernel,
    stride, padding, dilation) == out_size``. Because of the floor, a stride above 1 can
    make several values work; the smallest is returned. Raises ValueError when no integer
    value works (or when not exactly one of the three is unknown).

    The write-up's 2(h): a 12×12 input must become 8×8 at stride 1, no padding:

    >>> solve(12, 8, stride=1, padding=0)
    5
    """
    in_size = _int(in_size, "in_size", 1)
    out_size = _int(out_size, "out_size", 1)
    dilation = _int(dilation, "dilation", 1)
    unknown = [
        name
        for name, v in (("kernel", kernel), ("stride", stride), ("padding", padding))
        if v is None
    ]
    if len(unknown) != 1:
        raise ValueError(
            "solve: exactly one of kernel, stride, padding must be None (the unknown), got "
            + (f"{len(unknown)} unknown: {', '.join(unknown)}" if unknown else "none unknown")
        )
    m = out_size - 1  # out − 1 = ⌊N / s⌋ with N = in + 2p − d(k − 1) − 1  ⇔  m·s ≤ N ≤ m·s + s − 1
    if unknown == ["kernel"]:
        s, p = _int(stride, "stride", 1), _int(padding, "padding", 0)
        # d(k − 1) ∈ [in + 2p − 1 − (m·s + s − 1), in + 2p − 1 − m·s]
        hi = in_size + 2 * p - 1 - m * s
        lo = max(0, hi - (s - 1))
        km1 = _ceil_div(lo, dilation)
        result = km1 + 1 if hi >= 0 and km1 * dilation <= hi else None
        given = f"stride {s}, padding {p}, dilation {dilation}"
    elif unknown == ["stride"]:
        k, p = _int(kernel, "kernel", 1), _int(padding, "padding", 0)
        n = in_size + 2 * p - dilation * (k - 1) - 1
        if n < 0:
            result = None
        elif m == 0:
            result = n + 1  # any stride larger than N leaves a single window
        else:
            # ⌊N / s⌋ = m  ⇔  N / (m + 1) < s ≤ N / m
            s_min = n // (m + 1) + 1
            result = s_min if s_min <= n // m else None
        given = f"kernel {k}, padding {p}, dilation {dilation}"
    else:
        k, s = _int(kernel, "kernel", 1), _int(stride, "stride", 1)
        a = in_size - dilation * (k - 1) - 1
        # 2p ∈ [m·s − a, m·s + s − 1 − a]
        p_min = max(0, _ceil_div(m * s - a, 2))
        result = p_min if 2 * p_min <= m * s + s - 1 - a else None
        given = f"kernel {k}, stride {s}, dilation {dilation}"
    if result is None:
        raise ValueError(
            f"solve: no integer {unknown[0]} turns size {in_size} into {out_size} ({given})"
        )
    return result
