"""`emnet report`: the quick report is built once (module fixture) and checked as HTML, as
files, and in a real headless Chromium; failure handling is checked with cheap builders."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from report_stubs import replace_builds

from emnet.cli import main
from emnet.report import Context, build_report
from emnet.report.html import check, fmt

SECTION_IDS = ("em", "lca", "deepnet", "resnet", "errata")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr", "col", "area", "base"}


@dataclass
class Built:
    out: Path
    code: int
    seconds: float
    html: str
    results: dict


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("quick") / "report"
    start = time.perf_counter()
    code = build_report(out, quick=True, progress=False)
    seconds = time.perf_counter() - start
    html = (out / "index.html").read_text(encoding="utf-8")
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    print(f"\nquick report built in {seconds:.1f} s")
    return Built(out, code, seconds, html, results)


class _Page(HTMLParser):
    """Collects tags, attributes, section ids and checks that elements are balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.sections: dict[str, str] = {}
        self.tags: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag in ("a", "link", "script", "iframe", "source"):
            self.links.append(a.get("href") or a.get("src") or "")
        if tag == "section":
            self.sections[a.get("id") or ""] = a.get("data-status") or ""
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()


def parse_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def assert_valid_image(path: Path) -> None:
    data = path.read_bytes()
    if path.suffix == ".png":
        assert data.startswith(PNG_MAGIC), f"{path.name} is not a PNG"
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            assert im.size[0] > 50 and im.size[1] > 50
    elif path.suffix == ".svg":
        root = ET.fromstring(data)
        assert root.tag.endswith("svg"), f"{path.name}: root element is {root.tag}"
    else:
        raise AssertionError(f"unexpected image type: {path.name}")


# ---------------------------------------------------------------------- the quick report


def test_quick_report_passes_every_section_and_check(quick_report: Built) -> None:
    run = quick_report.results["run"]
    failed = {k: v for k, v in run["sections"].items() if not v["ok"] or v["failed_checks"]}
    errors = {k: quick_report.results.get(k, {}).get("error") for k in failed}
    assert quick_report.code == 0, f"failed sections/checks: {failed} {errors}"
    assert run["quick"] is True


def test_html_parses_and_is_balanced(quick_report: Built) -> None:
    page = parse_page(quick_report.html)
    assert page.doctype.lower() == "doctype html"
    assert page.errors == []
    assert page.stack == [], f"unclosed elements: {page.stack}"
    assert "<title>emnet report</title>" in quick_report.html


def test_each_section_present_and_ok(quick_report: Built) -> None:
    page = parse_page(quick_report.html)
    for sid in SECTION_IDS:
        assert page.sections.get(sid) == "ok", f"section {sid}: {page.sections.get(sid)}"
        assert f'href="#{sid}"' in quick_report.html  # in the table of contents
    headings = ("§1 EM on binarized digits", "Latent class analysis on real survey data",
                "§2 Deep net", "§3 ResNet width study", "Errata")  # fmt: skip
    for heading in headings:
        assert heading in quick_report.html


def test_every_image_exists_and_is_valid(quick_report: Built) -> None:
    page = parse_page(quick_report.html)
    srcs = page.images
    assert len(srcs) >= 8
    expected = {
        "figures/em_means.png",
        "figures/em_loglik.png",
        "figures/em_q.png",
        "figures/em_bic.png",
        "figures/deepnet_graph.svg",
        "figures/deepnet_sigmoid.png",
        "figures/resnet_curves.png",
        "figures/resnet_summary.png",
    }
    assert expected <= set(srcs)
    for src in srcs:
        assert not src.startswith(("/", "http:", "https:", "file:", "//")), src
        assert_valid_image(quick_report.out / src)


def test_self_contained_no_external_resources(quick_report: Built) -> None:
    page = parse_page(quick_report.html)
    assert "script" not in page.tags and "iframe" not in page.tags
    for target in page.links:
        assert not target.startswith(("http:", "https:", "//", "/")), target
        if not target.startswith(("#", "data:")):  # a local data file: it must exist
            assert (quick_report.out / target).is_file(), target
    assert "tables/em_history.csv" in page.links and "results.json" in page.links
    assert "<style>" in quick_report.html  # the stylesheet is inlined


def test_header_states_version_date_seeds_device_and_run_time(quick_report: Built) -> None:
    from emnet import __version__

    html = quick_report.html
    run = quick_report.results["run"]
    assert f"<dd>{__version__}</dd>" in html
    assert f"<dd>{run['generated_utc']}</dd>" in html
    assert f"{run['total_seconds']:.1f} s" in html
    for what in run["seeds"]:
        assert html_escape(what) in html
    assert "§3 ResNet" in " ".join(run["devices"]) and "cpu" in html


def test_numbers_in_page_come_from_the_run(quick_report: Built) -> None:
    r = quick_report.results
    html = quick_report.html
    em = r["em"]
    assert fmt(em["adjusted_rand_index"]) in html
    assert "Results at a glance" in html and fmt(em["adjusted_rand_index"], 3) in html
    assert fmt(em["bic"]) in html
    assert 0.3 < em["adjusted_rand_index"] <= 1.0
    hist = np.array(em["history"])
    assert em["monotone"] and np.all(np.diff(hist) >= -1e-9 * np.abs(hist).max())
    assert len(em["trace"]["q"]) == len(em["trace"]["loglik"]) > 5
    # §2: the closed-form gradients in the page equal emnet.deepnet's
    from emnet.deepnet import backward, forward

    g = backward(forward(1.5, 0.3, -1.2, 2.0))
    assert r["deepnet"]["gradients"]["closed form"] == pytest.approx(list(map(float, g)))
    assert "25,050" in html and "20×24×24" in html
    # §3: every width, parameter counts from the run
    widths = {w["C"]: w for w in r["resnet"]["widths"]}
    assert set(widths) == {1, 2, 4, 64}
    for w in widths.values():
        assert f"{w['params']:,}" in html
    # errata: the write-up's eq. 6 responsibilities do not sum to 1 over k
    assert r["errata"]["eq6"]["corrected_row_sum_max_error"] < 1e-12
    assert r["errata"]["eq6"]["writeup_row_sum_max"] < 0.9
    assert r["errata"]["2h"]["params"] == 25_050


def test_tables_and_results_written(quick_report: Built) -> None:
    tables = {p.name for p in (quick_report.out / "tables").iterdir()}
    assert {"em_history.csv", "em_bic.csv", "deepnet_gradients.csv", "lenet_shapes.csv"} <= tables
    assert "resnet_sweep.csv" in tables
    leftovers = [p.name for p in quick_report.out.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


@pytest.mark.browser
def test_report_in_headless_chromium(quick_report: Built) -> None:
    from PIL import Image

    from emnet.report.browser import check_page, find_chromium

    try:
        find_chromium()
    except RuntimeError as exc:
        pytest.fail(f"the browser test needs chromium and chromedriver: {exc}")
    seen = check_page(quick_report.out / "index.html", width=1280)
    assert seen.title == "emnet report"
    assert seen.screenshot.startswith(PNG_MAGIC)
    import io

    with Image.open(io.BytesIO(seen.screenshot)) as im:
        arr = np.asarray(im.convert("L"), dtype=float)
    assert arr.shape[1] >= 1000 and arr.shape[0] >= 2000  # full page
    assert arr.std() > 10, "screenshot is blank"
    assert len(np.unique(arr)) > 50
    assert len(seen.images) >= 8
    assert seen.broken_images == [], f"broken images: {seen.broken_images}"
    assert seen.console_errors == [], f"console errors: {seen.console_errors}"


@pytest.mark.browser
def test_browser_check_detects_broken_images_and_console_errors(tmp_path: Path) -> None:
    from emnet.report.browser import check_page, find_chromium

    try:
        find_chromium()
    except RuntimeError as exc:
        pytest.fail(f"the browser test needs chromium and chromedriver: {exc}")
    (tmp_path / "index.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        "<title>broken</title></head><body><p>x</p>"
        '<img src="figures/missing.png" alt="missing">'
        "<script>console.error('deliberate error')</script></body></html>",
        encoding="utf-8",
    )
    seen = check_page(tmp_path / "index.html", full_page=False)
    assert seen.broken_images == ["figures/missing.png"]
    assert any("deliberate error" in e for e in seen.console_errors)


# ---------------------------------------------------------------------- failure handling


def test_failing_section_is_shown_and_gives_nonzero_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(ctx: Context) -> str:
        raise RuntimeError("synthetic failure <in §3>")

    def cheap_em(ctx: Context) -> str:  # the real §1 is covered by the fixture
        from matplotlib.figure import Figure

        fig = Figure(figsize=(2, 2))
        fig.add_subplot().plot([0, 1], [1, 0])
        return f'<img src="{ctx.savefig(fig, "em_means.png")}" alt="means">'

    replace_builds(monkeypatch, {"resnet": boom, "em": cheap_em})
    out = tmp_path / "report"
    code = build_report(out, quick=True, progress=False)
    assert code == 1
    html = (out / "index.html").read_text(encoding="utf-8")
    page = parse_page(html)
    assert page.errors == [] and page.stack == []
    assert page.sections == {
        "em": "ok",
        "lca": "ok",
        "deepnet": "ok",
        "resnet": "failed",
        "errata": "ok",
    }
    assert "RuntimeError: synthetic failure &lt;in §3&gt;" in html  # escaped
    assert "1 of 5 sections failed" in html
    for src in page.images:
        assert_valid_image(out / src)
    assert "figures/deepnet_graph.svg" in page.images  # the real §2 is written
    assert "figures/resnet_curves.png" not in page.images
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["sections"]["resnet"]["ok"] is False
    assert "synthetic failure" in results["resnet"]["error"]


def _fake_builders(monkeypatch: pytest.MonkeyPatch, ok_checks: bool = True) -> None:
    def make(sid: str):
        def build(ctx: Context) -> str:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(2, 2))
            fig.add_subplot().plot([0, 1], [1, 0])
            src = ctx.savefig(fig, f"{sid}.png")
            ctx.seeds[f"{sid} seed"] = 7
            return f'<img src="{src}" alt="{sid}">' + check(ok_checks or sid != "em", f"{sid}")

        return build

    replace_builds(monkeypatch, {sid: make(sid) for sid in SECTION_IDS})


def test_failed_check_gives_nonzero_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_builders(monkeypatch, ok_checks=False)
    out = tmp_path / "r"
    assert build_report(out, quick=True, progress=False) == 1
    html = (out / "index.html").read_text(encoding="utf-8")
    assert html.count("1 check failed") == 2  # in the header and in the table of contents
    assert parse_page(html).sections["em"] == "ok"


def test_interrupted_build_leaves_previous_report_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_builders(monkeypatch)
    out = tmp_path / "report"
    assert build_report(out, quick=True, progress=False) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def interrupted(ctx: Context) -> str:
        (ctx.root / "figures" / "partial.png").write_bytes(b"half")
        raise KeyboardInterrupt

    replace_builds(monkeypatch, {"deepnet": interrupted})
    with pytest.raises(KeyboardInterrupt):
        build_report(out, quick=True, progress=False)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temp dir left


def test_refuses_to_replace_a_directory_that_is_not_a_report(tmp_path: Path) -> None:
    precious = tmp_path / "src"
    precious.mkdir()
    (precious / "code.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="out_dir: .* does not hold an emnet report"):
        build_report(precious, quick=True, progress=False)
    assert (precious / "code.py").read_text() == "x = 1\n"
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        build_report(afile, quick=True, progress=False)
    with pytest.raises(TypeError, match="quick"):
        build_report(tmp_path / "new", quick="yes", progress=False)  # type: ignore[arg-type]


def test_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    _fake_builders(monkeypatch)
    out = tmp_path / "rep"
    assert main(["report", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert f"report written to {out / 'index.html'}" in capsys.readouterr().out
    assert main(["report", "--quick", "--out", str(out), "--no-progress"]) == 0  # replaces it
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["report", "--out", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emnet report: error: --out:")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_a_failing_part_is_shown_while_the_rest_of_its_section_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emnet.autodiff
    from emnet.report import section_deepnet
    from emnet.report.html import count_failed_checks

    def no_dot(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Graphviz 'dot' not found")

    monkeypatch.setattr(emnet.autodiff, "render", no_dot)
    ctx = Context(root=tmp_path, quick=True, progress=False)
    html = section_deepnet.build(ctx)
    assert count_failed_checks(html) == 1
    assert "The computation graph failed: RuntimeError: Graphviz &#x27;dot&#x27; not found" in html
    assert "The three gradients, every method side by side" in html  # the rest is there
    assert "LeNet shapes" in html and "deepnet_graph.svg" not in html


def test_missing_chromium_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from emnet.report import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="chromium and chromedriver not found: install"):
        browser.find_chromium()
