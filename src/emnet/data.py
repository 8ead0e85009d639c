"""Embedded data sets: scikit-learn's bundled 8×8 digits, and MNIST IDX files users pass in.

Nothing here downloads anything. ``digits`` follows SPEC §3: the first 180 of the 1,797
images are the test/validation set, the other 1,617 the training set, raw 0–16 pixel
values unless a normalisation is asked for.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from emnet._checks import check_number
from emnet._io import error_reason

N_TEST = 180
NORMALIZATIONS = (False, "unit", "standard")

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class Split(NamedTuple):
    """One part of a data set: images (n, 1, H, W) float32 and labels (n,) int64."""

    images: np.ndarray
    labels: np.ndarray


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)


def digits(normalize: bool | str = False) -> tuple[Split, Split]:
    """scikit-learn's digits as ``(train, test)``; test = the first 180 images (SPEC §3).

    ``normalize``: ``False`` (raw 0–16 values, the write-up's choice), ``"unit"``
    (divide by 16) or ``"standard"`` (subtract the training mean, divide by the training
    standard deviation; ``True`` means the same).
    """
    if normalize is True:
        normalize = "standard"
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize: expected one of False, 'unit', 'standard'; got {normalize!r}")
    images, labels = _load_digits()
    images = images[:, None, :, :]
    if normalize == "unit":
        images = images / np.float32(16.0)
    elif normalize == "standard":
        train = images[N_TEST:]
        mean, std = train.mean(), train.std()
        images = (images - mean) / std
    images = np.ascontiguousarray(images, dtype=np.float32)
    test = Split(images[:N_TEST], labels[:N_TEST])
    train = Split(images[N_TEST:], labels[N_TEST:])
    return train, test


def binarized_digits(threshold: float = 8) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits flattened to (1797, 64) uint8 with ``pixel >= threshold`` → 1."""
    threshold = check_number(threshold, "threshold")
    images, labels = _load_digits()
    X = (images.reshape(len(images), -1) >= threshold).astype(np.uint8)
    return X, labels


def load_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an MNIST-format IDX file (images or labels; gzip-compressed or not).

    The format: two zero bytes, a type code, the number of dimensions, one big-endian
    uint32 per dimension, then the data in C order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:  # corrupt or truncated gzip stream
        raise ValueError(f"{path}: cannot read IDX data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX file declares zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX payload is {len(raw) - header} bytes, expected {expected} for shape {shape}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


# ---------------------------------------------------------------------------- user tables


class Table(NamedTuple):
    """A user's table of numbers: ``values`` (n, D) float64 (or the .npy dtype), and the
    column names from a CSV header line (None without one)."""

    values: np.ndarray
    columns: list[str] | None


TABLE_SUFFIXES = (".csv", ".npy")


def _existing_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, or a ValueError naming it when it is not a readable file."""
    p = Path(path)
    try:
        is_file = p.is_file()
    except OSError as exc:
        raise ValueError(f"{p}: {exc.strerror or exc}") from None
    if not is_file:
        what = "is a directory" if p.is_dir() else "does not exist or is not a file"
        raise ValueError(f"{p} {what}")
    return p


def _check_header(header: Any) -> None:
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header: expected True, False or None, got {header!r}")


def load_table(path: str | os.PathLike[str], header: bool | None = None) -> Table:
    """Read a (n, D) table of numbers from a ``.npy`` or comma-separated ``.csv`` file.

    CSV: UTF-8 (a byte-order mark is allowed); an empty cell (or ``nan``) is a missing
    value (NaN). ``header``: True — the first line holds column names; False — every line
    is data; None (default) — decided from the first line only when that is unambiguous:
    all cells non-numeric names → a header, all numbers or empty → data. A first line that
    mixes the two is a ValueError naming line 1 (pass ``header`` to say which it is).
    Any other non-numeric cell, or a row of the wrong length, is a ValueError naming its
    line and column. ``.npy``: a numeric array, never unpickled; 1-D is one column.
    Every error is a ValueError (or TypeError for a bad ``header``) naming the file.
    """
    _check_header(header)
    p = _existing_file(path)
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{p}: expected a .npy or .csv file, got {p.name}")
    columns = None
    try:
        if suffix == ".npy":
            if header is not None:
                raise ValueError(f"{p}: header applies to CSV files only (this is a .npy file)")
            X = _read_npy(p)
        else:
            X, columns = _read_csv(p, header)
    except (OSError, EOFError) as exc:
        raise ValueError(f"{p}: {getattr(exc, 'strerror', None) or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not UTF-8 text") from None
    if X.ndim == 1 and X.size:
        X = X.reshape(-1, 1) if suffix == ".npy" else X.reshape(1, -1)
    if X.ndim != 2:
        raise ValueError(f"{p}: expected a 2-D table of rows, got shape {X.shape}")
    if X.size == 0:
        raise ValueError(f"{p}: holds no data")
    return Table(X, columns)


def _read_npy(p: Path) -> np.ndarray:
    try:
        X = np.load(p, allow_pickle=False)
    except OSError:
        raise
    except Exception as exc:  # object arrays, a truncated or garbled file, a broken zip
        raise ValueError(f"{p}: not a readable .npy file ({error_reason(exc)})") from None
    if not isinstance(X, np.ndarray):  # an .npz archive under a .npy name
        with contextlib.suppress(Exception):
            X.close()
        raise ValueError(f"{p}: not a .npy file (it is an .npz archive)")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{p}: expected numbers, got an array of dtype {X.dtype}")
    return X


def _read_csv(p: Path, header: bool | None) -> tuple[np.ndarray, list[str] | None]:
    import csv

    with p.open(encoding="utf-8-sig", newline="") as fh:
        lines = [(i, row) for i, row in enumerate(csv.reader(fh), start=1) if row]
    columns = None
    if lines:
        first_line, first = lines[0]
        kinds = {_cell_kind(field) for field in first}
        if header is None:
            if kinds == {"text"}:
                header = True
            elif "text" not in kinds:
                header = False
            else:
                shown = ",".join(first)
                raise ValueError(
                    f"{p}: line {first_line} ({shown!r}) is neither a header (all column "
                    "names) nor data (all numbers); say which with --header or --no-header "
                    "(header=True/False)"
                )
        if header:
            columns = [field.strip().strip('"') for field in first]
            lines = lines[1:]
    rows: list[list[float]] = []
    width = len(columns) if columns is not None else None
    for line, row in lines:
        values = []
        for col, field in enumerate(row, start=1):
            if _cell_kind(field) == "text":
                raise ValueError(
                    f"{p}: line {line} column {col}: expected a number or an empty cell, got "
                    f"{field.strip()!r} (is the file comma-separated?)"
                )
            field = field.strip().strip('"')
            values.append(float(field) if field else np.nan)
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise ValueError(f"{p}: line {line} has {len(values)} columns, expected {width}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(len(rows), width or 0), columns


def _cell_kind(field: str) -> str:
    """'empty', 'number' or 'text'."""
    field = field.strip().strip('"').strip()
    if not field:
        return "empty"
    try:
        float(field)
    except ValueError:
        return "text"
    return "number"


# --------------------------------------------------------------------------- survey files
#: Cells read as a missing answer in text files (besides an empty cell), case-insensitive.
MISSING_TOKENS = frozenset({"na", "n/a", "nan", "."})
SURVEY_SUFFIXES = (
    ".csv", ".tsv", ".txt", ".sav", ".zsav", ".dta", ".xlsx", ".xlsm", ".parquet", ".npy",
)  # fmt: skip
_HEAD_BYTES = 1 << 16  # what is read to sniff a text file's encoding and delimiter


class Survey(NamedTuple):
    """A survey table as :func:`load_survey` read it.

    ``frame``: a pandas DataFrame, one column per variable, in the file's order: float64
    for numbers (NaN missing), an ordered ``pandas.Categorical`` for text answers and for
    value-labelled codes (categories: the labels in the order of their codes).
    ``notes``: what the reader decided that a user should know (encoding, user-missing
    codes set to missing, codes without a label), one sentence each.
    """

    frame: Any
    notes: list[str]
    has_header: bool = True  # False: a headerless text/Excel file or a .npy (columns V1, V2, …)


def load_survey(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    header: bool | None = None,
    sheet: str | int | None = None,
) -> Survey:
    """Read a survey table as it was exported: ``.csv``/``.tsv``/``.txt``, SPSS ``.sav``/
    ``.zsav``, Stata ``.dta``, Excel ``.xlsx``, ``.parquet`` or a numeric ``.npy``.

    - Text answers ("Good", "3 Not too well") are categories. Their order: by the number
      that starts every label when they all start with one ("1 Never" < "2 Often"),
      otherwise sorted (as R's ``factor``). A column holding both numbers and text is a
      ValueError naming it and a row of each.
    - SPSS and Stata value labels become the category names, in the order of their codes;
      a code without a label keeps its number as its name (and a note says so). SPSS
      user-missing codes (discrete values and ranges) and Stata's extended missing values
      (``.a``–``.z``) are missing.
    - Missing: an empty cell, or ``NA``, ``N/A``, ``nan``, ``.`` in a text file.
    - Text files: UTF-8 (a byte-order mark is allowed), else Windows-1252 (a note says
      so); the delimiter is sniffed among ``, ; tab |`` unless ``sep`` is given (``.tsv``:
      tab). ``header``: True/False, or None to decide from line 1 (all names: a header; all
      numbers or empty: data). Column names must be unique.
    - A file that is not what its suffix says (binary data in a text file, a truncated
      file) is a ValueError naming the file; only its first 64 KiB are read to tell.

    Every error is a ValueError (TypeError for an argument of the wrong type) that names
    the file and, where there is one, the column and the row (data rows count from 1).
    """
    import pandas as pd

    _check_header(header)
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1):
        raise ValueError(f"sep: expected one character, got {sep!r}")
    if sheet is not None and not isinstance(sheet, str | int):
        raise TypeError(f"sheet: expected a sheet name or 0-based number, got {sheet!r}")
    p = _existing_file(path)
    suffix = p.suffix.lower()
    if suffix not in SURVEY_SUFFIXES:
        raise ValueError(f"{p}: expected one of {', '.join(SURVEY_SUFFIXES)}; got {p.name}")
    text_file = suffix in (".csv", ".tsv", ".txt")
    if header is not None and not (text_file or suffix in (".xlsx", ".xlsm")):
        raise ValueError(f"{p}: header applies to text and Excel files only")
    if sep is not None and not text_file:
        raise ValueError(f"{p}: sep applies to text files only")
    if sheet is not None and suffix not in (".xlsx", ".xlsm"):
        raise ValueError(f"{p}: sheet applies to Excel files only")
    notes: list[str] = []
    has_header = True
    try:
        if text_file:
            frame, has_header = _survey_text(
                p, sep if sep else ("\t" if suffix == ".tsv" else None), header, notes
            )
        elif suffix in (".sav", ".zsav", ".dta"):
            frame = _survey_labelled(p, suffix, notes)
        elif suffix in (".xlsx", ".xlsm"):
            frame, has_header = _survey_excel(p, sheet, header)
        elif suffix == ".parquet":
            frame = _survey_parquet(p)
        else:
            X = _read_npy(p)
            if X.ndim == 1:
                X = X.reshape(-1, 1)
            if X.ndim != 2:
                raise ValueError(f"{p}: expected a 2-D table of rows, got shape {X.shape}")
            frame = pd.DataFrame(
                X.astype(np.float64), columns=[f"V{j + 1}" for j in range(X.shape[1])]
            )
            has_header = False
    except OSError as exc:
        raise ValueError(f"{p}: {getattr(exc, 'strerror', None) or exc}") from None
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{p}: holds no data")
    return Survey(frame, notes, bool(has_header))


def _unique_names(names: list[Any]) -> list[str]:
    out = []
    for j, name in enumerate(names):
        text = "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name)
        text = text.strip()
        out.append(text or f"V{j + 1}")
    seen: dict[str, int] = {}
    for j, name in enumerate(out):
        if name in seen:
            data = _cell_kind(name) != "text"  # a number: line 1 is likely a data row
            raise ValueError(
                f"the column name {name!r} appears twice (columns {seen[name] + 1} and {j + 1});"
                " column names must be unique"
                + ("; is line 1 data? say --no-header (header=False)" if data else "")
            )
        seen[name] = j
    return out


def _cell_is_missing(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, str):
        text = cell.strip()
        return not text or text.lower() in MISSING_TOKENS
    try:
        return bool(np.isnan(cell))
    except TypeError:
        import pandas as pd

        return bool(pd.isna(cell))


def _as_number(cell: Any) -> float | None:
    """The number a cell holds, or None for text (bools and dates are text)."""
    if isinstance(cell, bool | np.bool_):
        return None
    if isinstance(cell, int | float | np.integer | np.floating):
        return float(cell)
    if isinstance(cell, str):
        try:
            return float(cell.strip())
        except ValueError:
            return None
    return None


def _label_order(labels: list[str]) -> list[str]:
    """Text answers in order: by a leading number when every label has one, else sorted."""
    import re

    leading = [re.match(r"\s*([+-]?\d+(?:\.\d+)?)\b", s) for s in labels]
    if all(leading):
        return sorted(labels, key=lambda s: (float(re.match(r"\s*([+-]?\d+(?:\.\d+)?)", s)[1]), s))
    return sorted(labels)


def _typed_column(name: str, cells: Any) -> Any:
    """One column of cells (objects) as float64 numbers or an ordered Categorical."""
    import pandas as pd

    cells = list(cells)
    numbers = np.full(len(cells), np.nan)
    text: list[str | None] = [None] * len(cells)
    first_number = first_text = None
    for i, cell in enumerate(cells):
        if _cell_is_missing(cell):
            continue
        value = _as_number(cell)
        if value is None:
            text[i] = str(cell).strip()
            if first_text is None:
                first_text = i
        else:
            numbers[i] = value
            if first_number is None:
                first_number = i
    if first_text is None:
        return pd.Series(numbers, name=name)
    if first_number is not None:
        raise ValueError(
            f"column {name!r} mixes numbers (data row {first_number + 1}: "
            f"{str(cells[first_number]).strip()!r}) and text (data row {first_text + 1}: "
            f"{text[first_text]!r}); code every answer of a column as text or as numbers, "
            "and leave missing answers empty"
        )
    order = _label_order(sorted({t for t in text if t is not None}))
    return pd.Series(pd.Categorical(text, categories=order, ordered=True), name=name)


def _frame_of_cells(columns: list[str], data: Any) -> Any:
    """A DataFrame of typed columns from an object DataFrame/array of cells."""
    import pandas as pd

    out = {}
    for j, name in enumerate(columns):
        col = data.iloc[:, j]
        if col.dtype.kind in "iuf":
            out[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        elif isinstance(col.dtype, pd.CategoricalDtype):
            out[name] = col
        else:
            out[name] = _typed_column(name, col.to_numpy(dtype=object))
    return pd.DataFrame(out)


def _sniff_text(p: Path, sep: str | None, notes: list[str]) -> tuple[str, str]:
    """(encoding, delimiter) from the first 64 KiB; binary data is a ValueError."""
    import csv

    with p.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if b"\x00" in head:
        raise ValueError("not a text table (it holds binary data); is it the file you meant?")
    try:
        text = head.decode("utf-8-sig")
        encoding = "utf-8-sig"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a character cut by the 64 KiB boundary
            text, encoding = head[: exc.start].decode("utf-8-sig"), "utf-8-sig"
        else:
            try:
                text = head.decode("cp1252")
            except UnicodeDecodeError:
                raise ValueError("neither UTF-8 nor Windows-1252 text") from None
            encoding = "cp1252"
            notes.append(f"{p.name} is not UTF-8; read as Windows-1252 text")
    if sep is None:
        lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
        sample = "\n".join(lines)
        try:
            sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
        if sep != "," and not all(sep in ln for ln in lines[:2]):
            sep = ","
        semis = {ln.count(";") for ln in lines}
        if sep == "," and len(semis) == 1 and semis != {0}:  # ';' fields, decimal commas
            sep = ";"
    return encoding, sep


def _survey_text(
    p: Path, sep: str | None, header: bool | None, notes: list[str]
) -> tuple[Any, bool]:
    import csv
    import re

    import pandas as pd

    given = sep
    encoding, sep = _sniff_text(p, sep, notes)
    with p.open(encoding=encoding, errors="replace", newline="") as fh:
        first = next((row for row in csv.reader(fh, delimiter=sep) if row), None)
    if first is None:
        raise ValueError("holds no data")
    others = [c for c in ",;\t|" if c != sep and c in first[0]]
    if given is not None and len(first) == 1 and others:
        raise ValueError(
            f"line 1 has no {sep!r} but has {others[0]!r}: is the delimiter right? (say it "
            "with sep= / --sep, or leave it out to have it sniffed)"
        )
    if header is None:
        if sep != ",":  # "5,1" is a number where commas are decimal marks
            first = [f.replace(",", ".") if re.fullmatch(_DECIMAL_COMMA, f) else f for f in first]
        kinds = {_cell_kind(field) for field in first}
        if kinds == {"text"}:
            header = True
        elif "text" not in kinds:
            header = False
        else:
            header = True  # a mixed first line: names such as "2019" among words
            notes.append(f"line 1 of {p.name} is read as the column names")
    try:
        raw = pd.read_csv(
            p,
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding=encoding,
            skip_blank_lines=True,
            engine="c",
            low_memory=False,
        )
    except UnicodeDecodeError as exc:
        raise ValueError(f"not {encoding.replace('-sig', '')} text (byte {exc.start})") from None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if m:
            raise ValueError(
                f"line {m[2]} has {m[3]} columns, expected {m[1]} (is the delimiter "
                f"{sep!r} right? say it with sep= / --sep)"
            ) from None
        raise ValueError(f"not a readable table ({error_reason(exc)})") from None
    except pd.errors.EmptyDataError:
        raise ValueError("holds no data") from None
    width = raw.shape[1]
    _check_last_line(p, encoding, sep, width)
    if header:
        names = _unique_names(raw.iloc[0].tolist())
        raw = raw.iloc[1:].reset_index(drop=True)
    else:
        names = [f"V{j + 1}" for j in range(width)]
    if sep != ",":
        raw = _decimal_commas(raw, names, notes)
    return _frame_of_cells(names, raw), bool(header)


_DECIMAL_COMMA = r"\s*[+-]?(\d+|\d*,\d+)\s*"


def _decimal_commas(raw: Any, names: list[str], notes: list[str]) -> Any:
    """Columns of a file not delimited by commas whose every answer is a number written
    with a decimal comma ("5,1", as European spreadsheets export them), at least one with
    the comma: read as numbers, and one note names them."""
    import re

    found = []
    for j, name in enumerate(names):
        cells = [c for c in raw.iloc[:, j] if not _cell_is_missing(c)]
        commas = [c for c in cells if "," in c]
        if commas and all(re.fullmatch(_DECIMAL_COMMA, c) for c in cells):
            raw.iloc[:, j] = [c.replace(",", ".") for c in raw.iloc[:, j]]
            found.append((name, commas[0].strip()))
    if found:
        shown = ", ".join(repr(name) for name, _ in found[:5]) + (", ..." if len(found) > 5 else "")
        notes.append(
            f"{len(found)} column{'s hold' if len(found) > 1 else ' holds'} numbers with a "
            f"decimal comma ({shown}: {found[0][1]!r} is {found[0][1].replace(',', '.')})"
        )
    return raw


def _check_last_line(p: Path, encoding: str, sep: str, width: int) -> None:
    """A file cut short mid-row is an error (pandas pads a short row with empty cells)."""
    import csv

    size = p.stat().st_size
    with p.open("rb") as fh:
        fh.seek(max(0, size - _HEAD_BYTES))
        tail = fh.read()
    if tail.endswith((b"\n", b"\r")):
        return
    last = tail.splitlines()[-1].decode(encoding.replace("-sig", ""), errors="replace")
    row = next(csv.reader([last], delimiter=sep), [])
    if row and len(row) < width:
        raise ValueError(
            f"the last line has {len(row)} columns, expected {width} (is the file truncated?)"
        )


def _survey_excel(p: Path, sheet: str | int | None, header: bool | None) -> tuple[Any, bool]:
    import pandas as pd

    try:
        raw = pd.read_excel(
            p, sheet_name=0 if sheet is None else sheet, header=None, dtype=object,
            engine="openpyxl",
        )  # fmt: skip
    except ImportError:
        raise ValueError("reading Excel files needs openpyxl (pip install openpyxl)") from None
    except (KeyError, IndexError, ValueError) as exc:
        if sheet is not None:
            raise ValueError(f"sheet {sheet!r} not found ({exc})") from None
        raise ValueError(f"not a readable Excel file ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile and openpyxl's own errors
        raise ValueError(f"not a readable Excel file ({type(exc).__name__}: {exc})") from None
    raw = raw.dropna(axis=0, how="all").dropna(axis=1, how="all").reset_index(drop=True)
    if raw.empty:
        raise ValueError("holds no data")
    if header is None:
        header = all(isinstance(c, str) for c in raw.iloc[0].tolist() if not _cell_is_missing(c))
    if header:
        names = _unique_names(raw.iloc[0].tolist())
        raw = raw.iloc[1:].reset_index(drop=True)
    else:
        names = [f"V{j + 1}" for j in range(raw.shape[1])]
    return _frame_of_cells(names, raw.astype(object)), bool(header)


def _survey_parquet(p: Path) -> Any:
    import pandas as pd

    try:
        raw = pd.read_parquet(p)
    except ImportError:
        raise ValueError("reading .parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as exc:  # pyarrow's own error types for a corrupt file
        raise ValueError(f"not a readable .parquet file ({error_reason(exc)})") from None
    names = _unique_names(list(raw.columns))
    return _frame_of_cells(names, raw)


NUMBERS_WITH_CODES = 10
"""An SPSS/Stata column with more distinct unlabelled values than this is a measurement
whose value labels mark special codes (-9 "refused"): its labelled answers are missing."""


def _survey_labelled(p: Path, suffix: str, notes: list[str]) -> Any:
    """SPSS/Stata: value labels as categories in code order, user-missing codes missing."""
    import pandas as pd

    try:
        import pyreadstat
    except ImportError:
        raise ValueError("reading SPSS/Stata files needs pyreadstat") from None
    try:
        if suffix == ".dta":
            raw, meta = pyreadstat.read_dta(str(p), apply_value_formats=False)
        else:
            raw, meta = pyreadstat.read_sav(str(p), apply_value_formats=False, user_missing=True)
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        kind = "Stata" if suffix == ".dta" else "SPSS"
        raise ValueError(f"not a readable {kind} file ({error_reason(exc)})") from None
    names = _unique_names(list(raw.columns))
    raw.columns = names
    ranges = getattr(meta, "missing_ranges", None) or {}
    labels_of = getattr(meta, "variable_value_labels", None) or {}
    out = {}
    for name in names:
        col = raw[name]
        if col.dtype.kind not in "iuf":
            out[name] = _typed_column(name, col.to_numpy(dtype=object))
            continue
        x = col.to_numpy(dtype=np.float64, na_value=np.nan)
        user_missing = np.zeros(len(x), dtype=bool)
        for r in ranges.get(name, []):
            lo, hi = r.get("lo"), r.get("hi")
            if isinstance(lo, int | float) and isinstance(hi, int | float):
                user_missing |= (x >= lo) & (x <= hi)
        if user_missing.any():
            codes = sorted({_code_text(v) for v in x[user_missing]})
            m = int(user_missing.sum())
            notes.append(
                f"column {name!r}: {m} answer{'s' if m > 1 else ''} with a user-missing code "
                f"({', '.join(codes)}) {'are' if m > 1 else 'is'} missing"
            )
            x = np.where(user_missing, np.nan, x)
        labels = {float(k): str(v) for k, v in labels_of.get(name, {}).items()}
        if not labels:
            out[name] = x
            continue
        seen = x[~np.isnan(x)]
        plain = np.unique(seen[~np.isin(seen, list(labels))])
        if len(plain) > NUMBERS_WITH_CODES:  # a measurement whose labels mark special codes
            coded = np.isin(x, list(labels))
            if coded.any():
                found = sorted({float(v) for v in x[coded]})
                said = ", ".join(f"{_code_text(c)} {labels[c]!r}" for c in found[:5])
                m = int(coded.sum())
                notes.append(
                    f"column {name!r}: numbers with {len(plain)} unlabelled values, so its "
                    f"{m} labelled answer{'s' if m > 1 else ''} ({said}"
                    f"{', ...' if len(found) > 5 else ''}) {'are' if m > 1 else 'is'} taken "
                    "as missing-value codes"
                )
                x = np.where(coded, np.nan, x)
            out[name] = x
            continue
        codes = sorted(set(labels) | set(seen.tolist()))
        names_of = {}
        used: set[str] = set()
        unlabelled = []
        for c in codes:
            label = labels.get(c)
            if label is None:
                label = _code_text(c)
                if c in seen:
                    unlabelled.append(label)
            if label in used:
                label = f"{label} ({_code_text(c)})"
            used.add(label)
            names_of[c] = label
        if unlabelled:
            one = len(unlabelled) == 1
            shown = ", ".join(unlabelled[:10]) + (", ..." if len(unlabelled) > 10 else "")
            notes.append(
                f"column {name!r}: the code{'' if one else 's'} {shown} "
                f"{'has' if one else 'have'} no value label; "
                f"{'its number is its' if one else 'their numbers are their'} name"
            )
        kept = [c for c in codes if not _in_ranges(ranges.get(name, []), c)]
        cats = [names_of[c] for c in kept]
        text = [None if np.isnan(v) else names_of[v] for v in x]
        out[name] = pd.Categorical(text, categories=cats, ordered=True)
    return pd.DataFrame(out)


def _in_ranges(ranges: list[dict[str, Any]], code: float) -> bool:
    """Whether ``code`` is one of a column's SPSS user-missing values or ranges."""
    return any(
        isinstance(r.get("lo"), int | float)
        and isinstance(r.get("hi"), int | float)
        and r["lo"] <= code <= r["hi"]
        for r in ranges
    )


def _code_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**53 else f"{v:g}"
