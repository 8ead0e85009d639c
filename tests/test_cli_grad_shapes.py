"""`emnet grad` and `emnet shapes`: printed content, the graph picture, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from emnet.autodiff import graph_nodes
from emnet.cli import main
from emnet.deepnet import backward, forward, graph

EXAMPLE_ARGS = ["--x", "1.5", "--w1", "0.3", "--w2", "-1.2", "--w3", "2.0"]


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], code: int | None) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def _exit_code(argv: list[str]) -> int | None:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code  # type: ignore[return-value]


# ------------------------------------------------------------------ emnet grad


def test_grad_prints_everything_and_draws_a_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grad", *EXAMPLE_ARGS, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    cache = forward(1.5, 0.3, -1.2, 2.0)
    grads = backward(cache)
    # forward values, node by node
    for node, value in (
        ("a", cache.a),
        ("h1", cache.h1),
        ("b", cache.b),
        ("h2", cache.h2),
        ("f", cache.f),
    ):
        assert re.search(rf"^\s+{node}\s+\S+\s+{re.escape(f'{value:.12g}')}$", out, re.M), node
    # adjoints, node by node, including the weights, equal the engine's .grad of each node
    section = out.split("backward pass (adjoint")[1].split("gradients by method")[0]
    printed = {
        ln.split()[0]: float(ln.split()[-1])
        for ln in section.splitlines()
        if re.match(r"^\s+(f|h2|w3|b|h1|w2|a|w1|x)\s", ln)
    }
    engine = {n.name: float(n.grad) for n in graph_nodes(graph(1.5, 0.3, -1.2, 2.0))}
    assert printed.keys() == engine.keys()
    for node, value in printed.items():
        assert value == pytest.approx(engine[node], rel=1e-11, abs=1e-13), node
    # every method, side by side with the same three numbers
    for method in (
        "closed form (eq. 22, 24)",
        "backprop (emnet.autodiff)",
        "torch.autograd",
        "sympy",
    ):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(method))
        for g in grads:
            assert f"{g:.12g}" in line, (method, g)
    fd_line = next(ln for ln in out.splitlines() if ln.strip().startswith("finite differences"))
    assert float(fd_line.split()[-1]) < 1e-8  # max |Δ| vs closed form
    # sigmoid counts
    assert re.search(r"forward pass \+ backward pass from the cache\s+2 \+ 0\s+2$", out, re.M)
    assert re.search(r"6 \+ 5 \+ 2\s+13$", out, re.M)
    # the picture: a valid PNG, and nothing half-written next to it
    png = tmp_path / "grad_graph.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grad_graph.png"]
    assert str(png) in out


def test_grad_svg_and_no_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grad", "--format", "svg", "--out", str(tmp_path / "figs")]) == 0
    svg = (tmp_path / "figs" / "grad_graph.svg").read_text()
    assert "<svg" in svg and "h2" in svg
    capsys.readouterr()
    assert main(["grad", "--no-picture", "--out", str(tmp_path / "none")]) == 0
    assert "computation graph" not in capsys.readouterr().out
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["grad", "--w1", "abc"], "argument --w1: expected a number"),
        (["grad", "--x", "nan"], "argument --x: expected a finite number"),
        (["grad", "--w3", "inf"], "argument --w3: expected a finite number"),
        (["grad", "--format", "gif"], "argument --format: invalid choice"),
        (["grad", "--bogus"], "unrecognized arguments"),
    ],
)
def test_grad_bad_args_exit_2_one_line(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line_error(capsys, argv, _exit_code(argv))
    assert match in err


def test_grad_out_is_a_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = ["grad", "--out", str(blocker)]
    err = _one_line_error(capsys, argv, _exit_code(argv))
    assert "--out" in err and "not a directory" in err


# ------------------------------------------------------------------ emnet shapes


def test_shapes_prints_the_lenet_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shapes", "1x28x28 conv20k5 pool2 conv50k5 pool2 flatten fc500 fc10"]) == 0
    out = capsys.readouterr().out
    rows = {ln.split()[1]: ln.split() for ln in out.splitlines() if re.match(r"^\d+\s", ln)}
    assert rows["conv20k5"][-3:] == ["20×24×24", "520", "288,000"]
    assert rows["conv50k5"][-3:] == ["50×8×8", "25,050", "1,600,000"]
    assert [ln.split()[-3] for ln in out.splitlines() if " pool2 " in f" {ln} "] == [
        "20×12×12",
        "50×4×4",
    ]
    total = next(ln for ln in out.splitlines() if ln.strip().startswith("total"))
    assert total.split()[1:] == ["431,080", "2,293,000"]


def test_shapes_input_option_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["shapes", "--input", "3x32x32", "conv8k3p1 bn relu gap flatten fc10", "--json"]) == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert [r["output"] for r in payload["layers"]] == [
        [3, 32, 32],
        [8, 32, 32],
        [8, 32, 32],
        [8, 32, 32],
        [8, 1, 1],
        [8],
        [10],
    ]
    assert payload["total_params"] == (8 * 27 + 8) + 16 + (8 * 10 + 10)


def test_shapes_help_documents_the_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["shapes", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for token in ("conv<OUT>k<K>", "pool<K>", "ceil_mode", "dilation", "flatten", "fc<N>", "bn"):
        assert token in out, token


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["shapes", "1x28x28 conv20k5 pool2 conv50k13"], "layer 3 (conv50k13): output size"),
        (["shapes", "1x28x28 conv20z5"], "unknown option 'z'"),
        (["shapes", "conv20k5"], "input_shape is missing"),
        (["shapes", "--input", "28x28", "conv20k5"], "expected CxHxW"),
        (["shapes", "--input", "1x8x8", "1x8x8 relu"], "given twice"),
        (["shapes", ""], "spec is empty"),
        (["shapes"], "the following arguments are required: spec"),
    ],
)
def test_shapes_bad_spec_exit_2_one_line(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_line_error(capsys, argv, _exit_code(argv))
    assert match in err
