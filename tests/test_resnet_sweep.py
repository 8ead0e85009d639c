"""emnet.resnet.sweep and `emnet resnet`: results, determinism, resume after a kill, Dask,
bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from emnet.cli import main
from emnet.data import digits
from emnet.resnet import (
    REPORT_SETTINGS,
    SingleSampleBatchWarning,
    SweepResult,
    fit_and_validate,
    make_optimizer,
    make_resnet,
    plot_curves,
    sweep,
)

# Small but real: C = 2 and 3, two seeds, batch 64 (26 steps an epoch).
SMALL = {"widths": [2, 3], "seeds": 2, "epochs": 2, "batch_size": 64, "progress": False}


def _quiet_sweep(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingleSampleBatchWarning)
        return sweep(**{**SMALL, **kw})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "out"
    return out, _quiet_sweep(out_dir=out)


def test_sweep_result_and_files(small):
    out, res = small
    assert isinstance(res, SweepResult)
    assert [(r.width, r.seed) for r in res.runs] == [(2, 0), (2, 1), (3, 0), (3, 1)]
    for r in res.runs:
        for m in ("train_loss", "test_loss", "train_acc", "test_acc"):
            assert len(getattr(r, m)) == 3
        assert r.wall_time > 0 and r.pack == [0, 1]
    assert res.param_counts == {2: 132, 3: 18 * 9 + 25 * 3 + 10}
    assert res.config["drop_last"] is False and res.last_batch_size == 1617 % 64
    for name in ("config.json", "results.json", "results.csv"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "curves.png").exists()  # sweep() computes; the caller draws
    loaded = SweepResult.load(out)
    assert loaded.numbers() == res.numbers()
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("width,seed,epoch,train_loss,test_loss,train_acc,test_acc")
    assert len(rows) == 1 + 4 * 3
    first = rows[1].split(",")
    assert float(first[4]) == res.run(2, 0).test_loss[0]  # repr round-trips exactly


def test_sweep_equals_single_model_runs(small):
    _, res = small
    train, test = digits()
    for width, seed in [(2, 1), (3, 0)]:
        net = make_resnet(width, seed)
        opt = make_optimizer(net.parameters(), "sgd", 0.1)
        hist: dict[str, list[float]] = {}
        fit_and_validate(
            net, opt, nn.CrossEntropyLoss(), train, test, 2, 64,
            generator=torch.Generator().manual_seed(seed), history=hist,
        )  # fmt: skip
        run = res.run(width, seed)
        for m in ("train_loss", "test_loss", "test_acc"):
            np.testing.assert_allclose(getattr(run, m), hist[m], rtol=1e-4, atol=1e-4)


def test_pack_size_does_not_change_the_numbers(small):
    _, res = small
    one_by_one = _quiet_sweep(pack_size=1)
    assert one_by_one.config["pack_size"] == 1 and one_by_one.run(2, 1).pack == [1]
    for r in res.runs:
        o = one_by_one.run(r.width, r.seed)
        np.testing.assert_allclose(o.test_loss, r.test_loss, rtol=1e-4, atol=1e-4)


def test_device_auto_is_cpu_here_and_gives_the_same_numbers(small):
    _, res = small
    if torch.cuda.is_available():  # pragma: no cover - no GPU on the CI machine
        pytest.skip("auto resolves to CUDA on this machine")
    auto = _quiet_sweep(device="auto", widths=[2])
    assert auto.config["device"] == "cpu"
    assert auto.run(2, 0).test_loss == res.run(2, 0).test_loss


def test_single_sample_last_batch_warning_and_drop_last():
    with pytest.warns(SingleSampleBatchWarning, match="last batch of one sample"):
        res = sweep([1], 1, 0, batch_size=16, progress=False)
    assert res.single_sample_last_batch and res.last_batch_size == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingleSampleBatchWarning)
        res = sweep([1], 1, 0, batch_size=16, drop_last=True, progress=False)
    assert not res.single_sample_last_batch and res.config["drop_last"] is True
    assert res.last_batch_size == 0


def test_plot_curves_colours(small, tmp_path):
    import matplotlib

    _, res = small
    fig = plot_curves(res, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2
    for ax in panels:
        colors = [matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()]
        assert colors == [
            matplotlib.colors.to_hex("tab:blue"),
            matplotlib.colors.to_hex("tab:orange"),
        ]
        assert len(ax.collections) == 2  # a band per curve: two seeds


def test_report_settings_are_valid():
    assert set(REPORT_SETTINGS) == {"full", "quick"}
    for s in REPORT_SETTINGS.values():
        assert {"epochs", "seeds", "batch_size", "optimizer", "lr", "drop_last"} <= set(s)
    assert REPORT_SETTINGS["quick"]["epochs"] <= REPORT_SETTINGS["full"]["epochs"]
    res = _quiet_sweep(widths=[1], **{**REPORT_SETTINGS["quick"], "epochs": 0})
    assert len(res.runs) == REPORT_SETTINGS["quick"]["seeds"]


def _numbers(out: Path) -> dict:
    d = json.loads((out / "results.json").read_text())
    return {f"{r['width']}/{r['seed']}": [r[m] for m in ("train_loss", "test_loss", "test_acc")]
            for r in d["runs"]}  # fmt: skip


CLI_ARGS = ["--widths", "1", "2", "--seeds", "2", "--batch-size", "64", "--no-progress"]


def _main(*args: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingleSampleBatchWarning)
        return main(["resnet", *args])


def test_cli_deterministic(tmp_path, capsys):
    assert _main(*CLI_ARGS, "--epochs", "2", "--out", str(tmp_path / "a")) == 0
    assert "final test loss" in capsys.readouterr().out
    torch.manual_seed(1234)  # global RNG state must not matter
    assert _main(*CLI_ARGS, "--epochs", "2", "--out", str(tmp_path / "b")) == 0
    assert _numbers(tmp_path / "a") == _numbers(tmp_path / "b")
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["widths"] == [1, 2] and cfg["seeds"] == [0, 1] and cfg["epochs"] == 2


def _epochs_done(out: Path) -> int:
    done = 0
    for f in (out / "state").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):  # replaced atomically; never partial
            done += json.loads(f.read_text())["epochs_done"]
    return done


RESUME_EPOCHS = "12"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("resume") / "ref"
    assert _main(*CLI_ARGS, "--epochs", RESUME_EPOCHS, "--out", str(out), "--no-progress") == 0
    return _numbers(out)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, sig, uninterrupted):
    epochs = RESUME_EPOCHS
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emnet", "resnet", *CLI_ARGS, "--epochs", epochs, "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while _epochs_done(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (-sig, 130), (proc.returncode, err)
    assert not (out / "results.json").exists()
    done = _epochs_done(out)
    assert 0 < done < 2 * 2 * int(epochs)
    # every checkpoint left behind loads with weights_only=True
    for ckpt in (out / "state").glob("*.pt"):
        torch.load(ckpt, weights_only=True)
    assert _main(*CLI_ARGS, "--epochs", epochs, "--out", str(out)) == 0
    assert _numbers(out) == uninterrupted


def test_dask_local_cluster_equals_local_run(small, tmp_path, monkeypatch):
    import distributed
    from distributed import Client, LocalCluster

    _, res = small
    args = ["--widths", "2", "3", "--seeds", "2", "--epochs", "2", "--batch-size", "64",
            "--pack-size", "1", "--no-progress"]  # fmt: skip
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        # `emnet resnet --scheduler tcp://host:port`: one task per (width, seed)
        assert _main(*args, "--scheduler", address, "--out", str(tmp_path / "d")) == 0
        # `--dask local --workers 2` asks for a LocalCluster of 2 worker processes; starting
        # a second real one would double this test's time, so it gets the running one.
        calls: list[dict] = []

        def running_cluster(**kwargs):
            calls.append(kwargs)
            return cluster

        with monkeypatch.context() as m:
            m.setattr(distributed, "LocalCluster", running_cluster)
            m.setattr(cluster, "close", lambda *a, **k: calls.append({"closed": True}))
            rc = _main(*args, "--dask", "local", "--workers", "2", "--out", str(tmp_path / "l"))
        assert rc == 0
        assert calls[0]["n_workers"] == 2 and calls[0]["processes"] is True
        assert calls[-1] == {"closed": True}
    d = SweepResult.load(tmp_path / "d")
    local = _quiet_sweep(pack_size=1)
    assert d.numbers() == local.numbers()  # the same tasks run here: identical numbers
    assert SweepResult.load(tmp_path / "l").numbers() == local.numbers()
    # and equal to the default packing (both seeds in one task) to float rounding
    for r in res.runs:
        np.testing.assert_allclose(
            d.run(r.width, r.seed).test_loss, r.test_loss, rtol=1e-4, atol=1e-4
        )


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_cli_bad_input_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "o"
    for args, needle in [
        (["--widths", "0"], "--widths"),
        (["--epochs", "-1"], "--epochs"),
        (["--optimizer", "rmsprop"], "--optimizer"),
        (["--seeds", "0"], "--seeds"),
        (["--batch-size", "0"], "--batch-size"),
        (["--lr", "-1"], "--lr"),
        (["--out", str(tmp_path / "file" / "sub")], "--out"),
    ]:
        (tmp_path / "file").write_text("not a directory")
        rc = main(
            ["resnet", "--widths", "1", "--epochs", "1", "--no-progress", "--out", str(out), *args]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2, args
        assert len(err) == 1 and err[0].startswith("emnet resnet: error: " + needle), err
        assert not out.exists()


def test_cli_refuses_a_results_dir_of_another_configuration(tmp_path, capsys):
    out = tmp_path / "o"
    base = [
        "resnet",
        "--widths",
        "1",
        "--seeds",
        "1",
        "--batch-size",
        "64",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main([*base, "--epochs", "1"]) == 0
    capsys.readouterr()
    before = _snapshot(out)
    for extra in (
        ["--epochs", "2"],
        ["--epochs", "1", "--lr", "0.05"],
        ["--epochs", "1", "--drop-last"],
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "different configuration" in err[0], err
        assert _snapshot(out) == before  # nothing overwritten
    # the same command again is a (complete) resume: the same numbers
    numbers = _numbers(out)
    assert main([*base, "--epochs", "1"]) == 0
    assert _numbers(out) == numbers


def test_device_is_resolved_by_the_shared_checks(capsys):
    from emnet._checks import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda:0")
        code = main(["resnet", "--widths", "1", "--epochs", "0", "--seeds", "1",
                     "--device", "cuda:1", "--no-progress", "--out", "unused"])  # fmt: skip
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err[-1].startswith("emnet resnet: error: --device:"), err
