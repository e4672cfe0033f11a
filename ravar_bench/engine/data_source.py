"""Where a run's data comes from: the embedded RefAVA-Synth (generated on first use) or a real RefAVA root."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..data.detections import read_detections
from ..data.refava import SPLITS, load_split
from ..data.synthetic import SynthConfig, ensure_synthetic

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DataSource:
    root: Path
    name: str  # "synthetic" | "refava"
    splits: dict = dataclasses.field(default_factory=dict)  # split -> list[Instance]
    reports: dict = dataclasses.field(default_factory=dict)
    _dets: dict = dataclasses.field(default_factory=dict)
    clip_cache: dict = dataclasses.field(default_factory=dict)  # decoded clips shared by all methods of a run

    def detections(self, split: str) -> dict:
        if split not in self._dets:
            self._dets[split] = read_detections(self.root, split)
        return self._dets[split]

    @property
    def identity(self) -> str:
        return f"{self.name}:{self.root}"


def open_source(kind: str = "synthetic", data_root: str | None = None, synth: SynthConfig | None = None,
                skip_invalid: bool = False, progress: bool = True, cache_dir: str | None = None) -> DataSource:
    if kind == "synthetic":
        root = ensure_synthetic(synth or SynthConfig(), cache_dir=cache_dir, progress=progress)
    elif kind == "refava":
        if not data_root:
            raise ValueError("--data refava needs --data-root DIR (DIR/annotations/*.pkl and DIR/frames/<video_id>/)")
        root = Path(data_root)
        if not (root / "annotations").is_dir():
            raise FileNotFoundError(f"{root}/annotations not found: expected the released RefAVA pickles there")
    else:
        raise ValueError(f"--data must be 'synthetic' or 'refava', got {kind!r}")
    src = DataSource(Path(root), kind)
    for split in SPLITS:
        inst, rep = load_split(root, split, skip_invalid=skip_invalid)
        src.splits[split], src.reports[split] = inst, rep
        log.info(rep.summary())
    return src
