"""Pictures of computation graphs: Graphviz DOT text and PNG/SVG files rendered by ``dot``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from emnet._io import atomic_path
from emnet.autodiff.tensor import Tensor, topological_order

__all__ = ["graph_nodes", "render", "to_dot"]

RENDER_FORMATS = {".png": "png", ".svg": "svg"}


def graph_nodes(output: Tensor) -> list[Tensor]:
    """Every tensor ``output`` depends on (through ``parents``), inputs before outputs."""
    if not isinstance(output, Tensor):
        raise TypeError(f"output: expected a Tensor, got {type(output).__name__}")
    return topological_order(output)


def _format_number(value: float) -> str:
    return f"{value:.4g}"


def _label(node: Tensor) -> str:
    """Node text: the op (or the leaf's name), the shape, and value/grad for scalars."""
    if node.op:
        title = f"{node.op} → {node.name}" if node.name else node.op
    else:
        title = node.name or ("param" if node.requires_grad else "const")
    lines = [title, f"shape {node.shape}"]
    if node.data.size == 1:
        lines.append("value " + _format_number(float(node.data.reshape(()))))
        if node.grad is not None:
            lines.append("grad " + _format_number(float(np.asarray(node.grad).reshape(()))))
    return "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)


def to_dot(output: Tensor, rankdir: str = "LR") -> str:
    """The graph that computes ``output`` as Graphviz DOT text (one box per tensor).

    Leaves (inputs and parameters) are ellipses labelled by their ``name``; op results
    are boxes labelled by their op. Edges run from inputs to the op that uses them.
    """
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir: expected one of LR, TB, RL, BT, got {rankdir!r}")
    nodes = graph_nodes(output)
    ids = {id(node): f"n{i}" for i, node in enumerate(nodes)}
    lines = [
        "digraph computation {",
        f"  rankdir={rankdir};",
        '  node [fontname="Helvetica", fontsize=11];',
    ]
    for node in nodes:
        shape = "box" if node.op else "ellipse"
        fill = "#dbe9f6" if node.op else ("#fde8c8" if node.requires_grad else "#eeeeee")
        if node is output:
            fill = "#d4edc9"
        lines.append(
            f'  {ids[id(node)]} [label="{_label(node)}", shape={shape}, style="filled,rounded", '
            f'fillcolor="{fill}"];'
        )
    for node in nodes:
        for parent in node.parents:
            lines.append(f"  {ids[id(parent)]} -> {ids[id(node)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(output: Tensor, path: str | os.PathLike[str], rankdir: str = "LR") -> Path:
    """Draw the graph of ``output`` to ``path`` (PNG or SVG, by suffix) with Graphviz's ``dot``.

    Raises RuntimeError when ``dot`` is not installed, ValueError for another suffix.
    """
    path = Path(path)
    fmt = RENDER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"path: expected a .png or .svg file name, got {str(path)!r}")
    dot_source = to_dot(output, rankdir=rankdir)
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            "render: Graphviz's `dot` program was not found on PATH; install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz) or use to_dot() for the DOT text"
        )
    with atomic_path(path) as tmp:
        try:
            result = subprocess.run(
                [dot, f"-T{fmt}", "-o", str(tmp)],
                input=dot_source.encode("utf-8"),
                capture_output=True,
                check=False,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"render: could not run Graphviz's dot at {dot}: {exc}") from None
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip()
            raise RuntimeError(f"render: dot failed with exit code {result.returncode}: {message}")
    return path
