"""Decode AVA movies into the frame layout the loader reads, writing only the frames the annotations need.

    OUT/frames/<video_id>/image_%06d.jpg      index = (t - 900) * 30 + 1 for movie second t (FrameLayout)
    OUT/frames/<video_id>/.done.json          written LAST: {"frames": N, "indices": [...], ...}

Resumable: a video with a done-marker whose frames all exist is skipped; otherwise only its missing
frames are decoded (each JPEG goes to a temporary name, then os.replace, so no half-written frame is
ever taken for a finished one; stale temporaries are removed). ``time_offset``: the movie second at
which the file's own timeline starts (0 for AVA movies, whose timestamps are movie seconds; e.g. 900
for a piece cut at second 900).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..data.frames import ClipWindowError, FrameLayout, sample_indices
from ..data.refava import SPLITS, annotation_path, jsonl_path, load_split
from ..files.atomic import atomic_write, write_text_atomic
from .video import VideoUnreadable, find_video, frames_at_times

log = logging.getLogger(__name__)
DONE = ".done.json"


@dataclasses.dataclass
class PrepareSummary:
    done: list = dataclasses.field(default_factory=list)       # video ids decoded in this run
    skipped: list = dataclasses.field(default_factory=list)    # video ids already finished
    missing: list = dataclasses.field(default_factory=list)    # video ids with no movie file
    unreadable: dict = dataclasses.field(default_factory=dict)  # video id -> reason
    frames_written: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unreadable

    def text(self) -> str:
        lines = [f"videos decoded: {len(self.done)}, already finished: {len(self.skipped)}, "
                 f"frames written: {self.frames_written}"]
        if self.missing:
            lines.append(f"MISSING movie files ({len(self.missing)}): " + ", ".join(self.missing))
        for v, why in self.unreadable.items():
            lines.append(f"UNREADABLE {v}: {why}")
        return "\n".join(lines)


def splits_present(root: str | Path) -> list[str]:
    return [s for s in SPLITS if annotation_path(root, s, "keyframe").is_file() or jsonl_path(root, s).is_file()]


def needed_frames(instances, layout: FrameLayout, num_frames: int, strides, full_window: bool = False) -> dict:
    """video_id -> sorted frame indices: the key frame and the sampled clip of every stride (or the whole window)."""
    out: dict[str, set] = {}
    for inst in instances:
        key = layout.key_index(inst.timestamp)
        try:
            if key < layout.index_offset:
                raise ClipWindowError(f"key frame {key} lies before the movie's first frame {layout.index_offset}",
                                      layout.index_offset, key, 1)
            want = {key}
            if full_window:
                lo = max(layout.index_offset, key - layout.window // 2)
                want.update(range(lo, key + (layout.window - layout.window // 2)))
            else:
                for st in strides:
                    want.update(sample_indices(key, num_frames, st, layout.window, first_index=layout.index_offset))
        except ClipWindowError as e:
            # as the loader's other invalid rows here (load_split(skip_invalid=True)): named and left out; the
            # benchmark then stops on it, or skips and counts it with --skip-invalid
            log.warning("key %r: field 'timestamp' %s puts its clip before the movie's start (second %s): %s; "
                        "no frames extracted for it", inst.key, inst.timestamp, layout.start_second, e)
            continue
        out.setdefault(inst.video_id, set()).update(want)
    return {v: sorted(s) for v, s in out.items()}


def index_time(layout: FrameLayout, index: int, time_offset: float = 0.0) -> float:
    """Seconds on the file's own timeline of frame ``index`` of the layout's 30 fps timeline."""
    return layout.start_second + (index - layout.index_offset) / layout.fps - time_offset


def _marker_ok(vdir: Path, layout: FrameLayout, indices: list[int]) -> bool:
    m = vdir / DONE
    if not m.is_file():
        return False
    try:
        info = json.loads(m.read_text())
    except ValueError:
        return False
    have = set(info.get("indices", []))
    if info.get("frames") != len(have) or not set(indices) <= have:
        return False
    # verify the counts: every frame the marker lists is on disk
    return all(layout.path(vdir.parent, vdir.name, i).is_file() for i in have)


def prepare_video(video_path: str | Path, frames_dir: str | Path, video_id: str, indices: list[int],
                  layout: FrameLayout = FrameLayout(), time_offset: float = 0.0, quality: int = 90,
                  short_side: int = 0) -> dict:
    """Write the frames ``indices`` of one movie; returns {"video_id", "written", "skipped": bool}."""
    vdir = Path(frames_dir) / video_id
    if _marker_ok(vdir, layout, indices):
        return {"video_id": video_id, "written": 0, "skipped": True}
    vdir.mkdir(parents=True, exist_ok=True)
    for tmp in vdir.glob("*.tmp*"):  # leftovers of an interrupted run
        tmp.unlink()
    (vdir / DONE).unlink(missing_ok=True)
    todo = {round(index_time(layout, i, time_offset), 6): i for i in indices
            if not layout.path(Path(frames_dir), video_id, i).is_file()}
    written, absent = 0, []
    for t, img in frames_at_times(video_path, list(todo)):
        i = todo[round(t, 6)]
        if img is None:
            absent.append(i)
            continue
        if short_side and min(img.size) != short_side:
            w, h = img.size
            r = short_side / min(w, h)
            img = img.resize((max(1, round(w * r)), max(1, round(h * r))))
        dst = layout.path(Path(frames_dir), video_id, i)
        rgb = img.convert("RGB")
        atomic_write(dst, lambda tmp: rgb.save(tmp, format="JPEG", quality=quality))
        written += 1
    if absent:
        raise VideoUnreadable(f"{video_path}: {len(absent)} needed frames lie outside the video (first index "
                              f"{absent[0]} = {index_time(layout, absent[0], time_offset):.2f} s on its timeline; "
                              f"is --time-offset right?)")
    done = sorted(i for i in indices if layout.path(Path(frames_dir), video_id, i).is_file())
    marker = {"video_id": video_id, "frames": len(done), "indices": done, "source": str(video_path),
              "time_offset": time_offset, "fps": layout.fps}
    write_text_atomic(vdir / DONE, json.dumps(marker))  # written last: its presence means the video is finished
    return {"video_id": video_id, "written": written, "skipped": False}


def prepare_refava(videos_dir: str | Path, annotations_root: str | Path, out: str | Path, workers: int = 1,
                   num_frames: int = 8, strides=(8,), window: int = 90, time_offset: float = 0.0,
                   full_window: bool = False, quality: int = 90, short_side: int = 0, progress: bool = True,
                   splits=None) -> PrepareSummary:
    """Frames for every annotated instance of ``splits`` (default: all present) under OUT/frames/."""
    from tqdm import tqdm

    layout = FrameLayout(window=window)
    splits = splits or splits_present(annotations_root)
    if not splits:
        raise FileNotFoundError(f"no RefAVA annotations under {annotations_root}/annotations "
                                f"(expected {{split}}_set_*_crr_final.pkl or {{split}}.jsonl)")
    instances = []
    for s in splits:
        inst, rep = load_split(annotations_root, s, skip_invalid=True)
        log.info(rep.summary())
        instances += inst
    plan = needed_frames(instances, layout, num_frames, strides, full_window)
    frames_dir = Path(out) / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    summary = PrepareSummary()
    jobs = {}
    for vid, idx in sorted(plan.items()):
        src = find_video(videos_dir, vid)
        if src is None:
            summary.missing.append(vid)
        else:
            jobs[vid] = (src, idx)
    args = dict(layout=layout, time_offset=time_offset, quality=quality, short_side=short_side)

    def _record(vid, res=None, err=None):
        if err is not None:
            summary.unreadable[vid] = str(err)
        elif res["skipped"]:
            summary.skipped.append(vid)
        else:
            summary.done.append(vid)
            summary.frames_written += res["written"]

    bar = tqdm(total=len(jobs), desc="videos", unit="video", disable=not progress)
    if workers <= 1:
        for vid, (src, idx) in jobs.items():
            try:
                _record(vid, prepare_video(src, frames_dir, vid, idx, **args))
            except Exception as e:  # one bad movie must not stop the others
                _record(vid, err=f"{type(e).__name__}: {e}")
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {ex.submit(prepare_video, src, frames_dir, vid, idx, **args): vid for vid, (src, idx) in jobs.items()}
            for fut in as_completed(futs):
                try:
                    _record(futs[fut], fut.result())
                except Exception as e:
                    _record(futs[fut], err=f"{type(e).__name__}: {e}")
                bar.update()
    bar.close()
    return summary
