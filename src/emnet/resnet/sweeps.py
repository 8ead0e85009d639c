"""Width sweeps: every (width, seed) trained and validated, resumable, locally or on Dask.

The seeds of one width are trained together as one :class:`PackedResNet` (``pack_size``
seeds per pack; each pack is one task). Every epoch a task writes its checkpoint (model,
optimizer and shuffling-generator states plus the curves so far, ``torch.save`` of plain
tensors and lists, loaded with ``weights_only=True``) atomically, so a killed sweep re-run
with the same configuration resumes and ends with the numbers of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emnet import _io
from emnet._checks import FLOAT32_MAX, check_bool, check_int, check_number, resolve_device
from emnet.data import NORMALIZATIONS, digits
from emnet.resnet.model import make_resnet, pack, resnet_parameter_count
from emnet.resnet.results import METRICS, RunResult, SweepResult
from emnet.resnet.train import (
    OPTIMIZERS,
    PackedTrainer,
    as_tensors,
    last_batch_size,
    make_optimizer,
    warn_single_sample_batch,
)

CONFIG_FILE = "config.json"
STATE_DIR = "state"


def _int_list(values: object, name: str, minimum: int) -> tuple[int, ...]:
    if isinstance(values, int | np.integer) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{name}: expected a list of integers, got {values!r}")
    out = tuple(check_int(v, name, minimum) for v in values)
    if not out:
        raise ValueError(f"{name}: expected at least one value")
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: values must be distinct, got {list(out)}")
    return out


@dataclass(frozen=True)
class SweepConfig:
    """A sweep's configuration, validated on construction (ValueError/TypeError naming the
    field). Every field decides the numbers, so a results directory written under another
    value of any of them is refused rather than mixed with.

    ``seeds``: an int n means seeds 0 .. n-1; a list gives them explicitly.
    ``pack_size`` None: all seeds in one pack. ``device`` is resolved ("auto" → "cpu" or
    "cuda"; "cuda:N" kept).
    """

    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    batch_size: int = 16
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    drop_last: bool = False
    normalize: bool | str = False
    pack_size: int | None = None
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the checked values replace the given ones
        set_(self, "widths", _int_list(self.widths, "widths", 1))
        if isinstance(self.seeds, int | np.integer) and not isinstance(self.seeds, bool):
            set_(self, "seeds", tuple(range(check_int(self.seeds, "seeds", 1))))
        else:
            set_(self, "seeds", _int_list(self.seeds, "seeds", 0))
        set_(self, "epochs", check_int(self.epochs, "epochs", 0))
        set_(self, "batch_size", check_int(self.batch_size, "batch_size", 1))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer: expected one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}"
            )
        for name in ("lr", "momentum", "weight_decay"):
            value = check_number(getattr(self, name), name, 0.0)
            if value > FLOAT32_MAX:  # torch applies it to float32 weights: it must fit
                raise ValueError(f"{name}: expected a number below 3.4e38 (float32), got {value}")
            set_(self, name, value)
        if self.lr <= 0:
            raise ValueError(f"lr: expected a learning rate > 0, got {self.lr}")
        set_(self, "drop_last", bool(self.drop_last))
        if self.normalize not in NORMALIZATIONS and self.normalize is not True:
            raise ValueError(
                f"normalize: expected False, 'unit' or 'standard'; got {self.normalize!r}"
            )
        set_(self, "normalize", "standard" if self.normalize is True else self.normalize)
        n = len(self.seeds)
        per_pack = n if self.pack_size is None else check_int(self.pack_size, "pack_size", 1)
        set_(self, "pack_size", min(per_pack, n))
        set_(self, "device", resolve_device(self.device))
        set_(self, "threads", check_int(self.threads, "threads", 1))

    @classmethod
    def identity(cls) -> tuple[str, ...]:
        """The names of the fields (all of them decide the numbers)."""
        return tuple(f.name for f in fields(cls))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"], d["seeds"] = list(self.widths), list(self.seeds)
        return d

    def tasks(self) -> list[tuple[int, tuple[int, ...]]]:
        """(width, seeds of one pack), in order."""
        size = self.pack_size or len(self.seeds)
        return [
            (w, self.seeds[i : i + size])
            for w in self.widths
            for i in range(0, len(self.seeds), size)
        ]


@dataclass(frozen=True)
class TaskResult:
    """One pack's curves (``curves[metric][i]``: seed ``seeds[i]``, epochs + 1 values)
    and its wall time (training and evaluation, seconds)."""

    width: int
    seeds: tuple[int, ...]
    curves: dict[str, list[list[float]]]
    wall_time: float


def _task_name(width: int, seeds: Sequence[int]) -> str:
    return f"w{width}_s{'-'.join(str(s) for s in seeds)}"


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``torch.set_num_threads(n)`` (``None``: leave it), then restore it."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run_task(
    cfg: SweepConfig,
    width: int,
    seeds: Sequence[int],
    state_dir: str | None = None,
    on_epoch: Callable[[], None] | None = None,
) -> TaskResult:
    """Train one pack (``seeds`` of ``width``) for ``cfg.epochs``; resume from
    ``state_dir`` if it holds this pack's checkpoint. Returns curves and wall time.

    A plain module-level function of plain arguments, so Dask workers can run it. It runs
    with ``cfg.threads`` torch CPU threads wherever it runs: the last bits of a
    float sum depend on how it is split, and training amplifies them.
    """
    with torch_threads(cfg.threads):
        return _run_task(cfg, width, seeds, state_dir, on_epoch)


def _run_task(
    cfg: SweepConfig,
    width: int,
    seeds: Sequence[int],
    state_dir: str | None,
    on_epoch: Callable[[], None] | None,
) -> TaskResult:
    device = torch.device(cfg.device)
    train, test = digits(cfg.normalize)
    models = [make_resnet(width, s).to(device) for s in seeds]
    net = pack(models)
    optimizer = make_optimizer(
        net.parameters(), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay
    )
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    curves: dict[str, list[list[float]]] = {m: [[] for _ in seeds] for m in METRICS}
    wall, done = 0.0, -1
    ckpt = Path(state_dir) / f"{_task_name(width, seeds)}.pt" if state_dir else None
    if ckpt is not None and ckpt.exists():
        curves, wall, done = load_checkpoint(ckpt, net, optimizer, generators, cfg.epochs)
    trainer = PackedTrainer(
        net, optimizer, generators, as_tensors(train, "train"), as_tensors(test, "test"),
        cfg.batch_size, cfg.drop_last,
    )  # fmt: skip

    def checkpoint(epoch: int) -> None:
        if ckpt is None:
            return
        state = {
            "epoch": epoch,
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generators": [g.get_state() for g in generators],
            "curves": curves,
            "wall_time": wall,
        }
        with _io.atomic_path(ckpt) as tmp:
            torch.save(state, tmp)
        _io.write_json(
            ckpt.with_suffix(".json"),
            {"width": width, "seeds": list(seeds), "epochs_done": epoch, "wall_time": wall,
             "curves": curves},
        )  # fmt: skip

    for epoch in range(done + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        if epoch > 0:
            trainer.train_epoch()
        metrics = trainer.evaluate()
        wall += time.perf_counter() - t0
        for m in METRICS:
            for i in range(len(seeds)):
                curves[m][i].append(float(metrics[m][i]))
        checkpoint(epoch)
        if on_epoch is not None and epoch > 0:
            on_epoch()
    return TaskResult(width, tuple(seeds), curves, wall)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from (named, with what to do)."""


def load_checkpoint(
    ckpt: Path, net: Any, optimizer: Any, generators: Sequence[torch.Generator], epochs: int
) -> tuple[dict[str, list[list[float]]], float, int]:
    """Restore a pack's training state from ``ckpt`` (``torch.load(weights_only=True)``:
    tensors and plain containers only, never arbitrary pickled objects).

    Returns (curves, wall time, last epoch done). A file that is empty, truncated, holds
    other objects or another pack's state is a :class:`CheckpointError` naming it.
    """

    def bad(why: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint {ckpt} cannot be resumed from ({why}); delete it to train this "
            "pack again from the start, or use a new --out directory"
        )

    try:
        if ckpt.stat().st_size == 0:
            raise bad("the file is empty")
        with warnings.catch_warnings():  # torch warns about a foreign pickle; it is refused
            warnings.simplefilter("ignore")
            state = torch.load(ckpt, map_location="cpu", weights_only=True)  # copied in place
    except CheckpointError:
        raise
    except OSError as exc:
        raise bad(exc.strerror or type(exc).__name__) from None
    except Exception as exc:  # truncated zip, a pickle of other objects, ...
        import pickle

        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc).lower():
            raise bad("it holds objects other than tensors and plain values") from None
        raise bad("the file is truncated or not a checkpoint written by emnet") from None
    keys = {"epoch", "model", "optimizer", "generators", "curves", "wall_time"}
    if not isinstance(state, dict) or not keys <= set(state):
        raise bad("it is not a sweep checkpoint")
    try:
        done = int(state["epoch"])
        wall = float(state["wall_time"])
        curves = state["curves"]
        if not 0 <= done <= epochs:
            raise ValueError(f"epoch {done} is outside 0..{epochs}")
        if not isinstance(curves, dict) or set(curves) != set(METRICS):
            raise ValueError("its curves are not this sweep's")
        for m in METRICS:
            series = curves[m]
            if len(series) != len(generators) or any(len(c) != done + 1 for c in series):
                raise ValueError("its curves do not match its epoch")
        if len(state["generators"]) != len(generators):
            raise ValueError("it holds another number of seeds")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for g, s in zip(generators, state["generators"]):
            g.set_state(s)
    except (TypeError, ValueError, RuntimeError, KeyError, IndexError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise bad(f"its contents do not fit this pack: {reason[:200]}") from None
    return curves, wall, done


def output_files(config: SweepConfig) -> list[str]:
    """Every file a sweep with ``config`` writes into its ``out_dir`` (relative paths)."""
    files = [CONFIG_FILE, "results.json", "results.csv", "curves.png", "summary.png"]
    for width, seeds in config.tasks():
        name = _task_name(width, seeds)
        files += [f"{STATE_DIR}/{name}.pt", f"{STATE_DIR}/{name}.json"]
    return files


def _legacy_output(out: Path) -> tuple[dict[str, Any], list[str]] | None:
    """A sweep directory written before emnet's ownership marker: its config.json (a
    sweep configuration) and the files such a sweep writes, or None if it is not one."""
    import re

    cfg_path = out / CONFIG_FILE
    if not cfg_path.is_file():
        return None
    try:
        old = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise ValueError(
            f"out_dir: {cfg_path} is not readable JSON; delete it if it is emnet's (the "
            "sweep then starts afresh), or use a new --out directory"
        ) from None
    if not isinstance(old, dict):
        raise ValueError(
            f"out_dir: {cfg_path} is not a sweep configuration (expected a JSON object, got "
            f"{type(old).__name__}); delete it if it is emnet's, or use a new --out directory"
        )
    if not set(SweepConfig.identity()) <= set(old):
        return None  # somebody else's config.json: the directory is not emnet's
    files = [CONFIG_FILE, "results.json", "results.csv", "curves.png", "summary.png"]
    task = re.compile(r"^w\d+_s\d+(?:-\d+)*\.(?:pt|json)$")
    state = out / STATE_DIR
    if state.is_dir():
        files += [f"{STATE_DIR}/{p.name}" for p in state.iterdir() if task.match(p.name)]
    return {k: old[k] for k in SweepConfig.identity()}, [f for f in files if (out / f).exists()]


def _open_out_dir(out_dir: str | Path, config: SweepConfig, force: bool = False) -> Path:
    """Take ``out_dir`` for this sweep (emnet's ownership rule, :func:`emnet._io.claim_dir`):
    a new or empty directory, or one an earlier sweep wrote. The same configuration
    resumes there; another one is a ValueError unless ``force`` (then that sweep's files
    are removed first). Files emnet did not write are never touched."""
    out = _io.claim_dir(
        out_dir,
        "resnet",
        config.to_json(),
        output_files(config),
        force=force,
        arg="out_dir",
        force_flag="--force (force=True)",
        adopt=_legacy_output,
    )
    _io.write_json(out / CONFIG_FILE, config.to_json())
    return out


def _dask_client(dask: Any, n_workers: int) -> tuple[Any, Callable[[], None]]:
    from distributed import Client, LocalCluster

    if isinstance(dask, Client):
        return dask, lambda: None
    if dask == "local":
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()

        return client, close
    if isinstance(dask, str) and "://" in dask:
        try:
            client = Client(dask, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"scheduler: cannot connect to {dask} ({exc})") from None
        return client, client.close
    raise ValueError(
        f"dask: expected 'local', a scheduler address like tcp://host:8786, or a Client; got {dask!r}"
    )


def _check_dask(dask: Any) -> None:
    if dask is None or dask == "local" or (isinstance(dask, str) and "://" in dask):
        return
    from distributed import Client

    if not isinstance(dask, Client):
        raise ValueError(
            "dask: expected 'local', a scheduler address like tcp://host:8786, or a "
            f"distributed.Client; got {dask!r}"
        )


def _run_tasks(cfg: SweepConfig, out: Path | None, client: Any, progress: bool) -> list[TaskResult]:
    """Run every pack, here or as Dask tasks, in the configuration's task order."""
    from tqdm.auto import tqdm

    state_dir = str(out / STATE_DIR) if out is not None else None
    tasks = cfg.tasks()
    bar = tqdm(
        total=len(cfg.widths) * len(cfg.seeds) * cfg.epochs, disable=not progress,
        desc="resnet sweep", unit="model-epoch",
    )  # fmt: skip
    try:
        if client is None:
            outputs = []
            for width, group in tasks:
                bar.set_postfix(width=width, seeds=f"{group[0]}..{group[-1]}")
                step = len(group)
                outputs.append(run_task(cfg, width, group, state_dir, lambda k=step: bar.update(k)))
            return outputs
        from distributed import as_completed

        futures = [client.submit(run_task, cfg, w, g, state_dir, pure=False) for w, g in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[TaskResult | None] = [None for _ in futures]
        for fut in as_completed(futures):
            res = fut.result()
            results[index[fut.key]] = res
            bar.update(len(res.seeds) * cfg.epochs)
        return [r for r in results if r is not None]
    finally:
        bar.close()


def sweep(
    widths: Sequence[int],
    seeds: int | Sequence[int],
    epochs: int,
    *,
    out_dir: str | Path | None = None,
    progress: bool = True,
    dask: Any = None,
    dask_workers: int = 2,
    force: bool = False,
    **options: Any,
) -> SweepResult:
    """Train ``ResNet(C)`` for every width C and seed; return every epoch's numbers.

    ``widths``, ``seeds``, ``epochs`` and ``options`` are the fields of
    :class:`SweepConfig` (``batch_size``, ``optimizer``, ``lr``, ``momentum``,
    ``weight_decay``, ``drop_last``, ``normalize``, ``pack_size``, ``device``,
    ``threads``), validated there. Seed ``s`` fixes the initial weights
    (``torch.manual_seed(s)``) and the batch order (``torch.Generator().manual_seed(s)``,
    as a DataLoader would shuffle); ``seeds=n`` means 0 .. n-1. ``optimizer``: "sgd",
    "momentum" (``momentum``), "adam", "adamw". ``pack_size`` seeds (default: all) train
    together as one packed network; the numbers equal separate runs to float rounding.
    With ``out_dir``, results and checkpoints are written there after every epoch and an
    interrupted sweep resumes; at the end it holds ``results.json`` and ``results.csv``
    (the caller draws :func:`emnet.resnet.plot_curves` / :func:`plot_summary` from the
    result: the sweep itself never draws). ``dask``: "local" (a LocalCluster of
    ``dask_workers`` processes), a scheduler address, or a ``distributed.Client``; each
    pack is one task. ``threads``: torch CPU threads per task (1 by default: these
    tensors are tiny, and on a busy machine more threads mostly wait for each other). It
    is part of the configuration because float sums split over more threads round
    differently, and training amplifies the difference. ``out_dir`` follows emnet's
    ownership rule: a new or empty directory, or this sweep's own (resumed there); an
    earlier sweep of another configuration is replaced only with ``force=True``.
    """
    cfg = SweepConfig(widths, seeds, epochs, **options)
    _check_dask(dask)
    check_bool(force, "force")
    if out_dir is not None:  # refuse a directory that is not this sweep's before any work
        _io.check_output_dir(
            out_dir, "resnet", cfg.to_json(), force=force, arg="out_dir",
            force_flag="--force (force=True)", adopt=_legacy_output,
        )  # fmt: skip
    client, close = _dask_client(dask, dask_workers) if dask is not None else (None, None)
    n_train = len(digits()[0].labels)
    single = warn_single_sample_batch(n_train, cfg.batch_size, cfg.drop_last)
    try:
        out = _open_out_dir(out_dir, cfg, force) if out_dir is not None else None
        t0 = time.perf_counter()
        outputs = _run_tasks(cfg, out, client, progress)
        wall = time.perf_counter() - t0
    finally:
        if close is not None:
            close()
    runs = [
        RunResult(
            width=o.width,
            seed=s,
            **{m: o.curves[m][i] for m in METRICS},
            param_count=resnet_parameter_count(o.width),
            wall_time=o.wall_time / len(o.seeds),
            pack=list(o.seeds),
        )
        for o in outputs
        for i, s in enumerate(o.seeds)
    ]
    result = SweepResult(
        config=cfg.to_json(),
        runs=runs,
        param_counts={w: resnet_parameter_count(w) for w in cfg.widths},
        n_train=n_train,
        last_batch_size=last_batch_size(n_train, cfg.batch_size, cfg.drop_last),
        single_sample_last_batch=single,
        wall_time=wall,
    )
    if out is not None:
        result.save(out)
    return result
