"""emnet.autodiff.demo and `emnet train-demo`: the training demos learn, the CNN's losses
equal torch's from the same initial weights, the figures are drawn without pyplot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emnet.autodiff import demo
from emnet.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_moons_mlp_learns_and_draws_its_boundary(tmp_path: Path) -> None:
    result = demo.train_moons(steps=200)
    assert result.accuracy == 1.0
    assert result.losses[-1] < 0.1 * result.losses[0]
    assert result.grid_score.shape == result.grid_x.shape
    # both classes' regions appear on the grid
    assert 0.2 < np.mean(result.grid_score > 0) < 0.8
    fig = demo.plot_moons(result)
    fig.savefig(tmp_path / "moons.png")
    assert (tmp_path / "moons.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="steps"):
        demo.train_moons(steps=0)


def test_cnn_losses_equal_torch_from_the_same_weights(tmp_path: Path) -> None:
    curves = demo.train_cnn(epochs=1, max_steps=25)
    assert len(curves.losses) == len(curves.torch_losses) == 25
    np.testing.assert_allclose(curves.losses, curves.torch_losses, rtol=1e-10, atol=1e-12)
    assert curves.max_abs_difference < 1e-10
    assert curves.test_accuracy == curves.torch_test_accuracy
    assert curves.losses[0] == pytest.approx(np.log(10), rel=0.05)  # near-uniform start
    demo.plot_cnn_curves(curves).savefig(tmp_path / "cnn.png")
    assert (tmp_path / "cnn.png").read_bytes()[:8] == PNG
    alone = demo.train_cnn(epochs=1, max_steps=5, with_torch=False)
    assert alone.torch_losses is None and np.isnan(alone.max_abs_difference)
    np.testing.assert_array_equal(alone.losses, curves.losses[:5])  # seeded, reproducible
    demo.plot_cnn_curves(alone).savefig(tmp_path / "alone.png")


def test_lenet_digits_layout() -> None:
    model = demo.lenet_digits(rng=0)
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["0.weight", "0.bias"] and names[-1] == "9.bias"
    assert model.num_parameters() == 6 * 9 + 6 + 16 * 6 * 9 + 16 + 64 * 32 + 32 + 32 * 10 + 10


def test_demo_module_uses_no_pyplot_and_the_engine_stays_numpy_only() -> None:
    code = (
        "import sys; from emnet.autodiff import demo; "
        "r = demo.train_moons(steps=3); demo.plot_moons(r); "
        "print('matplotlib.pyplot' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_train_demo_command_writes_both_figures(tmp_path: Path, capsys) -> None:
    assert main(["train-demo", "--out", str(tmp_path / "out"), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy 100.0%" in printed and "largest |loss - torch loss|" in printed
    for name in ("train_demo_moons.png", "train_demo_cnn.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == PNG
    (tmp_path / "file").write_text("x")
    assert main(["train-demo", "--out", str(tmp_path / "file")]) == 2
    assert "not a directory" in capsys.readouterr().err
