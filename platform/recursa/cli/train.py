"""`recursa train`: the gift policy (PPO on RLlib), the tool-calling TRM (Ray Train, then PPO by execution) and LoRA LLMs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from recursa.cli.app import console, train_app
from recursa.cli.common import sized_for_cluster
from recursa.core.artifact import open_artifact
from recursa.core.config import ConfigError, load_config, parse_config
from recursa.core.sources import resolve_model
from recursa.fc.config import TrainFCConfig, TrainFCRLConfig
from recursa.gift.config import TrainGiftConfig
from recursa.llm.config import TrainLLMConfig


@train_app.command("gift")
def train_gift(
    config: Path | None = typer.Option(None, "--config", help="YAML config (jobs/configs/gift_ppo.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its latest checkpoint."),
) -> None:
    """Train the TRM gift policy with PPO on RLlib env runners (BC warm start optional)."""
    settings = load_config(config, TrainGiftConfig)
    from recursa.core.runtime import init_ray
    from recursa.gift.train import train_gift as run

    init_ray()
    result = run(sized_for_cluster(settings), resume=resume)
    console.print(f"run: {result.run_dir}\ncheckpoint: {result.checkpoint}\nenv steps: {result.env_steps}")


@train_app.command("fc")
def train_fc(
    config: Path | None = typer.Option(None, "--config", help="YAML config (jobs/configs/fc_small.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint."),
) -> None:
    """Train the tool-calling TRM with deep supervision on Ray Train."""
    settings = load_config(config, TrainFCConfig)
    if settings.tokenizer.kind == "pretrained":
        resolve_model(settings.tokenizer.model, field="tokenizer.model")  # a missing model exits 2 before Ray starts
    from recursa.core.runtime import init_ray
    from recursa.fc.train import train_fc as run

    init_ray(log_to_driver=True)  # the workers' progress bars and epoch metrics
    console.print(f"model: {run(sized_for_cluster(settings), resume=resume)}")


@train_app.command("llm")
def train_llm(
    config: Path | None = typer.Option(None, "--config", help="YAML config (jobs/configs/llm_*.yaml)."),
    method: str | None = typer.Option(None, "--method", help="sft, kto, grpo or offline_grpo (overrides the config's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint."),
) -> None:
    """Train a LoRA adapter by reward-weighted SFT, KTO (TRL), online GRPO or offline GRPO on stored groups,
    on Ray Train."""
    settings = load_config(config, TrainLLMConfig)
    if method is not None:
        settings = parse_config({**settings.model_dump(exclude_unset=True), "method": method}, TrainLLMConfig)
    from recursa.core.runtime import init_ray
    from recursa.llm.train import train_llm as run

    init_ray(log_to_driver=True)
    adapter = run(sized_for_cluster(settings), resume=resume)
    evaluation = json.loads((adapter.parent / "report.json").read_text())["eval"]
    console.print(f"adapter: {adapter}")
    if evaluation is not None:
        console.print({k: v for k, v in evaluation.items() if k != "sample_errors"})


@train_app.command("fc-rl")
def train_fc_rl(
    config: Path | None = typer.Option(None, "--config", help="YAML config (jobs/configs/fc_rl.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its latest checkpoint."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint",
                                              help="The supervised model directory to start from (overrides the config's)."),
    out: Path | None = typer.Option(None, "--out", help="Where to write the fine-tuned model directory (overrides the config's)."),
) -> None:
    """Fine-tune the tool-calling TRM with PPO, rewarded by executing its calls."""
    settings = load_config(config, TrainFCRLConfig)
    try:
        start = open_artifact(checkpoint or Path(settings.checkpoint), expect="fc-model").path
    except ConfigError as error:
        raise ConfigError(f"checkpoint: {error}") from None
    settings = settings.model_copy(update={"checkpoint": str(start), **({"out": str(out)} if out else {})})
    from recursa.core.runtime import init_ray
    from recursa.fc.ppo import finetune_fc

    init_ray()
    console.print(json.dumps(finetune_fc(settings, resume=resume), indent=2))
