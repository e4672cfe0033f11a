#!/usr/bin/env python
"""Run a frozen detector on every key frame of a split and write DIR/detections/{split}_detections.json.

    python tools/precompute_detections.py --data-root /data/refava --split train --detector detr --checkpoint /models/detr-resnet-50
    python tools/precompute_detections.py --data-root /data/refava --split train --detector hog   # persons only, no weights needed

DETR-R50 loads a LOCAL transformers folder (no download). HOG is OpenCV's built-in people detector, the
documented fallback when no checkpoint is available.
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from ravar_bench.realdata.detect import precompute_detections


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--split", required=True, help="train | val | test | all")
    ap.add_argument("--detector", default=None, choices=["detr", "hog"], help="default: detr with --checkpoint, else hog")
    ap.add_argument("--checkpoint", default=None, help="local DETR folder (config.json + weights)")
    ap.add_argument("--window", type=int, default=90)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    det = args.detector or ("detr" if args.checkpoint else "hog")
    splits = ["train", "val", "test"] if args.split == "all" else [args.split]
    for s in splits:
        p = precompute_detections(args.data_root, s, det, args.checkpoint, window=args.window, progress=not args.no_progress)
        print(f"{s}: wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
