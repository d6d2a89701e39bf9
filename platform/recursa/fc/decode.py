"""Model outputs to function calls with typed JSON arguments.

Decoding has two steps. First one index is chosen per head: the likeliest for inference
(`greedy_choices`), a sample for an RL policy (see `recursa.fc.env`). Then
`calls_from_choices`, the one place where choices become calls, reads them:
  - the pointer (no call, or the function called first) and the calls of every function,
  - per parameter and call index: its mode, its enum value, the B/I/O tag of every query token,
    and a shortlist of fallback tokens (likeliest to be copied first) for a required argument
    whose tags give no value,
  - for greedy decoding only, the text generated for parameters in "generate" mode.
Choices are indices only: no decision reads a probability, so a sampled action decodes exactly
as the greedy one does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from recursa.fc.features import ENUM, FALSE, GENERATE, MODES, SPAN, TAG_B, TAG_I, TAG_O, TRUE, Features
from recursa.fc.model import FCOutput
from recursa.fc.tokenizer import Tokenizer
from recursa.fc.values import convert
from recursa.tools.schema import FunctionCall, ParamSpec

FALLBACK_CANDIDATES = 3
# Modes whose value the choices alone determine; generated text needs the decoder's pieces.
CHOICE_MODES = frozenset({"absent", "span", "enum", "true", "false"})
_MISSING = object()


def choosable_modes() -> np.ndarray:
    """Per mode of `MODES`, whether `calls_from_choices` can act on it."""
    return np.array([name in CHOICE_MODES for name in MODES])


@dataclass
class CallChoices:
    """One example's chosen indices (numpy arrays, shaped like `FCOutput` without the batch)."""

    pointer: int | np.ndarray  # 0 for no call, else 1 + the function called first
    counts: np.ndarray  # [F] calls of each function
    modes: np.ndarray  # [P, K] mode of each (parameter, call index)
    enum: np.ndarray  # [P, K] index into the example's enum values
    tags: np.ndarray  # [P, K, Lq] B/I/O tag of each query token
    fallback: np.ndarray  # [P, K, FALLBACK_CANDIDATES] query tokens, best first
    generated: dict[tuple[int, int], str] = field(default_factory=dict)  # (param, call) -> generated text


def copy_scores(tags: torch.Tensor) -> torch.Tensor:
    """Log-odds that each query token is copied (tagged B or I, not O): [..., Lq, 3] -> [..., Lq]."""
    return tags[..., [TAG_B, TAG_I]].logsumexp(-1) - tags[..., TAG_O]


def shortlist(scores: torch.Tensor, size: int = FALLBACK_CANDIDATES) -> torch.Tensor:
    """Indices of the `size` highest scores over the last dim, best first (ties: lower index first)."""
    return scores.sort(dim=-1, descending=True, stable=True).indices[..., :size]


def greedy_choices(output: FCOutput) -> list[CallChoices]:
    """The likeliest choice of every head, per example of the batch."""
    heads = (output.pointer.argmax(-1), output.counts.argmax(-1), output.modes.argmax(-1),
             output.enum.argmax(-1), output.tags.argmax(-1), shortlist(copy_scores(output.tags)))
    return [CallChoices(*(head[row].numpy() for head in heads)) for row in range(len(output.pointer))]


def segments(labels: list[int]) -> list[tuple[int, int]]:
    """(first, last) token of each tagged segment: B opens one, I continues it, a stray I opens one."""
    found: list[tuple[int, int]] = []
    start = None
    for i, label in enumerate([*labels, TAG_O]):
        if start is not None and label != TAG_I:  # anything but I closes the open segment
            found.append((start, i - 1))
            start = None
        if label == TAG_B or (label == TAG_I and start is None):
            start = i
    return found


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Character span [start, end) widened to whole words and numbers: digits are single tokens,
    so a span that stops inside "10" or "3.5" would copy a different number."""
    def inside(i: int) -> bool:
        return text[i].isalnum() or (text[i] in ".," and 0 < i < len(text) - 1
                                     and text[i - 1].isdigit() and text[i + 1].isdigit())

    while start > 0 and inside(start - 1) and inside(start):
        start -= 1
    while end < len(text) and inside(end) and inside(end - 1):
        end += 1
    return start, end


def copy_type(spec: ParamSpec) -> str:
    """The type copied text converts to: an array's element type (string when unspecified),
    otherwise the parameter's own type."""
    if spec.type != "array":
        return spec.type
    return spec.items.type if spec.items is not None else "string"


def set_path(arguments: dict, path: tuple[str, ...], value: Any) -> None:
    """Put `value` at a (possibly nested) argument path, creating the objects on the way."""
    for key in path[:-1]:
        arguments = arguments.setdefault(key, {})
    arguments[path[-1]] = value


def _fallback_segment(start: int, labels: list[int], used: set[int]) -> tuple[int, int]:
    """A fallback token extended over the free tokens tagged I that follow it."""
    end = start
    while end + 1 < len(labels) and end + 1 not in used and labels[end + 1] == TAG_I:
        end += 1
    return start, end


def _span_value(features: Features, tags: np.ndarray, fallback: np.ndarray, spec: ParamSpec, used: set[int]) -> Any:
    """The copied value of one parameter, typed, from segments whose tokens are still free: a
    scalar takes the longest that parses as its type, an array every one that does; a required
    argument with no free segment takes its first free fallback token that parses."""
    labels = tags[: features.num_query].tolist()
    spans = [s for s in segments(labels) if used.isdisjoint(range(s[0], s[1] + 1))]
    if spec.type != "array":
        spans.sort(key=lambda s: s[0] - s[1])  # longest first; stable, so earlier first among equals
    if not spans and spec.required:
        spans = [_fallback_segment(t, labels, used) for t in fallback.tolist()
                 if t < features.num_query and t not in used]
    values = []
    for a, b in spans:
        start, end = whole_words(features.query, features.query_offsets[a][0], features.query_offsets[b][1])
        value = convert(features.query[start:end], copy_type(spec))
        if value is not None:
            values.append(value)
            used.update(i for i, (s, e) in enumerate(features.query_offsets) if s < end and e > start)
            if spec.type != "array":
                break
    if not values:
        return _MISSING
    return values if spec.type == "array" else values[0]


def _argument(choices: CallChoices, features: Features, p: int, k: int, used: set[int]) -> Any:
    mode = int(choices.modes[p, k])
    if mode == TRUE:
        return True
    if mode == FALSE:
        return False
    if mode == ENUM:
        e = int(choices.enum[p, k])
        owned = e < len(features.enum_values) and features.enum_param[e] == p
        return features.enum_values[e] if owned else _MISSING
    if mode == SPAN:
        return _span_value(features, choices.tags[p, k], choices.fallback[p, k], features.params[p].spec, used)
    if mode == GENERATE:
        return choices.generated.get((p, k)) or _MISSING
    return _MISSING


def _call_arguments(choices: CallChoices, features: Features, f: int, k: int) -> dict[str, Any]:
    """Arguments of call k of function f. Parameters that tag more query tokens claim them first;
    no token is copied into two arguments."""
    params = [p for p, param in enumerate(features.params) if param.function == f]
    tagged = {p: int(np.count_nonzero(choices.tags[p, k, : features.num_query] != TAG_O)) for p in params}
    arguments: dict[str, Any] = {}
    used: set[int] = set()
    for p in sorted(params, key=lambda p: -tagged[p]):
        value = _argument(choices, features, p, k, used)
        if value is not _MISSING:
            set_path(arguments, features.params[p].path, value)
    return arguments


def calls_from_choices(choices: CallChoices, features: Features) -> list[FunctionCall]:
    """The calls that chosen indices describe: those of the pointed function first, then the other
    functions' parallel calls."""
    pointer = int(choices.pointer)
    if not 0 < pointer <= len(features.functions):
        return []
    counts = [int(c) for c in choices.counts[: len(features.functions)]]
    counts[pointer - 1] = max(1, counts[pointer - 1])
    order = [pointer - 1] + [f for f in range(len(features.functions)) if f != pointer - 1]
    return [FunctionCall(name=features.functions[f].name, arguments=_call_arguments(choices, features, f, k))
            for f in order for k in range(counts[f])]


def generated_texts(pieces: torch.Tensor, tokenizer: Tokenizer) -> dict[tuple[int, int], str]:
    """Text of every (param, call) with generated pieces [P, K, G] (0 after <eos>)."""
    texts = {}
    for p, k in (pieces[..., 0] != 0).nonzero().tolist():
        row = pieces[p, k]
        texts[(p, k)] = tokenizer.decode(row[row != 0].tolist())
    return texts


def decode_calls(output: FCOutput, batch_features: list[Features], tokenizer: Tokenizer) -> list[list[FunctionCall]]:
    """The greedy calls of each example: its likeliest choices (and generated text, which
    `tokenizer` turns back from pieces), turned into calls."""
    choices = greedy_choices(output)
    if output.generated is not None:
        for row, choice in enumerate(choices):
            choice.generated = generated_texts(output.generated[row], tokenizer)
    return [calls_from_choices(c, f) for c, f in zip(choices, batch_features)]
