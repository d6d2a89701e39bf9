"""An LLM tool caller scored on BFCL: the TRM's rules, report and predictions file, for a causal LM.

Each BFCL example is rendered as the model is served (`recursa.llm.tool_calls.render_prompt`:
the request as the user turn, the functions in the system message or the template's tools
section), answered greedily in batches of similar prompt length, and parsed strictly; a malformed
answer is no call, and counted per category (`malformed`). An answer that has not opened a tool
call within its first `TEXT_ANSWER_TOKENS` tokens is a text answer (no call): its generation
stops there, since only calls are scored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import StoppingCriteria

from recursa.fc.bfcl import EVAL_CATEGORIES, score_bfcl, write_bfcl
from recursa.fc.data.schema import FCExample
from recursa.llm.agent import LLMAgent
from recursa.llm.config import LLMModelSettings
from recursa.llm.models import count_parameters, load_causal_lm
from recursa.llm.tool_calls import OPEN, ParsedAnswer, parse_tool_calls, render_prompt
from recursa.tools.schema import FunctionCall

ANSWER_TOKENS = 160
TEXT_ANSWER_TOKENS = 24


class TextAnswerStop(StoppingCriteria):
    """Ends the rows that wrote `after` tokens without opening a tool call; the others run on."""

    def __init__(self, tokenizer, prompt_length: int, after: int = TEXT_ANSWER_TOKENS) -> None:
        self.tokenizer, self.prompt_length, self.after = tokenizer, prompt_length, after

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        written = input_ids[:, self.prompt_length:self.prompt_length + self.after]
        if written.shape[1] < self.after:
            return torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
        texts = self.tokenizer.batch_decode(written, skip_special_tokens=True)
        return torch.tensor([OPEN not in text for text in texts], device=input_ids.device)


class LLMToolCaller:
    """Answers function-calling examples with a causal LM; keeps the parsed answers it gave."""

    def __init__(self, model, tokenizer, batch_size: int = 8, max_new_tokens: int = ANSWER_TOKENS) -> None:
        self.tokenizer = tokenizer
        self.agent = LLMAgent(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size,
                              stopping=lambda prompt_length: TextAnswerStop(tokenizer, prompt_length))
        self.answers: dict[str, ParsedAnswer] = {}

    def prompt(self, example: FCExample) -> str:
        return render_prompt(self.tokenizer, [{"role": "user", "content": example.query}], example.functions)

    def __call__(self, examples: list[FCExample]) -> list[list[FunctionCall]]:
        started = time.perf_counter()
        prompts = [self.prompt(example) for example in examples]
        # Batches of similar length waste less on padding; answers go back in the examples' order.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        outputs = self.agent.complete([prompts[i] for i in order])
        answers: list[ParsedAnswer] = [ParsedAnswer([], "")] * len(examples)
        for i, output in zip(order, outputs):
            answers[i] = parse_tool_calls(output)
        self.answers.update((example.id, answer) for example, answer in zip(examples, answers))
        category = examples[0].category if examples else ""
        print(f"bfcl {category}: {len(examples)} examples in {time.perf_counter() - started:.0f} s, "
              f"{sum(a.malformed for a in answers)} malformed", flush=True)
        return [answer.calls for answer in answers]


def evaluate_llm_bfcl(settings: LLMModelSettings, adapter: str | Path | None,
                      categories: Sequence[str] = EVAL_CATEGORIES, limit: int | None = None,
                      out: Path | None = None, batch_size: int = 8) -> dict:
    """The BFCL report of `settings.path` (with `adapter`), with malformed answers per category and
    examples per second; written with predictions.jsonl beside it when `out` is given."""
    model, tokenizer = load_causal_lm(settings, adapter=adapter, trainable=False)
    caller = LLMToolCaller(model, tokenizer, batch_size=batch_size)
    started = time.perf_counter()
    report, predictions = score_bfcl(caller, categories, limit)
    seconds = time.perf_counter() - started
    for category, row in report["categories"].items():
        row["malformed"] = sum(caller.answers[p["id"]].malformed for p in predictions if p["category"] == category)
    report |= {"model": settings.path, "adapter": str(adapter) if adapter else None,
               "params": count_parameters(model)[1], "examples_per_second": len(predictions) / seconds}
    if out is not None:
        write_bfcl(report, predictions, out)
        report["predictions"] = str(out.parent / "predictions.jsonl")
    return report

