"""Writes the key-name / shape lists of published checkpoint layouts (tests/test_checkpoint_keys.py reads them).

No weights are downloaded or committed: each list is the state dict of the model that the publisher's own code
builds for that checkpoint, on the meta device, plus the container the file wraps it in:

- mmaction2 (i3d, x3d, mvitv2_b, videomae2_b): the Recognizer3D built from the config bundled in the mmaction2
  1.2.0 wheel (``mmaction/.mim/configs/recognition/...``) that the checkpoint named in its metafile.yml was
  trained / converted with. mmengine's CheckpointHook saves ``{'meta': ..., 'state_dict': model.state_dict(), ...}``
  (published files keep 'meta' and 'state_dict'); the keys are ``backbone.*`` and ``cls_head.*``.
- hiera-transformer 0.1.4 (hiera_b): ``hiera.hiera_base_16x224()``; its hub loader reads ``state_dict["model_state"]``
  (hiera_utils.py), so the file is ``{'model_state': ...}``.
- open_clip (clip4clip / mevtr / xclip towers): ``open_clip.create_model("ViT-B-32")``, whose released
  ``open_clip_pytorch_model.bin`` is that state dict with no container.

Run from the repository root:  .venv/bin/python tests/data/checkpoint_keys/make_key_lists.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

MMACTION = {  # our name -> (bundled config, the published checkpoint that config made, from its metafile.yml)
    "i3d": ("recognition/i3d/i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb.py",
            "i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb_20220812-e213c223.pth"),
    "x3d": ("recognition/x3d/x3d_m_16x5x1_facebook-kinetics400-rgb.py",
            "x3d_m_16x5x1_facebook-kinetics400-rgb_20201027-3f42382a.pth"),
    "mvitv2_b": ("recognition/mvit/mvit-base-p244_32x3x1_kinetics400-rgb.py",
                 "mvit-base-p244_32x3x1_kinetics400-rgb_20221021-f392cd2d.pth"),
    "videomae2_b": ("recognition/videomaev2/vit-base-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400.py",
                    "vit-base-p16_videomaev2-vit-g-dist-k710-pre_16x4x1_kinetics-400_20230510-3e7f93b2.pth"),
}


def write(name: str, header: list[str], sd: dict) -> None:
    lines = [f"# {h}" for h in header] + [f"{k}\t{','.join(map(str, v.shape))}" for k, v in sd.items()]
    (HERE / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    print(name, len(sd), "keys")


def mmaction_lists() -> None:
    import mmaction
    from mmengine.config import Config

    from ravar_bench.encoders.checkpoint import meta_safe_build
    from ravar_bench.encoders.mmaction_compat import mmaction_models

    mmaction_models()
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules

    register_all_modules(init_default_scope=True)  # the data preprocessor is looked up in mmaction's scope

    root = Path(mmaction.__file__).parent / ".mim" / "configs"
    for name, (cfg_path, ckpt) in MMACTION.items():
        cfg = Config.fromfile(str(root / cfg_path))
        try:
            with torch.device("meta"), meta_safe_build():
                model = MODELS.build(cfg.model)
        except RuntimeError:  # a constructor that calls .item() on a tensor it makes: build on the CPU instead
            model = MODELS.build(cfg.model)
        write(name, [f"mmaction2 {mmaction.__version__}: the Recognizer built from its bundled config {cfg_path}",
                     f"published checkpoint: {ckpt}",
                     "container: {'meta': {...}, 'state_dict': <these keys>}",
                     "made by tests/data/checkpoint_keys/make_key_lists.py (no weights)"],
              model.state_dict())


def hiera_list() -> None:
    import importlib.metadata

    import hiera

    from ravar_bench.encoders.checkpoint import meta_safe_build

    with torch.device("meta"), meta_safe_build():
        model = hiera.hiera_base_16x224(pretrained=False)
    write("hiera_b", [f"hiera-transformer {importlib.metadata.version('hiera-transformer')}: "
                      "hiera.hiera_base_16x224(pretrained=False)",
                      "published checkpoint: hiera_base_16x224.pth (mae_k400_ft_k400)",
                      "container: {'model_state': <these keys>} (hiera_utils.py reads state_dict['model_state'])",
                      "made by tests/data/checkpoint_keys/make_key_lists.py (meta device, no weights)"],
          model.state_dict())


def clip_list() -> None:
    import open_clip

    with torch.device("meta"):
        model = open_clip.create_model("ViT-B-32", pretrained=None, device="meta")
    write("clip_vit_b32", [f"open_clip {open_clip.__version__}: open_clip.create_model('ViT-B-32')",
                           "published checkpoint: open_clip_pytorch_model.bin of the ViT-B-32 releases",
                           "container: none (the state dict itself)",
                           "made by tests/data/checkpoint_keys/make_key_lists.py (meta device, no weights)"],
          model.state_dict())


if __name__ == "__main__":
    mmaction_lists()
    hiera_list()
    clip_list()
