"""AskAnything (Li et al., "VideoChat: Chat-Centric Video Understanding", 2023; the paper's
"AskAnything13B" row), the GPT-style model of the paper's VQA family, adapted to RAVAR (paper Sec. 3.2).

VideoChat-Embed's design: a frozen BLIP-2 image encoder (EVA ViT-g) and Q-Former turn the clip into video
tokens, a linear layer (``llama_proj``) maps them to the LLM's width, and a causal LLM (Vicuna-13B) reads
them inside a chat prompt with the question:

    <s>###Human: <Video>[video tokens]</Video> ###Human: What is <reference> doing? ###Assistant:

RAVAR adaptation: the reference is asked as a question; instead of decoding an answer, the LLM's final
hidden state at the answer position (the last prompt token, from which the answer would be generated) is
the joint representation handed to the shared head.

Parts: the shared ``Blip2VideoEncoder`` (per-frame Q-Former queries; VideoChat's Q-Former reads all frames
at once after GMHRA temporal blocks inside its ViT -- the shared encoder works per frame, so frame order
reaches the LLM through a learnt per-frame embedding added to each frame's query outputs, and all T x Q
query outputs become video tokens); transformers' ``LlamaModel`` (full: Vicuna-13B's LlamaConfig; the LM
head is not needed for hidden states). Vicuna's weights and tokenizer come only from a local folder
(``llm_pretrained``); with a randomly initialised LLM the offline BERT WordPiece vocabulary tokenises.
"""
from __future__ import annotations

import torch
from torch import nn

from ravar_bench.encoders.blip2 import Blip2VideoEncoder
from ravar_bench.encoders.checkpoint import load_into
from ravar_bench.encoders.text_video import (
    as_question,
    bert_tokenizer,
    check_references,
    load_hf_local,
    tokenize_truncating,
)
from ravar_bench.method import Method
from ravar_bench.registry import register_method

PROMPT = ("###Human: <Video>", "</Video> ###Human: ", " ###Assistant:")  # VideoChat's chat template


@register_method("askanything", family="VQA", paper_name="AskAnything13B")
class AskAnything(Method):
    needs = frozenset({"video", "text"})
    tower_freeze_keys = ("freeze_vision",)

    def __init__(self, num_frames: int, img_size: int, vision: dict, qformer: dict, llm: dict,
                 num_query_tokens: int = 32, freeze_vision: bool = True, freeze_llm: bool = True,
                 blip2_pretrained: str | None = None, llm_pretrained: str | None = None,
                 llm_tokenizer: str | None = None, vocab: str | None = None, max_text_len: int = 32,
                 pretrained: str | None = None):
        super().__init__()
        from transformers import AutoTokenizer, LlamaConfig, LlamaModel

        self.encoder = Blip2VideoEncoder(vision={"image_size": img_size, **vision}, qformer=qformer,
                                         num_query_tokens=num_query_tokens, freeze_vision=freeze_vision,
                                         pretrained=blip2_pretrained)
        if llm_pretrained:
            self.llm = load_hf_local(LlamaModel, llm_pretrained, "askanything: llm_pretrained")
        else:
            self.llm = LlamaModel(LlamaConfig(**llm))
        d_llm = self.llm.config.hidden_size
        self.llama_proj = nn.Linear(self.encoder.hidden_size, d_llm)          # VideoChat's llama_proj
        self.frame_embed = nn.Parameter(torch.zeros(num_frames, 1, self.encoder.hidden_size))
        nn.init.normal_(self.frame_embed, std=0.02)
        self.freeze_llm = freeze_llm
        if freeze_llm:
            for p in self.llm.parameters():
                p.requires_grad_(False)
            self.llm.eval()
        tok_path = llm_tokenizer or llm_pretrained
        if tok_path:
            self.tokenizer = load_hf_local(AutoTokenizer, tok_path, "askanything: llm_tokenizer")
        else:  # random-init LLM: any vocabulary fits; BERT's WordPiece works offline
            self.tokenizer = bert_tokenizer(vocab)
        if len(self.tokenizer) > self.llm.config.vocab_size:
            raise ValueError(f"askanything: tokenizer has {len(self.tokenizer)} tokens, the LLM's vocab_size is "
                             f"{self.llm.config.vocab_size}")
        t = self.tokenizer
        bos = t.bos_token_id if t.bos_token_id is not None else t.cls_token_id
        self.pad_id = t.pad_token_id if t.pad_token_id is not None else 0
        ids = lambda s: t(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.register_buffer("_head_ids", torch.tensor([bos] + ids(PROMPT[0])), persistent=False)
        self._mid_ids, self._end_ids = ids(PROMPT[1]), ids(PROMPT[2])
        self.num_frames, self.img_size, self.max_text_len = num_frames, img_size, max_text_len
        self.feat_dim = d_llm
        if pretrained:
            load_into(self, pretrained, what="askanything checkpoint")

    def video_tokens(self, video: torch.Tensor, clip_keys: list[str] | None = None) -> torch.Tensor:
        q = self.encoder(video, clip_keys=clip_keys) + self.frame_embed      # (B, T, Q, H)
        return self.llama_proj(q.flatten(1, 2))                               # (B, T*Q, D_llm)

    def forward(self, batch):
        video = batch["video"]
        self.check_video(video, self.num_frames, self.img_size)
        questions = [as_question(r) for r in check_references(batch["text"], self.method_name)]
        q = tokenize_truncating(self.tokenizer, questions, self.max_text_len, self.method_name,
                                add_special_tokens=False)
        dev = video.device
        b = video.shape[0]
        # per sample: </Video> ###Human: <question> ###Assistant:   (right-padded)
        tails = [self._mid_ids + [i for i, m in zip(ids, mask) if m] + self._end_ids
                 for ids, mask in zip(q["input_ids"].tolist(), q["attention_mask"].tolist())]
        lens = torch.tensor([len(x) for x in tails], device=dev)
        tail = torch.full((b, int(lens.max())), self.pad_id, dtype=torch.long, device=dev)
        for i, x in enumerate(tails):
            tail[i, : len(x)] = torch.tensor(x, device=dev)
        tail_mask = torch.arange(tail.shape[1], device=dev)[None] < lens[:, None]
        emb = self.llm.get_input_embeddings()
        vid = self.video_tokens(video, batch.get("clip_key"))
        head = emb(self._head_ids)[None].expand(b, -1, -1)
        x = torch.cat([head, vid.to(head.dtype), emb(tail)], dim=1)
        mask = torch.cat([torch.ones(b, head.shape[1] + vid.shape[1], dtype=torch.bool, device=dev), tail_mask], 1)
        hid = self.llm(inputs_embeds=x, attention_mask=mask.long()).last_hidden_state
        last = head.shape[1] + vid.shape[1] + lens - 1                        # the answer position
        return hid[torch.arange(b, device=dev), last].float()

    def contrastive_pair(self, batch):
        """VideoChat keeps BLIP-2's Q-Former but not its text side, so the LLM is the text tower: its last hidden
        state after the video tokens against its last hidden state after the caption (both from the BOS token)."""
        video = batch["video"]
        dev, b = video.device, video.shape[0]
        emb = self.llm.get_input_embeddings()
        head = emb(self._head_ids[:1])[None].expand(b, -1, -1)   # BOS
        vid = self.video_tokens(video)
        visual = self.llm(inputs_embeds=torch.cat([head, vid.to(head.dtype)], dim=1)).last_hidden_state[:, -1]
        enc = tokenize_truncating(self.tokenizer, batch["text"], self.max_text_len, self.method_name,
                                  add_special_tokens=False)
        ids, mask = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
        ids = torch.cat([self._head_ids[:1].expand(b, 1), ids], dim=1)
        mask = torch.cat([torch.ones(b, 1, dtype=mask.dtype, device=dev), mask], dim=1)
        hid = self.llm(input_ids=ids, attention_mask=mask).last_hidden_state
        return visual.float(), hid[torch.arange(b, device=dev), mask.sum(1) - 1].float()
