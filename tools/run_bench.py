#!/usr/bin/env python
"""Train and score methods, write results.csv and a Table-2-style leaderboard.md.

    python tools/run_bench.py --methods all

The same as ``ravar-bench run`` (same flags, ``--help`` lists them): the flags and the code live in
ravar_bench/cli.py (``add_run_args`` / ``cmd_run``); add new flags there.
"""
import sys

import _bootstrap  # noqa: F401  (a plain checkout: the repo root on sys.path)

from ravar_bench.cli import tool_main


def main(argv=None):
    return tool_main("run", argv, script="tools/run_bench.py")


if __name__ == "__main__":
    sys.exit(main())
