"""Frozen key-frame detectors for the detections cache: DETR-R50 (transformers, local checkpoint) or,
with no checkpoint, OpenCV's HOG people detector (persons only; its weights are compiled into opencv 4.x).

Boxes are normalised x1y1x2y2 clipped to [0, 1]; categories are COCO names; one entry per clip
(``<video_id>___<t>``), which the dataset uses for every person of that clip.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data.detections import write_detections
from ..data.frames import FrameLayout
from ..data.refava import load_split
from ..errors import DataError, UsageError

log = logging.getLogger(__name__)


class CheckpointMissing(UsageError, FileNotFoundError):
    """No DETR checkpoint folder where --checkpoint says: one line through the CLI."""


def _clip01(b):
    return [float(min(1.0, max(0.0, v))) for v in b]


class HogDetector:
    """cv2's default HOG+SVM people detector; SVM margins mapped to (0, 1) by a sigmoid, then NMS."""

    name = "opencv-hog-people"

    def __init__(self, min_height: int = 400, score_threshold: float = 0.3, nms_iou: float = 0.4):
        import cv2

        self.cv2 = cv2
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.min_height, self.thr, self.nms = min_height, score_threshold, nms_iou

    def __call__(self, rgb: np.ndarray) -> list[list]:
        cv2 = self.cv2
        h, w = rgb.shape[:2]
        scale = max(1.0, self.min_height / h)  # HOG's window is 64x128 px: small frames are upscaled
        img = cv2.resize(rgb, (round(w * scale), round(h * scale))) if scale > 1 else rgb
        rects, weights = self.hog.detectMultiScale(img, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return []
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, dtype=np.float64).reshape(-1)))
        keep = cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], scores.tolist(), self.thr, self.nms)
        out = []
        for k in np.asarray(keep).reshape(-1):
            x, y, bw, bh = (float(v) / scale for v in rects[k])
            out.append(_clip01([x / w, y / h, (x + bw) / w, (y + bh) / h]) + [float(scores[k]), "person"])
        return sorted(out, key=lambda r: -r[4])


class DetrDetector:
    """DETR from a LOCAL transformers checkpoint folder (config.json + weights [+ preprocessor_config.json])."""

    name = "detr"

    def __init__(self, checkpoint: str | Path, threshold: float = 0.5, device: str = "cpu", per_query: bool = False):
        import torch
        from transformers import DetrForObjectDetection, DetrImageProcessor

        ck = Path(checkpoint)
        if not (ck / "config.json").is_file():
            raise CheckpointMissing(f"no DETR checkpoint at {ck}: put a transformers folder there (config.json and "
                                    f"model.safetensors of facebook/detr-resnet-50, saved with save_pretrained), "
                                    f"or use --detector hog")
        # use_pretrained_backbone=False: the published config.json asks timm for ImageNet backbone weights (a
        # download); the folder's own weights replace them anyway
        from transformers import DetrConfig

        config = DetrConfig.from_pretrained(str(ck), local_files_only=True)
        config.use_pretrained_backbone = False
        self.model = DetrForObjectDetection.from_pretrained(str(ck), config=config,
                                                            local_files_only=True).eval().to(device)
        try:
            self.processor = DetrImageProcessor.from_pretrained(str(ck), local_files_only=True)
        except OSError:  # no preprocessor_config.json: DETR's documented defaults
            self.processor = DetrImageProcessor()
        # per_query: the released code's layout - every query kept, in query order, whatever its score or class
        # (its location stream is a Linear over the query axis, so a query's position is its identity)
        self.threshold, self.device, self.torch, self.per_query = threshold, device, torch, per_query
        self.id2label = self.model.config.id2label
        self.name = f"detr:{ck.name}" + (":per-query" if per_query else "")

    def __call__(self, rgb: np.ndarray) -> list[list]:
        from ..data.coco import COCO_ID, COCO_NAMES

        h, w = rgb.shape[:2]
        inputs = self.processor(images=rgb, return_tensors="pt").to(self.device)
        with self.torch.no_grad():
            outputs = self.model(**inputs)
        # threshold -1 keeps every query (post-processing masks with score > threshold, which keeps the order)
        thr = -1.0 if self.per_query else self.threshold
        res = self.processor.post_process_object_detection(outputs, threshold=thr, target_sizes=[(h, w)])[0]
        out = []
        for s, l, b in zip(res["scores"].tolist(), res["labels"].tolist(), res["boxes"].tolist()):
            name = self.id2label.get(int(l), "N/A")
            if name not in COCO_ID:  # fall back to DETR's 91-way COCO ids when the config has generic labels
                name = COCO_NAMES[int(l)] if 0 <= int(l) < len(COCO_NAMES) else "N/A"
            x1, y1, x2, y2 = _clip01([b[0] / w, b[1] / h, b[2] / w, b[3] / h])
            if self.per_query:  # keep the slot: an unnamed class is "N/A", a degenerate box stays degenerate
                out.append([x1, y1, max(x1, x2), max(y1, y2), float(s), name if name in COCO_ID else "N/A"])
                continue
            if name not in COCO_ID or x2 <= x1 or y2 <= y1:
                continue
            out.append([x1, y1, x2, y2, float(s), name])
        return out if self.per_query else sorted(out, key=lambda r: -r[4])


def _key_frame(path: Path, clip: str, split: str):
    """The decoded key frame, or one line naming the file (missing, empty, not a JPEG, truncated, undecodable)."""
    from ..data.dataset import jpeg_problem
    from ..data.frames import read_frame

    why = jpeg_problem(path)
    try:
        if why is None:
            return read_frame(path)
    except (FileNotFoundError, RuntimeError) as e:
        why = f"does not decode ({' '.join(str(e).split()[-6:])})"
    raise DataError(f"{path}: key frame of clip {clip!r} ({split} split) is {why}; extract the frames with "
                    f"tools/prepare_refava.py before detecting")


def make_detector(kind: str = "hog", checkpoint: str | Path | None = None, **kw):
    if kind == "detr":
        if checkpoint is None:
            raise ValueError("--detector detr needs --checkpoint DIR (a local DETR-R50 folder); "
                             "without one use --detector hog (persons only)")
        return DetrDetector(checkpoint, **kw)
    if kind == "hog":
        return HogDetector(**kw)
    raise ValueError(f"detector must be 'detr' or 'hog', got {kind!r}")


def precompute_detections(data_root: str | Path, split: str, detector: str = "hog", checkpoint=None,
                          window: int = 90, progress: bool = True, **kw) -> Path:
    """Run the detector on every key frame of ``split`` and write DIR/detections/{split}_detections.json."""
    from tqdm import tqdm

    det = make_detector(detector, checkpoint, **kw)
    layout = FrameLayout(window=window)
    instances, rep = load_split(data_root, split, skip_invalid=True)
    clips = {i.clip_key: i for i in instances}
    frames_dir = Path(data_root) / "frames"
    out = {}
    for ck, inst in tqdm(sorted(clips.items()), desc=f"detect {split}", disable=not progress):
        img = _key_frame(layout.path(frames_dir, inst.video_id, layout.key_index(inst.timestamp)), ck, split)
        out[ck] = det(img.permute(1, 2, 0).numpy())
    return write_detections(data_root, split, out, det.name)
