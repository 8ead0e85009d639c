"""Every public plotting function leaves matplotlib's global state alone: the backend the
caller chose is unchanged and pyplot holds no figure (issue 14: no ``matplotlib.use`` in
library code). Run in a fresh interpreter with a non-Agg backend, so a switch shows."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import tempfile
    from pathlib import Path

    import matplotlib
    import numpy as np

    matplotlib.use("svg")
    before = matplotlib.get_backend()
    out = Path(tempfile.mkdtemp())

    from matplotlib.figure import Figure

    from emnet.mixture.plots.common import plot_history, plot_means

    rng = np.random.default_rng(0)
    means = rng.uniform(size=(3, 4))
    plot_means(means, out / "m.png", weights=np.full(3, 1 / 3), image_shape=(2, 2))
    plot_means(means, out / "h.png")
    plot_means(means, ax=Figure().subplots(1, 3), image_shape=(2, 2))
    plot_history([-3.0, -2.0, -1.5], out / "l.png")
    plot_history([-3.0, -2.0, -1.5], ax=Figure().add_subplot())

    from emnet.mixture.inference.selection import plot_bic, select_n_components

    X = (rng.uniform(size=(60, 5)) < 0.4).astype(float)
    sel = select_n_components(X, [1, 2], n_init=1, random_state=0)
    plot_bic(sel, out / "bic.png")
    plot_bic(sel, ax=Figure().add_subplot())

    from emnet.resnet import RunResult, SweepResult, plot_curves, plot_summary

    runs = [
        RunResult(w, s, [1.0, 0.5], [1.1, 0.6], [0.2, 0.5], [0.2, 0.4], 10, 0.1, [0, 1])
        for w in (1, 2)
        for s in (0, 1)
    ]
    config = {"widths": [1, 2], "seeds": [0, 1], "epochs": 1, "optimizer": "sgd", "lr": 0.1,
              "batch_size": 16, "drop_last": True}
    res = SweepResult(config, runs, {1: 10, 2: 20}, 100, 4, False, 1.0)
    plot_curves(res, out / "c.png")
    plot_summary(res, out / "s.png")

    from emnet.autodiff import demo

    demo.plot_moons(demo.train_moons(steps=2, n_samples=20))
    demo.plot_cnn_curves(demo.CNNCurves(losses=[2.3, 2.0], test_accuracy=0.3))

    after = matplotlib.get_backend()
    assert after == before, (before, after)
    plt = sys.modules.get("matplotlib.pyplot")
    assert plt is None or plt.get_fignums() == [], plt.get_fignums()
    print("ok", before, after)
    """
)


def test_plotting_functions_leave_backend_and_pyplot_alone():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok svg svg")
