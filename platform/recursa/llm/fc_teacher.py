"""Distillation labels for the tool-calling TRM from the fine-tuned LLM tool caller (the teacher).

Why: the TRM learns only from the generator's templates; a teacher that has seen other wording can
vouch for new examples and for paraphrases of them, widening the language the TRM trains on.
The teacher is trusted only where it agrees with the generator's gold calls (BFCL's AST rules,
`recursa.fc.ast_reward.score_example`): agreements go to `labels.parquet` with the gold calls
(canonical values, not the teacher's spelling of them); disagreements go to `disagreements.jsonl`,
for people to read, never to training.

Paraphrases come from the same base model with the adapter disabled (the instruct model still
writes prose; the tool caller no longer does). A paraphrase that drops or rewrites a gold value the
original query spelled out verbatim is rejected before the teacher sees it: its gold calls would
no longer follow from its words.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from recursa.core.config import ConfigError
from recursa.fc.ast_reward import score_example
from recursa.fc.data.schema import FCExample
from recursa.fc.data.store import write_examples
from recursa.tools.schema import FunctionCall

DEFAULT_SEED = 7_000_003  # away from the TRM's training (seed) and dev (seed + 1_000_003) streams
SOURCES = ("generated", "paraphrase")
TRAINING_SOURCE = {"generated": "teacher", "paraphrase": "paraphrase"}  # `source` in labels.parquet
PARAPHRASE_SYSTEM = "You rewrite requests in other words. You never answer them."
PARAPHRASE_INSTRUCTION = (
    "Rewrite the request below in other words, as the same person asking for the same thing. "
    "Keep every name, number, place, date, time, code and quoted text exactly as written. "
    "Answer with the rewritten request only.\n\nRequest: {query}"
)
PARAPHRASE_TOKENS = 96
# "Rewritten request:", "Here is the rewrite of ...:", or the instruction echoed before the answer.
_LABEL = re.compile(r"^(?:here(?: is|'s)\s+)?(?:the\s+)?(?:rewritten request|rewrite[^:\n]*|paraphrase[^:\n]*|request)\s*:\s*",
                    re.IGNORECASE)


class ToolCaller(Protocol):
    """What the teacher is: `recursa.llm.bfcl.LLMToolCaller`, or a fake in tests."""

    answers: dict  # example id -> ParsedAnswer (its `malformed` flag is read)

    def __call__(self, examples: list[FCExample]) -> list[list[FunctionCall]]: ...


Paraphraser = Callable[[list[str]], list[str]]  # queries -> rewritten queries, in order


@dataclass(frozen=True)
class Label:
    """The teacher's answer to one example (generated or paraphrased) and whether it matches the gold."""

    example: FCExample
    source: str  # "generated" | "paraphrase"
    calls: list[FunctionCall]
    agrees: bool
    malformed: bool
    error: str | None  # the AST rule broken, when it disagrees
    original_query: str | None = None  # a paraphrase's original


def label_examples(caller: ToolCaller, examples: Sequence[FCExample], source: str, batch: int = 32,
                   originals: dict[str, str] | None = None) -> list[Label]:
    """The teacher answers `examples` in chunks of `batch` (shortest first, so padding stays small);
    a malformed answer never agrees, even where no call was expected."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].query) + len(str(examples[i].functions)))
    labels: dict[int, Label] = {}
    with tqdm(total=len(examples), desc=f"teacher: {source}", unit="ex") as bar:
        for start in range(0, len(order), batch):
            chunk = [examples[i] for i in order[start:start + batch]]
            for index, example, calls in zip(order[start:start + batch], chunk, caller(chunk)):
                answer = caller.answers.get(example.id)
                malformed = bool(answer is not None and answer.malformed)
                result = score_example(calls, example)
                labels[index] = Label(example, source, calls, result.valid and not malformed, malformed,
                                      "malformed answer" if malformed else result.error,
                                      (originals or {}).get(example.id))
            bar.update(len(chunk))
            bar.set_postfix(agreed=sum(label.agrees for label in labels.values()))
    return [labels[i] for i in range(len(examples))]


# --- paraphrases ------------------------------------------------------------------------------


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _scalars(item)
    elif not isinstance(value, bool) and value is not None:
        yield value


def _spellings(value: Any) -> list[str]:
    """How a gold value may be written: a string as it is, a number as Python prints it (3.0 also as 3)."""
    if isinstance(value, float) and value.is_integer():
        return [repr(value), str(int(value))]
    return [str(value)]


def _pattern(text: str, number: bool) -> re.Pattern:
    """`text` as a whole word or number: "no" is not in "know", 5 is not in 15 or 5.5."""
    if number:
        return re.compile(r"(?<![\d.])" + re.escape(text) + r"(?!\.?\d)")
    before = r"(?<!\w)" if text[:1].isalnum() else ""
    after = r"(?!\w)" if text[-1:].isalnum() else ""
    return re.compile(before + re.escape(text) + after)


def verbatim_values(example: FCExample) -> list[re.Pattern]:
    """The gold argument values (strings and numbers) that the query writes out verbatim."""
    found: dict[str, re.Pattern] = {}
    for call in example.calls:
        for value in _scalars(call.arguments):
            number = isinstance(value, (int, float))
            for text in _spellings(value):
                pattern = _pattern(text, number)
                if text.strip() and pattern.search(example.query):
                    found.setdefault(text, pattern)
                    break
    return list(found.values())


def keeps_values(example: FCExample, paraphrase: str) -> bool:
    """Whether `paraphrase` still writes every gold value the original query wrote verbatim."""
    return all(pattern.search(paraphrase) for pattern in verbatim_values(example))


def clean_paraphrase(text: str) -> str:
    """The rewritten request out of the model's answer: its first line, without a label or quotes."""
    line = next((line.strip() for line in text.strip().splitlines() if line.strip()), "")
    line = _LABEL.sub("", line)
    if len(line) > 1 and line[0] == line[-1] and line[0] in "\"'":
        line = line[1:-1].strip()
    return line


class BaseModelParaphraser:
    """Rewrites queries with the instruct model under the teacher's adapter (the adapter disabled)."""

    def __init__(self, model, tokenizer, batch_size: int = 8, max_new_tokens: int = PARAPHRASE_TOKENS) -> None:
        from recursa.llm.agent import LLMAgent

        self.model, self.tokenizer = model, tokenizer
        self.agent = LLMAgent(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size)

    def prompt(self, query: str) -> str:
        chat = [{"role": "system", "content": PARAPHRASE_SYSTEM},
                {"role": "user", "content": PARAPHRASE_INSTRUCTION.format(query=query)}]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant:"

    def __call__(self, queries: list[str]) -> list[str]:
        disabled = getattr(self.model, "disable_adapter", None)
        with disabled() if disabled is not None else contextlib.nullcontext():
            return [clean_paraphrase(text) for text in self.agent.complete([self.prompt(q) for q in queries])]


def paraphrase_examples(paraphraser: Paraphraser, examples: Sequence[FCExample], batch: int = 32,
                        ) -> tuple[list[FCExample], dict[str, str], dict[str, int]]:
    """Paraphrased copies of `examples` (id + "-para") that keep every verbatim gold value, their
    original queries by id, and the counts of those rejected (`lost_value`, `unchanged`)."""
    kept: list[FCExample] = []
    originals: dict[str, str] = {}
    rejected = {"lost_value": 0, "unchanged": 0}
    for start in tqdm(range(0, len(examples), batch), desc="paraphrase", unit="batch"):
        chunk = list(examples[start:start + batch])
        for example, text in zip(chunk, paraphraser([e.query for e in chunk])):
            if not text or " ".join(text.split()).lower() == " ".join(example.query.split()).lower():
                rejected["unchanged"] += 1
            elif not keeps_values(example, text):
                rejected["lost_value"] += 1
            else:
                copy = example.model_copy(update={"id": f"{example.id}-para", "query": text})
                kept.append(copy)
                originals[copy.id] = example.query
    return kept, originals, rejected


# --- the run ----------------------------------------------------------------------------------


def _calls_json(calls: Sequence[FunctionCall]) -> list[dict]:
    return [call.model_dump(mode="json") for call in calls]


def _counts(labels: Sequence[Label]) -> dict[str, Any]:
    agreed = sum(label.agrees for label in labels)
    return {"labelled": len(labels), "agreed": agreed, "disagreed": len(labels) - agreed,
            "malformed": sum(label.malformed for label in labels),
            "agreement_rate": agreed / len(labels) if labels else None}


def distill(caller: ToolCaller, paraphraser: Paraphraser | None, examples: Sequence[FCExample],
            paraphrases: int, out_dir: str | Path, batch: int = 32, meta: dict | None = None) -> dict:
    """Label `examples`, paraphrase the first `paraphrases` of them and label those; write
    labels.parquet (agreements only), disagreements.jsonl and report.json to `out_dir`; return the report.
    `examples_per_second` is labelled examples over the whole wall time, paraphrasing included."""
    if paraphrases > len(examples):
        raise ConfigError(f"paraphrases: at most the number of examples ({len(examples)}), got {paraphrases}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    labels = label_examples(caller, examples, "generated", batch)
    rejected = {"lost_value": 0, "unchanged": 0}
    if paraphrases and paraphraser is not None:
        rewritten, originals, rejected = paraphrase_examples(paraphraser, examples[:paraphrases], batch)
        labels += label_examples(caller, rewritten, "paraphrase", batch, originals)
    seconds = time.perf_counter() - started
    kept = [label.example.model_copy(update={"source": TRAINING_SOURCE[label.source]})
            for label in labels if label.agrees]
    write_examples(kept, out_dir / "labels.parquet")
    with (out_dir / "disagreements.jsonl").open("w", encoding="utf-8") as lines:
        for label in labels:
            if not label.agrees:
                record = {"id": label.example.id, "source": label.source, "category": label.example.category,
                          "query": label.example.query, "original_query": label.original_query,
                          "gold_calls": _calls_json(label.example.calls), "teacher_calls": _calls_json(label.calls),
                          "malformed": label.malformed, "error": label.error}
                lines.write(json.dumps(record, ensure_ascii=False) + "\n")
    per_source = {source: _counts([label for label in labels if label.source == source]) for source in SOURCES}
    per_source["paraphrase"] |= {"requested": paraphrases if paraphraser is not None else 0,
                                 "rejected_lost_value": rejected["lost_value"],
                                 "rejected_unchanged": rejected["unchanged"]}
    report = {**(meta or {}), "sources": per_source, **_counts(labels), "kept": len(kept),
              "seconds": seconds, "examples_per_second": len(labels) / seconds if seconds else None}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def run_fc_distill(adapter: str | Path, out_dir: str | Path, *, examples: int = 400, paraphrases: int = 200,
                   seed: int = DEFAULT_SEED, batch_size: int = 8, model: str | None = None) -> dict:
    """`recursa llm distill-fc`: load the teacher (its adapter's base, or `model`), generate `examples`
    new examples with `seed`, and `distill` them."""
    from recursa.fc.data.generator import generate_examples
    from recursa.llm.bfcl import LLMToolCaller
    from recursa.llm.config import LLMModelSettings
    from recursa.llm.models import adapter_base, load_causal_lm

    base = model or adapter_base(adapter)  # a ConfigError naming `adapter` when it holds no adapter_config.json
    if paraphrases > examples:
        raise ConfigError(f"paraphrases: at most --examples ({examples}), got {paraphrases}")
    lm, tokenizer = load_causal_lm(LLMModelSettings(path=base), adapter=adapter, trainable=False)
    caller = LLMToolCaller(lm, tokenizer, batch_size=batch_size)
    paraphraser = BaseModelParaphraser(lm, tokenizer, batch_size=batch_size)
    meta = {"model": base, "adapter": str(adapter), "seed": seed, "examples": examples}
    return distill(caller, paraphraser, generate_examples(examples, seed), paraphrases, out_dir,
                   batch=4 * batch_size, meta=meta)
