"""emnet.data.load_survey (issue 19): survey tables read as they are exported."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from emnet.data import load_survey


def cats(col):
    return col.cat.categories.tolist()


def test_text_answers_are_ordered_categories_with_missing_tokens(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "id;health;trust\n"
        "1;Good;3 Not too well\n"
        "2;Bad;10 Not at all\n"
        "3;NA;1 Very well\n"
        "4;Good;\n"
        "5;.;2 Fairly well\n",
        encoding="utf-8",
    )
    s = load_survey(path)  # ';' sniffed, header decided from line 1
    f = s.frame
    assert list(f.columns) == ["id", "health", "trust"] and s.has_header
    assert f["id"].dtype == np.float64 and f["id"].tolist() == [1, 2, 3, 4, 5]
    assert cats(f["health"]) == ["Bad", "Good"]  # sorted, as R's factor
    # every label starts with a number: ordered by it (10 after 3, not after 1)
    assert cats(f["trust"]) == ["1 Very well", "2 Fairly well", "3 Not too well", "10 Not at all"]
    assert f["health"].isna().tolist() == [False, False, True, False, True]
    assert f["trust"].isna().tolist() == [False, False, False, True, False]


def test_tab_separated_and_headerless(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("1\t2\t\n2\t1\t1\n")
    s = load_survey(path)
    assert not s.has_header and list(s.frame.columns) == ["V1", "V2", "V3"]
    assert np.isnan(s.frame.iloc[0, 2]) and s.frame.iloc[1, 2] == 1
    same = load_survey(tmp_path / "s.tsv", sep="\t", header=False)
    pd.testing.assert_frame_equal(same.frame, s.frame)


def test_windows_1252_text_is_read_with_a_note(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes("q1,q2\nTrès bien,1\nMal,2\n".encode("cp1252"))
    s = load_survey(path)
    assert cats(s.frame["q1"]) == ["Mal", "Très bien"]
    assert any("Windows-1252" in n for n in s.notes)


def test_spss_value_labels_and_user_missing_codes(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pd.DataFrame(
        {
            "often": [1, 2, 2, 9, np.nan, 3, 1],
            "agree": [1, 1, 2, 2, 8, 9, 1],
            "w": [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5],
        }
    )
    path = tmp_path / "s.sav"
    pyreadstat.write_sav(
        df,
        str(path),
        variable_value_labels={
            "often": {2: "Sometimes", 1: "Never", 3: "Often", 9: "Refused"},
            "agree": {1: "No", 2: "Yes", 8: "Don't know", 9: "No answer"},
        },
        missing_ranges={"often": [9], "agree": [{"lo": 8, "hi": 9}]},
    )
    s = load_survey(path)
    f = s.frame
    assert cats(f["often"]) == ["Never", "Sometimes", "Often"]  # code order, 9 is missing
    assert f["often"].tolist()[:3] == ["Never", "Sometimes", "Sometimes"]
    assert f["often"].isna().tolist() == [False, False, False, True, True, False, False]
    assert cats(f["agree"]) == ["No", "Yes"]  # 8..9 a user-missing range
    assert f["agree"].isna().tolist() == [False, False, False, False, True, True, False]
    assert f["w"].dtype == np.float64 and f["w"].sum() == pytest.approx(7.5)
    text = " ".join(s.notes)
    assert "'often'" in text and "'agree'" in text and "user-missing" in text


@pytest.mark.parametrize("suffix", [".sav", ".dta"])
def test_a_measurement_with_labelled_special_codes_stays_numbers(tmp_path, suffix):
    """A numeric column with many unlabelled values and a few labelled codes (income;
    -9 "refused", -8 "don't know") is a measurement: its labelled answers are missing
    codes, with a note, and the rest its numbers (it used to become a categorical item
    of every income, which --continuous refused as text)."""
    pyreadstat = pytest.importorskip("pyreadstat")
    rng = np.random.default_rng(0)
    income = np.round(rng.lognormal(10, 0.5, 60))
    income[[2, 5]] = -9
    income[7] = -8
    df = pd.DataFrame({"income": income, "q": rng.integers(1, 4, 60).astype(float)})
    path = tmp_path / f"s{suffix}"
    labels = {"income": {-9: "refused", -8: "don't know"}, "q": {1: "a", 2: "b", 3: "c"}}
    write = pyreadstat.write_sav if suffix == ".sav" else pyreadstat.write_dta
    write(df, str(path), variable_value_labels=labels)
    s = load_survey(path)
    got = s.frame["income"]
    assert got.dtype == np.float64 and got.isna().tolist() == [i in (2, 5, 7) for i in range(60)]
    assert np.array_equal(got.dropna().to_numpy(), np.delete(income, [2, 5, 7]))
    assert cats(s.frame["q"]) == ["a", "b", "c"]  # every value labelled: categorical
    assert any("3 labelled answers (-9 'refused', -8" in n for n in s.notes), s.notes


def test_stata_value_labels_and_unlabelled_codes(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pd.DataFrame({"q": [1.0, 2.0, 5.0, np.nan, 1.0], "x": [0.5, 1.5, 2.5, 3.5, 4.5]})
    path = tmp_path / "s.dta"
    pyreadstat.write_dta(df, str(path), variable_value_labels={"q": {1: "low", 2: "high"}})
    s = load_survey(path)
    assert cats(s.frame["q"]) == ["low", "high", "5"]
    assert s.frame["q"].isna().tolist() == [False, False, False, True, False]
    assert s.frame["x"].tolist() == df["x"].tolist()
    assert any("the code 5 has no value label" in n for n in s.notes)


def test_excel_and_parquet(tmp_path):
    df = pd.DataFrame({"a": ["yes", "no", None, "yes"], "b": [1, 2, 2, np.nan]})
    df.to_excel(tmp_path / "s.xlsx", index=False, sheet_name="answers")
    f = load_survey(tmp_path / "s.xlsx").frame
    assert cats(f["a"]) == ["no", "yes"] and f["a"].isna().sum() == 1
    assert f["b"].tolist()[:3] == [1.0, 2.0, 2.0] and np.isnan(f["b"].iloc[3])
    assert load_survey(tmp_path / "s.xlsx", sheet="answers").frame.shape == (4, 2)
    with pytest.raises(ValueError, match="sheet 'nope'"):
        load_survey(tmp_path / "s.xlsx", sheet="nope")
    df.to_parquet(tmp_path / "s.parquet")
    g = load_survey(tmp_path / "s.parquet").frame
    assert cats(g["a"]) == ["no", "yes"] and g["b"].dtype == np.float64


@pytest.mark.parametrize(
    "text, message",
    [
        ("A,A,B\n1,2,1\n", "the column name 'A' appears twice (columns 1 and 2)"),
        ("A,B\n1,2\nGood,1\n", "column 'A' mixes numbers (data row 1: '1') and text (data row 2"),
        ("A,B,C\n1,2,1\n1,2", "the last line has 2 columns, expected 3 (is the file truncated?)"),
        ("A,B,C\n1,2,1\n1,2,3,4\n", "line 3 has 4 columns, expected 3"),
        ("", "holds no data"),
    ],
)
def test_bad_text_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_survey(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_corrupt_binary_files_are_one_error(tmp_path):
    for name in ("x.sav", "x.dta", "x.xlsx", "x.parquet", "x.npy"):
        (tmp_path / name).write_bytes(b"\x00\x01garbage" * 10)
        with pytest.raises(ValueError, match="not a readable|not a .npy"):
            load_survey(tmp_path / name)
    (tmp_path / "x.doc").write_text("1")
    with pytest.raises(ValueError, match="expected one of"):
        load_survey(tmp_path / "x.doc")


def test_a_large_binary_file_is_refused_without_reading_it_whole(tmp_path):
    """A 1 GiB file (sparse: no disk) of binary data: refused after its first 64 KiB, in a
    process whose peak memory stays far below the file's size (VmHWM: ru_maxrss would
    count the forking parent's pages)."""
    path = tmp_path / "huge.csv"
    with open(path, "wb") as fh:
        fh.write(bytes(range(256)) * 64)
        fh.truncate(1 << 30)
    code = (
        "import sys\n"
        "from emnet.data import load_survey\n"
        "try:\n"
        f"    load_survey({str(path)!r})\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
        "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message, peak_kib = out.stdout.strip().splitlines()
    assert "binary data" in message
    assert int(peak_kib) < 400 * 1024  # KiB: far below the 1 GiB a whole read would need


def test_argument_errors():
    with pytest.raises(TypeError, match="header"):
        load_survey("x.csv", header="yes")
    with pytest.raises(ValueError, match="sep"):
        load_survey("x.csv", sep=";;")
    with pytest.raises(ValueError, match="does not exist"):
        load_survey("/nonexistent/x.csv")


def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path):
    """European exports (sep ';', decimal ','): a column whose every answer is a number,
    some with a decimal comma, is numbers, with one note (it was a categorical item of
    every value); a comma-delimited file is left alone, and text with commas stays text."""
    path = tmp_path / "e.csv"
    path.write_text("a;b;c\n5,1;1;x, y\n4;2;z\n-0,5;;x, y\n", encoding="utf-8")
    s = load_survey(path)
    assert s.frame["a"].tolist() == [5.1, 4.0, -0.5]
    assert s.frame["b"].dtype == np.float64 and cats(s.frame["c"]) == ["x, y", "z"]
    assert any("1 column holds numbers with a decimal comma ('a': '5,1' is 5.1)" in n
               for n in s.notes), s.notes  # fmt: skip


def test_a_given_delimiter_that_is_not_in_the_file_is_named(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1 has no ';' but has ',': is the delimiter"):
        load_survey(path, sep=";")
    assert list(load_survey(path).frame.columns) == ["a", "b"]


def test_a_data_line_taken_for_names_suggests_no_header(tmp_path):
    """A headerless file whose first line mixes numbers and text is read as names; when
    two of those 'names' are the same number the error asks whether line 1 is data."""
    path = tmp_path / "h.csv"
    path.write_text("1001,0,1,0,m\n1002,1,1,0,f\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"'0' appears twice .*say --no-header"):
        load_survey(path)
    assert len(load_survey(path, header=False).frame) == 2
