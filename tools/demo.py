#!/usr/bin/env python
"""Run a trained method on your own video and sentence: top AVA actions and a PNG with the predicted box.

    python tools/demo.py --video street.mp4 --text "the man in the red jacket" --run-dir work_dirs/bench --method x3d

The same as ``ravar-bench demo`` (same flags, ``--help`` lists them): the flags and the code live in
ravar_bench/cli.py (``add_demo_args`` / ``cmd_demo``); add new flags there.
"""
import sys

import _bootstrap  # noqa: F401  (a plain checkout: the repo root on sys.path)

from ravar_bench.cli import tool_main


def main(argv=None):
    return tool_main("demo", argv, script="tools/demo.py")


if __name__ == "__main__":
    sys.exit(main())
