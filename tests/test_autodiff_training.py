"""Training with emnet.autodiff follows torch step for step (float64, 1e-8).

A 2-layer MLP and a small CNN (conv2d → relu → max_pool2d → linear → cross_entropy) are
trained by plain minibatch SGD on scikit-learn's digits, once with the engine and once
with torch from the same initial weights and the same minibatches; the per-step loss
trajectories and the final weights must agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emnet.autodiff import Tensor
from emnet.data import digits

BATCH = 50


@pytest.fixture(scope="module")
def digit_subset() -> tuple[np.ndarray, np.ndarray]:
    train, _ = digits(normalize="unit")
    return train.images[:300].astype(np.float64), train.labels[:300]


def minibatches(n: int, epochs: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(epochs):
        order = rng.permutation(n)
        batches.extend(order[i : i + BATCH] for i in range(0, n, BATCH))
    return batches


def sgd_engine(
    params: list[np.ndarray],
    loss_fn: Callable[[Sequence[Tensor], Tensor, np.ndarray], Tensor],
    images: np.ndarray,
    labels: np.ndarray,
    batches: list[np.ndarray],
    lr: float,
) -> tuple[list[float], list[np.ndarray]]:
    weights = [Tensor(p, requires_grad=True) for p in params]
    losses = []
    for idx in batches:
        loss = loss_fn(weights, Tensor(images[idx]), labels[idx])
        for w in weights:
            w.zero_grad()
        loss.backward()
        for w in weights:
            w.data -= lr * w.grad
        losses.append(loss.item())
    return losses, [w.data for w in weights]


def sgd_torch(
    params: list[np.ndarray],
    loss_fn: Callable[[Sequence[torch.Tensor], torch.Tensor, torch.Tensor], torch.Tensor],
    images: np.ndarray,
    labels: np.ndarray,
    batches: list[np.ndarray],
    lr: float,
) -> tuple[list[float], list[np.ndarray]]:
    weights = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    losses = []
    for idx in batches:
        loss = loss_fn(weights, torch.tensor(images[idx]), torch.tensor(labels[idx]))
        loss.backward()
        with torch.no_grad():
            for w in weights:
                w -= lr * w.grad
                w.grad = None
        losses.append(loss.item())
    return losses, [w.detach().numpy() for w in weights]


def init(rng: np.random.Generator, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    params = []
    for shape in shapes:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        params.append(rng.normal(scale=1.0 / np.sqrt(fan_in), size=shape))
    return params


def assert_same_training(
    ours: tuple[list[float], list[np.ndarray]], theirs: tuple[list[float], list[np.ndarray]]
) -> None:
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-8, atol=1e-10, err_msg="losses")
    for k, (a, b) in enumerate(zip(ours[1], theirs[1])):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=f"parameter {k}")
    losses = ours[0]
    steps_per_epoch = len(losses) // 3
    assert np.mean(losses[-steps_per_epoch:]) < 0.8 * np.mean(losses[:steps_per_epoch])


def mlp_engine(p: Sequence[Tensor], x: Tensor, y: np.ndarray) -> Tensor:
    w1, b1, w2, b2 = p
    hidden = (x.reshape(len(x), -1) @ w1 + b1).tanh()
    return (hidden @ w2 + b2).cross_entropy(y)


def mlp_torch(p: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2 = p
    hidden = torch.tanh(x.reshape(len(x), -1) @ w1 + b1)
    return F.cross_entropy(hidden @ w2 + b2, y)


def test_mlp_trains_like_torch(digit_subset) -> None:
    images, labels = digit_subset
    rng = np.random.default_rng(1)
    w1, w2 = init(rng, (64, 32), (32, 10))
    params = [w1, np.zeros(32), w2, np.zeros(10)]
    batches = minibatches(len(images), epochs=3)
    lr = 0.1
    assert_same_training(
        sgd_engine(params, mlp_engine, images, labels, batches, lr),
        sgd_torch(params, mlp_torch, images, labels, batches, lr),
    )


def cnn_engine(p: Sequence[Tensor], x: Tensor, y: np.ndarray) -> Tensor:
    conv_w, conv_b, fc_w, fc_b = p
    features = x.conv2d(conv_w, conv_b, stride=1, padding=1).relu().max_pool2d(2)
    return (features.reshape(len(x), -1) @ fc_w.T + fc_b).cross_entropy(y)


def cnn_torch(p: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    conv_w, conv_b, fc_w, fc_b = p
    features = F.max_pool2d(torch.relu(F.conv2d(x, conv_w, conv_b, stride=1, padding=1)), 2)
    return F.cross_entropy(F.linear(features.reshape(len(x), -1), fc_w, fc_b), y)


def test_cnn_trains_like_torch(digit_subset) -> None:
    images, labels = digit_subset
    rng = np.random.default_rng(2)
    conv_w, fc_w = init(rng, (6, 1, 3, 3), (10, 6 * 4 * 4))
    params: list[Any] = [conv_w, rng.normal(scale=0.1, size=6), fc_w, np.zeros(10)]
    batches = minibatches(len(images), epochs=3, seed=1)
    lr = 0.5
    assert_same_training(
        sgd_engine(params, cnn_engine, images, labels, batches, lr),
        sgd_torch(params, cnn_torch, images, labels, batches, lr),
    )
