"""Training demos for the engine: an MLP on two moons (micrograd's demo) and a LeNet-style
CNN on the 8×8 digits, its loss curve next to torch's from the same initial weights.

The training functions return plain numbers (curves, grids); the plot functions build a
:class:`matplotlib.figure.Figure` with its own Agg canvas (no pyplot state). Imported on
demand only: scikit-learn (``make_moons``), matplotlib and torch (the comparison curve)
are imported inside the functions that need them, so ``emnet.autodiff`` stays numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from emnet.autodiff import nn, optim
from emnet.autodiff.tensor import Tensor, no_grad

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CNNCurves",
    "MoonsResult",
    "lenet_digits",
    "plot_cnn_curves",
    "plot_moons",
    "train_cnn",
    "train_moons",
]


# ---------------------------------------------------------------------- two moons
@dataclass
class MoonsResult:
    """An MLP trained on two moons: data (labels ±1), per-step loss and accuracy, the
    decision function on a grid (``grid_x``, ``grid_y``, ``grid_score``)."""

    model: nn.MLP
    X: np.ndarray
    y: np.ndarray
    losses: list[float]
    accuracies: list[float]
    grid_x: np.ndarray = field(repr=False)
    grid_y: np.ndarray = field(repr=False)
    grid_score: np.ndarray = field(repr=False)

    @property
    def accuracy(self) -> float:
        return self.accuracies[-1]


def train_moons(
    steps: int = 200,
    n_samples: int = 100,
    noise: float = 0.1,
    hidden: tuple[int, ...] = (16, 16),
    alpha: float = 1e-4,
    seed: int = 1,
) -> MoonsResult:
    """micrograd's demo with the engine: MLP(2, 16, 16, 1), binary hinge loss plus
    ``alpha``·‖w‖², full-batch SGD with the learning rate falling from 1.0 to 0.1."""
    from sklearn.datasets import make_moons

    if steps < 1:
        raise ValueError(f"steps: expected at least 1, got {steps}")
    X, labels = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    y = labels * 2.0 - 1.0
    model = nn.MLP([2, *hidden, 1], activation="relu", rng=seed)
    opt = optim.SGD(model.parameters(), lr=1.0)
    inputs = Tensor(X)
    losses, accuracies = [], []
    for k in range(steps):
        scores = model(inputs).reshape(-1)
        data_loss = nn.hinge(scores, y)
        reg = sum((p * p).sum() for p in model.parameters())
        loss = data_loss + alpha * reg
        opt.zero_grad()
        loss.backward()
        opt.lr = 1.0 - 0.9 * k / steps
        opt.step()
        losses.append(loss.item())
        accuracies.append(float(np.mean((scores.data > 0) == (y > 0))))
    with no_grad():
        final = model(inputs).data.reshape(-1)
    accuracies[-1] = float(np.mean((final > 0) == (y > 0)))
    gx, gy = np.meshgrid(
        np.linspace(X[:, 0].min() - 1, X[:, 0].max() + 1, 160),
        np.linspace(X[:, 1].min() - 1, X[:, 1].max() + 1, 120),
    )
    with no_grad():
        score = model(Tensor(np.c_[gx.ravel(), gy.ravel()])).data.reshape(gx.shape)
    return MoonsResult(model, X, y, losses, accuracies, gx, gy, score)


def plot_moons(result: MoonsResult) -> Figure:
    """The decision boundary (score = 0) over the two classes, and the loss per step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 4.0))
    FigureCanvasAgg(fig)
    ax, ax_loss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    ax.contourf(
        result.grid_x,
        result.grid_y,
        result.grid_score > 0,
        levels=[-0.5, 0.5, 1.5],
        colors=["#f6d5c3", "#c9dcf0"],
        alpha=0.9,
    )
    ax.contour(
        result.grid_x, result.grid_y, result.grid_score, levels=[0.0], colors="k", linewidths=1
    )
    for label, color, marker in ((-1.0, "tab:red", "o"), (1.0, "tab:blue", "s")):
        pts = result.X[result.y == label]
        ax.scatter(pts[:, 0], pts[:, 1], c=color, marker=marker, s=22, edgecolors="k", lw=0.4)
    ax.set_xlim(result.grid_x.min(), result.grid_x.max())
    ax.set_ylim(result.grid_y.min(), result.grid_y.max())
    sizes = " → ".join(str(s) for s in result.model.sizes)
    ax.set_title(f"MLP {sizes} (ReLU), accuracy {result.accuracy:.0%}", fontsize=10)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax_loss.plot(np.arange(1, len(result.losses) + 1), result.losses, color="tab:blue", lw=1.8)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("SGD step (full batch)")
    ax_loss.set_ylabel("hinge loss + 10⁻⁴‖w‖²")
    ax_loss.set_title("training loss", fontsize=10)
    ax_loss.grid(alpha=0.3, which="both")
    fig.suptitle("two moons, trained with emnet.autodiff", fontsize=11)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- digits CNN
def lenet_digits(rng: nn.RNG = 0) -> nn.Sequential:
    """A LeNet-style CNN for 1×8×8 digits: two conv(3×3, padding 1) → ReLU → max-pool(2)
    blocks (6 and 16 channels), then 64 → 32 → 10 fully connected."""
    gen = nn._rng(rng)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1, rng=gen),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 3, padding=1, rng=gen),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 32, rng=gen),
        nn.ReLU(),
        nn.Linear(32, 10, rng=gen),
    )


def _torch_lenet() -> Any:
    import torch

    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 2 * 2, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    ).double()


@dataclass
class CNNCurves:
    """Per-step training losses of the engine (and of torch, from the same initial weights
    and minibatches), and each one's test accuracy after training."""

    losses: list[float]
    test_accuracy: float
    torch_losses: list[float] | None = None
    torch_test_accuracy: float | None = None
    batch_size: int = 32
    epochs: int = 1

    @property
    def max_abs_difference(self) -> float:
        if self.torch_losses is None:
            return float("nan")
        return float(np.max(np.abs(np.array(self.losses) - np.array(self.torch_losses))))


def _batches(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        order = rng.permutation(n)
        out.extend(order[i : i + batch_size] for i in range(0, n, batch_size))
    return out


def train_cnn(
    epochs: int = 8,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.9,
    seed: int = 0,
    with_torch: bool = True,
    max_steps: int | None = None,
) -> CNNCurves:
    """Train :func:`lenet_digits` on the 1,617 training digits (scaled to [0, 1]) with
    SGD + momentum, in float64; with ``with_torch`` the same network in torch (imported
    here) is trained from the same initial weights on the same minibatches."""
    from emnet.data import digits

    train, test = digits(normalize="unit")
    x_train, y_train = train.images.astype(np.float64), train.labels
    x_test, y_test = test.images.astype(np.float64), test.labels
    batches = _batches(len(x_train), batch_size, epochs, seed)[:max_steps]
    model = lenet_digits(rng=seed)
    initial = model.state_dict()
    opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    for idx in batches:
        loss = nn.cross_entropy(model(Tensor(x_train[idx])), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with no_grad():
        predicted = model(Tensor(x_test)).data.argmax(axis=1)
    result = CNNCurves(
        losses, float(np.mean(predicted == y_test)), batch_size=batch_size, epochs=epochs
    )
    if with_torch:
        result.torch_losses, result.torch_test_accuracy = _train_cnn_torch(
            initial, x_train, y_train, x_test, y_test, batches, lr, momentum
        )
    return result


def _train_cnn_torch(
    initial: dict[str, np.ndarray],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    batches: list[np.ndarray],
    lr: float,
    momentum: float,
) -> tuple[list[float], float]:
    import torch
    import torch.nn.functional as F

    net = _torch_lenet()
    net.load_state_dict({k: torch.tensor(v) for k, v in initial.items()}, strict=True)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    xt, yt = torch.tensor(x_train), torch.tensor(y_train)
    losses = []
    for idx in batches:
        index = torch.from_numpy(idx)
        loss = F.cross_entropy(net(xt[index]), yt[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        predicted = net(torch.tensor(x_test)).argmax(dim=1).numpy()
    return losses, float(np.mean(predicted == y_test))


def plot_cnn_curves(curves: CNNCurves) -> Figure:
    """The engine's per-step loss with torch's on top (they coincide), and below it the
    absolute difference of the two per step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with_torch = curves.torch_losses is not None
    fig = Figure(figsize=(7.2, 4.8 if with_torch else 3.6))
    FigureCanvasAgg(fig)
    if with_torch:
        ax, ax_diff = fig.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [2.4, 1], "hspace": 0.08}
        )
    else:
        ax, ax_diff = fig.add_subplot(), None
    steps = np.arange(1, len(curves.losses) + 1)
    ax.plot(
        steps,
        curves.losses,
        color="tab:blue",
        lw=2.6,
        alpha=0.5,
        label=f"emnet.autodiff (test accuracy {curves.test_accuracy:.1%})",
    )
    per_epoch = len(curves.losses) / max(curves.epochs, 1)
    axes = [ax] if ax_diff is None else [ax, ax_diff]
    for a in axes:
        for e in range(1, curves.epochs):
            a.axvline(e * per_epoch, color="0.8", lw=0.8, zorder=0)
        a.grid(alpha=0.3, which="major")
    ax.set_yscale("log")
    ax.set_ylabel("cross-entropy")
    title = f"LeNet-style CNN on the 8×8 digits, {curves.epochs} epochs"
    ax.set_title(title, fontsize=10)
    if ax_diff is not None and curves.torch_losses is not None:
        ax.plot(
            steps,
            curves.torch_losses,
            color="k",
            lw=0.8,
            ls="--",
            label="torch from the same initial weights and batches "
            f"(test accuracy {curves.torch_test_accuracy:.1%})",
        )
        diff = np.abs(np.array(curves.losses) - np.array(curves.torch_losses))
        ax_diff.semilogy(steps, np.maximum(diff, 1e-17), ".", ms=2.5, color="tab:red")
        ax_diff.set_ylim(1e-17, 1e-11)
        ax_diff.set_ylabel("|Δ loss|")
        ax_diff.set_xlabel(f"SGD step (batch {curves.batch_size}, momentum 0.9); 0 shown as 1e-17")
    else:
        ax.set_xlabel(f"SGD step (batch {curves.batch_size}, momentum 0.9)")
    ax.legend(fontsize=8.5, loc="lower left")
    fig.subplots_adjust(left=0.11, right=0.98, top=0.93, bottom=0.11)
    return fig
