#!/usr/bin/env python
"""Regenerate leaderboard.md / .tex / .png from DIR/results.csv alone (or from DIR/results/*.json with --collect).

    python tools/make_leaderboard.py work_dirs/bench
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from ravar_bench.leaderboard import write_leaderboard


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="a run folder holding results.csv")
    ap.add_argument("--protocol", default="weighted", choices=["weighted", "macro"])
    ap.add_argument("--collect", action="store_true", help="first rebuild results.csv from results/*.json")
    ap.add_argument("--command", default="", help="the command that made the results, shown under the title")
    args = ap.parse_args(argv)
    if args.collect:
        from ravar_bench.engine.results import write_results_csv

        write_results_csv(args.dir)
    print(write_leaderboard(args.dir, command=args.command, protocol=args.protocol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
