"""The RefAVA loader on real-format fixtures written here."""
import os
import pickle
import re

import numpy as np
import pytest

from ravar_bench.data.refava import AnnotationError, annotation_path, load_split
from ravar_bench.data.safe_pickle import UnsafePickleError


def _write(root, split, kind, d):
    p = annotation_path(root, split, kind)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(pickle.dumps(d))
    return p


def _fixture(root, split="train", n=5, order=(1, 1, 1)):
    keys = [f"vid{k}-x_y___{902 + k}___{k % 2}" for k in range(n)]
    kf = {k: [[0.1, 0.2, 0.5, 0.9]] for k in keys}
    lab = {k: [12, 80] for k in keys}
    desc = {k: [f"the person number {i}"] for i, k in enumerate(keys)}
    # different key orders in the three files: a zip-by-order loader would mismatch them
    kf = dict(sorted(kf.items())[:: order[0]])
    lab = dict(sorted(lab.items())[:: order[1]])
    desc = dict(sorted(desc.items())[:: order[2]])
    _write(root, split, "keyframe", kf)
    _write(root, split, "label", lab)
    _write(root, split, "description", desc)
    return keys


@pytest.mark.parametrize("orders", [(1, -1, 1), (-1, 1, 3), (3, -1, -3)])
def test_join_by_key_not_by_order(tmp_path, orders):
    """Each key has its own box, actions and text, and the three files list the keys in different orders
    (1: sorted, -1: reversed, +-3: rotated by 3): only a join by key gives every instance its own row."""
    keys = [f"vid{k}-x_y___{902 + k}___{k % 2}" for k in range(7)]
    box = {k: [0.05 * i, 0.1, 0.5 + 0.05 * i, 0.9] for i, k in enumerate(keys)}
    acts = {k: [i + 1, 80 - i] for i, k in enumerate(keys)}
    text = {k: f"text for {k}" for k in keys}

    def ordered(d, o):
        items = sorted(d.items())
        items = items[::o] if abs(o) == 1 else items[abs(o):] + items[:abs(o)]
        return dict(items[::-1] if o < -1 else items)

    _write(tmp_path, "train", "keyframe", ordered({k: [v] for k, v in box.items()}, orders[0]))
    _write(tmp_path, "train", "label", ordered(acts, orders[1]))
    _write(tmp_path, "train", "description", ordered({k: [v] for k, v in text.items()}, orders[2]))
    inst, rep = load_split(tmp_path, "train")
    assert [i.key for i in inst] == sorted(keys) and rep.loaded == 7
    for i in inst:
        assert i.box == pytest.approx(tuple(box[i.key])), i.key
        assert i.actions == tuple(sorted(acts[i.key])), i.key
        assert i.text == text[i.key]
        assert i.video_id == i.key.split("___")[0] and i.timestamp == int(i.key.split("___")[1])


def test_missing_key_reported(tmp_path):
    keys = _fixture(tmp_path)
    lab = {k: [12] for k in keys[1:]}
    p = _write(tmp_path, "train", "label", lab)
    # one policy for every bad row: an error naming file and key by default, a counted skip on request
    with pytest.raises(AnnotationError, match=re.escape(f"{p}: key {keys[0]!r} is missing")):
        load_split(tmp_path, "train")
    inst, rep = load_split(tmp_path, "train", skip_invalid=True)
    assert len(inst) == 4 and rep.skipped == [(keys[0], f"{p}: key {keys[0]!r} is missing")]
    assert rep.missing["label"] == [keys[0]] and rep.missing["keyframe"] == []
    assert "1 keys missing from the label file" in rep.summary()


@pytest.mark.parametrize("box,msg", [([0.1, 0.2, 1.3, 0.9], r"\[0, 1\]"), ([0.5, 0.2, 0.4, 0.9], "x1 < x2"),
                                      ([0.1, 0.2, 0.5], "4 values"), ([0.1, float("nan"), 0.5, 0.9], "non-finite")])
def test_bad_box_names_file_key_field(tmp_path, box, msg):
    keys = _fixture(tmp_path)
    kf = {k: [[0.1, 0.2, 0.5, 0.9]] for k in keys}
    kf[keys[2]] = [box]
    p = _write(tmp_path, "train", "keyframe", kf)
    with pytest.raises(AnnotationError, match=msg) as e:
        load_split(tmp_path, "train")
    assert str(p) in str(e.value) and keys[2] in str(e.value) and "'box'" in str(e.value)
    inst, rep = load_split(tmp_path, "train", skip_invalid=True)
    assert len(inst) == 4 and len(rep.skipped) == 1 and rep.skipped[0][0] == keys[2]


@pytest.mark.parametrize("acts,msg", [([0], "unknown AVA action id 0"), ([81], "unknown AVA action id 81"),
                                       ([], "empty"), (["stand"], "not an integer")])
def test_bad_action_ids(tmp_path, acts, msg):
    keys = _fixture(tmp_path)
    lab = {k: [12] for k in keys}
    lab[keys[1]] = acts
    _write(tmp_path, "train", "label", lab)
    with pytest.raises(AnnotationError, match=msg) as e:
        load_split(tmp_path, "train")
    assert "label_crr_final.pkl" in str(e.value) and "'actions'" in str(e.value)


def test_empty_text(tmp_path):
    keys = _fixture(tmp_path)
    desc = {k: ["a man"] for k in keys}
    desc[keys[0]] = ["   "]
    _write(tmp_path, "train", "description", desc)
    with pytest.raises(AnnotationError, match="'text' is empty"):
        load_split(tmp_path, "train")


def test_numpy_arrays_allowed(tmp_path):
    keys = _fixture(tmp_path)
    _write(tmp_path, "train", "keyframe", {k: np.array([[0.1, 0.2, 0.5, 0.9]], dtype=np.float32) for k in keys})
    _write(tmp_path, "train", "label", {k: np.array([12, 14]) for k in keys})
    inst, _ = load_split(tmp_path, "train")
    assert inst[0].actions == (12, 14) and inst[0].box == pytest.approx((0.1, 0.2, 0.5, 0.9), abs=1e-6)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch " + str(_Evil.marker),))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("open(%r, 'w').close()" % str(_Evil.marker),))


def _raw(marker):
    """Hand-written protocol-0 pickles (pickle.dumps cannot reach these globals through a class)."""
    m = str(marker).encode()
    return {
        "builtins.eval": b"cbuiltins\neval\n(S'open(\"" + m + b"\", \"w\").close()'\ntR.",
        "builtins.getattr": b"cbuiltins\ngetattr\n(cbuiltins\ndict\nS'fromkeys'\ntR(S'ab'\ntR.",
        "builtins.__import__": b"cbuiltins\n__import__\n(S'os'\ntR.",
        "numpy.load": b"cnumpy\nload\n(S'" + m + b"'\ntR.",
        "numpy.fromfile": b"cnumpy\nfromfile\n(S'" + m + b"'\ntR.",
        "numpy.testing.assert_": b"cnumpy.testing\nassert_\n(I01\ntR.",
        "posix.system": pickle.dumps({"a___902___1": _Evil()}, protocol=0),
        "builtins.eval (protocol 4)": pickle.dumps({"a___902___1": _EvalEvil()}, protocol=4),
    }


@pytest.mark.parametrize("kind", ["keyframe", "label", "description"])
@pytest.mark.parametrize("attack", ["builtins.eval", "builtins.getattr", "builtins.__import__", "numpy.load",
                                    "numpy.fromfile", "numpy.testing.assert_", "posix.system",
                                    "builtins.eval (protocol 4)"])
def test_tampered_pickle_refused(tmp_path, kind, attack):
    _fixture(tmp_path)
    _Evil.marker = tmp_path / "pwned"
    p = annotation_path(tmp_path, "train", kind)
    p.write_bytes(_raw(_Evil.marker)[attack])
    with pytest.raises(UnsafePickleError, match="refusing to unpickle") as e:
        load_split(tmp_path, "train")
    # the message names the file and the global it refused
    name = attack.split(" ")[0]
    if name == "posix.system":
        name = f"{os.system.__module__}.system"
    assert str(p) in str(e.value) and name in str(e.value)
    assert not _Evil.marker.exists()


def test_numpy_scalars_and_dtypes_still_load(tmp_path):
    keys = _fixture(tmp_path)
    _write(tmp_path, "train", "label", {k: [np.int64(12), np.int32(80)] for k in keys})
    _write(tmp_path, "train", "keyframe", {k: np.array([[0.1, 0.2, 0.5, 0.9]], dtype=np.float64) for k in keys})
    inst, _ = load_split(tmp_path, "train")
    assert inst[0].actions == (12, 80)


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="keyframe_crr_final.pkl"):
        load_split(tmp_path, "val")
    _fixture(tmp_path)
    annotation_path(tmp_path, "train", "label").write_bytes(b"not a pickle at all")
    with pytest.raises(pickle.UnpicklingError, match="label_crr_final.pkl"):
        load_split(tmp_path, "train")
