"""emnet.autodiff.nn and .optim against torch.nn / torch.optim (float64).

Modules with the same weights give torch's outputs and gradients; losses equal torch's
functionals; every optimiser's 50-step trajectory equals torch.optim's to 1e-10; the
initialisation has torch's bounds; state dicts round-trip through npz without pickle.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emnet.autodiff import Tensor, nn, optim

TOL = {"rtol": 1e-10, "atol": 1e-12}


def to_torch_module(model: nn.Module, reference: torch.nn.Module) -> torch.nn.Module:
    """``reference`` in float64 with ``model``'s weights (the names are torch's)."""
    reference = reference.double()
    state = {k: torch.tensor(v) for k, v in model.state_dict().items()}
    reference.load_state_dict(state, strict=True)
    return reference


def lenet(rng: int = 0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, rng=rng + 1),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 2 * 2, 10, rng=rng + 2),
    )


def torch_lenet() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 2 * 2, 10),
    )


def assert_same_output_and_grads(model, reference, x: np.ndarray, y: np.ndarray) -> None:
    out = model(Tensor(x))
    ref = reference(torch.tensor(x))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL)
    model.zero_grad()
    nn.cross_entropy(out, y).backward()
    F.cross_entropy(ref, torch.tensor(y)).backward()
    ref_grads = dict(reference.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert names == list(ref_grads)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, ref_grads[name].grad.numpy(), **TOL, err_msg=name)


def test_mlp_matches_torch_sequential_output_and_gradients() -> None:
    model = nn.MLP([5, 7, 6, 3], activation="tanh", rng=3)
    assert [n for n, _ in model.named_parameters()] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    reference = to_torch_module(
        model,
        torch.nn.Sequential(
            torch.nn.Linear(5, 7),
            torch.nn.Tanh(),
            torch.nn.Linear(7, 6),
            torch.nn.Tanh(),
            torch.nn.Linear(6, 3),
        ),
    )
    rng = np.random.default_rng(0)
    assert_same_output_and_grads(model, reference, rng.normal(size=(9, 5)), rng.integers(0, 3, 9))


def test_cnn_matches_torch_sequential_output_and_gradients() -> None:
    model = lenet()
    reference = to_torch_module(model, torch_lenet())
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 1, 8, 8))
    assert_same_output_and_grads(model, reference, x, rng.integers(0, 10, 5))


def test_activations_flatten_and_sigmoid_module() -> None:
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    np.testing.assert_allclose(nn.Sigmoid()(Tensor(x)).data, torch.sigmoid(torch.tensor(x)))
    np.testing.assert_array_equal(nn.ReLU()(Tensor(x)).data, np.maximum(x, 0))
    assert nn.Flatten()(Tensor(x)).shape == (2, 12)
    assert nn.Flatten(0)(Tensor(x)).shape == (24,)
    assert nn.MLP([3, 2], activation=nn.Sigmoid, rng=0).num_parameters() == 8


def test_initialisation_has_torch_bounds_and_is_seeded() -> None:
    layer = nn.Linear(400, 300, rng=0)
    bound = 1 / math.sqrt(400)  # Kaiming-uniform with a = sqrt(5): 1/sqrt(fan_in)
    w = layer.weight.data
    assert w.shape == (300, 400) and np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # uniform over the whole interval
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)  # uniform, not normal
    assert np.abs(layer.bias.data).max() <= bound
    reference = torch.nn.Linear(400, 300)  # torch's own draw has the same spread
    assert reference.weight.detach().numpy().std() == pytest.approx(w.std(), rel=0.01)
    conv = nn.Conv2d(3, 8, (5, 3), rng=1)
    assert conv.weight.shape == (8, 3, 5, 3)
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(3 * 5 * 3)
    np.testing.assert_array_equal(
        nn.Linear(4, 2, rng=7).weight.data, nn.Linear(4, 2, rng=7).weight.data
    )
    assert not np.array_equal(
        nn.Linear(4, 2, rng=7).weight.data, nn.Linear(4, 2, rng=8).weight.data
    )
    gen = np.random.default_rng(5)
    a, b = nn.Linear(4, 2, rng=gen), nn.Linear(4, 2, rng=gen)
    assert not np.array_equal(a.weight.data, b.weight.data)  # one generator, two draws
    assert nn.Linear(3, 2, bias=False, rng=0).parameters()[0].shape == (2, 3)
    assert len(nn.Linear(3, 2, bias=False, rng=0).parameters()) == 1


def test_module_bookkeeping_zero_grad_train_eval_and_shared_parameters() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            self.encoder = nn.Linear(3, 3, rng=0)
            self.blocks = [nn.Linear(3, 3, rng=1), self.encoder]  # shared module

        def forward(self, x: Tensor) -> Tensor:
            for block in self.blocks:
                x = block(x).tanh()
            return self.encoder(x)

    model = Tied()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["encoder.weight", "encoder.bias", "blocks.0.weight", "blocks.0.bias"]
    model(Tensor(np.ones((2, 3)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert model.training and model.blocks[0].training
    assert model.eval() is model
    assert not model.training and not model.blocks[0].training
    model.train()
    assert model.blocks[0].training
    assert "Linear(3, 3, bias=True)" in repr(model)


def test_state_dict_round_trip_through_npz_without_pickle(tmp_path: Path) -> None:
    model = lenet(rng=4)
    path = model.save(tmp_path / "lenet.npz")
    other = lenet(rng=9)
    assert not np.array_equal(other[0].weight.data, model[0].weight.data)
    assert other.load(path) is other
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(model.state_dict())
    # the copy is independent of the model
    state = model.state_dict()
    state["0.weight"][:] = 0.0
    assert np.abs(model[0].weight.data).sum() > 0


def test_load_rejects_wrong_keys_shapes_and_files_with_the_file_name(tmp_path: Path) -> None:
    model = nn.MLP([2, 3, 1], rng=0)
    good = model.state_dict()
    bad_shape = tmp_path / "shape.npz"
    np.savez(bad_shape, **{**good, "2.weight": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"shape\.npz.*'2\.weight' has shape \(2, 3\)"):
        model.load(bad_shape)
    missing = tmp_path / "missing.npz"
    np.savez(missing, **{k: v for k, v in good.items() if k != "0.bias"})
    with pytest.raises(ValueError, match=r"missing\.npz.*missing \['0\.bias'\]"):
        model.load(missing)
    extra = tmp_path / "extra.npz"
    np.savez(extra, **good, surplus=np.zeros(1))
    with pytest.raises(ValueError, match=r"extra\.npz.*unexpected \['surplus'\]"):
        model.load(extra)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**good, "0.bias": np.array([object()] * 3, dtype=object)})
    with pytest.raises(ValueError, match=r"pickled\.npz"):
        model.load(pickled)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match=r"garbage\.npz"):
        model.load(garbage)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match=r"single\.npy.*one array"):
        model.load(single)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        model.load(tmp_path / "nope.npz")
    # a failed load leaves the parameters alone
    np.testing.assert_array_equal(model.state_dict()["2.weight"], good["2.weight"])


def test_module_argument_errors() -> None:
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="activation"):
        nn.MLP([2, 3], activation="gelu")
    with pytest.raises(ValueError, match="sizes"):
        nn.MLP([2])
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(2, 2, rng="seed")
    with pytest.raises(TypeError, match=r"modules\[1\]"):
        nn.Sequential(nn.ReLU(), "relu")
    with pytest.raises(ValueError, match="linear"):
        nn.Linear(3, 2, rng=0)(Tensor(np.ones((4, 5))))


# ---------------------------------------------------------------------- losses
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_match_torch(reduction: str) -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(6, 4))
    labels = rng.integers(0, 4, 6)
    target = rng.normal(size=(6, 4))
    binary = rng.normal(size=6)
    signs = rng.choice([-1.0, 1.0], 6)
    cases = [
        (
            lambda s: nn.cross_entropy(s, labels, reduction),
            lambda s: F.cross_entropy(s, torch.tensor(labels), reduction=reduction),
            scores,
        ),
        (
            lambda s: nn.mse(s, target, reduction),
            lambda s: F.mse_loss(s, torch.tensor(target), reduction=reduction),
            scores,
        ),
        (
            lambda s: nn.hinge(s, labels, reduction=reduction),
            lambda s: F.multi_margin_loss(s, torch.tensor(labels), reduction=reduction),
            scores,
        ),
        (
            lambda s: nn.hinge(s, labels, margin=0.5, reduction=reduction),
            lambda s: F.multi_margin_loss(s, torch.tensor(labels), margin=0.5, reduction=reduction),
            scores,
        ),
        (
            lambda s: nn.hinge(s, signs, reduction=reduction),
            lambda s: _reduce_torch(torch.clamp(1 - torch.tensor(signs) * s, min=0), reduction),
            binary,
        ),
    ]
    for k, (ours, theirs, data) in enumerate(cases):
        x = Tensor(data, requires_grad=True)
        xt = torch.tensor(data, requires_grad=True)
        out, ref = ours(x), theirs(xt)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL, err_msg=f"case {k}")
        upstream = rng.normal(size=out.shape)
        out.backward(upstream)
        ref.backward(torch.tensor(upstream))
        np.testing.assert_allclose(x.grad, xt.grad.numpy(), **TOL, err_msg=f"case {k} grad")


def _reduce_torch(t: torch.Tensor, reduction: str) -> torch.Tensor:
    return {"mean": t.mean, "sum": t.sum, "none": lambda: t}[reduction]()


def test_loss_argument_errors() -> None:
    s = Tensor(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="integers in"):
        nn.hinge(s, [0, 1, 2])
    with pytest.raises(ValueError, match=r"-1, 1"):
        nn.hinge(Tensor(np.zeros(3)), [0, 1, 1])
    with pytest.raises(ValueError, match="one shape"):
        nn.mse(s, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="reduction"):
        nn.mse(s, np.zeros((3, 2)), reduction="avg")


# ---------------------------------------------------------------------- optimisers
OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True}),
]


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS)
def test_optimizer_trajectory_equals_torch_over_50_steps(name: str, kwargs: dict) -> None:
    rng = np.random.default_rng(11)
    model = nn.MLP([4, 8, 3], activation="tanh", rng=2)
    reference = to_torch_module(
        model,
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)),
    )
    ours = getattr(optim, name)(model.parameters(), **kwargs)
    theirs = getattr(torch.optim, name)(reference.parameters(), **kwargs)
    x, y = rng.normal(size=(16, 4)), rng.integers(0, 3, 16)
    xt, yt = torch.tensor(x), torch.tensor(y)
    losses, ref_losses = [], []
    for step in range(50):
        batch = slice((step % 4) * 4, (step % 4) * 4 + 4)
        ours.zero_grad()
        loss = nn.cross_entropy(model(Tensor(x[batch])), y[batch])
        loss.backward()
        ours.step()
        theirs.zero_grad()
        ref = F.cross_entropy(reference(xt[batch]), yt[batch])
        ref.backward()
        theirs.step()
        losses.append(loss.item())
        ref_losses.append(ref.item())
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10, atol=1e-12)
    ref_params = dict(reference.named_parameters())
    moved = 0.0
    for pname, p in model.named_parameters():
        expected = ref_params[pname].detach().numpy()
        np.testing.assert_allclose(p.data, expected, rtol=1e-10, atol=1e-12, err_msg=pname)
        moved = max(moved, float(np.abs(p.data - to_start(pname)).max()))
    assert moved > 1e-3  # the parameters really moved


def to_start(name: str) -> np.ndarray:
    return nn.MLP([4, 8, 3], activation="tanh", rng=2).state_dict()[name]


def test_optimizer_skips_parameters_without_grad_and_reads_tensor_grads() -> None:
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward(create_graph=True)
    assert isinstance(a.grad, Tensor)
    opt.step()
    np.testing.assert_allclose(a.data, [0.9, 1.9])  # Adam's first step is lr·sign(g)
    assert b.data[0] == 3.0 and opt.state[1] == {}
    opt.zero_grad()
    assert a.grad is None


def test_optimizer_argument_errors() -> None:
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([w], lr=-1.0)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([w], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="does not require grad"):
        optim.SGD([Tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="at least one"):
        optim.Adam([])
