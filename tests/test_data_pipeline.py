"""Frame sampling, the clip dataset and the synthetic generator (through the real loader)."""
import hashlib
import re

import pytest

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


@pytest.mark.parametrize("key,T,stride,first", [(3, 16, 5, 1), (1, 8, 12, 1), (0, 8, 12, 0), (10, 4, 20, 1)])
def test_sample_indices_never_leave_the_frames_that_exist(key, T, stride, first):
    """A window cut at the movie's first frame: a clear error when the clip cannot fit, never an index
    before the first frame or past the window (sample_indices(3, 16, 5, 90) once gave -28..47)."""
    lo, hi = max(first, key - 45), key + 44
    if (T - 1) * stride + 1 > hi - lo + 1:
        with pytest.raises(ValueError, match=r"lower data.frame_stride") as e:
            sample_indices(key, T, stride, 90, first_index=first)
        assert f"key frame {key}" in str(e.value)
    else:
        idx = sample_indices(key, T, stride, 90, first_index=first)
        assert lo <= min(idx) and max(idx) <= hi and len(set(idx)) == T
        assert all(b - a == stride for a, b in zip(idx, idx[1:]))


def test_sample_indices_cut_window_fits_or_raises_exhaustively():
    for key in range(1, 60):
        for stride in (1, 3, 5, 8, 12):
            lo, hi = max(1, key - 45), key + 44
            try:
                idx = sample_indices(key, 8, stride, 90)
            except ValueError:
                assert 7 * stride + 1 > hi - lo + 1, (key, stride)
                continue
            assert lo <= idx[0] and idx[-1] <= hi and len(set(idx)) == 8, (key, stride, idx)


def test_layout_matches_ava_convention():
    lay = FrameLayout()
    assert lay.key_index(902) == 61 and lay.key_index(900) == 1
    assert str(lay.path(__import__("pathlib").Path("F"), "abc", 61)) == "F/abc/image_000061.jpg"


def _coded_frames(root, video_id, keys):
    """Solid 32x32 JPEGs whose colour encodes the frame index, for every frame of each key's window."""
    from PIL import Image

    d = root / "frames" / video_id
    d.mkdir(parents=True, exist_ok=True)
    for key in keys:
        for i in range(max(1, key - 45), key + 45):
            Image.new("RGB", (32, 32), (i % 256,) * 3).save(d / f"image_{i:06d}.jpg", quality=95)


def _frame_index(frame):
    """The index a decoded coded frame was written for (grey: JPEG keeps a flat luma block exact)."""
    return round(frame[0].float().mean().item())


def test_clip_frames_are_the_sampled_distinct_frames(tmp_path):
    from ravar_bench.data.refava import Instance

    # AVA layout: second t has key frame (t - 900) * 30 + 1; 902 -> 61 (whole window there), 900 -> 1 (cut)
    _coded_frames(tmp_path, "vid", [61, 1, 121])
    insts = [Instance(f"vid___{t}___1", "vid", t, "1", (0.1, 0.1, 0.5, 0.5), (12,), "a man") for t in (902, 904, 900)]
    ds = ClipDataset(insts, tmp_path, dict(DATA, img_size=32), needs={"video", "keyframe"})
    for inst, item in zip(insts, (ds[0], ds[1], ds[2])):
        key = (inst.timestamp - 900) * 30 + 1
        # written out, not from sample_indices: 8 frames 4 apart, the key frame 5th; shifted right at the start
        want = [key + 4 * (k - 4) for k in range(8)] if key > 20 else [1 + 4 * k for k in range(8)]
        got = [_frame_index(f) for f in item["video"]]
        assert got == want, (inst.timestamp, got, want)
        assert _frame_index(item["keyframe"]) == key
        if key > 20:
            assert got[4] == key  # the centre clip frame is the key frame
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
    bad.write_bytes(b"\xff\xd8 garbage")  # truncated (no end-of-image marker): found before any decode
    with pytest.raises(RuntimeError, match=re.escape(str(bad)) + ".*" + re.escape(other.key)):
        ClipDataset([other], root, DATA, needs={"keyframe"})
    # both markers, undecodable inside: met at decode time, naming the file and the instance, or skipped on request
    bad.write_bytes(b"\xff\xd8" + b"\x00garbage" * 20 + b"\xff\xd9")
    ds2 = ClipDataset([other], root, DATA, needs={"keyframe"})
    with pytest.raises(RuntimeError, match=re.escape(str(bad)) + ".*" + re.escape(other.key)):
        ds2[0]
    ds3 = ClipDataset([other], root, DATA, needs={"keyframe"}, skip_missing_frames=True)
    assert ds3.collate([ds3[0]]) == {"key": [], "_skipped": [(other.key, ds3[0]["_bad"])]}


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
