"""Scoring a tool caller on the Berkeley Function Calling Leaderboard with its AST rules.

Non-live categories are the held-out test; live ones are for development. Summary figures:
non-live AST is the unweighted mean of simple_python, multiple, parallel and parallel_multiple
(as BFCL summarises them); live AST is the example-weighted mean of live_simple and
live_multiple; irrelevance is the non-live irrelevance category.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from recursa.fc.artifact import predict_calls
from recursa.fc.ast_reward import score_example
from recursa.fc.data.formats import read_bfcl
from recursa.fc.data.schema import FCExample
from recursa.fc.features import Featurizer
from recursa.fc.model import FunctionCallingTRM
from recursa.tools.schema import FunctionCall

EVAL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
                   "live_simple", "live_multiple", "live_irrelevance")
NON_LIVE_AST = ("simple_python", "multiple", "parallel", "parallel_multiple")
LIVE_AST = ("live_simple", "live_multiple")
LIVE_CATEGORIES = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance")

# Predicted calls for each example, in order.
Predictor = Callable[[list[FCExample]], list[list[FunctionCall]]]


def sample_examples(examples: list[FCExample], limit: int | None) -> list[FCExample]:
    """At most `limit` examples spread evenly over the category (its files are ordered by topic)."""
    if limit is None or limit >= len(examples):
        return examples
    return [examples[i * len(examples) // limit] for i in range(limit)]


def score_bfcl(predict: Predictor, categories: Sequence[str] = EVAL_CATEGORIES,
               limit: int | None = None) -> tuple[dict, list[dict]]:
    """Per-category accuracy and the summary figures, and the predictions as records
    (`{"id", "category", "calls"}`) that anyone can score again."""
    results: dict[str, dict] = {}
    predictions: list[dict] = []
    for category in categories:
        examples = sample_examples(read_bfcl(category), limit)
        calls = predict(examples)
        valid = sum(score_example(predicted, example).valid for predicted, example in zip(calls, examples))
        results[category] = {"accuracy": valid / max(len(examples), 1), "n": len(examples)}
        predictions += [{"id": example.id, "category": category, "calls": [call.model_dump() for call in predicted]}
                        for example, predicted in zip(examples, calls)]

    def mean(names: tuple[str, ...], weighted: bool) -> float | None:
        present = [results[n] for n in names if n in results]
        if not present:
            return None
        if weighted:
            return sum(r["accuracy"] * r["n"] for r in present) / max(sum(r["n"] for r in present), 1)
        return sum(r["accuracy"] for r in present) / len(present)

    report = {
        "categories": results,
        "non_live_ast": mean(NON_LIVE_AST, weighted=False),
        "live_ast": mean(LIVE_AST, weighted=True),
        "irrelevance": results.get("irrelevance", {}).get("accuracy"),
    }
    return report, predictions


def evaluate_bfcl(model: FunctionCallingTRM, featurizer: Featurizer,
                  categories: Sequence[str] = EVAL_CATEGORIES, limit: int | None = None,
                  out: Path | None = None) -> dict:
    """The tool-calling TRM's BFCL report (`params` counts a frozen pretrained embedding too);
    written with predictions.jsonl beside it when `out` is given."""
    report, predictions = score_bfcl(lambda examples: predict_calls(model, featurizer, examples), categories, limit)
    report["params"] = model.parameter_count()
    if out is not None:
        write_bfcl(report, predictions, out)
    return report


def write_bfcl(report: dict, predictions: list[dict], out: Path) -> None:
    """The report as JSON at `out`, and predictions.jsonl beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = out.parent / "predictions.jsonl"
    lines.write_text("".join(json.dumps(p) + "\n" for p in predictions))
    out.write_text(json.dumps({**report, "predictions": str(lines)}, indent=2))


def print_bfcl(report: dict, console: Console) -> None:
    """The per-category table and the summary lines."""
    table = Table(title=f"BFCL (AST), {report['params']:,} parameters")
    table.add_column("category")
    table.add_column("accuracy", justify="right")
    table.add_column("n", justify="right")
    for category, row in report["categories"].items():
        table.add_row(category, f"{100 * row['accuracy']:.1f}%", str(row["n"]))
    for key in ("non_live_ast", "live_ast", "irrelevance"):
        if report[key] is not None:
            table.add_row(f"[bold]{key}[/bold]", f"[bold]{100 * report[key]:.1f}%[/bold]", "")
    console.print(table)
