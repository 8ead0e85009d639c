"""Run every section of the report and write ``index.html`` with its figures and tables.

The sections are the list :data:`emnet.report.sections.SECTIONS` (read at run time);
each is a builder ``build(ctx) -> html`` that runs one system of the write-up on
embedded data, saves its figures and tables through the :class:`Context`, records its
numbers in ``ctx.results`` and returns its HTML. A builder that raises is shown as failed
in the page (with the error) and makes :func:`build_report` return 1; the other sections
are still written. The output directory follows emnet's ownership rule
(:func:`emnet._io.owned_output`): a new or empty directory, or an earlier report's (its
``.emnet-run.json``); the new report is built in a staging directory and moved into place
only when complete, replacing only the files the earlier report wrote.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from emnet import _io
from emnet._checks import check_bool
from emnet.report import sections
from emnet.report.context import Context, SectionOutcome, SectionSpec
from emnet.report.html import count_failed_checks


def report_config(quick: bool) -> dict[str, Any]:
    """What decides a report's contents (its ownership marker's configuration)."""
    return {"quick": quick}


def check_out_dir(
    out_dir: str | os.PathLike[str],
    arg: str = "out_dir",
    *,
    quick: bool = False,
    force: bool = False,
    force_flag: str = "force=True",
) -> Path:
    """Validate the output directory before any work (:func:`emnet._io.check_output_dir`):
    a ValueError naming ``arg`` if it is a file, a non-empty directory that does not hold
    an emnet report (so a typo can never touch a directory of the user's), an earlier
    report of the other size (``quick``) unless ``force``, or not writable."""
    _io.check_output_dir(
        out_dir, "report", report_config(quick), force=force, arg=arg, force_flag=force_flag
    )
    out = Path(out_dir)
    probe = out if out.is_dir() else Path(os.path.abspath(out)).parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{arg}: directory {probe} is not writable")
    return out


def run_section(spec: SectionSpec, ctx: Context) -> SectionOutcome:
    """Run one builder; an exception becomes a failed outcome carrying its message."""
    start = time.perf_counter()
    tables_before = _tables(ctx.root)
    try:
        body = spec.build(ctx)
    except Exception as exc:  # a failed section is reported, never fatal to the page
        ctx.results.setdefault(spec.anchor, {})["error"] = f"{type(exc).__name__}: {exc}"
        return SectionOutcome(
            spec,
            ok=False,
            seconds=time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
    return SectionOutcome(
        spec,
        ok=True,
        seconds=time.perf_counter() - start,
        html=body,
        failed_checks=count_failed_checks(body),
        tables=sorted(_tables(ctx.root) - tables_before),
    )


def _tables(root: Path) -> set[str]:
    folder = root / "tables"
    if not folder.is_dir():
        return set()
    return {f"tables/{p.name}" for p in folder.iterdir() if p.is_file()}


def build_report(
    out_dir: str | os.PathLike[str] = "report",
    quick: bool = False,
    progress: bool = True,
    *,
    force: bool = False,
    arg: str = "out_dir",
    force_flag: str = "force=True",
) -> int:
    """Run all three systems and write ``out_dir/index.html`` with figures and tables.

    ``quick`` runs fewer iterations and epochs (well under a minute). Returns 0 when every
    section succeeded and every check it shows held, 1 otherwise (the page then shows
    which section or check failed, and why). ``out_dir``: a new or empty directory, or an
    earlier report's; one of the other size (``quick``) only with ``force``. Files in it
    that emnet did not write are kept (a ValueError if the report would replace one).
    """
    from tqdm.auto import tqdm

    from emnet.report.page import render_page

    check_bool(quick, "quick")
    check_bool(force, "force")
    started = time.perf_counter()
    started_wall = time.time()
    outcomes: list[SectionOutcome] = []
    with _io.owned_output(
        out_dir, "report", report_config(quick), force=force, arg=arg, force_flag=force_flag
    ) as tmp:
        ctx = Context(root=tmp, quick=quick, progress=progress)
        bar = tqdm(
            sections.SECTIONS,
            desc="emnet report",
            unit="section",
            disable=not progress,
            file=sys.stderr,
            leave=True,
        )
        for spec in bar:
            bar.set_postfix_str(spec.title)
            outcome = run_section(spec, ctx)
            outcomes.append(outcome)
            if progress:
                if not outcome.ok:
                    status = f"FAILED ({outcome.error})"
                elif outcome.failed_checks:
                    status = f"done, {outcome.failed_checks} check(s) FAILED"
                else:
                    status = "done"
                bar.write(f"{spec.title}: {status} in {outcome.seconds:.1f} s", file=sys.stderr)
        bar.close()
        total = time.perf_counter() - started
        ctx.results["run"] = {
            "generated_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started_wall)),
            "quick": quick,
            "total_seconds": total,
            "sections": {
                o.spec.anchor: {"ok": o.ok, "failed_checks": o.failed_checks, "seconds": o.seconds}
                for o in outcomes
            },
            "seeds": ctx.seeds,
            "devices": ctx.devices,
        }
        _io.write_json(tmp / "results.json", ctx.results)
        page = render_page(ctx, outcomes, total_seconds=total, started=started_wall)
        _io.write_text(tmp / "index.html", page)
    return 0 if all(o.passed for o in outcomes) else 1
