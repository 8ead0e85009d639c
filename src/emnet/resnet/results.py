"""What a sweep measured: one :class:`RunResult` per (width, seed) and the
:class:`SweepResult` that holds them (saved as ``results.json`` and ``results.csv``)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emnet import _io

METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")


@dataclass
class RunResult:
    """One (width, seed): per-epoch curves (epochs + 1 values each) and cost."""

    width: int
    seed: int
    train_loss: list[float]
    test_loss: list[float]
    train_acc: list[float]
    test_acc: list[float]
    param_count: int
    wall_time: float  # seconds of its pack's training and evaluation, divided by pack size
    pack: list[int] = field(default_factory=list)  # the seeds trained together with it


@dataclass
class SweepResult:
    """Everything a sweep measured; ``save`` writes it as JSON and CSV."""

    config: dict[str, Any]
    runs: list[RunResult]
    param_counts: dict[int, int]
    n_train: int
    last_batch_size: int
    single_sample_last_batch: bool
    wall_time: float

    @property
    def widths(self) -> list[int]:
        return list(self.config["widths"])

    @property
    def seeds(self) -> list[int]:
        return list(self.config["seeds"])

    def run(self, width: int, seed: int) -> RunResult:
        for r in self.runs:
            if r.width == width and r.seed == seed:
                return r
        raise KeyError(f"no run for width {width}, seed {seed}")

    def curves(self, width: int, metric: str) -> np.ndarray:
        """(n_seeds, epochs + 1) array of ``metric`` for ``width``."""
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {', '.join(METRICS)}; got {metric!r}")
        return np.array([getattr(self.run(width, s), metric) for s in self.seeds])

    def numbers(self) -> dict[str, Any]:
        """The deterministic part (everything but wall times), for comparing runs."""
        return {f"{r.width}/{r.seed}": {m: getattr(r, m) for m in METRICS} for r in self.runs}

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "n_train": self.n_train,
            "last_batch_size": self.last_batch_size,
            "single_sample_last_batch": self.single_sample_last_batch,
            "param_counts": {str(k): v for k, v in self.param_counts.items()},
            "wall_time": self.wall_time,
            "runs": [asdict(r) for r in self.runs],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SweepResult:
        return cls(
            config=d["config"],
            runs=[RunResult(**r) for r in d["runs"]],
            param_counts={int(k): int(v) for k, v in d["param_counts"].items()},
            n_train=d["n_train"],
            last_batch_size=d["last_batch_size"],
            single_sample_last_batch=d["single_sample_last_batch"],
            wall_time=d["wall_time"],
        )

    @classmethod
    def load(cls, path: str | Path) -> SweepResult:
        """Read ``results.json`` (or the directory holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        return cls.from_json(json.loads(path.read_text()))

    def to_csv(self) -> str:
        """One row per (width, seed, epoch)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            ["width", "seed", "epoch", *METRICS, "param_count", "wall_time_s", "drop_last",
             "batch_size", "optimizer", "lr"]
        )  # fmt: skip
        c = self.config
        for r in self.runs:
            for e in range(len(r.train_loss)):
                w.writerow(
                    [r.width, r.seed, e, *(repr(float(getattr(r, m)[e])) for m in METRICS),
                     r.param_count, f"{r.wall_time:.3f}", c["drop_last"], c["batch_size"],
                     c["optimizer"], c["lr"]]
                )  # fmt: skip
        return buf.getvalue()

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        _io.write_json(out / "results.json", self.to_json())
        _io.write_text(out / "results.csv", self.to_csv())
