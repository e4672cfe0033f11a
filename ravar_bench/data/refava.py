"""The RefAVA annotations as released: three pickles per split, joined BY KEY and validated.

    DIR/annotations/{split}_set_keyframe_crr_final.pkl     key -> list of boxes, [0] used (x1, y1, x2, y2 in [0, 1])
    DIR/annotations/{split}_set_label_crr_final.pkl        key -> list of AVA action ids (1..80)
    DIR/annotations/{split}_set_description_crr_final.pkl  key -> list of strings, [0] is the reference

key = "<video_id>___<timestamp>___<person_id>". The authors' loader zips the three dicts' values in
iteration order; we join by key. One policy for every bad row, a key that one of the files lacks included:
an error naming file, key and field, or with ``skip_invalid`` a skip counted in the :class:`LoadReport`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files.atomic import atomic_write
from .ava import NUM_CLASSES
from .safe_pickle import safe_load

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
KINDS = ("keyframe", "label", "description")
KEY_SEP = "___"


# A referring sentence of RefAVA is one or two clauses (tens of words); thousands of characters mean a
# corrupt row (e.g. a whole file pasted into one field), which a text encoder would silently truncate.
MAX_TEXT_CHARS = 2000


class AnnotationError(DataError, ValueError):
    """A bad annotation: the message names the file, the key and the field."""


class AnnotationFileMissing(DataError, FileNotFoundError):
    """An annotation file (or the annotations folder) is not where the layout says."""


@dataclasses.dataclass(frozen=True)
class Instance:
    key: str
    video_id: str
    timestamp: int
    person_id: str
    box: tuple[float, float, float, float]
    actions: tuple[int, ...]  # AVA ids 1..80
    text: str

    @property
    def clip_key(self) -> str:
        return f"{self.video_id}{KEY_SEP}{self.timestamp}"


@dataclasses.dataclass
class LoadReport:
    split: str
    loaded: int = 0
    missing: dict = dataclasses.field(default_factory=dict)  # kind -> keys absent from that file
    skipped: list = dataclasses.field(default_factory=list)  # (key, reason) of invalid rows skipped on request
    # field ('box' / 'text') -> keys of loaded instances whose row held several values: the first is used, as the
    # released loader does, and counted so the leaderboard's note says how many
    several: dict = dataclasses.field(default_factory=lambda: {"box": [], "text": []})

    def summary(self) -> str:
        miss = ", ".join(f"{len(v)} keys missing from the {k} file" for k, v in self.missing.items() if v)
        several = ", ".join(f"{len(v)} keys with several {f}es" if f == "box" else f"{len(v)} keys with several "
                            f"sentences" for f, v in self.several.items() if v)
        return (f"{self.split}: {self.loaded} instances" + (f"; {miss}" if miss else "")
                + (f"; {len(self.skipped)} invalid rows skipped" if self.skipped else "")
                + (f"; {several} (the first used)" if several else ""))


def annotation_path(root: str | Path, split: str, kind: str) -> Path:
    return Path(root) / "annotations" / f"{split}_set_{kind}_crr_final.pkl"


def parse_key(key: str, where: str) -> tuple[str, int, str]:
    parts = key.rsplit(KEY_SEP, 2) if isinstance(key, str) else []
    if len(parts) != 3 or not parts[0]:
        raise AnnotationError(f"{where}: key {key!r} is not '<video_id>___<timestamp>___<person_id>'")
    try:
        t = int(float(parts[1]))
    except ValueError:
        raise AnnotationError(f"{where}: key {key!r}: timestamp {parts[1]!r} is not a number") from None
    return parts[0], t, parts[2]


def count_of(value) -> int:
    """How many boxes / sentences a row holds (1 for a bare box or string): more than one is counted, not an error."""
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return len(value)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray, str, bytes)):
        return len(value)
    return 1


def _first(value, where: str, field: str):
    if isinstance(value, np.ndarray) and value.ndim == 2:
        value = list(value)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray, str, bytes)):
        return value[0]
    if isinstance(value, (list, tuple)) and not value:
        raise AnnotationError(f"{where}: field '{field}' is an empty list")
    return value


def validate_box(value, where: str) -> tuple[float, float, float, float]:
    box = _first(value, where, "box")
    try:
        b = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: field 'box' is not numeric: {box!r}") from None
    if len(b) != 4:
        raise AnnotationError(f"{where}: field 'box' needs 4 values x1, y1, x2, y2, got {len(b)}: {b}")
    if not all(math.isfinite(v) for v in b):
        raise AnnotationError(f"{where}: field 'box' has a non-finite value: {b}")
    if not all(0.0 <= v <= 1.0 for v in b):
        raise AnnotationError(f"{where}: field 'box' must be normalised to [0, 1], got {b}")
    if not (b[0] < b[2] and b[1] < b[3]):
        raise AnnotationError(f"{where}: field 'box' needs x1 < x2 and y1 < y2, got {b}")
    return tuple(b)


def validate_actions(value, where: str) -> tuple[int, ...]:
    vals = np.asarray(value).reshape(-1).tolist() if not isinstance(value, (list, tuple)) else list(value)
    if not vals:
        raise AnnotationError(f"{where}: field 'actions' is empty; every instance needs at least one action id")
    out = []
    for v in vals:
        # finite first: int() of NaN / inf raises ValueError / OverflowError, a traceback instead of this message
        if (isinstance(v, bool) or not isinstance(v, (int, np.integer, float, np.floating))
                or not math.isfinite(float(v)) or float(v) != int(v)):
            raise AnnotationError(f"{where}: field 'actions' holds {v!r}, not an integer action id")
        if not 1 <= int(v) <= NUM_CLASSES:
            raise AnnotationError(f"{where}: field 'actions' holds unknown AVA action id {int(v)} (valid: 1..80)")
        out.append(int(v))
    return tuple(sorted(set(out)))


def validate_text(value, where: str) -> str:
    text = _first(value, where, "text")
    if isinstance(text, bytes):  # Python 2 pickles may hold byte strings; only UTF-8 is a sentence
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise AnnotationError(f"{where}: field 'text' is bytes that are not valid UTF-8 (byte "
                                  f"{text[e.start]:#04x} at position {e.start}: {text[max(0, e.start - 20):e.start + 20]!r})"
                                  ) from None
    if not isinstance(text, str):
        raise AnnotationError(f"{where}: field 'text' is {type(text).__name__}, not a string")
    if not text.strip():
        raise AnnotationError(f"{where}: field 'text' is empty; every instance needs a referring sentence")
    if len(text) > MAX_TEXT_CHARS:
        raise AnnotationError(f"{where}: field 'text' is {len(text):,} characters long (at most {MAX_TEXT_CHARS:,} "
                              f"expected of a referring sentence): {text[:60]!r}...")
    return text.strip()


def build_instance(key: str, box, actions, text, where: str) -> Instance:
    vid, t, pid = parse_key(key, where)
    return Instance(key, vid, t, pid, validate_box(box, where), validate_actions(actions, where),
                    validate_text(text, where))


def load_split(root: str | Path, split: str, skip_invalid: bool = False) -> tuple[list[Instance], LoadReport]:
    """Instances of ``split`` in sorted key order, and a report of what was missing or skipped.

    Invalid rows, and keys absent from any of the three files, raise :class:`AnnotationError` (naming file,
    key and field) unless ``skip_invalid``, which counts them in the report instead (``skipped``; the
    absent keys also in ``missing``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    paths = {k: annotation_path(root, split, k) for k in KINDS}
    jl = jsonl_path(root, split)
    if jl.is_file() and not any(p.is_file() for p in paths.values()):
        return load_jsonl(jl, split, skip_invalid=skip_invalid)
    dicts = {}
    for kind, p in paths.items():
        if not p.is_file():
            raise AnnotationFileMissing(f"RefAVA annotation file missing: {p}")
        d = safe_load(p)
        if not isinstance(d, dict):
            raise AnnotationError(f"{p}: expected a dict key -> value, got {type(d).__name__}")
        dicts[kind] = d
    keys = set().union(*(d.keys() for d in dicts.values()))
    report = LoadReport(split)
    for kind, d in dicts.items():
        absent = sorted(keys - d.keys(), key=str)
        report.missing[kind] = absent
        if absent and not skip_invalid:
            other = next(k for k in KINDS if k != kind and absent[0] in dicts[k])
            raise AnnotationError(f"{paths[kind]}: key {absent[0]!r} is missing (it is in {paths[other].name}); "
                                  f"{len(absent)} key(s) in all. Pass --skip-invalid to count and skip such rows")
        noted = {k for k, _ in report.skipped}
        report.skipped += [(key, f"{paths[kind]}: key {key!r} is missing") for key in absent if key not in noted]
    common = sorted((k for k in keys if all(k in d for d in dicts.values())), key=str)
    out = []
    for key in common:
        where = f"{paths['keyframe'].parent}/{split}_set_*_crr_final.pkl, key {key!r}"
        try:
            vid, t, pid = parse_key(key, where)
            box = validate_box(dicts["keyframe"][key], f"{paths['keyframe']}, key {key!r}")
            acts = validate_actions(dicts["label"][key], f"{paths['label']}, key {key!r}")
            text = validate_text(dicts["description"][key], f"{paths['description']}, key {key!r}")
        except AnnotationError as e:
            if not skip_invalid:
                raise
            report.skipped.append((key, str(e)))
            continue
        _note_several(report, key, dicts["keyframe"][key], dicts["description"][key])
        out.append(Instance(key, vid, t, pid, box, acts, text))
    report.loaded = len(out)
    if report.skipped:
        log.warning("%s: skipped %d invalid rows (first: %s)", split, len(report.skipped), report.skipped[0][1])
    return out, report


def _note_several(report: LoadReport, key: str, box, text) -> None:
    for field, value in (("box", box), ("text", text)):
        if count_of(value) > 1:
            report.several[field].append(key)


def jsonl_path(root: str | Path, split: str) -> Path:
    """The plain format written by tools/convert_refava.py: one JSON object per line,
    {"key", "video_id", "timestamp", "person_id", "box": [x1, y1, x2, y2], "actions": [ids], "text"}."""
    return Path(root) / "annotations" / f"{split}.jsonl"


JSONL_FIELDS = ("key", "video_id", "timestamp", "person_id", "box", "actions", "text")


def load_jsonl(path: str | Path, split: str, skip_invalid: bool = False) -> tuple[list[Instance], LoadReport]:
    """Read DIR/annotations/{split}.jsonl with the same validation as the pickles (errors name file, line,
    key and field). Used by :func:`load_split` when the JSONL exists and the pickles do not."""
    import json

    path = Path(path)
    report = LoadReport(split)
    report.missing = {k: [] for k in KINDS}
    out, seen = {}, set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            key = None
            try:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise AnnotationError(f"{where}: not valid JSON ({e})") from None
                if not isinstance(row, dict):
                    raise AnnotationError(f"{where}: expected a JSON object, got {type(row).__name__}")
                key = row.get("key")
                where = f"{where}, key {key!r}"
                absent = [k for k in JSONL_FIELDS if k not in row]
                if absent:
                    raise AnnotationError(f"{where}: field '{absent[0]}' is missing (fields: {', '.join(JSONL_FIELDS)})")
                vid, t, pid = parse_key(key, where)
                for field, want in (("video_id", vid), ("timestamp", t), ("person_id", pid)):
                    got = row[field]
                    if (int(got) if field == "timestamp" and isinstance(got, (int, float)) else got) != want:
                        raise AnnotationError(f"{where}: field '{field}' is {got!r} but the key says {want!r}")
                if key in seen:
                    raise AnnotationError(f"{where}: field 'key' repeats an earlier line")
                inst = Instance(key, vid, t, pid, validate_box(row["box"], where), validate_actions(row["actions"], where),
                                validate_text(row["text"], where))
            except AnnotationError as e:
                if not skip_invalid:
                    raise
                report.skipped.append((key if isinstance(key, str) else f"line {lineno}", str(e)))
                continue
            seen.add(key)
            _note_several(report, key, row["box"], row["text"])
            out[key] = inst
    insts = [out[k] for k in sorted(out)]
    report.loaded = len(insts)
    if report.skipped:
        log.warning("%s: skipped %d invalid rows (first: %s)", split, len(report.skipped), report.skipped[0][1])
    return insts, report


def write_split(root: str | Path, split: str, instances: list[Instance]) -> None:
    """Write ``instances`` in the released on-disk format (used by the synthetic generator and tests)."""
    import pickle

    ann = Path(root) / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    payload = {
        "keyframe": {i.key: [list(i.box)] for i in instances},
        "label": {i.key: list(i.actions) for i in instances},
        "description": {i.key: [i.text] for i in instances},
    }
    for kind, d in payload.items():
        blob = pickle.dumps(d, protocol=4)
        atomic_write(annotation_path(root, split, kind), lambda tmp: Path(tmp).write_bytes(blob))
