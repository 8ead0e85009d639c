"""`emnet report --out`: emnet's ownership rule (items 4 and 5), with cheap fake sections so
that no real report is built."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_stubs import replace_builds

from emnet.cli import main
from emnet.report import SECTIONS, Context, build_report


@pytest.fixture
def fake_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    def make(sid: str):
        def build(ctx: Context) -> str:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(1, 1))
            fig.add_subplot().plot([0, 1], [1, 0])
            return f'<img src="{ctx.savefig(fig, f"{sid}.png")}" alt="{sid}">'

        return build

    replace_builds(monkeypatch, {s.anchor: make(s.anchor) for s in SECTIONS})


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_copied_index_html_does_not_make_a_directory_emnets(
    tmp_path: Path, fake_sections: None, capsys: pytest.CaptureFixture[str]
) -> None:
    built = tmp_path / "built"
    assert build_report(built, quick=True, progress=False) == 0
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\documentclass{article}")
    (thesis / "index.html").write_bytes((built / "index.html").read_bytes())
    before = _tree(thesis)
    for extra in ([], ["--force"]):
        assert main(["report", "--quick", "--no-progress", "--out", str(thesis), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "does not hold an emnet report" in err[0], err
    assert _tree(thesis) == before


def test_a_users_file_inside_a_real_report_is_kept(tmp_path: Path, fake_sections: None) -> None:
    out = tmp_path / "report"
    assert build_report(out, quick=True, progress=False) == 0
    (out / "notes.txt").write_text("my notes")
    (out / "figures" / "mine.png").write_bytes(b"my figure")
    old_files = set(_tree(out))
    assert build_report(out, quick=True, progress=False) == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "figures" / "mine.png").read_bytes() == b"my figure"
    assert set(_tree(out)) == old_files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_the_other_size_needs_force(
    tmp_path: Path, fake_sections: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main(["report", "--quick", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    before = _tree(out)
    assert main(["report", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quick was True, now False" in err[0] and "--force" in err[0]
    assert _tree(out) == before
    assert main(["report", "--no-progress", "--out", str(out), "--force"]) == 0


def test_out_dot_in_an_empty_directory(
    tmp_path: Path, fake_sections: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["report", "--quick", "--no-progress", "--out", "."]) == 0
    assert (work / "index.html").is_file() and (work / ".emnet-run.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no ..tmp-XXXX left
    assert not [p for p in work.iterdir() if p.name.startswith(".emnet-stage")]
