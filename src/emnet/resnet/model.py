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

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from emnet._checks import check_int
from emnet.resnet.small_map_conv import SmallMapConv2d


def _check_width(width: object, name: str) -> int:
    return check_int(width, name, 1)


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


class _Trunk(nn.Module):
    """What ``ResNet`` and ``PackedResNet`` share: the stem, the block and the pooling,
    for S models side by side (S = 1: the write-up's network). Model ``s`` owns input
    channel ``s`` and channels ``s*C .. (s+1)*C - 1`` of every layer."""

    def __init__(self, C: int, n_models: int, num_classes: int, small_map: bool) -> None:
        super().__init__()
        self.width = C = _check_width(C, "C")
        self.n_models = S = _check_width(n_models, "n_models")
        self.num_classes = _check_width(num_classes, "num_classes")
        self.conv = nn.Conv2d(S, S * C, 3, stride=2, padding=1, bias=False, groups=S)
        self.bn = nn.BatchNorm2d(S * C)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.block = Block(S * C, groups=S, small_map=small_map)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, S, H, W) images → (N, S, C) pooled features."""
        h = self.pool(self.relu(self.bn(self.conv(x))))  # (N, S·C, ⌈H/4⌉, ⌈W/4⌉)
        h = self.flatten(self.avgpool(self.block(h)))  # (N, S·C)
        return h.view(x.shape[0], self.n_models, self.width)


class ResNet(_Trunk):
    """Conv(1→C, 3×3, stride 2) → BN → ReLU → MaxPool(2) → Block(C) → AvgPool → Linear(C, 10).

    Input (N, 1, H, W); output logits (N, num_classes).
    """

    def __init__(self, C: int, num_classes: int = 10) -> None:
        super().__init__(C, 1, num_classes, small_map=False)
        self.fc = nn.Linear(self.width, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)[:, 0])  # (N, C) → (N, num_classes)


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
        self.bias = nn.Parameter(torch.empty(n_models, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each model's map as a fresh ``nn.Linear(C, K)`` would be (same draws, same order)."""
        bound = 1 / math.sqrt(self.weight.shape[2]) if self.weight.shape[2] else 0.0
        with torch.no_grad():
            for weight, bias in zip(self.weight, self.bias):
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
                nn.init.uniform_(bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nsc,skc->nsk", x, self.weight) + self.bias


class PackedResNet(_Trunk):
    """S independent ``ResNet(C)`` models in one module.

    Input (N, S, H, W) — channel ``s`` is model ``s``'s image — and output logits
    (N, S, num_classes). Build it with :func:`pack` from S ``ResNet`` instances.
    """

    def __init__(self, C: int, n_models: int, num_classes: int = 10) -> None:
        super().__init__(C, n_models, num_classes, small_map=True)
        self.fc = GroupedLinear(self.n_models, self.width, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))  # (N, S, C) → (N, S, num_classes)

    def unpack(self, index: int) -> ResNet:
        """A standalone ``ResNet(C)`` with model ``index``'s weights and BatchNorm statistics."""
        if not 0 <= index < self.n_models:
            raise ValueError(f"index: expected 0 <= index < {self.n_models}, got {index}")
        net = ResNet(self.width, self.num_classes).to(self.fc.weight.device)
        own = self.state_dict()
        net.load_state_dict(
            {name: _model_entry(name, own[name], index, self.width) for name in net.state_dict()}
        )
        return net


def _layout(name: str) -> str:
    """How a ``ResNet`` state entry sits in the packed state (the one rule :func:`pack` and
    :meth:`PackedResNet.unpack` follow): "stacked" (the classifier: model ``s`` at index
    ``s`` of a new first axis), "shared" (BatchNorm's step counter, equal in every model)
    or "channels" (everything else: model ``s``'s channels ``s*C .. (s+1)*C - 1``)."""
    if name.startswith("fc."):
        return "stacked"
    if name.endswith("num_batches_tracked"):
        return "shared"
    return "channels"


def _model_entry(name: str, packed: torch.Tensor, index: int, C: int) -> torch.Tensor:
    layout = _layout(name)
    if layout == "stacked":
        return packed[index]
    if layout == "shared":
        return packed
    return packed[index * C : (index + 1) * C]


def _packed_entry(name: str, parts: Sequence[torch.Tensor]) -> torch.Tensor:
    layout = _layout(name)
    if layout == "stacked":
        return torch.stack(list(parts))
    if layout == "shared":
        return parts[0]
    return torch.cat(list(parts))


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
    packed.load_state_dict(
        {name: _packed_entry(name, [s[name] for s in states]) for name in packed.state_dict()}
    )
    return packed


def packed_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over models of each model's mean cross-entropy; logits (N, S, K), targets (N, S)."""
    n = logits.shape[0]
    return (
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        / n
    )
