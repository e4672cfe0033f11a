"""What made a result: the resolved config's digest, the code, the packages, the device and the data.

Every result row and ``runs/<method>/seed<k>/meta.json`` carry these fields, and reuse of finished work
(:mod:`.reuse`) compares them. The data is identified by a digest of its annotation files (plus, for
RefAVA-Synth, the generator version and settings), never by a machine path, so two machines running the
same release agree and a committed table leaks no home folder.
"""
from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

from ..reference import REPO_ROOT

# Config entries that say where or how fast, never what is computed: left out of the digest so that, for
# example, more loader workers do not make a finished result look stale. ``seed`` is a key of its own;
# ``config_path`` is a machine path.
_NOT_DIGESTED = {("config_path",), ("seed",), ("train", "num_workers"), ("eval", "batch_size")}

# Columns every result row carries (in this order in results.csv, after the metrics).
PROVENANCE_COLUMNS = ["config_digest", "train_digest", "data", "data_digest", "data_generator", "suite_version",
                      "git_commit", "git_dirty", "torch_version", "transformers_version", "mmaction2_version", "device"]


def _plain(obj, path=()):
    if isinstance(obj, dict):
        return {str(k): _plain(v, path + (str(k),)) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))
                if path + (str(k),) not in _NOT_DIGESTED}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, path) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return "nan"
    return obj if isinstance(obj, (str, int, float, bool)) or obj is None else repr(obj)


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def config_digest(cfg) -> str:
    """Digest of the whole resolved config (training and evaluation settings)."""
    return _sha(_plain(cfg.to_dict()))


def train_digest(cfg) -> str:
    """Digest of what decides the trained weights: the config without its ``eval`` section, so a change of
    evaluation settings re-scores the existing model instead of retraining it."""
    d = _plain(cfg.to_dict())
    d.pop("eval", None)
    if d.get("init", {}).get("weights") == "pretrained":  # the starting point decides the weights too
        d["init"]["files"] = shipped_digests(cfg)
    return _sha(d)


def shipped_digests(cfg) -> dict:
    """sha256 of each shipped pretrained file the config's instances start from (by the package's manifest)."""
    from ..encoders.shipped_weights import file_name, read_manifest, start_sizes

    files = read_manifest()["files"]
    names = sorted({file_name(cfg.model["type"], s) for s in start_sizes(cfg).values()})
    return {n: files.get(n, {}).get("sha256", "missing") for n in names}


@functools.lru_cache(maxsize=None)
def code_version() -> dict:
    """Suite version, git commit and a dirty flag ("unknown" outside a git checkout)."""
    from .. import __version__

    out = {"suite_version": __version__, "git_commit": "unknown", "git_dirty": "unknown"}

    def git(*args):
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=20)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode == 0 and head.stdout.strip():
            out["git_commit"] = head.stdout.strip()
            # tracked files only: run folders and caches inside the checkout do not make the code dirty
            st = git("status", "--porcelain", "--untracked-files=no")
            out["git_dirty"] = bool(st.stdout.strip()) if st.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        pass
    return out


@functools.lru_cache(maxsize=None)
def package_versions() -> dict:
    import torch

    out = {"torch_version": torch.__version__}  # with its build tag (e.g. +cu130), which the metadata lacks
    for col, dist in (("transformers_version", "transformers"),
                      ("mmaction2_version", "mmaction2")):
        try:
            out[col] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[col] = "not installed"
    return out


@functools.lru_cache(maxsize=None)  # every result row asks; the processor does not change
def cpu_model() -> str:
    """The processor's name (Linux: /proc/cpuinfo's "model name"), else ``platform.processor()``."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_name(device) -> str:
    """The GPU's name, or on CPU the processor, the vector instructions torch uses and the thread count: results
    differ between CPUs of one kind of lent machine (benchmarks/default_levers.md, session 13), so a row says which."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({cpu_model()}, {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads)"
    return str(dev)


def digest_files(paths) -> str:
    """sha256 over the files' names and bytes, in sorted name order (streamed: release pickles can be large)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def annotation_files(root) -> list[Path]:
    ann = Path(root) / "annotations"
    return sorted([*ann.glob("*_crr_final.pkl"), *ann.glob("*.jsonl")])


def data_identity(kind: str, root, synth=None) -> dict:
    """``data`` ("<kind>:<annotations digest>"), ``data_digest`` and, for RefAVA-Synth, ``data_generator``
    (generator version and settings, which decide the frames the annotations do not cover)."""
    digest = digest_files(annotation_files(root))
    gen = ""
    meta = Path(root) / "meta.json"
    if kind == "synthetic" and meta.is_file():
        m = json.loads(meta.read_text())
        c = m.get("config", {})
        gen = (f"RefAVA-Synth v{m.get('generator_version')} seed={c.get('seed')} movies={c.get('train_movies')}/"
               f"{c.get('val_movies')}/{c.get('test_movies')} clips={c.get('clips_per_movie')} q={c.get('quality')}")
    return {"data": f"{kind}:{digest}", "data_digest": digest, "data_generator": gen}


def provenance(cfg, source, device) -> dict:
    """The provenance fields of one (method, seed) run, in PROVENANCE_COLUMNS order."""
    out = {"config_digest": config_digest(cfg), "train_digest": train_digest(cfg), **source.provenance,
           **code_version(), **package_versions(), "device": device_name(device)}
    return {k: out[k] for k in PROVENANCE_COLUMNS}
