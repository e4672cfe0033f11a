"""The suite's user-facing errors: a command-line front prints ``str(e)`` as one line and exits 2.

Raise these (never a bare KeyError/ValueError) for anything a user can fix: a bad name, option, config
key, file or data row. The message names the file, key and field involved.
"""
from __future__ import annotations


class RavarError(Exception):
    """Base of every error a user can fix; the CLI prints it as one line, exit code 2."""


class UsageError(RavarError):
    """A bad command-line / API argument: unknown method, config set, option or config key."""


class DataError(RavarError):
    """Bad input data: annotations, frames, detections; the message names file, key and field."""


class ResultsError(RavarError):
    """An output folder that cannot be used as asked (locked by another run, mixed provenance)."""
