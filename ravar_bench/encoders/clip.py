"""CLIP towers from open_clip (shared by CLIP4Clip, MeVTR and the CLIP+X single-frame methods).

open_clip ships its BPE vocabulary, so tokenising works offline; weights come only from a local file
(``pretrained=/path/to/open_clip_model.bin|.safetensors``), never from a hub tag.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from .checkpoint import load_into

log = logging.getLogger(__name__)


def build_clip(model_name: str | None = None, embed_dim: int | None = None, vision: dict | None = None,
               text: dict | None = None, pretrained: str | None = None, quick_gelu: bool | None = None) -> nn.Module:
    """``model_name`` (an open_clip architecture name such as 'ViT-B-32') or explicit tower configs.

    ``quick_gelu``: OpenAI's CLIP weights were trained with QuickGELU (open_clip's '*-quickgelu' names set it);
    None takes the named architecture's setting (False for explicit configs).
    """
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    if model_name:
        base = open_clip.get_model_config(model_name)
        if base is None:
            raise KeyError(f"open_clip knows no architecture {model_name!r}")
        embed_dim = embed_dim or base["embed_dim"]
        vision = {**base["vision_cfg"], **(vision or {})}
        text = {**base["text_cfg"], **(text or {})}
        if quick_gelu is None:
            quick_gelu = bool(base.get("quick_gelu", False))
    if embed_dim is None or vision is None or text is None:
        raise ValueError("build_clip needs model_name or all of embed_dim, vision, text")
    model = open_clip.CLIP(embed_dim=embed_dim, vision_cfg=CLIPVisionCfg(**vision), text_cfg=CLIPTextCfg(**text),
                           quick_gelu=bool(quick_gelu))
    if pretrained:
        load_into(model, pretrained, strip_prefixes=("module.", "clip."), what="CLIP checkpoint",
                  expect=f"an open_clip state dict or an OpenAI TorchScript .pt of {model_name or 'this architecture'}")
    return model


class ClipTokenizer:
    """open_clip's BPE tokenizer (offline) at a fixed context length; over-long texts are truncated
    by the tokenizer (it keeps the end-of-text token), empty texts are refused."""

    def __init__(self, context_length: int, clip: nn.Module | None = None, owner: str = "clip"):
        """``clip``: the model whose text tower reads the tokens; a context longer than its positions is refused."""
        import open_clip

        if clip is not None and context_length > clip.positional_embedding.shape[0]:
            raise ValueError(f"{owner}: context_length={context_length} exceeds the text tower's "
                             f"{clip.positional_embedding.shape[0]} positions")
        self._tok = open_clip.get_tokenizer("ViT-B-32")
        self.context_length = context_length

    def __call__(self, texts: list[str]) -> torch.Tensor:
        for t in texts:
            if not t or not t.strip():
                raise ValueError("empty reference text: every instance needs a non-empty referring sentence")
        n_long = sum(len(self._tok.encode(t)) + 2 > self.context_length for t in texts)  # + start/end tokens
        if n_long:
            log.warning("CLIP tokenizer: %d reference(s) longer than %d tokens were truncated", n_long,
                        self.context_length)
        return self._tok(list(texts), context_length=self.context_length)


def encode_text_tokens(model: nn.Module, ids: torch.Tensor, normalize: bool = False):
    """CLIP's text tower with its per-token outputs kept: the same modules and order as open_clip's
    ``CLIP.encode_text`` (token + positional embedding, causal transformer, ln_final, projection), which
    returns only the pooled end-of-text vector. Word-level features are what X-CLIP's fine-grained
    contrasts need. Token sequences shorter than the tower's context (e.g. 32 words for CLIP's 77
    positions) use the first positions, as CLIP4Clip / X-CLIP / MeVTR do (``positional_embedding[:L]``);
    ``encode_text`` itself only takes full-length sequences.

    Returns ``(sentence (B, E), words (B, L, E), word_mask (B, L) bool)``; the mask marks the real tokens
    (start, words, end-of-text), not the padding after the end-of-text token.
    """
    from open_clip.transformer import text_global_pool

    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(ids).to(cast_dtype)
    x = x + model.positional_embedding[: ids.shape[1]].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[: ids.shape[1], : ids.shape[1]])
    x = model.ln_final(x)
    pooled = text_global_pool(x, ids, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    proj = model.text_projection
    if proj is not None:
        if isinstance(proj, nn.Linear):
            pooled, x = proj(pooled), proj(x)
        else:
            pooled, x = pooled @ proj, x @ proj
    eot = ids.argmax(dim=-1, keepdim=True)  # open_clip's "argmax" pooling: the end-of-text id is the largest
    mask = torch.arange(ids.shape[1], device=ids.device)[None] <= eot
    if normalize:
        pooled, x = nn.functional.normalize(pooled, dim=-1), nn.functional.normalize(x, dim=-1)
    return pooled, x, mask


def clip_pair(model: nn.Module, tokenizer: ClipTokenizer, pixels: torch.Tensor, captions: list[str]):
    """CLIP's own image-text pair (the pretraining's contrastive pretext, ``Method.contrastive_pair``): the image
    tower's embedding of the key frame (B, 3, H, W), or of each frame L2-normalised and averaged over the clip
    (B, T, 3, H, W), as CLIP4Clip's meanP pools; and the text tower's sentence vector of each caption."""
    if pixels.dim() == 5:
        b, t = pixels.shape[:2]
        frames = model.encode_image(pixels.flatten(0, 1)).view(b, t, -1)
        visual = nn.functional.normalize(frames, dim=-1).mean(1)
    else:
        visual = model.encode_image(pixels)
    text = encode_text_tokens(model, tokenizer(captions).to(pixels.device))[0]
    return visual, text
