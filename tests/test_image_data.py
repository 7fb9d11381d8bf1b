"""tt.data.images: the 8x8 digits and the MNIST idx reader, tested on idx files written
here (plain and gzipped), including malformed ones."""
import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import tinytrace as tt
from tinytrace.data.images import read_idx, stratified_split, write_idx

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@given(st.sampled_from(IDX_DTYPES).flatmap(
    lambda dt: arrays(dt, array_shapes(min_dims=1, max_dims=4, max_side=5))),
       st.booleans())
def test_idx_round_trip(tmp_path_factory, array, gzipped):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gzipped else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=") and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_published_format(tmp_path):
    path = write_idx(tmp_path / "labels", np.array([7, 2, 1], np.uint8))
    assert path.read_bytes() == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1])
    images = np.arange(2 * 2 * 3, dtype=np.int32).reshape(2, 2, 3)
    raw = write_idx(tmp_path / "images", images).read_bytes()
    assert raw[:16] == bytes([0, 0, 0x0C, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[16:20] == bytes([0, 0, 0, 0]) and raw[20:24] == bytes([0, 0, 0, 1])  # big-endian


@pytest.mark.parametrize("raw, match", [
    (b"", "does not start like an idx file"),
    (b"\x01\x00\x08\x01", "does not start like"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated inside its header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "header says shape \\(3,\\)"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "holds 2 bytes of data"),
])
def test_malformed_idx_files_are_refused(tmp_path, raw, match):
    path = tmp_path / "bad"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        read_idx(path)


def test_truncated_gzip_and_missing_file(tmp_path):
    whole = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd")
    (tmp_path / "cut.gz").write_bytes(whole[:-6])
    with pytest.raises(ValueError, match="not a readable idx file"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(FileNotFoundError, match="read_idx: no file"):
        read_idx(tmp_path / "nothing")
    with pytest.raises(ValueError, match="idx stores"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def write_fake_mnist(folder, n_train=12, n_test=5, side=28, gz=True, sep="-"):
    rng = np.random.default_rng(0)
    files = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{stem}-images{sep}idx3-ubyte{suffix}", images)
        write_idx(folder / f"{stem}-labels{sep}idx1-ubyte{suffix}", labels)
        files[stem] = (images, labels)
    return files


@pytest.mark.parametrize("gz, sep", [(True, "-"), (False, "-"), (False, ".")])
def test_load_mnist_reads_the_four_files(tmp_path, gz, sep):
    files = write_fake_mnist(tmp_path, gz=gz, sep=sep)
    data = tt.data.load_mnist(tmp_path)
    assert data.x_train.shape == (12, 784) and data.x_test.shape == (5, 784)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train.reshape(12, 28, 28), files["train"][0])
    np.testing.assert_array_equal(data.y_test, files["t10k"][1])
    assert data.image_shape == (28, 28) and data.max_value == 255.0
    assert "12 train and 5 test images of 28x28" in repr(data)


def test_load_mnist_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        tt.data.load_mnist(tmp_path / "nowhere")
    write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte"):
        tt.data.load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))   # 5 images
    with pytest.raises(ValueError, match=r"labels \(N,\)"):
        tt.data.load_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.int32))
    with pytest.raises(ValueError, match="uint8"):
        tt.data.load_mnist(tmp_path)


def test_digits_are_raw_nonnegative_pixels_split_by_class():
    data = tt.data.load_digits(test_fraction=0.25, seed=3)
    assert data.x_train.shape[1] == 64 and len(data.x_train) + len(data.x_test) == 1797
    assert data.x_train.min() == 0 and data.x_train.max() == 16 and data.num_classes == 10
    for c in range(10):
        n_test = (data.y_test == c).sum()
        assert n_test == round(0.25 * (n_test + (data.y_train == c).sum()))
    again = tt.data.load_digits(test_fraction=0.25, seed=3)
    assert np.array_equal(again.y_test, data.y_test)
    assert not np.array_equal(tt.data.load_digits(seed=4).y_test, data.y_test)


def test_stratified_split_refuses_bad_fractions():
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(np.zeros(4), 1.0)
