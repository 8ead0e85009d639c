"""Neural-network modules and losses on the engine, in the style of micrograd's ``nn.py``.

A :class:`Module` finds its parameters by looking at its attributes: every Tensor with
``requires_grad=True`` is a parameter, every Module (or list of Modules) a child.
Parameter names follow torch's (``"0.weight"`` inside a :class:`Sequential`), so a
:meth:`Module.state_dict` loads into the same torch network and back.

Initialisation is torch's default, drawn from an explicit numpy ``rng`` (a
``np.random.Generator`` or an int seed; never a global RNG): weights Kaiming-uniform with
a = √5, i.e. U(−1/√fan_in, 1/√fan_in), and biases U(−1/√fan_in, 1/√fan_in).

>>> import numpy as np
>>> from emnet.autodiff import Tensor, nn
>>> model = nn.MLP([2, 16, 1], activation="tanh", rng=0)
>>> [name for name, _ in model.named_parameters()]
['0.weight', '0.bias', '2.weight', '2.bias']
>>> model(Tensor(np.zeros((5, 2)))).shape
(5, 1)
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emnet._io import atomic_path
from emnet.autodiff.tensor import Tensor

__all__ = [
    "MLP",
    "Conv2d",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "cross_entropy",
    "hinge",
    "kaiming_uniform",
    "mse",
]

RNG = np.random.Generator | int | None


def _rng(rng: RNG) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected a numpy Generator, an int seed or None, got {rng!r}")


def kaiming_uniform(
    shape: tuple[int, ...], fan_in: int, rng: np.random.Generator, a: float = math.sqrt(5)
) -> np.ndarray:
    """torch's ``kaiming_uniform_(w, a)``: U(−b, b) with b = √(2 / (1 + a²)) · √(3 / fan_in).

    With torch's default a = √5 for Linear and Conv2d weights, b = 1/√fan_in.
    """
    bound = math.sqrt(2.0 / (1.0 + a * a)) * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape)


def _bias(size: int, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=size)


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


class Module:
    """Base class: ``parameters()``, ``zero_grad()``, ``train()``/``eval()``, state dicts.

    Subclasses assign parameters (Tensors with ``requires_grad=True``) and child modules
    as attributes and define ``forward``; calling the module calls ``forward``.
    """

    training: bool = True

    def forward(self, *args: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any) -> Tensor:
        return self.forward(*args)

    # ---------------------------------------------------------------- structure
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct submodules with their attribute names (``"layers.0"`` for lists)."""
        for key, value in vars(self).items():
            if isinstance(value, Module):
                yield key, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{key}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every parameter with its dotted name (torch's naming), each shared one once."""
        seen: set[int] = set()
        for name, param in self._named_parameters(prefix):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def _named_parameters(self, prefix: str) -> Iterator[tuple[str, Tensor]]:
        for key, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + key, value
        for key, child in self.named_children():
            yield from child._named_parameters(f"{prefix}{key}.")

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        yield self
        for _, child in self.named_children():
            yield from child.modules()

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and every submodule (returns self)."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected a bool, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's values, by name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], *, source: str = "state_dict") -> None:
        """Copy values into the parameters; keys and shapes must match exactly
        (a ValueError names the missing, unexpected or mis-shaped entries and ``source``)."""
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if unexpected:
                parts.append(f"unexpected {unexpected}")
            raise ValueError(
                f"{source}: parameters do not match {type(self).__name__}: " + "; ".join(parts)
            )
        values = {}
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.dtype.kind not in "biuf":
                raise ValueError(f"{source}: {name!r} has dtype {value.dtype}, expected numbers")
            if value.shape != p.shape:
                raise ValueError(
                    f"{source}: {name!r} has shape {value.shape}, the model's is {p.shape}"
                )
            values[name] = value
        for name, p in params.items():  # only after every entry checked out
            p.data = np.array(values[name], dtype=p.dtype, copy=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the parameters to an ``.npz`` file (numpy arrays only, never pickle)."""
        path = Path(path)
        state = self.state_dict()
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **state)
        return path

    def load(self, path: str | os.PathLike[str]) -> Module:
        """Read parameters written by :meth:`save` (``np.load(allow_pickle=False)``),
        checking names and shapes; returns self."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npz archive of parameters ({exc})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: expected an .npz archive of parameters, got one array")
        try:
            with archive:
                state = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npz archive of parameters ({exc})") from None
        self.load_state_dict(state, source=str(path))
        return self

    # ---------------------------------------------------------------- display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({k}): " + repr(m).replace("\n", "\n  ") for k, m in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Linear(Module):
    """``x @ weight.T + bias``: weight (out, in), bias (out,), torch's initialisation."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, rng: RNG = None
    ) -> None:
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        gen = _rng(rng)
        self.weight = Tensor(
            kaiming_uniform((out_features, in_features), in_features, gen), requires_grad=True
        )
        self.bias = (
            Tensor(_bias(out_features, in_features, gen), requires_grad=True) if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        return x.linear(self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution (cross-correlation) of (N, C, H, W) inputs, torch's initialisation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        bias: bool = True,
        *,
        rng: RNG = None,
    ) -> None:
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.kernel_size = (_positive_int(kh, "kernel_size"), _positive_int(kw, "kernel_size"))
        self.stride, self.padding = stride, padding
        fan_in = in_channels * kh * kw
        gen = _rng(rng)
        self.weight = Tensor(
            kaiming_uniform((out_channels, in_channels, kh, kw), fan_in, gen), requires_grad=True
        )
        self.bias = Tensor(_bias(out_channels, fan_in, gen), requires_grad=True) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return x.conv2d(self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


class MaxPool2d(Module):
    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
    ) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return x.max_pool2d(self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Flatten(Module):
    """Merge every axis from ``start_axis`` (default 1: keep the batch axis) into one."""

    def __init__(self, start_axis: int = 1) -> None:
        self.start_axis = start_axis

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_axis)


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... (as in torch)."""

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"modules[{i}]: expected a Module, got {type(m).__name__}")
        self.layers = list(modules)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, m in enumerate(self.layers):
            yield str(i), m

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)


ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


class MLP(Sequential):
    """Linear layers of ``sizes`` (e.g. ``[64, 128, 10]``) with ``activation`` between
    them (none after the last): the same layout and names as torch's
    ``nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))``."""

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | type[Module] = "relu",
        *,
        bias: bool = True,
        rng: RNG = None,
    ) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes: expected at least an input and an output size, got {sizes}")
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(
                    f"activation: expected one of {sorted(ACTIVATIONS)} or a Module class, "
                    f"got {activation!r}"
                )
            act: type[Module] = ACTIVATIONS[activation]
        elif isinstance(activation, type) and issubclass(activation, Module):
            act = activation
        else:
            raise TypeError(f"activation: expected a name or a Module class, got {activation!r}")
        gen = _rng(rng)
        layers: list[Module] = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, bias=bias, rng=gen))
            if k < len(sizes) - 2:
                layers.append(act())
        super().__init__(*layers)
        self.sizes = sizes


# ---------------------------------------------------------------------- losses
def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(logits: Tensor, targets: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of (n, classes) logits against integer targets (torch's
    ``F.cross_entropy``)."""
    return logits.cross_entropy(targets, reduction=reduction)


def mse(prediction: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error (torch's ``F.mse_loss``); shapes must match."""
    target = prediction._lift(target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"mse: prediction {prediction.shape} and target {target.shape} must have one shape"
        )
    diff = prediction - target
    return _reduce(diff * diff, reduction)


def hinge(scores: Tensor, targets: Any, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Hinge loss, binary or multiclass, by the shape of ``scores``.

    * (n,) scores with targets ±1: the binary SVM loss max(0, margin − y·s) (micrograd's
      demo loss).
    * (n, C) scores with integer targets: the multiclass margin loss of torch's
      ``F.multi_margin_loss`` (p = 1): Σ_{j≠y} max(0, margin − s_y + s_j) / C per sample.
    """
    labels = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if scores.ndim == 1:
        if labels.shape != scores.shape or not np.all(np.isin(labels, (-1, 1))):
            raise ValueError(
                f"hinge: binary scores {scores.shape} need targets of the same shape in {{-1, 1}}"
            )
        return _reduce((margin - scores * labels.astype(scores.dtype)).relu(), reduction)
    if scores.ndim != 2:
        raise ValueError(f"hinge: expected scores (n,) or (n, classes), got {scores.shape}")
    n, classes = scores.shape
    if (
        labels.shape != (n,)
        or (labels.size and (labels.min() < 0 or labels.max() >= classes))
        or not np.all(labels == np.round(labels))
    ):
        raise ValueError(
            f"hinge: targets must be {n} integers in [0, {classes}) for scores {scores.shape}"
        )
    rows, picks = np.arange(n), labels.astype(np.intp)
    correct = scores[rows, picks].reshape(n, 1)
    others = np.ones(scores.shape)
    others[rows, picks] = 0.0
    violations = (scores - correct + margin).relu() * others
    return _reduce(violations.sum(axis=1) / float(classes), reduction)
