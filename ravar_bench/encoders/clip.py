"""CLIP towers from open_clip (shared by CLIP4Clip, MeVTR and the CLIP+X single-frame methods).

open_clip ships its BPE vocabulary, so tokenising works offline; weights come only from a local file
(``pretrained=/path/to/open_clip_model.bin|.safetensors``), never from a hub tag.
"""
from __future__ import annotations

import torch
from torch import nn

from .checkpoint import load_into


def build_clip(model_name: str | None = None, embed_dim: int | None = None, vision: dict | None = None,
               text: dict | None = None, pretrained: str | None = None) -> nn.Module:
    """``model_name`` (an open_clip architecture name such as 'ViT-B-32') or explicit tower configs."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    if model_name:
        base = open_clip.get_model_config(model_name)
        if base is None:
            raise KeyError(f"open_clip knows no architecture {model_name!r}")
        embed_dim = embed_dim or base["embed_dim"]
        vision = {**base["vision_cfg"], **(vision or {})}
        text = {**base["text_cfg"], **(text or {})}
    if embed_dim is None or vision is None or text is None:
        raise ValueError("build_clip needs model_name or all of embed_dim, vision, text")
    model = open_clip.CLIP(embed_dim=embed_dim, vision_cfg=CLIPVisionCfg(**vision), text_cfg=CLIPTextCfg(**text))
    if pretrained:
        load_into(model, pretrained, strip_prefixes=("module.", "clip."), what="open_clip checkpoint")
    return model


class ClipTokenizer:
    """open_clip's BPE tokenizer (offline) at a fixed context length; over-long texts are truncated
    by the tokenizer (it keeps the end-of-text token), empty texts are refused."""

    def __init__(self, context_length: int):
        import open_clip

        self._tok = open_clip.get_tokenizer("ViT-B-32")
        self.context_length = context_length

    def __call__(self, texts: list[str]) -> torch.Tensor:
        for t in texts:
            if not t or not t.strip():
                raise ValueError("empty reference text: every instance needs a non-empty referring sentence")
        return self._tok(list(texts), context_length=self.context_length)
