"""BLIP-2's image encoder + Q-Former applied per frame (shared by RefAtomNet and the BLIPv2 baseline).

Built from transformers' own building blocks (``Blip2VisionModel`` / ``Blip2QFormerModel``), never
re-implemented. Attribute names follow ``transformers.Blip2Model`` (``vision_model``, ``query_tokens``,
``qformer``), so a folder written by ``Blip2Model.save_pretrained`` (or ``Blip2ForImageTextRetrieval``,
``Blip2ForConditionalGeneration``) loads key for key; the language model's weights are skipped.

API (fixed; other methods import it)::

    enc = Blip2VideoEncoder(vision=dict(...), qformer=dict(...), num_query_tokens=32, freeze_vision=True,
                            pretrained=None)
    enc.hidden_size                       # the Q-Former width
    enc(video)                            # (B, T, 3, H, W) -> (B, T, Q, hidden): per-frame query outputs
    enc(video, text_embeds, text_mask)    # text_embeds (B, L, hidden) appended after the queries (BLIP-2's
                                          # joint query+text mode); only the Q query positions are returned
    enc(video, text_embeds, text_mask, return_text=True)  # and the text positions (B, T, L, hidden)
    enc.encode_text(text_embeds, text_mask)               # the Q-Former's text side alone (B, L, hidden)

Notes
- ``vision`` -> ``Blip2VisionConfig`` kwargs, ``qformer`` -> ``Blip2QFormerConfig`` kwargs. The Q-Former's
  ``encoder_hidden_size`` defaults to the vision width. Defaults of both configs are BLIP-2's
  (EVA ViT-g/14 at 224 px: width 1408, 39 layers; Q-Former: BERT-base width 768, 12 layers,
  cross-attention every 2nd layer), i.e. ``Blip2VisionConfig()`` / ``Blip2QFormerConfig()``.
- ``Blip2VisionConfig``'s default ``initializer_range`` is 1e-10 (it expects pretrained weights): a randomly
  initialised ViT with it outputs (almost) the same vector for every image. Random-init configs (tiny)
  should set ``vision=dict(initializer_range=0.02, ...)``.
- Joint query+text mode needs the Q-Former's text feed-forward layers: ``qformer=dict(use_qformer_text_input=True)``
  (a clear error otherwise).
- The query tokens are initialised N(0, initializer_range) as in LAVIS (transformers' ``Blip2Model`` zeroes
  them, which with random weights makes all Q queries identical forever: a symmetry nothing breaks).
- A frozen vision tower runs under ``torch.no_grad`` and stays in eval mode.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from torch import nn

from ..method import FrozenStaysEval
from .checkpoint import CheckpointError, check_complete, read_state_dict, record_load, sniff_layout
from .frozen_cache import FrozenFeatureCache

log = logging.getLogger(__name__)

# Keys of a Blip2* checkpoint that belong to this module (everything else, e.g. language_model.*, is skipped).
_OWN_PREFIXES = ("vision_model.", "qformer.", "query_tokens")
_STRIP = ("module.", "blip2.", "model.")


def _resolve_pretrained(path: str) -> list[Path]:
    """The weight file(s) behind ``pretrained``: a save_pretrained folder or a single state-dict file."""
    p = Path(path).expanduser()
    if not p.exists():
        hint = ""
        if not str(path).startswith((".", "/", "~")) and str(path).count("/") == 1:
            hint = (f" It looks like a hub id; nothing is downloaded at run time. Run "
                    f"Blip2Model.from_pretrained('{path}').save_pretrained('/models/blip2') on a machine with network "
                    f"access and set model.pretrained=/models/blip2.")
        raise FileNotFoundError(
            f"BLIP-2 pretrained={path!r}: no local file or folder there. Put a folder written by "
            f"transformers' Blip2Model.save_pretrained (config.json + model*.safetensors) or a state-dict file at that "
            f"path.{hint}")
    if p.is_file():
        return [p]
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        idx = p / index_name
        if idx.is_file():
            weight_map = json.loads(idx.read_text())["weight_map"]
            shards = sorted({f for k, f in weight_map.items() if _strip(k).startswith(_OWN_PREFIXES)})
            if not shards:
                raise KeyError(f"BLIP-2 pretrained={p}: {index_name} names no vision_model./qformer./query_tokens keys")
            return [p / s for s in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (p / name).is_file():
            return [p / name]
    raise FileNotFoundError(f"BLIP-2 pretrained={p}: the folder holds no model.safetensors, pytorch_model.bin or "
                            f"shard index; save it with Blip2Model.save_pretrained")


# LAVIS's EVA ViT-g (lavis/models/eva_vit.py) -> transformers' Blip2VisionModel; ln_vision (LAVIS applies it after
# the ViT, which has no final norm) is Blip2VisionModel's post_layernorm
_LAVIS_VIT = (("cls_token", "embeddings.class_embedding"), ("pos_embed", "embeddings.position_embedding"),
              ("patch_embed.proj.", "embeddings.patch_embedding."))
_LAVIS_BLOCK = (("norm1.", "layer_norm1."), ("norm2.", "layer_norm2."), ("attn.qkv.", "self_attn.qkv."),
                ("attn.proj.", "self_attn.projection."), ("mlp.", "mlp."))


def _swap(rest: str, table) -> str | None:
    return next((new + rest[len(old):] for old, new in table if rest.startswith(old)), None)


def lavis_name(key: str) -> str | None:
    """The suite's (transformers Blip2) name of one LAVIS BLIP-2 key, or None for keys this module has no place
    for (the language model, its projection, the ITM / ITC heads, the Q-Former's LM head and word embeddings) and
    for EVA's q_bias / v_bias (:func:`lavis_to_transformers` joins them into the qkv bias)."""
    if key == "query_tokens":
        return key
    if key.startswith("ln_vision."):
        return "vision_model.post_layernorm." + key[len("ln_vision."):]
    m = re.match(r"visual_encoder\.blocks\.(\d+)\.(.*)", key)
    if m:
        rest = _swap(m.group(2), _LAVIS_BLOCK)
        return None if rest is None else f"vision_model.encoder.layers.{m.group(1)}.{rest}"
    if key.startswith("visual_encoder."):
        rest = _swap(key[len("visual_encoder."):], _LAVIS_VIT)
        return None if rest is None else "vision_model." + rest
    if key.startswith("Qformer.bert.embeddings.LayerNorm."):  # transformers' Q-Former keeps only this norm
        return "qformer.layernorm." + key[len("Qformer.bert.embeddings.LayerNorm."):]
    if key.startswith("Qformer.bert.encoder.layer."):  # LAVIS's BertAttention.self is transformers' .attention
        return "qformer." + re.sub(r"(attention)\.self\.", r"\1.attention.", key[len("Qformer.bert."):])
    return None


def lavis_to_transformers(sd: dict) -> dict:
    """A LAVIS BLIP-2 state dict (``{'model': ...}`` unwrapped) in the suite's names. EVA's attention has q and v
    biases and none for k; transformers' qkv bias is their concatenation with zeros in k's place (as transformers'
    own BLIP-2 conversion script builds it)."""
    out = {n: v for n, v in ((lavis_name(k), v) for k, v in sd.items()) if n is not None}
    for k, q in sd.items():
        m = re.match(r"visual_encoder\.blocks\.(\d+)\.attn\.q_bias$", k)
        if m:
            v = sd[f"visual_encoder.blocks.{m.group(1)}.attn.v_bias"]
            out[f"vision_model.encoder.layers.{m.group(1)}.self_attn.qkv.bias"] = torch.cat([q, torch.zeros_like(q), v])
    return out


def _strip(key: str) -> str:
    for pre in _STRIP:
        if key.startswith(pre):
            return key[len(pre):]
    return key


class Blip2VideoEncoder(FrozenStaysEval):
    def __init__(self, vision: dict, qformer: dict, num_query_tokens: int = 32, freeze_vision: bool = True,
                 pretrained: str | None = None):
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel

        vcfg = Blip2VisionConfig(**(vision or {}))
        qkw = dict(qformer or {})
        qkw.setdefault("encoder_hidden_size", vcfg.hidden_size)
        if qkw["encoder_hidden_size"] != vcfg.hidden_size:
            raise ValueError(f"Blip2VideoEncoder: qformer.encoder_hidden_size={qkw['encoder_hidden_size']} must equal "
                             f"the vision width {vcfg.hidden_size}")
        qcfg = Blip2QFormerConfig(**qkw)
        self.vision_model = Blip2VisionModel(vcfg)
        self.query_tokens = nn.Parameter(torch.zeros(1, num_query_tokens, qcfg.hidden_size))
        nn.init.normal_(self.query_tokens, std=qcfg.initializer_range)
        self.qformer = Blip2QFormerModel(qcfg)
        self.hidden_size: int = qcfg.hidden_size
        self.vision_hidden_size: int = vcfg.hidden_size
        self.num_query_tokens = num_query_tokens
        self.image_size = vcfg.image_size
        self.text_input = bool(qcfg.use_qformer_text_input)
        self.freeze_vision = freeze_vision
        self.feature_cache = FrozenFeatureCache(enabled=freeze_vision)
        self.load_report: dict | None = None
        if pretrained:
            self.load_report = self.load_pretrained(pretrained)
        if freeze_vision:
            for prm in self.vision_model.parameters():
                prm.requires_grad_(False)
            self.vision_model.eval()

    # ------------------------------------------------------------------ weights
    def text_layers_not_in_checkpoints(self) -> list[str]:
        """The Q-Former's text feed-forward layers (``use_qformer_text_input``: ``encoder.layer.N.intermediate`` /
        ``output``): BLIP-2's OPT / T5 checkpoints (and transformers' Blip2Model folders) do not hold them (only
        the query side, ``intermediate_query`` / ``output_query``), so they start from their initialisation
        (BERT-style N(0, initializer_range), as transformers builds them)."""
        return [k for k in self.state_dict() if k.startswith("qformer.encoder.layer.")
                and k.split(".")[4] in ("intermediate", "output")]

    def load_pretrained(self, path: str) -> dict:
        """Load vision_model.* / query_tokens / qformer.* from a local Blip2 folder or state-dict file; every tensor
        gets a value (except the Q-Former text layers no BLIP-2 checkpoint has, which are logged) or it is an error."""
        own, layouts, files, per_file = {}, [], _resolve_pretrained(path), {}
        for f in files:
            sd = read_state_dict(f, what="BLIP-2 checkpoint")
            layouts.append(sniff_layout(sd))
            if "LAVIS" in layouts[-1]:  # the authors' RefAtomNet code loads BLIP-2 through LAVIS
                sd = lavis_to_transformers(sd)
            for k, v in sd.items():
                k = _strip(k)
                if k.startswith(_OWN_PREFIXES):
                    own[k] = v
                    per_file[f] = per_file.get(f, 0) + 1
        layout = layouts[0]
        mine = self.state_dict()
        module_keys = list(mine)
        bad = [(k, tuple(v.shape), tuple(mine[k].shape)) for k, v in own.items()
               if k in mine and tuple(v.shape) != tuple(mine[k].shape)]
        if bad:  # the checkpoint is of another architecture than the config
            raise CheckpointError(f"BLIP-2 pretrained={path}: the checkpoint does not fit model.blip2.vision / qformer "
                                  f"/ num_query_tokens of the config: {len(bad)} tensors of other shapes "
                                  f"(key, file, model) {bad[:3]}")
        text_only = self.text_layers_not_in_checkpoints()
        replaced = [k for k in text_only if k not in own]
        check_complete(module_keys, own, path, "BLIP-2 checkpoint", layout, replaced=replaced,
                       expect="a folder written by transformers' Blip2Model.save_pretrained (docs/model_zoo.md)")
        res = self.load_state_dict(own, strict=False)
        report = {"missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys)}
        if replaced:
            log.warning("BLIP-2 checkpoint %s: the Q-Former's %d text feed-forward tensors (encoder.layer.N."
                        "intermediate / output; text_path='qformer') are not in BLIP-2 OPT / T5 checkpoints: they start "
                        "from transformers' BERT-style initialisation and are trained", path, len(replaced))
        for f in files:  # per shard: the tensors it set, of the module's total
            record_load(self, f, layout, per_file.get(f, 0), len(module_keys))
        return report

    # ------------------------------------------------------------------ forward
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> the ViT's last hidden state (N, 1 + P, vision width)."""
        if self.freeze_vision:
            with torch.no_grad():
                return self.vision_model(pixel_values=frames).last_hidden_state
        return self.vision_model(pixel_values=frames).last_hidden_state

    def encode_text(self, text_embeds: torch.Tensor, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The Q-Former's text side alone (BLIP-2's text-only mode: no queries, no image): (B, L, hidden) embeddings
        -> (B, L, hidden); padding positions (``text_mask`` False) are not attended to."""
        if not self.text_input:
            raise ValueError("Blip2VideoEncoder: text given, but the Q-Former was built without its text feed-forward "
                             "layers; set qformer=dict(use_qformer_text_input=True, ...)")
        mask = None if text_mask is None else text_mask.long()
        return self.qformer(query_embeds=text_embeds, query_length=0, attention_mask=mask).last_hidden_state

    def forward(self, video: torch.Tensor, text_embeds: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None, clip_keys: list[str] | None = None,
                return_text: bool = False):
        """``clip_keys`` (batch["clip_key"]): with a frozen ViT its per-clip outputs come from ``feature_cache``.
        ``return_text``: also the text positions' outputs (B, T, L, hidden) - the Q-Former's text side, which shares
        the self-attention with each frame's queries (BLIP-2's joint query+text mode)."""
        if video.dim() != 5 or video.shape[2] != 3 or tuple(video.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"Blip2VideoEncoder: video must be (B, T, 3, {self.image_size}, {self.image_size}) "
                             f"(vision.image_size={self.image_size}), got {tuple(video.shape)}")
        b, t = video.shape[:2]
        dtype = self.vision_model.embeddings.patch_embedding.weight.dtype
        if self.freeze_vision and clip_keys is not None:
            img = self.feature_cache(clip_keys, video.to(dtype),
                                     lambda v: self.encode_frames(v.flatten(0, 1)).unflatten(0, (v.shape[0], t)))
            img = img.flatten(0, 1)
        else:
            img = self.encode_frames(video.flatten(0, 1).to(dtype))
        q = self.num_query_tokens
        query = self.query_tokens.expand(b * t, -1, -1)
        attn_mask = None
        if text_embeds is not None:
            if not self.text_input:
                raise ValueError("Blip2VideoEncoder: text_embeds given, but the Q-Former was built without its text "
                                 "feed-forward layers; set qformer=dict(use_qformer_text_input=True, ...)")
            if text_embeds.dim() != 3 or text_embeds.shape[0] != b or text_embeds.shape[2] != self.hidden_size:
                raise ValueError(f"Blip2VideoEncoder: text_embeds must be (B={b}, L, {self.hidden_size}), "
                                 f"got {tuple(text_embeds.shape)}")
            txt = text_embeds.unsqueeze(1).expand(b, t, *text_embeds.shape[1:]).flatten(0, 1).to(query.dtype)
            query = torch.cat([query, txt], dim=1)
            if text_mask is not None:
                tm = text_mask.bool().unsqueeze(1).expand(b, t, text_mask.shape[1]).flatten(0, 1)
                attn_mask = torch.cat([torch.ones(b * t, q, dtype=torch.long, device=tm.device), tm.long()], dim=1)
        out = self.qformer(query_embeds=query, query_length=q, attention_mask=attn_mask,
                           encoder_hidden_states=img).last_hidden_state
        queries = out[:, :q].reshape(b, t, q, self.hidden_size)
        if not return_text:
            return queries
        if text_embeds is None:
            raise ValueError("Blip2VideoEncoder: return_text=True needs text_embeds")
        return queries, out[:, q:].reshape(b, t, -1, self.hidden_size)


__all__ = ["Blip2VideoEncoder"]
