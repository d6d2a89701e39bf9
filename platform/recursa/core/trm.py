"""Tiny Recursive Model (TRM, arXiv 2510.04871): one small network applied recursively.

One ``ReasoningNet`` refines a latent state ``z`` from the input ``x`` and the current answer
``y`` (``n`` times), then refines ``y`` from ``y`` and ``z``; that is one cycle. ``T`` cycles run
per call, the first ``T - 1`` without gradients, so memory does not grow with depth. The returned
carry ``(y, z)`` is detached and can seed the next call (deep supervision, recurrent state).
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, ValidationInfo, field_validator, model_validator
from torch import Tensor, nn

from recursa.core.config import StrictModel
from recursa.core.presets import PRESET_VOCAB_SIZE, PRESETS, PresetName

Carry = tuple[Tensor, Tensor]


class TRMConfig(StrictModel):
    """The trunk config of every TRM (the gift policy, the tool caller, the token model): its shape
    and default recursion depth.

    `preset` starts from a named size (core/presets.py); the fields given beside it override the preset's.
    """

    preset: PresetName | None = None
    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1, validate_default=True)  # checked against hidden_size even when left out
    expansion: float = Field(8 / 3, gt=0.0)  # SwiGLU width over hidden_size
    mixer: Literal["attention", "mlp"] = "attention"
    # Token positions: the mlp mixer mixes exactly this many, the token model embeds up to this many.
    # Attention needs none, so the gift policy acts on any number of candidates.
    seq_len: int | None = Field(None, ge=1)
    T: int = Field(2, ge=1)
    n: int = Field(2, ge=1)
    rms_eps: float = Field(1e-6, gt=0.0)

    @model_validator(mode="before")
    @classmethod
    def _start_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @field_validator("num_heads")
    @classmethod
    def _heads_divide_hidden_size(cls, num_heads: int, info: ValidationInfo) -> int:
        hidden_size = info.data.get("hidden_size")
        if hidden_size is not None and hidden_size % num_heads:
            raise ValueError(f"must divide hidden_size ({hidden_size}), got {num_heads}")
        return num_heads


class TRMOutput(NamedTuple):
    """Result of one ``TRMCore`` call."""

    y: Tensor  # answer state [B, L, H], differentiable through the last cycle
    z: Tensor  # latent state [B, L, H], differentiable through the last cycle
    q_logit: Tensor  # halting logit [B]: "the current answer is right"
    carry: Carry  # (y, z) detached, to start the next call from


def _intermediate_size(dim: int, expansion: float) -> int:
    """SwiGLU width: ``expansion * dim`` rounded up to a multiple of 8."""
    return 8 * math.ceil(round(expansion * dim) / 8)


class RMSNorm(nn.RMSNorm):
    """RMS normalisation over the last dimension, without a learned scale (as in TRM)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__(dim, eps=eps, elementwise_affine=False)


class SwiGLU(nn.Module):
    """Gated feed-forward layer ``down(silu(gate(h)) * up(h))`` over the last dimension."""

    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        inner = _intermediate_size(dim, expansion)
        self.gate_up = nn.Linear(dim, 2 * inner, bias=False)
        self.down = nn.Linear(inner, dim, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class SelfAttention(nn.Module):
    """Non-causal multi-head self-attention."""

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        """``mask`` [B, L] is True for real tokens; padding is never attended to."""
        batch, length, hidden = h.shape
        qkv = self.qkv(h).view(batch, length, 3, self.num_heads, hidden // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, heads, L, head_dim]
        attn_mask = None if mask is None else mask[:, None, None, :]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(attended.transpose(1, 2).reshape(batch, length, hidden))


class SequenceMixer(nn.Module):
    """TRM's attention-free mixer: a SwiGLU across token positions (fixed sequence length)."""

    def __init__(self, seq_len: int, expansion: float) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.mlp = SwiGLU(seq_len, expansion)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is not None:
            h = h * mask[..., None]  # padded positions contribute nothing to the mix
        if h.shape[1] != self.seq_len:
            raise ValueError(
                f"the mlp mixer needs sequences of exactly seq_len={self.seq_len} tokens, "
                f"got {h.shape[1]}"
            )
        return self.mlp(h.transpose(1, 2)).transpose(1, 2)


class Block(nn.Module):
    """Post-norm block: ``h = norm(h + mixer(h)); h = norm(h + swiglu(h))``."""

    def __init__(self, config: TRMConfig) -> None:
        super().__init__()
        if config.mixer == "attention":
            self.mixer: nn.Module = SelfAttention(config.hidden_size, config.num_heads)
        elif config.seq_len is None:
            raise ValueError("seq_len: the mlp mixer mixes a fixed number of positions; set seq_len")
        else:
            self.mixer = SequenceMixer(config.seq_len, config.expansion)
        self.mixer_norm = RMSNorm(config.hidden_size, config.rms_eps)
        self.mlp = SwiGLU(config.hidden_size, config.expansion)
        self.mlp_norm = RMSNorm(config.hidden_size, config.rms_eps)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.mixer_norm(h + self.mixer(h, mask))
        return self.mlp_norm(h + self.mlp(h))


class ReasoningNet(nn.Module):
    """``net(a, b, ...)``: the blocks applied to the sum of the inputs."""

    def __init__(self, config: TRMConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))

    def forward(self, *inputs: Tensor, mask: Tensor | None = None) -> Tensor:
        h = sum(inputs[1:], inputs[0])
        for block in self.blocks:
            h = block(h, mask)
        return h


class TRMCore(nn.Module):
    """The recursion over input embeddings ``x`` [B, L, H], with a halting (Q) head."""

    def __init__(self, config: TRMConfig) -> None:
        super().__init__()
        self.config = config
        self.net = ReasoningNet(config)
        # Block outputs are RMS-normalised (unit scale), so the starting states get unit scale too.
        self.y_init = nn.Parameter(nn.init.trunc_normal_(torch.empty(config.hidden_size), std=1.0))
        self.z_init = nn.Parameter(nn.init.trunc_normal_(torch.empty(config.hidden_size), std=1.0))
        self.q_head = nn.Linear(config.hidden_size, 1)
        nn.init.zeros_(self.q_head.weight)
        nn.init.constant_(self.q_head.bias, -5.0)  # start confident that answers are not yet right

    def initial_carry(self, batch_size: int, seq_len: int) -> Carry:
        """The learned starting states ``(y, z)``, each expanded to [batch_size, seq_len, H]."""
        shape = (batch_size, seq_len, self.config.hidden_size)
        return self.y_init.expand(shape), self.z_init.expand(shape)

    def latent_recursion(self, x: Tensor, y: Tensor, z: Tensor, n: int, mask: Tensor | None = None) -> Carry:
        """One cycle: ``n`` times ``z = net(x, y, z)``, then ``y = net(y, z)``."""
        for _ in range(n):
            z = self.net(x, y, z, mask=mask)
        return self.net(y, z, mask=mask), z

    def forward(
        self,
        x: Tensor,
        carry: Carry | None = None,
        T: int | None = None,
        n: int | None = None,
        mask: Tensor | None = None,
    ) -> TRMOutput:
        """Run ``T`` cycles of ``n`` latent steps; only the last cycle is differentiable.

        ``mask`` [B, L] (True for real tokens) keeps padding out of attention.
        """
        T = self.config.T if T is None else T
        n = self.config.n if n is None else n
        if T < 1 or n < 1:
            raise ValueError(f"T and n must be >= 1, got T={T}, n={n}")
        y, z = self.initial_carry(x.shape[0], x.shape[1]) if carry is None else carry
        with torch.no_grad():
            for _ in range(T - 1):
                y, z = self.latent_recursion(x, y, z, n, mask)
        y, z = self.latent_recursion(x, y, z, n, mask)
        q_logit = self.q_head(y[:, 0]).squeeze(-1)
        return TRMOutput(y, z, q_logit, (y.detach(), z.detach()))


class TRMTokenModel(nn.Module):
    """Tokens in, next-token logits out: embeddings, ``TRMCore`` and an LM head reading ``y``."""

    def __init__(self, config: TRMConfig, vocab_size: int) -> None:
        super().__init__()
        if config.seq_len is None:
            raise ValueError("seq_len: the token model embeds positions up to seq_len; set it")
        self.config = config
        self.seq_len = config.seq_len
        # As in TRM: embeddings start at std 1/sqrt(H) and are scaled up by sqrt(H), so x has unit
        # scale like y and z while the embedding weights stay on the scale of the other weights.
        self.embed_scale = math.sqrt(config.hidden_size)
        std = 1.0 / self.embed_scale
        self.token_embedding = nn.Embedding(vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(self.seq_len, config.hidden_size)
        nn.init.trunc_normal_(self.token_embedding.weight, std=std, a=-2 * std, b=2 * std)
        nn.init.trunc_normal_(self.position_embedding.weight, std=std, a=-2 * std, b=2 * std)
        self.core = TRMCore(config)
        self.lm_head = nn.Linear(config.hidden_size, vocab_size, bias=False)

    def forward(
        self,
        tokens: Tensor,
        carry: Carry | None = None,
        T: int | None = None,
        n: int | None = None,
    ) -> tuple[Tensor, TRMOutput]:
        """Logits [B, L, vocab] from token ids [B, L] (L <= seq_len), and the core's output."""
        length = tokens.shape[1]
        if length > self.seq_len:
            raise ValueError(f"sequence of {length} tokens exceeds seq_len={self.seq_len}")
        positions = torch.arange(length, device=tokens.device)
        x = self.embed_scale * (self.token_embedding(tokens) + self.position_embedding(positions))
        out = self.core(x, carry=carry, T=T, n=n)
        return self.lm_head(out.y), out


def count_parameters(module: nn.Module) -> int:
    """Number of parameters in ``module`` (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())


def preset_parameter_counts() -> dict[str, int]:
    """Parameter count of each preset's ``TRMTokenModel``, built on the meta device (no memory)."""
    with torch.device("meta"):
        return {
            name: count_parameters(TRMTokenModel(TRMConfig(preset=name), PRESET_VOCAB_SIZE))
            for name in PRESETS
        }
