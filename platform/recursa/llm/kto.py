"""KTO of a LoRA adapter with TRL's KTOTrainer, run as a Ray Train loop.

The model handed to TRL is already a PEFT model, so TRL's reference policy is the same model with
the adapter switched off. At every epoch end a callback reports the epoch's metrics to Ray Train
with a checkpoint holding the adapter and the Hugging Face trainer state (to resume from).

TRL owns this loop, so it owns what `core.training` does for our own recipes: the device and DDP
(Accelerate, under Ray Train's process group; `workers.use_gpu` picks the GPU), AdamW with
warmup and cosine (`lr_scheduler_type`), and mixed precision. The run directory, the checkpoints
and the progress line per epoch are ours, as in every recipe.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import ray.train
from datasets import Dataset
from transformers import TrainerCallback
from trl import KTOConfig, KTOTrainer

from recursa.core.training import print_progress, progress_line
from recursa.llm.checkpoints import ADAPTER_DIR, log_metrics
from recursa.llm.config import TrainLLMConfig
from recursa.llm.datasets import read_records
from recursa.llm.models import load_causal_lm

TRAINER_STATE_DIR = "hf_trainer"


class _ReportEachEpoch(TrainerCallback):
    """After the Trainer saves its epoch checkpoint: report metrics and that checkpoint to Ray Train."""

    def __init__(self, model, tokenizer, run_dir: str) -> None:
        self.model, self.tokenizer, self.run_dir = model, tokenizer, run_dir

    def on_save(self, args, state, control, **kwargs):
        logs = [entry for entry in state.log_history if "loss" in entry]
        metrics = {"epoch": round(state.epoch or 0), "step": state.global_step,
                   **{key: value for key, value in (logs[-1] if logs else {}).items() if key != "epoch"}}
        if ray.train.get_context().get_world_rank() != 0:
            ray.train.report(metrics)
            return
        log_metrics(self.run_dir, metrics)
        print_progress(0, progress_line("kto epoch", metrics["epoch"], round(args.num_train_epochs), metrics,
                                        ("loss", "kl", "rewards/chosen", "rewards/rejected")))
        with tempfile.TemporaryDirectory() as tmp:
            self.model.save_pretrained(Path(tmp) / ADAPTER_DIR, safe_serialization=True)
            self.tokenizer.save_pretrained(Path(tmp) / ADAPTER_DIR)
            shutil.copytree(Path(args.output_dir) / f"checkpoint-{state.global_step}", Path(tmp) / TRAINER_STATE_DIR)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def train_loop(loop_config: dict) -> None:
    """KTO on runs/<name>/records.parquet (prompt, completion, label)."""
    config = TrainLLMConfig(**loop_config["config"])
    settings = config.training
    model, tokenizer = load_causal_lm(config.model, adapter=config.init_adapter)
    records = read_records(Path(loop_config["run_dir"]) / "records.parquet")
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"], "label": bool(r["label"])}
                                 for r in records])
    steps = settings.epochs * -(-len(records) // settings.batch_size)
    with tempfile.TemporaryDirectory() as output_dir:
        args = KTOConfig(
            output_dir=output_dir, num_train_epochs=settings.epochs, per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.lr, weight_decay=settings.weight_decay, max_grad_norm=settings.grad_clip,
            warmup_steps=int(settings.warmup_ratio * steps), lr_scheduler_type="cosine", max_length=settings.max_length,
            beta=config.kto.beta, desirable_weight=config.kto.desirable_weight,
            undesirable_weight=config.kto.undesirable_weight, save_strategy="epoch", logging_strategy="epoch",
            report_to=[], use_cpu=not config.workers.use_gpu, seed=config.seed, disable_tqdm=True)
        trainer = KTOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        trainer.add_callback(_ReportEachEpoch(model, tokenizer, loop_config["run_dir"]))
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            trainer.train()
            return
        with checkpoint.as_directory() as directory:
            trainer.train(resume_from_checkpoint=str(Path(directory) / TRAINER_STATE_DIR))
