"""Small image-classification data with nonnegative pixels, offline.

    data = tt.data.load_digits()            # the 8x8 digits scikit-learn ships (0..16)
    data = tt.data.load_mnist("~/mnist")    # the real MNIST, from its four idx files
    data.x_train (N, D) float32, data.y_train (N,) int64, data.x_test, data.y_test

Both give raw, nonnegative pixel intensities (digits: 0..16, MNIST: 0..255), unscaled:
a model that treats pixels as fractional counts (``tt.explicit``) needs them positive,
and a model that wants them standardised can do that itself.

``read_idx`` / ``write_idx`` read and write the idx format MNIST (and Fashion-MNIST)
ship in: two zero bytes, a type code, the number of dimensions, each dimension as a
big-endian uint32, then the values, big-endian. Files ending in ``.gz`` are gzipped.
Nothing here downloads anything: get the MNIST files once, by whatever means you trust,
and point ``load_mnist`` at the folder.
"""
import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ImageData", "load_digits", "stratified_split", "read_idx", "write_idx",
           "load_mnist", "IDX_TYPES"]

# idx type code -> big-endian NumPy dtype
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclass
class ImageData:
    """Flattened images and integer labels, split into train and test.

    ``x_*``: (N, D) float32 raw intensities (>= 0), ``y_*``: (N,) int64 labels,
    ``image_shape``: (height, width) to un-flatten one row, ``max_value``: the largest
    intensity the format allows (16 for the digits, 255 for MNIST)."""

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    image_shape: tuple = (8, 8)
    max_value: float = 16.0

    def __repr__(self):
        return (f"ImageData({self.name!r}: {len(self.x_train):,} train and "
                f"{len(self.x_test):,} test images of {self.image_shape[0]}x"
                f"{self.image_shape[1]}, {self.num_classes} classes)")

    @property
    def num_classes(self):
        """The number of classes (largest label + 1 over train and test)."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def num_features(self):
        """The number of pixels per image (features per row)."""
        return self.x_train.shape[1]


def stratified_split(labels, test_fraction, seed=0):
    """Boolean mask over ``labels``: True for the test side, the same fraction of every
    class (rounded), chosen by a seeded permutation."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"stratified_split: test_fraction must be in (0, 1), got "
                         f"{test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[:round(test_fraction * len(members))]] = True
    return test


def load_digits(test_fraction=0.25, seed=0):
    """The 1,797 8x8 handwritten digits (UCI, via scikit-learn's bundled copy), split
    into train and test by ``stratified_split(labels, test_fraction, seed)``."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("load_digits: the 8x8 digits ship with scikit-learn; install it "
                          "(pip install 'tinytrace[lessons]')") from None
    images, labels = sklearn_digits(return_X_y=True)
    test = stratified_split(labels, test_fraction, seed)
    x, y = images.astype(np.float32), labels.astype(np.int64)
    return ImageData("digits 8x8", x[~test], y[~test], x[test], y[test], (8, 8), 16.0)


def _open(path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path):
    """The array stored in an idx file (``.gz`` or plain), in native byte order."""
    path = Path(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"read_idx: no file {path}") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"read_idx: {path} is not a readable idx file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"read_idx: {path} does not start like an idx file (expected two "
                         f"zero bytes, a type code in "
                         f"{[hex(c) for c in IDX_TYPES]} and a dimension count; got "
                         f"{raw[:4].hex(' ') or 'nothing'})")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated inside its header ({ndim} "
                         f"dimensions need {header} bytes, the file has {len(raw)})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"read_idx: {path} holds {len(raw) - header} bytes of data, but "
                         f"its header says shape {shape} of {dtype.str[1:]} "
                         f"({expected - header} bytes)")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` as an idx file (gzipped if ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"write_idx: idx stores uint8, int8, int16, int32, float32 or "
                         f"float64, not {array.dtype}")
    if array.ndim > 255:
        raise ValueError(f"write_idx: at most 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, codes[native], array.ndim]) + np.asarray(
        array.shape, ">u4").tobytes()
    body = array.astype(IDX_TYPES[codes[native]], copy=False).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + body)
    return path


def _find(directory, stem):
    """``<stem>-idxN-ubyte`` or ``<stem>.idxN-ubyte``, plain or ``.gz``."""
    kind = "idx3" if stem.endswith("images") else "idx1"
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            candidate = directory / f"{stem}{sep}{kind}-ubyte{suffix}"
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"load_mnist: no {stem}-{kind}-ubyte[.gz] in {directory} "
                            f"(it holds: {sorted(p.name for p in directory.iterdir())[:8]})")


def load_mnist(directory, name="mnist"):
    """MNIST (or Fashion-MNIST) from the four idx files in ``directory``
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each optionally ``.gz``): 28x28 images flattened to 784
    float32 intensities 0..255, labels int64. The official train/test split is kept."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"load_mnist: {directory} is not a folder")
    parts = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(directory, f"{stem}-images"))
        labels = read_idx(_find(directory, f"{stem}-labels"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"load_mnist: {split} images must be (N, H, W) and labels "
                             f"(N,), got {images.shape} and {labels.shape}")
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise ValueError(f"load_mnist: expected uint8 images and labels, got "
                             f"{images.dtype} and {labels.dtype}")
        parts[split] = (images.reshape(len(images), -1).astype(np.float32),
                        labels.astype(np.int64), images.shape[1:])
    if parts["train"][2] != parts["test"][2]:
        raise ValueError(f"load_mnist: train images are {parts['train'][2]} but test images "
                         f"are {parts['test'][2]}")
    return ImageData(name, parts["train"][0], parts["train"][1], parts["test"][0],
                     parts["test"][1], tuple(parts["train"][2]), 255.0)
