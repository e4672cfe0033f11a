"""RefAVA-Synth: a seeded generator that writes EXACTLY the released on-disk layout.

    ROOT/annotations/{split}_set_{keyframe,label,description}_crr_final.pkl
    ROOT/frames/<video_id>/image_%06d.jpg          (AVA indexing: (t - 900) * 30 + 1)
    ROOT/detections/{split}_detections.json        (a simulated detector: noise, misses, false positives)
    ROOT/meta.json                                 (generator version, sizes, seed; written last)
    ROOT/attributes.json, ROOT/factors.json        (not in the released layout: referring attributes and
                                                    the generator's factors per instance; no loader reads them)

so the real loader is what reads it. A "movie" is a scene of 1-5 rendered people (most 2-3) with
distinct shirt colours (except that in a stated share of the clips two people dress alike), hair or hat,
size and position; each clip is one key second of a movie and all its people are annotated. Each person
performs 1-3 simultaneous atomic actions that are visible as motion or props across the 3-second window
(a pose or movement, optionally an object action, optionally an interaction with a partner). Referring
texts come from templates over appearance, position or both (in stated shares) and never name the action.
Train, val and test movies come from disjoint seed streams.

The generator was written from the action list and rendering rules alone and is not tuned by
looking at which method wins. Bump ``GENERATOR_VERSION`` on any change: caches key on it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..files.atomic import atomic_write
from .detections import write_detections
from .frames import FrameLayout
from .refava import Instance, write_split

GENERATOR_VERSION = 4  # 3: factors, shared colours, reference types; 4: people 1.3x, thicker limbs, larger props
FACTORS_FILE = "factors.json"
W, H = 160, 120

COLOURS = {
    "red": (200, 30, 30), "blue": (30, 60, 200), "green": (30, 150, 50), "yellow": (230, 210, 40),
    "white": (235, 235, 235), "black": (25, 25, 25), "orange": (240, 130, 20), "purple": (120, 40, 160),
    "pink": (240, 120, 170), "grey": (130, 130, 130), "brown": (110, 70, 30),
}
TROUSERS = {"blue": (40, 60, 120), "black": (20, 20, 20), "grey": (110, 110, 110), "brown": (90, 60, 30),
            "white": (220, 220, 210)}
HAIR = {"black": (15, 15, 15), "blonde": (225, 195, 110), "brown": (100, 60, 25), "grey": (170, 170, 170)}
SKIN = [(240, 200, 170), (200, 150, 110), (140, 95, 60), (90, 60, 40)]

# AVA ids used (see ava_actions_v2.2.csv)
POSE = {"stand": 12, "walk": 14, "run": 10, "sit": 11, "bend": 1, "lie": 8, "jump": 7, "crouch": 3, "fall": 5}
POSE_WEIGHTS = {"stand": 6, "walk": 3, "sit": 2.5, "run": 1, "bend": 1, "lie": 0.8, "jump": 0.8, "crouch": 1, "fall": 0.6}
OBJECT = {"carry": 17, "phone": 15, "drink": 27, "text_phone": 57}
SOLO = {"wave": 69}
PAIR = {"talk": (79, 74), "handshake": (68, 68), "hug": (70, 70), "fight": (64, 64), "watch": (80, None)}
WATCH = 80

# Referring templates by reference type: "appearance" (clothing, hair, hat, noun), "position" (where the
# person stands or how tall they are relative to the others: no clothing word), "both". HELDOUT templates
# are never used by the generator: they are kept for the test-time rephrasing suite (paper Table 4a), so a
# rephrased reference is a wording never trained on; each names the shirt AND the position, so a rephrasing
# still singles out a person whose shirt colour another person shares.
TEMPLATES_BY_TYPE = {
    "appearance": [
        "the {noun} in the {shirt} shirt",
        "the {noun} wearing a {shirt} top and {trousers} trousers",
        "the {noun} with {headwear} and a {shirt} shirt",
    ],
    "position": [
        "the person {pos}",
        "the one {pos}",
        "{pos_cap}, that person",
        "the {size} person",
    ],
    "both": [
        "the {noun} {pos}, dressed in {shirt}",
        "a {noun} in {shirt} clothes {pos}",
        "the {size} {noun} in {shirt}",
        "the {noun} with {headwear}, {pos}",
        "{pos_cap}, the {noun} in {trousers} trousers and a {shirt} top",
    ],
}
TEMPLATES = [t for ts in TEMPLATES_BY_TYPE.values() for t in ts]
HELDOUT_TEMPLATES = [
    "the {shirt}-shirted {noun} {pos}",
    "look at the {noun} {pos} whose shirt is {shirt}",
    "that {noun} {pos} with the {shirt} top",
]

# The factors the diagnostic breakdowns report, drawn in these stated proportions (checked by
# tests/test_synth_factors.py) and recorded per instance in ROOT/factors.json, which no loader reads:
# - SHARED_COLOUR_SHARE of the clips with >= 2 people have two people in the same shirt colour (the
#   others have distinct shirts), so the sentence's position or size word is needed to tell them apart;
# - the reference type is drawn from REF_TYPE_WEIGHTS; a referent whose shirt colour another person
#   shares never gets an appearance-only reference (it is drawn from the other two types, renormalised),
#   so every sentence singles out its person;
# - each action label has a type: "static" (a pose one frame shows), "motion" (needs several frames),
#   "object" or "interaction" (see action_types()).
SHARED_COLOUR_SHARE = 0.4
REF_TYPE_WEIGHTS = {"appearance": 0.4, "position": 0.2, "both": 0.4}
MOTION_POSES = ("walk", "run", "jump", "fall")
ACTION_TYPE_NAMES = ("static", "motion", "object", "interaction")


def action_types() -> dict[int, str]:
    """AVA id -> action type, for every action the generator can assign."""
    out = {aid: ("motion" if name in MOTION_POSES else "static") for name, aid in POSE.items()}
    out.update({aid: "object" for aid in OBJECT.values()})
    out.update({aid: "interaction" for aid in SOLO.values()})
    out.update({aid: "interaction" for pair in PAIR.values() for aid in pair if aid is not None})
    out[WATCH] = "interaction"
    return out


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    train_movies: int = 48
    val_movies: int = 12
    # 48 test movies (~780 instances), 4x the val split: at 12 (~200) a method's 95% test-mAP interval was +-3.9
    # points against 1-5 points between methods; the leaderboard ranks on test (benchmarks/default_levers.md, e10)
    test_movies: int = 48
    clips_per_movie: int = 6
    quality: int = 85

    def digest(self) -> str:
        blob = json.dumps({**dataclasses.asdict(self), "v": GENERATOR_VERSION}, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


@dataclasses.dataclass
class Person:
    pid: int
    x: float  # anchor (feet) in pixels
    depth: float  # 0 = back, 1 = front; sets scale and ground line
    height: float
    noun: str
    shirt: str
    trousers: str
    hair: str | None
    hat: str | None
    skin: tuple
    facing: int = 1
    pose: str = "stand"
    obj: str | None = None
    inter: str | None = None  # 'wave' | pair action | 'watch' | 'listen'
    partner: int | None = None
    phase: float = 0.0
    actions: list = dataclasses.field(default_factory=list)

    @property
    def ground(self) -> float:
        return 70 + 42 * self.depth


def _rot(x, y, ang):
    c, s = math.cos(ang), math.sin(ang)
    return x * c - y * s, x * s + y * c


# People are drawn 1.3x the v3 size: at the tiny configs' 64 px a v3 adult was ~20 px tall and 5 px wide,
# too few pixels for a pose; the ground line (70..112 px) still leaves the head inside the 120 px frame.
PERSON_SCALE = 1.3


class _Renderer:
    """Draws people as thick-stroke skeletons; one call per frame offset f (key frame f=0)."""

    def __init__(self, rng: random.Random, people: list[Person], background: dict):
        self.rng, self.people, self.bg = rng, people, background

    def skeleton(self, p: Person, f: int) -> dict:
        """Joint positions in the person's frame (x right along facing, y up), height units, + a global shift."""
        d, t = p.facing, f + p.phase
        J = dict(foot_l=(-0.08, 0.0), foot_r=(0.08, 0.0), knee_l=(-0.05, 0.25), knee_r=(0.05, 0.25), hip=(0.0, 0.5),
                 neck=(0.0, 0.82), head=(0.0, 0.92), hand_l=(-0.12, 0.52), hand_r=(0.12, 0.52),
                 elbow_l=(-0.1, 0.68), elbow_r=(0.1, 0.68))
        dx = dy = ang = 0.0
        pose = p.pose
        if pose == "walk":
            s = math.sin(2 * math.pi * t / 15)
            J.update(foot_l=(-0.12 * s, 0.0), foot_r=(0.12 * s, 0.0), knee_l=(-0.06 * s, 0.25), knee_r=(0.06 * s, 0.25),
                     hand_l=(0.1 * s, 0.52), hand_r=(-0.1 * s, 0.52))
            dx = 0.5 * f * d
        elif pose == "run":
            s = math.sin(2 * math.pi * t / 8)
            J.update(foot_l=(-0.22 * s, 0.02), foot_r=(0.22 * s, 0.02), knee_l=(-0.12 * s + 0.05, 0.28),
                     knee_r=(0.12 * s + 0.05, 0.28), hand_l=(0.2 * s, 0.6), hand_r=(-0.2 * s, 0.6),
                     neck=(0.08, 0.8), head=(0.11, 0.9))
            dx = 1.6 * f * d
        elif pose == "jump":
            dy = 0.18 * abs(math.sin(math.pi * t / 18))
            J.update(hand_l=(-0.15, 1.0), hand_r=(0.15, 1.0), elbow_l=(-0.14, 0.88), elbow_r=(0.14, 0.88))
        elif pose == "sit":
            J.update(hip=(0.0, 0.3), knee_l=(0.2, 0.3), knee_r=(0.22, 0.3), foot_l=(0.2, 0.0), foot_r=(0.24, 0.0),
                     neck=(0.0, 0.62), head=(0.0, 0.72), hand_l=(0.1, 0.32), hand_r=(0.14, 0.33),
                     elbow_l=(0.02, 0.45), elbow_r=(0.05, 0.45))
        elif pose == "bend":
            a = math.radians(70)
            J.update(neck=(0.32 * math.sin(a), 0.5 + 0.32 * math.cos(a)), head=(0.42 * math.sin(a), 0.5 + 0.42 * math.cos(a)),
                     hand_l=(0.3, 0.25), hand_r=(0.34, 0.22), elbow_l=(0.24, 0.45), elbow_r=(0.27, 0.44))
        elif pose == "crouch":
            J.update(hip=(0.0, 0.25), knee_l=(0.12, 0.22), knee_r=(0.15, 0.2), neck=(0.03, 0.55), head=(0.05, 0.65),
                     hand_l=(0.14, 0.3), hand_r=(0.17, 0.3), elbow_l=(0.08, 0.42), elbow_r=(0.1, 0.42))
        elif pose == "lie":
            ang = -math.pi / 2
        elif pose == "fall":
            prog = min(1.0, max(0.0, (f + 30) / 60))
            ang = -(math.pi / 2) * (prog * prog * (3 - 2 * prog))

        # the object / interaction arm overrides the right (facing-side) arm
        o = p.obj
        if o == "phone":
            J.update(hand_r=(0.06, 0.9), elbow_r=(0.12, 0.74))
        elif o == "text_phone":
            J.update(hand_r=(0.12, 0.62), hand_l=(0.1, 0.6), elbow_r=(0.08, 0.66), elbow_l=(0.02, 0.64))
            hx, hy = J["head"]
            J["head"] = (hx + 0.04, hy - 0.02)
        elif o == "drink":
            lift = 0.5 + 0.5 * math.sin(2 * math.pi * t / 30)
            J.update(hand_r=(0.07, 0.6 + 0.28 * lift), elbow_r=(0.13, 0.66))
        elif o == "carry":
            J.update(hand_r=(0.14, 0.5), hand_l=(0.1, 0.5), elbow_r=(0.12, 0.62), elbow_l=(0.06, 0.62))
        i = p.inter
        if i == "wave":
            w = math.sin(2 * math.pi * t / 10)
            J.update(hand_l=(-0.16 + 0.07 * w, 1.05), elbow_l=(-0.15, 0.9))
        elif i == "handshake":
            J.update(hand_r=(0.24, 0.55 + 0.03 * math.sin(2 * math.pi * t / 6)), elbow_r=(0.14, 0.6))
        elif i == "hug":
            J.update(hand_r=(0.2, 0.72), hand_l=(0.16, 0.7), elbow_r=(0.12, 0.74), elbow_l=(0.08, 0.72))
        elif i == "fight":
            jab = 1.0 if math.sin(2 * math.pi * t / 6) > 0 else 0.0
            J.update(hand_r=(0.1 + 0.18 * jab, 0.76), elbow_r=(0.1 + 0.05 * jab, 0.7))
        elif i == "talk":
            hx, hy = J["head"]
            J["head"] = (hx, hy + 0.02 * math.sin(2 * math.pi * t / 8))
        # mirror to facing, rotate (lie / fall) about the feet, scale to pixels
        out = {}
        for k, (jx, jy) in J.items():
            jx *= d
            if ang:
                jx, jy = _rot(jx, jy, ang * d)
            out[k] = (p.x + dx + jx * p.height, p.ground - (jy + dy) * p.height)
        out["_ang"] = ang
        return out

    def person_box(self, p: Person, f: int) -> tuple[float, float, float, float]:
        J = self.skeleton(p, f)
        pts = np.array([v for k, v in J.items() if not k.startswith("_")])
        r = 0.075 * p.height
        x1, y1 = pts[:, 0].min() - r, pts[:, 1].min() - r * (1.6 if p.hat else 1.0)
        x2, y2 = pts[:, 0].max() + r, pts[:, 1].max() + 0.02 * p.height
        return (float(np.clip(x1 / W, 0, 1)), float(np.clip(y1 / H, 0, 1)), float(np.clip(x2 / W, 0, 1)),
                float(np.clip(y2 / H, 0, 1)))

    def prop_boxes(self, p: Person, f: int) -> list[tuple[str, tuple]]:
        J = self.skeleton(p, f)
        s = p.height
        hx, hy = J["hand_r"]
        if p.obj in ("phone", "text_phone"):
            return [("cell phone", (hx - 0.045 * s, hy - 0.075 * s, hx + 0.045 * s, hy + 0.075 * s))]
        if p.obj == "drink":
            return [("cup", (hx - 0.05 * s, hy - 0.09 * s, hx + 0.05 * s, hy + 0.045 * s))]
        if p.obj == "carry":
            return [("suitcase", (hx - 0.06 * s, hy - 0.08 * s, hx + 0.2 * s * p.facing / abs(p.facing), hy + 0.15 * s))]
        return []

    def draw(self, f: int) -> Image.Image:
        img = Image.fromarray(self.bg["canvas"].copy())
        dr = ImageDraw.Draw(img)
        for p in sorted(self.people, key=lambda q: q.depth):
            J = self.skeleton(p, f)
            # Limbs and props are drawn thick enough to stay >= ~1.5 px after the tiny configs' 64 px resize
            # (160 x 120 -> 64 x 64 shrinks x by 0.4): a 2 px line there is sub-pixel and the pose unreadable.
            lw = max(3, round(0.09 * p.height))
            sh, tr = COLOURS[p.shirt], TROUSERS[p.trousers]
            if p.pose == "sit":
                hx, hy = J["hip"]
                dr.rectangle([hx - 0.1 * p.height, hy, hx + 0.25 * p.height * p.facing / 1, hy + 0.05 * p.height],
                             fill=(120, 80, 40)) if p.facing > 0 else dr.rectangle(
                    [hx - 0.25 * p.height, hy, hx + 0.1 * p.height, hy + 0.05 * p.height], fill=(120, 80, 40))
            for a, b in (("hip", "knee_l"), ("knee_l", "foot_l"), ("hip", "knee_r"), ("knee_r", "foot_r")):
                dr.line([J[a], J[b]], fill=tr, width=lw)
            dr.line([J["hip"], J["neck"]], fill=sh, width=int(lw * 1.8))
            for a, b in (("neck", "elbow_l"), ("elbow_l", "hand_l"), ("neck", "elbow_r"), ("elbow_r", "hand_r")):
                dr.line([J[a], J[b]], fill=sh, width=max(2, lw - 1))
            for h in ("hand_l", "hand_r"):
                x, y = J[h]
                dr.ellipse([x - lw / 2, y - lw / 2, x + lw / 2, y + lw / 2], fill=p.skin)
            x, y = J["head"]
            r = 0.075 * p.height
            if p.hair and p.noun in ("woman", "girl"):  # long hair behind the head
                dr.rectangle([x - r * 1.05, y - r, x + r * 1.05, y + r * 1.6], fill=HAIR[p.hair])
            dr.ellipse([x - r, y - r, x + r, y + r], fill=p.skin)
            if p.hair:
                dr.chord([x - r, y - r, x + r, y + r], 180, 360, fill=HAIR[p.hair])
            if p.hat:
                dr.rectangle([x - r * 1.1, y - r * 1.6, x + r * 1.1, y - r * 0.5], fill=COLOURS[p.hat])
            ex = x + 0.45 * r * p.facing  # the eye shows which way the person faces
            dr.ellipse([ex - 1, y - 1, ex + 1, y + 1], fill=(0, 0, 0))
            if p.inter == "talk" and (f // 4) % 2 == 0:
                dr.line([(ex - p.facing, y + r * 0.45), (ex + p.facing * 1.5, y + r * 0.45)], fill=(90, 0, 0), width=1)
            for name, (x1, y1, x2, y2) in self.prop_boxes(p, f):
                col = {"cell phone": (20, 20, 30), "cup": (250, 250, 250), "suitcase": (140, 90, 40)}[name]
                dr.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], fill=col, outline=(0, 0, 0))
        return img


def _background(rng: random.Random) -> dict:
    top = np.array([rng.randint(120, 220) for _ in range(3)], dtype=np.float32)
    floor = np.array([rng.randint(60, 160) for _ in range(3)], dtype=np.float32)
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    horizon = 0.5
    canvas = np.where(y < horizon, top * (0.85 + 0.15 * y / horizon), floor * (0.9 + 0.1 * y))
    canvas = np.broadcast_to(canvas, (H, W, 3)).copy()
    nrs = np.random.default_rng(rng.randrange(2 ** 32))
    canvas += nrs.normal(0, 4, canvas.shape).astype(np.float32)
    objects = []
    img = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    dr = ImageDraw.Draw(img)
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(["tv", "potted plant", "chair", "clock"])
        x, yy = rng.uniform(5, W - 30), rng.uniform(10, 45)
        if kind == "tv":
            box = (x, yy, x + 26, yy + 18)
            dr.rectangle(box, fill=(30, 30, 40), outline=(80, 80, 80))
        elif kind == "potted plant":
            box = (x, yy + 10, x + 12, yy + 34)
            dr.rectangle((x + 2, yy + 24, x + 10, yy + 34), fill=(150, 80, 40))
            dr.ellipse((x, yy + 10, x + 12, yy + 26), fill=(40, 120, 40))
        elif kind == "chair":
            box = (x, yy + 20, x + 14, yy + 40)
            dr.rectangle((x, yy + 20, x + 3, yy + 40), fill=(100, 60, 30))
            dr.rectangle((x, yy + 30, x + 14, yy + 33), fill=(100, 60, 30))
        else:
            box = (x, yy, x + 9, yy + 9)
            dr.ellipse(box, fill=(240, 240, 240), outline=(0, 0, 0))
        objects.append((kind, box))
    return {"canvas": np.asarray(img), "objects": objects}


def _make_people(rng: random.Random) -> list[Person]:
    n = rng.choices([1, 2, 3, 4, 5], weights=[1.5, 3.5, 3, 1.5, 0.7])[0]
    shirts = rng.sample(sorted(COLOURS), n)  # distinct shirt colours within a scene, except:
    if n >= 2 and rng.random() < SHARED_COLOUR_SHARE:  # two people dressed alike (see SHARED_COLOUR_SHARE)
        a, b = rng.sample(range(n), 2)
        shirts[b] = shirts[a]
    slots = sorted(rng.sample(range(8), n))
    people = []
    for k in range(n):
        noun = rng.choices(["man", "woman", "boy", "girl", "old man", "old woman"], weights=[4, 4, 1, 1, 0.7, 0.7])[0]
        child = noun in ("boy", "girl")
        depth = rng.uniform(0.1, 1.0)
        height = PERSON_SCALE * (36 if child else rng.uniform(50, 62)) * (0.75 + 0.35 * depth)
        hat = rng.choice([None, None, None, "red", "blue", "black", "white", "yellow"])
        hair = None if (hat or (noun == "old man" and rng.random() < 0.5)) else (
            "grey" if noun.startswith("old") else rng.choice(["black", "blonde", "brown"]))
        x = 12 + (W - 24) * (slots[k] + rng.uniform(0.2, 0.8)) / 8
        people.append(Person(pid=k + 1, x=x, depth=depth, height=height, noun=noun, shirt=shirts[k],
                             trousers=rng.choice(sorted(TROUSERS)), hair=hair, hat=hat, skin=rng.choice(SKIN),
                             facing=rng.choice([-1, 1]), phase=rng.uniform(0, 30)))
    return people


def _assign_actions(rng: random.Random, people: list[Person]) -> None:
    for p in people:
        p.pose = rng.choices(list(POSE_WEIGHTS), weights=list(POSE_WEIGHTS.values()))[0]
    free = [p for p in people]
    rng.shuffle(free)
    # pair interactions between neighbours
    by_x = sorted(people, key=lambda q: q.x)
    for a, b in zip(by_x, by_x[1:]):
        if a.inter or b.inter or rng.random() > 0.55:
            continue
        kind = rng.choices(["talk", "watch", "handshake", "hug", "fight"], weights=[4, 2, 1, 1, 0.8])[0]
        a.facing, b.facing = 1, -1
        if kind in ("handshake", "hug", "fight"):
            a.pose = b.pose = "stand"
            gap = {"handshake": 0.42, "hug": 0.26, "fight": 0.4}[kind] * (a.height + b.height) / 2
            mid = (a.x + b.x) / 2
            a.x, b.x = mid - gap / 2, mid + gap / 2
            b.depth = a.depth
            b.height = a.height * rng.uniform(0.9, 1.05)
            a.inter = b.inter = kind
        elif kind == "talk":
            if a.pose in ("lie", "fall", "run", "jump"):
                a.pose = "stand"
            a.inter, b.inter = "talk", "listen"
        else:
            a.inter = "watch"
        a.partner, b.partner = b.pid, a.pid
    for p in people:
        if p.inter is None and rng.random() < 0.12 and p.pose in ("stand", "walk", "sit"):
            p.inter = "wave"
        if p.pose in ("stand", "walk", "sit") and p.inter not in ("handshake", "hug", "fight") and rng.random() < 0.4:
            p.obj = rng.choice(sorted(OBJECT))
    for p in people:
        acts = [POSE[p.pose]]
        if p.obj:
            acts.append(OBJECT[p.obj])
        if p.inter in ("talk", "handshake", "hug", "fight"):
            acts.append(PAIR[p.inter][0])
        elif p.inter == "listen":
            acts.append(74)
        elif p.inter == "watch":
            acts.append(WATCH)
        elif p.inter == "wave":
            acts.append(SOLO["wave"])
        p.actions = sorted(set(acts))[:3]


def _position_phrase(p: Person, people: list[Person]) -> str:
    order = sorted(people, key=lambda q: q.x)
    n, k = len(order), order.index(p)
    if n == 1:
        return ("in the scene", "in the frame")[p.pid % 2]
    if k == 0:
        return "on the left"
    if k == n - 1:
        return "on the right"
    if n == 3 and k == 1:
        return "in the middle"
    return f"second from the {'left' if k == 1 else 'right'}" if (k == 1 or k == n - 2) else "in the middle"


def reference_fields(p: Person, people: list[Person]) -> dict:
    pos = _position_phrase(p, people)
    heights = sorted(q.height for q in people)
    size = "tall" if p.height == heights[-1] and len(people) > 1 else ("short" if p.height == heights[0] and len(people) > 1 else "")
    headwear = f"a {p.hat} hat" if p.hat else (f"{p.hair} hair" if p.hair else "no hair")
    return dict(noun=p.noun, shirt=p.shirt, trousers=p.trousers, pos=pos, pos_cap=pos[0].upper() + pos[1:],
                size=size, headwear=headwear)


def _reference(rng: random.Random, fields: dict, templates=TEMPLATES) -> str:
    size = fields["size"]
    usable = [t for t in templates if "{size}" not in t or size]
    text = rng.choice(usable).format(**fields)
    return " ".join(text.split())


def shares_colour(p: Person, people: list[Person]) -> bool:
    return any(q is not p and q.shirt == p.shirt for q in people)


def _ref_type(rng: random.Random, shared: bool) -> str:
    types = [t for t in REF_TYPE_WEIGHTS if not (shared and t == "appearance")]
    return rng.choices(types, weights=[REF_TYPE_WEIGHTS[t] for t in types])[0]


def _detections(rng: random.Random, rend: _Renderer, people: list[Person], bg: dict) -> list:
    dets = []
    for p in people:
        if rng.random() < 0.08:
            continue  # missed person
        x1, y1, x2, y2 = rend.person_box(p, 0)
        w, h = x2 - x1, y2 - y1
        j = [rng.gauss(0, 0.04) for _ in range(4)]
        box = [x1 + j[0] * w, y1 + j[1] * h, x2 + j[2] * w, y2 + j[3] * h]
        dets.append(box + [rng.uniform(0.65, 0.99), "person"])
        for name, (a, b, c, d) in rend.prop_boxes(p, 0):
            if rng.random() < 0.7:
                dets.append([min(a, c) / W, min(b, d) / H, max(a, c) / W, max(b, d) / H, rng.uniform(0.4, 0.9), name])
    for name, (a, b, c, d) in bg["objects"]:
        if rng.random() < 0.8:
            dets.append([a / W, b / H, c / W, d / H, rng.uniform(0.5, 0.95), name])
    for _ in range(rng.choice([0, 0, 1, 2])):  # false positives
        x, y = rng.uniform(0, 0.8), rng.uniform(0, 0.8)
        dets.append([x, y, x + rng.uniform(0.05, 0.2), y + rng.uniform(0.05, 0.2), rng.uniform(0.3, 0.6),
                     rng.choice(["person", "chair", "handbag", "bottle", "dog"])])
    out = []
    for d in dets:
        b = [min(max(v, 0.0), 1.0) for v in d[:4]]
        if b[2] - b[0] > 1e-3 and b[3] - b[1] > 1e-3:
            out.append([round(v, 4) for v in b] + [round(d[4], 3), d[5]])
    return sorted(out, key=lambda r: -r[4])


def _write_movie(root: Path, split: str, movie_idx: int, cfg: SynthConfig, layout: FrameLayout):
    seed_stream = {"train": 1, "val": 2, "test": 3}[split]
    rng = random.Random(f"{cfg.seed}-{seed_stream}-{movie_idx}")
    video_id = f"synth_{split}_{movie_idx:03d}"
    instances, dets, attrs, factors = [], {}, {}, {}
    kinds = action_types()
    fdir = root / "frames" / video_id
    fdir.mkdir(parents=True, exist_ok=True)
    seconds = sorted(rng.sample(range(902, 1799, 4), cfg.clips_per_movie))
    for t in seconds:
        bg = _background(rng)
        people = _make_people(rng)
        _assign_actions(rng, people)
        rend = _Renderer(rng, people, bg)
        key_idx = layout.key_index(t)
        half = layout.window // 2
        for idx in range(key_idx - half, key_idx + layout.window - half):
            img = rend.draw(idx - key_idx)
            atomic_write(layout.path(root / "frames", video_id, idx),
                         lambda tmp: img.save(tmp, format="JPEG", quality=cfg.quality), tmp=fdir / f".tmp_{idx}.jpg")
        clip_dets = _detections(rng, rend, people, bg)
        for p in people:
            key = f"{video_id}___{t}___{p.pid}"
            fields = reference_fields(p, people)
            shared = shares_colour(p, people)
            ref_type = _ref_type(rng, shared)
            instances.append(Instance(key, video_id, t, str(p.pid), rend.person_box(p, 0), tuple(p.actions),
                                      _reference(rng, fields, TEMPLATES_BY_TYPE[ref_type])))
            dets[key] = clip_dets
            attrs[key] = fields
            factors[key] = {"n_people": len(people), "shared_colour": shared, "ref_type": ref_type,
                            "action_types": [kinds[a] for a in p.actions]}
    return instances, dets, attrs, factors


def default_cache_dir() -> Path:
    return Path(os.environ.get("RAVAR_CACHE", Path.home() / ".cache" / "ravar_bench"))


def generate(root: str | Path, cfg: SynthConfig = SynthConfig(), progress: bool = True) -> Path:
    """Write the dataset under ``root`` (deterministic for ``cfg``); ``meta.json`` is written last."""
    from tqdm import tqdm

    root = Path(root)
    layout = FrameLayout()
    counts = {}
    jobs = [(s, m) for s, n in (("train", cfg.train_movies), ("val", cfg.val_movies), ("test", cfg.test_movies))
            for m in range(n)]
    per_split: dict[str, tuple[list, dict]] = {s: ([], {}) for s in ("train", "val", "test")}
    attributes, factors = {}, {}
    for split, m in tqdm(jobs, desc="RefAVA-Synth", unit="movie", disable=not progress):
        inst, dets, attrs, facs = _write_movie(root, split, m, cfg, layout)
        per_split[split][0].extend(inst)
        per_split[split][1].update(dets)
        attributes.update(attrs)
        factors.update(facs)
    # not part of the released layout: the referring attributes, for the rephrasing suite's held-out templates
    (root / "attributes.json").write_text(json.dumps(attributes))
    # nor this: the generator's factors per instance, for the diagnostic breakdowns (never shown to a method)
    (root / FACTORS_FILE).write_text(json.dumps({
        "generator_version": GENERATOR_VERSION,
        "stated": {"shared_colour_share": SHARED_COLOUR_SHARE, "ref_type_weights": REF_TYPE_WEIGHTS},
        "action_types": {str(a): k for a, k in sorted(action_types().items())},
        "instances": factors}))
    for split, (inst, dets) in per_split.items():
        write_split(root, split, inst)
        write_detections(root, split, dets, detector="RefAVA-Synth simulated detector (box noise, 8% misses, false positives)")
        counts[split] = len(inst)
    meta = {"generator_version": GENERATOR_VERSION, "config": dataclasses.asdict(cfg), "instances": counts,
            "frame_size": [W, H], "layout": dataclasses.asdict(layout)}
    (root / "meta.json").write_text(json.dumps(meta, indent=1))
    return root


def ensure_synthetic(cfg: SynthConfig = SynthConfig(), cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The dataset for ``cfg`` in the cache folder, generated on first use (a half-written one is redone)."""
    root = Path(cache_dir or default_cache_dir()) / f"refava_synth_{cfg.digest()}"
    if (root / "meta.json").is_file():
        return root
    tmp = root.with_name(root.name + f".partial{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    generate(tmp, cfg, progress=progress)
    try:
        tmp.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root
