#!/usr/bin/env python
"""Run a trained method on your own video and sentence: top AVA actions and a PNG with the predicted box.

    python tools/demo.py --video street.mp4 --text "the man in the red jacket" --run-dir work_dirs/bench --method x3d
    python tools/demo.py --video clip.avi --text "..." --checkpoint runs/x3d/seed0/model.pt --config runs/x3d/seed0/config.py

The clip is 8 (data.num_frames) distinct frames at data.frame_stride on a 30 fps timeline centred on
--time (default: the middle of the video). Methods that read detections get OpenCV HOG person boxes.
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from ravar_bench.realdata.demo import load_trained, run_demo


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--run-dir", default=None, help="the --out of tools/run_bench.py")
    ap.add_argument("--method", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default=None, help="model.pt (with --config instead of --run-dir/--method)")
    ap.add_argument("--config", default=None, help="the run's config.py")
    ap.add_argument("--time", type=float, default=None, help="key-frame time in seconds on the video's timeline")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--out", default="demo.png")
    args = ap.parse_args(argv)
    model, cfg = load_trained(args.run_dir, args.method, args.seed, args.checkpoint, args.config)
    res = run_demo(args.video, args.text, model, cfg, time=args.time, top_k=args.top_k, out_png=args.out)
    print(f'"{args.text}" at {res["time"]:.2f} s')
    for name, s in res["actions"]:
        print(f"  {name:40s} {s:.3f}")
    print("box (x1, y1, x2, y2, normalised): " + ", ".join(f"{v:.3f}" for v in res["box"]))
    print(f"figure: {res['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
