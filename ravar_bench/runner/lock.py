"""One run at a time per output folder: ``OUT/.run.lock``.

Two runs writing one ``--out`` would race on the same checkpoints and result files. The lock is an OS file
lock (filelock's flock, which the kernel drops when its holder dies, even by SIGKILL, so a killed run never
leaves a stale lock behind); ``OUT/.run.lock.json`` names the holder (pid, host, command, start time) for the
message the second run prints. A second run refuses at once, or with ``wait`` waits for the first to finish.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import ResultsError
from ..files.atomic import write_text_atomic

LOCK_NAME = ".run.lock"


def _holder(out_dir: Path) -> str:
    try:
        h = json.loads((out_dir / (LOCK_NAME + ".json")).read_text())
        return (f"pid {h.get('pid')} on {h.get('host')}, since {h.get('started')}: "
                f"{h.get('command') or '(no command recorded)'}")
    except (OSError, ValueError):
        return "another process (its details are not written yet)"


class RunLock:
    """Context manager: hold ``out_dir``'s run lock, or raise :class:`ResultsError` naming the holder."""

    def __init__(self, out_dir: str | Path, command: str = "", wait: bool = False, poll_s: float = 0.5):
        self.out_dir = Path(out_dir)
        self.command, self.wait, self.poll_s = command, wait, poll_s
        self._lock = None

    def __enter__(self):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.out_dir / LOCK_NAME))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if not self.wait:
                raise ResultsError(f"{self.out_dir} is in use by another run ({_holder(self.out_dir)}); wait for it "
                                   f"to finish, pass --wait to queue behind it, or use another --out") from None
            import logging

            logging.getLogger(__name__).warning("%s is in use by %s; waiting (--wait)", self.out_dir,
                                                _holder(self.out_dir))
            self._lock.acquire(timeout=-1, poll_interval=self.poll_s)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        write_text_atomic(self.out_dir / (LOCK_NAME + ".json"), json.dumps(info))
        return self

    def __exit__(self, *exc):
        (self.out_dir / (LOCK_NAME + ".json")).unlink(missing_ok=True)
        self._lock.release()
        return False
