"""`recursa llm`: the LLM demo, the LLM tool caller on BFCL, and the tiny offline model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from recursa.cli.app import console, llm_app
from recursa.core.config import ConfigError, load_config
from recursa.llm.config import TrainLLMConfig


@llm_app.command("demo")
def llm_demo(
    out: Path = typer.Option(Path("runs/llm-demo"), "--out", help="Demo directory (replaced if it exists)."),
    sft_config: Path = typer.Option(Path("jobs/configs/llm_sft.yaml"), "--sft-config", help="SFT stage config."),
    grpo_config: Path = typer.Option(Path("jobs/configs/llm_grpo.yaml"), "--grpo-config", help="GRPO stage config."),
    model: str | None = typer.Option(None, "--model", help="The LM (any model.path, e.g. smollm2-135m-instruct); "
                                     "default: a tiny one made here."),
) -> None:
    """An LM learns the math environment: evaluate, SFT on expert episodes, GRPO; report.json."""
    import shutil

    from recursa.core.runtime import init_ray
    from recursa.llm.demo import run_llm_demo

    for path in (sft_config, grpo_config):
        load_config(path, TrainLLMConfig)
    shutil.rmtree(out, ignore_errors=True)
    init_ray(log_to_driver=True)  # the training workers' progress lines
    report = run_llm_demo(out, sft_config, grpo_config, model)
    table = Table("stage", "success rate", "mean reward", "format errors",
                  title=f"math environment, {report['eval_episodes']} held-out problems, {report['model']}")
    for stage in ("before", "after_sft", "after_grpo"):
        row = report[stage]
        table.add_row(stage, f"{row['success_rate']:.3f}", f"{row['mean_reward']:.2f}", f"{row['format_error_rate']:.3f}")
    console.print(table)
    console.print(f"{out / 'report.json'} ({report['wall_seconds']:.0f} s)")


@llm_app.command("bfcl")
def llm_bfcl(
    out: Path = typer.Option(Path("runs/llm-bfcl"), "--out", help="Run directory; finished stages are kept."),
    model: str | None = typer.Option(None, "--model", help="The base model (default: the configs' model.path)."),
    sft_config: Path = typer.Option(Path("jobs/configs/llm_fc_sft.yaml"), "--sft-config", help="SFT stage config."),
    grpo_config: Path = typer.Option(Path("jobs/configs/llm_fc_grpo.yaml"), "--grpo-config",
                                     help="GRPO stage config."),
    categories: str | None = typer.Option(None, "--categories", help="Comma-separated BFCL categories."),
    limit: int | None = typer.Option(24, "--limit", min=1, help="BFCL examples per category, spread over it."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per generation batch."),
) -> None:
    """An LLM becomes a tool caller: BFCL zero-shot, after SFT and after GRPO; report.json."""
    from recursa.core.runtime import init_ray
    from recursa.fc.bfcl import EVAL_CATEGORIES
    from recursa.llm.tool_caller_run import run_llm_bfcl

    for path in (sft_config, grpo_config):
        load_config(path, TrainLLMConfig)
    chosen = tuple(c.strip() for c in categories.split(",")) if categories else EVAL_CATEGORIES
    unknown = sorted(set(chosen) - set(EVAL_CATEGORIES))
    if unknown:
        raise ConfigError(f"categories: unknown {', '.join(unknown)}; choose from {', '.join(EVAL_CATEGORIES)}")
    init_ray(log_to_driver=True)  # the training workers' progress lines
    report = run_llm_bfcl(out, sft_config, grpo_config, model=model, categories=chosen, limit=limit,
                          batch_size=batch_size)
    table = Table("stage", "non-live AST", "irrelevance", "live AST", title=f"BFCL, {report['model']}")
    for stage in ("zero_shot", "after_sft", "after_grpo"):
        row = report[stage]
        table.add_row(stage, *(_percent(row[key]) for key in ("non_live_ast", "irrelevance", "live_ast")))
    console.print(table)
    held_out = report["after_grpo"]
    console.print(f"held-out generated examples, mean reward: {held_out['heldout_reward_before']:.3f} after SFT, "
                  f"{held_out['heldout_reward_after']:.3f} after GRPO")
    console.print(f"{out / 'report.json'} ({report['wall_seconds']:.0f} s)")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@llm_app.command("init-tiny")
def llm_init_tiny(
    out: Path = typer.Option(..., "--out", help="Directory for the model and tokenizer (Hugging Face layout)."),
    corpus: Path | None = typer.Option(None, "--corpus",
                                          help="Text to train the tokenizer on (default: generated agent text)."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed and corpus give the same model."),
    vocab_size: int = typer.Option(2048, "--vocab-size", min=259,
                                   help="Largest vocabulary (at least the 256 bytes and 3 special tokens)."),
    hidden_size: int = typer.Option(128, "--hidden-size", min=8,
                                    help="Hidden size (a multiple of 8: 4 heads of even size)."),
    layers: int = typer.Option(2, "--layers", min=1, help="Transformer layers."),
) -> None:
    """Create a tiny randomly initialised Llama and its tokenizer, for tests and offline demos."""
    if corpus is not None and not corpus.is_file():
        raise ConfigError(f"corpus: file not found: {corpus}")
    if hidden_size % 8:
        raise ConfigError(f"hidden-size: must be a multiple of 8 (4 heads of even size), got {hidden_size}")
    from recursa.llm.tiny import create_tiny_llm, default_corpus

    lines = corpus.read_text().splitlines() if corpus else default_corpus(seed=seed)
    create_tiny_llm(out, lines, vocab_size=vocab_size, hidden_size=hidden_size, num_layers=layers, seed=seed)
    console.print(f"wrote {out}")


@llm_app.command("distill-fc")
def llm_distill_fc(
    adapter: Path = typer.Option(Path("runs/llm-bfcl/sft/adapter"), "--adapter",
                                 help="The teacher: a fine-tuned tool caller's LoRA adapter directory."),
    examples: int = typer.Option(400, "--examples", min=1, help="Generated examples to label."),
    paraphrases: int = typer.Option(200, "--paraphrases", min=0,
                                    help="Of those, how many the base model rewrites (then labelled too)."),
    seed: int = typer.Option(7_000_003, "--seed", help="Generator seed (default: away from the TRM's data)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts per generation batch."),
    model: str | None = typer.Option(None, "--model", help="The base model (default: the one the adapter names)."),
    out: Path = typer.Option(Path("runs/fc-distill"), "--out", help="Output directory."),
) -> None:
    """Label new generated examples and their paraphrases with the LLM tool caller, for the TRM."""
    from recursa.llm.fc_teacher import run_fc_distill

    report = run_fc_distill(adapter, out, examples=examples, paraphrases=paraphrases, seed=seed,
                            batch_size=batch_size, model=model)
    table = Table("source", "labelled", "agreed", "disagreed", "malformed", "agreement",
                  title=f"teacher {report['adapter']} on generated examples")
    for source, row in report["sources"].items():
        table.add_row(source, *(str(row[key]) for key in ("labelled", "agreed", "disagreed", "malformed")),
                      _percent(row["agreement_rate"]))
    console.print(table)
    para = report["sources"]["paraphrase"]
    console.print(f"paraphrases: {para['requested']} written, {para['rejected_lost_value']} lost a value, "
                  f"{para['rejected_unchanged']} unchanged; kept for training: {report['kept']}")
    console.print(f"{out / 'report.json'} ({report['seconds']:.0f} s, {report['examples_per_second']:.2f} examples/s)")
