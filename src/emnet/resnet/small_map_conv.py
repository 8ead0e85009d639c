"""A dense convolution kernel for tiny feature maps, and the conv module that uses it.

On the 2×2 maps inside ResNet(C)'s block (8×8 digits after a stride-2 stem and a 2×2
pool), a 3×3 "same" convolution is a small dense matrix product per group:
:func:`small_map_conv2d` builds that matrix from the kernel and multiplies, which on CPU
beats ``F.conv2d`` (mkldnn's im2col) for enough channels and samples
(:func:`small_map_conv_is_faster`, measured). :class:`SmallMapConv2d` is an
``nn.Conv2d`` that takes this path only where it is faster.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def small_map_conv_is_faster(
    height: int, width: int, kernel_size: int, in_channels: int, out_channels: int, batch: int
) -> bool:
    """Whether :func:`small_map_conv2d` beats ``F.conv2d`` (mkldnn) on CPU for a k×k "same"
    conv on ``batch`` H×W maps with ``in_channels`` → ``out_channels`` per group.

    Per model and sample the dense map costs (H·W)²·Cin·Cout multiply-adds against
    im2col's H·W·k²·Cin·Cout, and it skips the padding zeros; but it gathers the dense
    matrix, (H·W)²·Cin·Cout floats per group, on every call, which only pays over enough
    samples. Measured in PackedResNet training (8 models, 2×2 maps, 1 thread, CPU seconds
    per epoch): at 64 channels per group 5–15 % faster at batch 16 and 32, 10–20 %
    slower at batch 1, 2, 4 and 8; slower at 1, 4, 16 and 32 channels per group (batch 16).
    Hence: H·W ≤ k²/2, ≥ 64 channels and ≥ 16 samples.
    """
    small = 2 * height * width <= kernel_size * kernel_size
    return small and min(in_channels, out_channels) >= 64 and batch >= 16


def _kernel_window(k: int, size: int) -> tuple[slice, slice]:
    """Where the k taps sit along one axis of the shifted kernel (length 2·size - 1):
    (slice of the shifted kernel, slice of the taps). Tap t lands at t + size - 1 - k//2."""
    q = size - 1 - k // 2  # zero padding (q > 0) or crop (q < 0) on each side
    return slice(max(q, 0), max(q, 0) + k + 2 * min(q, 0)), slice(max(-q, 0), k - max(-q, 0))


def _shifted_kernel(w5: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(G, Cout, 2H-1, 2W-1, Cin) view or copy of w5 (G, Cout, Cin, k, k):
    K[g, o, a, b, c] = w5[g, o, c, a - (H-1-p), b - (W-1-p)], zero outside the kernel.

    With it, the weight from input pixel (i, j) to the *reversed* output pixel
    (H-1-oi, W-1-oj) is K[..., i + H-1-oi, j + W-1-oj, :]: one as_strided view.
    """
    k = w5.shape[-1]
    if height == width == k // 2 + 1:  # the kernel fits exactly: no copy
        return w5.permute(0, 1, 3, 4, 2)
    G, Cout, Cin = w5.shape[:3]
    K = w5.new_zeros(G, Cout, 2 * height - 1, 2 * width - 1, Cin)
    (kh, th), (kw, tw) = _kernel_window(k, height), _kernel_window(k, width)
    K[:, :, kh, kw] = w5.permute(0, 1, 3, 4, 2)[:, :, th, tw]
    return K


def _group_rows(t: torch.Tensor, groups: int, reverse: bool = False) -> torch.Tensor:
    """(n, G·C, H, W) → (G, n, H·W·C): each group's pixels-by-channels as one row per
    sample (pixel order reversed if ``reverse``), whatever ``t``'s memory format."""
    n, _, H, W = t.shape
    r = t.permute(0, 2, 3, 1).reshape(n, H * W, groups, -1)
    if reverse:
        r = r.flip(1)
    return r.permute(2, 0, 1, 3).reshape(groups, n, -1)


def _dense_matrix_t(weight: torch.Tensor, groups: int, height: int, width: int) -> torch.Tensor:
    """Per group the conv's matrix, transposed and with reversed output pixels:
    (G, H·W·Cout, H·W·Cin), entry ((H-1-oi, W-1-oj, o), (i, j, c)) = the tap joining them.

    A plain copy of an as_strided view of the kernel in the weight's own (channels-last)
    order; see :func:`_shifted_kernel`.
    """
    G, Cin, k = groups, weight.shape[1], weight.shape[-1]
    Cout, H, W = weight.shape[0] // G, height, width
    K = _shifted_kernel(weight.view(G, Cout, Cin, k, k), H, W)
    s = K.stride()
    view = K.as_strided(
        (G, H, W, Cout, H, W, Cin), (s[0], s[2], s[3], s[1], s[2], s[3], s[4]), K.storage_offset()
    )
    return view.reshape(G, H * W * Cout, H * W * Cin)


def _rows_to_image(rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(G, n, H·W·C) → channels-last (n, G·C, H, W), the inverse of :func:`_group_rows`."""
    G, n, _ = rows.shape
    r = rows.view(G, n, height * width, -1).permute(1, 2, 0, 3)
    return r.reshape(n, height, width, -1).permute(0, 3, 1, 2)


def _dense_conv(
    x_rows: torch.Tensor, dense_t: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """y = x · D per group, output pixels put back in order (channels-last result)."""
    G, n, _ = x_rows.shape
    y = torch.bmm(x_rows, dense_t.transpose(1, 2)).view(G, n, height * width, -1).flip(2)
    return _rows_to_image(y.view(G, n, -1), height, width)


def _dense_weight_grad(
    x_rows: torch.Tensor, g_rows: torch.Tensor, height: int, width: int, kernel_size: int
) -> torch.Tensor:
    """d(loss)/d(weight) from the input rows and the output gradient's rows (reversed
    pixels): Dᵀ's gradient gᵀ·x (one batched matmul), then each tap sums the entries of D it
    fills (the adjoint of the as_strided gather). Returned in channels-last order."""
    H, W, k = height, width, kernel_size
    G, P = x_rows.shape[0], H * W
    Cin, Cout = x_rows.shape[-1] // P, g_rows.shape[-1] // P
    gd = torch.bmm(g_rows.transpose(1, 2), x_rows).view(G, H, W, Cout, H, W, Cin)
    gk = gd.new_zeros(G, Cout, 2 * H - 1, 2 * W - 1, Cin)
    for oi in range(H):
        for oj in range(W):
            gk[:, :, oi : oi + H, oj : oj + W] += gd[:, oi, oj]
    (kh, th), (kw, tw) = _kernel_window(k, H), _kernel_window(k, W)
    if (kh, kw) == (th, tw) == (slice(0, k), slice(0, k)):
        gw = gk  # (G, Cout, k, k, Cin)
    else:
        gw = gk.new_zeros(G, Cout, k, k, Cin)
        gw[:, :, th, tw] = gk[:, :, kh, kw]
    return gw.permute(0, 1, 4, 2, 3).reshape(G * Cout, Cin, k, k)


class _SmallMapConv(torch.autograd.Function):
    """y = x · D per group; backward: grad_x = g · Dᵀ, grad_D = xᵀ · g summed into the taps."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
        H, W = x.shape[-2:]
        dense_t = _dense_matrix_t(weight, groups, H, W)
        x_rows = _group_rows(x, groups)
        ctx.save_for_backward(x_rows, dense_t)
        ctx.geometry = (H, W, weight.shape[-1])
        return _dense_conv(x_rows, dense_t, H, W)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_rows, dense_t = ctx.saved_tensors
        H, W, k = ctx.geometry
        g_rows = _group_rows(grad, x_rows.shape[0], reverse=True)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _rows_to_image(torch.bmm(g_rows, dense_t), H, W)
        if ctx.needs_input_grad[1]:
            grad_w = _dense_weight_grad(x_rows, g_rows, H, W, k)
        return grad_x, grad_w, None


def small_map_conv2d(x: torch.Tensor, weight: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=k//2, groups=groups)`` (stride 1, odd k, no bias) as one
    dense linear map per group, applied with a batched matmul.

    On an H×W map each group's convolution is a linear map of (Cin·H·W) → (Cout·H·W) whose
    matrix holds kernel taps only: entry (input pixel, output pixel) is the tap that
    connects them, or zero. On tiny maps (2×2 here) every pair has a tap, so the dense
    matrix skips im2col's padding zeros and the per-tap loop. Forward and backward equal
    the convolution's up to float rounding (tests).
    """
    k = weight.shape[-1]
    if x.ndim != 4 or weight.ndim != 4 or weight.shape[-2] != k or k % 2 == 0:
        raise ValueError("small_map_conv2d: expected x (n, C, H, W) and an odd square kernel")
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(
            f"small_map_conv2d: x has {x.shape[1]} channels, weight expects "
            f"{weight.shape[1]}·{groups} and {weight.shape[0]} outputs in {groups} groups"
        )
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _SmallMapConv.apply(x, weight, groups)
    H, W = x.shape[-2:]
    return _dense_conv(_group_rows(x, groups), _dense_matrix_t(weight, groups, H, W), H, W)


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` that runs :func:`small_map_conv2d` on CPU where that is faster
    (:func:`small_map_conv_is_faster`; stride 1, "same" zero padding, no bias) and
    ``F.conv2d`` everywhere else (other geometries, other devices).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        same = (
            self.kernel_size == (k, k) and k % 2 == 1 and self.padding == (k // 2, k // 2)
            and self.stride == (1, 1) and self.dilation == (1, 1) and self.bias is None
            and self.padding_mode == "zeros"
        )  # fmt: skip
        cin, cout = self.in_channels // self.groups, self.out_channels // self.groups
        measured = x.device.type == "cpu"  # the choice was measured on CPU only
        if (
            same
            and measured
            and small_map_conv_is_faster(x.shape[-2], x.shape[-1], k, cin, cout, len(x))
        ):
            return small_map_conv2d(x, self.weight, self.groups)
        return super().forward(x)
