#!/usr/bin/env python
"""Validate the released RefAVA pickles and write OUT/annotations/{split}.jsonl plus OUT/report.{json,md}.

    python tools/convert_refava.py --data-root /data/refava_release --out /data/refava

The same as ``ravar-bench convert`` (same flags, ``--help`` lists them): the flags and the code live in
ravar_bench/cli.py (``add_convert_args`` / ``cmd_convert``); add new flags there.
"""
import sys

import _bootstrap  # noqa: F401  (a plain checkout: the repo root on sys.path)

from ravar_bench.cli import tool_main


def main(argv=None):
    return tool_main("convert", argv, script="tools/convert_refava.py")


if __name__ == "__main__":
    sys.exit(main())
