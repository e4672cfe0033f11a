"""Where a run's data comes from: the embedded RefAVA-Synth (generated on first use) or a real RefAVA root."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..data.detections import read_detections
from ..data.refava import KINDS, SPLITS, annotation_path, jsonl_path, load_split
from ..data.synthetic import SynthConfig, ensure_synthetic
from ..errors import DataError, UsageError
from .provenance import data_identity

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DataSource:
    root: Path
    name: str  # "synthetic" | "refava"
    splits: dict = dataclasses.field(default_factory=dict)  # split -> list[Instance]
    reports: dict = dataclasses.field(default_factory=dict)
    _dets: dict = dataclasses.field(default_factory=dict)
    clip_cache: dict = dataclasses.field(default_factory=dict)  # decoded clips shared by all methods of a run
    frame_status: dict = dataclasses.field(default_factory=dict)  # frame path -> problem (None: fine), checked once
    skip_invalid: bool = False  # count and skip bad rows / read absent detections as none, instead of an error
    provenance: dict = dataclasses.field(default_factory=dict)  # data, data_digest, data_generator

    def detections(self, split: str) -> dict:
        if split not in self._dets:
            self._dets[split] = read_detections(self.root, split)
        return self._dets[split]

    @property
    def identity(self) -> str:
        """``<kind>:<digest of the annotation files>``: no machine path (see provenance.data_identity)."""
        return self.provenance.get("data") or f"{self.name}:{self.root}"


def open_source(kind: str = "synthetic", data_root: str | None = None, synth: SynthConfig | None = None,
                skip_invalid: bool = False, progress: bool = True, cache_dir: str | None = None) -> DataSource:
    if kind == "synthetic":
        root = ensure_synthetic(synth or SynthConfig(), cache_dir=cache_dir, progress=progress)
    elif kind == "refava":
        if not data_root:
            raise UsageError("--data refava needs --data-root DIR (DIR/annotations/*.pkl and DIR/frames/<video_id>/)")
        root = Path(data_root)
        if not root.is_dir():
            raise DataError(f"--data-root {root}: no such folder")
        if not (root / "annotations").is_dir():
            looks_like_ann = any(root.glob("*_crr_final.pkl")) or any(root.glob("*.jsonl"))
            hint = (f"; {root} holds the annotation files itself: pass its parent, --data-root {root.parent}"
                    if looks_like_ann else "")
            raise DataError(f"{root}/annotations not found: expected the released RefAVA pickles there "
                            f"({{split}}_set_{{{','.join(KINDS)}}}_crr_final.pkl, or {{split}}.jsonl){hint}")
    else:
        raise UsageError(f"--data must be 'synthetic' or 'refava', got {kind!r}")
    src = DataSource(Path(root), kind, skip_invalid=skip_invalid)
    for split in SPLITS:
        inst, rep = load_split(root, split, skip_invalid=skip_invalid)
        if not inst:
            files = jsonl_path(root, split) if jsonl_path(root, split).is_file() else annotation_path(root, split, "*")
            raise DataError(f"split '{split}' is empty ({files}): {len(rep.skipped)} row(s) skipped as invalid"
                            + (f", first: {rep.skipped[0][1]}" if rep.skipped else ", none found"))
        src.splits[split], src.reports[split] = inst, rep
        log.info(rep.summary())
    src.provenance = data_identity(kind, root)
    return src
