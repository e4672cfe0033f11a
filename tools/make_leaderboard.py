#!/usr/bin/env python
"""Regenerate a table (Markdown, LaTeX, CSV, bar chart) from DIR/results.csv alone.

    python tools/make_leaderboard.py work_dirs/bench

The same as ``ravar-bench leaderboard`` (same flags, ``--help`` lists them): the flags and the code live in
ravar_bench/cli.py (``add_leaderboard_args`` / ``cmd_leaderboard``); add new flags there.
"""
import sys

import _bootstrap  # noqa: F401  (a plain checkout: the repo root on sys.path)

from ravar_bench.cli import tool_main


def main(argv=None):
    return tool_main("leaderboard", argv, script="tools/make_leaderboard.py")


if __name__ == "__main__":
    sys.exit(main())
