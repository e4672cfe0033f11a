#!/usr/bin/env python
"""Regenerate a table (Markdown, LaTeX, CSV, bar chart) from DIR/results.csv alone
(or first rebuild results.csv from DIR/results/*.json with --collect).

    python tools/make_leaderboard.py work_dirs/bench
    python tools/make_leaderboard.py work_dirs/table3a --suite table3a
    python tools/make_leaderboard.py work_dirs/bench --protocol macro
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from ravar_bench.leaderboard import write_leaderboard


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="a run folder holding results.csv")
    ap.add_argument("--protocol", default="weighted", choices=["weighted", "macro", "gated"])
    ap.add_argument("--suite", default="table2", choices=["table2", "table3a", "table3b", "table4a", "table4b"])
    ap.add_argument("--collect", action="store_true", help="first rebuild results.csv from results/*.json")
    ap.add_argument("--command", default="", help="the command that made the results, shown under the title")
    args = ap.parse_args(argv)
    if args.collect:
        from ravar_bench.engine.results import write_results_csv

        write_results_csv(args.dir)
    print(write_leaderboard(args.dir, command=args.command, protocol=args.protocol, suite=args.suite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
