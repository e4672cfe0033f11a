#!/usr/bin/env python
"""Validate the released RefAVA pickles and write OUT/annotations/{split}.jsonl plus OUT/report.{json,md}.

    python tools/convert_refava.py --data-root /data/refava_release --out /data/refava

JSONL fields: key, video_id, timestamp, person_id, box [x1,y1,x2,y2] in [0,1], actions [AVA ids], text.
Invalid rows are rejected (listed with reasons in the report); the loader reads the JSONL when no pickles exist.
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from ravar_bench.realdata.convert import convert_refava


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True, help="folder holding annotations/{split}_set_*_crr_final.pkl")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    rep = convert_refava(args.data_root, args.out)
    for s, r in rep["splits"].items():
        print(f"{s}: {r['instances']} instances, {r['clips']} clips, {len(r['rejected'])} rejected")
    print(f"report: {args.out}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
