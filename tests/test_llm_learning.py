"""The LLM learners' pieces on the tiny model: batches, the agent, the GRPO objective, a rollout actor."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model_state_dict

from recursa.llm.agent import LLMAgent
from recursa.llm.batches import encode_pairs, select, token_logprobs, weighted_nll
from recursa.llm.config import LLMModelSettings, LoRASettings
from recursa.llm.grpo import RolloutWorker, grpo_loss
from recursa.llm.math_env import LinearEquationEnv, sample_equations
from recursa.llm.models import load_causal_lm

LORA = LoRASettings(r=8, alpha=16, dropout=0.0)


@pytest.fixture()
def policy(tiny_llm):
    return load_causal_lm(LLMModelSettings(path=str(tiny_llm), lora=LORA))


def test_only_completion_tokens_and_eos_carry_loss(policy):
    _, tokenizer = policy
    batch = encode_pairs(tokenizer, ["Solve for x: 2x = 4\nAction:", "Action:"], [" divide_terms(2)", " x"], 64)
    row = batch["input_ids"][0][batch["completion_mask"][0].bool()]
    assert tokenizer.decode(row) == " divide_terms(2)" + tokenizer.eos_token
    assert batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()  # right padding
    completions = tokenizer([" divide_terms(2)", " x"], add_special_tokens=False)["input_ids"]
    assert int(batch["completion_mask"].sum()) == sum(len(ids) + 1 for ids in completions)
    short = encode_pairs(tokenizer, ["a long prompt " * 20], [" x"], 12)
    assert short["input_ids"].shape[1] == 12 and tokenizer.decode(short["input_ids"][0][-2:]).startswith(" x")


def test_weighted_sft_follows_the_weights(policy):
    model, tokenizer = policy
    batch = encode_pairs(tokenizer, ["Action:", "Action:"], [" state_answer(3)", " state_answer(9)"], 32)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(20):
        logprobs, mask = token_logprobs(model, batch)
        loss = weighted_nll(logprobs, mask, torch.tensor([1.0, 0.1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logprobs, mask = token_logprobs(model, batch)
    per_sequence = (logprobs * mask).sum(-1)
    assert per_sequence[0] > per_sequence[1]  # the heavier example became the likelier one


def test_llm_agent_writes_actions_the_runner_can_judge(policy):
    model, tokenizer = policy
    agent = LLMAgent(model, tokenizer, max_new_tokens=8)
    from recursa.llm.actions import run_episodes

    episodes = list(run_episodes(LinearEquationEnv, agent, sample_equations(3, seed=0)))
    assert len(episodes) == 3 and all(1 <= len(t.steps) <= LinearEquationEnv.max_steps for t in episodes)
    # Greedy decoding is deterministic; sampling with a seed is reproducible.
    prompts = [episodes[0].steps[0].prompt]
    assert agent.complete(prompts) == agent.complete(prompts)
    sampled = [LLMAgent(model, tokenizer, max_new_tokens=8, temperature=1.0, seed=5).complete(prompts * 4)
               for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_grpo_loss_pushes_up_good_and_down_bad_completions():
    logprobs = torch.zeros(2, 3, requires_grad=True)
    mask = torch.ones(2, 3)
    loss, kl = grpo_loss(logprobs, torch.zeros(2, 3), torch.zeros(2, 3), mask, torch.tensor([1.0, -1.0]), 0.2, 0.0)
    loss.backward()
    assert kl == 0.0
    assert (logprobs.grad[0] < 0).all() and (logprobs.grad[1] > 0).all()  # descent raises row 0, lowers row 1


def test_grpo_loss_clips_the_ratio_and_penalises_distance_to_the_reference():
    old = torch.zeros(1, 2)
    moved = torch.full((1, 2), 0.5, requires_grad=True)  # ratio e^0.5 > 1 + clip
    loss, _ = grpo_loss(moved, old, moved.detach(), torch.ones(1, 2), torch.tensor([1.0]), 0.2, 0.0)
    loss.backward()
    assert torch.all(moved.grad == 0)  # clipped: no further push for a positive advantage
    away = torch.zeros(1, 2, requires_grad=True)
    loss, kl = grpo_loss(away, away.detach(), torch.full((1, 2), -1.0), torch.ones(1, 2), torch.tensor([0.0]), 0.2, 1.0)
    loss.backward()
    assert kl == pytest.approx(float(torch.exp(torch.tensor(-1.0)) + 1 - 1), abs=1e-6)
    assert torch.all(away.grad > 0)  # descent lowers logprobs the reference finds unlikely


def test_rollout_worker_plays_groups_with_the_weights_it_is_sent(policy, tiny_llm):
    model, _ = policy
    worker = RolloutWorker(LLMModelSettings(path=str(tiny_llm), lora=LORA).model_dump(), None, "math", 8)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.5)
    worker.set_weights(get_peft_model_state_dict(model))
    sent = get_peft_model_state_dict(model)
    held = get_peft_model_state_dict(worker.model)
    assert all(torch.equal(sent[key], held[key]) for key in sent)
    problems = sample_equations(3, seed=1)
    groups = worker.play(problems, group_size=4, temperature=1.0, seed=0)
    assert [len(g) for g in groups] == [4, 4, 4]
    assert all(t.problem == problems[i] for i, group in enumerate(groups) for t in group)


def test_select_trims_padding_columns(policy):
    _, tokenizer = policy
    batch = encode_pairs(tokenizer, ["Action:", "Solve for x: 3x + 7 = 16\nAction:"], [" a", " b"], 64)
    rows = select(batch, torch.tensor([0]))
    assert rows["input_ids"].shape[1] == int(batch["attention_mask"][0].sum())
