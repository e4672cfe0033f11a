"""Named points where the fault battery (tests/test_faults.py, benchmarks/faults.py) parks a real run so it
can be killed with SIGKILL at a known moment: after a given epoch of a given method, or half-way through
writing a given file. Inert unless ``RAVAR_FAULTPOINT`` is set; a kill at an arbitrary instant would make the
battery flaky, a simulated exception would not test what a kill leaves on disk.

    RAVAR_FAULTPOINT=epoch:<method>:<n>     park after epoch n's checkpoint of <method> is saved
    RAVAR_FAULTPOINT=write:<file name>[@n]  park with the temporary file of <file name> half written (at its
                                            n-th write in this process; default the first)
    RAVAR_FAULT_MARKER=<path>               touched when parked (the harness waits for it, then kills)
"""
from __future__ import annotations

import fnmatch
import os
import time
from pathlib import Path

_writes: dict = {}


def _park() -> None:
    marker = os.environ.get("RAVAR_FAULT_MARKER")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    while True:  # until killed
        time.sleep(3600)


def after_epoch(method: str, epoch: int) -> None:
    spec = os.environ.get("RAVAR_FAULTPOINT", "")
    if spec.startswith("epoch:") and spec.split(":")[1:] == [method, str(epoch)]:
        _park()


def writing(target: Path, tmp: Path) -> None:
    """Called with ``tmp`` fully written, before it replaces ``target``: cut it to half and park."""
    spec = os.environ.get("RAVAR_FAULTPOINT", "")
    if not spec.startswith("write:"):
        return
    pattern, _, nth = spec[len("write:"):].partition("@")
    if fnmatch.fnmatch(Path(target).name, pattern):
        _writes[pattern] = _writes.get(pattern, 0) + 1
        if _writes[pattern] < int(nth or 1):
            return
        size = Path(tmp).stat().st_size
        with open(tmp, "r+b") as f:
            f.truncate(size // 2)
        _park()
