"""emnet.data: the digits split of SPEC §3, binarised digits, and the IDX reader."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits

from emnet.data import N_TEST, binarized_digits, digits, load_idx


@pytest.fixture(scope="module")
def sk():
    b = load_digits()
    return b.images.astype(np.float32), b.target.astype(np.int64)


def test_digits_split_is_first_180_for_test(sk):
    images, labels = sk
    train, test = digits()
    assert N_TEST == 180
    assert test.images.shape == (180, 1, 8, 8) and train.images.shape == (1617, 1, 8, 8)
    assert test.images.dtype == np.float32 and train.labels.dtype == np.int64
    np.testing.assert_array_equal(test.images[:, 0], images[:180])
    np.testing.assert_array_equal(train.images[:, 0], images[180:])
    np.testing.assert_array_equal(test.labels, labels[:180])
    np.testing.assert_array_equal(train.labels, labels[180:])
    # raw 0–16 pixel values by default (the write-up's choice)
    assert train.images.min() == 0 and train.images.max() == 16
    assert train.images.flags["C_CONTIGUOUS"]


def test_digits_normalisations(sk):
    raw, _ = digits()
    unit, _ = digits("unit")
    np.testing.assert_allclose(unit.images, raw.images / 16)
    std_train, std_test = digits("standard")
    assert abs(float(std_train.images.mean())) < 1e-5
    assert abs(float(std_train.images.std()) - 1) < 1e-5
    # the test set is scaled with the *training* statistics
    mean, sd = raw.images.mean(), raw.images.std()
    np.testing.assert_allclose(
        std_test.images, (digits()[1].images - mean) / sd, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(digits(True)[0].images, std_train.images)


@pytest.mark.parametrize("bad", ["minmax", 3, "Unit"])
def test_digits_rejects_unknown_normalisation(bad):
    with pytest.raises(ValueError, match="normalize"):
        digits(bad)


def test_binarized_digits(sk):
    images, labels = sk
    X, y = binarized_digits()
    assert X.shape == (1797, 64) and X.dtype == np.uint8
    assert set(np.unique(X)) == {0, 1}
    np.testing.assert_array_equal(X, (images.reshape(1797, 64) >= 8).astype(np.uint8))
    np.testing.assert_array_equal(y, labels)
    X0, _ = binarized_digits(threshold=0)
    assert X0.all()
    with pytest.raises(ValueError, match="threshold"):
        binarized_digits(float("nan"))
    with pytest.raises(TypeError, match="threshold"):
        binarized_digits("8")  # type: ignore[arg-type]


_CODES = {np.uint8: 0x08, np.int8: 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}


def write_idx(path, array: np.ndarray, code: int, big_dtype, compress: bool) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=big_dtype).tobytes()
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@settings(max_examples=25, deadline=None)
@given(
    dtype=st.sampled_from(list(_CODES)),
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    compress=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_load_idx_round_trip(tmp_path_factory, dtype, shape, compress, seed):
    rng = np.random.default_rng(seed)
    data = (rng.normal(size=shape) * 50).astype(np.dtype(dtype))
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, data, _CODES[dtype], np.dtype(dtype), compress)
    out = load_idx(path)
    assert out.shape == tuple(shape)
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, data)


def test_load_idx_mnist_like_images_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 0x08, np.uint8, True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08, np.uint8, False)
    np.testing.assert_array_equal(load_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    np.testing.assert_array_equal(load_idx(str(tmp_path / "train-labels-idx1-ubyte")), labels)


def test_load_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_idx(tmp_path / "missing.idx")
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="magic"):
        load_idx(bad)
    bad.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="type code"):
        load_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x02\x00\x00\x00\x02")
    with pytest.raises(ValueError, match="header"):
        load_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02")
    with pytest.raises(ValueError, match="expected 3"):
        load_idx(bad)
    bad.write_bytes(b"\x00\x00\x08\x00")
    with pytest.raises(ValueError, match="zero dimensions"):
        load_idx(bad)
    good = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")
    bad.write_bytes(good[:-6])  # truncated gzip stream
    with pytest.raises(ValueError, match="cannot read"):
        load_idx(bad)
