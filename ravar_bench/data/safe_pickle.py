"""Unpickling with an allow-list: plain containers, strings, numbers and numpy arrays, nothing else.

The RefAVA annotations are released as pickles, and ``pickle.load`` runs whatever a tampered file asks
for. The standard library's documented answer is a restricted ``Unpickler.find_class``; no maintained
package does exactly this allow-list, so it is written here.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

from ..errors import DataError

ALLOWED = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "str"), ("builtins", "int"),
    ("builtins", "float"), ("builtins", "bool"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "bytes"), ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class UnsafePickleError(DataError, pickle.UnpicklingError):
    pass


class UnreadablePickleError(DataError, pickle.UnpicklingError):
    """Truncated, empty or not a pickle at all; the message names the file."""


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, f, path: str):
        super().__init__(f)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in ALLOWED or (module == "numpy" and name.endswith("DType")):
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._path}: refusing to unpickle {module}.{name}; annotation pickles may hold only dicts, lists, "
            f"tuples, strings, numbers and numpy arrays (the file may be tampered with)")


def safe_load(path: str | Path):
    p = Path(path)
    data = p.read_bytes()
    try:
        return _AllowListUnpickler(io.BytesIO(data), str(p)).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # truncated / not a pickle
        raise UnreadablePickleError(f"{p}: not a readable pickle ({type(e).__name__}: {e})") from e
