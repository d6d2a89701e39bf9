"""A renderer for the subset of Go's text/template that recursa's Ollama TEMPLATE uses, so tests can
render it without Ollama: text, ``{{ if }} / {{ else if }} / {{ else }} / {{ end }}``, ``{{ range X }}``
and ``{{ range $i, $c := X }}``, fields (``.A.B``, ``$c.A``), ``eq``, ``or``, and Ollama's ``json``
(compact JSON). Whitespace trimming (``{{-``, ``-}}``) follows Go.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)


def render(template: str, data: dict[str, Any]) -> str:
    """`template` executed on `data` (dicts stand for Go structs and maps)."""
    tree, _ = _parse(_tokens(template), 0)
    return _run(tree, data, {"$": data}, data)


def _tokens(template: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position, trim_next = 0, False
    for match in _ACTION.finditer(template):
        text = template[position:match.start()]
        text = text.lstrip() if trim_next else text
        tokens.append(("text", text.rstrip() if match.group(1) else text))
        tokens.append(("action", match.group(2)))
        position, trim_next = match.end(), bool(match.group(3))
    tail = template[position:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    return tokens


def _parse(tokens, i):
    """Nodes up to a closing ``end`` / ``else``: (nodes, index of the closer)."""
    nodes: list = []
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            nodes.append(("text", value))
        elif value == "end" or value.startswith("else"):
            return nodes, i
        elif value.startswith(("if ", "range ")):
            keyword, _, pipeline = value.partition(" ")
            branches, i = _branches(tokens, i + 1, pipeline)
            nodes.append((keyword, branches))
        else:
            nodes.append(("print", value))
        i += 1
    return nodes, i


def _branches(tokens, i, pipeline):
    """[(condition, body), ...] of an if / range, the last condition None for ``else``."""
    branches = []
    while True:
        body, i = _parse(tokens, i)
        branches.append((pipeline, body))
        closer = tokens[i][1]
        if closer == "end":
            return branches, i
        pipeline = closer.removeprefix("else").strip().removeprefix("if").strip() or None
        i += 1


def _run(nodes, dot, variables, root) -> str:
    out = []
    for kind, value in nodes:
        if kind == "text":
            out.append(value)
        elif kind == "print":
            out.append(_text(_eval(value, dot, variables)))
        elif kind == "if":
            for condition, body in value:
                if condition is None or _true(_eval(condition, dot, variables)):
                    out.append(_run(body, dot, variables, root))
                    break
        else:  # range
            (pipeline, body), *rest = value
            names, _, expression = pipeline.rpartition(":=")
            items = _eval(expression.strip(), dot, variables) or []
            for index, item in enumerate(items):
                scope = dict(variables)
                if names:
                    index_name, item_name = (n.strip() for n in names.split(","))
                    scope |= {index_name: index, item_name: item}
                out.append(_run(body, item, scope, root))
            if not items and rest:
                out.append(_run(rest[0][1], dot, variables, root))
    return "".join(out)


def _eval(expression: str, dot, variables):
    words = shlex.split(expression, posix=False)
    if len(words) == 1:
        return _value(words[0], dot, variables)
    function, *args = words
    values = [_value(a, dot, variables) for a in args]
    if function == "eq":
        return values[0] == values[1]
    if function == "or":
        return next((v for v in values if _true(v)), values[-1])
    if function == "json":
        return json.dumps(values[0], separators=(",", ":"), ensure_ascii=False)
    raise ValueError(f"unsupported template function {function!r}")


def _value(word: str, dot, variables):
    if word.startswith('"'):
        return json.loads(word)
    head, *fields = word.split(".")
    value = dot if head == "" else variables[head]
    for field in filter(None, fields):
        value = value.get(field) if isinstance(value, dict) else None
    return value


def _true(value) -> bool:
    return bool(value)


def _text(value) -> str:
    return "" if value is None else str(value)
