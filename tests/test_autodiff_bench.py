"""benchmarks/autodiff.py runs end to end with one round (timings are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "autodiff.py"


def test_autodiff_benchmark_smoke(capsys) -> None:
    spec = importlib.util.spec_from_file_location("autodiff_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--rounds", "1", "--op-calls", "200", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| MLP 64-128-10 (ReLU) | 51 |" in out and "| CNN (LeNet-style, 2 conv) | 51 |" in out
    assert "Target: emnet within 3× of torch eager for the MLP" in out
    assert "| `a + b` |" in out
