"""Saving and loading state dicts: exact round trips, and every malformed or foreign file
refused with a SerializationError that names the file (loading never unpickles)."""
import io
import os
import pickle
import zipfile

import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinytrace as tt
from tinytrace import nn


class Net(nn.Module):
    def __init__(self, seed):
        super().__init__()
        self.emb = nn.Embedding(6, 3, rng=seed)
        self.fc = nn.Linear(3, 2, rng=seed + 1)
        self.out = nn.Linear(2, 1, dtype=np.float64, rng=seed + 2)

    def forward(self, idx):
        return self.out(self.fc(self.emb(idx)).tanh().astype(np.float64))


@pytest.fixture
def saved(tmp_path):
    """A model and the path of its saved state dict."""
    model = Net(seed=0)
    path = tmp_path / "model.npz"
    tt.save(model.state_dict(), path)
    return model, path


def _refused(path):
    """Load ``path``, expecting a SerializationError that names it; return the message."""
    with pytest.raises(tt.SerializationError) as info:
        tt.load(path)
    message = str(info.value)
    assert str(path) in message
    return message


# ---- round trips ---------------------------------------------------------------------------

def test_save_load_round_trips_exactly(saved):
    model, path = saved
    state = model.state_dict()
    loaded = tt.load(path)
    assert list(loaded) == list(state)                   # names, in order
    for name, value in state.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
        np.testing.assert_array_equal(loaded[name], value)
    assert loaded["out.weight"].dtype == np.float64 and loaded["fc.weight"].dtype == np.float32
    assert sorted(os.listdir(path.parent)) == ["model.npz"]     # no temporary file left


def test_loaded_state_restores_a_fresh_models_outputs(saved):
    model, path = saved
    idx = np.array([0, 5, 2, 2])
    other = Net(seed=7)
    assert not np.array_equal(model(idx).data, other(idx).data)
    other.load_state_dict(tt.load(path))
    np.testing.assert_array_equal(model(idx).data, other(idx).data)


def test_save_accepts_tensors_scalars_and_path_strings(tmp_path):
    path = str(tmp_path / "mixed.npz")
    tt.save({"t": tt.tensor([1.0, 2.0]), "s": np.float64(3.5), "i": np.arange(4)}, path)
    loaded = tt.load(path)
    np.testing.assert_array_equal(loaded["t"], np.array([1.0, 2.0], dtype=np.float32))
    assert loaded["s"].shape == () and loaded["s"] == 3.5
    np.testing.assert_array_equal(loaded["i"], np.arange(4))


def test_save_refuses_object_arrays_and_the_reserved_name(tmp_path):
    with pytest.raises(TypeError, match="w"):
        tt.save({"w": np.array([{"a": 1}], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="__tinytrace__"):
        tt.save({"__tinytrace__": np.zeros(1)}, tmp_path / "y.npz")
    assert not list(tmp_path.iterdir())


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        tt.load(tmp_path / "nope.npz")


# ---- never unpickle ------------------------------------------------------------------------

class _Trap:
    """Unpickling this would create a directory: proof that the unpickler ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_a_pickle_file_is_refused_without_unpickling(tmp_path):
    trap = tmp_path / "unpickled"
    path = tmp_path / "state.npz"
    with open(path, "wb") as f:
        pickle.dump({"weight": np.zeros(3), "trap": _Trap(trap)}, f)
    message = _refused(path)
    assert "pickle" in message.lower()
    assert not trap.exists()


def test_an_npz_with_an_object_array_is_refused_without_unpickling(tmp_path):
    trap = tmp_path / "unpickled"
    path = tmp_path / "state.npz"
    objects = np.empty(1, dtype=object)
    objects[0] = _Trap(trap)
    np.savez(path, __tinytrace__=np.array([1]), weight=np.zeros(2), evil=objects)
    _refused(path)
    assert not trap.exists()


# ---- damaged and foreign files ----------------------------------------------------------------

def test_a_truncated_file_is_refused(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    message = _refused(cut)
    assert "truncated" in message


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7])
def test_a_file_with_flipped_bytes_in_the_middle_is_refused(tmp_path, where):
    # one big entry, so the middle of the file is array data (damage to a few header
    # fields, e.g. timestamps, is harmless: see the next test)
    path = tmp_path / "big.npz"
    tt.save({"big": np.linspace(0, 1, 4000), "small": np.ones(3)}, path)
    data = bytearray(path.read_bytes())
    start = int(len(data) * where)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("big.npy")
    assert info.header_offset + 200 < start < info.header_offset + info.compress_size
    for i in range(start, start + 4):
        data[i] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(data))
    _refused(bad)


def test_a_single_flipped_byte_anywhere_never_changes_the_loaded_values(tmp_path):
    # Every flip either is refused or leaves the loaded arrays as saved (zip headers hold
    # a few fields, like timestamps, that reading does not depend on).
    state = {"w": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], dtype=np.int32)}
    path = tmp_path / "small.npz"
    tt.save(state, path)
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    refused = 0
    for i in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        try:
            loaded = tt.load(bad)
        except tt.SerializationError as err:
            assert str(bad) in str(err)
            refused += 1
            continue
        assert list(loaded) == list(state)
        for name, value in loaded.items():
            assert value.dtype == state[name].dtype
            np.testing.assert_array_equal(value, state[name])
    assert refused > len(data) // 3 // 2


def test_random_bytes_and_an_empty_file_are_refused(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _refused(path)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _refused(empty)


def test_an_npz_not_written_by_tinytrace_is_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weight=np.zeros((2, 2)))
    message = _refused(path)
    assert "__tinytrace__" in message


def test_a_plain_npy_file_is_refused(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(5.0))
    message = _refused(path)
    assert ".npy" in message


def test_a_zip_with_non_array_members_is_refused(tmp_path):
    marker = io.BytesIO()
    np.save(marker, np.array([1, 1], dtype=np.int64))
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__tinytrace__.npy", marker.getvalue())
        z.writestr("notes.txt", b"hello")
    message = _refused(path)
    assert "notes.txt" in message


@pytest.mark.parametrize("marker", [np.array([99], dtype=np.int64),
                                    np.array([], dtype=np.int64),
                                    np.array(["v1"])], ids=["future", "empty", "text"])
def test_a_bad_format_marker_is_refused(tmp_path, marker):
    path = tmp_path / "marked.npz"
    np.savez(path, __tinytrace__=marker, weight=np.zeros(2))
    _refused(path)


# ---- the boundaries: one entry lost, one version ahead -----------------------------------

def _without(path, member, out):
    """A copy of the zip ``path`` missing ``member`` (as if its directory entry was lost)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != member:
                dst.writestr(info, src.read(info.filename))
    return out


def test_an_archive_that_lost_any_one_of_its_entries_is_refused(saved, tmp_path):
    _, path = saved
    with zipfile.ZipFile(path) as z:
        members = z.namelist()
    assert len(members) == 6                     # five parameters and the marker
    for member in members:
        message = _refused(_without(path, member, tmp_path / f"lost_{member}.npz"))
        assert ("holds 4" in message) if member != "__tinytrace__.npy" else ("no __tinytrace__" in message)


def _marked(tmp_path, version, count=1):
    path = tmp_path / f"v{version}.npz"
    np.savez(path, __tinytrace__=np.array([version, count], dtype=np.int64), weight=np.ones(2))
    return path


def test_a_format_version_one_above_the_current_is_refused(tmp_path):
    from tinytrace.serialize import FORMAT_VERSION
    message = _refused(_marked(tmp_path, FORMAT_VERSION + 1))
    assert f"format version {FORMAT_VERSION + 1}" in message and "upgrade" in message
    np.testing.assert_array_equal(tt.load(_marked(tmp_path, FORMAT_VERSION))["weight"], [1, 1])
    np.testing.assert_array_equal(tt.load(_marked(tmp_path, 1))["weight"], [1, 1])  # older
    _refused(_marked(tmp_path, 0))
    _refused(_marked(tmp_path, FORMAT_VERSION, count=2))    # says 2 entries, holds 1


# ---- what save accepts, and what it refuses at the call --------------------------------------

def test_save_of_a_module_saves_its_state_dict(tmp_path):
    model = Net(seed=3)
    tt.save(model, tmp_path / "m.npz")           # the PyTorch habit: torch.save(model, path)
    loaded = tt.load(tmp_path / "m.npz")
    assert list(loaded) == list(model.state_dict())
    fresh = Net(seed=4)
    fresh.load_state_dict(loaded)
    for (name, a), b in zip(fresh.state_dict().items(), model.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_a_nested_checkpoint_round_trips(tmp_path):
    model = Net(seed=0)
    opt = tt.optim.Adam(model.parameters(), lr=0.01)
    tt.save({"model": model, "optimizer": opt, "epoch": 3}, tmp_path / "ckpt.npz")
    ckpt = tt.load(tmp_path / "ckpt.npz")
    assert list(ckpt) == ["model", "optimizer", "epoch"]
    assert list(ckpt["model"]) == list(model.state_dict())
    assert int(ckpt["epoch"]) == 3 and ckpt["optimizer"]["lr"] == 0.01
    with zipfile.ZipFile(tmp_path / "ckpt.npz") as z:
        assert "model/fc.weight.npy" in z.namelist()


def test_save_refuses_bytes_objects_and_swapped_arguments(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match=r"entry 'name' is bytes b'abc'; only numbers"):
        tt.save({"name": b"abc"}, path)
    with pytest.raises(TypeError, match="got the path 'x.npz' first"):
        tt.save("x.npz", Net(seed=0))
    with pytest.raises(TypeError, match="must be a dict of arrays .* not str"):
        tt.save("abc", path)
    with pytest.raises(ValueError, match="invalid entry name 'a/b'"):
        tt.save({"a/b": np.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"invalid entry name 'a\\x00b'"):
        tt.save({"a\0b": np.zeros(1)}, path)           # a zip name would end at the NUL
    with pytest.raises(TypeError, match="entry 'w' is the int 2361183241434822606848, which "
                                        "does not fit an int64"):
        tt.save({"w": 2 ** 71}, path)
    with pytest.raises(TypeError, match=r"entry 'w/1' is a set"):
        tt.save({"w": [1, {2}]}, path)
    assert not path.exists()
    # (None, a ragged list and an empty dict, once refused here, now load back as
    # themselves: see the tests of Python containers below)


# ---- Python scalars come back as themselves ---------------------------------------------------

def test_python_scalars_and_strings_load_back_as_the_same_python_types(tmp_path):
    state = {"epoch": 3, "lr": 0.1, "best": True, "name": "run-ü 3", "empty": "",
             "big": -2**62, "tiny": 5e-324, "np_float": np.float64(0.5), "np_int": np.int32(7),
             "nested": {"step": 12, "frac": 1 / 3, "w": np.ones(2)}}
    tt.save(state, tmp_path / "ckpt.npz")
    loaded = tt.load(tmp_path / "ckpt.npz")
    for name in ("epoch", "lr", "best", "name", "empty", "big", "tiny"):
        assert type(loaded[name]) is type(state[name]) and loaded[name] == state[name], name
    assert type(loaded["nested"]["step"]) is int and loaded["nested"]["step"] == 12
    assert type(loaded["nested"]["frac"]) is float and loaded["nested"]["frac"] == 1 / 3
    # NumPy scalars stay 0-d arrays of their dtype, as they always loaded
    assert isinstance(loaded["np_float"], np.ndarray) and loaded["np_float"].dtype == np.float64
    assert isinstance(loaded["np_int"], np.ndarray) and loaded["np_int"].dtype == np.int32
    np.testing.assert_array_equal(loaded["nested"]["w"], np.ones(2))


def test_a_version_two_file_with_a_scalar_still_loads_it_as_a_0d_array(tmp_path):
    path = tmp_path / "v2.npz"                   # what tinytrace wrote before format 3
    np.savez(path, __tinytrace__=np.array([2, 2], dtype=np.int64),
             **{"epoch": np.array(3), "model/w": np.ones(2)})
    loaded = tt.load(path)
    assert isinstance(loaded["epoch"], np.ndarray) and loaded["epoch"] == 3
    np.testing.assert_array_equal(loaded["model"]["w"], np.ones(2))


def _with_types(tmp_path, types_bytes, **arrays):
    path = tmp_path / "typed.npz"
    np.savez(path, __tinytrace__=np.array([3, len(arrays) + 1], dtype=np.int64),
             __tinytrace_types__=np.frombuffer(types_bytes, dtype=np.uint8), **arrays)
    return path


@pytest.mark.parametrize("types_bytes, arrays", [
    (b"{not json", {"epoch": np.array(3)}),
    (b"[1, 2]", {"epoch": np.array(3)}),
    (b'{"epoch": "int"}', {"other": np.array(3)}),                  # names a missing entry
    (b'{"epoch": "int"}', {"epoch": np.array([3, 4])}),             # not 0-d
    (b'{"epoch": "int"}', {"epoch": np.array(3.5)}),                # a float is no int
    (b'{"epoch": "tuple"}', {"epoch": np.array(3)}),                # no such type
    (b'{"name": "str"}', {"name": np.frombuffer(b"\xff\xfe", dtype=np.uint8)}),  # not UTF-8
], ids=["bad-json", "not-a-dict", "missing", "not-0d", "wrong-kind", "unknown", "not-utf8"])
def test_a_malformed_types_entry_is_refused(tmp_path, types_bytes, arrays):
    _refused(_with_types(tmp_path, types_bytes, **arrays))


def test_the_types_entry_name_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="__tinytrace_types__"):
        tt.save({"__tinytrace_types__": 1}, tmp_path / "x.npz")


# ---- lists, tuples, None and empty dicts come back as themselves -----------------------------

def _assert_same_python(loaded, saved, where="state"):
    """Equal, and of the same Python type all the way down (arrays: same dtype)."""
    if isinstance(saved, np.ndarray):
        assert isinstance(loaded, np.ndarray) and loaded.dtype == saved.dtype, where
        np.testing.assert_array_equal(loaded, saved, err_msg=where)
        return
    assert type(loaded) is type(saved), (where, type(loaded), type(saved))
    if isinstance(saved, dict):
        assert list(loaded) == list(saved), where
        for key in saved:
            _assert_same_python(loaded[key], saved[key], f"{where}/{key}")
    elif isinstance(saved, (list, tuple)):
        assert len(loaded) == len(saved), where
        for i, (a, b) in enumerate(zip(loaded, saved)):
            _assert_same_python(a, b, f"{where}/{i}")
    else:
        assert loaded == saved, where


def test_nested_lists_tuples_none_and_empty_containers_load_back_as_themselves(tmp_path):
    state = {"losses": [0.9, 0.5, 0.25], "epochs": [1, 2, 3], "flags": [True, False],
             "betas": (0.9, 0.999), "mixed": [1, 2.5, True, "a", None],
             "ragged": [[1, 2], [3]], "history": [{"epoch": 1, "lr": 0.1},
                                                  {"epoch": 2, "lr": 0.05, "note": ""}],
             "arrays": [np.ones(2, dtype=np.float32), np.arange(3)],
             "deep": {"a": ({"b": [(), [], {}]},), "none": None, "z": 1 + 2j},
             "empty_list": [], "empty_tuple": (), "empty_dict": {}, "best": None}
    tt.save(state, tmp_path / "ckpt.npz")
    _assert_same_python(tt.load(tmp_path / "ckpt.npz"), state)
    with zipfile.ZipFile(tmp_path / "ckpt.npz") as z:
        members = z.namelist()
    assert "losses.npy" in members and not any(m.startswith("losses/") for m in members)
    assert {"mixed/0.npy", "mixed/4.npy", "history/1/note.npy"} <= set(members)


def test_the_format_is_4_only_for_a_file_that_needs_it(tmp_path):
    def version(state):
        tt.save(state, tmp_path / "v.npz")
        with np.load(tmp_path / "v.npz") as archive:
            return int(archive["__tinytrace__"][0])

    assert version({"w": np.ones(2), "epoch": 3, "name": "run"}) == 3   # older ones read it
    assert version({"w": np.ones(2), "losses": [0.5]}) == 4
    assert version({"best": None}) == 4
    assert version({"z": 1j}) == 4


@pytest.mark.parametrize("types_bytes, arrays", [
    (b'{"x": "list"}', {"x/0": np.array(1), "x/2": np.array(2)}),           # a gap
    (b'{"x": "list"}', {"x/0": np.array(1), "x/a": np.array(2)}),           # not a number
    (b'{"x": "tuple"}', {"x": np.ones(2, dtype=np.uint8)}),                 # not empty
    (b'{"x": "none"}', {"x": np.array(0)}),
    (b'{"x": "list[int]"}', {"x": np.ones(2)}),                            # floats
    (b'{"x": "list[float]"}', {"x": np.ones((2, 2))}),                     # not 1-D
    (b'{"x": "list"}', {"y": np.array(1)}),                                # no items at all
    (b'{"x": "dict"}', {"x": np.zeros(0, dtype=np.uint8), "x/a": np.array(1)}),
], ids=["gap", "not-numbered", "non-empty-tuple", "none-not-empty", "wrong-item-type",
        "not-1d", "no-items", "dict-and-items"])
def test_a_damaged_container_entry_is_refused(tmp_path, types_bytes, arrays):
    path = tmp_path / "typed.npz"
    np.savez(path, __tinytrace__=np.array([4, len(arrays) + 1], dtype=np.int64),
             __tinytrace_types__=np.frombuffer(types_bytes, dtype=np.uint8), **arrays)
    _refused(path)


def test_a_format_3_file_cannot_claim_the_format_4_kinds(tmp_path):
    path = tmp_path / "v3.npz"
    np.savez(path, __tinytrace__=np.array([3, 2], dtype=np.int64),
             __tinytrace_types__=np.frombuffer(b'{"x": "none"}', dtype=np.uint8),
             x=np.zeros(0, dtype=np.uint8))
    assert "says entry 'x' is a Python 'none'" in _refused(path)


_NAMES = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
                 min_size=1, max_size=4).filter(lambda n: not n.startswith("__tinytrace"))
_LEAVES = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63 - 1) |
           st.floats(allow_nan=False) | st.text(max_size=5))
_VALUES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=4) |
                       st.lists(inner, max_size=3).map(tuple) |
                       st.dictionaries(_NAMES, inner, max_size=3), max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=4))
def test_any_nesting_of_python_values_round_trips(state):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ckpt.npz")
        tt.save(state, path)
        _assert_same_python(tt.load(path), state)
