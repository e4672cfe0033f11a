"""Every skipped row, skipped instance and fallback of a run, counted per split for the result rows.

One policy for bad input: an error by default; with ``--skip-invalid`` (annotation rows, keys missing from
one of the three pickles, keys missing from the detections cache) or ``--skip-missing-frames`` (missing or
unreadable frames) a counted skip. The counts land in every result row (``skipped_*``, ``train_skipped_*``,
``detections_missing``) and under the leaderboard (ravar_bench/report/run_notes.py words them), so a table made on
reduced data says so.
"""
from __future__ import annotations

import logging

from ..errors import DataError

log = logging.getLogger(__name__)


class SkipCounter:
    def __init__(self, source, splits):
        self.source = source
        self.splits = tuple(dict.fromkeys(splits))
        self.frames = {s: {} for s in self.splits}  # split -> key -> reason
        self.dets = {s: 0 for s in self.splits}
        self.window = {s: {} for s in self.splits}  # split -> key -> reason: clip window before the first frame

    def preflight(self, datasets: dict) -> None:
        """Counts what the datasets left out while checking frames and detections; an emptied split is an error."""
        for split, ds in datasets.items():
            for key, reason in ds.skipped:
                self.frames[split].setdefault(key, reason)
            self.dets[split] = len(getattr(ds, "detections_missing", ()))
            for key, reason in getattr(ds, "window_invalid", ()):  # a row the clip layout cannot read: invalid
                self.window[split].setdefault(key, reason)
            if len(ds) == 0:
                n = len(self.source.splits[split])
                raise DataError(f"split '{split}': none of its {n} instances is usable: every one has missing or "
                                f"unreadable frames (first: {ds.skipped[0][1] if ds.skipped else 'none'}); check "
                                f"{self.source.root}/frames")

    def frames_met(self, skipped, split: str) -> None:
        for key, reason in skipped:
            if key not in self.frames[split]:
                log.warning("%s: %s (instance skipped on request, counted)", split, reason)
                self.frames[split][key] = reason

    def for_split(self, split: str):
        return lambda skipped: self.frames_met(skipped, split)

    def _split_counts(self, split: str) -> dict:
        rep = self.source.reports.get(split)
        skipped = {k for k, _ in rep.skipped} if rep is not None else set()
        absent = set().union(*rep.missing.values()) & skipped if rep is not None and rep.missing else set()
        several = rep.several if rep is not None else {}
        return {"skipped_invalid": len(skipped - absent) + len(self.window.get(split, {})),
                "skipped_missing_key": len(absent),
                "skipped_frames": len(self.frames.get(split, {})), "detections_missing": self.dets.get(split, 0),
                # kept, not skipped: the first of several boxes / sentences, as the released loader reads them
                "first_of_several_boxes": len(several.get("box", ())),
                "first_of_several_texts": len(several.get("text", ()))}

    def row(self, split: str) -> dict:
        own = self._split_counts(split)
        train = self._split_counts("train")
        return {**own, "skipped_instances": own["skipped_invalid"] + own["skipped_missing_key"] + own["skipped_frames"],
                **{f"train_{k}": v for k, v in train.items()}}
