"""Shared benchmark helpers: timing and writing one section of docs/benchmarks.md.

Every benchmark owns one section of ``docs/benchmarks.md`` delimited by
``<!-- BEGIN name -->`` / ``<!-- END name -->`` markers and rewrites only that section,
atomically, so benchmarks can run in any order and never clobber each other.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = (
    "# emnet benchmarks\n\n"
    "Every figure here is written by a script in `benchmarks/` (run them all with "
    "`make bench`). Speed is always reported as a ratio against a baseline measured in "
    "the same run, on the same machine, so the ratios stay meaningful across machines.\n"
)


def machine_line() -> str:
    import numpy as np

    try:
        import torch

        tv = torch.__version__
        threads = torch.get_num_threads()
    except Exception:  # pragma: no cover
        tv, threads = "n/a", "n/a"
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python "
        f"{sys.version.split()[0]}, numpy {np.__version__}, torch {tv} ({threads} threads). "
        f"Measured {time.strftime('%Y-%m-%d')}."
    )


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md, atomically."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(
        rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, DOC)
