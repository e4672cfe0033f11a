#!/usr/bin/env python
"""Decode AVA movies into OUT/frames/<video_id>/image_%06d.jpg, only the frames the annotations need.

    python tools/prepare_refava.py --videos /data/ava/videos --annotations /data/refava --out /data/refava --workers 4

The same as ``ravar-bench prepare`` (same flags, ``--help`` lists them): the flags and the code live in
ravar_bench/cli.py (``add_prepare_args`` / ``cmd_prepare``); add new flags there.
"""
import sys

import _bootstrap  # noqa: F401  (a plain checkout: the repo root on sys.path)

from ravar_bench.cli import tool_main


def main(argv=None):
    return tool_main("prepare", argv, script="tools/prepare_refava.py")


if __name__ == "__main__":
    sys.exit(main())
