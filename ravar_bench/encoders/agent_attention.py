"""RefAtomNet's 1-D agent attention (paper Eq. 4-6) and its cross-stream fusions (Eq. 7-11), in two modes.

Written by hand: no library ships agent attention in the 1-D, cross-stream form of the paper (Han et al.'s
agent attention is 2-D, with pooling, a depth-wise convolution branch and position biases, all of which the
paper removes). Every equation is a function named after its number so it can be checked on its own.

Tensor layout: tokens ``(B, N, C)``; split into heads ``(B, h, N, d)`` with ``d = C / h``; agent tokens
``(B, h, Na, d)``; an aggregation map ``(B, h, Na, N)``; a broadcast map ``(B, h, N, Na)``.

Choices where the paper is ambiguous (variant ``"paper"``) and what the released code does (``"released"``)
---------------------------------------------------------------------------------------------------------
Eq. 4  ``Q, K, V, A = W_Q t, W_K t, W_V t, W_A t`` (four Linear layers with bias; no LayerNorm, none written).
       Agent tokens ``A_* = P_A(A)``: P_A is a Linear over the TOKEN axis (N -> Na). Reason: the paper says the
       2-D pooling of agent attention is "replaced with linear projection"; pooling acts on the token axis.
       released: LayerNorm, one Linear(C, 3C, no bias) for Q, K, V; the agents are an MLP on Q per token
       (C -> C/2 -> GELU -> Na*C), averaged over tokens and reshaped to (Na, C).
Eq. 5  Operand order: Eq. 6 computes ``M_KA (M_QA V)``; ``M_QA V`` is only defined if M_QA is (Na, N), and
       then M_KA must be (N, Na). Hence, as written, M_QA (from A and Q) is the AGGREGATION map and M_KA
       (from A and K) the BROADCAST map:
           M_QA = softmax_N (alpha * A_* Q^T)    (Na, N)   ``aggregation_map(A, Q)``
           M_KA = softmax_Na(alpha * K A_*^T)    (N, Na)   ``broadcast_map(K, A)``   (MatMul operands swapped so
                                                                                      that Eq. 6 is defined)
       sigma_c ("along the channel dimension") = softmax over the LAST axis of the map, the axis that the next
       MatMul contracts; that is the only reading under which Eq. 6 is an attention (weights sum to one over
       what they average). alpha = 0.125 (Sec. 5.1).
       released: the original agent-attention order of Han et al.: aggregate with K, broadcast with Q
           M_agg = softmax_N(s * A K^T), M_bc = softmax_Na(s * Q A^T), s = head_dim ** -0.5 (768 ** -0.5).
Eq. 6  ``t_* = FFN(M_KA (M_QA V))``, FFN = Linear(C, rC) - GELU - Linear(rC, C) applied to the attention output;
       no residual and no LayerNorm (none written). Heads are merged before the FFN.
       released: ``x = x + Proj(M_bc (M_agg V)); x = x + MLP(LN(x))`` (a pre-norm transformer block).
Eq. 7  The visual stream's aggregation map, computed like Eq. 5 with its own (UNFUSED) agents.
Eq. 8  ``M^ = AVG[M, sigma_c(S) * M, sigma_t(S) * M]``, S = sum of the other streams' aggregation maps, ``*``
       element-wise, AVG = the mean of the three listed terms (commas in the paper). sigma_c = softmax over the
       map's last axis (as in Eq. 5: tokens); sigma_t must be a different axis for the third term to differ
       from the second: it is the other axis of the map, the agents (in the (B, tokens, channels) layout the
       authors' code uses, "token" is dim -2). So paper: softmax over N and over Na.
       released: the same average of three, but the third softmax runs over dim 1 of (B, h, Na, N), the HEAD
       axis; with 1 head it is all ones, so in effect M * (softmax_N(S) + 2) / 3.
Eq. 9  ``A^ = A + sigma_c(S_A) * A + sigma_t(S_A) * A`` with S_A = sum of the other streams' agent tokens,
       sigma_c over the channels d (last axis), sigma_t over the agents (the token axis of the agent sequence).
       Paper: a SUM - the equation puts '+' inside AVG[...] (a single term), unlike the commas of Eq. 8; as
       written the AVG of one term is that term.
       released: ``(A + softmax_d(S_A) * A + softmax_heads(S_A) * A) / 3`` - an average of three with an
       identity term, the head softmax again all ones with 1 head.
Eq. 10 ``M^_KA = softmax_Na(alpha * K A^^T)``: the fused agents enter the broadcast map only (Eq. 7's
       aggregation map used the unfused agents). released: the same, with Q in place of K (its broadcast map).
Eq. 11 ``t_*^VT = FFN(M^_KA (M^_QA V))`` (released: the block's residual form, as in Eq. 6).
Eq. 12 lives in ``baselines/refatomnet.py`` (it needs the streams).
"""
from __future__ import annotations

import math

import torch
from torch import nn

VARIANTS = ("paper", "released")
PAPER_ALPHA = 0.125


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant


# ---------------------------------------------------------------------------------------------- Eq. 5 / 7 / 10
def aggregation_map(agents: torch.Tensor, x: torch.Tensor, alpha: float) -> torch.Tensor:
    """softmax over tokens of ``alpha * A X^T``: (B, h, Na, d), (B, h, N, d) -> (B, h, Na, N); rows sum to 1."""
    return torch.softmax(alpha * agents @ x.transpose(-1, -2), dim=-1)


def broadcast_map(x: torch.Tensor, agents: torch.Tensor, alpha: float) -> torch.Tensor:
    """softmax over agents of ``alpha * X A^T``: (B, h, N, d), (B, h, Na, d) -> (B, h, N, Na); rows sum to 1."""
    return torch.softmax(alpha * x @ agents.transpose(-1, -2), dim=-1)


def eq5_agent_maps(agents, q, k, alpha: float, variant: str = "paper"):
    """Eq. 5 -> (aggregation map (B,h,Na,N), broadcast map (B,h,N,Na)).

    paper: M_QA = softmax_N(alpha A Q^T) aggregates, M_KA = softmax_Na(alpha K A^T) broadcasts.
    released: M_agg = softmax_N(s A K^T), M_bc = softmax_Na(s Q A^T) (Han et al.'s order).
    """
    if _check_variant(variant) == "paper":
        return aggregation_map(agents, q, alpha), broadcast_map(k, agents, alpha)
    return aggregation_map(agents, k, alpha), broadcast_map(q, agents, alpha)


def eq6_agent_attention(bc_map: torch.Tensor, agg_map: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The MatMul part of Eq. 6 / 11: ``M_bc (M_agg V)``: (B,h,N,Na), (B,h,Na,N), (B,h,N,d) -> (B,h,N,d)."""
    return bc_map @ (agg_map @ v)


def eq7_visual_query_map(agents, q, k, alpha: float, variant: str = "paper") -> torch.Tensor:
    """Eq. 7: the visual stream's aggregation map with its own, unfused agents."""
    return eq5_agent_maps(agents, q, k, alpha, variant)[0]


def _sigma_t_dim(variant: str) -> int:
    # paper: the axis before the last (agents); released: dim 1 of (B, h, ., .), the head axis
    return -2 if _check_variant(variant) == "paper" else 1


def eq8_caaf(m_visual: torch.Tensor, m_others: list[torch.Tensor], variant: str = "paper") -> torch.Tensor:
    """Eq. 8, cross-stream agent attention fusion: AVG[M, sigma_c(S) M, sigma_t(S) M], S = sum of the others."""
    if not m_others:
        return m_visual
    s = torch.stack(list(m_others)).sum(0)
    c = torch.softmax(s, dim=-1)
    t = torch.softmax(s, dim=_sigma_t_dim(variant))
    return (m_visual + c * m_visual + t * m_visual) / 3.0


def eq9_catf(a_visual: torch.Tensor, a_others: list[torch.Tensor], variant: str = "paper") -> torch.Tensor:
    """Eq. 9, cross-stream agent token fusion. paper: A + sigma_c(S) A + sigma_t(S) A (sum as written);
    released: the same three terms averaged, sigma_t over the head axis."""
    if not a_others:
        return a_visual
    s = torch.stack(list(a_others)).sum(0)
    c = torch.softmax(s, dim=-1)
    t = torch.softmax(s, dim=_sigma_t_dim(variant))
    fused = a_visual + c * a_visual + t * a_visual
    return fused if variant == "paper" else fused / 3.0


def eq10_fused_broadcast_map(fused_agents, q, k, alpha: float, variant: str = "paper") -> torch.Tensor:
    """Eq. 10: the broadcast map with the fused agents (paper: from K; released: from Q)."""
    return broadcast_map(k if _check_variant(variant) == "paper" else q, fused_agents, alpha)


def eq11_visual_tokens(block: AgentBlock, state: dict, agg_hat: torch.Tensor, bc_hat: torch.Tensor) -> torch.Tensor:
    """Eq. 11: the visual stream's output from the fused maps (the block's Eq. 6 form with M^_QA and M^_KA)."""
    return block.output(state, agg_hat, bc_hat)


# ---------------------------------------------------------------------------------------------- the block
class AgentBlock(nn.Module):
    """One stream's agent attention (Eq. 4-6), with hooks for the cross-stream fusions (Eq. 7-11).

    ``num_tokens`` is the stream's (fixed) token count: the paper's P_A maps the token axis to the agents.
    ``alpha=None`` means the variant's scale: 0.125 (paper) or head_dim ** -0.5 (released).
    """

    def __init__(self, dim: int, num_tokens: int, num_agents: int = 4, num_heads: int = 1, alpha: float | None = None,
                 variant: str = "paper", mlp_ratio: float = 4.0):
        super().__init__()
        self.variant = _check_variant(variant)
        if dim % num_heads:
            raise ValueError(f"AgentBlock: width {dim} is not divisible by num_heads={num_heads}")
        self.dim, self.heads, self.num_agents, self.num_tokens = dim, num_heads, num_agents, num_tokens
        self.head_dim = dim // num_heads
        if alpha is None:
            alpha = PAPER_ALPHA if variant == "paper" else self.head_dim ** -0.5
        self.alpha = float(alpha)
        hidden = int(round(dim * mlp_ratio))
        if variant == "paper":
            self.w_q, self.w_k, self.w_v, self.w_a = (nn.Linear(dim, dim) for _ in range(4))  # Eq. 4
            self.p_a = nn.Linear(num_tokens, num_agents)  # P_A over the token axis (replaces 2-D pooling)
            self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))  # Eq. 6 FFN
        else:
            self.norm1 = nn.LayerNorm(dim)
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
            self.agent_mlp = nn.Sequential(nn.Linear(dim, dim // 2), nn.GELU(), nn.Linear(dim // 2, num_agents * dim))
            self.proj = nn.Linear(dim, dim)
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    # (B, N, C) <-> (B, h, N, d)
    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, h, n, d = x.shape
        return x.transpose(1, 2).reshape(b, n, h * d)

    def eq4_project(self, t: torch.Tensor) -> dict:
        """Eq. 4: q, k, v (B, h, N, d) and the agent tokens A_* (B, h, Na, d)."""
        if t.dim() != 3 or t.shape[1] != self.num_tokens or t.shape[2] != self.dim:
            raise ValueError(f"AgentBlock built for (B, {self.num_tokens}, {self.dim}) tokens, got {tuple(t.shape)}")
        if self.variant == "paper":
            q, k, v, a = self.w_q(t), self.w_k(t), self.w_v(t), self.w_a(t)
            a = self.p_a(a.transpose(1, 2)).transpose(1, 2)  # (B, N, C) -> (B, Na, C)
        else:
            q, k, v = self.qkv(self.norm1(t)).chunk(3, dim=-1)
            a = self.agent_mlp(q).mean(dim=1).view(t.shape[0], self.num_agents, self.dim)
        return {"x": t, "q": self._split(q), "k": self._split(k), "v": self._split(v), "a": self._split(a)}

    def maps(self, st: dict, agents: torch.Tensor | None = None):
        """Eq. 5 for this block: (aggregation, broadcast) maps; ``agents`` overrides the broadcast map's agents."""
        agg, bc = eq5_agent_maps(st["a"], st["q"], st["k"], self.alpha, self.variant)
        if agents is not None:
            bc = eq10_fused_broadcast_map(agents, st["q"], st["k"], self.alpha, self.variant)
        return agg, bc

    def output(self, st: dict, agg: torch.Tensor, bc: torch.Tensor) -> torch.Tensor:
        """Eq. 6 / 11: the attention and the FFN (paper) or the residual block (released) -> (B, N, C)."""
        att = self._merge(eq6_agent_attention(bc, agg, st["v"]))
        if self.variant == "paper":
            return self.ffn(att)
        x = st["x"] + self.proj(att)
        return x + self.mlp(self.norm2(x))

    def forward(self, t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Plain (unfused) agent attention of one stream: returns (t_*, state with maps and agents)."""
        st = self.eq4_project(t)
        agg, bc = self.maps(st)
        st["agg"], st["bc"] = agg, bc
        return self.output(st, agg, bc), st


class CrossStreamAgentFusion(nn.Module):
    """Eq. 4-11 for the three streams: agent attention per stream; CAAF (Eq. 8) and CATF (Eq. 9-10) from the
    textual and location streams into the visual one. Returns each stream's output tokens."""

    def __init__(self, dim: int, num_tokens: int, num_agents: int = 4, num_heads: int = 1, alpha: float | None = None,
                 variant: str = "paper", mlp_ratio: float = 4.0, caaf: bool = True, catf: bool = True,
                 streams=("vt", "rt", "ls")):
        super().__init__()
        if "vt" not in streams:
            raise ValueError("CrossStreamAgentFusion needs the visual stream 'vt'")
        self.streams = tuple(streams)
        self.variant = _check_variant(variant)
        self.caaf, self.catf = caaf, catf
        self.blocks = nn.ModuleDict({s: AgentBlock(dim, num_tokens, num_agents, num_heads, alpha, variant, mlp_ratio)
                                     for s in self.streams})

    def forward(self, tokens: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
        outs, states = {}, {}
        others = [s for s in self.streams if s != "vt"]
        for s in others:  # Eq. 5-6 for pi in [RT, LS]
            outs[s], states[s] = self.blocks[s](tokens[s])
        blk = self.blocks["vt"]
        st = blk.eq4_project(tokens["vt"])
        agg = eq7_visual_query_map(st["a"], st["q"], st["k"], blk.alpha, self.variant)  # Eq. 7
        if self.caaf:
            agg = eq8_caaf(agg, [states[s]["agg"] for s in others], self.variant)  # Eq. 8
        agents = eq9_catf(st["a"], [states[s]["a"] for s in others], self.variant) if self.catf else st["a"]  # Eq. 9
        bc = eq10_fused_broadcast_map(agents, st["q"], st["k"], blk.alpha, self.variant)  # Eq. 10
        st["agg"], st["bc"], st["fused_agents"] = agg, bc, agents
        outs["vt"] = eq11_visual_tokens(blk, st, agg, bc)  # Eq. 11
        states["vt"] = st
        return outs, states


class SoftmaxCrossAttention(nn.Module):
    """Plain softmax cross-attention of the same width (for the scaling benchmark): the visual tokens attend to
    the other streams' tokens, followed by the same FFN as Eq. 6."""

    def __init__(self, dim: int, num_heads: int = 1, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads, self.head_dim = num_heads, dim // num_heads
        self.w_q, self.w_k, self.w_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        hidden = int(round(dim * mlp_ratio))
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, visual: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, c = visual.shape
        q = self.w_q(visual).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.w_k(context).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        v = self.w_v(context).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        out = nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0 / math.sqrt(self.head_dim))
        return self.ffn(out.transpose(1, 2).reshape(b, n, c))


__all__ = ["AgentBlock", "CrossStreamAgentFusion", "SoftmaxCrossAttention", "aggregation_map", "broadcast_map",
           "eq5_agent_maps", "eq6_agent_attention", "eq7_visual_query_map", "eq8_caaf", "eq9_catf",
           "eq10_fused_broadcast_map", "eq11_visual_tokens", "VARIANTS", "PAPER_ALPHA"]
