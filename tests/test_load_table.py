"""emnet.data.load_table: the CSV / .npy reader behind `emnet em --data` (item 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emnet.data import load_table

BOM = "\ufeff"


def _csv(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_bom_does_not_eat_the_first_data_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, BOM + "0,1,1\n1,0,1\n1,1,0\n")
    table = load_table(path)
    assert table.values.shape == (3, 3) and table.columns is None
    np.testing.assert_array_equal(table.values[0], [0, 1, 1])
    with_header = load_table(_csv(tmp_path, BOM + "a,b,c\n0,1,1\n", "h.csv"))
    assert with_header.columns == ["a", "b", "c"] and with_header.values.shape == (1, 3)


def test_header_detection_is_explicit_and_predictable(tmp_path: Path) -> None:
    garbled = _csv(tmp_path, "0,1,?\n1,0,1\n1,1,0\n")
    with pytest.raises(ValueError, match=r"line 1 \('0,1,\?'\) is neither a header .* nor data"):
        load_table(garbled)
    # told which it is: a header of odd names, or data whose bad cell is named
    assert load_table(garbled, header=True).values.shape == (2, 3)
    with pytest.raises(ValueError, match=r"line 1 column 3: expected a number .* got '\?'"):
        load_table(garbled, header=False)
    numeric_names = _csv(tmp_path, "1,2,3\n0,1,1\n", "n.csv")
    assert load_table(numeric_names).values.shape == (2, 3)  # all numbers: data
    t = load_table(numeric_names, header=True)
    assert t.columns == ["1", "2", "3"] and t.values.shape == (1, 3)
    with pytest.raises(TypeError, match="header"):
        load_table(numeric_names, header="yes")  # type: ignore[arg-type]


def test_missing_cells_and_bad_rows(tmp_path: Path) -> None:
    t = load_table(_csv(tmp_path, "a,b\n1,\n,0\n"))
    assert np.isnan(t.values).tolist() == [[False, True], [True, False]]
    with pytest.raises(ValueError, match="line 3 has 3 columns, expected 2"):
        load_table(_csv(tmp_path, "a,b\n1,0\n1,0,1\n", "r.csv"))
    with pytest.raises(ValueError, match="holds no data"):
        load_table(_csv(tmp_path, "a,b\n", "e.csv"))
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_table(tmp_path / "bin.csv")


def test_npy_and_bad_files(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.eye(3, dtype=np.uint8))
    t = load_table(tmp_path / "x.npy")
    assert t.values.dtype == np.uint8 and t.columns is None
    np.save(tmp_path / "v.npy", np.array([0, 1, 1]))
    assert load_table(tmp_path / "v.npy").values.shape == (3, 1)
    with pytest.raises(ValueError, match="CSV files only"):
        load_table(tmp_path / "x.npy", header=True)
    np.savez(tmp_path / "z.npz", a=np.eye(2))
    (tmp_path / "z.npz").rename(tmp_path / "z.npy")
    with pytest.raises(ValueError, match=r"z\.npy: not a \.npy file"):
        load_table(tmp_path / "z.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="expected numbers"):
        load_table(tmp_path / "s.npy")
    (tmp_path / "t.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(ValueError, match=r"t\.npy: not a readable \.npy file"):
        load_table(tmp_path / "t.npy")
    with pytest.raises(ValueError, match="is a directory"):
        load_table(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_table(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="File name too long"):
        load_table(tmp_path / ("a" * 300 + ".csv"))
    with pytest.raises(ValueError, match="expected a .npy or .csv file"):
        load_table(_csv(tmp_path, "0,1\n", "x.txt"))
