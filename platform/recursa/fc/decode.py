"""Model outputs to function calls with typed JSON arguments."""

from __future__ import annotations

from typing import Any

import torch

from recursa.data.fc.schema import FunctionCall, ParamSpec
from recursa.fc.features import ENUM, FALSE, GENERATE, SPAN, TAG_B, TAG_I, TAG_O, TRUE, Features
from recursa.fc.model import FCOutput
from recursa.fc.values import convert
from recursa.models.tokenizer import Tokenizer

_MISSING = object()


def segments(tags: torch.Tensor) -> list[tuple[int, int, float]]:
    """B/I/O tag logits [L, 3] to (first, last, score) token segments; a stray I opens one."""
    probabilities = tags.softmax(-1)
    labels = probabilities.argmax(-1).tolist()
    found: list[tuple[int, int, float]] = []
    start = None
    for i, label in enumerate(labels + [TAG_O]):
        if start is not None and label != TAG_I:  # anything but I closes the open segment
            inside = 1.0 - probabilities[start:i, TAG_O]
            found.append((start, i - 1, float(inside.mean())))
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


def fallback_segments(tags: torch.Tensor, used: set[int]) -> list[tuple[int, int, float]]:
    """Single segments over the free tokens, likeliest first (least likely O), each extended over
    the following free tokens tagged I: the candidates when no tag crossed O."""
    probabilities = tags.softmax(-1)
    found = []
    for start in probabilities[:, TAG_O].argsort().tolist():
        if start in used:
            continue
        end = start
        while end + 1 < len(tags) and end + 1 not in used and int(probabilities[end + 1].argmax()) == TAG_I:
            end += 1
        found.append((start, end, float(1.0 - probabilities[start, TAG_O])))
    return found


def copy_type(spec: ParamSpec) -> str:
    """The type copied text converts to: an array's element type (string when unspecified),
    otherwise the parameter's own type."""
    if spec.type != "array":
        return spec.type
    return spec.items.type if spec.items is not None else "string"


def _span_value(features: Features, tags: torch.Tensor, spec: ParamSpec, used: set[int]) -> Any:
    """The copied value of one parameter, typed. Tokens copied for another argument of the call
    are not copied again; a required argument with no tagged span takes its likeliest free
    segment that parses as its type."""
    tags = tags[: features.num_query]
    target = copy_type(spec)
    spans = [s for s in segments(tags) if not used.intersection(range(s[0], s[1] + 1))]
    if spec.type != "array":
        spans = sorted(spans, key=lambda s: -s[2])
    if not spans and spec.required:
        spans = fallback_segments(tags, used)
    values = []
    for a, b, _ in spans:
        start, end = whole_words(features.query, features.query_offsets[a][0], features.query_offsets[b][1])
        value = convert(features.query[start:end], target)
        if value is not None:
            values.append(value)
            used.update(i for i, (s, e) in enumerate(features.query_offsets) if s < end and e > start)
            if spec.type != "array":
                break
    if not values:
        return _MISSING
    return values if spec.type == "array" else values[0]


def _argument(output: FCOutput, features: Features, row: int, p: int, k: int, used: set[int],
              tokenizer: Tokenizer) -> Any:
    spec = features.params[p].spec
    mode = int(output.modes[row, p, k].argmax())
    if mode == GENERATE:
        text = tokenizer.decode(piece for piece in output.generated[row, p, k].tolist() if piece)
        return text if text else _MISSING
    if mode == TRUE:
        return True
    if mode == FALSE:
        return False
    if mode == ENUM:
        scores = output.enum[row, p, k, : len(features.enum_values)]
        return features.enum_values[int(scores.argmax())] if len(features.enum_values) else _MISSING
    if mode == SPAN:
        return _span_value(features, output.tags[row, p, k], spec, used)
    return _MISSING


def _call_arguments(output: FCOutput, features: Features, row: int, f: int, k: int,
                    tokenizer: Tokenizer) -> dict[str, Any]:
    """Arguments of call k of function f; confident spans claim their tokens first."""
    params = [p for p, param in enumerate(features.params) if param.function == f]
    lq = features.num_query
    confidence = {p: float(1.0 - output.tags[row, p, k, :lq].softmax(-1)[:, TAG_O].min()) if lq else 0.0
                  for p in params}
    arguments: dict[str, Any] = {}
    used: set[int] = set()
    for p in sorted(params, key=lambda p: -confidence[p]):
        value = _argument(output, features, row, p, k, used, tokenizer)
        if value is not _MISSING:
            set_path(arguments, features.params[p].path, value)
    return arguments


def set_path(arguments: dict, path: tuple[str, ...], value: Any) -> None:
    """Put `value` at a (possibly nested) argument path, creating the objects on the way."""
    for key in path[:-1]:
        arguments = arguments.setdefault(key, {})
    arguments[path[-1]] = value


def decode_calls(output: FCOutput, batch_features: list[Features], tokenizer: Tokenizer) -> list[list[FunctionCall]]:
    """The calls each example's outputs describe: first function chosen, then parallel ones.
    `tokenizer` turns generated pieces back into text."""
    results = []
    for row, features in enumerate(batch_features):
        choice = int(output.pointer[row].argmax())
        if choice == 0 or not features.functions:
            results.append([])
            continue
        counts = output.counts[row, : len(features.functions)].argmax(-1).tolist()
        counts[choice - 1] = max(1, counts[choice - 1])
        order = [choice - 1] + [f for f in range(len(features.functions)) if f != choice - 1]
        calls = []
        for f in order:
            for k in range(counts[f]):
                arguments = _call_arguments(output, features, row, f, k, tokenizer)
                calls.append(FunctionCall(name=features.functions[f].name, arguments=arguments))
        results.append(calls)
    return results
