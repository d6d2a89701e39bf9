"""The tool-calling TRM: the shared TRM core with small heads for calls and arguments.

Heads read the answer state y:
  - function choice: a pointer over the offered functions plus "no call" (from CLS),
  - calls per function (0..max_calls), for parallel answers,
  - per parameter and call index: a mode (absent, copy a span, enum value, true, false,
    generate), B/I/O tags over the query tokens for copied spans (several segments for arrays),
    a pointer over the parameter's enum values, and for generated values a small GRU decoder
    over the tokenizer's pieces (output embedding tied to the input one), started from the
    parameter's state,
  - the core's Q head on CLS: is the whole current answer right (halting).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recursa.core.trm import Carry, TRMConfig, TRMCore, count_parameters
from recursa.fc.embedding import PretrainedEmbeddingSpec, PretrainedPieces, TrainedPieces
from recursa.fc.features import GENERATE, IGNORE, MODES, ROLES, TAG_O, FCLimits
from recursa.fc.overlap import NUM_MATCH_IDS
from recursa.fc.tokenizer import SPECIAL_IDS
from recursa.tools.schema import PARAM_TYPES

NEG = -1e4  # logit of a masked choice (finite, so ignored rows never produce NaN)
EOS = SPECIAL_IDS["<eos>"]


class FCOutput(NamedTuple):
    pointer: Tensor  # [B, 1 + F]: no call, then each function
    counts: Tensor  # [B, F, max_calls + 1]
    modes: Tensor  # [B, P, K, modes]
    tags: Tensor  # [B, P, K, Lq, 3]
    enum: Tensor  # [B, P, K, E]
    q_logit: Tensor  # [B]
    carry: Carry
    # With generation targets in the batch (training): teacher-forced logits of the targeted
    # (param, call) rows [N, G, V] and which rows they are [B, P, K]. Without: greedy pieces of
    # every row whose mode is "generate", <eos> and after as 0 [B, P, K, G].
    generate_logits: Tensor | None = None
    generate_rows: Tensor | None = None
    generated: Tensor | None = None


class LossWeights(NamedTuple):
    """Seed 002's weights: tool choice 1.0, halting 0.5, arguments 2.0."""

    tool: float = 1.0
    q: float = 0.5
    arguments: float = 2.0


def outside_query_is_o(tags: Tensor, query_mask: Tensor) -> Tensor:
    """Tag logits [B, P, K, Lq, 3] with every token outside the query (query_mask [B, Lq]) fixed to O."""
    fixed = torch.full((3,), NEG, dtype=tags.dtype, device=tags.device)
    fixed[TAG_O] = 0.0
    return torch.where(query_mask[:, None, None, :, None], tags, fixed)


def _gather(states: Tensor, index: Tensor) -> Tensor:
    """states [B, S, H], index [B, N] -> [B, N, H]."""
    return states.gather(1, index[..., None].expand(-1, -1, states.shape[-1]))


class FunctionCallingTRM(nn.Module):
    """Slots in (see features.py), call structure out.

    Pieces are embedded by a table trained here, or, given `embedding`, through a pretrained
    LM's input embedding (see embedding.py); `vocab_size` is the tokenizer's either way.
    """

    def __init__(self, config: TRMConfig, vocab_size: int, limits: FCLimits = FCLimits(),
                 embedding: PretrainedEmbeddingSpec | None = None):
        super().__init__()
        hidden = config.hidden_size
        self.config, self.vocab_size, self.limits, self.embedding = config, vocab_size, limits, embedding
        self.pieces: TrainedPieces | PretrainedPieces = (
            TrainedPieces(vocab_size, hidden) if embedding is None else PretrainedPieces(embedding, hidden))
        if self.pieces.num_ids != vocab_size:
            raise ValueError(f"tokenizer of {vocab_size} ids, but the embedding has {self.pieces.num_ids} rows")
        self.desc_proj = nn.Linear(hidden, hidden, bias=False)
        longest = max(limits.max_query_tokens, limits.max_functions, limits.max_params, limits.max_enum_values)
        self.role = nn.Embedding(len(ROLES), hidden)
        self.position = nn.Embedding(longest, hidden)
        self.function_id = nn.Embedding(limits.max_functions + 1, hidden)
        self.param_id = nn.Embedding(limits.max_params + 1, hidden)
        self.type_id = nn.Embedding(len(PARAM_TYPES), hidden)
        self.required = nn.Embedding(2, hidden)
        self.match = nn.Embedding(NUM_MATCH_IDS, hidden)
        self.input_norm = nn.RMSNorm(hidden, elementwise_affine=False)
        self.trm = TRMCore(config)
        self.no_call = nn.Linear(hidden, 1)
        self.function_score = nn.Linear(hidden, 1)
        self.count_head = nn.Linear(hidden, limits.max_calls + 1)
        self.call_index = nn.Embedding(limits.max_calls, hidden)
        self.mode_head = nn.Linear(hidden, len(MODES))
        self.tag_proj = nn.Linear(hidden, 3 * hidden, bias=False)
        self.enum_proj = nn.Linear(hidden, hidden, bias=False)
        self.generate_init = nn.Linear(hidden, hidden)
        self.generate_start = nn.Parameter(torch.zeros(hidden))
        self.generator = nn.GRU(hidden, hidden, batch_first=True)
        self.generate_norm = nn.RMSNorm(hidden)
        # Subtracted from the no-call logit at inference; set by calibration on held-in data.
        self.no_call_bias = 0.0
        # Content (the pieces) must dominate the slot embedding at init; the role, position and
        # ownership embeddings start small so they do not drown it out.
        for table in (self.role, self.position, self.function_id, self.param_id, self.type_id, self.required,
                      self.match):
            nn.init.normal_(table.weight, std=0.1)

    def _bag(self, pieces: Tensor) -> Tensor:
        """Sum of each slot's piece embeddings over sqrt(count): unit scale whatever the length."""
        batch, slots, width = pieces.shape
        flat = pieces.reshape(-1, width)
        summed = self.pieces.bag(flat)
        count = (flat != 0).sum(-1, keepdim=True).clamp(min=1)
        return (summed / count.sqrt()).view(batch, slots, -1)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """The TRM input x for a collated batch."""
        x = (
            self._bag(batch["name_pieces"])
            + self.desc_proj(self._bag(batch["desc_pieces"]))
            + self.role(batch["role"])
            + self.position(batch["position"].clamp(max=self.position.num_embeddings - 1))
            + self.function_id(batch["function_id"])
            + self.param_id(batch["param_id"])
            + self.type_id(batch["type_id"])
            + self.required(batch["required"])
            + self.match(batch["match"])
        )
        return self.input_norm(x)

    def forward(self, batch: dict[str, Tensor], carry: Carry | None = None,
                T: int | None = None, n: int | None = None) -> FCOutput:
        mask = batch["slot_mask"]
        out = self.trm(self.embed(batch), carry=carry, T=T, n=n, mask=mask)
        y = out.y
        hidden = y.shape[-1]
        functions = _gather(y, batch["function_slots"])
        pointer = torch.cat([self.no_call(y[:, 0]) - self.no_call_bias, self.function_score(functions).squeeze(-1)],
                            dim=-1)
        pointer_mask = torch.cat([torch.ones_like(batch["function_mask"][:, :1]), batch["function_mask"]], dim=-1)
        params = _gather(y, batch["param_slots"])[:, :, None, :] + self.call_index.weight  # [B, P, K, H]
        modes = self.mode_head(params).masked_fill(~batch["mode_allowed"][:, :, None, :], NEG)
        lq = batch["query_mask"].shape[1]
        query = y[:, 1:1 + lq]
        tag_keys = self.tag_proj(params).unflatten(-1, (3, hidden))
        tags = outside_query_is_o(torch.einsum("bpkch,bqh->bpkqc", tag_keys, query) / math.sqrt(hidden),
                                  batch["query_mask"])
        enums = _gather(y, batch["enum_slots"])
        enum = torch.einsum("bpkh,beh->bpke", self.enum_proj(params), enums) / math.sqrt(hidden)
        owner = batch["enum_param"][:, None, :] == torch.arange(params.shape[1])[None, :, None]
        enum = enum.masked_fill(~owner[:, :, None, :], NEG)
        if "generate" in batch:
            rows = batch["generate"][..., 0] != IGNORE
            generation = {"generate_logits": self.teacher_forced(params[rows], batch["generate"][rows]),
                          "generate_rows": rows}
        else:
            rows = modes.argmax(-1) == GENERATE
            generated = torch.zeros((*rows.shape, self.limits.max_generate_pieces), dtype=torch.long)
            generated[rows] = self.greedy(params[rows])
            generation = {"generated": generated}
        return FCOutput(
            pointer=pointer.masked_fill(~pointer_mask, NEG),
            counts=self.count_head(functions).masked_fill(~batch["function_mask"][..., None], 0.0),
            modes=modes,
            tags=tags,
            enum=enum,
            q_logit=out.q_logit,
            carry=out.carry,
            **generation,
        )

    def parameter_count(self) -> int:
        """Every parameter, the pretrained embedding's frozen matrix included."""
        return count_parameters(self) + self.pieces.frozen_count()

    def _piece_logits(self, hidden: Tensor, table: Tensor) -> Tensor:
        return F.linear(self.generate_norm(hidden), table) / math.sqrt(hidden.shape[-1])

    def _start(self, states: Tensor) -> tuple[Tensor, Tensor]:
        """The decoder's first input and initial hidden state for parameter states [N, H]."""
        return self.generate_start.expand(states.shape[0], 1, -1), torch.tanh(self.generate_init(states))[None]

    def teacher_forced(self, states: Tensor, targets: Tensor) -> Tensor:
        """Piece logits [N, G, V] of target pieces [N, G] (IGNORE-padded), each step fed the truth."""
        first, hidden = self._start(states)
        previous = self.pieces(targets[:, :-1].clamp(min=0))
        out, _ = self.generator(torch.cat([first, previous], dim=1), hidden)
        return self._piece_logits(out, self.pieces.table())

    def greedy(self, states: Tensor) -> Tensor:
        """Greedy pieces [N, G] for parameter states [N, H]; <eos> and what follows are 0."""
        length = self.limits.max_generate_pieces
        pieces = torch.zeros((states.shape[0], length), dtype=torch.long)
        if not len(states):
            return pieces
        step, hidden = self._start(states)
        table = self.pieces.table()
        open_rows = torch.ones(states.shape[0], dtype=torch.bool)
        for i in range(length):
            out, hidden = self.generator(step, hidden)
            logits = self._piece_logits(out[:, 0], table)
            logits[:, 0] = NEG  # never pad
            choice = logits.argmax(-1)
            open_rows &= choice != EOS
            pieces[:, i] = choice * open_rows
            if not open_rows.any():
                break
            step = self.pieces(choice)[:, None]
        return pieces


def _ce(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy over the last dim, skipping IGNORE targets; 0 when all are ignored."""
    flat_target = target.reshape(-1)
    if not (flat_target != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat_target, ignore_index=IGNORE)


def _all_right(logits: Tensor, target: Tensor) -> Tensor:
    """Per example: every non-ignored argmax equals its target. target [B, ...]."""
    wrong = (logits.argmax(-1) != target) & (target != IGNORE)
    return ~wrong.flatten(1).any(-1)


def fc_loss(output: FCOutput, batch: dict[str, Tensor], weights: LossWeights = LossWeights(),
            active: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted loss of one supervision step and per-example correctness (the Q target).

    `active` [B] (bool) limits the loss to examples that have not halted yet.
    """
    # A batch with targets has generation targets, so the forward pass teacher-forced them.
    assert output.generate_logits is not None and output.generate_rows is not None, "fc_loss needs targets"
    if active is not None:
        keep = active.clone()
        batch = {**batch, "pointer": batch["pointer"].masked_fill(~keep, IGNORE)}
        for key in ("counts", "modes", "enum_target", "tags", "generate"):
            shape = (-1,) + (1,) * (batch[key].dim() - 1)
            batch[key] = batch[key].masked_fill(~keep.view(shape), IGNORE)
    tool = _ce(output.pointer, batch["pointer"]) + _ce(output.counts, batch["counts"])
    generate_target = batch["generate"][output.generate_rows]
    arguments = _ce(output.modes, batch["modes"]) + _ce(output.tags, batch["tags"]) + \
        _ce(output.enum, batch["enum_target"]) + _ce(output.generate_logits, generate_target)
    with torch.no_grad():
        wrong_rows = (~_all_right(output.generate_logits, generate_target)).long()
        example = output.generate_rows.nonzero()[:, 0]
        generated_wrong = torch.zeros_like(batch["pointer"]).index_add_(0, example, wrong_rows) > 0
        correct = (
            (output.pointer.argmax(-1) == batch["pointer"]) | (batch["pointer"] == IGNORE)
        ) & _all_right(output.counts, batch["counts"]) & _all_right(output.modes, batch["modes"]) & \
            _all_right(output.tags, batch["tags"]) & _all_right(output.enum, batch["enum_target"]) & ~generated_wrong
    q_weight = active.float() if active is not None else torch.ones_like(output.q_logit)
    q = F.binary_cross_entropy_with_logits(output.q_logit, correct.float(), weight=q_weight)
    total = weights.tool * tool + weights.arguments * arguments + weights.q * q
    return total, {"tool": tool.detach(), "arguments": arguments.detach(), "q": q.detach(), "correct": correct}
