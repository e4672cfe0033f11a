"""MeVTR / Me-Retriever (Zhang et al., "Multi-event Video-Text Retrieval", ICCV'23) adapted to RAVAR
(VTR family, paper Sec. 3.2: the reference sentence is the query; the joint representation goes to the
shared head).

Me-Retriever is CLIP4Clip's dual encoder (CLIP towers, meanP or seqTransf over frames) with a *key event*
video representation: the frame features of a clip are clustered by k-medoids (KKZ initialisation) and the
K medoid frames stand for the clip's events; a text matches a video through its events rather than through
one averaged vector (the official code's ``post_process='cluster'`` with ``post_cluster_centroids=K``).

RAVAR adaptation: the events are pooled by their match to the sentence -- a softmax over the K event-text
cosine similarities at CLIP's learnt temperature (``logit_scale``; a differentiable "max over events") --
and [e, t, e*t, mean-of-events] goes to the head, e being the sentence-matched event mix.
Gradients reach the towers through the medoid frames' features (the selection itself has no gradient).
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.encoders.clip import ClipTokenizer, build_clip, clip_pair, encode_text_tokens
from ravar_bench.encoders.text_video import ClipTemporalTransformer, check_references, kmedoids
from ravar_bench.method import Method
from ravar_bench.registry import register_method

NORM = nn.functional.normalize


@register_method("mevtr", family="VTR", paper_name="MeVTR")
class MeVTR(Method):
    needs = frozenset({"video", "text"})

    def __init__(self, num_frames: int, img_size: int, clip: dict, num_events: int = 4, temporal: str = "meanP",
                 temporal_layers: int = 4, context_length: int = 32, cluster_distance: str = "cosine",
                 cluster_iters: int = 10):
        super().__init__()
        self.clip = build_clip(**clip)
        if self.clip.visual.image_size[0] != img_size:
            raise ValueError(f"mevtr: the CLIP vision tower expects {self.clip.visual.image_size[0]} px but "
                             f"data.img_size={img_size}")
        if not 1 <= num_events <= num_frames:
            raise ValueError(f"mevtr: num_events={num_events} must be between 1 and num_frames={num_frames}")
        if temporal not in ("meanP", "seqTransf"):
            raise ValueError(f"mevtr: temporal must be 'meanP' or 'seqTransf', got {temporal!r}")
        e = self.clip.text_projection.shape[1]
        self.temporal = temporal
        if temporal == "seqTransf":
            self.seq = ClipTemporalTransformer(e, temporal_layers, max_frames=max(num_frames, 77))
        self.num_events, self.cluster_distance, self.cluster_iters = num_events, cluster_distance, cluster_iters
        self.tokenizer = ClipTokenizer(context_length, self.clip, owner="mevtr")
        self.num_frames, self.img_size = num_frames, img_size
        self.feat_dim = 4 * e

    def key_events(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, E) frame features -> (B, K, E) medoid frames, in temporal order."""
        idx = kmedoids(frames.detach(), self.num_events, iters=self.cluster_iters, distance=self.cluster_distance)
        return frames.gather(1, idx[..., None].expand(-1, -1, frames.shape[-1]))

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        texts = check_references(batch["text"], self.method_name)
        b, t = video.shape[:2]
        frames = self.clip.encode_image(video.flatten(0, 1)).view(b, t, -1)
        if self.temporal == "seqTransf":
            frames = self.seq(frames)
        events = NORM(self.key_events(frames), dim=-1)                      # (B, K, E)
        ids = self.tokenizer(texts).to(video.device)
        txt = encode_text_tokens(self.clip, ids, normalize=True)[0]         # (B, E)
        sim = torch.einsum("bke,be->bk", events, txt)
        w = torch.softmax(self.clip.logit_scale.exp().clamp(max=100) * sim, dim=1)
        ev = NORM(torch.einsum("bk,bke->be", w, events), dim=-1)
        return torch.cat([ev, txt, ev * txt, NORM(events.mean(1), dim=-1)], dim=-1)

    def contrastive_pair(self, batch):
        return clip_pair(self.clip, self.tokenizer, batch["video"], batch["text"])
