"""The released RefAVA pickles -> a documented plain format, plus a report of what was in them.

    OUT/annotations/{split}.jsonl   one JSON object per line:
        {"key": "<video_id>___<t>___<pid>", "video_id": str, "timestamp": int (movie second),
         "person_id": str, "box": [x1, y1, x2, y2] (normalised to [0, 1]), "actions": [AVA ids 1..80],
         "text": str (the referring sentence)}
    OUT/report.json, OUT/report.md  counts per split and per action group (PM / OM / PI), persons-per-clip
        histogram, rejected rows with reasons, keys missing from each released file.

ravar_bench.data.refava.load_split reads the JSONL when the pickles are absent.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from ..data.ava import ava_classes
from ..data.refava import SPLITS, AnnotationFileMissing, annotation_path, jsonl_path, load_split


def _split_stats(instances) -> dict:
    group_of = {r["id"]: r["group"] for r in ava_classes()}
    inst_per_group, labels_per_group = Counter(), Counter()
    for i in instances:
        gs = [group_of[a] for a in i.actions]
        labels_per_group.update(gs)
        inst_per_group.update(set(gs))
    per_clip = Counter(i.clip_key for i in instances)
    return {"instances": len(instances), "videos": len({i.video_id for i in instances}), "clips": len(per_clip),
            "instances_per_group": {g: inst_per_group.get(g, 0) for g in ("PM", "OM", "PI")},
            "labels_per_group": {g: labels_per_group.get(g, 0) for g in ("PM", "OM", "PI")},
            "persons_per_clip": {str(k): v for k, v in sorted(Counter(per_clip.values()).items())}}


def convert_refava(data_root: str | Path, out: str | Path, splits=None) -> dict:
    out = Path(out)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    splits = splits or [s for s in SPLITS if any(annotation_path(data_root, s, k).is_file()
                                                  for k in ("keyframe", "label", "description"))]
    if not splits:
        raise AnnotationFileMissing(f"no released pickles under {data_root}/annotations "
                                f"(expected {{split}}_set_{{keyframe,label,description}}_crr_final.pkl)")
    report = {"source": str(data_root), "splits": {}}
    for split in splits:
        instances, rep = load_split(data_root, split, skip_invalid=True)
        dst = jsonl_path(out, split)
        tmp = dst.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for i in instances:
                f.write(json.dumps({"key": i.key, "video_id": i.video_id, "timestamp": i.timestamp,
                                    "person_id": i.person_id, "box": list(i.box), "actions": list(i.actions),
                                    "text": i.text}, ensure_ascii=False) + "\n")
        os.replace(tmp, dst)
        absent = set().union(*rep.missing.values()) if rep.missing else set()
        report["splits"][split] = {**_split_stats(instances),  # keys absent from a file: under missing_keys only
                                   "rejected": [{"key": k, "reason": r} for k, r in rep.skipped if k not in absent],
                                   "missing_keys": {k: v for k, v in rep.missing.items()}}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    lines = ["# RefAVA conversion report", "", f"Source: `{report['source']}`", "",
             "| split | instances | videos | clips | PM inst. | OM inst. | PI inst. | rejected | missing keys |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s, r in report["splits"].items():
        g = r["instances_per_group"]
        miss = sum(len(v) for v in r["missing_keys"].values())
        lines.append(f"| {s} | {r['instances']} | {r['videos']} | {r['clips']} | {g['PM']} | {g['OM']} | {g['PI']} "
                     f"| {len(r['rejected'])} | {miss} |")
    for s, r in report["splits"].items():
        lines += ["", f"## {s}", "", "Persons per clip (persons: clips): "
                  + ", ".join(f"{k}: {v}" for k, v in r["persons_per_clip"].items()),
                  "", "Labels per group: " + ", ".join(f"{k} {v}" for k, v in r["labels_per_group"].items())]
        for kind, keys in r["missing_keys"].items():
            if keys:
                lines.append(f"- {len(keys)} keys missing from the {kind} file, e.g. {', '.join(keys[:5])}")
        if r["rejected"]:
            lines += ["", "Rejected rows:", ""] + [f"- `{x['key']}`: {x['reason']}" for x in r["rejected"][:200]]
            if len(r["rejected"]) > 200:
                lines.append(f"- ... {len(r['rejected']) - 200} more in report.json")
    return "\n".join(lines) + "\n"
