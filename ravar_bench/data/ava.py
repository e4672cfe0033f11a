"""The 80 AVA v2.2 action classes (ids 1..80), their names and groups, read from package data."""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

GROUPS = {"PERSON_MOVEMENT": "PM", "OBJECT_MANIPULATION": "OM", "PERSON_INTERACTION": "PI"}
NUM_CLASSES = 80


@lru_cache(maxsize=1)
def ava_classes() -> list[dict]:
    """[{id, name, group}] in id order; group is the short name PM / OM / PI."""
    text = resources.files(__package__).joinpath("ava_actions_v2.2.csv").read_text()
    rows = [dict(id=int(r["action_id"]), name=r["name"], group=GROUPS[r["group"]]) for r in csv.DictReader(text.splitlines())]
    if [r["id"] for r in rows] != list(range(1, NUM_CLASSES + 1)):
        raise RuntimeError("ava_actions_v2.2.csv must list ids 1..80 in order")
    return rows


def class_names() -> list[str]:
    return [r["name"] for r in ava_classes()]


def group_columns() -> dict[str, list[int]]:
    """Group short name -> 0-based column indices of the 80-way score matrix."""
    out: dict[str, list[int]] = {"PM": [], "OM": [], "PI": []}
    for r in ava_classes():
        out[r["group"]].append(r["id"] - 1)
    return out


def name_to_id() -> dict[str, int]:
    return {r["name"]: r["id"] for r in ava_classes()}
