"""BLIPv2 (Li et al., "BLIP-2: Bootstrapping Language-Image Pre-training with Frozen Image Encoders and
Large Language Models", ICML'23) as the paper's VTR baseline (paper Sec. 3.2 adaptation).

BLIP-2's first stage: a frozen image encoder (EVA ViT-g/14, last layer removed) and the Q-Former (BERT-base
with 32 learnable queries that cross-attend the image every 2nd layer), run per frame by the shared
``ravar_bench.encoders.blip2.Blip2VideoEncoder``. The reference sentence enters the Q-Former as text:
- joint query+text mode (BLIP-2's image-text *matching* path): queries and text tokens share the
  self-attention, the queries cross-attend the frame; the query outputs, averaged over queries and frames,
  are the joint video-text representation (BLIP-2's ITM head averages its per-query outputs the same way);
- text-only mode (BLIP-2's text encoder for contrastive matching): the [CLS] output.
[joint, text] goes to the shared head.

Text: BERT's uncased WordPiece vocabulary (what BLIP-2 tokenises with) offline, embedded by transformers'
``Blip2TextEmbeddings`` (the Q-Former's word + position embeddings; the Q-Former's input LayerNorm applies
to them inside ``Blip2QFormerModel``).

``pretrained``: a local folder written by transformers' ``Blip2ForImageTextRetrieval.save_pretrained``
(vision_model.*, query_tokens, qformer.*, embeddings.*) or a state-dict file with those keys; Blip2Model
folders carry no text embeddings (those then stay randomly initialised, reported in the log).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ravar_bench.encoders.blip2 import Blip2VideoEncoder
from ravar_bench.encoders.checkpoint import read_state_dict
from ravar_bench.encoders.text_video import bert_tokenizer, check_references, tokenize_truncating
from ravar_bench.method import Method
from ravar_bench.registry import register_method

log = logging.getLogger(__name__)


def _weight_files(path: str) -> list[Path]:
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    files = sorted(p.glob("*.safetensors")) or sorted(p.glob("pytorch_model*.bin"))
    return files


@register_method("blipv2", family="VTR", paper_name="BLIPv2")
class BLIPv2(Method):
    needs = frozenset({"video", "text"})
    tower_freeze_keys = ("freeze_vision",)

    def __init__(self, num_frames: int, img_size: int, vision: dict, qformer: dict, num_query_tokens: int = 32,
                 freeze_vision: bool = True, pretrained: str | None = None, max_text_len: int = 32,
                 vocab: str | None = None):
        super().__init__()
        from transformers import Blip2QFormerConfig
        from transformers.models.blip_2.modeling_blip_2 import Blip2TextEmbeddings

        qformer = {**qformer, "use_qformer_text_input": True}  # the text path needs the Q-Former's text FFNs
        self.encoder = Blip2VideoEncoder(vision={"image_size": img_size, **vision}, qformer=qformer,
                                         num_query_tokens=num_query_tokens, freeze_vision=freeze_vision,
                                         pretrained=pretrained)
        qcfg = Blip2QFormerConfig(**{"encoder_hidden_size": self.encoder.vision_hidden_size, **qformer})
        self.embeddings = Blip2TextEmbeddings(qcfg)
        std = self.encoder.qformer.config.initializer_range
        for emb in (self.embeddings.word_embeddings, self.embeddings.position_embeddings):
            torch.nn.init.normal_(emb.weight, std=std)  # BERT's init (nn.Embedding's default is N(0, 1))
            if emb.padding_idx is not None:
                with torch.no_grad():
                    emb.weight[emb.padding_idx].zero_()
        if pretrained:
            self._load_text_embeddings(pretrained)
        self.tokenizer = bert_tokenizer(vocab)
        if len(self.tokenizer) > self.embeddings.word_embeddings.num_embeddings:
            raise ValueError(f"blipv2: tokenizer has {len(self.tokenizer)} tokens, the Q-Former's vocab_size is "
                             f"{self.embeddings.word_embeddings.num_embeddings}")
        if max_text_len > self.embeddings.position_embeddings.num_embeddings:
            raise ValueError(f"blipv2: max_text_len={max_text_len} exceeds the Q-Former's "
                             f"{self.embeddings.position_embeddings.num_embeddings} positions")
        self.num_frames, self.img_size, self.max_text_len = num_frames, img_size, max_text_len
        self.feat_dim = 2 * self.encoder.hidden_size

    def _load_text_embeddings(self, path: str):
        own = {}
        for f in _weight_files(path):
            for k, v in read_state_dict(f, what="BLIP-2 checkpoint").items():
                for pre in ("module.", "blip2.", "model."):
                    if k.startswith(pre):
                        k = k[len(pre):]
                if k.startswith("embeddings."):
                    own[k[len("embeddings."):]] = v
        if not own:
            log.warning("blipv2: %s holds no Q-Former text embeddings (embeddings.*; a Blip2Model folder has none): "
                        "they stay randomly initialised", path)
            return
        self.embeddings.load_state_dict(own, strict=False)

    def _tokens(self, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        enc = tokenize_truncating(self.tokenizer, texts, self.max_text_len, self.method_name)
        return enc["input_ids"].to(device), enc["attention_mask"].to(device)

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        ids, mask = self._tokens(check_references(batch["text"], self.method_name), video.device)
        text_embeds = self.embeddings(input_ids=ids)
        joint = self.encoder(video, text_embeds, mask, clip_keys=batch.get("clip_key"))                       # (B, T, Q, H): queries after text
        txt = self.encoder.qformer(query_embeds=text_embeds, query_length=0,
                                   attention_mask=mask).last_hidden_state[:, 0]
        return torch.cat([joint.mean(dim=(1, 2)), txt], dim=-1)

    def contrastive_pair(self, batch):
        """BLIP-2's ITC: each frame's queries without text (averaged over frames; the best-matching query counts)
        against the Q-Former's text-only [CLS]."""
        ids, mask = self._tokens(batch["text"], batch["video"].device)
        text = self.encoder.encode_text(self.embeddings(input_ids=ids), mask)[:, 0]
        return self.encoder(batch["video"]).mean(dim=1), text
