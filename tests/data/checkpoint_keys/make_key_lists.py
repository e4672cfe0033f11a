"""Writes the key-name / shape lists of published checkpoint layouts (tests/test_checkpoint_keys.py reads them).

No weights are downloaded or committed: each list is the state dict of the model that the publisher's own code
builds for that checkpoint, on the meta device, plus the container the file wraps it in:

- mmaction2 (i3d, x3d, mvitv2_b, videomae2_b): the Recognizer3D built from the config bundled in the mmaction2
  1.2.0 wheel (``mmaction/.mim/configs/recognition/...``) that the checkpoint named in its metafile.yml was
  trained / converted with. mmengine's CheckpointHook saves ``{'meta': ..., 'state_dict': model.state_dict(), ...}``
  (published files keep 'meta' and 'state_dict'); the keys are ``backbone.*`` and ``cls_head.*``.
- hiera-transformer 0.1.4 (hiera_b): ``hiera.hiera_base_16x224()``; its hub loader reads ``state_dict["model_state"]``
  (hiera_utils.py), so the file is ``{'model_state': ...}``.
- LAVIS BLIP-2 (lavis_blip2_opt: RefAtomNet / BLIPv2 / AskAnything's BLIP-2): LAVIS is not installed, so
  ``lavis_blip2_keys`` spells out the module tree of its code (read at the commit it names); ``{'model': ...}``.
- open_clip (clip4clip / mevtr / xclip towers): ``open_clip.create_model("ViT-B-32")``, whose released
  ``open_clip_pytorch_model.bin`` is that state dict with no container.
- Meta's SAM (clip_sam: sam_meta_vit_b, sam_meta_small): segment-anything is not a pip dependency; give its
  checkout as ``SAM_SRC=/path/to/segment-anything`` (the folder holding ``segment_anything/``, read at the commit
  the header names). ``build_sam_vit_b()``'s state dict is the released ``sam_vit_b_01ec64.pth`` (no container);
  sam_meta_small is the same classes with a 2-block, 32-wide image encoder (for value-by-value tests).

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


LAVIS_COMMIT = "506965b9c4a18c1e565bd32acaccabe0198433f7"


def lavis_blip2_keys(depth=39, width=1408, mlp=6144, patch=14, img=224, q_layers=12, hidden=768, inter=3072,
                     cross_freq=2, n_query=32, text_ffn=False) -> dict:
    """key -> shape of a LAVIS BLIP-2 checkpoint's ``model`` dict. LAVIS is not installed here, so this spells out
    the module tree of its code (salesforce/LAVIS at LAVIS_COMMIT): eva_vit.create_eva_vit_g (VisionTransformer:
    cls_token, pos_embed, patch_embed.proj, blocks.N.{norm1, attn.{q_bias, v_bias, qkv (no bias), proj}, norm2,
    mlp.{fc1, fc2}}, no final norm), blip2.Blip2Base.init_vision_encoder (ln_vision) and init_Qformer
    (query_tokens; Qformer.BertLMHeadModel: bert.embeddings.{LayerNorm, position_ids}, bert.encoder.layer.N.
    {attention.{self.{query,key,value}, output.{dense, LayerNorm}}, crossattention (layer_num % cross_attention_freq
    == 0, key/value from the vision width), intermediate_query, output_query}). blip2_opt / blip2_t5 set
    ``layer.output = layer.intermediate = None`` and drop the word / position embeddings and the LM head
    (``text_ffn=False``); the stage-1 file (blip2_pretrained.pth) keeps them."""
    lin = lambda o, i: {"weight": (o, i), "bias": (o,)}  # noqa: E731
    norm = lambda d: {"weight": (d,), "bias": (d,)}  # noqa: E731
    out = {"visual_encoder.cls_token": (1, 1, width), "visual_encoder.pos_embed": (1, (img // patch) ** 2 + 1, width),
           "visual_encoder.patch_embed.proj.weight": (width, 3, patch, patch),
           "visual_encoder.patch_embed.proj.bias": (width,)}

    def add(prefix, params):
        out.update({f"{prefix}.{k}": v for k, v in params.items()})

    for i in range(depth):
        b = f"visual_encoder.blocks.{i}"
        add(f"{b}.norm1", norm(width))
        out[f"{b}.attn.q_bias"] = out[f"{b}.attn.v_bias"] = (width,)
        out[f"{b}.attn.qkv.weight"] = (3 * width, width)
        add(f"{b}.attn.proj", lin(width, width))
        add(f"{b}.norm2", norm(width))
        add(f"{b}.mlp.fc1", lin(mlp, width))
        add(f"{b}.mlp.fc2", lin(width, mlp))
    add("ln_vision", norm(width))
    out["query_tokens"] = (1, n_query, hidden)
    add("Qformer.bert.embeddings.LayerNorm", norm(hidden))
    out["Qformer.bert.embeddings.position_ids"] = (1, 512)
    if text_ffn:
        out["Qformer.bert.embeddings.word_embeddings.weight"] = (30523, hidden)
        out["Qformer.bert.embeddings.position_embeddings.weight"] = (512, hidden)
    for n in range(q_layers):
        L = f"Qformer.bert.encoder.layer.{n}"
        kinds = [("attention", hidden)] + ([("crossattention", width)] if n % cross_freq == 0 else [])
        for att, kv in kinds:
            add(f"{L}.{att}.self.query", lin(hidden, hidden))
            add(f"{L}.{att}.self.key", lin(hidden, kv))
            add(f"{L}.{att}.self.value", lin(hidden, kv))
            add(f"{L}.{att}.output.dense", lin(hidden, hidden))
            add(f"{L}.{att}.output.LayerNorm", norm(hidden))
        for suffix in ("_query",) + (("",) if text_ffn else ()):
            add(f"{L}.intermediate{suffix}.dense", lin(inter, hidden))
            add(f"{L}.output{suffix}.dense", lin(hidden, inter))
            add(f"{L}.output{suffix}.LayerNorm", norm(hidden))
    add("opt_proj", lin(2560, hidden))  # blip2_opt's projection into OPT-2.7B (not the suite's)
    return out


def lavis_list() -> None:
    class _Shape(tuple):
        shape = property(lambda self: self)

    write("lavis_blip2_opt", [f"salesforce/LAVIS {LAVIS_COMMIT}: module tree of blip2_opt (EVA ViT-g, 39 blocks; "
                              "Q-Former without its text FFN), spelled out by lavis_blip2_keys()",
                              "published checkpoint: blip2_pretrained_opt2.7b.pth",
                              "container: {'model': <these keys>}",
                              "made by tests/data/checkpoint_keys/make_key_lists.py (no weights)"],
          {k: _Shape(v) for k, v in lavis_blip2_keys().items()})


def sam_lists(src: str) -> None:
    import subprocess
    from functools import partial

    sys.path.insert(0, src)
    from segment_anything import build_sam_vit_b
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    with torch.device("meta"):
        full = build_sam_vit_b().state_dict()
        small = Sam(  # _build_sam's arguments with a small image encoder (its own classes)
            image_encoder=ImageEncoderViT(depth=2, embed_dim=32, img_size=1024, mlp_ratio=4,
                                          norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2,
                                          patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=[1],
                                          window_size=14, out_chans=256),
            prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                                         mask_in_chans=16),
            mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
                depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8), transformer_dim=256, iou_head_depth=3,
                iou_head_hidden_dim=256),
            pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).state_dict()
    where = f"facebookresearch/segment-anything {commit or '(commit unknown)'}"
    write("sam_meta_vit_b", [f"{where}: segment_anything.build_sam_vit_b()",
                             "published checkpoint: sam_vit_b_01ec64.pth (no container)",
                             "made by tests/data/checkpoint_keys/make_key_lists.py (meta device, no weights)"], full)
    write("sam_meta_small", [(f"{where}: segment_anything.modeling.Sam as _build_sam builds it, image encoder "
                              "depth=2, embed_dim=32, num_heads=2, global_attn_indexes=[1] (test size)"),
                             "made by tests/data/checkpoint_keys/make_key_lists.py (meta device, no weights)"], small)


if __name__ == "__main__":
    import os

    mmaction_lists()
    hiera_list()
    clip_list()
    lavis_list()
    if os.environ.get("SAM_SRC"):
        sam_lists(os.environ["SAM_SRC"])
