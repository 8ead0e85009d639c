"""emnet.report.lca_page.render_lca_page: the one self-contained HTML page of an
``emnet lca`` run — sections in order, everything escaped, figures embedded, and (marked
``browser``) the page as headless Chromium shows it."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emnet.mixture import plot_bic, plot_profile, select_n_components
from emnet.report.lca_page import render_lca_page

PNG = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert('item')</script>"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """What an ``emnet lca`` run computes, on items with a hostile name."""
    rng = np.random.default_rng(0)
    n = 400
    z = rng.integers(0, 2, n)
    columns = {}
    for j, name in enumerate([HOSTILE, "trust & <b>safety</b>", "income", "region"]):
        answers = ["low", "medium", "high", "very high"][: 3 + (j % 2)]
        p = rng.dirichlet(np.full(len(answers), 0.3), size=2)
        columns[name] = [answers[rng.choice(len(answers), p=p[k])] for k in z]
    X = pd.DataFrame(columns)
    sel = select_n_components(X, [1, 2, 3], n_init=2, estimator="categorical", random_state=0)
    model = sel.models[sel.best_k].reorder("weight")
    summary = model.summary(X)
    out = tmp_path_factory.mktemp("lca")
    figures = {
        "bic": Path(plot_bic(sel, out / "bic.png")).read_bytes(),
        "profile": plot_profile(
            model, standard_errors=model.standard_errors(X), path=out / "profile.png"
        ).read_bytes(),
    }
    return {
        "title": f"emnet lca: {HOSTILE}.csv",
        "data_summary": [
            ("file", f"{HOSTILE}.csv"),
            ("rows", f"{n:,}"),
            ("items", str(X.shape[1])),
            ("item types", "categorical (3–4 answers)"),
            ("weights", "none"),
            ("rows left out", "0"),
        ],
        "selection_table": sel.to_frame(),
        "figures": figures,
        "summary_text": str(summary),
        "classification": summary.tables()["classification"],
        "warnings": [f"item {HOSTILE} has an answer given by fewer than 5 rows"],
        "extra_tables": {"Class shares": summary.tables()["classes"]},
        "k": int(sel.best_k),
    }


def _page(run, **changes):
    return render_lca_page(**{k: v for k, v in {**run, **changes}.items() if k != "k"})


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', page)


def test_all_sections_in_order(run):
    page = _page(run)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert _sections(page) == [
        "data",
        "warnings",
        "selection",
        "summary",
        "profile",
        "classification",
        "table-1",
    ]
    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert headings == [
        "Data",
        "Warnings (1)",
        "Model selection",
        "Chosen model",
        "Profile",
        "Classification",
        "Class shares",
    ]
    # the BIC plot sits in the selection section, the profile in its own
    selection = page.split('<section id="selection"')[1].split("</section>")[0]
    assert 'data-name="bic"' in selection and "<table" in selection
    profile = page.split('<section id="profile"')[1].split("</section>")[0]
    assert 'data-name="profile"' in profile
    # the summary text is there verbatim (escaped), preformatted
    assert "Estimated class population shares" in page
    assert page.count('<pre class="summary">') == 1
    # every row of the three tables (selection: K = 1, 2, 3; classification and shares: K)
    assert run["k"] == 2
    assert page.count("<tr>") == (1 + 3) + (1 + run["k"]) + (1 + run["k"])


def test_hostile_text_is_escaped_everywhere(run):
    page = _page(run)
    assert "<script" not in page.lower()
    assert "<b>safety</b>" not in page
    assert "&lt;script&gt;alert(&#x27;item&#x27;)&lt;/script&gt;" in page
    assert "trust &amp; &lt;b&gt;safety&lt;/b&gt;" in page  # in the summary text
    # the title, a fact and a warning are escaped too
    title = re.search(r"<title>(.*)</title>", page).group(1)
    assert title == "emnet lca: &lt;script&gt;alert(&#x27;item&#x27;)&lt;/script&gt;.csv"
    box = page.split('<div class="warnings"')[1].split("</div>")[0]
    assert "&lt;script&gt;" in box
    facts = _page(run, data_summary=[("<i>", "a & b")])
    assert "<dt>&lt;i&gt;</dt><dd>a &amp; b</dd>" in facts


def test_images_are_data_uris_and_nothing_is_fetched(run):
    page = _page(run)
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2
    for src, name in zip(sources, ["bic", "profile"], strict=True):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == run["figures"][name]
    # no external resource: every src/href is a data URI or an anchor in the page
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and '<link rel="stylesheet"' not in page
    assert "<style>" in page and "table.data" in page  # the stylesheet is inline


def test_optional_parts_and_other_figures(run):
    png = run["figures"]["profile"]
    page = _page(
        run,
        warnings=[],
        classification=None,
        extra_tables={},
        selection_table="  k   BIC\n  1   100\n  2    90",
        figures={"bic": png, "covariate <effect>": png},
    )
    assert _sections(page) == ["data", "selection", "summary", "figures"]
    assert '<pre class="summary">  k   BIC\n  1   100\n  2    90</pre>' in page
    more = page.split('<section id="figures"')[1]
    assert 'data-name="covariate &lt;effect&gt;"' in more
    assert "<figcaption>covariate &lt;effect&gt;</figcaption>" in more
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'
    assert "data:image/svg+xml;base64," in _page(run, figures={"bic": svg})
    with pytest.raises(ValueError, match=r"figures\['bic'\]: not a PNG"):
        _page(run, figures={"bic": b"GIF89a"})
    with pytest.raises(TypeError, match=r"figures\['bic'\]"):
        _page(run, figures={"bic": "figures/bic.png"})
    with pytest.raises(TypeError, match="DataFrame"):
        _page(run, classification=[[1, 2]])


def test_table_cells_numbers_and_missing_values():
    frame = pd.DataFrame({"k": [1, 2], "BIC": [1057.3128, np.nan], "note": ["best", None]})
    page = render_lca_page(
        title="t",
        data_summary=[],
        selection_table=frame,
        figures={},
        summary_text="",
    )
    assert '<td class="num">1,057.31</td>' not in page  # floats are not grouped
    assert '<td class="num">1057.31</td>' in page
    assert '<td class="num">2</td>' in page
    assert page.count("<td>–</td>") == 2  # NaN and None
    named = frame.set_index("k")
    assert "<th>k</th>" in render_lca_page(
        title="t", data_summary=[], selection_table=named, figures={}, summary_text=""
    )


@pytest.mark.browser
def test_page_in_headless_chromium(run, tmp_path):
    from PIL import Image

    from emnet.report.browser import check_page, find_chromium

    try:
        find_chromium()
    except RuntimeError as exc:
        pytest.fail(f"the browser test needs chromium and chromedriver: {exc}")
    path = tmp_path / "report.html"
    path.write_text(_page(run), encoding="utf-8")
    seen = check_page(path, width=1280)
    Path("/tmp/lca_page.png").write_bytes(seen.screenshot)
    assert seen.title == "emnet lca: " + HOSTILE + ".csv"  # shown as text, not run
    assert len(seen.images) == 2
    assert all(int(i["naturalWidth"]) > 0 and i["complete"] for i in seen.images)
    assert seen.broken_images == []
    assert seen.console_errors == [], seen.console_errors
    with Image.open(io.BytesIO(seen.screenshot)) as im:
        arr = np.asarray(im.convert("L"), dtype=float)
    assert arr.shape[1] >= 1000 and arr.shape[0] >= 1500  # the whole page
    assert arr.std() > 10, "screenshot is blank"
