"""The fault and bad-input battery: every case breaks one thing, runs the real pipeline, and checks that it ends
in a clear error naming file / key / field or in a counted, reported skip, and that no finished result is lost.

Run by tests/test_faults.py (asserting) and benchmarks/faults.py (printing one line per case). Kills are real:
a subprocess is parked at a named point (:mod:`ravar_bench.files.faultpoint`) and sent SIGKILL.
Each case returns :class:`Case` (name, what happened, results lost); a broken expectation raises AssertionError.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..reference import REPO_ROOT

TINY = dict(seed=7, train_movies=2, val_movies=1, test_movies=1, clips_per_movie=3)
# method 3 of 5 is the one killed; five cheap registered methods that between them read video, key frames,
# text and detections
KILL_METHODS = ("chance", "x3d", "videomae2_b", "clip_detr", "singularity")


@functools.lru_cache(maxsize=None)
def fast_options() -> dict:
    """Fewer evaluation passes (no bootstrap, no control passes): the battery is about faults, not scores. Only
    keys the base runtime config has, so a renamed control switch costs time, not a config error."""
    from mmengine.config import Config

    from ..reference import CONFIG_ROOT

    base = Config.fromfile(str(Path(CONFIG_ROOT) / "_base_" / "runtime.py")).get("eval", {})
    want = {"n_boot": 0, "swap_control": False, "static_control": False, "no_position_control": False}
    return {f"eval.{k}": v for k, v in want.items() if k in base}
_NOT_COMPARED = ("time", "clips_per_s")  # wall-clock fields differ between any two runs

_RUN = r"""
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
from ravar_bench.data.synthetic import SynthConfig
from ravar_bench.runner.bench import run_benchmark
a = json.loads(sys.argv[1])
res = run_benchmark(a["methods"], a["out"], synth=SynthConfig(**a["synth"]), epochs=a["epochs"], cfg_options=a["opts"],
                    progress=False, pictures=False, command="fault battery", wait=a.get("wait", False))
sys.exit(1 if res["failures"] else 0)
"""

_HOLD = r"""
import sys, time
from ravar_bench.runner.lock import RunLock
with RunLock(sys.argv[1], command="fault battery lock holder"):
    open(sys.argv[2], "w").write("held")
    time.sleep(600)
"""


@dataclasses.dataclass
class Case:
    name: str
    what: str
    lost: int = 0

    def line(self) -> str:
        return f"{self.name:34s} {self.what}; lost {self.lost}"


def _msg_has(fn, *needles, exc=None) -> str:
    """Call ``fn``; it must raise a RavarError (or ``exc``) whose message holds every needle. Returns the message."""
    from ..errors import RavarError

    try:
        fn()
    except (exc or RavarError) as e:
        msg = str(e)
        missing = [n for n in needles if n not in msg]
        assert not missing, f"error message lacks {missing}: {msg}"
        assert "\n" not in msg, f"not one line: {msg}"
        return msg
    raise AssertionError(f"no error raised (expected one naming {needles})")


def _short(msg: str, n: int = 150) -> str:
    msg = msg.replace("<root>/annotations/", "").replace("<root>/detections/", "")  # the file name is enough here
    return msg if len(msg) <= n else msg[: n - 3] + "..."


class Battery:
    def __init__(self, work: str | Path, synth_root: str | Path | None = None, threads: int = 2):
        from ..data.synthetic import SynthConfig, ensure_synthetic

        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.root = Path(synth_root) if synth_root else ensure_synthetic(
            SynthConfig(**TINY), cache_dir=self.work / "synth", progress=False)
        self.cache = self.root.parent  # RAVAR_CACHE for subprocesses: the same generated data
        meta = self.root / "meta.json"  # the settings that made it, so subprocesses find it instead of generating
        self.synth = json.loads(meta.read_text())["config"] if meta.is_file() else dict(TINY)
        self.threads = threads

    # ------------------------------------------------------------------ helpers
    def _env(self, fault: str | None, marker: Path | None) -> dict:
        env = {**os.environ, "RAVAR_CACHE": str(self.cache), "PYTHONPATH": str(REPO_ROOT),
               "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
               "TOKENIZERS_PARALLELISM": "false"}
        env.pop("RAVAR_FAULTPOINT", None)
        if fault:
            env["RAVAR_FAULTPOINT"], env["RAVAR_FAULT_MARKER"] = fault, str(marker)
        return env

    def spawn(self, out: Path, methods, epochs: int, fault: str | None = None, tag: str = "run", wait=False):
        marker = self.work / f"{tag}.parked"
        marker.unlink(missing_ok=True)
        args = json.dumps({"methods": list(methods), "out": str(out), "synth": self.synth, "epochs": epochs, "opts": fast_options(),
                           "wait": wait})
        log = open(self.work / f"{tag}.log", "w")
        proc = subprocess.Popen([sys.executable, "-c", _RUN, args], env=self._env(fault, marker), cwd=str(REPO_ROOT),
                                stdout=log, stderr=subprocess.STDOUT)
        proc.marker, proc.logfile, proc.tag = marker, self.work / f"{tag}.log", tag
        return proc

    def _log(self, proc) -> str:
        return proc.logfile.read_text(errors="replace")

    def park_and_kill(self, proc, timeout: float = 600) -> None:
        t0 = time.time()
        while not proc.marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"{proc.tag}: exited ({proc.returncode}) before reaching its fault point:\n"
                                     + self._log(proc)[-3000:])
            if time.time() - t0 > timeout:
                proc.kill()
                raise AssertionError(f"{proc.tag}: did not reach its fault point in {timeout} s")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

    def finish(self, proc, timeout: float = 600) -> str:
        proc.wait(timeout)
        log = self._log(proc)
        assert proc.returncode == 0, f"{proc.tag}: exit {proc.returncode}:\n{log[-3000:]}"
        return log

    def copy_data(self, name: str) -> Path:
        dst = self.work / "data" / name
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(self.root, dst)
        return dst

    def run(self, methods, out, **kw):
        """In this process, on the generated data read as a release (--data refava), 1 epoch."""
        from ..runner.bench import run_benchmark

        kw.setdefault("epochs", 1)
        kw.setdefault("cfg_options", fast_options())
        kw.setdefault("data", "refava")
        kw.setdefault("data_root", str(self.root))
        return run_benchmark(list(methods), out, progress=False, pictures=False, command="fault battery", **kw)

    @staticmethod
    def rows(out: Path) -> dict:
        return {p.name: json.loads(p.read_text()) for p in sorted((Path(out) / "results").glob("*.json"))}

    @staticmethod
    def lost(before: dict, after: dict, tol: float = 1e-6) -> int:
        """Results of ``before`` that are gone from ``after`` or whose metrics changed."""
        n = 0
        for name, row in before.items():
            new = after.get(name)
            if new is None or any(not _close(v, new.get(k), tol) for k, v in row.items()
                                  if isinstance(v, float) and not any(s in k for s in _NOT_COMPARED)
                                  and not k.startswith("p_vs_best")):
                n += 1
        return n

    # ------------------------------------------------------------------ kill cases
    def kill_and_resume(self) -> list[Case]:
        """kill -9 during method 3 of 5, then at each write (results.csv, a result JSON, a checkpoint); resume
        each time; the end equals an uninterrupted run to 1e-6."""
        from ..engine.results import collect_results

        m = KILL_METHODS
        ref_out, out = self.work / "kill_ref", self.work / "kill"
        for d in (ref_out, out):
            shutil.rmtree(d, ignore_errors=True)
        ref = self.spawn(ref_out, m, 2, tag="ref")  # the uninterrupted run, alongside
        cases = []

        p = self.spawn(out, m, 2, fault=f"epoch:{m[2]}:1", tag="kill1")
        self.park_and_kill(p)
        done = self.rows(out)
        assert set(done) == {f"{x}__{s}__seed0.json" for x in m[:2] for s in ("val", "test")}, sorted(done)
        assert (out / f"runs/{m[2]}/seed0/last.pt").is_file() and not (out / f"runs/{m[2]}/seed0/model.pt").exists()
        finished_models = {x: (out / f"runs/{x}/seed0/model.pt").stat().st_mtime_ns for x in m[:2]}
        csv_before = (out / "results.csv").read_bytes()

        # results.csv is rewritten after every method (also a reused one): its third write follows method 3
        p = self.spawn(out, m, 2, fault="write:results.csv@3", tag="kill2")
        self.park_and_kill(p)
        log2 = self._log(p)
        assert f"{m[2]} seed 0: resuming after epoch 1" in log2, log2[-2000:]
        assert (out / "results.csv").read_bytes() == csv_before, "results.csv changed by a killed write"
        assert list(out.glob("results.csv.tmp*")), "the half-written temporary file is missing"
        after = self.rows(out)
        cases.append(Case("kill -9 during method 3 of 5", f"{m[0]}, {m[1]} finished; {m[2]} killed after epoch 1, "
                          f"resumed after epoch 1 on the rerun", self.lost(done, after)))
        cases.append(Case("kill -9 writing results.csv", "old results.csv intact, half-written temp never read",
                          self.lost(done, after)))

        target = f"{m[3]}__val__seed0.json"
        p = self.spawn(out, m, 2, fault=f"write:{target}", tag="kill3")
        self.park_and_kill(p)
        assert not (out / "results" / target).exists() and list((out / "results").glob(target + ".tmp*"))
        collect_results(out)  # the half-written temp is never read back
        after3 = self.rows(out)
        cases.append(Case("kill -9 writing a result JSON", f"{target} absent, its half-written temp ignored",
                          self.lost(after, after3)))

        p = self.spawn(out, m, 2, fault="write:last.pt", tag="kill4")
        self.park_and_kill(p)
        log4 = self._log(p)
        assert f"{m[3]} seed 0: trained model found, evaluating only" in log4, log4[-2000:]
        ck = out / f"runs/{m[4]}/seed0"
        assert not (ck / "last.pt").exists() and (ck / "last.pt.tmp").is_file()
        after4 = self.rows(out)
        cases.append(Case("kill -9 writing a checkpoint", f"{m[4]} last.pt absent, half-written last.pt.tmp ignored",
                          self.lost(after3, after4)))

        p = self.spawn(out, m, 2, tag="resume")
        self.finish(p)
        self.finish(ref)
        final, reference = self.rows(out), self.rows(ref_out)
        assert set(final) == set(reference) and len(final) == 2 * len(m)
        diff = self.lost(reference, final)
        assert diff == 0, f"{diff} results differ from the uninterrupted run"
        assert all((out / f"runs/{x}/seed0/model.pt").stat().st_mtime_ns == t for x, t in finished_models.items()), \
            "a finished method was retrained"
        assert len(collect_results(out)) == 2 * len(m)
        cases.append(Case("resume after the kills", f"all {len(final)} results equal an uninterrupted run to 1e-6; "
                          f"finished methods not retrained", self.lost(after4, final)))
        return cases

    def disk_full(self) -> Case:
        """ENOSPC (a real one, from /dev/full) while writing a checkpoint."""
        import torch

        from ..engine import trainer

        out = self.work / "diskfull"
        shutil.rmtree(out, ignore_errors=True)
        self.run(["chance"], out)
        before = self.rows(out)
        csv = (out / "results.csv").read_bytes()
        real = trainer._save_to

        def full(obj, tmp):
            with open("/dev/full", "wb") as f:
                torch.save(obj, f)

        trainer._save_to = full
        try:
            msg = _msg_has(lambda: self.run(["x3d"], out), "no space left", "last.pt")
        finally:
            trainer._save_to = real
        assert (out / "results.csv").read_bytes() == csv and not list(out.rglob("*.tmp*"))
        return Case("disk full on a checkpoint write", f"error: {_short(msg, 110)}", self.lost(before, self.rows(out)))

    def two_runs_one_folder(self) -> list[Case]:
        out = self.work / "locked"
        shutil.rmtree(out, ignore_errors=True)
        self.run(["chance"], out)
        before = self.rows(out)
        marker = self.work / "holder.ready"
        marker.unlink(missing_ok=True)
        holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out), str(marker)], env=self._env(None, None),
                                  cwd=str(REPO_ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.time()
            while not marker.exists():
                assert holder.poll() is None and time.time() - t0 < 120, "lock holder did not start"
                time.sleep(0.05)
            msg = _msg_has(lambda: self.run(["chance"], out, force=True), "in use by another run",
                           f"pid {holder.pid}", "--wait")
            cases = [Case("second run into a locked --out", f"refused: {_short(msg, 100)}",
                          self.lost(before, self.rows(out)))]
            killer = threading.Timer(1.0, lambda: os.kill(holder.pid, signal.SIGKILL))
            killer.start()
            t0 = time.time()
            self.run(["chance"], out, wait=True)
            waited = time.time() - t0
            killer.join()
            assert waited >= 0.9, f"did not wait ({waited:.2f} s)"
        finally:
            if holder.poll() is None:
                holder.kill()
            holder.wait()
        cases.append(Case("second run with --wait", f"waited {waited:.1f} s until the holder died (killed -9), "
                          f"then ran", self.lost(before, self.rows(out))))
        return cases

    # ------------------------------------------------------------------ bad frames
    def _frames_of(self, root: Path, split: str):
        """(instance, key-frame path) of the first instance of each clip of ``split``."""
        from ..data.frames import FrameLayout
        from ..data.refava import load_split

        lay, seen = FrameLayout(), {}
        for inst in load_split(root, split)[0]:
            seen.setdefault(inst.clip_key, (inst, lay.path(root / "frames", inst.video_id, lay.key_index(inst.timestamp))))
        return list(seen.values())

    @staticmethod
    def _break(kind: str, path: Path) -> list[str]:
        """Break ``path`` (a key frame) as ``kind``; returns words the error must hold besides the instance key."""
        if kind == "truncated JPEG":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            return ["truncated", str(path)]
        if kind == "zero-byte JPEG":
            path.write_bytes(b"")
            return ["zero bytes", str(path)]
        if kind == "missing frame folder":
            shutil.rmtree(path.parent)
            return ["frame missing", str(path.parent)]
        # both JPEG markers, so it passes the up-front check, but it does not decode: met during the run
        path.write_bytes(b"\xff\xd8" + b"\x00garbage" * 50 + b"\xff\xd9")
        return []

    FRAME_CASES = ("truncated JPEG", "zero-byte JPEG", "missing frame folder")

    def bad_frames(self) -> list[Case]:
        """Each frame fault alone: an error naming instance and file before training (x3d reads video). Then all
        of them at once (val: truncated + zero-byte, train: a missing movie folder, test: a JPEG that fails to
        decode mid-run) with --skip-missing-frames: counted per split. A finished ``chance`` result in the
        same folder (it reads no frames) is checked after every step."""
        out = self.work / "out_frames"
        shutil.rmtree(out, ignore_errors=True)
        combined = self.copy_data("frames_all")
        val, train, test = (self._frames_of(combined, s) for s in ("val", "train", "test"))
        self._break("truncated JPEG", val[0][1])
        self._break("zero-byte JPEG", val[1][1])
        self._break("missing frame folder", train[0][1])
        self._break("undecodable", test[0][1])
        self.run(["chance"], out, data="refava", data_root=combined)
        before = self.rows(out)
        cases = []
        for kind in self.FRAME_CASES:
            root = self.copy_data(f"frame_{kind.split()[0]}")
            inst, path = self._frames_of(root, "train" if kind == "missing frame folder" else "val")[0]
            words = self._break(kind, path)
            msg = _msg_has(lambda: self.run(["x3d"], out, data="refava", data_root=root), inst.key, *words)
            assert not (out / "runs/x3d/seed0/last.pt").exists(), "training started before the frame check"
            cases.append(Case(f"a {kind}", "error before training: " + _short(msg.replace(str(root), "<root>"), 110),
                              self.lost(before, self.rows(out))))
        self.run(["x3d"], out, data="refava", data_root=combined, skip_missing_frames=True)
        rows = self.rows(out)
        v, t = rows["x3d__val__seed0.json"], rows["x3d__test__seed0.json"]
        from ..data.refava import load_split

        people = {s: {c: sum(i.clip_key == c for i in load_split(combined, s)[0]) for c in {x[0].clip_key for x in f}}
                  for s, f in (("val", val[:2]), ("test", test[:1]))}
        n_train = sum(i.video_id == train[0][0].video_id for i in load_split(combined, "train")[0])
        assert v["skipped_frames"] == sum(people["val"].values()), (v["skipped_frames"], people)
        assert t["skipped_frames"] == sum(people["test"].values()), (t["skipped_frames"], people)
        assert v["train_skipped_frames"] == n_train and v["skipped_instances"] == v["skipped_frames"], v
        assert "instances skipped for missing or unreadable frames" in (out / "leaderboard.md").read_text()
        cases.append(Case("all frame faults, --skip-missing-frames",
                          f"counted per split: train {n_train}, val {v['skipped_frames']} (before training), test "
                          f"{t['skipped_frames']} (met mid-run); in the rows and under the leaderboard",
                          self.lost(before, rows)))
        return cases

    # ------------------------------------------------------------------ bad annotation rows
    def _edit(self, root: Path, split: str, kind: str, fn) -> Path:
        from ..data.refava import annotation_path

        p = annotation_path(root, split, kind)
        d = pickle.loads(p.read_bytes())
        fn(d)
        p.write_bytes(pickle.dumps(d, protocol=4))
        return p

    ROW_CASES = {
        # name: (file kind, new value or None to delete the key, words the error must hold)
        "a key missing from one pickle": ("label", None, ["is missing"]),
        "a NaN box": ("keyframe", [[0.1, float("nan"), 0.5, 0.9]], ["'box'", "non-finite"]),
        "an inverted box": ("keyframe", [[0.6, 0.2, 0.4, 0.9]], ["'box'", "x1 < x2"]),
        "action id 0": ("label", [0], ["'actions'", "unknown AVA action id 0"]),
        "action id 81": ("label", [81], ["'actions'", "unknown AVA action id 81"]),
        "an empty reference": ("description", ["  "], ["'text' is empty"]),
        "a 10,000-character reference": ("description", ["a" * 10000], ["'text'", "10,000 characters"]),
        "non-UTF-8 reference bytes": ("description", [b"the man in \xff\xfe red"], ["'text'", "not valid UTF-8"]),
        "a NaN action id": ("label", [12, float("nan")], ["'actions'", "holds nan", "not an integer action id"]),
        "an inf action id": ("label", [float("inf")], ["'actions'", "holds inf", "not an integer action id"]),
    }

    def bad_row(self, name: str) -> Case:
        from ..data.refava import annotation_path
        from ..engine.data_source import open_source

        kind, value, words = self.ROW_CASES[name]
        root = self.work / "data" / f"row_{len(name)}_{abs(hash(name)) % 10 ** 6}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.root / "annotations", root / "annotations")
        key = sorted(pickle.loads(annotation_path(root, "val", kind).read_bytes()))[1]
        p = self._edit(root, "val", kind, lambda d: d.pop(key) if value is None else d.__setitem__(key, value))
        msg = _msg_has(lambda: open_source("refava", str(root), progress=False), str(p), repr(key), *words)
        src = open_source("refava", str(root), skip_invalid=True, progress=False)
        assert [k for k, _ in src.reports["val"].skipped] == [key]
        return Case(name, f"error: {_short(msg.replace(str(root), '<root>'), 130)}; with --skip-invalid: 1 counted skip")

    def bad_rows_counted(self) -> Case:
        """Every row case at once (on the train split, one on val) with --skip-invalid: counted per split in the
        result rows and shown under the leaderboard; nothing else changes."""
        from ..data.refava import annotation_path

        root = self.copy_data("rows_all")
        keys = sorted(pickle.loads(annotation_path(root, "train", "label").read_bytes()))
        n_train = 0
        for k, (name, (kind, value, _)) in enumerate(self.ROW_CASES.items()):
            split = "val" if k == 0 else "train"
            key = (sorted(pickle.loads(annotation_path(root, "val", kind).read_bytes()))[0] if split == "val"
                   else keys[k])
            self._edit(root, split, kind, lambda d: d.pop(key) if value is None else d.__setitem__(key, value))
            n_train += split == "train"
        out = self.work / "out_rows_all"
        shutil.rmtree(out, ignore_errors=True)
        _msg_has(lambda: self.run(["chance"], out, data="refava", data_root=root), "train_set_", repr(keys[1]))
        self.run(["chance"], out, data="refava", data_root=root, skip_invalid=True)
        rows = self.rows(out)
        val, test = rows["chance__val__seed0.json"], rows["chance__test__seed0.json"]
        assert val["skipped_missing_key"] == 1 and test["skipped_missing_key"] == 0, val
        assert val["train_skipped_invalid"] == n_train and val["skipped_instances"] == 1, val
        note = (out / "leaderboard.md").read_text()
        assert "invalid annotation rows skipped" in note and "keys missing" in note
        return Case("all bad rows with --skip-invalid", f"{n_train} train rows + 1 val key counted per split in "
                    f"the result rows and under the leaderboard")

    def empty_split(self) -> Case:
        from ..engine.data_source import open_source

        root = self.work / "data" / "empty_split"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.root / "annotations", root / "annotations")
        self._edit(root, "val", "label", lambda d: d.update({k: [0] for k in d}))
        msg = _msg_has(lambda: open_source("refava", str(root), skip_invalid=True, progress=False),
                       "split 'val' is empty")
        return Case("a split emptied by skipping", f"one error before training: {_short(msg.replace(str(root), '<root>'), 100)}")

    def bad_files(self) -> list[Case]:
        from ..data.refava import annotation_path
        from ..engine.data_source import open_source

        root = self.work / "data" / "bad_files"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.root / "annotations", root / "annotations")
        p = annotation_path(root, "test", "description")
        p.write_bytes(p.read_bytes()[:40])
        cases = [Case("a truncated pickle", "error: " + _short(_msg_has(
            lambda: open_source("refava", str(root), progress=False), str(p), "not a readable pickle")
            .replace(str(root), "<root>"), 110))]
        msg = _msg_has(lambda: open_source("refava", str(root / "annotations"), progress=False),
                       f"--data-root {root}")
        cases.append(Case("--data-root at the annotations folder", "error with the hint: ..."
                          + _short(msg[msg.index("; "):].replace(str(root), "<root>"), 110)))
        return cases

    # ------------------------------------------------------------------ detections
    def detections_missing_key(self) -> Case:
        from ..data.detections import detections_path

        root = self.copy_data("dets_missing")
        p = detections_path(root, "val")
        obj = json.loads(p.read_text())
        key = sorted(obj["detections"])[0]
        del obj["detections"][key]
        p.write_text(json.dumps(obj))
        out = self.work / "out_dets_missing"
        shutil.rmtree(out, ignore_errors=True)
        msg = _msg_has(lambda: self.run(["clip_detr"], out, data="refava", data_root=root), str(p), repr(key))
        assert not (out / "runs/clip_detr/seed0/last.pt").exists()
        self.run(["clip_detr"], out, data="refava", data_root=root, skip_invalid=True)
        row = self.rows(out)["clip_detr__val__seed0.json"]
        assert row["detections_missing"] == 1 and "detections-cache" in (out / "leaderboard.md").read_text(), row
        return Case("detections cache: a missing key", f"error before training: "
                    f"{_short(msg.replace(str(root), '<root>'), 80)}; with --skip-invalid: 1 counted, read as none")

    def detections_malformed(self) -> Case:
        from ..data.detections import detections_path
        from ..engine.data_source import open_source

        root = self.copy_data("dets_malformed")
        p = detections_path(root, "val")
        obj = json.loads(p.read_text())
        key = sorted(obj["detections"])[1]
        obj["detections"][key] = [[0.1, 0.2, 0.3, "x", 0.9, "person"]]
        p.write_text(json.dumps(obj))
        src = open_source("refava", str(root), progress=False)
        msg = _msg_has(lambda: src.detections("val"), str(p), repr(key))
        return Case("detections cache: a malformed entry", f"error: {_short(msg.replace(str(root), '<root>'), 110)}")

    def detections_bad_score(self) -> list[Case]:
        """Scores of 5 and -3 in the cache: an error naming file, key and field before they reach a model."""
        from ..data.detections import detections_path
        from ..engine.data_source import open_source

        cases = []
        for score in (5.0, -3.0):
            root = self.copy_data(f"dets_score_{score:+.0f}")
            p = detections_path(root, "val")
            obj = json.loads(p.read_text())
            key = sorted(obj["detections"])[0]
            obj["detections"][key] = [[0.1, 0.2, 0.3, 0.4, score, "person"]]
            p.write_text(json.dumps(obj))
            src = open_source("refava", str(root), progress=False)
            msg = _msg_has(lambda: src.detections("val"), str(p), repr(key), "'score'", "outside [0, 1]")
            cases.append(Case(f"detections cache: score {score:g}", f"error: {_short(msg.replace(str(root), '<root>'), 110)}"))
        return cases

    # ------------------------------------------------------------------ issue 26: values, windows, files, flags
    def _rename_key(self, root: Path, split: str, old: str, new: str) -> None:
        for kind in ("keyframe", "label", "description"):
            self._edit(root, split, kind, lambda d: d.__setitem__(new, d.pop(old)))

    def clip_before_first_frame(self) -> Case:
        """A key at t = 880 (the movie starts at 900): an error naming the key, the frames and --skip-invalid
        before training (not "lower data.frame_stride"); --skip-invalid skips and counts it."""
        from ..data.refava import annotation_path

        root = self.copy_data("clip_880")
        key = sorted(pickle.loads(annotation_path(root, "val", "label").read_bytes()))[0]
        vid, _, pid = key.rsplit("___", 2)
        new = f"{vid}___880___{pid}"
        self._rename_key(root, "val", key, new)
        out = self.work / "out_clip_880"
        shutil.rmtree(out, ignore_errors=True)
        _finished(self.run(["chance"], out, data_root=root, skip_invalid=True))  # a finished result beside it
        before = self.rows(out)
        # a key frame before the movie is a bad row for every method, also one that reads no frames
        assert before["chance__val__seed0.json"]["skipped_invalid"] == 1, before
        msg = _msg_has(lambda: self.run(["x3d"], out, data_root=root), "val_set_", repr(new), "'timestamp' 880",
                       "before the movie's first frame 1", "--skip-invalid")
        assert "lower data.frame_stride" not in msg, msg
        assert not (out / "runs/x3d/seed0/last.pt").exists(), "training started before the window check"
        _finished(self.run(["x3d"], out, data_root=root, skip_invalid=True))
        row = self.rows(out)["x3d__val__seed0.json"]
        assert row["skipped_invalid"] == 1 and row["skipped_instances"] == 1, row
        assert "invalid annotation rows skipped" in (out / "leaderboard.md").read_text()
        return Case("a clip before the movie's first frame", f"error before training: "
                    f"{_short(msg.replace(str(root), '<root>'), 90)}; with --skip-invalid: 1 counted skip",
                    self.lost(before, self.rows(out)))

    def several_boxes_and_sentences(self) -> Case:
        """Two boxes for one key, two sentences for another: the first used (as the released loader does),
        each counted in the split's row and under the leaderboard."""
        from ..data.refava import annotation_path

        root = self.copy_data("several")
        keys = sorted(pickle.loads(annotation_path(root, "val", "label").read_bytes()))
        self._edit(root, "val", "keyframe", lambda d: d.__setitem__(keys[0], [d[keys[0]][0], [0.1, 0.1, 0.2, 0.2]]))
        self._edit(root, "val", "description", lambda d: d.__setitem__(keys[1], [d[keys[1]][0], "another sentence"]))
        out = self.work / "out_several"
        shutil.rmtree(out, ignore_errors=True)
        _finished(self.run(["chance"], out, data_root=root))
        row = self.rows(out)["chance__val__seed0.json"]
        assert row["first_of_several_boxes"] == 1 and row["first_of_several_texts"] == 1, row
        assert row["skipped_instances"] == 0, row
        note = (out / "leaderboard.md").read_text()
        assert "1 keys with several boxes" in note and "1 keys with several sentences" in note
        return Case("several boxes / sentences for a key", "the first used; 1 + 1 counted in the val row and "
                    "under the leaderboard")

    def frame_of_another_size(self) -> list[Case]:
        """A clip frame (not the key frame) of another size than its neighbours: an error naming it when met,
        or with --skip-missing-frames a counted skip; never stretched in silently."""
        from PIL import Image

        from ..data.frames import FrameLayout, sample_indices

        root = self.copy_data("frame_size")
        inst, key_path = self._frames_of(root, "val")[0]
        lay = FrameLayout()
        idx = sample_indices(lay.key_index(inst.timestamp), 8, 4, lay.window, first_index=lay.index_offset)
        path = lay.path(root / "frames", inst.video_id, next(i for i in idx if i != lay.key_index(inst.timestamp)))
        with Image.open(key_path) as im:
            w, h = im.size
            im.convert("RGB").resize((w // 2, h // 2)).save(path, quality=90)
        out = self.work / "out_frame_size"
        shutil.rmtree(out, ignore_errors=True)
        _finished(self.run(["chance"], out, data_root=root))
        before = self.rows(out)
        opts = {**fast_options(), "data.num_frames": 8, "data.frame_stride": 4}
        msg = _msg_has(lambda: self.run(["x3d"], out, data_root=root, cfg_options=opts), "frame of another size",
                       str(path), inst.key)
        _finished(self.run(["x3d"], out, data_root=root, cfg_options=opts, skip_missing_frames=True))
        row = self.rows(out)["x3d__val__seed0.json"]
        people = sum(i.clip_key == inst.clip_key for i in __import__("ravar_bench.data.refava", fromlist=["x"])
                     .load_split(root, "val")[0])
        assert row["skipped_frames"] == people, (row["skipped_frames"], people)
        return [Case("a frame of another size", f"error when met: {_short(msg.replace(str(root), '<root>'), 100)}; "
                     f"with --skip-missing-frames: {people} counted", self.lost(before, self.rows(out)))]

    def _leaderboard_cli(self, d: Path) -> tuple[int, str]:
        import contextlib
        import io

        from ..cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["leaderboard", str(d)])
        return rc, err.getvalue()

    def damaged_results_csv(self) -> list[Case]:
        """results.csv cut mid-row / disagreeing with its JSON: rebuilt from results/*.json (one line), the
        leaderboard equal to the intact one; with no JSON to rebuild from: one line naming file and line, exit 2."""
        out = self.work / "out_results_csv"
        shutil.rmtree(out, ignore_errors=True)
        _finished(self.run(["chance", "x3d"], out))
        before = self.rows(out)
        csv_path, md = out / "results.csv", out / "leaderboard.md"
        rc, _ = self._leaderboard_cli(out)
        assert rc == 0
        intact_csv, intact_md = csv_path.read_bytes(), md.read_text()
        cases = []
        text = intact_csv.decode()
        last = text.rstrip("\n").splitlines()[-1]
        for name, broken in (("results.csv cut mid-row", text.rstrip("\n")[: len(text.rstrip("\n")) - len(last) // 2]),
                             ("results.csv disagreeing with its JSON", _change_map(text))):
            csv_path.write_text(broken)
            rc, err = self._leaderboard_cli(out)
            assert rc == 0 and err.count("\n") == 1 and "rebuilt from the" in err, (rc, err)
            assert md.read_text() == intact_md, "the leaderboard from the rebuilt results.csv differs"
            assert csv_path.read_bytes() == intact_csv
            cases.append(Case(name, "rebuilt from results/*.json, said in one line; leaderboard equal to the "
                              "intact one", self.lost(before, self.rows(out))))
        pred = out / "predictions" / "x3d__test__seed0.npz"
        pred.write_bytes(pred.read_bytes()[:100])  # cut, as a full disk leaves a file another program wrote
        rc, err = self._leaderboard_cli(out)
        assert rc == 2 and err.count("\n") == 1 and str(pred) in err and "not a complete predictions file" in err, err
        assert md.read_text() == intact_md, "leaderboard.md rewritten from a damaged predictions file"
        cases.append(Case("a predictions file cut short", "exit 2, one line naming it; leaderboard.md kept",
                          self.lost(before, self.rows(out))))
        bare = self.work / "out_results_csv_bare"
        shutil.rmtree(bare, ignore_errors=True)
        bare.mkdir()
        (bare / "results.csv").write_text(text.rstrip("\n")[: len(text.rstrip("\n")) - len(last) // 2])
        rc, err = self._leaderboard_cli(bare)
        n = len(text.rstrip("\n").splitlines())
        assert rc == 2 and err.count("\n") == 1 and f"results.csv, line {n}" in err and "no results/*.json" in err, err
        assert not (bare / "leaderboard.md").exists()
        cases.append(Case("results.csv cut, no JSON to rebuild", f"exit 2, one line: "
                          f"{_short(err.strip().replace(str(bare), '<dir>'), 100)}"))
        return cases

    FLAG_CASES = {
        # name: (flags, words of the one line)
        "--epochs 0": (["--epochs", "0"], ["--epochs", "expected an integer >= 1"]),
        "--epochs -3": (["--epochs", "-3"], ["--epochs", "got -3"]),
        "--seeds -1": (["--seeds", "-1"], ["--seeds", "must be >= 0"]),
        "--seeds 0,0": (["--seeds", "0,0"], ["--seeds", "given more than once"]),
        "--methods ''": (["--methods", ""], ["--methods", "names no method"]),
        "--methods ,": (["--methods", ","], ["--methods", "names no method"]),
        "--out naming a file": (["--out", "{file}"], ["is a file, not a folder"]),
        "--out an unwritable folder": (["--out", "/proc/ravar_out"], ["cannot be created", "not writable"]),
    }

    def mistaken_flags(self) -> list[Case]:
        """Each mistaken flag through tools/run_bench.py: exit 2, one line, before any work; a finished run's
        results.csv, leaderboard.md and result JSONs unchanged."""
        out = self.work / "out_flags"
        shutil.rmtree(out, ignore_errors=True)
        _finished(self.run(["chance"], out))
        before = self.rows(out)
        a_file = self.work / "a_file.txt"
        a_file.write_text("not a folder")
        kept = {n: (out / n).read_bytes() for n in ("results.csv", "leaderboard.md")}
        cases = []
        for name, (flags, words) in self.FLAG_CASES.items():
            flags = [f.replace("{file}", str(a_file)) for f in flags]
            argv = ["--methods", "chance", "--out", str(out), *flags]  # argparse: the last of a repeated flag wins
            r = subprocess.run([sys.executable, str(REPO_ROOT / "tools/run_bench.py"), *argv, "--no-progress"],
                               env=self._env(None, None), capture_output=True, text=True, timeout=300)
            assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (name, r.stderr)
            assert all(w in r.stderr for w in words), (name, r.stderr)
            assert all((out / n).read_bytes() == v for n, v in kept.items()), f"{name}: a file was rewritten"
            cases.append(Case(name, f"exit 2, one line: {_short(r.stderr.strip().split('error: ', 1)[-1], 90)}",
                              self.lost(before, self.rows(out))))
        return cases

    def real_data_tools(self) -> list[Case]:
        """demo on a file that is not a video, detect on a missing / non-JPEG key frame: exit 2, one line naming
        the file; convert with a NaN action id: the row rejected with its reason in the report."""
        import contextlib
        import io

        from ..cli import main
        from ..data.refava import annotation_path

        def cli(argv):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                rc = main(argv)
            return rc, err.getvalue()

        cases = []
        not_video = self.work / "notes.mp4"
        not_video.write_bytes(b"this is a text file, not a movie\n" * 20)
        out = self.work / "out_demo"
        shutil.rmtree(out, ignore_errors=True)
        _finished(self.run(["chance"], out))
        rc, err = cli(["demo", "--video", str(not_video), "--text", "the man", "--run-dir", str(out),
                       "--method", "chance", "--out", str(self.work / "demo.png")])
        assert rc == 2 and err.count("\n") == 1 and str(not_video) in err and "cannot open video" in err, (rc, err)
        cases.append(Case("demo --video on a non-video file", f"exit 2, one line: {_short(err.strip().split('error: ', 1)[-1].replace(str(self.work), '<work>'), 90)}"))

        for kind in ("missing", "not a JPEG"):
            root = self.copy_data(f"detect_{kind.split()[-1]}")
            _, path = self._frames_of(root, "val")[0]
            path.unlink() if kind == "missing" else path.write_bytes(b"GIF89a not a jpeg")
            cache = (root / "detections" / "val_detections.json").read_bytes()
            rc, err = cli(["detect", "--data-root", str(root), "--split", "val", "--detector", "hog", "--no-progress"])
            assert rc == 2 and err.count("\n") == 1 and str(path) in err and kind in err, (rc, err)
            assert (root / "detections" / "val_detections.json").read_bytes() == cache, "the cache was rewritten"
            cases.append(Case(f"detect on a {kind} key frame", "exit 2, one line: "
                              + _short(err.strip().split("error: ", 1)[-1].replace(str(root), "<root>"), 90)))

        root = self.work / "data" / "convert_nan"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.root / "annotations", root / "annotations")
        key = sorted(pickle.loads(annotation_path(root, "val", "label").read_bytes()))[0]
        self._edit(root, "val", "label", lambda d: d.__setitem__(key, [float("nan")]))
        conv = self.work / "out_convert"
        shutil.rmtree(conv, ignore_errors=True)
        rc, err = cli(["convert", "--data-root", str(root), "--out", str(conv)])
        rep = json.loads((conv / "report.json").read_text())["splits"]["val"]["rejected"]
        assert rc == 0 and [x["key"] for x in rep] == [key] and "'actions' holds nan" in rep[0]["reason"], (rc, err, rep)
        cases.append(Case("convert with a NaN action id", "the row rejected, its reason in report.json / report.md"))
        return cases

    def cli_one_line(self) -> Case:
        """A data error through the command line: one line on stderr, exit code 2, no traceback."""
        root = self.work / "data" / "cli_bad_box"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.root / "annotations", root / "annotations")
        from ..data.refava import annotation_path

        key = sorted(pickle.loads(annotation_path(root, "val", "keyframe").read_bytes()))[0]
        self._edit(root, "val", "keyframe", lambda d: d.__setitem__(key, [[0.5, 0.2, 0.4, 0.9]]))
        r = subprocess.run([sys.executable, str(REPO_ROOT / "tools/run_bench.py"), "--methods", "chance", "--data", "refava",
                            "--data-root", str(root), "--out", str(self.work / "out_cli"), "--no-progress"],
                           env=self._env(None, None), capture_output=True, text=True, timeout=600)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-2000:])
        last = r.stderr.strip().splitlines()[-1]
        assert repr(key) in last and "'box'" in last, last
        return Case("a data error via tools/run_bench.py", f"exit 2, one line: {_short(last.replace(str(root), '<root>'), 100)}")

    def all_fast(self) -> list[Case]:
        """Every case except the kill chain, in order."""
        cases = self.bad_frames()
        cases += [self.bad_row(n) for n in self.ROW_CASES]
        cases += [self.bad_rows_counted(), self.empty_split(), *self.bad_files(), self.detections_missing_key(),
                  self.detections_malformed(), self.disk_full(), *self.two_runs_one_folder()]
        cases += [*self.detections_bad_score(), self.clip_before_first_frame(), self.several_boxes_and_sentences(),
                  *self.frame_of_another_size(), *self.damaged_results_csv(), *self.mistaken_flags(),
                  *self.real_data_tools()]
        return cases


def _close(a, b, tol) -> bool:
    if not isinstance(b, (int, float)):
        return False
    if a != a and b != b:  # both NaN
        return True
    return abs(a - b) <= tol


def _finished(res: dict) -> dict:
    """A run_benchmark result that must have no failed method (a setup run of a case, or its skip run)."""
    assert not res["failures"], res["failures"]
    return res


def _change_map(csv_text: str) -> str:
    """results.csv with one row's mAP replaced (41.15 -> 4.00, the reported case): every field still parses."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(csv_text)))
    col = rows[0].index("mAP")
    rows[1][col] = "4.0000" if rows[1][col] != "4.0000" else "5.0000"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()
