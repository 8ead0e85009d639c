"""Training loops: the fast exact loop and the packed loop that trains several seeds of one
width at once (the plain DataLoader loop they are checked against is the tests' oracle,
``tests/test_resnet.py``).

All loops draw each epoch's batch order exactly as ``DataLoader(..., shuffle=True,
generator=g)`` does (see :func:`epoch_order`), so given the same generator they visit the
same batches in the same order and produce the same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emnet._checks import check_int
from emnet.resnet.model import PackedResNet, packed_loss

ArrayPair = Any  # (images, labels) as numpy arrays or tensors; emnet.data.Split qualifies

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")

EVAL_CHUNK = 256  # samples per forward pass when PackedTrainer evaluates a whole set


class SingleSampleBatchWarning(UserWarning):
    """The last batch of every epoch holds one sample (BatchNorm statistics of one image)."""


def last_batch_size(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Size of the last batch of an epoch over ``n`` samples (0 when none is left)."""
    rest = n % batch_size
    if rest == 0:
        return batch_size if n else 0
    return 0 if drop_last else rest


def warn_single_sample_batch(n: int, batch_size: int, drop_last: bool, stacklevel: int = 3) -> bool:
    """Warn (and return True) when every epoch would end on a batch of one sample."""
    if not drop_last and batch_size > 1 and n % batch_size == 1:
        warnings.warn(
            f"{n} training samples with batch size {batch_size} leave a last batch of one "
            "sample every epoch; its BatchNorm statistics spoil the running averages "
            "(use drop_last=True / --drop-last to skip it)",
            SingleSampleBatchWarning,
            stacklevel=stacklevel,
        )
        return True
    return False


def as_tensors(
    data: ArrayPair, name: str, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images float32 (n, 1, H, W), labels int64 (n,)) on ``device`` from arrays or tensors."""
    try:
        images, labels = data
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a pair (images, labels)") from None
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    y = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{name}: images must have shape (n, 1, H, W), got {tuple(x.shape)}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{name}: expected {x.shape[0]} labels, got shape {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: the data set is empty")
    return x.to(device=device, dtype=torch.float32), y.to(device=device, dtype=torch.int64)


def epoch_order(n: int, generator: torch.Generator) -> torch.Tensor:
    """This epoch's sample order, drawn exactly like ``DataLoader(shuffle=True, generator=g)``.

    Each epoch the DataLoader iterator first draws its base seed (one int64) from
    ``generator``; torch's ``RandomSampler`` then yields ``randperm(n)`` and, iterated to the
    end, draws one more (empty-sliced) ``randperm(n)``. Drawing all three keeps
    ``generator`` in step with the DataLoader's.
    """
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    order = torch.randperm(n, generator=generator)
    torch.randperm(n, generator=generator)
    return order


def batch_slices(n: int, batch_size: int, drop_last: bool) -> list[slice]:
    stop = n - n % batch_size if drop_last else n
    return [slice(i, min(i + batch_size, n)) for i in range(0, stop, batch_size)]


def make_optimizer(
    params: Any, optimizer: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """``"sgd"`` (plain), ``"momentum"`` (SGD with ``momentum``), ``"adam"`` or ``"adamw"``.

    Every one updates each weight from its own gradient and state only, which is what lets
    packed models train exactly like separate ones. All use the multi-tensor (``foreach``)
    implementation: the same arithmetic per weight in a few kernels instead of a loop.
    """
    kw: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay, "foreach": True}
    if optimizer == "sgd":
        return torch.optim.SGD(params, **kw)
    if optimizer == "momentum":
        return torch.optim.SGD(params, momentum=momentum, **kw)
    if optimizer == "adam":
        return torch.optim.Adam(params, **kw)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, **kw)
    raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")


def train_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimisation step on ``loss`` (every loop here trains through this)."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


@torch.no_grad()
def evaluate(
    net: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    """(loss, accuracy) of ``net`` on the whole set in one pass, in eval mode."""
    was_training = net.training
    net.eval()
    logits = net(x)
    loss = float(loss_fn(logits, y))
    acc = float((logits.argmax(1) == y).double().mean())
    net.train(was_training)
    return loss, acc


def fit_and_validate(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train: ArrayPair,
    test: ArrayPair,
    n_epochs: int,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    history: dict[str, list[float]] | None = None,
) -> tuple[list[float], list[float]]:
    """Train ``net`` for ``n_epochs`` and return (train_losses, test_losses), n_epochs + 1 each.

    The losses are ``loss_fn`` (a mean, e.g. ``nn.CrossEntropyLoss()``) over the whole train
    and test set in eval mode without gradients: once before training, then after every
    epoch. Each epoch shuffles like ``DataLoader(shuffle=True, generator=generator)`` and
    slices the batches out of whole tensors on the model's device; the numbers equal that
    DataLoader loop's. ``history``, if given, also receives ``train_acc`` and ``test_acc``.
    """
    n_epochs = check_int(n_epochs, "n_epochs", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    try:
        device = next(net.parameters()).device
    except StopIteration:
        raise ValueError("net: the model has no parameters") from None
    x, y = as_tensors(train, "train", device)
    xt, yt = as_tensors(test, "test", device)
    if generator is None:
        generator = torch.Generator()
        generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
    warn_single_sample_batch(len(x), batch_size, drop_last)
    slices = batch_slices(len(x), batch_size, drop_last)
    hist = history if history is not None else {}
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        hist.setdefault(key, [])

    def record() -> None:
        for split, (a, b) in (("train", (x, y)), ("test", (xt, yt))):
            loss, acc = evaluate(net, loss_fn, a, b)
            hist[f"{split}_loss"].append(loss)
            hist[f"{split}_acc"].append(acc)

    record()
    for _ in range(n_epochs):
        net.train()
        order = epoch_order(len(x), generator).to(device)
        for sl in slices:
            idx = order[sl]
            train_step(optimizer, loss_fn(net(x[idx]), y[idx]))
        record()
    return list(hist["train_loss"]), list(hist["test_loss"])


class PackedTrainer:
    """Trains a :class:`PackedResNet` (S seeds of one width) one epoch at a time.

    Model ``s`` shuffles with its own generator, exactly as its single-model run would, so
    every model's curves equal :func:`fit_and_validate` on that model alone (to float
    rounding). The network is switched to channels-last memory layout, which makes the
    grouped convolutions and BatchNorms 1.3–1.7× faster on CPU.
    """

    def __init__(
        self,
        net: PackedResNet,
        optimizer: torch.optim.Optimizer,
        generators: Sequence[torch.Generator],
        train: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        batch_size: int,
        drop_last: bool = False,
    ) -> None:
        if len(generators) != net.n_models:
            raise ValueError(f"generators: expected {net.n_models}, got {len(generators)}")
        self.net, self.optimizer, self.generators = net, optimizer, list(generators)
        net.to(memory_format=torch.channels_last)  # in place: the optimizer keeps its tensors
        device = net.fc.weight.device
        self.x, self.y = (t.to(device) for t in train)
        self.xt, self.yt = (t.to(device) for t in test)
        self.images = self.x[:, 0]  # (n, H, W)
        S = net.n_models
        # every model sees the whole set at evaluation: model s reads channel s
        self.eval_inputs = [
            x.expand(-1, S, -1, -1).contiguous(memory_format=torch.channels_last)
            for x in (self.x, self.xt)
        ]
        self.slices = batch_slices(len(self.x), batch_size, drop_last)

    def train_epoch(self) -> None:
        net, device = self.net, self.x.device
        orders = torch.stack([epoch_order(len(self.x), g) for g in self.generators]).to(device)
        net.train()
        for sl in self.slices:
            idx = orders[:, sl]  # (S, b)
            xb = self.images[idx].permute(1, 0, 2, 3)  # (b, S, H, W)
            xb = xb.contiguous(memory_format=torch.channels_last)
            yb = self.y[idx].t()  # (b, S)
            train_step(self.optimizer, packed_loss(net(xb), yb))

    @torch.no_grad()
    def evaluate(self) -> dict[str, np.ndarray]:
        """Per-model mean cross-entropy and accuracy on the whole train and test sets.

        The sets go through in chunks of ``EVAL_CHUNK`` samples: eval mode makes every
        sample's output independent of the others, and chunks whose activations fit in the
        CPU cache run about twice as fast as one pass over all 1,617 samples.
        """
        net, S = self.net, self.net.n_models
        was_training = net.training
        net.eval()
        out: dict[str, np.ndarray] = {}
        splits = (("train", self.eval_inputs[0], self.y), ("test", self.eval_inputs[1], self.yt))
        for split, x, y in splits:
            losses, hits = [], []
            for start in range(0, len(x), EVAL_CHUNK):
                logits = net(x[start : start + EVAL_CHUNK])  # (b, S, K)
                targets = y[start : start + EVAL_CHUNK, None].expand(-1, S)
                losses.append(F.cross_entropy(logits.permute(0, 2, 1), targets, reduction="none"))
                hits.append(logits.argmax(2) == targets)
            out[f"{split}_loss"] = torch.cat(losses).mean(0).double().cpu().numpy()
            out[f"{split}_acc"] = torch.cat(hits).double().mean(0).cpu().numpy()
        net.train(was_training)
        return out
