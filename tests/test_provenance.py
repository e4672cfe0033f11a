"""Provenance in every row, reuse only on a matching config digest and data identity, settings that do what they
say (eval.average, eval.iou_gate), one config set / data per table."""
import json
import logging
import re
import shutil

import pandas as pd
import pytest
import torch

import ravar_bench
from ravar_bench.engine.data_source import open_source
from ravar_bench.engine.provenance import PROVENANCE_COLUMNS, code_version
from ravar_bench.errors import ResultsError, UsageError
from ravar_bench.report.leaderboard import write_leaderboard
from ravar_bench.runner.bench import run_benchmark
from ravar_bench.testing import write_tiny_config
from ravar_bench.testing.fault_battery import fast_options

FAST = fast_options()


def _run(methods, out, root, **kw):
    kw.setdefault("cfg_options", FAST)
    return run_benchmark(methods, out, data="refava", data_root=str(root), progress=False, pictures=False, **kw)


def _row(out, method="x3d", split="val"):
    return json.loads((out / "results" / f"{method}__{split}__seed0.json").read_text())


def test_changed_epochs_retrain_and_keep_the_old_row(tmp_path, tiny_synth_root, caplog):
    """The issue's check: --epochs 1 then --epochs 2 into one --out -> a row with epochs 2, the first kept."""
    out = tmp_path / "run"
    _run(["x3d"], out, tiny_synth_root, epochs=1)
    first = _row(out)
    with caplog.at_level(logging.WARNING, logger="ravar_bench.engine.reuse"):
        _run(["x3d"], out, tiny_synth_root, epochs=2)
    assert _row(out)["epochs"] == 2 and _row(out, split="test")["epochs"] == 2
    old = list((out / "results" / "superseded").glob("*/x3d__val__seed0.json"))
    assert len(old) == 1 and json.loads(old[0].read_text()) == first
    assert list((out / "runs/x3d/seed0/superseded").glob("*/model.pt"))  # the old weights kept too
    lines = [r.getMessage() for r in caplog.records if "earlier results not reused" in r.getMessage()]
    assert len(lines) == 1 and first["config_digest"] in lines[0]
    meta = json.loads((out / "runs/x3d/seed0/meta.json").read_text())
    assert meta["epochs"] == 2 and meta["config_digest"] == _row(out)["config_digest"] != first["config_digest"]
    csv = pd.read_csv(out / "results.csv")
    assert set(PROVENANCE_COLUMNS) <= set(csv.columns) and (csv["epochs"] == 2).all()
    # the same command again reuses everything
    model = out / "runs/x3d/seed0/model.pt"
    before = (model.stat().st_mtime_ns, (out / "results/x3d__val__seed0.json").stat().st_mtime_ns)
    _run(["x3d"], out, tiny_synth_root, epochs=2)
    assert (model.stat().st_mtime_ns, (out / "results/x3d__val__seed0.json").stat().st_mtime_ns) == before


def test_rows_record_provenance_never_a_path(tmp_path, tiny_synth_root):
    out = tmp_path / "run"
    _run(["chance"], out, tiny_synth_root)
    row = _row(out, "chance")
    assert all(row[c] not in (None, "") for c in PROVENANCE_COLUMNS if c != "data_generator")
    assert row["data"] == f"refava:{row['data_digest']}" and row["torch_version"] == torch.__version__
    assert row["suite_version"] == ravar_bench.__version__
    assert re.fullmatch(r"cpu \(.+, [A-Z0-9_]+, \d+ threads\)", row["device"]), row["device"]  # the CPU named
    assert str(tiny_synth_root) not in json.dumps(row) and str(tiny_synth_root) not in (out / "leaderboard.md").read_text()
    assert row["data_digest"] in (out / "leaderboard.md").read_text()
    assert row["git_commit"][:12] in (out / "leaderboard.md").read_text()


def test_data_identity_follows_the_annotations_not_the_path(tmp_path, tiny_synth_root):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_synth_root / "annotations", copy / "annotations")
    orig = open_source("refava", str(tiny_synth_root), progress=False).identity
    assert open_source("refava", str(copy), progress=False).identity == orig
    p = copy / "annotations" / "test_set_description_crr_final.pkl"
    import pickle

    d = pickle.loads(p.read_bytes())
    k = sorted(d)[0]
    d[k] = [d[k][0] + " again"]
    p.write_bytes(pickle.dumps(d))
    assert open_source("refava", str(copy), progress=False).identity != orig


def test_code_version_outside_a_checkout(tmp_path, monkeypatch):
    from ravar_bench.engine import provenance

    real = provenance.REPO_ROOT
    with monkeypatch.context() as mp:
        mp.setattr(provenance, "REPO_ROOT", tmp_path)
        code_version.cache_clear()
        v = code_version()
    code_version.cache_clear()
    assert v["git_commit"] == "unknown" and v["git_dirty"] == "unknown"
    if (real / ".git").exists():  # a checkout (not an unpacked archive): the commit and a dirty flag
        inside = code_version()
        assert len(inside["git_commit"]) == 40 and isinstance(inside["git_dirty"], bool)


def test_eval_settings_rescore_without_retraining(tmp_path, tiny_synth_root):
    """iou_gate None -> no gated columns; 0 -> a valid gate (keeps every score); eval.average picks the headline;
    a change of eval settings re-scores the same model."""
    out = tmp_path / "run"
    _run(["chance"], out, tiny_synth_root, cfg_options={**FAST, "eval.iou_gate": None})
    row = _row(out, "chance")
    assert not any(k.startswith("gated_") for k in row) and row["iou_gate"] is None
    with pytest.raises(ResultsError, match="eval.iou_gate"):
        write_leaderboard(out, protocol="gated")
    model = out / "runs/chance/seed0/model.pt"
    t = model.stat().st_mtime_ns
    _run(["chance"], out, tiny_synth_root, cfg_options={**FAST, "eval.iou_gate": 0, "eval.average": "macro"})
    assert model.stat().st_mtime_ns == t  # evaluation settings only: the trained model is reused
    row = _row(out, "chance")
    assert row["iou_gate"] == 0 and row["protocol"] == "macro"
    assert row["gated_mAP"] == pytest.approx(row["mAP"]) and row["gated_AUROC"] == pytest.approx(row["AUROC"])
    assert "plain mean" in (out / "leaderboard.md").read_text()  # the headline protocol is eval.average's
    with pytest.raises(UsageError, match="eval.average"):
        _run(["chance"], tmp_path / "bad", tiny_synth_root, cfg_options={**FAST, "eval.average": "micro"})


def test_mixed_tables_refused_unless_one_is_picked(tmp_path):
    rows = [dict(method=m, family="AAL", split=s, seed=0, mIoU=1.0, mAP=2.0, AUROC=3.0, config_set=cs,
                 data="synthetic:abc123", n_instances=5) for m, cs in (("x3d", "tiny"), ("i3d", "full"))
            for s in ("val", "test")]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ResultsError, match=r"mixes rows of 2 config sets \(full, tiny\).*--config-set"):
        write_leaderboard(tmp_path)
    md = write_leaderboard(tmp_path, config_set="tiny").read_text()
    assert "| x3d " in md and "| i3d " not in md
    with pytest.raises(ResultsError, match="--data other"):
        write_leaderboard(tmp_path, config_set="tiny", data="other")
    assert "| x3d " in write_leaderboard(tmp_path, config_set="tiny", data="abc").read_text()


def test_no_detection_count_is_per_split(tmp_path, tiny_synth_root):
    from ravar_bench.config import load_config
    from ravar_bench.engine.text_cache import TextFeatureCache
    from ravar_bench.engine.trainer import train_and_evaluate
    from ravar_bench.method import Method
    from ravar_bench.registry import register_method

    cdir = write_tiny_config(tmp_path / "cfg", "model = dict(type='test_nodet_probe')\n"
                                               "train = dict(epochs=1, batch_size=4)\n")

    @register_method("test_nodet_probe", family="Control", config_dir=str(cdir))
    class NoDet(Method):
        """Counts every instance it sees outside training as 'no detection', like clip_detr's fallback."""
        needs = frozenset({"text_emb"})

        def __init__(self, text_dim):
            super().__init__()
            self.lin = torch.nn.Linear(text_dim, 8)
            self.feat_dim = 8
            self.no_detection_count = 0

        def forward(self, b):
            self.no_detection_count += len(b["key"])
            return self.lin(b["text_emb"])

    src = open_source("refava", str(tiny_synth_root), progress=False)
    cfg = load_config("test_nodet_probe", "tiny", FAST)
    rows = train_and_evaluate(cfg, src, TextFeatureCache(dict(cfg.text_encoder)), 0, tmp_path / "out", progress=False)
    assert [r["no_detection_count"] for r in rows] == [len(src.splits["val"]), len(src.splits["test"])]
