#!/usr/bin/env python
"""Decode AVA movies into OUT/frames/<video_id>/image_%06d.jpg, only the frames the annotations need.

    python tools/prepare_refava.py --videos /data/ava/videos --annotations /data/refava --out /data/refava --workers 4

Frame index i of the 30 fps timeline is movie second 900 + (i - 1) / 30; the decoded frame with the
nearest timestamp is written. --time-offset S: the file's own time 0 is movie second S (0 for AVA
movies; 900 for a piece that starts at second 900, as in tests/test_real_path.py). --frame-stride takes
a comma list (e.g. 4,8 covers tiny and full configs) or use --full-window for every frame of the window.
Resumable (per-video .done.json written last); exits non-zero if any movie is missing or unreadable.
"""
import argparse
import logging
import sys

import _bootstrap  # noqa: F401

from ravar_bench.realdata.prepare import prepare_refava


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", required=True, help="folder of movies named <video_id>.{mp4,mkv,webm,avi}")
    ap.add_argument("--annotations", required=True, help="RefAVA root holding annotations/ (pickles or JSONL)")
    ap.add_argument("--out", required=True, help="output root (frames/ goes here)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--frame-stride", default="8", help="stride(s), comma-separated, e.g. 4,8")
    ap.add_argument("--window", type=int, default=90, help="frames around the key frame a clip may use")
    ap.add_argument("--full-window", action="store_true", help="write every frame of the window, not only the sampled ones")
    ap.add_argument("--time-offset", type=float, default=0.0, help="movie second at which the file's own timeline starts")
    ap.add_argument("--short-side", type=int, default=0, help="resize so the short side is N px (0: keep)")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality")
    ap.add_argument("--splits", default=None, help="comma-separated splits (default: all present)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    s = prepare_refava(args.videos, args.annotations, args.out, workers=args.workers, num_frames=args.num_frames,
                       strides=[int(x) for x in args.frame_stride.split(",") if x.strip()], window=args.window,
                       time_offset=args.time_offset, full_window=args.full_window, quality=args.quality,
                       short_side=args.short_side, progress=not args.no_progress,
                       splits=args.splits.split(",") if args.splits else None)
    print(s.text())
    return 0 if s.ok else 1


if __name__ == "__main__":
    sys.exit(main())
