"""LatentClassModel's starts on threads: the same fit with its starts one after another
and with the starts after the first on one thread per core (the default when the first
start's run takes at least ``CONCURRENT_MIN_SECONDS`` per E-step).

Each case fits ``LatentClassModel(K, covariance=..., n_init=20, search_budget=0)`` on
iris, wine, breast cancer and planted sets of 2 000 and 20 000 rows × 10
(``lpa.planted``), VVI and VVV; a second table fits a few cases with the start search on
(the default budget), whose screening runs take the same threads.
"serial" forces every start into the calling thread (``CONCURRENT_MIN_SECONDS`` = ∞),
"default" is the fit as users run it; both give the same maximum (checked). Each time is
the median of 3 runs. Run on a quiet machine: ``python benchmarks/lpa_threads.py``
(writes the ``lpa-threads`` section of docs/benchmarks.md); ``--quick``: a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, machine_line, markdown_table, write_section  # noqa: E402
from lpa import planted  # noqa: E402

from emnet.mixture import LatentClassModel  # noqa: E402
from emnet.mixture.estimators import latent  # noqa: E402

DEFAULT_CASES = [("cancer", "VVV", 4), ("cancer", "VVI", 5), ("planted 2000", "VVV", 5),
                 ("wine", "EEE", 5)]  # fmt: skip
"""The fits with the start search: (data, structure, K)."""


def datasets(quick: bool) -> dict[str, tuple[np.ndarray, int]]:
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine

    out = {"iris": (load_iris().data, 3), "wine": (load_wine().data, 3)}
    if not quick:
        out["cancer"] = (load_breast_cancer().data, 3)
    out["planted 2000"] = (planted(2000), 4)
    if not quick:
        out["planted 20000"] = (planted(20_000), 4)
    return out


def fit(
    X: np.ndarray, k: int, structure: str, n_init: int, serial: bool, budget: float | None = 0.0
) -> LatentClassModel:
    """The fit with ``search_budget=budget`` (None: the default, the start search on)."""
    limit = latent.CONCURRENT_MIN_SECONDS
    latent.CONCURRENT_MIN_SECONDS = np.inf if serial else limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search = {} if budget is None else {"search_budget": budget}
            model = LatentClassModel(k, covariance=structure, n_init=n_init, random_state=0,
                                     **search)  # fmt: skip
            return model.fit(X)
    finally:
        latent.CONCURRENT_MIN_SECONDS = limit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-init", type=int, default=20)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    n_init = 4 if args.quick else args.n_init
    repeat = 1 if args.quick else 3
    rows, total = [], {"serial": 0.0, "default": 0.0}
    for name, (X, k) in datasets(args.quick).items():
        for structure in ("VVI", "VVV"):
            a = fit(X, k, structure, n_init, serial=True)
            b = fit(X, k, structure, n_init, serial=False)
            same = a.lower_bound_ == b.lower_bound_
            case = (X, k, structure, n_init)
            t_serial = best_of(lambda c=case: fit(*c, serial=True), repeat, 0)
            t_default = best_of(lambda c=case: fit(*c, serial=False), repeat, 0)
            total["serial"] += t_serial
            total["default"] += t_default
            row = [name, f"{X.shape[0]} × {X.shape[1]}", structure, k,
                   f"{1e3 * t_serial / a.init_n_em_steps_.sum():.3f}", t_serial, t_default,
                   f"{t_serial / t_default:.2f}×", "yes" if same else "NO"]  # fmt: skip
            rows.append(row)
            print(" | ".join(map(str, row)), flush=True)
    table = markdown_table(
        ["data", "rows × columns", "structure", "K", "serial ms per E-step", "serial s",
         "default s", "serial / default", "same maximum"],
        rows,
    )  # fmt: skip
    search_rows = []
    for name, structure, k in DEFAULT_CASES if not args.quick else [("wine", "EEE", 4)]:
        X = datasets(args.quick)[name][0]
        a = fit(X, k, structure, n_init, serial=True, budget=None)
        b = fit(X, k, structure, n_init, serial=False, budget=None)
        same = (a.lower_bound_, a.n_screened_) == (b.lower_bound_, b.n_screened_)
        case = (X, k, structure, n_init)
        t_serial = best_of(lambda c=case: fit(*c, serial=True, budget=None), repeat, 0)
        t_default = best_of(lambda c=case: fit(*c, serial=False, budget=None), repeat, 0)
        row = [name, structure, k, a.n_screened_, t_serial, t_default,
               f"{t_serial / t_default:.2f}×", "yes" if same else "NO"]  # fmt: skip
        search_rows.append(row)
        print(" | ".join(map(str, row)), flush=True)
    search_table = markdown_table(
        ["data", "structure", "K", "extra starts screened", "serial s", "default s",
         "serial / default", "same fit and search"],
        search_rows,
    )  # fmt: skip
    body = (
        "## Latent profile analysis: starts on threads (`benchmarks/lpa_threads.py`)\n\n"
        f"{machine_line()}\n\n"
        f"`LatentClassModel(K, covariance=..., n_init={n_init}, search_budget=0)`: every "
        "start in the calling thread (serial) against the default, which runs the starts "
        "after the first on one thread per core when one E-step, timed at the first "
        f"start's end, takes at least {latent.CONCURRENT_MIN_SECONDS * 1e3:g} ms (results "
        "equal: checked). "
        f"Median of {repeat} runs. Whole table: serial {total['serial']:.2f} s, default "
        f'{total["default"]:.2f} s ({total["serial"] / total["default"]:.2f}×). "serial ms per '
        "E-step\": the serial fit's seconds over its E-steps (all starts; fit overheads "
        "included).\n\n"
        f"{table}\n\n"
        "With the start search (the default `search_budget`): the same threads screen the "
        "search's extra starts, one per core at a time, taken in order as if screened one "
        "after another (those screened ahead of the search's stop are undone), so the fit "
        "and the number of starts screened are those of the serial search (checked). The "
        "grown starts' levels run on them too, and screened starts that reach the search's "
        "bar two or more at a time are finished ahead on them.\n\n"
        f"{search_table}\n"
    )
    print(body)
    if not args.no_write and not args.quick:
        write_section("lpa-threads", body)


if __name__ == "__main__":
    main()
