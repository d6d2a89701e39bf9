"""Function-calling examples as model inputs: one sequence of slots, plus training targets.

The sequence is [CLS] + one slot per query token + one slot per function + one slot per
parameter (nested object fields flattened to "parent.child") + one slot per enum value. A
non-query slot is embedded from its name pieces and description pieces, so a long schema costs
one slot, not a hundred tokens: the TRM attends over about a hundred slots, not a thousand.

Targets, per example: which function is called first (or none), how many calls each function
gets, and for every parameter of every call its mode (absent, copied span, enum value, true,
false, generated text) with the span as B/I/O tags over the query tokens, the enum value's slot,
or the pieces of a string value the query does not contain verbatim (ending in <eos>).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from recursa.fc.data.schema import FCExample
from recursa.fc.overlap import (
    FUNCTION_BASE,
    PARAM_BASE,
    STOPWORDS,
    content_words,
    query_match_ids,
    schema_match_id,
    word_spans,
)
from recursa.fc.tokenizer import Tokenizer
from recursa.fc.values import Span, locate_value
from recursa.tools.schema import PARAM_TYPES, FunctionCall, FunctionSpec, ParamSpec

MODES = ("absent", "span", "enum", "true", "false", "generate")
ABSENT, SPAN, ENUM, TRUE, FALSE, GENERATE = range(len(MODES))
ROLES = ("cls", "query", "function", "param", "enum")
CLS, QUERY, FUNCTION, PARAM, ENUM_VALUE = range(len(ROLES))
TYPE_IDS = {name: index for index, name in enumerate(PARAM_TYPES)}
IGNORE = -100  # target value the losses skip
TAG_O, TAG_B, TAG_I = range(3)
SLOT_FIELDS = ("name_pieces", "desc_pieces", "role", "position", "function_id", "param_id", "type_id", "required",
               "match")  # per-slot arrays, in the order the model embeds them
GENERATED_TYPES = frozenset({"string", "any"})  # parameter types whose values may be generated


@dataclass(frozen=True)
class FCLimits:
    """Truncation limits of the slot sequence."""

    max_query_tokens: int = 96
    max_functions: int = 16
    max_params: int = 64
    max_enum_values: int = 64
    max_name_pieces: int = 12
    max_desc_pieces: int = 24
    max_calls: int = 4  # calls of one function in one answer
    max_generate_pieces: int = 16  # pieces of a generated value, <eos> included


@dataclass(frozen=True)
class SlotParam:
    """A parameter slot: its path from the function's arguments, spec and function index."""

    path: tuple[str, ...]
    spec: ParamSpec
    function: int


@dataclass
class Features:
    """One encoded example (numpy), with what decoding needs to turn outputs into calls."""

    name_pieces: np.ndarray  # [S, N] piece ids of each slot's name (0 = pad)
    desc_pieces: np.ndarray  # [S, D] piece ids of each slot's description
    role: np.ndarray  # [S]
    position: np.ndarray  # [S] query position, or index within the function / parameter
    function_id: np.ndarray  # [S] 1 + owning function, 0 for none
    param_id: np.ndarray  # [S] 1 + owning parameter, 0 for none
    type_id: np.ndarray  # [S]
    required: np.ndarray  # [S]
    match: np.ndarray  # [S] word-overlap id (see overlap.py)
    num_query: int
    function_slots: np.ndarray  # [F]
    param_slots: np.ndarray  # [P]
    param_function: np.ndarray  # [P] index into functions
    enum_slots: np.ndarray  # [E]
    enum_param: np.ndarray  # [E] index into params
    mode_allowed: np.ndarray  # [P, modes] bool
    query: str
    query_offsets: list[Span]
    functions: list[FunctionSpec]
    params: list[SlotParam]
    enum_values: list[Any]
    targets: dict[str, np.ndarray] | None = None
    aligned: bool = True  # every gold argument found a target
    extras: dict = field(default_factory=dict)


def _words(name: str) -> str:
    """Identifier to words: get_weatherForecast.v2 -> get weather Forecast v2."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return re.sub(r"[_.\-/]+", " ", spaced).strip()


def flatten_params(function: FunctionSpec, index: int) -> list[SlotParam]:
    """A function's parameters with object fields expanded one level per nesting."""
    out: list[SlotParam] = []

    def visit(spec: ParamSpec, path: tuple[str, ...], required: bool) -> None:
        if spec.type == "object" and spec.properties:
            for child in spec.properties:
                visit(child, (*path, child.name), required and child.required)
        else:
            out.append(SlotParam(path, spec.model_copy(update={"required": required}), index))

    for spec in function.parameters:
        visit(spec, (spec.name,), spec.required)
    return out


def _get_path(arguments: dict, path: tuple[str, ...]) -> tuple[bool, Any]:
    value: Any = arguments
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value


class Featurizer:
    """Encodes examples for the tool-calling TRM with one tokenizer and one set of limits."""

    def __init__(self, tokenizer: Tokenizer, limits: FCLimits = FCLimits()):
        self.tokenizer = tokenizer
        self.limits = limits
        self._cache: dict[tuple[str, int], list[int]] = {}
        self.cls_id = tokenizer.special_ids.get("<cls>", tokenizer.unk_id)
        self.eos_id = tokenizer.special_ids["<eos>"]

    def _pieces(self, text: str, limit: int) -> list[int]:
        key = (text, limit)
        if key not in self._cache:
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[key] = self.tokenizer.encode(text)[:limit] if text else []
        return self._cache[key]

    def encode(self, example: FCExample, with_targets: bool = True) -> Features:
        """Slots and (optionally) targets for one example."""
        limits = self.limits
        ids, offsets = self.tokenizer.encode_with_offsets(example.query)
        ids, offsets = ids[: limits.max_query_tokens], offsets[: limits.max_query_tokens]
        functions = self._kept_functions(example, with_targets)
        params: list[SlotParam] = [param for f, function in enumerate(functions)
                                   for param in flatten_params(function, f)][: limits.max_params]
        spans = word_spans(example.query)
        query_words = {word for _, word in spans} - STOPWORDS
        matches = query_match_ids(spans, offsets,
                                  set().union(*(content_words(p.path[-1]) for p in params)),
                                  set().union(*(content_words(f"{f.name} {f.description}") for f in functions)))
        rows: list[tuple[list[int], list[int], int, int, int, int, int, int, int]] = [
            ([self.cls_id], [], CLS, 0, 0, 0, 0, 0, 0)
        ]
        rows += [([piece], [], QUERY, position, 0, 0, 0, 0, match)
                 for position, (piece, match) in enumerate(zip(ids, matches))]
        for f, function in enumerate(functions):
            rows.append((self._pieces(_words(function.name), limits.max_name_pieces),
                         self._pieces(function.description, limits.max_desc_pieces), FUNCTION, f, f + 1, 0, 0, 0,
                         schema_match_id(FUNCTION_BASE, function.name, function.description, query_words)))
        function_slots = [1 + len(ids) + f for f in range(len(functions))]
        param_slots: list[int] = []
        enum_slots: list[int] = []
        enum_param: list[int] = []
        enum_values: list[Any] = []
        for p, param in enumerate(params):
            param_slots.append(len(rows))
            rows.append((self._pieces(_words(".".join(param.path)), limits.max_name_pieces),
                         self._pieces(param.spec.description, limits.max_desc_pieces), PARAM, p,
                         param.function + 1, p + 1, TYPE_IDS[param.spec.type], int(param.spec.required),
                         schema_match_id(PARAM_BASE, param.path[-1], param.spec.description, query_words)))
        for p, param in enumerate(params):
            for value in (param.spec.enum or []):
                if len(enum_values) < limits.max_enum_values:
                    enum_slots.append(len(rows))
                    enum_param.append(p)
                    enum_values.append(value)
                    rows.append((self._pieces(str(value), limits.max_name_pieces), [], ENUM_VALUE,
                                 len(enum_values) - 1, param.function + 1, p + 1, TYPE_IDS[param.spec.type], 0, 0))
        features = Features(
            name_pieces=_pad_rows([r[0] for r in rows], limits.max_name_pieces),
            desc_pieces=_pad_rows([r[1] for r in rows], limits.max_desc_pieces),
            role=np.array([r[2] for r in rows], dtype=np.int64),
            position=np.array([r[3] for r in rows], dtype=np.int64),
            function_id=np.array([r[4] for r in rows], dtype=np.int64),
            param_id=np.array([r[5] for r in rows], dtype=np.int64),
            type_id=np.array([r[6] for r in rows], dtype=np.int64),
            required=np.array([r[7] for r in rows], dtype=np.int64),
            match=np.array([r[8] for r in rows], dtype=np.int64),
            num_query=len(ids),
            function_slots=np.array(function_slots, dtype=np.int64),
            param_slots=np.array(param_slots, dtype=np.int64),
            param_function=np.array([p.function for p in params], dtype=np.int64),
            enum_slots=np.array(enum_slots, dtype=np.int64),
            enum_param=np.array(enum_param, dtype=np.int64),
            mode_allowed=_mode_allowed(params, enum_param),
            query=example.query,
            query_offsets=list(offsets),
            functions=functions,
            params=params,
            enum_values=enum_values,
        )
        if with_targets:
            self._add_targets(features, example.calls)
        return features

    def _kept_functions(self, example: FCExample, with_targets: bool) -> list[FunctionSpec]:
        """All functions up to the limit; when training, never drop one the answer calls."""
        limit = self.limits.max_functions
        if len(example.functions) <= limit or not with_targets:
            return example.functions[:limit]
        called = {call.name for call in example.calls}
        keep = [f for f in example.functions if f.name in called]
        keep += [f for f in example.functions if f.name not in called][: max(0, limit - len(keep))]
        return [f for f in example.functions if f in keep][:limit]

    def _add_targets(self, features: Features, calls: list[FunctionCall]) -> None:
        limits = self.limits
        names = [f.name for f in features.functions]
        num_params, lq = len(features.params), features.num_query
        counts = np.zeros(len(names), dtype=np.int64)
        modes = np.full((num_params, limits.max_calls), IGNORE, dtype=np.int64)
        tags = np.full((num_params, limits.max_calls, lq), IGNORE, dtype=np.int64)
        enum_target = np.full((num_params, limits.max_calls), IGNORE, dtype=np.int64)
        generate = np.full((num_params, limits.max_calls, limits.max_generate_pieces), IGNORE, dtype=np.int64)
        pointer, aligned = 0, True
        for call in calls:
            if call.name not in names:
                aligned = False
                continue
            f = names.index(call.name)
            k = int(counts[f])
            if k >= limits.max_calls:
                aligned = False
                continue
            counts[f] += 1
            pointer = pointer or f + 1
            taken: set[Span] = set()
            for p, param in enumerate(features.params):
                if param.function != f:
                    continue
                mode, span_tags, enum_index = self._argument_target(features, p, call.arguments, taken)
                if mode == IGNORE:
                    aligned = False
                    continue
                modes[p, k] = mode
                tags[p, k] = span_tags if span_tags is not None else TAG_O
                enum_target[p, k] = enum_index
                if mode == GENERATE:
                    pieces = self._generated_pieces(_get_path(call.arguments, features.params[p].path)[1])
                    generate[p, k, : len(pieces)] = pieces
        features.targets = {"pointer": np.array(pointer), "counts": counts, "modes": modes,
                            "tags": tags, "enum_target": enum_target, "generate": generate}
        features.aligned = aligned

    def _argument_target(self, features: Features, p: int, arguments: dict, taken: set[Span]):
        param = features.params[p]
        present, value = _get_path(arguments, param.path)
        if not present:
            return (IGNORE if param.spec.required else ABSENT), None, IGNORE
        if isinstance(value, bool):
            return (TRUE if value else FALSE), None, IGNORE
        if param.spec.enum:
            for e, (owner, option) in enumerate(zip(features.enum_param, features.enum_values)):
                if owner == p and option == value:
                    return ENUM, None, e
        elements = value if isinstance(value, list) else [value]
        if not elements or any(isinstance(v, (dict, list)) for v in elements):
            return IGNORE, None, IGNORE
        span_tags = np.full(features.num_query, TAG_O, dtype=np.int64)
        for element in elements:
            span = locate_value(features.query, element, taken)
            if span is None or not (tokens := _tokens_in(features.query_offsets, span)):
                return (GENERATE if self._generable(param, value) else IGNORE), None, IGNORE
            taken.add(span)
            span_tags[tokens[0]] = TAG_B
            span_tags[tokens[1:]] = TAG_I
        return SPAN, span_tags, IGNORE


    def _generable(self, param: SlotParam, value: Any) -> bool:
        """Whether a value the query does not contain can be a generation target."""
        return (isinstance(value, str) and param.spec.type in GENERATED_TYPES and not param.spec.enum
                and len(self._generated_pieces(value)) <= self.limits.max_generate_pieces)

    def _generated_pieces(self, value: str) -> list[int]:
        """The value's pieces and <eos>, through the piece cache (a value too long to generate
        comes out one piece longer than the limit)."""
        return [*self._pieces(value, self.limits.max_generate_pieces), self.eos_id]


def _tokens_in(offsets: list[Span], span: Span) -> list[int]:
    return [i for i, (start, end) in enumerate(offsets) if start < span[1] and end > span[0]]


def _pad_rows(rows: list[list[int]], width: int) -> np.ndarray:
    out = np.zeros((len(rows), max(1, width)), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _mode_allowed(params: list[SlotParam], enum_param: list[int]) -> np.ndarray:
    allowed = np.zeros((len(params), len(MODES)), dtype=bool)
    with_enum = set(enum_param)
    for p, param in enumerate(params):
        allowed[p, ABSENT] = not param.spec.required  # a call must carry its required arguments
        if param.spec.type == "boolean":
            allowed[p, [TRUE, FALSE]] = True
            continue
        allowed[p, SPAN] = True
        allowed[p, ENUM] = p in with_enum
        allowed[p, GENERATE] = param.spec.type in GENERATED_TYPES and not param.spec.enum
        allowed[p, [TRUE, FALSE]] = param.spec.type == "any"
    return allowed


def collate(batch: list[Features]) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples into batch tensors (targets included when present)."""
    size = len(batch)
    s = max(len(f.role) for f in batch)
    lq = max(max(f.num_query for f in batch), 1)
    nf = max(max(len(f.function_slots) for f in batch), 1)
    np_ = max(max(len(f.param_slots) for f in batch), 1)
    ne = max(max(len(f.enum_slots) for f in batch), 1)
    k = batch[0].targets["modes"].shape[1] if batch[0].targets is not None else 0

    def stack(name: str, length: int, fill: int = 0, dtype=np.int64) -> torch.Tensor:
        first = getattr(batch[0], name)
        out = np.full((size, length, *first.shape[1:]), fill, dtype=dtype)
        for i, f in enumerate(batch):
            value = getattr(f, name)
            out[i, : len(value)] = value
        return torch.from_numpy(out)

    out = {name: stack(name, s) for name in SLOT_FIELDS}
    out["slot_mask"] = torch.from_numpy(np.array([[i < len(f.role) for i in range(s)] for f in batch]))
    out["query_mask"] = torch.from_numpy(np.array([[i < f.num_query for i in range(lq)] for f in batch]))
    out["function_slots"] = stack("function_slots", nf)
    out["function_mask"] = torch.from_numpy(np.array([[i < len(f.function_slots) for i in range(nf)] for f in batch]))
    out["param_slots"] = stack("param_slots", np_)
    out["param_function"] = stack("param_function", np_)
    out["param_mask"] = torch.from_numpy(np.array([[i < len(f.param_slots) for i in range(np_)] for f in batch]))
    out["enum_slots"] = stack("enum_slots", ne)
    out["enum_param"] = stack("enum_param", ne, fill=-1)
    out["mode_allowed"] = stack("mode_allowed", np_, fill=0, dtype=bool)
    if k:
        targets = [_targets(f) for f in batch]
        out["pointer"] = torch.tensor([int(t["pointer"]) for t in targets])
        out["counts"] = _pad_targets([t["counts"] for t in targets], (nf,))
        out["modes"] = _pad_targets([t["modes"] for t in targets], (np_, k))
        out["enum_target"] = _pad_targets([t["enum_target"] for t in targets], (np_, k))
        out["tags"] = _pad_targets([t["tags"] for t in targets], (np_, k, lq))
        out["generate"] = _pad_targets([t["generate"] for t in targets], (np_, k, targets[0]["generate"].shape[-1]))
    return out


def _targets(features: Features) -> dict[str, np.ndarray]:
    """The targets of an example in a batch whose first example has them: a batch is encoded one way."""
    assert features.targets is not None, "a batch mixes examples encoded with and without targets"
    return features.targets


def _pad_targets(values: list[np.ndarray], shape: tuple[int, ...]) -> torch.Tensor:
    out = np.full((len(values), *shape), IGNORE, dtype=np.int64)
    for i, value in enumerate(values):
        corner: tuple[int | slice, ...] = (i, *(slice(0, d) for d in value.shape))
        out[corner] = value
    return torch.from_numpy(out)
