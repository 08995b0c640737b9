"""The next-item model shared by training and serving: a GPT-style decoder over item ids.

Contract (the export format both sides agree on):

- Token ids are item ids. Id 0 is padding; real items are 1..num_items, so
  ``vocab_size == num_items + 1``.
- ``config.json`` holds ``ModelConfig`` as JSON (``ModelConfig.to_json`` / ``from_json``),
  ``model.safetensors`` holds ``NextItemModel.state_dict()`` with these parameter names.
- Inputs are left-padded sequences of shape (B, T) with T <= block_size; the logits of the
  last position rank the next item. The padding logit is never returned as a recommendation.

Deliberately small and flat, in the manner of nanoGPT: a reader can hold it in their head.
This module imports only torch; it knows nothing of clusters, clouds or the CLI.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the decoder. Presets live in ``PRESETS``."""

    num_items: int = 1000
    """Number of real items; ids run 1..num_items, 0 is padding."""
    block_size: int = 32
    """Longest input sequence (items of history)."""
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = False
    """Bias in Linear and LayerNorm layers (False: a little faster and no worse)."""

    @property
    def vocab_size(self) -> int:
        return self.num_items + 1

    def to_json(self) -> str:
        return json.dumps({"model_type": "gpuplane-next-item", **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known - {"model_type"}
        if unknown:
            raise ValueError(f"config.json: unknown keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**{k: v for k, v in raw.items() if k in known})

    def num_params(self) -> int:
        """Parameters (position embeddings included; the head is tied to the item embedding)."""
        d, L, V, T = self.n_embd, self.n_layer, self.vocab_size, self.block_size
        per_block = 12 * d * d + 2 * d + (11 * d if self.bias else 0)  # linears, 2 LayerNorms, biases
        return V * d + T * d + L * per_block + (2 * d if self.bias else d)  # embeddings, blocks, ln_f

    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6N + 12·L·d·T (PaLM appendix B / nanoGPT)."""
        return 6 * self.num_params() + 12 * self.n_layer * self.n_embd * self.block_size


PRESETS: dict[str, ModelConfig] = {
    # CPU tests and the demo: trains in seconds.
    "tiny": ModelConfig(num_items=1000, block_size=32, n_layer=2, n_head=2, n_embd=64),
    # GPT-2-124M class, for GPUs.
    "small": ModelConfig(num_items=50_000, block_size=256, n_layer=12, n_head=12, n_embd=768),
}


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd={cfg.n_embd} must be divisible by n_head={cfg.n_head}")
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # (T, T)
        mask = causal if key_mask is None else causal & key_mask[:, None, None, :]  # (B, 1, T, T)
        if key_mask is not None:
            # A left-padded row's padding queries see no real key; let them see themselves so
            # softmax stays finite. Their outputs are never used.
            mask = mask | torch.eye(T, dtype=torch.bool, device=x.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), key_mask)
        return x + self.mlp(self.ln_2(x))


class NextItemModel(nn.Module):
    """Decoder-only transformer; ``forward(idx)`` returns logits (B, T, vocab_size)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):  # GPT-2 scaled init of residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _, T = idx.shape  # (B, T)
        if T > self.cfg.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.cfg.block_size}")
        key_mask = idx != 0  # (B, T); padding keys are masked out
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x, key_mask)
        x = self.ln_f(x)  # (B, T, C)
        return x @ self.wte.weight.T  # (B, T, V), head tied to the item embedding

    @torch.no_grad()
    def recommend(self, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k next items for left-padded histories (B, T): (item ids (B, k), scores (B, k))."""
        logits = self.forward(idx)[:, -1, :].float()  # (B, V)
        logits[:, 0] = float("-inf")  # never recommend padding
        scores, items = torch.topk(torch.log_softmax(logits, dim=-1), k=k, dim=-1)
        return items, scores
