"""Su et al. (VOS family): the encoder of "Sequence as a Whole" (Su, Wang, Liu, Ma, Yang, TIP 2023; code
released as SAW), a unified video-text framework for referring video action localisation (referring video
segmentation, temporal and spatio-temporal grounding), with the shared head instead of its decoders.

The encoder as released (models/model.py, models/module/RefTransformer.py, models/module/attention.py):
1. every frame through a ResNet-101 with frozen BatchNorm (frozen); layer2-4 resized to layer4's size,
   concatenated, 1x1 conv to 256 channels;
2. the sentence: RoBERTa token features -> Linear + LayerNorm + Dropout -> per-channel softmax attention
   pooling over the tokens (GlobalTextPresentation);
3. MuTAN fusion (5 heads of tanh(W_v [v; 8 spatial coords]) * tanh(W_t t), summed, tanh, L2-normalised);
4. the Ref-Transformer over the WHOLE sequence (B, C, T, H, W), 6 layers, each: relevance filtering (the
   text generates a per-group kernel; sigmoid(<key, kernel>) gates the values), a (1,3,3) spatial conv,
   a (3,1,1) temporal conv with dilation 2^i over a reflect-periodic ("circle") padded sequence and a 1x1
   conv, with GroupNorm and residuals.
Here the text tokens come from the benchmark's frozen text encoder (``text_tokens``; RoBERTa in SAW, frozen
there too). The pooled feature for the head is [mean over (T, H, W); the last relevance map's sigmoid-weighted
mean], the latter standing in for SAW's spatial-decoder heatmap pooling of the referred object.

The Ref-Transformer, MuTAN and text pooling are written here because no library ships them; the backbone is
timm's ResNet.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ravar_bench.encoders.checkpoint import load_into
from ravar_bench.encoders.pixel_norm import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, PixelNorm
from ravar_bench.method import Method
from ravar_bench.registry import register_method


class GlobalTextPresentation(nn.Module):
    """SAW's sentence pooling: per-channel softmax over the (valid) tokens."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.w(tokens).masked_fill(~mask.unsqueeze(-1), -1e9)
        return (tokens * logits.softmax(dim=1)).sum(dim=1)


class MuTan(nn.Module):
    """SAW's multimodal tucker-style fusion of a frame map (with 8 spatial coordinates) and the sentence."""

    def __init__(self, v_dim: int, t_dim: int, out_dim: int, heads: int = 5):
        super().__init__()
        self.wv = nn.ModuleList([nn.Conv2d(v_dim + 8, out_dim, 1) for _ in range(heads)])
        self.wt = nn.ModuleList([nn.Linear(t_dim, out_dim) for _ in range(heads)])

    @staticmethod
    def spatial(n: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """SAW's generate_spatial_batch: per cell xmin, ymin, xmax, ymax, xctr, yctr, 1/W, 1/H in [-1, 1]."""
        ys = torch.arange(h, dtype=like.dtype, device=like.device)
        xs = torch.arange(w, dtype=like.dtype, device=like.device)
        y0, x0 = torch.meshgrid(ys / h * 2 - 1, xs / w * 2 - 1, indexing="ij")
        y1, x1 = y0 + 2 / h, x0 + 2 / w
        c = torch.stack([x0, y0, x1, y1, (x0 + x1) / 2, (y0 + y1) / 2,
                         torch.full_like(x0, 1 / w), torch.full_like(x0, 1 / h)])
        return c.unsqueeze(0).expand(n, -1, -1, -1)

    def forward(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n, _, h, w = v.shape
        v = torch.cat([v, self.spatial(n, h, w, v)], dim=1)
        out = sum(torch.tanh(wv(v)) * torch.tanh(wt(t))[..., None, None] for wv, wt in zip(self.wv, self.wt))
        return F.normalize(torch.tanh(out), dim=1)


class RelevanceFilter(nn.Module):
    """SAW's relevance filtering (3D phase, 1x1x1 kernel): the sentence makes one kernel per channel group;
    sigmoid(<key_g, kernel_g>) at each (t, y, x) gates the group's values. Returns (map (B,T,H,W), out)."""

    def __init__(self, text_dim: int, dim: int, groups: int):
        super().__init__()
        if dim % groups:
            raise ValueError(f"su_vos: hidden={dim} must be divisible by groups={groups}")
        self.groups = groups
        self.wkv = nn.Conv3d(dim, 2 * dim, 1)
        self.wt = nn.Linear(text_dim, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor):
        b, c, tt, h, w = x.shape
        k, v = self.wkv(x).view(b, 2, self.groups, c // self.groups, tt, h, w).unbind(1)
        kernel = self.wt(t).view(b, self.groups, c // self.groups)
        att = torch.einsum("bgcthw,bgc->bgthw", k, kernel).unsqueeze(2)  # (B, G, 1, T, H, W)
        out = (v * att.sigmoid()).flatten(1, 2)
        return att.squeeze(2).mean(1), out


def circle_pad_time(x: torch.Tensor, pad: int) -> torch.Tensor:
    """SAW's circle_padding: extend (B, C, T, H, W) by ``pad`` frames each side, reflecting periodically
    (0, 1, ..., T-1, T-2, ..., 1, 0, 1, ...), so dilations beyond the clip length stay defined."""
    t = x.shape[2]
    if t == 1:
        idx = torch.zeros(1 + 2 * pad, dtype=torch.long, device=x.device)
    else:
        period = 2 * (t - 1)
        j = torch.arange(-pad, t + pad, device=x.device) % period
        idx = torch.where(j < t, j, period - j)
    return x.index_select(2, idx)


class RefTransformerLayer(nn.Module):
    def __init__(self, dim: int, ffn: int, groups: int, dilation: int, dropout: float, norm_groups: int = 4):
        super().__init__()
        self.filter = RelevanceFilter(dim, dim, groups)
        self.spatial = nn.Sequential(nn.Conv3d(dim, ffn, (1, 3, 3), padding=(0, 1, 1), bias=False),
                                     nn.GroupNorm(norm_groups, ffn), nn.ReLU(inplace=True))
        self.time = nn.Sequential(nn.Conv3d(ffn, ffn, (3, 1, 1), dilation=(dilation, 1, 1), bias=False),
                                  nn.GroupNorm(norm_groups, ffn), nn.ReLU(inplace=True))
        self.convert = nn.Sequential(nn.Conv3d(ffn, dim, 1, bias=False), nn.GroupNorm(norm_groups, dim))
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.dilation = dilation

    def forward(self, x, t):
        amap, y = self.filter(x, t)
        x = x + self.drop1(y)
        y = self.time(circle_pad_time(self.spatial(x), self.dilation))
        return amap, x + self.drop2(self.convert(y))


@register_method("su_vos", family="VOS", paper_name="Su et al.")
class SuVOS(Method):
    needs = frozenset({"video", "text_tokens"})
    tower_freeze_keys = ("freeze_backbone",)

    def __init__(self, num_frames: int, img_size: int, text_dim: int, backbone: dict, hidden: int = 256,
                 layers: int = 6, ffn: int = 256, groups: int = 8, mutan_heads: int = 5, dropout: float = 0.1,
                 multi_scale: bool = True, freeze_backbone: bool = True, pretrained: str | None = None,
                 resolution: int | None = None, pixel_mean=CLIP_MEAN, pixel_std=CLIP_STD,
                 backbone_mean=IMAGENET_MEAN, backbone_std=IMAGENET_STD):
        super().__init__()
        import timm
        from timm.layers import freeze_batch_norm_2d

        if layers < 1:
            raise ValueError(f"su_vos: layers must be >= 1 (the pooled feature uses the last relevance map), got {layers}")
        bb = dict(backbone)
        name = bb.pop("model_name")
        idx = (2, 3, 4) if multi_scale else (4,)  # timm ResNet: layer2, layer3, layer4
        self.backbone = timm.create_model(name, pretrained=False, features_only=True, out_indices=idx, **bb)
        if pretrained:
            load_into(self.backbone, pretrained, what="su_vos backbone checkpoint", ignore_prefixes=("fc.",),
                      expect=f"an ImageNet {name} state dict in timm's key names")
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:  # SAW: FrozenBatchNorm2d everywhere and a frozen backbone
            self.backbone = freeze_batch_norm_2d(self.backbone)
            self.backbone.requires_grad_(False)
        self.convert = nn.Conv2d(sum(self.backbone.feature_info.channels()), hidden, 1)
        self.text_resizer = nn.Sequential(nn.Linear(text_dim, hidden), nn.LayerNorm(hidden, eps=1e-12),
                                          nn.Dropout(dropout))
        self.text_pool = GlobalTextPresentation(hidden)
        self.mutan = MuTan(hidden, hidden, hidden, mutan_heads)
        self.layers = nn.ModuleList([RefTransformerLayer(hidden, ffn, groups, 2 ** i, dropout) for i in range(layers)])
        self.num_frames, self.img_size, self.text_dim = num_frames, img_size, text_dim
        self.resolution = resolution or img_size  # SAW's --resolution: frames are resized to it for the backbone
        # the ImageNet ResNet reads ImageNet's statistics, not the data's (CLIP's)
        self.pixel_norm = PixelNorm(pixel_mean, pixel_std, backbone_mean, backbone_std, what="su_vos")
        self.feat_dim = 2 * hidden

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.pixel_norm(frames)
        if x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                              antialias=True)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            feats = self.backbone(x)
        size = feats[-1].shape[-2:]
        feats = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=True)
                 for f in feats]
        return self.convert(torch.cat(feats, dim=1))

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        tokens = batch["text_tokens"]
        mask = batch.get("text_mask")
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device) if mask is None else mask.bool()
        b, t = video.shape[:2]
        text = self.text_pool(self.text_resizer(tokens), mask)  # (B, C)
        v = self.encode_frames(video.flatten(0, 1))  # (B*T, C, h, w)
        v = self.mutan(v, text.repeat_interleave(t, dim=0))
        x = v.view(b, t, *v.shape[1:]).transpose(1, 2)  # (B, C, T, h, w): the sequence as a whole
        amap = None
        for layer in self.layers:
            amap, x = layer(x, text)
        w = amap.sigmoid().unsqueeze(1)  # the last layer's text relevance, (B, 1, T, h, w)
        referred = (x * w).sum(dim=(2, 3, 4)) / w.sum(dim=(2, 3, 4)).clamp_min(1e-6)
        return torch.cat([x.mean(dim=(2, 3, 4)), referred], dim=-1)
