"""CLIP4Clip (Luo et al., Neurocomputing'22): CLIP towers, per-frame image features pooled over time
("meanP", or the "seqTransf" temporal transformer), the reference through CLIP's text tower (VTR family).

Adaptation (paper Sec. 3.2, as for every VTR baseline): the joint representation [v, t, v*t] of the
video and sentence embeddings goes to the shared head.
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.encoders.clip import ClipTokenizer, build_clip
from ravar_bench.method import Method
from ravar_bench.registry import register_method


@register_method("clip4clip", family="VTR", paper_name="CLIP4CLIP")
class CLIP4Clip(Method):
    needs = frozenset({"video", "text"})

    def __init__(self, num_frames: int, img_size: int, clip: dict, temporal: str = "meanP",
                 temporal_layers: int = 4, context_length: int = 32):
        super().__init__()
        self.clip = build_clip(**clip)
        if self.clip.visual.image_size[0] != img_size:
            raise ValueError(f"clip4clip: the CLIP vision tower expects {self.clip.visual.image_size[0]} px but "
                             f"data.img_size={img_size}")
        e = self.clip.text_projection.shape[1]
        if temporal not in ("meanP", "seqTransf"):
            raise ValueError(f"clip4clip: temporal must be 'meanP' or 'seqTransf', got {temporal!r}")
        self.temporal = temporal
        if temporal == "seqTransf":
            self.frame_pos = nn.Parameter(torch.zeros(num_frames, e))
            layer = nn.TransformerEncoderLayer(e, max(1, e // 64), 4 * e, batch_first=True, norm_first=True)
            self.seq = nn.TransformerEncoder(layer, temporal_layers)
        self.tokenizer = ClipTokenizer(context_length)
        self.num_frames, self.img_size = num_frames, img_size
        self.feat_dim = 3 * e

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        b, t = video.shape[:2]
        frames = self.clip.encode_image(video.flatten(0, 1), normalize=True).view(b, t, -1)
        if self.temporal == "seqTransf":
            frames = frames + self.seq(frames + self.frame_pos)  # residual, as CLIP4Clip's seqTransf
        v = nn.functional.normalize(frames.mean(1), dim=-1)
        ids = self.tokenizer(batch["text"]).to(video.device)
        txt = self.clip.encode_text(ids, normalize=True)
        return torch.cat([v, txt, v * txt], dim=-1)
