"""Scoring a tool caller on the Berkeley Function Calling Leaderboard with its AST rules.

Non-live categories are the held-out test; live ones are for development. Summary figures:
non-live AST is the unweighted mean of simple_python, multiple, parallel and parallel_multiple
(as BFCL summarises them); live AST is the example-weighted mean of live_simple and
live_multiple; irrelevance is the non-live irrelevance category.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from recursa.core.trm import count_parameters
from recursa.fc.artifact import predict_calls
from recursa.fc.ast_reward import score_example
from recursa.fc.data.formats import read_bfcl
from recursa.fc.features import Featurizer
from recursa.fc.model import FunctionCallingTRM

EVAL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
                   "live_simple", "live_multiple", "live_irrelevance")
NON_LIVE_AST = ("simple_python", "multiple", "parallel", "parallel_multiple")
LIVE_AST = ("live_simple", "live_multiple")
LIVE_CATEGORIES = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance")


def evaluate_bfcl(model: FunctionCallingTRM, featurizer: Featurizer,
                  categories: tuple[str, ...] = EVAL_CATEGORIES, limit: int | None = None) -> dict:
    """Per-category accuracy and the summary figures, in the shape `recursa eval bfcl` writes."""
    results: dict[str, dict] = {}
    for category in categories:
        examples = read_bfcl(category)[:limit]
        predictions = predict_calls(model, featurizer, examples)
        valid = sum(score_example(calls, example).valid for calls, example in zip(predictions, examples))
        results[category] = {"accuracy": valid / max(len(examples), 1), "n": len(examples)}

    def mean(names: tuple[str, ...], weighted: bool) -> float | None:
        present = [results[n] for n in names if n in results]
        if not present:
            return None
        if weighted:
            return sum(r["accuracy"] * r["n"] for r in present) / max(sum(r["n"] for r in present), 1)
        return sum(r["accuracy"] for r in present) / len(present)

    return {
        "categories": results,
        "non_live_ast": mean(NON_LIVE_AST, weighted=False),
        "live_ast": mean(LIVE_AST, weighted=True),
        "irrelevance": results.get("irrelevance", {}).get("accuracy"),
        "params": count_parameters(model),
    }


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
