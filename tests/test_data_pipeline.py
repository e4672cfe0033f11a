"""Frame sampling, the clip dataset and the synthetic generator (through the real loader)."""
import hashlib
import re

import pytest
import torch

from ravar_bench.data.dataset import ClipDataset
from ravar_bench.data.frames import FrameLayout, sample_indices
from ravar_bench.data.refava import load_split
from ravar_bench.data.synthetic import SynthConfig, generate

DATA = dict(num_frames=8, frame_stride=4, img_size=32, keyframe_size=48, num_dets=6, mean=(0.5,) * 3, std=(0.25,) * 3)


def test_sample_indices_distinct_and_centred():
    idx = sample_indices(1000, 8, 4, 90)
    assert len(set(idx)) == 8 and idx[4] == 1000 and all(b - a == 4 for a, b in zip(idx, idx[1:]))
    # at the movie's first frames the clip shifts inside the window instead of repeating a frame
    idx = sample_indices(3, 8, 4, 90, first_index=1)
    assert idx[0] == 1 and len(set(idx)) == 8
    with pytest.raises(ValueError, match="window"):
        sample_indices(1000, 16, 8, 90)


def test_layout_matches_ava_convention():
    lay = FrameLayout()
    assert lay.key_index(902) == 61 and lay.key_index(900) == 1
    assert str(lay.path(__import__("pathlib").Path("F"), "abc", 61)) == "F/abc/image_000061.jpg"


def test_clip_frames_are_distinct_pixels(tiny_synth_root):
    inst, _ = load_split(tiny_synth_root, "train")
    ds = ClipDataset(inst, tiny_synth_root, DATA, needs={"video", "keyframe"})
    moving = 0
    for i in range(len(ds)):
        clip = ds[i]["video"]
        assert clip.shape == (8, 3, 32, 32) and clip.dtype == torch.uint8
        diffs = [(clip[k].float() - clip[k + 1].float()).abs().mean().item() for k in range(7)]
        moving += all(d > 0 for d in diffs)
    # the authors' loader returns one frame 8 times (all diffs 0); ours reads 8 different frames
    assert moving >= len(ds) // 2
    b = ds.collate([ds[0], ds[1]])
    assert b["video"].shape == (2, 8, 3, 32, 32) and b["keyframe"].shape == (2, 3, 48, 48)
    assert b["labels"].shape == (2, 80) and b["box"].shape == (2, 4)


def test_only_needed_keys_are_loaded(tiny_synth_root):
    inst, _ = load_split(tiny_synth_root, "val")
    ds = ClipDataset(inst, tiny_synth_root, DATA, needs={"text_emb"})
    item = ds[0]
    assert "video" not in item and "keyframe" not in item and item["text"]


def test_missing_frame_error_or_counted_skip(tmp_path):
    root = generate(tmp_path / "d", SynthConfig(seed=3, train_movies=1, val_movies=1, test_movies=1,
                                                 clips_per_movie=2), progress=False)
    inst, _ = load_split(root, "val")
    lay = FrameLayout()
    victim = inst[0]
    path = lay.path(root / "frames", victim.video_id, lay.key_index(victim.timestamp))
    path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        ClipDataset(inst, root, DATA, needs={"video"})
    ds = ClipDataset(inst, root, DATA, needs={"video"}, skip_missing_frames=True)
    same_clip = [i for i in inst if i.clip_key == victim.clip_key]
    assert len(ds.skipped) == len(same_clip) and len(ds) == len(inst) - len(same_clip)
    # a corrupt JPEG names its path too
    other = [i for i in inst if i.clip_key != victim.clip_key][0]
    bad = lay.path(root / "frames", other.video_id, lay.key_index(other.timestamp))
    bad.write_bytes(b"\xff\xd8 garbage")
    ds2 = ClipDataset([other], root, DATA, needs={"keyframe"})
    with pytest.raises(RuntimeError, match=re.escape(str(bad))):
        ds2[0]


def _tree_digest(root):
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "meta.json":
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_synthetic_deterministic_and_seeded(tmp_path):
    cfg = SynthConfig(seed=5, train_movies=1, val_movies=1, test_movies=1, clips_per_movie=2)
    a = generate(tmp_path / "a", cfg, progress=False)
    b = generate(tmp_path / "b", cfg, progress=False)
    c = generate(tmp_path / "c", SynthConfig(seed=6, train_movies=1, val_movies=1, test_movies=1, clips_per_movie=2),
                 progress=False)
    assert _tree_digest(a) == _tree_digest(b)
    assert _tree_digest(a) != _tree_digest(c)


def test_synthetic_content_rules(tiny_synth_root):
    from ravar_bench.data.ava import ava_classes
    from ravar_bench.data.detections import read_detections

    splits = {s: load_split(tiny_synth_root, s)[0] for s in ("train", "val", "test")}
    vids = {s: {i.video_id for i in v} for s, v in splits.items()}
    assert not (vids["train"] & vids["val"]) and not (vids["train"] & vids["test"]) and not (vids["val"] & vids["test"])
    action_words = {"walk", "run", "sit", "stand", "jump", "drink", "phone", "wave", "hug", "fight", "talk", "lie",
                    "bend", "crouch", "fall", "carry", "shake", "watch", "listen"}
    per_clip = {}
    for inst in sum(splits.values(), []):
        words = set(re.findall(r"[a-z]+", inst.text.lower()))
        assert not words & action_words, inst.text
        assert 1 <= len(inst.actions) <= 3
        per_clip.setdefault(inst.clip_key, []).append(inst)
    assert all(1 <= len(v) <= 5 for v in per_clip.values())
    texts = [[i.text for i in v] for v in per_clip.values()]
    assert all(len(set(t)) == len(t) for t in texts)  # references differ within a clip
    dets = read_detections(tiny_synth_root, "train")
    assert set(dets) == {i.key for i in splits["train"]}
    names = {r[5] for rows in dets.values() for r in rows}
    assert "person" in names
    valid = {c["id"] for c in ava_classes()}
    assert all(a in valid for i in splits["train"] for a in i.actions)


def test_missing_detections_cache_names_the_tool(tmp_path):
    from ravar_bench.data.detections import DetectionsMissing, read_detections

    with pytest.raises(DetectionsMissing, match="tools/precompute_detections.py"):
        read_detections(tmp_path, "val")
    (tmp_path / "detections").mkdir()
    (tmp_path / "detections" / "val_detections.json").write_text(
        '{"format": "ravar-detections-v1", "detections": {"k": [[0.1, 0.1, 1.4, 0.5, 0.9, "person"]]}}')
    with pytest.raises(ValueError, match="outside"):
        read_detections(tmp_path, "val")
