#!/usr/bin/env python
"""Run a frozen detector on every key frame of a split and write DIR/detections/{split}_detections.json.

    python tools/precompute_detections.py --data-root /data/refava --split train --detector hog

The same as ``ravar-bench detect`` (same flags, ``--help`` lists them): the flags and the code live in
ravar_bench/cli.py (``add_detect_args`` / ``cmd_detect``); add new flags there.
"""
import sys

import _bootstrap  # noqa: F401  (a plain checkout: the repo root on sys.path)

from ravar_bench.cli import tool_main


def main(argv=None):
    return tool_main("detect", argv, script="tools/precompute_detections.py")


if __name__ == "__main__":
    sys.exit(main())
