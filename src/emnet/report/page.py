"""The page around the sections: header (version, date, seeds, device, run time), a
table of contents with each section's status, and the sections themselves.

The page is self-contained apart from its image files: the stylesheet is inlined, there is
no script and no external resource, so it works opened straight from disk (file://).
"""

from __future__ import annotations

import html
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import resources

from emnet import __version__
from emnet.report.context import GENERATOR, Context, SectionOutcome
from emnet.report.html import Markup, esc, fmt, join, table, tag


def _stylesheet() -> str:
    return resources.files("emnet.report").joinpath("style.css").read_text(encoding="utf-8")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where available, else platform's description."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> str:
    import matplotlib
    import numpy as np

    parts = [f"Python {sys.version.split()[0]}", f"numpy {np.__version__}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    parts.append(f"matplotlib {matplotlib.__version__}")
    return ", ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _seed_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _header(
    ctx: Context, outcomes: Sequence[SectionOutcome], total: float, started: float
) -> Markup:
    n_failed = sum(not o.ok for o in outcomes)
    n_checks = sum(o.failed_checks for o in outcomes)
    if n_failed:
        status = f'<span class="badge fail">{n_failed} of {len(outcomes)} sections failed</span>'
    elif n_checks:
        status = f'<span class="badge fail">{_plural(n_checks, "check")} failed</span>'
    else:
        status = '<span class="badge ok">all sections and checks passed</span>'

    date = ctx.results.get("run", {}).get("generated_utc") or time.strftime(
        "%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)
    )
    devices = "; ".join(f"{k}: {v}" for k, v in ctx.devices.items()) or "CPU"
    facts = [
        ("emnet version", __version__),
        ("Generated", date),
        ("Mode", "quick (fewer iterations and epochs)" if ctx.quick else "full"),
        ("Total run time", f"{total:.1f} s"),
        ("Device", devices),
        ("Machine", f"{cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()}"),
        ("Software", _versions()),
        ("Data", "scikit-learn's bundled 8×8 digits (1,797 images; embedded, no download)"),
    ]
    dl = join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    seeds = table(
        ["what", "seed(s)"],
        [(k, _seed_text(v)) for k, v in ctx.seeds.items()],
        caption="Random seeds",
        class_="data compact",
    )
    return Markup(
        f"<header><h1>emnet report {status}</h1>"
        f'<p class="lead">The course write-up reproduced end to end: every number and '
        f"figure below was computed by this run of <code>emnet report</code>.</p>"
        f'<div class="meta"><dl>{dl}</dl>{seeds}</div></header>'
    )


def _toc(outcomes: Sequence[SectionOutcome]) -> Markup:
    rows = []
    for o in outcomes:
        if not o.ok:
            badge = '<span class="badge fail">failed</span>'
        elif o.failed_checks:
            badge = f'<span class="badge fail">{_plural(o.failed_checks, "check")} failed</span>'
        else:
            badge = '<span class="badge ok">ok</span>'

        rows.append(
            (
                Markup(f'<a href="#{html.escape(o.spec.anchor)}">{esc(o.spec.title)}</a>'),
                Markup(badge),
                Markup(f'<span class="num">{fmt(round(o.seconds, 2))} s</span>'),
            )
        )
    return Markup(
        f'<nav aria-label="Sections">{table(["section", "status", "time"], rows, class_="data toc")}</nav>'
    )


def _highlights(ctx: Context, outcomes: Sequence[SectionOutcome]) -> Markup:
    """The headline numbers of the sections that succeeded, one line each."""
    ok = {o.spec.anchor for o in outcomes if o.ok}
    r = ctx.results
    rows: list[tuple[object, ...]] = []

    def add(sid: str, label: str, value: Callable[[], object]) -> None:
        if sid not in ok:
            return
        try:
            text = str(value())
        except (KeyError, IndexError, TypeError):  # a builder that recorded less
            return
        rows.append((Markup(f'<a href="#{sid}">{esc(label)}</a>'), text))

    em = lambda: r["em"]
    dn = lambda: r["deepnet"]
    add(
        "em",
        "§1 log-likelihood per sample (K = 10)",
        lambda: f"{fmt(em()['loglik_per_sample'])} nats",
    )
    add("em", "§1 adjusted Rand index vs digit labels", lambda: fmt(em()["adjusted_rand_index"], 3))
    add("em", "§1 K with the lowest BIC", lambda: em()["bic_vs_k"]["best_k"])
    add(
        "deepnet",
        "§2 (∂f/∂w₁, ∂f/∂w₂, ∂f/∂w₃)",
        lambda: ", ".join(fmt(v) for v in dn()["gradients"]["closed form"]),
    )
    add(
        "deepnet",
        "§2 largest disagreement among the gradient methods",
        lambda: (
            f"{fmt(dn()['gradients_max_abs_diff_exact'], 3)} (exact methods), "
            f"{fmt(dn()['gradients_max_abs_diff_finite_differences'], 3)} (finite differences)"
        ),
    )
    add(
        "resnet",
        "§3 final test accuracy",
        lambda: ", ".join(f"C = {w['C']}: {fmt(w['test_acc'], 3)}" for w in r["resnet"]["widths"]),
    )
    add("resnet", "§3 sweep time", lambda: f"{r['resnet']['sweep_seconds']:.1f} s")
    errata_html = next((o.html for o in outcomes if o.spec.anchor == "errata"), "")
    add(
        "errata",
        "Errata of the write-up confirmed by a check",
        lambda: errata_html.count('<span class="badge ok">verified</span>'),
    )
    if not rows:
        return Markup("")
    return Markup(
        f'<div class="glance">'
        f"{table(['result', 'value'], rows, caption='Results at a glance', class_='data compact')}"
        "</div>"
    )


def _data_links(tables: Sequence[str]) -> Markup:
    if not tables:
        return Markup("")
    links = ", ".join(
        f'<a href="{html.escape(t, quote=True)}">{html.escape(t.rsplit("/", 1)[-1])}</a>'
        for t in tables
    )
    return Markup(f'<p class="data-files">Data of this section: {links}</p>')


def _section(o: SectionOutcome) -> Markup:
    sid = html.escape(o.spec.anchor)
    if o.ok:
        return Markup(
            f'<section id="{sid}" class="section" data-status="ok">'
            f"<h2>{esc(o.spec.title)}</h2>"
            f'<p class="lead">{esc(o.spec.lead)}</p>{o.html}{_data_links(o.tables)}</section>'
        )
    return Markup(
        f'<section id="{sid}" class="section failed" data-status="failed">'
        f'<h2>{esc(o.spec.title)} <span class="badge fail">failed</span></h2>'
        f'<p class="lead">{esc(o.spec.lead)}</p>'
        f'<div class="error"><p><strong>This section failed</strong> after '
        f"{o.seconds:.1f} s:</p>{tag('pre', o.error, class_='message')}"
        f"<details><summary>Traceback</summary>{tag('pre', o.traceback)}</details></div>"
        f"</section>"
    )


def render_page(
    ctx: Context, outcomes: Sequence[SectionOutcome], total_seconds: float, started: float
) -> str:
    """The whole ``index.html`` as a string."""
    overview = Markup(f'<div class="overview">{_toc(outcomes)}{_highlights(ctx, outcomes)}</div>')
    body = join([_header(ctx, outcomes, total_seconds, started), overview])
    body = join([body, "<main>", *(_section(o) for o in outcomes), "</main>"])
    footer = (
        "<footer>Written by <code>emnet report</code>"
        f"{' --quick' if ctx.quick else ''}. Every number in this page is also in "
        '<a href="results.json">results.json</a>; tables are in <code>tables/</code>, '
        "figures in <code>figures/</code>.</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="generator" content="{GENERATOR} {html.escape(__version__)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        "<title>emnet report</title>\n"
        f"<style>\n{_stylesheet()}\n</style>\n</head>\n<body>\n{body}\n{footer}\n</body>\n</html>\n"
    )
