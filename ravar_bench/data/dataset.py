"""ClipDataset: instances -> samples holding only what a method needs, and the batch collate."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..errors import DataError, UsageError
from .ava import NUM_CLASSES
from .coco import COCO_ID
from .detections import MAKER_TOOL, detections_path
from .frames import ClipWindowError, FrameLayout, normalise, read_frame, resize_uint8, sample_indices
from .refava import Instance, annotation_path, jsonl_path

log = logging.getLogger(__name__)


# The actor-centred pass's pixels at the resolution the frames are stored in (e.g. 160 x 120 for RefAVA-Synth):
# a model that crops one person asks for them (RavarModel.needs), so its crop is resampled from the stored frame
# instead of from the 64 px clip, where a person is ~26 x 8 px.
FULL_RES = ("video_full", "keyframe_full")
PIXEL_KEYS = ("video", "keyframe", *FULL_RES)


def stored_resolution(needs) -> set[str]:
    """The ``*_full`` keys of the pixels in ``needs`` (what a model that crops one person asks for beside them)."""
    return {f"{k}_full" for k in ("video", "keyframe") if k in needs}


def normalise_batch(batch: dict, mean, std) -> dict:
    """uint8 pixels (``video``, ``keyframe`` and their stored-resolution ``*_full``) of a collated batch -> float,
    normalised (on whatever device they are)."""
    for k in PIXEL_KEYS:
        if k in batch and batch[k].dtype == torch.uint8:
            batch[k] = normalise(batch[k], mean, std)
    return batch


class FrameMissing(DataError, FileNotFoundError):
    pass


class FrameUnreadable(DataError, RuntimeError):
    pass


def jpeg_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a whole JPEG (missing, empty, no start or no end marker), or None.

    Two small reads instead of a decode, so that every frame of a run can be checked before training
    starts: a truncated file loses its end-of-image marker (some writers pad after it, hence the last
    bytes are searched rather than only the final two). Damage inside a file that keeps both markers is
    still met at decode time, and handled the same way there."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "missing"
    if size == 0:
        return "zero bytes"
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(max(0, size - 64))
        tail = f.read()
    if head != b"\xff\xd8":
        return "not a JPEG (no start-of-image marker)"
    if b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    return None


# Every key of a config's ``data`` section that ClipDataset reads; config.base_keys() accepts them, so the optional
# ones (read with a default) need not stand in configs/_base_.
DATA_KEYS = ("pattern", "fps", "start_second", "index_offset", "window", "num_frames", "frame_stride", "img_size",
             "keyframe_size", "mean", "std", "num_dets", "detections_order", "cache_decoded")


def _same_size(paths: list[Path], frames: list[torch.Tensor]) -> None:
    """One movie, one frame size: a frame of another size than most of its clip is a stray file (another
    movie's, a re-extraction at another --short-side) that resizing would stretch in silently. Raised as a
    frame error, so --skip-missing-frames counts and skips the instance like an undecodable frame."""
    sizes = [tuple(f.shape[-2:]) for f in frames]
    common = max(set(sizes), key=sizes.count)
    odd = next((k for k, hw in enumerate(sizes) if hw != common), None)
    if odd is not None:
        (h, w), (ch, cw) = sizes[odd], common
        raise FrameUnreadable(f"frame of another size: {paths[odd]} is {w}x{h} but the other frames of its clip "
                              f"are {cw}x{ch}")


class ClipDataset(torch.utils.data.Dataset):
    """Samples for ``instances`` from ``root`` (frames/, detections) under the ``data`` config section.

    ``needs``: the batch keys the method asks for; the clip is decoded only when "video" is needed,
    the key frame only when "keyframe" is. Decoded, resized uint8 clips are kept in memory when
    ``data.cache_decoded`` (default on: the embedded data is small; switch off for the full release).
    Missing, empty and truncated frames are found up front (:func:`jpeg_problem`): an error naming the
    instance and the file, or with ``skip_missing_frames`` a counted skip listed in ``self.skipped``; a frame
    that fails to decode later is the same error, or the same counted skip (reported in the batch's
    ``_skipped``). Instances the detections cache lacks are an error naming the file and key, or with
    ``skip_missing_detections`` read as "no detections" and listed in ``self.detections_missing``.
    ``frame_status``: path -> problem, shared between the datasets of a run so each frame is checked once.
    """

    def __init__(self, instances: list[Instance], root: str | Path, data: dict, needs, detections: dict | None = None,
                 skip_missing_frames: bool = False, cache: dict | None = None, skip_missing_detections: bool = False,
                 frame_status: dict | None = None, split: str = "?", skip_invalid: bool = False):
        self.root = Path(root)
        self.frames_dir = self.root / "frames"
        lay = {k: data[k] for k in ("pattern", "fps", "start_second", "index_offset", "window") if k in data}
        self.layout = FrameLayout(**lay)
        self.T, self.stride = int(data["num_frames"]), int(data["frame_stride"])
        self.size, self.key_size = data["img_size"], data.get("keyframe_size", data["img_size"])
        self.mean, self.std = data["mean"], data["std"]
        self.num_dets = int(data.get("num_dets", 16))
        # "as_cached" keeps a per-query cache's query order (the released RefAtomNet layout); "score": best first
        self.detections_order = data.get("detections_order", "score")
        if self.detections_order not in ("score", "as_cached"):
            raise UsageError(f"data.detections_order must be 'score' or 'as_cached', got {self.detections_order!r}")
        self.cache_decoded = bool(data.get("cache_decoded", True))
        self.needs = frozenset(needs)
        if "detections" in self.needs and detections is None:
            raise ValueError("this method needs key-frame detections but no detections cache was given")
        self.detections = detections
        # decoded clips, shareable between datasets of one run (e.g. several methods on the same split)
        self._cache: dict = cache if cache is not None else {}
        self.skipped: list[tuple[str, str]] = []
        self.skip_bad_frames = skip_missing_frames
        self.split = split
        self._status = frame_status if frame_status is not None else {}
        # (key, reason) of rows whose clip lies (partly) before the movie's first frame, skipped with skip_invalid
        self.window_invalid: list[tuple[str, str]] = []
        instances = self._check_windows(instances, skip_invalid)
        self.instances = self._check_frames(instances, skip_missing_frames)
        self.detections_missing = self._check_detections(skip_missing_detections) if detections is not None else []

    def _frame_indices(self, inst: Instance) -> list[int]:
        return sample_indices(self.layout.key_index(inst.timestamp), self.T, self.stride, self.layout.window,
                              first_index=self.layout.index_offset)

    def _annotation_file(self) -> str:
        jl = jsonl_path(self.root, self.split)
        if jl.is_file() and not annotation_path(self.root, self.split, "keyframe").is_file():
            return str(jl)
        return f"{self.root / 'annotations'}/{self.split}_set_*_crr_final.pkl"

    def _window_problem(self, inst: Instance) -> str | None:
        """Why the frames this method reads for ``inst`` cannot lie in the movie, or None. Checked per row before
        the frames, so a timestamp before the movie's start is named as the row it is, not as a frame to extract."""
        first, key = self.layout.index_offset, self.layout.key_index(inst.timestamp)
        try:
            # a key frame before the movie is a bad row for every method (also those reading no frames), so
            # that all of them score the same instances; a clip cut at the start only for those reading video
            if key < first:
                raise ClipWindowError(f"key frame {key} lies before the movie's first frame {first}", first, key, 1)
            if self.needs & {"video", "video_full"}:
                self._frame_indices(inst)
        except ClipWindowError as e:
            fix = "pass --skip-invalid to count and skip it"
            if e.last >= e.first:  # part of the window is in the movie: a shorter clip would fit
                fix += f" (or lower data.frame_stride so the clip fits frames {e.first}..{e.last})"
            return (f"{self._annotation_file()}, key {inst.key!r}: field 'timestamp' {inst.timestamp} puts the "
                    f"clip before the movie's start (second {self.layout.start_second}): {e}"
                    .replace("; lower data.frame_stride", "") + f"; {fix}")
        return None

    def _check_windows(self, instances, skip):
        ok, seen = [], {}
        for inst in instances:
            if inst.clip_key not in seen:
                seen[inst.clip_key] = self._window_problem(inst)
            why = seen[inst.clip_key]
            if why is None:
                ok.append(inst)
            elif skip:
                self.window_invalid.append((inst.key, why))
            else:
                raise DataError(why)
        if self.window_invalid:
            log.warning("%s: skipped %d rows whose clip lies before the movie's first frame (first: %s)", self.split,
                        len(self.window_invalid), self.window_invalid[0][1])
        return ok

    def _paths_needed(self, inst: Instance) -> list[Path]:
        idx = []
        if self.needs & {"video", "video_full"}:
            idx += self._frame_indices(inst)
        if self.needs & {"keyframe", "keyframe_full"}:
            idx.append(self.layout.key_index(inst.timestamp))
        return [self.layout.path(self.frames_dir, inst.video_id, i) for i in dict.fromkeys(idx)]

    def _problem(self, path: Path) -> str | None:
        key = str(path)
        if key not in self._status:
            self._status[key] = jpeg_problem(path)
        return self._status[key]

    def _check_frames(self, instances, skip):
        ok, seen_clip = [], {}
        for inst in instances:
            ck = inst.clip_key
            if ck not in seen_clip:
                seen_clip[ck] = next(((p, why) for p in self._paths_needed(inst) if (why := self._problem(p))), None)
            bad = seen_clip[ck]
            if bad is None:
                ok.append(inst)
                continue
            path, why = bad
            if skip:
                self.skipped.append((inst.key, f"frame {why}: {path}"))
            elif why == "missing":
                raise FrameMissing(f"frame missing: {path} (instance {inst.key}, {self.split} split); prepare the "
                                   f"frames with tools/prepare_refava.py, or pass --skip-missing-frames to count and skip")
            else:
                raise FrameUnreadable(f"frame unreadable ({why}): {path} (instance {inst.key}, {self.split} split); "
                                      f"re-extract it with tools/prepare_refava.py, or pass --skip-missing-frames to "
                                      f"count and skip")
        if self.skipped:
            log.warning("%s: skipped %d instances with missing or unreadable frames (first: %s)", self.split,
                        len(self.skipped), self.skipped[0][1])
        return ok

    def _check_detections(self, skip) -> list[str]:
        absent = [i.key for i in self.instances if i.key not in self.detections and i.clip_key not in self.detections]
        if absent and not skip:
            raise DataError(f"{detections_path(self.root, self.split)}: key {absent[0]!r} is missing ({len(absent)} "
                            f"instance(s) of the {self.split} split in all); re-make the cache with python {MAKER_TOOL}, "
                            f"or pass --skip-invalid to read them as 'no detections' (counted)")
        if absent:
            log.warning("%s: %d instances have no detections-cache entry, read as no detections (first: %s)",
                        self.split, len(absent), absent[0])
        return absent

    def __len__(self):
        return len(self.instances)

    def _clip(self, inst: Instance, size="config") -> torch.Tensor:
        """(T, 3, S, S) uint8 at ``data.img_size``; ``size=None``: the frames as stored."""
        size = self.size if size == "config" else size
        ck = ("video", str(self.root), inst.clip_key, self.T, self.stride, size)
        if ck in self._cache:
            return self._cache[ck]
        paths = [self.layout.path(self.frames_dir, inst.video_id, i) for i in self._frame_indices(inst)]
        frames = [read_frame(p) for p in paths]
        _same_size(paths, frames)
        clip = torch.stack([frame if size is None else resize_uint8(frame, size) for frame in frames])
        if self.cache_decoded:
            self._cache[ck] = clip
        return clip

    def _keyframe(self, inst: Instance, size="config") -> torch.Tensor:
        """(3, S, S) uint8 at ``data.keyframe_size``; ``size=None``: the frame as stored."""
        size = self.key_size if size == "config" else size
        ck = ("key", str(self.root), inst.clip_key, size)
        if ck in self._cache:
            return self._cache[ck]
        kf = read_frame(self.layout.path(self.frames_dir, inst.video_id, self.layout.key_index(inst.timestamp)))
        kf = kf if size is None else resize_uint8(kf, size)
        if self.cache_decoded:
            self._cache[ck] = kf
        return kf

    def _dets(self, inst: Instance) -> dict:
        rows = self.detections.get(inst.key)
        if rows is None:
            rows = self.detections.get(inst.clip_key, [])
        if self.detections_order == "score":
            rows = sorted(rows, key=lambda r: -r[4])
        rows = rows[: self.num_dets]
        n = self.num_dets
        boxes, scores = torch.zeros(n, 4), torch.zeros(n)
        mask, cats = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long)
        names = ["N/A"] * n
        for k, r in enumerate(rows):
            boxes[k] = torch.tensor(r[:4], dtype=torch.float32)
            scores[k], mask[k], cats[k], names[k] = float(r[4]), True, COCO_ID.get(r[5], 0), r[5]
        return {"boxes": boxes, "scores": scores, "mask": mask, "cat_ids": cats, "cat_names": names}

    def __getitem__(self, i: int) -> dict:
        inst = self.instances[i]
        try:
            return self._item(inst)
        except (FileNotFoundError, RuntimeError) as e:
            why = str(e)
            if not why.startswith("frame "):  # not read_frame's (which names the file): not ours to handle
                raise
            if not self.skip_bad_frames:
                raise FrameUnreadable(f"{why} (instance {inst.key}, {self.split} split); re-extract it with "
                                      f"tools/prepare_refava.py, or pass --skip-missing-frames to count and skip") from None
            return {"key": inst.key, "_bad": why}

    def _item(self, inst: Instance) -> dict:
        labels = torch.zeros(NUM_CLASSES)
        labels[[a - 1 for a in inst.actions]] = 1.0
        item = {"key": inst.key, "text": inst.text, "labels": labels, "box": torch.tensor(inst.box, dtype=torch.float32)}
        if "video" in self.needs:
            item["video"] = self._clip(inst)  # uint8; normalised in collate (one op per batch)
        if "keyframe" in self.needs:
            item["keyframe"] = self._keyframe(inst)
        if "video_full" in self.needs:
            item["video_full"] = self._clip(inst, size=None)
        if "keyframe_full" in self.needs:
            item["keyframe_full"] = self._keyframe(inst, size=None)
        if "detections" in self.needs:
            item["detections"] = self._dets(inst)
        return item

    def collate(self, items: list[dict]) -> dict:
        bad = [(it["key"], it["_bad"]) for it in items if "_bad" in it]
        items = [it for it in items if "_bad" not in it]
        if not items:
            return {"key": [], "_skipped": bad}
        out = {"key": [it["key"] for it in items], "clip_key": [it["key"].rsplit("___", 1)[0] for it in items],
               "text": [it["text"] for it in items],
               "labels": torch.stack([it["labels"] for it in items]), "box": torch.stack([it["box"] for it in items])}
        # pixels stay uint8 here (4x less to copy between workers and to a GPU); normalise_batch() makes them
        # float where the model runs
        for k in PIXEL_KEYS:
            if k in items[0]:
                out[k] = torch.stack([it[k] for it in items])
        if "detections" in items[0]:
            d = [it["detections"] for it in items]
            out["detections"] = {k: torch.stack([x[k] for x in d]) for k in ("boxes", "scores", "mask", "cat_ids")}
            out["detections"]["cat_names"] = [x["cat_names"] for x in d]
        if bad:
            out["_skipped"] = bad
        return out


def loader_kwargs(train_cfg) -> dict:
    """DataLoader settings from the config's ``train`` section: workers, pinned memory for CUDA copies, persistent workers, prefetch."""
    workers = int(train_cfg.get("num_workers", 0) or 0)
    pin = train_cfg.get("pin_memory", "auto")
    pin = torch.cuda.is_available() if pin in ("auto", None) else bool(pin)
    kw = dict(num_workers=workers, pin_memory=pin)
    if workers > 0:
        kw.update(persistent_workers=True, prefetch_factor=int(train_cfg.get("prefetch_factor", 2) or 2))
    return kw
