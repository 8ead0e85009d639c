"""The ResNet of SPEC §3, and the same network packed S times into one module.

``ResNet(C)`` is the write-up's model. ``PackedResNet(C, S)`` holds S independent copies
of it side by side: every convolution is grouped (``groups = S``), BatchNorm is
per-channel anyway, and the classifier is a grouped linear layer. Model ``s`` owns
channels ``s*C .. (s+1)*C - 1`` of every layer and sees only its own input channel, so
the packed forward pass is S separate forward passes, and the gradient of the *sum* of
the S per-model losses with respect to model ``s``'s weights is exactly the gradient of
model ``s``'s own loss. Any optimizer that updates each weight from its own gradient and
state alone (SGD with or without momentum and weight decay, Adam, AdamW) therefore trains
S independent models; :func:`pack` / :meth:`PackedResNet.unpack` convert losslessly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def _check_width(width: object, name: str = "width") -> int:
    if isinstance(width, bool) or not isinstance(width, int):
        raise TypeError(f"{name}: expected an integer number of channels, got {width!r}")
    if width < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {width}")
    return width


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


class Block(nn.Module):
    """Residual block: ReLU(x + BN(Conv(ReLU(BN(Conv(x)))))), C → C channels (SPEC §3)."""

    def __init__(self, C: int, groups: int = 1, small_map: bool = False) -> None:
        super().__init__()
        C = _check_width(C, "C")
        conv = SmallMapConv2d if small_map else nn.Conv2d
        self.conv1 = conv(C, C, 3, stride=1, padding=1, bias=False, groups=groups)
        self.bn1 = nn.BatchNorm2d(C)
        self.relu = nn.ReLU()
        self.conv2 = conv(C, C, 3, stride=1, padding=1, bias=False, groups=groups)
        self.bn2 = nn.BatchNorm2d(C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        return self.relu(x + self.bn2(self.conv2(h)))


class ResNet(nn.Module):
    """Conv(1→C, 3×3, stride 2) → BN → ReLU → MaxPool(2) → Block(C) → AvgPool → Linear(C, 10).

    Input (N, 1, H, W); output logits (N, num_classes).
    """

    def __init__(self, C: int, num_classes: int = 10) -> None:
        super().__init__()
        self.width = _check_width(C, "C")
        self.num_classes = _check_width(num_classes, "num_classes")
        self.conv = nn.Conv2d(1, C, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(C)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.block = Block(C)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.relu(self.bn(self.conv(x))))
        return self.fc(self.flatten(self.avgpool(self.block(h))))


def count_parameters(net: nn.Module) -> int:
    """Number of trainable scalars in ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def resnet_parameter_count(C: int, num_classes: int = 10) -> int:
    """Closed form of ``count_parameters(ResNet(C))``: 18·C² + (15 + num_classes)·C + num_classes.

    conv 9C, three BatchNorms 2C each, two block convs 9C² each, linear (C + 1)·num_classes.
    """
    C = _check_width(C, "C")
    return 9 * C + 3 * 2 * C + 2 * 9 * C * C + (C + 1) * num_classes


def make_resnet(C: int, seed: int, num_classes: int = 10) -> ResNet:
    """``ResNet(C)`` initialised from ``torch.manual_seed(seed)`` (PyTorch's default init)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNet(C, num_classes)


class GroupedLinear(nn.Module):
    """S independent linear maps: (N, S, C) → (N, S, K), weight (S, K, C), bias (S, K)."""

    def __init__(self, n_models: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_models, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(n_models, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nsc,skc->nsk", x, self.weight) + self.bias


class PackedResNet(nn.Module):
    """S independent ``ResNet(C)`` models in one module.

    Input (N, S, H, W) — channel ``s`` is model ``s``'s image — and output logits
    (N, S, num_classes). Build it with :func:`pack` from S ``ResNet`` instances.
    """

    def __init__(self, C: int, n_models: int, num_classes: int = 10) -> None:
        super().__init__()
        self.width = _check_width(C, "C")
        self.n_models = S = _check_width(n_models, "n_models")
        self.num_classes = num_classes
        self.conv = nn.Conv2d(S, S * C, 3, stride=2, padding=1, bias=False, groups=S)
        self.bn = nn.BatchNorm2d(S * C)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.block = Block(S * C, groups=S, small_map=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = GroupedLinear(S, C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.relu(self.bn(self.conv(x))))
        h = self.avgpool(self.block(h)).view(x.shape[0], self.n_models, self.width)
        return self.fc(h)

    def unpack(self, index: int) -> ResNet:
        """A standalone ``ResNet(C)`` with model ``index``'s weights and BatchNorm statistics."""
        if not 0 <= index < self.n_models:
            raise ValueError(f"index: expected 0 <= index < {self.n_models}, got {index}")
        net = ResNet(self.width, self.num_classes).to(self.fc.weight.device)
        C = self.width
        channels = slice(index * C, (index + 1) * C)
        state = {}
        own = self.state_dict()
        for name in net.state_dict():
            src = own[name]
            if name.startswith("fc."):
                state[name] = src[index]
            elif name.endswith("num_batches_tracked"):
                state[name] = src
            else:
                state[name] = src[channels]
        net.load_state_dict(state)
        return net


def pack(models: Sequence[ResNet]) -> PackedResNet:
    """Pack ``models`` (all ``ResNet`` of one width) into one :class:`PackedResNet`."""
    if not models:
        raise ValueError("models: expected at least one ResNet")
    first = models[0]
    for m in models:
        if not isinstance(m, ResNet):
            raise TypeError(f"models: expected ResNet instances, got {type(m).__name__}")
        if m.width != first.width or m.num_classes != first.num_classes:
            raise ValueError("models: all models must have the same width and num_classes")
    packed = PackedResNet(first.width, len(models), first.num_classes)
    packed = packed.to(first.fc.weight.device)
    states = [m.state_dict() for m in models]
    state = {}
    for name in packed.state_dict():
        parts = [s[name] for s in states]
        if name.startswith("fc."):
            state[name] = torch.stack(parts)
        elif name.endswith("num_batches_tracked"):
            state[name] = parts[0]
        else:
            state[name] = torch.cat(parts)
    packed.load_state_dict(state)
    return packed


def packed_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over models of each model's mean cross-entropy; logits (N, S, K), targets (N, S)."""
    n = logits.shape[0]
    return (
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        / n
    )
