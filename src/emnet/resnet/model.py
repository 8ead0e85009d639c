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

import torch
from torch import nn
from torch.nn import functional as F


def _check_width(width: object, name: str = "width") -> int:
    if isinstance(width, bool) or not isinstance(width, int):
        raise TypeError(f"{name}: expected an integer number of channels, got {width!r}")
    if width < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {width}")
    return width


class Block(nn.Module):
    """Residual block: ReLU(x + BN(Conv(ReLU(BN(Conv(x)))))), C → C channels (SPEC §3)."""

    def __init__(self, C: int, groups: int = 1) -> None:
        super().__init__()
        C = _check_width(C, "C")
        self.conv1 = nn.Conv2d(C, C, 3, stride=1, padding=1, bias=False, groups=groups)
        self.bn1 = nn.BatchNorm2d(C)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(C, C, 3, stride=1, padding=1, bias=False, groups=groups)
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
        self.block = Block(S * C, groups=S)
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
