"""The report's HTML helpers: escaping, number formatting, tables, failed-check counting."""

from __future__ import annotations

import numpy as np

from emnet.report.html import Markup, check, checks, count_failed_checks, esc, fmt, table


def test_esc_escapes_text_and_passes_markup() -> None:
    assert esc("<script>alert('x')</script>") == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert esc(Markup("<b>ok</b>")) == "<b>ok</b>"
    assert esc(True) == "yes" and esc(np.bool_(False)) == "no"


def test_fmt_numbers() -> None:
    assert fmt(25050) == "25,050"
    assert fmt(np.int64(1797)) == "1,797"
    assert fmt(0.0) == "0"
    assert fmt(-19.226138973) == "-19.2261"
    assert fmt(1e-6) == "1e-06"
    assert fmt(2.80407e-11, 3) == "2.8e-11"
    assert fmt(float("nan")) == "nan"
    assert fmt("text") == "text"


def test_table_marks_numbers_and_escapes_cells() -> None:
    html = table(["a", "b"], [("x<y", 1.5), (Markup("<i>z</i>"), 3)], caption="c & d")
    assert '<td class="num">1.5</td>' in html and '<td class="num">3</td>' in html
    assert "<td>x&lt;y</td>" in html and "<td><i>z</i></td>" in html
    assert "c &amp; d" in html


def test_failed_checks_are_counted() -> None:
    fragment = checks([check(True, "fine"), check(False, "broken <1>"), check(False, "again")])
    assert count_failed_checks(fragment) == 2
    assert "broken &lt;1&gt;" in fragment
    assert count_failed_checks(checks([check(True, "a")])) == 0
