"""Singularity (Lei et al., "Revealing Single Frame Bias for Video-and-Language Learning", ACL'23), the VQA
model of the paper's VQA family, adapted to RAVAR (paper Sec. 3.2).

Architecture as released (jayleicn/singularity, configs/qa_anet.yaml + config_bert.json):
- vision encoder: BEiT-base/16 (``vit_type: beit``; ``vision_type="vit"`` gives a plain ViT-B/16) from
  transformers, its token outputs through an extra LayerNorm (``vision_layernorm``, BEiT only);
- text encoder: BERT-base whose first ``12 - fusion_layers`` layers read the question alone and whose last
  ``fusion_layers = 3`` layers (``fusion_layer: 9``) add cross-attention to the frame tokens (ALBEF's xbert).
  transformers' ``BertLayer`` only allows cross-attention in causal decoders, so the fusion layers are
  transformers' ``BlipTextEncoder`` layers -- the same BERT layer plus cross-attention (BLIP's "med" is
  xbert's successor), bidirectional under our padding mask -- with BERT's weight names, so BERT-base's
  layers 9-11 load into them;
- training on ONE random frame per clip (``video_input.num_frames: 1``, ``sample_type: rand``); at test
  time (``model.eval()``) all frames: ``eval_frame_ensemble="concat"`` (early fusion, the released ANet-QA
  default: the frames' tokens are concatenated before the multimodal layers) or "mean" / "max" / "lse"
  (late fusion, as ClipBERT: one multimodal pass per frame, then pooled).
The answer decoder (3 BERT layers generating answer words) is not built: RAVAR's head replaces it.

RAVAR adaptation: the reference is asked as a question ("What is <reference> doing?"); the multimodal
encoder's [CLS] output is the joint representation handed to the shared head.
"""
from __future__ import annotations

import functools
import re

import torch
from torch import nn

from ravar_bench.encoders.checkpoint import load_into
from ravar_bench.encoders.pixel_norm import PixelNorm
from ravar_bench.encoders.text_video import (
    as_question,
    bert_tokenizer,
    check_references,
    load_hf_local,
    tokenize_truncating,
)
from ravar_bench.method import Method
from ravar_bench.registry import register_method

ENSEMBLES = ("concat", "mean", "max", "lse")

# Singularity's official files (jayleicn/singularity, models/model_retrieval_base.py + model_vqa.py) hold modules
# this adaptation does not build: the answer decoder, the retrieval projections / temperature / ITM head, the MLM
# head of pre-training (BertForMaskedLM: text_encoder.bert.* + text_encoder.cls.*), the frame position table and
# Singularity-temporal's encoder, BEiT's pooler (Singularity unsets it for QA). They are left out, not loaded.
_OFFICIAL_UNUSED = ("text_decoder.", "text_encoder.cls.", "vision_proj.", "text_proj.", "itm_head.",
                    "temporal_vision_encoder.", "vision_encoder.pooler.")
_OFFICIAL_UNUSED_EXACT = ("temp", "temporal_embeddings")


def singularity_official_key(key: str, n_text: int) -> str | None:
    """A key of Singularity's official file -> this module's name (None: a module it does not build).

    Singularity's text encoder is one 12-layer xbert BertModel whose layers >= fusion_layer (9) add cross-attention;
    here layers < ``n_text`` are ``text_encoder`` and the rest ``fusion`` (BlipTextEncoder: the same layer names,
    attention / crossattention / intermediate / output), so ``text_encoder.encoder.layer.{n_text + j}.*`` ->
    ``fusion.layer.{j}.*``. The suite's own state dict passes unchanged."""
    if key.startswith(_OFFICIAL_UNUSED) or key in _OFFICIAL_UNUSED_EXACT:
        return None
    if key.startswith("text_encoder.bert."):  # a pre-training file: BertForMaskedLM wraps the BertModel
        key = "text_encoder." + key[len("text_encoder.bert."):]
    m = re.match(r"text_encoder\.encoder\.layer\.(\d+)\.(.*)", key)
    if m and int(m.group(1)) >= n_text:
        return f"fusion.layer.{int(m.group(1)) - n_text}.{m.group(2)}"
    return key


def _bert_init(module: nn.Module, std: float):
    """BERT's initialisation (N(0, std) weights, zero biases, unit LayerNorm) for layers transformers builds
    outside a PreTrainedModel (the cross-attention fusion layers), as xbert's BertModel initialises them."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@register_method("singularity", family="VQA", paper_name="Singularity")
class Singularity(Method):
    needs = frozenset({"video", "text"})

    def __init__(self, num_frames: int, img_size: int, vision: dict, text: dict, max_text_len: int = 32,
                 vision_type: str = "beit", fusion_layers: int = 3, eval_frame_ensemble: str = "concat",
                 vision_pretrained: str | None = None, text_pretrained: str | None = None,
                 vocab: str | None = None, pretrained: str | None = None, pixel_mean=None, pixel_std=None,
                 backbone_mean=None, backbone_std=None):
        super().__init__()
        # frames arrive in the data's statistics; BEiT reads them in its own (Singularity: 0.5 / 0.5 for BEiT)
        self.pixel_norm = PixelNorm(pixel_mean, pixel_std, backbone_mean, backbone_std, what="singularity")
        from transformers import BertConfig, BertModel
        from transformers.models.blip.configuration_blip import BlipTextConfig
        from transformers.models.blip.modeling_blip_text import BlipTextEncoder

        if eval_frame_ensemble not in ENSEMBLES:
            raise ValueError(f"singularity: eval_frame_ensemble must be one of {ENSEMBLES}, "
                             f"got {eval_frame_ensemble!r}")
        if vision_type not in ("beit", "vit"):
            raise ValueError(f"singularity: vision_type must be 'beit' or 'vit', got {vision_type!r}")
        self.vision_type, self.ensemble = vision_type, eval_frame_ensemble
        self.num_frames, self.img_size, self.max_text_len = num_frames, img_size, max_text_len

        # ---- vision: BEiT / ViT from transformers
        if vision_type == "beit":
            from transformers import BeitConfig as VCfg
            from transformers import BeitModel as VModel
        else:
            from transformers import ViTConfig as VCfg
            from transformers import ViTModel as VModel
        if vision_pretrained:
            self.vision_encoder = load_hf_local(VModel, vision_pretrained, "singularity: vision_pretrained",
                                                add_pooling_layer=False)
        else:
            self.vision_encoder = VModel(VCfg(**{"image_size": img_size, **vision}), add_pooling_layer=False)
        vc = self.vision_encoder.config
        if vc.image_size != img_size:
            raise ValueError(f"singularity: the vision encoder is built for {vc.image_size} px but data.img_size="
                             f"{img_size}")
        # Singularity adds a LayerNorm on BEiT's token outputs (its "vision_layernorm")
        self.vision_layernorm = nn.LayerNorm(vc.hidden_size, eps=1e-12) if vision_type == "beit" else nn.Identity()

        # ---- text: BERT layers [0, N - F) alone, layers [N - F, N) with cross-attention to the frames
        tcfg = BertConfig(**text)
        n_layers = tcfg.num_hidden_layers
        if not 1 <= fusion_layers <= n_layers:
            raise ValueError(f"singularity: fusion_layers={fusion_layers} must be in [1, {n_layers}]")
        text_cfg = BertConfig(**{**text, "num_hidden_layers": n_layers - fusion_layers})
        self.text_encoder = BertModel(text_cfg, add_pooling_layer=False)
        fcfg = BlipTextConfig(vocab_size=tcfg.vocab_size, hidden_size=tcfg.hidden_size,
                              encoder_hidden_size=vc.hidden_size, intermediate_size=tcfg.intermediate_size,
                              num_hidden_layers=fusion_layers, num_attention_heads=tcfg.num_attention_heads,
                              hidden_act=tcfg.hidden_act, layer_norm_eps=tcfg.layer_norm_eps,
                              hidden_dropout_prob=tcfg.hidden_dropout_prob,
                              attention_probs_dropout_prob=tcfg.attention_probs_dropout_prob,
                              bos_token_id=None, is_decoder=True)  # BLIP's switch adding cross-attention
        self.fusion = BlipTextEncoder(fcfg)
        _bert_init(self.fusion, tcfg.initializer_range)
        if text_pretrained:
            self._load_bert(text_pretrained, n_layers - fusion_layers)
        self.tokenizer = bert_tokenizer(vocab)
        if len(self.tokenizer) > tcfg.vocab_size:
            raise ValueError(f"singularity: tokenizer has {len(self.tokenizer)} tokens but BERT vocab_size="
                             f"{tcfg.vocab_size}")
        self.feat_dim = tcfg.hidden_size
        if pretrained:  # the suite's own state dict or Singularity's official file ({'model': ...})
            load_into(self, pretrained, what="singularity checkpoint",
                      key_map=functools.partial(singularity_official_key, n_text=n_layers - fusion_layers),
                      expect="Singularity's official QA / pre-training file or this module's state dict "
                             "(docs/model_zoo.md)")

    def _load_bert(self, path: str, n_text: int):
        """A local BERT folder: layers < n_text into the text encoder, the rest into the fusion layers
        (their cross-attention stays newly initialised, as in Singularity's init from BERT-base)."""
        from transformers import BertModel

        bert = load_hf_local(BertModel, path, "singularity: text_pretrained", add_pooling_layer=False)
        sd = bert.state_dict()
        n_total = bert.config.num_hidden_layers
        if n_total != n_text + len(self.fusion.layer):
            raise ValueError(f"singularity: text_pretrained has {n_total} layers, the model "
                             f"{n_text} + {len(self.fusion.layer)} fusion layers")
        text_sd, fusion_sd = {}, {}
        for k, v in sd.items():
            if k.startswith("encoder.layer."):
                i = int(k.split(".")[2])
                rest = k.split(".", 3)[3]
                if i < n_text:
                    text_sd[k] = v
                else:
                    fusion_sd[f"layer.{i - n_text}.{rest}"] = v
            else:
                text_sd[k] = v
        self.text_encoder.load_state_dict(text_sd, strict=True)
        res = self.fusion.load_state_dict(fusion_sd, strict=False)
        bad = [k for k in res.missing_keys if "crossattention" not in k] + list(res.unexpected_keys)
        if bad:
            raise KeyError(f"singularity: BERT layers did not map onto the fusion layers: {bad[:5]}")

    # ------------------------------------------------------------------ forward
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, t, 3, H, W) -> (B, t, 1 + P, D) frame tokens."""
        b, t = frames.shape[:2]
        x = self.vision_encoder(pixel_values=self.pixel_norm(frames).flatten(0, 1)).last_hidden_state
        x = self.vision_layernorm(x)
        return x.view(b, t, *x.shape[1:])

    def fuse(self, question: torch.Tensor, qmask: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """question (B, L, D) after the text layers, image tokens (B, N, Dv) -> [CLS] (B, D)."""
        ext = (1.0 - qmask[:, None, None, :].to(question.dtype)) * torch.finfo(question.dtype).min
        out = self.fusion(question, attention_mask=ext, encoder_hidden_states=image_embeds).last_hidden_state
        return out[:, 0]

    def _tokens(self, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        enc = tokenize_truncating(self.tokenizer, texts, self.max_text_len, self.method_name)
        return enc["input_ids"].to(device), enc["attention_mask"].to(device)

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        questions = [as_question(r) for r in check_references(batch["text"], self.method_name)]
        ids, qmask = self._tokens(questions, video.device)
        q = self.text_encoder(input_ids=ids, attention_mask=qmask).last_hidden_state
        b, t = video.shape[:2]
        if self.training:  # single-frame training: one random frame per clip
            pick = torch.randint(0, t, (b,), device=video.device)
            frames = video[torch.arange(b, device=video.device), pick][:, None]
        else:
            frames = video
        img = self.encode_frames(frames)                             # (B, t', 1 + P, D)
        if img.shape[1] == 1 or self.ensemble == "concat":
            return self.fuse(q, qmask, img.flatten(1, 2))
        per_frame = torch.stack([self.fuse(q, qmask, img[:, k]) for k in range(img.shape[1])], 1)
        if self.ensemble == "mean":
            return per_frame.mean(1)
        if self.ensemble == "max":
            return per_frame.max(1).values
        return torch.logsumexp(per_frame, dim=1)

    def contrastive_pair(self, batch):
        """Singularity's vision-text contrastive pretraining pair: BEiT's [CLS] (after its LayerNorm, averaged over
        the clip's frames) against the text encoder's [CLS] of the caption."""
        video = batch["video"]
        ids, mask = self._tokens(batch["text"], video.device)
        text = self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        return self.encode_frames(video)[:, :, 0].mean(dim=1), text
