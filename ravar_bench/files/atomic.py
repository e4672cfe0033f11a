"""The one atomic write: every file of the suite (results, checkpoints, caches, tables, the run lock's holder
file, detections) goes to a temporary file that replaces the target only when complete, so a kill at any moment
leaves either the old file or the new one, never a half-written one; a full disk is a clear error that leaves
the earlier file as it was."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from ..errors import ResultsError
from . import faultpoint


def atomic_write(path: Path, write, tmp: Path | None = None) -> None:
    """``write(tmp)`` then replace ``path`` with it. No space left -> ResultsError naming the file (the
    temporary file removed, ``path`` untouched)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp or path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        write(tmp)
        faultpoint.writing(path, tmp)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ResultsError(f"no space left on the device writing {path}: free space (or pass another --out) "
                               f"and run the same command again; finished results are intact") from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: dict) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1, default=float)))


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
