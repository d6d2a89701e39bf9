"""The tool caller's piece embeddings: a table trained here, or a pretrained LM's input embedding.

Both kinds answer the three questions the model asks: the embedding of some ids, the sum of
each slot's piece embeddings (`bag`), and the whole table (the generator's tied output layer).

The pretrained kind keeps the LM's matrix frozen (a buffer: no gradient, no optimizer state,
no EMA copy), adds a trainable row for each of recursa's special tokens (which the LM has no
row for), an optional low-rank update of every row, and a projection to the trunk's width.
The low-rank update is written here rather than with PEFT's LoRA for embeddings because slots
are summed with `embedding_bag`, which needs the two factors apart: bagging the factor A and
multiplying once by B costs a few hundred multiply-adds per slot instead of a 49k x 576 table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recursa.core.config import ConfigError
from recursa.core.sources import ModelSource
from recursa.fc.tokenizer.pretrained import SHIFT


@dataclass(frozen=True)
class PretrainedEmbeddingSpec:
    """Which LM's input embedding, its width, and the rank of the trained update (0: frozen)."""

    source: str
    lm_vocab_size: int
    dim: int
    rank: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


class TrainedPieces(nn.Embedding):
    """A piece table learned from scratch (row 0, ``<pad>``, stays zero)."""

    def __init__(self, vocab_size: int, hidden: int) -> None:
        super().__init__(vocab_size, hidden, padding_idx=0)

    def bag(self, flat: Tensor) -> Tensor:
        """Sum of the embeddings of each row of ids [N, W] (pads skipped): [N, hidden]."""
        return F.embedding_bag(flat, self.weight, mode="sum", padding_idx=0)

    @property
    def num_ids(self) -> int:
        return self.num_embeddings

    def table(self) -> Tensor:
        return self.weight

    def frozen_count(self) -> int:
        return 0


class PretrainedPieces(nn.Module):
    """An LM's input embedding (frozen, rescaled to unit RMS) + special rows + low-rank update, projected."""

    def __init__(self, spec: PretrainedEmbeddingSpec, hidden: int) -> None:
        super().__init__()
        self.spec = spec
        vocab = SHIFT + spec.lm_vocab_size
        # Filled by load_pretrained (training) or by a saved model's weights.
        self.register_buffer("frozen", torch.zeros(spec.lm_vocab_size, spec.dim))
        self.register_buffer("scale", torch.ones(()))
        self.specials = nn.Parameter(torch.randn(SHIFT, spec.dim))
        with torch.no_grad():
            self.specials[0].zero_()  # <pad>
        rank = max(spec.rank, 1)  # rank 0 keeps zero-width factors out of the state dict's way
        self.lora_a = nn.Parameter(torch.zeros(vocab, rank), requires_grad=spec.rank > 0)
        self.lora_b = nn.Parameter(torch.randn(rank, spec.dim) / math.sqrt(rank), requires_grad=spec.rank > 0)
        self.project = nn.Linear(spec.dim, hidden, bias=False)
        nn.init.normal_(self.project.weight, std=1.0 / math.sqrt(spec.dim))
        self._cached: tuple[tuple[int, ...], Tensor] | None = None

    def load_pretrained(self, matrix: Tensor) -> None:
        """Copy in the LM's embedding matrix [lm_vocab_size, dim]."""
        if tuple(matrix.shape) != tuple(self.frozen.shape):
            raise ValueError(f"embedding of shape {tuple(matrix.shape)}, expected {tuple(self.frozen.shape)}")
        with torch.no_grad():
            self.frozen.copy_(matrix)
            self.scale.fill_(1.0 / float(matrix.float().pow(2).mean().sqrt().clamp(min=1e-8)))

    def _rows(self, ids: Tensor) -> Tensor:
        """Unprojected embeddings of ids [...] -> [..., dim]."""
        lm = F.embedding((ids - SHIFT).clamp(min=0), self.frozen) * self.scale
        special = F.embedding(ids.clamp(max=SHIFT - 1), self.specials)
        rows = torch.where((ids < SHIFT)[..., None], special, lm)
        return rows + F.embedding(ids, self.lora_a) @ self.lora_b

    @property
    def num_ids(self) -> int:
        return SHIFT + self.spec.lm_vocab_size

    def forward(self, ids: Tensor) -> Tensor:
        return self.project(self._rows(ids))

    def bag(self, flat: Tensor) -> Tensor:
        """Sum of the embeddings of each row of ids [N, W] (pads skipped): [N, hidden]."""
        is_special = flat < SHIFT
        lm = _weighted_bag(self.frozen, (flat - SHIFT).clamp(min=0), ~is_special)
        special = _weighted_bag(self.specials, flat.clamp(max=SHIFT - 1), is_special & (flat != 0))
        low_rank = F.embedding_bag(flat, self.lora_a, mode="sum", padding_idx=0) @ self.lora_b
        return self.project(lm * self.scale + special + low_rank)

    def table(self) -> Tensor:
        """Every id's projected embedding [vocab, hidden] (the generator's output layer).

        The frozen rows reach the projection without a gradient: training the projection through
        a 49k-row product would cost as much as the rest of a training step (measured: 0.37 s of
        1.7 s), and the input side trains it anyway. Without gradients (inference) the table is
        kept until a parameter changes.
        """
        weights = (self.specials, self.lora_a, self.lora_b, self.project.weight, self.frozen)
        key = tuple(w._version for w in weights)
        if not torch.is_grad_enabled() and self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        projection = self.project.weight
        lm = F.linear(self.frozen * self.scale, projection.detach())
        table = torch.cat([F.linear(self.specials, projection), lm]) + self.lora_a @ F.linear(self.lora_b, projection)
        if not torch.is_grad_enabled():
            self._cached = (key, table)
        return table

    def frozen_count(self) -> int:
        return self.frozen.numel()


def _weighted_bag(table: Tensor, ids: Tensor, weights: Tensor) -> Tensor:
    """Per row of ids [N, W], the sum of table rows weighted by weights [N, W] (0 skips an id)."""
    return F.embedding_bag(ids, table, mode="sum", per_sample_weights=weights.to(table.dtype))


def read_input_embedding(source: ModelSource) -> Tensor:
    """The input embedding matrix [vocab, dim] of the LM at `source`.

    A GGUF is read with the gguf package alone (seconds, and no 135M-parameter model in memory);
    anything else goes through transformers.
    """
    if source.gguf_file:
        import gguf

        path = Path(source.location) / source.gguf_file
        reader = gguf.GGUFReader(str(path))
        for tensor in reader.tensors:
            if tensor.name == "token_embd.weight":
                return torch.from_numpy(gguf.quants.dequantize(tensor.data, tensor.tensor_type).copy()).float()
        raise ConfigError(f"tokenizer.model: {path} has no token_embd.weight tensor")
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(source.location, **source.options)
    return lm.get_input_embeddings().weight.detach().float().clone()
