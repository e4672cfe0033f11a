"""CLIP4Clip (Luo et al., Neurocomputing'22): CLIP towers, per-frame image features pooled over time
("meanP", or the "seqTransf" temporal transformer), the reference through CLIP's text tower (VTR family).

Adaptation (paper Sec. 3.2, as for every VTR baseline): the reference sentence itself is the query, and
the joint representation [v, t, v*t] of the video and sentence embeddings goes to the shared head
(v*t is the per-dimension contribution to CLIP4Clip's cosine similarity).

Order of operations as in CLIP4Clip's ``_loose_similarity``: frame features (unnormalised) ->
seqTransf (with a residual) -> L2-normalise each frame -> mean over frames -> L2-normalise.
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.encoders.clip import ClipTokenizer, build_clip, clip_pair, encode_text_tokens
from ravar_bench.encoders.text_video import ClipTemporalTransformer, check_references
from ravar_bench.method import Method
from ravar_bench.registry import register_method


@register_method("clip4clip", family="VTR", paper_name="CLIP4CLIP")
class CLIP4Clip(Method):
    needs = frozenset({"video", "text"})

    def __init__(self, num_frames: int, img_size: int, clip: dict, temporal: str = "meanP",
                 temporal_layers: int = 4, context_length: int = 32):
        super().__init__()
        self.clip = build_clip(**clip)
        self.clip.logit_scale.requires_grad_(False)  # CLIP's contrastive temperature: nothing here reads it
        if self.clip.visual.image_size[0] != img_size:
            raise ValueError(f"clip4clip: the CLIP vision tower expects {self.clip.visual.image_size[0]} px but "
                             f"data.img_size={img_size}")
        e = self.clip.text_projection.shape[1]
        if temporal not in ("meanP", "seqTransf"):
            raise ValueError(f"clip4clip: temporal must be 'meanP' or 'seqTransf', got {temporal!r}")
        self.temporal = temporal
        if temporal == "seqTransf":
            # CLIP4Clip: 4 layers (cross_num_hidden_layers), CLIP text width/heads, frame positions
            self.seq = ClipTemporalTransformer(e, temporal_layers, max_frames=max(num_frames, 77))
        self.tokenizer = ClipTokenizer(context_length, self.clip, owner="clip4clip")
        self.num_frames, self.img_size = num_frames, img_size
        self.feat_dim = 3 * e

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        frames = self.clip.encode_image(video.flatten(0, 1)).view(b, t, -1)
        if self.temporal == "seqTransf":
            frames = self.seq(frames)
        frames = nn.functional.normalize(frames, dim=-1)
        return nn.functional.normalize(frames.mean(1), dim=-1)

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        texts = check_references(batch["text"], self.method_name)
        v = self.encode_video(video)
        ids = self.tokenizer(texts).to(video.device)
        txt = encode_text_tokens(self.clip, ids, normalize=True)[0]  # positions sliced to the 32 words, as CLIP4Clip
        return torch.cat([v, txt, v * txt], dim=-1)

    def contrastive_pair(self, batch):
        return clip_pair(self.clip, self.tokenizer, batch["video"], batch["text"])
