"""Model outputs to function calls with typed JSON arguments."""

from __future__ import annotations

from typing import Any

import torch

from recursa.data.fc.schema import FunctionCall
from recursa.fc.features import ENUM, FALSE, SPAN, TAG_B, TAG_I, TAG_O, TRUE, Features
from recursa.fc.model import FCOutput
from recursa.fc.values import convert

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


def _whole_words(text: str, start: int, end: int) -> str:
    """The span widened to whole words and numbers: digits are single tokens, so a span that
    stops inside "10" or "3.5" would copy a different number."""
    def inside(i: int) -> bool:
        return text[i].isalnum() or (text[i] in ".," and 0 < i < len(text) - 1
                                     and text[i - 1].isdigit() and text[i + 1].isdigit())

    while start > 0 and inside(start - 1) and inside(start):
        start -= 1
    while end < len(text) and inside(end) and inside(end - 1):
        end += 1
    return text[start:end]


def _span_value(features: Features, tags: torch.Tensor, param_type: str, item_type: str) -> Any:
    spans = segments(tags[: features.num_query])
    if not spans:
        return _MISSING
    texts = [_whole_words(features.query, features.query_offsets[a][0], features.query_offsets[b][1])
             for a, b, _ in spans]
    if param_type == "array":
        values = [convert(text, item_type) for text in texts]
        return [v for v in values if v is not None] or _MISSING
    best = max(range(len(spans)), key=lambda s: spans[s][2])
    value = convert(texts[best], param_type)
    return _MISSING if value is None else value


def _argument(output: FCOutput, features: Features, row: int, p: int, k: int) -> Any:
    param = features.params[p].spec
    mode = int(output.modes[row, p, k].argmax())
    if mode == TRUE:
        return True
    if mode == FALSE:
        return False
    if mode == ENUM:
        scores = output.enum[row, p, k, : len(features.enum_values)]
        return features.enum_values[int(scores.argmax())] if len(features.enum_values) else _MISSING
    if mode == SPAN:
        item_type = param.items.type if param.items is not None else "string"
        return _span_value(features, output.tags[row, p, k], param.type, item_type)
    return _MISSING


def _set_path(arguments: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        arguments = arguments.setdefault(key, {})
    arguments[path[-1]] = value


def decode_calls(output: FCOutput, batch_features: list[Features]) -> list[list[FunctionCall]]:
    """The calls each example's outputs describe: first function chosen, then parallel ones."""
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
                arguments: dict[str, Any] = {}
                for p, param in enumerate(features.params):
                    if param.function == f:
                        value = _argument(output, features, row, p, k)
                        if value is not _MISSING:
                            _set_path(arguments, param.path, value)
                calls.append(FunctionCall(name=features.functions[f].name, arguments=arguments))
        results.append(calls)
    return results
