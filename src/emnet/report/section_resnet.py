"""§3 of the report: the ResNet width study (C = 1, 2, 4, 64) on the digits.

Loss curves per width (train blue, test orange, as in the write-up), final test accuracy
and parameter count vs C, and how long the sweep took. The sweep's size comes from
``emnet.resnet.REPORT_SETTINGS`` ("full" or "quick"), chosen by the ResNet system for the
report's time budget.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from emnet.report.html import Markup, check, checks, figure, fmt, join, p, table, tag

if TYPE_CHECKING:
    from emnet.report.context import Context


def sweep_settings(quick: bool) -> tuple[dict[str, Any], str]:
    """The sweep's keyword arguments (``emnet.resnet.REPORT_SETTINGS``, sized by the ResNet
    system for the report's time budget, plus the write-up's widths) and their source."""
    import emnet.resnet

    mode = "quick" if quick else "full"
    settings = dict(emnet.resnet.REPORT_SETTINGS[mode])
    settings["widths"] = list(emnet.resnet.REPORT_WIDTHS)
    return settings, f"emnet.resnet.REPORT_SETTINGS[{mode!r}]"


def build(ctx: Context) -> str:
    from emnet.resnet import (
        SingleSampleBatchWarning,
        count_parameters,
        make_resnet,
        plot_curves,
        plot_summary,
        sweep,
    )
    from emnet.resnet.model import resnet_parameter_count

    settings, source = sweep_settings(ctx.quick)
    settings.setdefault("device", "cpu")
    start = time.perf_counter()
    with warnings.catch_warnings():
        # the single-sample last batch is stated in the page (see _settings_text)
        warnings.simplefilter("ignore", SingleSampleBatchWarning)
        result = sweep(**settings, progress=ctx.progress)
    seconds = time.perf_counter() - start
    config = result.config
    ctx.devices["§3 ResNet"] = f"{config['device']} (torch)"
    ctx.seeds["§3 ResNet weights and batch order (one run per seed)"] = list(result.seeds)

    curves_src, summary_src = "figures/resnet_curves.png", "figures/resnet_summary.png"
    plot_curves(result, ctx.path(curves_src))
    plot_summary(result, ctx.path(summary_src))
    _io_write_sweep(ctx, result)

    rows = []
    for w in result.widths:
        test_acc = result.curves(w, "test_acc")[:, -1]
        rows.append(
            {
                "C": int(w),
                "params": int(result.param_counts[w]),
                "train_loss": float(result.curves(w, "train_loss")[:, -1].mean()),
                "test_loss": float(result.curves(w, "test_loss")[:, -1].mean()),
                "test_acc": float(test_acc.mean()),
                "test_acc_min": float(test_acc.min()),
                "test_acc_max": float(test_acc.max()),
                "seconds": float(sum(result.run(w, s).wall_time for s in result.seeds)),
            }
        )
    n_epochs = int(config["epochs"])
    closed_form = {r["C"]: resnet_parameter_count(r["C"]) for r in rows}
    instantiated = {r["C"]: count_parameters(make_resnet(r["C"], seed=0)) for r in rows}
    params_ok = all(r["params"] == closed_form[r["C"]] == instantiated[r["C"]] for r in rows)
    lengths_ok = all(
        len(getattr(run, m)) == n_epochs + 1
        for run in result.runs
        for m in ("train_loss", "test_loss")
    )
    finite_ok = all(
        np.all(np.isfinite(getattr(run, m)))
        for run in result.runs
        for m in ("train_loss", "test_loss")
    )
    res = ctx.results.setdefault("resnet", {})
    res.update(
        settings_source=source,
        config=config,
        sweep_seconds=seconds,
        sweep_wall_time=float(result.wall_time),
        single_sample_last_batch=bool(result.single_sample_last_batch),
        last_batch_size=int(result.last_batch_size),
        widths=rows,
    )
    header = ["C", "parameters", "final train loss", "final test loss", "final test accuracy",
              "accuracy range over seeds", "training time (s)"]  # fmt: skip
    table_rows = [
        (r["C"], r["params"], r["train_loss"], r["test_loss"], r["test_acc"],
         f"{r['test_acc_min']:.3f} – {r['test_acc_max']:.3f}", round(r["seconds"], 2))
        for r in rows
    ]  # fmt: skip
    ctx.write_csv("resnet_summary.csv", header, table_rows)
    finding = _finding(rows)
    return join(
        [
            p(_settings_text(config, result, seconds, source)),
            figure(
                curves_src,
                "loss curves per width",
                "Train loss (blue) and test loss (orange) per epoch for each width C, as in the "
                "write-up's figures: mean over seeds, band = min–max over seeds; epoch 0 is "
                "before training.",
                1100,
            ),
            table(header, table_rows, caption=f"After {n_epochs} epochs", class_="data compact"),
            figure(
                summary_src,
                "final test loss and accuracy vs width",
                "Final test loss and test accuracy against C (dots: seeds; line: mean).",
                860,
            ),
            _params_figure(ctx, rows),
            checks(
                [
                    check(
                        params_ok,
                        "Parameter counts equal the closed form 18C² + 25C + 10 and an "
                        "instantiated ResNet(C): "
                        + ", ".join(f"C = {r['C']}: {r['params']:,}" for r in rows)
                        + ".",
                    ),
                    check(lengths_ok, f"Every curve has epochs + 1 = {n_epochs + 1} points."),
                    check(finite_ok, "Every loss is finite."),
                ]
            ),
            tag("h3", "The write-up's finding"),
            p(finding),
        ]
    )


def _io_write_sweep(ctx: Context, result: Any) -> None:
    from emnet import _io

    _io.write_json(ctx.path("tables/resnet_sweep.json"), result.to_json())
    _io.write_text(ctx.path("tables/resnet_sweep.csv"), result.to_csv())


def _settings_text(config: dict[str, Any], result: Any, seconds: float, source: str) -> str:
    seeds = list(result.seeds)
    text = (
        f"Widths C = {', '.join(str(w) for w in result.widths)}; {config['epochs']} epochs; "
        f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); batch size {config['batch_size']}; "
        f"optimizer {config['optimizer']} (lr {config['lr']}"
        + (f", momentum {config['momentum']}" if config["optimizer"] == "momentum" else "")
        + f"); device {config['device']}. Settings from {source}. "
        f"The sweep took {seconds:.1f} s ({len(result.runs)} runs)."
    )
    if result.single_sample_last_batch:
        text += (
            f" With {result.n_train:,} training images and batch size {config['batch_size']}, "
            "every epoch would end on a batch of one sample, whose BatchNorm statistics spoil "
            "the running averages (the eval-mode losses of the widest nets then jump in early "
            "epochs); "
            + (
                "this run drops it (drop_last)."
                if config["drop_last"]
                else "this run keeps it, as the write-up did."
            )
        )
    return text


def _finding(rows: list[dict[str, Any]]) -> Markup:
    """Does this run reproduce 'the wider the net, the lower the loss'? Reported, not
    asserted: with few epochs (the quick report) it need not hold."""
    ordered = sorted(rows, key=lambda r: r["C"])
    losses = [r["train_loss"] for r in ordered]
    monotone = all(b <= a for a, b in zip(losses, losses[1:]))
    widest = ordered[-1]
    text = (
        "The write-up: the wider the net, the faster and smoother the loss falls; at C = 64 "
        "it nears zero within about 50 epochs. This run: final train loss "
        + ", ".join(f"{fmt(r['train_loss'], 3)} at C = {r['C']}" for r in ordered)
        + (
            " — falling with width, as the write-up found"
            if monotone
            else " — not monotone in width in this run"
        )
        + f"; at C = {widest['C']} the final test accuracy is {fmt(widest['test_acc'], 3)}."
    )
    return Markup(f"{p(text)}")


def _params_figure(ctx: Context, rows: list[dict[str, Any]]) -> Markup:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.4, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    cs = [r["C"] for r in rows]
    ax1.plot(cs, [r["params"] for r in rows], marker="o", color="tab:blue")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xticks(cs, [str(c) for c in cs])
    ax1.set_xlabel("width C")
    ax1.set_ylabel("parameters")
    ax1.set_title("parameter count vs C")
    ax1.grid(alpha=0.3, which="both")
    params = [r["params"] for r in rows]
    ax2.errorbar(
        params,
        [r["test_acc"] for r in rows],
        yerr=[
            [r["test_acc"] - r["test_acc_min"] for r in rows],
            [r["test_acc_max"] - r["test_acc"] for r in rows],
        ],
        marker="o",
        color="tab:orange",
        capsize=3,
    )
    for r in rows:
        ax2.annotate(f"C = {r['C']}", (r["params"], r["test_acc"]), textcoords="offset points",
                     xytext=(6, -12), fontsize=8)  # fmt: skip
    ax2.set_xscale("log")
    ax2.set_xlim(min(params) / 2, max(params) * 4)  # room for the labels
    ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("final test accuracy")
    ax2.set_title("test accuracy vs parameters (bar: min–max)")
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    src = ctx.savefig(fig, "resnet_params_accuracy.png")
    return figure(
        src,
        "parameter count vs width, test accuracy vs parameters",
        "Parameter count against C (18C² + 25C + 10), and final test accuracy against the "
        "parameter count (mean over seeds, bar = min–max).",
        860,
    )
