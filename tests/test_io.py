"""funcnet.io: round trips, every error message, atomic writes, checkpoint directories."""

import io
import json
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from funcnet import io as fio
from funcnet import layers, random
from funcnet._files import atomic_write
from funcnet.errors import ArgumentError, ArrayTypeError, CheckpointError, StructureError

REPO = Path(__file__).resolve().parents[1]


class AdamState(NamedTuple):
    count: np.ndarray
    mu: object
    nu: object


class TrainState(NamedTuple):
    params: object
    opt_state: AdamState
    key: np.ndarray
    epoch: int
    step: int
    history: tuple


def mlp_params(hidden, seed=0):
    net = layers.serial(layers.dense(hidden), layers.relu(), layers.dense(10))
    params, _ = net.init(random.key(seed), (784,))
    return params


def zeros_like(params):
    return tuple({k: np.zeros_like(v) for k, v in layer.items()} if layer else ()
                 for layer in params)


def train_state(hidden=50, epoch=3, history_length=2000):
    params = mlp_params(hidden)
    return TrainState(
        params=params,
        opt_state=AdamState(np.array(7, np.int64), zeros_like(params), params),
        key=random.split(random.key(1))[0],
        epoch=epoch,
        step=epoch * 100,
        history=tuple(1.0 / (i + 1) for i in range(history_length)),
    )


def float_bits(x):
    return struct.pack("<d", x)


def assert_same(a, b, *, same_classes=True):
    """Bitwise equal leaves, equal dtypes, and the same container types all the way down."""
    if isinstance(a, tuple) and hasattr(type(a), "_fields"):
        if same_classes:
            assert type(b) is type(a)
        else:
            assert type(b).__name__ == type(a).__name__
            assert type(b)._fields == type(a)._fields
        for x, y in zip(a, b, strict=True):
            assert_same(x, y, same_classes=same_classes)
    elif isinstance(a, dict):
        assert type(b) is dict
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b]
        for k in a:
            assert_same(a[k], b[k], same_classes=same_classes)
    elif isinstance(a, tuple | list):
        assert type(b) is type(a) and len(b) == len(a)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y, same_classes=same_classes)
    elif isinstance(a, np.ndarray):
        assert type(b) is np.ndarray
        assert b.dtype == a.dtype and b.shape == a.shape
        assert np.ascontiguousarray(b).tobytes() == np.ascontiguousarray(a).tobytes()
        assert not b.flags.writeable
    elif isinstance(a, np.generic):
        assert type(b) is type(a) and b.dtype == a.dtype
        assert np.asarray(b).tobytes() == np.asarray(a).tobytes()
    elif isinstance(a, float):
        assert type(b) is float and float_bits(a) == float_bits(b)
    else:
        assert type(b) is type(a) and b == a


TREES = {
    "bare array": np.arange(12.0).reshape(3, 4),
    "dict params": {"W": np.ones((3, 2)), "b": np.zeros(2)},
    "tuple of dicts with ()": mlp_params(5),
    "train state": train_state(history_length=20),
    "uint64 key": random.key(123),
    "dtypes": {
        str(dt): np.arange(6).reshape(2, 3).astype(dt)
        for dt in ["bool", "int8", "int32", "int64", "uint8", "uint64",
                   "float16", "float32", "float64", "complex128", ">f8"]
    },
    "0-d and empty arrays": (np.array(2.5), np.array(True), np.zeros((0, 3), np.float32)),
    "strided arrays": (np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.arange(10)[::3]),
    "string and datetime arrays": (np.array(["a", "bcd"]), np.array(["2024-01-02"], "M8[D]")),
    "numpy scalars": (np.float32(1.5), np.int64(-7), np.bool_(True), np.uint64(2**64 - 1)),
    "python scalars": {
        "int": 3, "big int": 2**100, "bool": False, "str": "é'\"[0]", "none": None,
        "floats": [math.nan, -0.0, math.inf, 1e-310, 0.1],
    },
    "float history": {"loss": tuple(1.0 / (i + 1) for i in range(500))},
    "int list and bool tuple": ([1, 2, 3], (True, False), [2**70, 1]),
    "mixed sequence": (1, 2.0, "x", None, True),
    "int and str keys": {0: np.ones(1), "0": np.zeros(1), 1: {"a/b": 1.0, "x']['y": 2}},
    "awkward keys": {"": 1, "__structure__": np.ones(2), "tree": 3, ".npy": 4},
    "empty containers": ((), [], {}, ((), {"a": ()}), [[]]),
    "list vs tuple": ([np.ones(1), (np.zeros(1),)], (np.ones(1), [np.zeros(1)])),
}


@pytest.mark.parametrize("name", list(TREES))
def test_round_trip_without_like(tmp_path, name):
    tree = TREES[name]
    fio.save_tree(tmp_path / "t.npz", tree)
    assert_same(tree, fio.load_tree(tmp_path / "t.npz"), same_classes=False)


@pytest.mark.parametrize("name", list(TREES))
def test_round_trip_with_like(tmp_path, name):
    tree = TREES[name]
    fio.save_tree(tmp_path / "t.npz", tree)
    assert_same(tree, fio.load_tree(tmp_path / "t.npz", like=tree))


def test_namedtuples_come_back_as_like_classes_or_as_named_records(tmp_path):
    state = train_state(history_length=3)
    fio.save_tree(tmp_path / "s.npz", state)
    typed = fio.load_tree(tmp_path / "s.npz", like=state)
    assert type(typed) is TrainState and type(typed.opt_state) is AdamState
    plain = fio.load_tree(tmp_path / "s.npz")
    assert type(plain).__name__ == "TrainState" and plain._fields == TrainState._fields
    assert plain.epoch == 3 and type(plain.epoch) is int and type(plain.history) is tuple
    assert type(fio.load_tree(tmp_path / "s.npz").opt_state) is type(plain.opt_state)


def test_like_with_a_different_history_length_loads_the_files_history(tmp_path):
    state = train_state(history_length=40)
    fio.save_tree(tmp_path / "s.npz", state)
    template = train_state(epoch=0, history_length=0)
    back = fio.load_tree(tmp_path / "s.npz", like=template)
    assert back.history == state.history and back.epoch == 3
    empty = state._replace(history=())
    fio.save_tree(tmp_path / "e.npz", empty)
    assert fio.load_tree(tmp_path / "e.npz", like=state).history == ()
    snapshots = {"snapshots": (np.ones(2), np.zeros(3))}  # an empty tuple in like takes them
    fio.save_tree(tmp_path / "a.npz", snapshots)
    assert_same(snapshots, fio.load_tree(tmp_path / "a.npz", like={"snapshots": ()}))


def test_python_numbers_live_in_the_description_not_in_entries(tmp_path):
    state = train_state(history_length=2000)
    fio.save_tree(tmp_path / "s.npz", state)
    n_arrays = sum(1 for leaf in _leaves(state) if isinstance(leaf, np.ndarray))
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert len(z.files) == n_arrays + 1  # + __structure__, which holds the history
    assert fio.load_tree(tmp_path / "s.npz", like=state).history == state.history


def _leaves(tree):
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _leaves(v)]
    if isinstance(tree, tuple | list):
        return [x for v in tree for x in _leaves(v)]
    return [tree]


def test_file_is_a_plain_npz_with_readable_entry_names(tmp_path):
    params = mlp_params(4)
    fio.save_params(tmp_path / "p.npz", params)
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:
        assert set(z.files) == {"__structure__", "params[0]['W']", "params[0]['b']",
                                "params[2]['W']", "params[2]['b']"}
        assert np.array_equal(z["params[2]['W']"], params[2]["W"])
        description = json.loads(z["__structure__"].tobytes())
    assert description["version"] == fio.FORMAT_VERSION


def test_saving_leaves_the_input_alone(tmp_path):
    W = np.arange(4.0)
    fio.save_tree(tmp_path / "a.npz", {"W": W, "h": (0.5, 0.25)})
    assert W.flags.writeable and np.array_equal(W, np.arange(4.0))


def test_path_is_used_as_given(tmp_path):
    fio.save_params(tmp_path / "model", {"W": np.ones(2)})
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert_same({"W": np.ones(2)}, fio.load_params(str(tmp_path / "model")))


def test_loading_never_unpickles(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    state = train_state(history_length=5)
    fio.save_tree(tmp_path / "s.npz", state)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert_same(state, fio.load_tree(tmp_path / "s.npz", like=state))
    assert_same(state, fio.load_tree(tmp_path / "s.npz"), same_classes=False)


@pytest.mark.parametrize(
    ("tree", "error", "match"),
    [
        ({"W": np.array([object()])}, ArrayTypeError,
         r"save_tree: tree\['W'\] is an array .*object"),
        ((np.ones(1), len), ArrayTypeError, r"save_tree: tree\[1\] is a builtin_function"),
        ({1.5: np.ones(1)}, StructureError, r"save_tree: tree has the key 1\.5 .*str and int"),
        ({"a": {True: 1}}, StructureError, r"tree\['a'\] has the key True"),
    ],
)
def test_unsaveable_trees_fail_before_touching_the_disk(tmp_path, tree, error, match):
    with pytest.raises(error, match=match):
        fio.save_tree(tmp_path / "t.npz", tree)
    assert os.listdir(tmp_path) == []


def test_save_into_a_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match=r"save_params: cannot write .*nowhere"):
        fio.save_params(tmp_path / "nowhere" / "p.npz", {"W": np.ones(1)})


# --------------------------------------------------------------------------- damaged files


def npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def rewrite(path, *, replace=None, drop=()):
    """Rewrite the zip at ``path`` with some members replaced (name -> bytes) or dropped."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members.update(replace or {})
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            if name not in drop:
                zf.writestr(name, data)


def entry(description, key):
    """The description of the saved fixture's top-level dict entry ``key``."""
    return next(value for k, value in description["tree"]["dict"] if k == key)


def edit_structure(path, edit):
    with np.load(path, allow_pickle=False) as z:
        description = json.loads(z["__structure__"].tobytes())
    text = edit(description)
    text = text if isinstance(text, bytes) else json.dumps(description).encode()
    rewrite(path, replace={"__structure__.npy": npy_bytes(np.frombuffer(text, np.uint8))})


@pytest.fixture
def saved(tmp_path):
    tree = {"W": np.arange(6.0).reshape(2, 3), "layers": ({"b": np.ones(3, np.float32)}, ()),
            "step": 4, "history": (0.5, 0.25, 0.125),
            "opt": AdamState(np.int64(1), (), {"x": None})}
    path = tmp_path / "model.npz"
    fio.save_params(path, tree)
    return path, tree


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"load_params: .*absent\.npz: no such file"):
        fio.load_params(tmp_path / "absent.npz")


def test_not_a_zip_and_a_directory(tmp_path):
    (tmp_path / "notes.npz").write_text("just text\n")
    with pytest.raises(CheckpointError, match=r"load_tree: .*notes\.npz: not a valid \.npz"):
        fio.load_tree(tmp_path / "notes.npz")
    with pytest.raises(CheckpointError, match=r"load_tree: .*: it is a directory"):
        fio.load_tree(tmp_path)


def test_every_truncation_is_a_checkpoint_error(saved):
    path, _ = saved
    data = path.read_bytes()
    tail = len(data) - 300  # the central directory: cut at every byte there, sparser before
    for length in [*range(0, tail, 5), *range(tail, len(data))]:
        path.write_bytes(data[:length])
        with pytest.raises(CheckpointError, match=r"load_params: .*model\.npz: "):
            fio.load_params(path)


def test_every_flipped_byte_is_caught_or_harmless(saved):
    path, tree = saved
    data = path.read_bytes()
    caught = 0
    for i in range(0, len(data), 4):
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
        try:
            back = fio.load_params(path, like=tree)
        except CheckpointError:
            caught += 1
        else:  # e.g. a zip timestamp: the content must still be exactly right
            assert_same(tree, back)
    assert caught > len(data) // 8


def test_plain_npz_without_structure(tmp_path):
    with open(tmp_path / "plain.npz", "wb") as f:
        np.savez(f, W=np.ones(2))
    with pytest.raises(CheckpointError, match=r"plain\.npz: it has no __structure__ entry"):
        fio.load_tree(tmp_path / "plain.npz")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: b"{not json", r"__structure__ entry is not a funcnet\.io description"),
        (lambda d: b"\xff\xfe", r"__structure__ entry is not a funcnet\.io description"),
        (lambda d: b"[1, 2]", r"__structure__ entry is not a funcnet\.io description"),
        (lambda d: d.update(version=99), r"it has format version 99; this funcnet reads version 2"),
        (lambda d: d.update(version=None), r"it has format version None"),
        (lambda d: d.update(tree={"banana": []}), r"malformed \(unknown kind 'banana'\)"),
        (lambda d: entry(d, "W").update(array="elsewhere"), r"the entry 'elsewhere' is missing"),
        (lambda d: entry(d, "opt")["namedtuple"].__setitem__(1, ["a", "a", "b"]),
         r"__structure__ entry is malformed"),
    ],
)
def test_bad_descriptions(saved, edit, match):
    path, _ = saved
    edit_structure(path, edit)
    with pytest.raises(CheckpointError, match=r"load_params: .*model\.npz: .*" + match):
        fio.load_params(path)


def test_missing_entry_in_the_zip(saved):
    path, _ = saved
    rewrite(path, drop={"params['W'].npy"})
    with pytest.raises(CheckpointError, match=r"the entry \"params\['W'\]\" is missing"):
        fio.load_params(path)


def test_entry_with_trailing_bytes(saved):
    path, tree = saved
    rewrite(path, replace={"params['W'].npy": npy_bytes(tree["W"]) + b"junk"})
    with pytest.raises(CheckpointError, match=r"the entry \"params\['W'\]\" claims shape "
                                              r"\(2, 3\) and dtype float64 \(48 bytes\) "
                                              r"but stores 52 bytes"):
        fio.load_params(path)


def huge_header(dtype="<f8", shape=(10**11,)):
    """A .npy entry whose header claims ``shape`` (745 GiB of float64) but holds 16 bytes."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(16)


def test_an_entry_claiming_a_huge_shape_is_damaged_not_a_memory_error(saved):
    path, _ = saved
    rewrite(path, replace={"params['W'].npy": huge_header()})
    with pytest.raises(CheckpointError, match=r"the entry \"params\['W'\]\" claims shape "
                                              r"\(100000000000,\) and dtype float64 "
                                              r"\(800000000000 bytes\) but stores 16 bytes"):
        fio.load_params(path)


def test_an_object_entry_is_refused_without_unpickling(saved):
    path, _ = saved
    rewrite(path, replace={"params['W'].npy": huge_header("|O", (2,))})
    with pytest.raises(CheckpointError, match=r"the entry \"params\['W'\]\" holds Python objects"):
        fio.load_params(path)


# --------------------------------------------------------------------------- like


def test_architecture_mismatch_names_path_and_both_shapes(tmp_path):
    fio.save_params(tmp_path / "model.npz", mlp_params(50))
    with pytest.raises(
        CheckpointError,
        match=r"load_params: .*model\.npz: params\[0\]\['W'\] has shape \(784, 50\), "
              r"expected \(784, 100\)",
    ):
        fio.load_params(tmp_path / "model.npz", like=mlp_params(100))


@pytest.mark.parametrize(
    ("like", "match"),
    [
        ({"W": np.zeros(2), "b": np.zeros(3), "c": np.zeros(1)},
         r"params has the keys \['W', 'b'\] in the file, expected \['W', 'b', 'c'\]"),
        ({"W": np.zeros(2)}, r"params has the keys \['W', 'b'\] in the file, expected \['W'\]"),
        ({"W": np.zeros(2, np.float32), "b": np.zeros(3)},
         r"params\['W'\] has dtype float64, expected float32"),
        ({"W": np.zeros((2, 1)), "b": np.zeros(3)},
         r"params\['W'\] has shape \(2,\), expected \(2, 1\)"),
        ({"W": np.float64(0), "b": np.zeros(3)},
         r"params\['W'\] is an array of shape \(2,\) .* expected a numpy scalar"),
        ({"W": 0.0, "b": np.zeros(3)}, r"params\['W'\] is an array .* expected a float \(0\.0\)"),
        ([np.zeros(2), np.zeros(3)], r"params is a dict with keys \['W', 'b'\] in the file, "
                                     r"expected a list of length 2"),
        ({0: np.zeros(2), "b": np.zeros(3)}, r"params has the keys \['W', 'b'\] in the file, "
                                             r"expected \[0, 'b'\]"),
    ],
)
def test_like_mismatches_name_the_path(tmp_path, like, match):
    fio.save_params(tmp_path / "p.npz", {"W": np.ones(2), "b": np.ones(3)})
    with pytest.raises(CheckpointError, match=r"load_params: .*p\.npz: " + match):
        fio.load_params(tmp_path / "p.npz", like=like)


class OtherAdam(NamedTuple):
    count: np.ndarray
    mu: object
    velocity: object


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda s: s._replace(epoch=3.0), r"tree\.epoch is an int \(3\) in the file, "
                                          r"expected a float \(3\.0\)"),
        (lambda s: s._replace(history=[0.5]), r"tree\.history is a tuple of length 4 in the file, "
                                              r"expected a list of length 1"),
        (lambda s: s._replace(opt_state=OtherAdam(*s.opt_state)),
         r"tree\.opt_state is a AdamState with fields \['count', 'mu', 'nu'\] in the file, "
         r"expected a OtherAdam with fields \['count', 'mu', 'velocity'\]"),
        (lambda s: s._replace(opt_state=tuple(s.opt_state)),
         r"tree\.opt_state is a AdamState with fields \['count', 'mu', 'nu'\] in the file, "
         r"expected a tuple of length 3"),
        (lambda s: s._replace(params=s.params[:2]), r"tree\.params is a tuple of length 3 in the "
                                                    r"file, expected a tuple of length 2"),
        (lambda s: s._replace(params=(*s.params, ())),
         r"tree\.params is a tuple of length 3 in the file, expected a tuple of length 4"),
        (lambda s: s._replace(key=None), r"tree\.key is an array .* expected None"),
    ],
)
def test_state_mismatches(tmp_path, change, match):
    state = train_state(history_length=4)
    fio.save_tree(tmp_path / "s.npz", state)
    with pytest.raises(CheckpointError, match=r"load_tree: .*s\.npz: " + match):
        fio.load_tree(tmp_path / "s.npz", like=change(state))


# --------------------------------------------------------------------------- atomic writes


def only(directory):
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("raised", [OSError(28, "No space left on device"), RuntimeError("boom"),
                                    KeyboardInterrupt()])
def test_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch, raised):
    path = tmp_path / "p.npz"
    fio.save_params(path, {"W": np.ones(3)})
    before = path.read_bytes()

    def fail(src, dst):
        assert Path(src).exists() and Path(src).name.startswith(".tmp-p.npz-")
        raise raised

    monkeypatch.setattr(os, "replace", fail)
    expected = CheckpointError if isinstance(raised, OSError) else type(raised)
    match = r"save_params: cannot write .*p\.npz: .*No space left" if expected is CheckpointError \
        else None
    with pytest.raises(expected, match=match):
        fio.save_params(path, {"W": np.zeros(3)})
    assert path.read_bytes() == before
    assert only(tmp_path) == ["p.npz"]


def test_failure_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "p.npz"
    fio.save_params(path, {"W": np.ones(3)})
    before = path.read_bytes()
    write_array = np.lib.format.write_array
    calls = []

    def write_some(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write_array(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_some)
    with pytest.raises(CheckpointError, match=r"save_params: cannot write .*No space left"):
        fio.save_params(path, {"W": np.zeros(3), "b": np.zeros(2)})
    assert path.read_bytes() == before
    assert only(tmp_path) == ["p.npz"]


def test_data_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(fd):
        events.append("fsync")
        return fsync(fd)

    def record_replace(src, dst):
        events.append("replace")
        return replace(src, dst)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "replace", record_replace)
    fio.save_params(tmp_path / "p.npz", {"W": np.ones(3)})
    assert events[:2] == ["fsync", "replace"]
    if os.name == "posix":
        assert events == ["fsync", "replace", "fsync"]


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_new_files_get_the_usual_mode_and_replaced_files_keep_theirs(tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    fio.save_params(tmp_path / "new.npz", {"W": np.ones(1)})
    assert os.stat(tmp_path / "new.npz").st_mode == os.stat(tmp_path / "plain").st_mode
    os.chmod(tmp_path / "new.npz", 0o600)
    fio.save_params(tmp_path / "new.npz", {"W": np.zeros(1)})
    assert os.stat(tmp_path / "new.npz").st_mode & 0o777 == 0o600


def kill_during_save(call):
    """Run ``call`` (code using ``io`` and ``np``) in a child that SIGKILLs itself between
    writing the temporary file and renaming it; return the child's PID."""
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from funcnet import io
        os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        {call}
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.PIPE)
    _, err = child.communicate()
    assert child.returncode == -signal.SIGKILL, err.decode()
    return child.pid


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize(
    ("killed", "next_save"),
    [("io.save_checkpoint(d, big, 2)", lambda d: fio.save_params(d / "p.npz", {"W": np.ones(1)})),
     ("io.save_params(d + '/p.npz', big)", lambda d: fio.save_checkpoint(d, {"W": np.ones(3)}, 3))],
    ids=["killed-save_checkpoint", "killed-save_params"],
)
def test_a_killed_saves_temporary_is_removed_by_the_next_save(tmp_path, killed, next_save):
    state = {"W": np.ones(3)}
    fio.save_checkpoint(tmp_path, state, 1)
    pid = kill_during_save(f"d = {str(tmp_path)!r}; big = {{'W': np.zeros(2**17)}}; {killed}")
    (leftover,) = [n for n in only(tmp_path) if n.startswith(".tmp-")]
    assert f"-{pid}-" in leftover  # the dead writer is named in its temporary file ...
    assert os.path.getsize(tmp_path / leftover) > 2**20  # ... written in full, never renamed
    assert [e for e, _ in fio.list_checkpoints(tmp_path)] == [1]  # nobody reads it
    back, epoch, _ = fio.load_latest_checkpoint(tmp_path, like=state)
    assert epoch == 1 and np.array_equal(back["W"], np.ones(3))

    next_save(tmp_path)
    assert not [n for n in only(tmp_path) if n.startswith(".tmp-")]


@pytest.mark.parametrize(
    "save",
    [lambda d: fio.save_checkpoint(d, {"W": np.ones(1)}, 5),
     lambda d: fio.save_params(d / "q.npz", {"W": np.ones(1)}),
     lambda d: fio.save_tree(d / "q.npz", {"W": np.ones(1)}),
     lambda d: atomic_write(d / "figure.png", lambda f: f.write(b"png"))],
    ids=["save_checkpoint", "save_params", "save_tree", "atomic_write"],
)
def test_only_temporaries_of_gone_processes_are_removed(tmp_path, monkeypatch, save):
    kill = os.kill

    def fake_kill(pid, sig):  # 4242 runs under another user; 4243 has ended
        assert sig == 0
        if pid == 4242:
            raise PermissionError(1, "Operation not permitted")
        if pid == 4243:
            raise ProcessLookupError(3, "No such process")
        return kill(pid, sig)

    monkeypatch.setattr(os, "kill", fake_kill)
    kept = [f".tmp-ckpt-00000004.npz-{os.getpid()}-0123456789ab",  # this process, writing
            ".tmp-p.npz-4242-0123456789ab",  # alive under another user
            ".tmp-ckpt-00000004.npz-0123456789ab",  # no PID: not ours to judge
            ".tmp-notes.txt-abc123", ".tmp-metrics-x1y2z3ab", "notes-4243-0123456789ab"]
    gone = [".tmp-p.npz-4243-0123456789ab", ".tmp-ckpt-00000002.npz-4243-fedcba987654"]
    for name in kept + gone:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".tmp-dir-4243-0123456789ab").mkdir()  # a directory is not ours either
    save(tmp_path)
    leftovers = {n for n in only(tmp_path) if "-4243-" in n or n.startswith((".tmp-", "notes"))}
    assert leftovers == {*kept, ".tmp-dir-4243-0123456789ab"}


# --------------------------------------------------------------------------- checkpoints


def test_checkpoints_are_listed_oldest_first_and_others_ignored(tmp_path):
    directory = tmp_path / "runs" / "a"
    paths = [fio.save_checkpoint(directory, {"e": np.array(e)}, e) for e in (3, 1, 2)]
    assert Path(paths[0]) == directory / "ckpt-00000003.npz"
    for name in [".tmp-ckpt-00000009.npz-x", "ckpt-4.npz", "ckpt-00000005.npz.bak", "notes.txt"]:
        (directory / name).write_bytes(b"")
    (directory / "ckpt-00000006.npz").mkdir()
    listed = fio.list_checkpoints(directory)
    assert listed == [(e, os.path.join(directory, f"ckpt-{e:08d}.npz")) for e in (1, 2, 3)]
    assert fio.list_checkpoints(tmp_path / "never") == []


def test_keep_prunes_the_oldest_but_never_the_new_one(tmp_path):
    for e in (1, 2, 3):
        fio.save_checkpoint(tmp_path, {"e": e}, e, keep=2)
    assert [e for e, _ in fio.list_checkpoints(tmp_path)] == [2, 3]
    fio.save_checkpoint(tmp_path, {"e": 1}, 1, keep=1)
    assert [e for e, _ in fio.list_checkpoints(tmp_path)] == [1]


@pytest.mark.parametrize(
    ("epoch", "keep", "match"),
    [(-1, None, r"epoch must be a non-negative integer, got -1"),
     (True, None, r"epoch must be .*got True"), (1.5, None, r"epoch .*got 1\.5"),
     (1, 0, r"keep must be a positive integer, got 0")],
)
def test_bad_checkpoint_arguments(tmp_path, epoch, keep, match):
    with pytest.raises(ArgumentError, match=r"save_checkpoint: " + match):
        fio.save_checkpoint(tmp_path, {}, epoch, keep=keep)


def test_latest_checkpoint_falls_back_past_a_corrupt_one(tmp_path):
    states = {e: train_state(epoch=e, history_length=e) for e in (1, 2, 3)}
    paths = {e: fio.save_checkpoint(tmp_path, s, e) for e, s in states.items()}
    assert fio.load_latest_checkpoint(tmp_path, like=states[1])[1] == 3
    data = Path(paths[3]).read_bytes()
    Path(paths[3]).write_bytes(data[: len(data) // 2])
    with pytest.warns(fio.CheckpointWarning,
                      match=r"skipped .*ckpt-00000003\.npz: not a valid \.npz.*truncated"):
        state, epoch, path = fio.load_latest_checkpoint(tmp_path, like=states[1])
    assert epoch == 2 and path == paths[2]
    assert_same(states[2], state)


def test_latest_checkpoint_falls_back_past_an_entry_claiming_a_huge_shape(tmp_path):
    states = {e: train_state(hidden=5, epoch=e, history_length=e) for e in (1, 2)}
    paths = {e: fio.save_checkpoint(tmp_path, s, e) for e, s in states.items()}
    rewrite(paths[2], replace={"state.params[0]['W'].npy": huge_header()})
    with pytest.warns(fio.CheckpointWarning,
                      match=r"skipped .*ckpt-00000002\.npz: the entry .* claims shape "
                            r"\(100000000000,\).*loaded .*ckpt-00000001\.npz instead"):
        state, epoch, _ = fio.load_latest_checkpoint(tmp_path)
    assert epoch == 1
    assert_same(states[1], state, same_classes=False)


def test_no_readable_checkpoint_lists_every_file(tmp_path):
    for e in (1, 2):
        path = fio.save_checkpoint(tmp_path, {"W": np.ones(2)}, e)
        Path(path).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"load_latest_checkpoint: no checkpoint in .* "
                                              r"can be read: .*ckpt-00000002\.npz: not a valid.*"
                                              r"ckpt-00000001\.npz: not a valid"):
        fio.load_latest_checkpoint(tmp_path)


def test_empty_directory_has_no_latest_checkpoint(tmp_path):
    assert fio.load_latest_checkpoint(tmp_path) is None
    assert fio.load_latest_checkpoint(tmp_path / "missing") is None


def test_latest_checkpoint_of_another_architecture_is_an_error_not_a_fallback(tmp_path):
    fio.save_checkpoint(tmp_path, train_state(hidden=100), 1)
    fio.save_checkpoint(tmp_path, train_state(hidden=50), 2)
    with pytest.raises(CheckpointError, match=r"load_latest_checkpoint: .*ckpt-00000002\.npz: "
                                              r"state\.params\[0\]\['W'\] has shape \(784, 50\), "
                                              r"expected \(784, 100\)"):
        fio.load_latest_checkpoint(tmp_path, like=train_state(hidden=100))


def test_listing_a_file_is_an_error(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"list_checkpoints: cannot list .*f"):
        fio.list_checkpoints(tmp_path / "f")
