"""Training records for LLMs, built from agent trajectories and traces, in the column layouts that
Hugging Face `datasets` and TRL expect:

- reward-weighted SFT: `prompt, completion, weight`
- KTO: `prompt, completion, label`
- GRPO: `prompt, completions, rewards` (rewards normalised within the group; offline GRPO trains on
  such groups of completions already generated)
- DPO: `prompt, chosen, rejected`

Each step of an action episode is one record: the transcript so far is the prompt and the action
the agent wrote is the completion (" name(params)", following the prompt's closing "Action:").
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from recursa.traces.models import ExecutionTrace


class Trajectory(Protocol):
    """What the builders read of an episode (`recursa.llm.actions.Trajectory` has it)."""

    @property
    def steps(self) -> Sequence[Any]: ...  # each with prompt, output, action, params, reward, valid

    @property
    def total_reward(self) -> float: ...


def step_completion(step: Any) -> str:
    """The completion an agent step is trained on: the environment's canonical text of a valid action
    (' name(params)' for action environments), or the raw output if malformed."""
    return step.completion


def sft_records(trajectories: Iterable[Trajectory], min_reward: float | None = None) -> list[dict]:
    """Reward-weighted SFT: every valid step, weighted by its episode's return scaled to (0, 1].

    Episodes below `min_reward` (and with a non-positive return) are left out.
    """
    kept = [t for t in trajectories if t.total_reward > 0 and (min_reward is None or t.total_reward >= min_reward)]
    if not kept:
        return []
    top = max(t.total_reward for t in kept)
    return [{"prompt": step.prompt, "completion": step_completion(step), "weight": t.total_reward / top}
            for t in kept for step in t.steps if step.valid]


def kto_records(trajectories: Iterable[Trajectory]) -> list[dict]:
    """KTO: each step labelled desirable when the environment rewarded it, undesirable otherwise."""
    return [{"prompt": step.prompt, "completion": step_completion(step), "label": step.reward > 0}
            for t in trajectories for step in t.steps]


def trace_records(traces: Iterable[ExecutionTrace], labels: Sequence[bool] | None = None) -> list[dict]:
    """KTO records from stored traces: the prompt (or query), the final response, and a label.

    The label is the trace's hand label, else the given one (e.g. `RewardEngine.binary_label`).
    """
    records = []
    for i, trace in enumerate(traces):
        label = trace.label if trace.label is not None else (labels[i] if labels is not None else None)
        if label is None:
            continue
        records.append({"prompt": trace.prompt or trace.query, "completion": trace.final_response,
                        "label": bool(label)})
    return records


def dpo_records(records: Iterable[dict]) -> list[dict]:
    """DPO pairs from KTO records: per prompt, each desirable completion against each undesirable one."""
    by_prompt: dict[str, dict[bool, list[str]]] = defaultdict(lambda: {True: [], False: []})
    for record in records:
        by_prompt[record["prompt"]][bool(record["label"])].append(record["completion"])
    return [{"prompt": prompt, "chosen": good, "rejected": bad}
            for prompt, sides in by_prompt.items() for good in sides[True] for bad in sides[False] if good != bad]


def group_samples(records: Iterable[dict]) -> tuple[list[str], list[str], list[float]]:
    """Offline GRPO samples from `prompt, completions, rewards` records: every completion with its
    reward normalised within its group. Completions whose advantage is 0 (a group of equal rewards)
    teach nothing and are left out."""
    from recursa.traces.engine import group_normalise

    prompts, completions, advantages = [], [], []
    for record in records:
        if len(record["completions"]) != len(record["rewards"]):
            raise ValueError(f"a group has {len(record['completions'])} completions but {len(record['rewards'])} rewards")
        for completion, advantage in zip(record["completions"], group_normalise(record["rewards"])):
            if advantage:
                prompts.append(record["prompt"])
                completions.append(completion)
                advantages.append(advantage)
    return prompts, completions, advantages


def write_records(records: Sequence[dict], path: str | Path) -> Path:
    """Write records as Parquet (.parquet) or JSON lines (.jsonl), loadable by `datasets.load_dataset`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(list(records)), path)
    elif path.suffix == ".jsonl":
        with path.open("w") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
    else:
        raise ValueError(f"records path {path}: use .parquet or .jsonl")
    return path


def read_records(path: str | Path) -> list[dict]:
    """Records written by `write_records` (or by hand, in the same columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"records file not found: {path}")
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    raise ValueError(f"records path {path}: use .parquet or .jsonl")
