#!/usr/bin/env python
"""The fault and bad-input battery, one line per case: what broke, what happened, results lost.

    python benchmarks/faults.py                 # about 2-4 minutes on 2 CPU cores
    python benchmarks/faults.py --work /tmp/f   # keep the run folders and logs there

The same cases run in tests/test_faults.py (ravar_bench/testing/fault_battery.py holds them); this script adds the
command-line check (a data error through tools/run_bench.py: one line, exit 2). Exits 1 if any case broke
its expectation or lost a result.
"""
import argparse
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=None, help="folder for the data copies, runs and logs (default: a temp dir)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import torch

    torch.set_num_threads(args.threads)
    from ravar_bench.testing.fault_battery import Battery

    work = Path(args.work or tempfile.mkdtemp(prefix="ravar_faults_"))
    t0 = time.time()
    b = Battery(work, threads=args.threads)
    groups = [("kill -9 and resume", b.kill_and_resume), ("frames", b.bad_frames),
              *[(n, (lambda n=n: b.bad_row(n))) for n in b.ROW_CASES],
              ("bad rows counted", b.bad_rows_counted), ("empty split", b.empty_split), ("bad files", b.bad_files),
              ("detections missing key", b.detections_missing_key), ("detections malformed", b.detections_malformed),
              ("disk full", b.disk_full), ("two runs", b.two_runs_one_folder), ("command line", b.cli_one_line),
              # the second battery (issue 26): values, windows, damaged results.csv, mistaken flags, real-data tools
              ("detection scores", b.detections_bad_score), ("clip before first frame", b.clip_before_first_frame),
              ("several boxes / sentences", b.several_boxes_and_sentences),
              ("frame of another size", b.frame_of_another_size), ("damaged results.csv", b.damaged_results_csv),
              ("mistaken flags", b.mistaken_flags), ("real-data tools", b.real_data_tools)]
    n, failed, lost = 0, 0, 0
    for name, fn in groups:
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - one broken case must not hide the others
            failed += 1
            print(f"{name:34s} FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
            traceback.print_exc(file=sys.stderr)
            continue
        for c in out if isinstance(out, list) else [out]:
            n += 1
            lost += c.lost
            print(c.line(), flush=True)
    print(f"\n{n} cases, {failed} failed, results lost {lost}; {time.time() - t0:.0f} s; work folder {work}")
    return 0 if failed == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
