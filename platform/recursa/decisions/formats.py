"""Prompt formats per agent type: how a decision's state becomes a prompt, how a decision becomes the
completion a model is trained to write, how a model's output is read back, and how a decision is
judged against the right one.

`FORMATS` holds the built-in formats; a config adds or replaces one per agent type with
`formats: {AGENT_TYPE: "package.module:attribute"}`, naming a `DecisionFormat` instance or a
subclass made without arguments.
"""

from __future__ import annotations

import json
from typing import Any

from recursa.core.imports import import_object
from recursa.traces.components import ComponentScores


class DecisionFormat:
    """A decision agent's prompt and answer: the state as JSON under an instruction, the decision as
    one line of JSON. Subclasses override what their agent type needs."""

    def __init__(self, instruction: str = "Make the decision.") -> None:
        self.instruction = instruction

    def prompt(self, state: Any) -> str:
        """The text the model continues with its decision."""
        return f"{self.instruction}\nState: {json.dumps(state, sort_keys=True)}\nDecision:"

    def completion(self, decision: Any) -> str:
        """What the model is trained to write after the prompt."""
        return " " + json.dumps(decision, sort_keys=True)

    def parse(self, output: str) -> Any:
        """The decision a model's output means; ValueError when it is malformed."""
        line = next((line for line in output.strip().splitlines() if line.strip()), "")
        try:
            return json.loads(line)
        except ValueError:
            raise ValueError(f"not a JSON decision: {line[:80]!r}") from None

    def judge(self, decision: Any, truth: Any, state: Any) -> ComponentScores:
        """The outcome components a decision would earn when `truth` is the right one (None: malformed)."""
        right = 1.0 if decision is not None and decision == truth else -1.0
        return ComponentScores(immediate=right, delayed=right, strategic=right)


class FilerFormat(DecisionFormat):
    """FILER: pick the folder a file belongs in, out of the folders that exist.

    State: {"file": {"name": ...}, "folders": [...]}; decision: {"folder": ...}. A decision for a
    folder that does not exist yet makes a new one, which the strategic component counts against.
    """

    def __init__(self) -> None:
        super().__init__('Choose the folder for the file. Answer with one line of JSON: {"folder": "<folder>"}.')

    def prompt(self, state: Any) -> str:
        folders = ", ".join(state.get("folders", []))
        return f"{self.instruction}\nFile: {state['file']['name']}\nFolders: {folders}\nDecision:"

    def parse(self, output: str) -> Any:
        decision = super().parse(output)
        if not (isinstance(decision, dict) and isinstance(decision.get("folder"), str)):
            raise ValueError(f"not a FILER decision {{'folder': ...}}: {decision!r}"[:120])
        return decision

    def judge(self, decision: Any, truth: Any, state: Any) -> ComponentScores:
        if decision is None:
            return ComponentScores(immediate=-1.0, delayed=-1.0, strategic=-1.0)
        folder, right = decision["folder"], truth["folder"]
        # Accepted as is (1), kept in the right top-level folder but edited (0), or rejected (-1).
        immediate = 1.0 if folder == right else 0.0 if folder.split("/")[0] == right.split("/")[0] else -1.0
        return ComponentScores(immediate=immediate, delayed=1.0 if folder == right else -1.0,
                               strategic=1.0 if folder in state.get("folders", []) else -1.0)


FORMATS: dict[str, DecisionFormat] = {
    "FILER": FilerFormat(),
    "PRIORITIZER": DecisionFormat("Order the tasks, most urgent first. Answer with one line of JSON."),
    "LIBRARIAN": DecisionFormat("Choose the tags and the collection for the item. Answer with one line of JSON."),
    "STORER": DecisionFormat("Choose where and how to store the item. Answer with one line of JSON."),
    "RETRIEVER": DecisionFormat("Choose the items that answer the search. Answer with one line of JSON."),
}


def resolve_format(agent_type: str, overrides: dict[str, str] | None = None) -> DecisionFormat:
    """The format of an agent type: the config's override, else the built-in; ValueError names it."""
    key = agent_type.upper()
    path = (overrides or {}).get(key)
    if path is None:
        if key not in FORMATS:
            raise ValueError(f"unknown agent type {agent_type!r}: no prompt format; known: {', '.join(FORMATS)} "
                             "(add one under `formats` in the config)")
        return FORMATS[key]
    found = import_object(path, f"format of {key}")
    if isinstance(found, type) and issubclass(found, DecisionFormat):
        found = found()
    if not isinstance(found, DecisionFormat):
        raise ValueError(f"format of {key} {path!r} is not a DecisionFormat")
    return found
