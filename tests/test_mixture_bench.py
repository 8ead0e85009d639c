"""benchmarks/bmm.py runs end to end on a small problem (timings are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bmm.py"


def test_bmm_benchmark_smoke(capsys):
    spec = importlib.util.spec_from_file_location("bmm_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--n", "300", "--repeat", "1", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| 10 | float64 |" in out and "| 50 | float32 |" in out
    assert "Worst ratio of the matrix-product iteration to the floor" in out
    assert "emnet EM iteration, bit-packed (ms)" in out
