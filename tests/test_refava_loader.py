"""The RefAVA loader on real-format fixtures written here."""
import os
import pickle

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


def test_join_by_key_not_by_order(tmp_path):
    keys = _fixture(tmp_path, order=(1, -1, 1))
    _write(tmp_path, "train", "description", {k: [f"text for {k}"] for k in reversed(keys)})
    inst, rep = load_split(tmp_path, "train")
    assert len(inst) == 5 and rep.loaded == 5
    for i in inst:
        assert i.text == f"text for {i.key}"
        assert i.video_id.startswith("vid") and i.timestamp >= 902 and i.actions == (12, 80)


def test_missing_key_reported(tmp_path):
    keys = _fixture(tmp_path)
    lab = {k: [12] for k in keys[1:]}
    _write(tmp_path, "train", "label", lab)
    inst, rep = load_split(tmp_path, "train")
    assert len(inst) == 4
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


def test_malicious_pickle_refused(tmp_path):
    _fixture(tmp_path)
    _Evil.marker = tmp_path / "pwned"
    p = annotation_path(tmp_path, "train", "label")
    p.write_bytes(pickle.dumps({"a___902___1": _Evil()}))
    with pytest.raises(UnsafePickleError, match="refusing to unpickle") as e:
        load_split(tmp_path, "train")
    assert str(p) in str(e.value)
    assert not _Evil.marker.exists()


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="keyframe_crr_final.pkl"):
        load_split(tmp_path, "val")
    _fixture(tmp_path)
    annotation_path(tmp_path, "train", "label").write_bytes(b"not a pickle at all")
    with pytest.raises(pickle.UnpicklingError, match="label_crr_final.pkl"):
        load_split(tmp_path, "train")
