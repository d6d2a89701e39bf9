"""Online GRPO of a LoRA adapter: Ray actors play groups of episodes, a Ray Train worker learns.

Each iteration the learner sends its adapter weights to the rollout actors; each actor plays
`group_size` sampled episodes per problem; an episode's reward is its environment return (and,
when configured, the reward engine's score of its trace); advantages are normalised within each
problem's group, and every action of an episode carries the episode's advantage. The objective is
PPO's clipped ratio per token with a KL penalty to the reference policy, which is the base model
with the adapter switched off, so no second copy of the model is held.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import ray
import ray.train
import ray.train.torch
import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict

from recursa.core.training import Placement, adamw_with_warmup, print_progress, progress_line
from recursa.llm.actions import Trajectory, resolve_action_env, run_episodes
from recursa.llm.agent import LLMAgent
from recursa.llm.batches import encode_pairs, minibatches, optimizer_step, select, token_logprobs
from recursa.llm.checkpoints import report, restore_checkpoint
from recursa.llm.config import GRPOSettings, LLMModelSettings, TrainLLMConfig
from recursa.llm.evaluate import summarize
from recursa.llm.models import load_causal_lm
from recursa.traces.engine import RewardEngine, group_normalise

KL_LOG_RATIO_BOUND = 10.0


class RolloutWorker:
    """A frozen copy of the policy that plays episodes with the adapter weights it was last sent."""

    def __init__(self, model: dict, adapter: str | None, env: str, max_new_tokens: int) -> None:
        torch.set_num_threads(1)
        self.model, self.tokenizer = load_causal_lm(LLMModelSettings(**model), adapter=adapter)
        self.model.eval()
        self.env_class = resolve_action_env(env)
        self.max_new_tokens = max_new_tokens

    def set_weights(self, weights: dict[str, torch.Tensor]) -> None:
        set_peft_model_state_dict(self.model, weights)

    def play(self, problems: list, group_size: int, temperature: float, seed: int) -> list[list[Trajectory]]:
        """`group_size` episodes per problem, grouped by problem in the order given."""
        agent = LLMAgent(self.model, self.tokenizer, max_new_tokens=self.max_new_tokens,
                         temperature=temperature, seed=seed, keep_tokens=True)
        repeated = [problem for problem in problems for _ in range(group_size)]
        episodes = sorted(run_episodes(self.env_class, agent, repeated), key=lambda t: t.index)
        for step in (step for episode in episodes for step in episode.steps):
            step.output_ids = agent.token_ids[(step.prompt, step.output)]
        return [episodes[i:i + group_size] for i in range(0, len(episodes), group_size)]


def play_groups(actors: list, problems: list, group_size: int, temperature: float, seed: int) -> list[list[Trajectory]]:
    """Split problems over the actors, play them in parallel, return the groups in problem order."""
    shares = [problems[i::len(actors)] for i in range(len(actors))]
    results = ray.get([actor.play.remote(share, group_size, temperature, seed + i)
                       for i, (actor, share) in enumerate(zip(actors, shares)) if share])
    groups: list[list[Trajectory]] = [None] * len(problems)  # type: ignore[list-item]
    for i, result in enumerate(results):
        groups[i::len(actors)] = result
    return groups


def episode_rewards(group: list[Trajectory], settings: GRPOSettings, engine: RewardEngine | None) -> list[float]:
    """Environment return (weighted) plus the engine's combined score of each episode's trace."""
    rewards = [settings.env_reward_weight * t.total_reward for t in group]
    if engine is not None:
        rewards = [r + engine.combined(t.to_trace()) for r, t in zip(rewards, group)]
    return rewards


def grpo_loss(logprobs, old_logprobs, ref_logprobs, mask, advantages, clip: float, kl_coeff: float):
    """Clipped surrogate plus k3 KL to the reference, averaged over completion tokens; and the mean KL."""
    ratio = torch.exp(logprobs - old_logprobs)
    advantages = advantages.unsqueeze(-1)
    surrogate = torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    # The log-ratio is bounded only against overflow. Bounding the KL estimate itself (tried: at 10
    # per token) removes the pull back on exactly the tokens that drift furthest, and the demo's
    # policy collapsed within four iterations.
    log_ratio_ref = (ref_logprobs - logprobs).clamp(max=KL_LOG_RATIO_BOUND)
    kl = torch.exp(log_ratio_ref) - log_ratio_ref - 1
    tokens = mask.sum().clamp(min=1)
    loss = -((surrogate - kl_coeff * kl) * mask).sum() / tokens
    return loss, float((kl.detach() * mask).sum() / tokens)


@torch.no_grad()
def _frozen_logprobs(model, batch, batch_size: int, reference: bool, temperature: float,
                     move: Callable[[dict], dict]) -> torch.Tensor:
    """Per-token log-probabilities of the current policy (or the reference) without gradients or dropout."""
    model.eval()
    parts = []
    for index in torch.arange(len(batch["input_ids"])).split(batch_size):
        rows = move({key: value[index] for key, value in batch.items()})
        with model.disable_adapter() if reference else contextlib.nullcontext():
            parts.append(token_logprobs(model, rows, temperature)[0])
    return torch.cat(parts)


def train_loop(loop_config: dict) -> None:
    """GRPO iterations; each reports its metrics and a checkpoint of the adapter and optimizer."""
    config = TrainLLMConfig(**loop_config["config"])
    settings = config.grpo
    context = ray.train.get_context()
    rank = context.get_world_rank()
    torch.manual_seed(config.seed + rank)
    if settings.learner_threads:
        torch.set_num_threads(settings.learner_threads)
    model, tokenizer = load_causal_lm(config.model, adapter=config.init_adapter)
    assert config.data.env is not None, "prepare_llm_run refuses GRPO without an environment"
    env_class = resolve_action_env(config.data.env)
    engine = RewardEngine.from_config(settings.rewards) if settings.rewards else None
    placement = Placement.from_loop_config(loop_config)
    learner = placement.model(model)  # moves `model` itself to the device, before its optimizer state loads
    optimizer, scheduler = adamw_with_warmup(
        model.parameters(), lr=config.training.lr, weight_decay=config.training.weight_decay, decay="constant",
        warmup_steps=int(config.training.warmup_ratio * settings.iterations), total_steps=settings.iterations)
    progress = restore_checkpoint(ray.train.get_checkpoint(), model, optimizer, scheduler)
    actor_class = ray.remote(num_cpus=settings.cpus_per_actor)(RolloutWorker)
    actors = [actor_class.remote(config.model.model_dump(), config.init_adapter, config.data.env,
                                 settings.max_new_tokens) for _ in range(settings.rollout_actors)]
    eval_problems = env_class.sample_problems(config.data.eval_episodes, config.data.eval_seed)
    generator = torch.Generator().manual_seed(config.seed)
    _send_weights(actors, model)
    for iteration in range(progress.get("iteration", 0), settings.iterations):
        started = time.perf_counter()
        seed = (config.data.seed + 1) * 1_000_003 + iteration * 101 + rank * 7919
        problems = env_class.sample_problems(settings.problems_per_iteration, seed)
        groups = play_groups(actors, problems, settings.group_size, settings.temperature, seed)
        rollout_seconds = time.perf_counter() - started
        prompts, completions, completion_ids, advantages, returns = [], [], [], [], []
        for group in groups:
            rewards = episode_rewards(group, settings, engine)
            returns += rewards
            for episode, advantage in zip(group, group_normalise(rewards)):
                if advantage:
                    for step in episode.steps:
                        prompts.append(step.prompt)
                        completions.append(step.output)
                        completion_ids.append(step.output_ids)
                        advantages.append(advantage)
        metrics = {"iteration": iteration + 1, "train_reward_mean": sum(returns) / len(returns),
                   "train_success_rate": sum(t.success for g in groups for t in g) / len(returns),
                   "samples": len(prompts), "rollout_seconds": rollout_seconds}
        if prompts:
            batch = encode_pairs(tokenizer, prompts, completions, config.training.max_length, completion_ids)
            metrics.update(grpo_update(learner, model, batch, torch.tensor(advantages), optimizer, config, generator,
                                       placement))
            _send_weights(actors, model)  # the next rollout and the held-out episodes play the updated policy
        scheduler.step()
        metrics["learn_seconds"] = time.perf_counter() - started - rollout_seconds
        if (iteration + 1) % settings.eval_every == 0 or iteration + 1 == settings.iterations:
            metrics.update(_held_out(actors, eval_problems))
        print_progress(rank, progress_line("grpo iteration", iteration + 1, settings.iterations, metrics,
                                           ("train_reward_mean", "train_success_rate", "loss", "kl",
                                            "eval_success_rate", "rollout_seconds", "learn_seconds")))
        state = (model, tokenizer, optimizer, scheduler, {"iteration": iteration + 1})
        report(loop_config["run_dir"], metrics, state if rank == 0 else None)


def grpo_update(learner, model, batch: dict[str, torch.Tensor], advantages: torch.Tensor, optimizer,
                config: TrainLLMConfig, generator: torch.Generator, placement: Placement | None = None) -> dict:
    """`update_epochs` passes of minibatch steps over one iteration's samples; mean loss, KL, tokens.

    `model` is the PEFT model (for the frozen and reference log-probabilities), `learner` the module
    that trains (the same model, or its DDP wrapper). Each minibatch moves to the placement's device
    (None: where the batch is, for in-process use).
    """
    move = placement.batch if placement is not None else (lambda rows: rows)
    settings, size = config.grpo, config.training.batch_size
    temperature = settings.temperature
    # The behaviour policy's log-probabilities, once, before any step: an iteration takes many
    # minibatch steps, and the ratio clipped against these keeps the later ones near the policy
    # that played. (Using each minibatch's own current log-probabilities, ratio 1, let the demo's
    # policy drift off within 20 iterations.)
    old = _frozen_logprobs(model, batch, size, False, temperature, move)
    reference = _frozen_logprobs(model, batch, size, True, temperature, move)
    losses, kls, tokens = [], [], 0
    learner.train()
    for _ in range(settings.update_epochs):
        for index in minibatches(len(advantages), size, generator):
            rows = move({**select(batch, index), "advantages": advantages[index]})
            width = rows["input_ids"].shape[1] - 1
            logprobs, mask = token_logprobs(learner, rows, temperature)
            loss, kl = grpo_loss(logprobs, old[index][:, :width], reference[index][:, :width], mask,
                                 rows["advantages"], settings.clip, settings.kl_coeff)
            optimizer_step(optimizer, loss, config.training.grad_clip)
            losses.append(float(loss.detach()))
            kls.append(kl)
            tokens += int(rows["attention_mask"].sum())
    return {"loss": sum(losses) / len(losses), "kl": sum(kls) / len(kls), "tokens": tokens}


def _send_weights(actors: list, model) -> None:
    """Put the adapter's weights in the object store once and load them into every rollout actor."""
    weights = ray.put({name: value.detach().cpu() for name, value in get_peft_model_state_dict(model).items()})
    ray.get([actor.set_weights.remote(weights) for actor in actors])


def _held_out(actors: list, problems: list) -> dict:
    """Greedy success rate and mean return on the held-out problems."""
    summary = summarize([t for group in play_groups(actors, problems, 1, 0.0, 0) for t in group])
    return {"eval_success_rate": summary["success_rate"], "eval_mean_reward": summary["mean_reward"]}
