"""One self-contained HTML page for an ``emnet lca`` run.

:func:`render_lca_page` is pure: it takes what the run computed (facts about the data,
the model-selection table, the figures as PNG bytes, the chosen model's summary text, the
classification table, warnings, any further tables) and returns the page as a string.
The caller writes it (``emnet._io.write_text(out / "report.html", page)``).

The page stands alone: the stylesheet is the report's (``style.css``) inlined, the
figures are embedded as base64 ``data:`` URIs, and there is no script and no external
resource, so it opens from disk, from an e-mail attachment or offline. Every piece of
text from the run (the title, item and column names, answers, warnings) is escaped, so a
hostile item name such as ``<script>`` is shown as text, never run.

Sections, in this order (a section with nothing to show is left out):

1. **Data** — ``data_summary``'s (label, value) pairs, e.g. file, rows, items, item
   types, weights, rows left out;
2. **Warnings** — highlighted; omitted when there are none;
3. **Model selection** — ``selection_table`` and the figure ``figures["bic"]``;
4. **Chosen model** — ``summary_text`` as preformatted text (estimates with their SEs);
5. **Profile** — ``figures["profile"]``;
6. **Classification** — ``classification``;
7. one section per entry of ``extra_tables`` (e.g. "Coefficients"), in their order;
8. **More figures** — any other entries of ``figures`` (e.g. a covariate effect), in
   their order, captioned by their key.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from numbers import Real
from typing import Any

import numpy as np

from emnet import __version__
from emnet.report.html import Markup, esc, join, table

__all__ = ["FIGURE_CAPTIONS", "render_lca_page"]

#: The captions of the figures the page places in their own sections.
FIGURE_CAPTIONS = {
    "bic": "Information criteria by number of classes (lower is better).",
    "profile": "Profile of the chosen model: the answer probabilities of each class, "
    "with ±1.96 standard-error bars where standard errors were computed.",
}

_EXTRA_CSS = """
.warnings { background: #fff8e1; border: 1px solid #f0c36d; border-left: 5px solid #e0a100;
  border-radius: 8px; padding: 8px 16px; margin: 0.6rem 0 1rem; }
.warnings ul { margin: 0.3rem 0; padding-left: 1.2rem; }
.warnings li { margin: 2px 0; }
nav.toc ol { display: flex; flex-wrap: wrap; gap: 4px 18px; list-style: none; padding: 0; margin: 0.4rem 0 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0;
  background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
"""

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def _stylesheet() -> str:
    css = resources.files("emnet.report").joinpath("style.css").read_text(encoding="utf-8")
    return css + _EXTRA_CSS


def _data_uri(name: str, data: bytes) -> str:
    """``data`` (PNG, JPEG or SVG bytes) as a ``data:`` URI; anything else is a ValueError
    naming the figure."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"figures[{name!r}]: expected the image's bytes, got {type(data).__name__}")
    data = bytes(data)
    mime = next((m for magic, m in _MAGIC if data.startswith(magic)), None)
    if mime is None and b"<svg" in data[:1000]:
        mime = "image/svg+xml"
    if mime is None:
        raise ValueError(f"figures[{name!r}]: not a PNG, JPEG or SVG image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _figure(name: str, data: bytes, caption: str) -> Markup:
    src = _data_uri(name, data)
    return Markup(
        f'<figure data-name="{html.escape(name, quote=True)}"><img src="{src}" '
        f'alt="{html.escape(caption, quote=True)}" loading="eager">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def _cell(value: Any) -> Any:
    """A table cell: numbers stay numbers (right-aligned, formatted by ``fmt``), a missing
    value is a dash, anything else text."""
    if value is None:
        return "–"
    if isinstance(value, np.generic):
        value = value.item()  # numpy scalars → Python
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, Real) and not isinstance(value, bool):
        return value
    return str(value)


def _frame_table(frame: Any, caption: str | None = None) -> Markup:
    """A pandas DataFrame as a table; a named or non-default index becomes the first
    column(s)."""
    if not (hasattr(frame, "columns") and hasattr(frame, "itertuples")):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    index = frame.index
    default_index = index.names == [None] and list(index) == list(range(len(frame)))
    if not default_index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return table(header, rows, caption=caption)


def _section(anchor: str, title: str, body: str) -> Markup:
    return Markup(
        f'<section id="{html.escape(anchor, quote=True)}" class="section">'
        f"<h2>{esc(title)}</h2>{body}</section>"
    )


def render_lca_page(
    *,
    title: str,
    data_summary: Sequence[tuple[str, str]],
    selection_table: Any,
    figures: Mapping[str, bytes],
    summary_text: str,
    classification: Any = None,
    warnings: Sequence[str] = (),
    extra_tables: Mapping[str, Any] | None = None,
) -> str:
    """The HTML page of one ``emnet lca`` run (see the module docstring for the sections).

    Parameters
    ----------
    title : the page's heading and ``<title>`` (e.g. "emnet lca: survey.csv").
    data_summary : (label, value) pairs shown as a list of facts, e.g.
        ``[("file", "survey.csv"), ("rows", "1,200"), ("items", "12"), ("item types",
        "categorical (2–6 answers)"), ("weights", "none"), ("rows left out", "3 (all
        answers missing)")]``.
    selection_table : ``SelectionResult.to_frame()`` (a DataFrame, drawn as a table) or
        ``format_selection_table(...)``'s text (shown preformatted).
    figures : name → image bytes (PNG; JPEG and SVG also work). ``"bic"`` goes under the
        selection table, ``"profile"`` in its own section, any others in "More figures".
    summary_text : ``str(model.summary(X))``: shown preformatted.
    classification : a DataFrame (e.g. ``summary.tables()["classification"]``) or None.
    warnings : lines shown highlighted near the top (none: no section).
    extra_tables : heading → DataFrame, one section each (e.g. ``{"Coefficients":
        model.coefficients()}``).

    Returns the whole page (``<!DOCTYPE html>`` ... ``</html>``) as a string; write it as
    UTF-8. Raises TypeError/ValueError for a figure that is not image bytes or a table
    that is not a DataFrame.
    """
    extra_tables = dict(extra_tables or {})
    figures = dict(figures)
    sections: list[tuple[str, str, Markup]] = []

    facts = join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in data_summary)
    sections.append(("data", "Data", Markup(f'<dl class="facts">{facts}</dl>')))

    warnings = [str(w) for w in warnings]
    if warnings:
        items = join(f"<li>{esc(w)}</li>" for w in warnings)
        box = Markup(f'<div class="warnings" role="alert"><ul>{items}</ul></div>')
        sections.append(("warnings", f"Warnings ({len(warnings)})", box))

    if isinstance(selection_table, str):
        selection = Markup(f'<pre class="summary">{esc(selection_table)}</pre>')
    else:
        selection = _frame_table(selection_table)
    if "bic" in figures:
        selection = join([selection, _figure("bic", figures.pop("bic"), FIGURE_CAPTIONS["bic"])])
    sections.append(("selection", "Model selection", selection))

    summary = Markup(f'<pre class="summary">{esc(summary_text)}</pre>')
    sections.append(("summary", "Chosen model", summary))

    if "profile" in figures:
        profile = _figure("profile", figures.pop("profile"), FIGURE_CAPTIONS["profile"])
        sections.append(("profile", "Profile", profile))

    if classification is not None:
        sections.append(("classification", "Classification", _frame_table(classification)))

    for i, (name, frame) in enumerate(extra_tables.items()):
        sections.append((f"table-{i + 1}", str(name), _frame_table(frame)))

    if figures:
        more = join(_figure(str(k), v, str(k)) for k, v in figures.items())
        sections.append(("figures", "More figures", more))

    toc = join(f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t, _ in sections)
    body = join(
        [
            f"<header><h1>{esc(title)}</h1>",
            f'<p class="lead">Latent class analysis written by <code>emnet lca</code> '
            f"(emnet {esc(__version__)}).</p>",
            f'<nav class="toc" aria-label="Sections"><ol>{toc}</ol></nav></header>',
            "<main>",
            *(_section(a, t, b) for a, t, b in sections),
            "</main>",
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n"
        f"<style>\n{_stylesheet()}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
