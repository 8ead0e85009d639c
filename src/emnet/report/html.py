"""Small HTML builders for the report: escaping, number formatting, tables, figures.

Every helper returns :class:`Markup` (HTML that must not be escaped again); any other
value passed into a table cell or a paragraph is escaped, so text from the run (error
messages, layer names) can never break the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from numbers import Integral, Real

import numpy as np


class Markup(str):
    """A string of HTML that is already safe to insert as is."""


def esc(value: object) -> Markup:
    """``value`` as HTML: Markup passes through, anything else is formatted and escaped."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, bool | np.bool_):
        return Markup(fmt(value))
    if isinstance(value, Real | np.number):
        return Markup(html.escape(fmt(value)))
    return Markup(html.escape(str(value)))


def fmt(value: object, digits: int = 6) -> str:
    """Format a number for people: integers with thousands separators, floats to
    ``digits`` significant digits (scientific notation when very small or large), bools
    as yes/no."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, Integral | np.integer):
        return f"{int(value):,}"
    if isinstance(value, Real | np.floating):
        x = float(value)
        if math.isnan(x) or math.isinf(x):
            return str(x)
        if x == 0.0:
            return "0"
        return f"{x:.{digits}g}"
    return str(value)


def join(parts: Iterable[str]) -> Markup:
    """Concatenate HTML fragments."""
    return Markup("\n".join(parts))


def tag(name: str, content: object = "", **attrs: object) -> Markup:
    """``<name attrs>content</name>``; ``class_`` becomes ``class``; content is escaped
    unless it is Markup."""
    rendered = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{html.escape(str(v), quote=True)}"'
        for k, v in attrs.items()
        if v is not None
    )
    return Markup(f"<{name}{rendered}>{esc(content)}</{name}>")


def p(content: object, **attrs: object) -> Markup:
    return tag("p", content, **attrs)


def code(content: object) -> Markup:
    return tag("code", content)


def table(
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    caption: object | None = None,
    class_: str = "data",
) -> Markup:
    """A table; numeric cells are right-aligned (class ``num``)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, Real | np.number) and not isinstance(cell, bool)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f'<div class="table-caption">{esc(caption)}</div>' if caption is not None else ""
    return Markup(
        f'<div class="table-wrap">{cap}<table class="{html.escape(class_)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def figure(src: str, alt: str, caption: object, width: int | None = None) -> Markup:
    """An image with a caption; ``src`` is relative to index.html."""
    w = f' style="max-width:{int(width)}px"' if width else ""
    return Markup(
        f'<figure><img src="{html.escape(src, quote=True)}" alt="{html.escape(alt, quote=True)}"'
        f' loading="eager"{w}><figcaption>{esc(caption)}</figcaption></figure>'
    )


#: CSS class of a verification that failed; the report counts them in each section.
FAILED_CHECK = "check failed"


def check(ok: bool, text: object) -> Markup:
    """A verification line: a green tick or a red cross, then ``text``."""
    if ok:
        return Markup(f'<li class="check passed"><span class="ok">✔</span> {esc(text)}</li>')
    return Markup(f'<li class="{FAILED_CHECK}"><span class="bad">✘</span> {esc(text)}</li>')


def count_failed_checks(fragment: str) -> int:
    """How many :func:`check` lines in an HTML fragment failed."""
    return fragment.count(f'<li class="{FAILED_CHECK}">')


def checks(items: Iterable[Markup]) -> Markup:
    return Markup(f'<ul class="checks">{"".join(items)}</ul>')


def guarded(name: str, build: Callable[[], str]) -> Markup:
    """``build()``'s HTML, or, if it raises, an error box naming ``name`` and the error.

    The box is a failed :func:`check`, so the section still renders its other parts while
    the failure is counted (and makes the report's exit code non-zero)."""
    try:
        return Markup(build())
    except Exception as exc:  # one part failing must not take the section down
        return Markup(
            '<div class="error part">'
            + checks([check(False, f"{name} failed: {type(exc).__name__}: {exc}")])
            + "</div>"
        )
