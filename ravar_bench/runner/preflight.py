"""Before the first method starts, for every method at once: every local file or folder its config names is there
(:func:`check_local_files`), and its config loads and builds on the meta device (:func:`preflight`).

A missing BERT folder or checkpoint is known before anything trains; one :class:`CheckpointMissingError` line lists
them all (the CLI prints it and exits 2) instead of a logged traceback per method.
"""
from __future__ import annotations

from pathlib import Path

from ..config import load_config
from ..encoders.checkpoint import CheckpointMissingError
from ..encoders.text import resolve_text_encoder_path
from ..errors import UsageError
from ..factory import build_from_config

# config keys (anywhere in the model section) whose value is a local file or folder of weights / a tokenizer
_FILE_KEY_ENDINGS = ("pretrained", "_tokenizer")


def configured_files(model: dict, prefix: str = "model") -> list[tuple[str, str]]:
    """(config key, path) of every local file or folder a model section names."""
    out = []
    for k, v in model.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            out += configured_files(v, key)
        elif isinstance(v, str) and v and k.endswith(_FILE_KEY_ENDINGS):
            out.append((key, v))
    return out


def missing_files(cfg) -> list[str]:
    """What one config names and is not there, as 'key=path (why)'."""
    problems = []
    try:
        resolve_text_encoder_path(dict(cfg.text_encoder))
    except FileNotFoundError as e:
        problems.append(f"text_encoder.path={dict(cfg.text_encoder).get('path')} ({' '.join(str(e).split())})")
    for key, path in configured_files(dict(cfg.model)):
        if not Path(path).expanduser().exists():
            problems.append(f"{key}={path} (no such file or folder)")
    return problems


def check_local_files(methods: list[str], config_set: str, opts_for) -> None:
    """Raise one error naming, per method, every configured local file that is missing. ``opts_for(name)``: the
    cfg_options that method runs with. A config that does not load is left to the run (it reports it per method)."""
    found = {}
    for name in methods:
        try:
            cfg = load_config(name, config_set, opts_for(name))
        except Exception:  # noqa: BLE001 - reported by the run itself, with the method's other failures
            continue
        for problem in missing_files(cfg):
            found.setdefault(problem, []).append(name)
    if found:
        listed = "; ".join(f"{p} for {', '.join(ms)}" for p, ms in found.items())
        raise CheckpointMissingError(f"{len(found)} configured local file(s) missing, nothing was started: {listed}. "
                                     f"Download them and set the keys (docs/model_zoo.md)")


def preflight(methods: list[str], config_set: str, cfg_options: dict | None) -> dict:
    """Every method's config loaded (keys and values checked) and its model built on the meta device, before
    anything trains: a typo, a value its key does not allow, or a method option its constructor refuses is one
    line now, for every method at once, not a failure logged an hour into the run. Returns name -> config."""
    check_local_files(methods, config_set, lambda _name: cfg_options)  # all missing files in one line, first
    cfgs = {}
    for name in methods:
        cfg = load_config(name, config_set, cfg_options)
        try:
            build_from_config(cfg, device="meta")
        except ValueError as e:  # a method's constructor refusing an option (the message names it)
            raise UsageError(f"{cfg.config_path}: {e}") from None
        cfgs[name] = cfg
    return cfgs
