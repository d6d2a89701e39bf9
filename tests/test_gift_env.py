"""The gift environment: gymnasium contract, masks, tools in the observation, rewards, episode
ends, determinism, RLlib per-runner streams, and the baselines' ordering on held-out users."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from recursa.gift.config import GiftEnvConfig
from recursa.gift.env import FINISH, FIRST_ITEM, FIRST_TOOL, KNOWN_FIELDS, NUM_TOOLS, GiftRecommendationEnv
from recursa.gift.policies import (
    BASELINES,
    all_tools_greedy_policy,
    expert_policy,
    no_tools_policy,
    oracle_policy,
    random_policy,
)
from recursa.gift.tools import GIFT_TOOL_NAMES

RELIABLE = {"tool_failure_rate": 0.0}


def tool_action(name: str) -> int:
    return FIRST_TOOL + GIFT_TOOL_NAMES.index(name)


def make_env(**overrides) -> GiftRecommendationEnv:
    return GiftRecommendationEnv(overrides)


@pytest.fixture
def env():
    env = make_env(**RELIABLE)
    yield env
    env.close()


def run_episode(env, policy, seed, options=None):
    """Play one episode; return (return, final info, terminated, truncated, steps, observations)."""
    observation, info = env.reset(seed=seed, options=options)
    observations = [observation]
    total, terminated, truncated, steps = 0.0, False, False, 0
    while not (terminated or truncated):
        observation, reward, terminated, truncated, info = env.step(policy(env, observation))
        observations.append(observation)
        total += reward
        steps += 1
    return total, info, terminated, truncated, steps, observations


# --- gymnasium contract --------------------------------------------------------------------


def test_passes_gymnasium_env_checker():
    env = make_env()
    check_env(env, skip_render_check=True)
    env.close()


def test_observation_space_is_dict_of_tokens_and_mask(env):
    space = env.observation_space
    assert isinstance(space, gym.spaces.Dict)
    assert set(space.spaces) == {"observations", "action_mask"}
    k = env.config.num_candidates
    assert space["observations"].shape[0] == k + 1
    assert space["action_mask"].shape == (env.action_space.n,)
    assert env.action_space.n == FIRST_ITEM + k
    observation, _ = env.reset(seed=0)
    assert space.contains(observation)


# --- masks ---------------------------------------------------------------------------------


def test_answered_tool_becomes_masked_and_others_stay_allowed(env):
    observation, _ = env.reset(seed=1)
    assert observation["action_mask"].all()  # fresh episode: everything allowed
    action = tool_action("review_analysis")
    observation, *_ = env.step(action)
    mask = observation["action_mask"]
    assert mask[action] == 0
    assert mask[FINISH] == 1
    others = [a for a in range(FIRST_TOOL, FIRST_ITEM) if a != action]
    assert mask[others].all() and mask[FIRST_ITEM:].all()


def test_recommended_item_becomes_masked(env):
    env.reset(seed=2)
    observation, *_ = env.step(FIRST_ITEM + 3)
    mask = observation["action_mask"]
    assert mask[FIRST_ITEM + 3] == 0
    assert mask[FIRST_ITEM:].sum() == env.config.num_candidates - 1
    assert mask[FINISH] == 1
    assert observation["observations"][1 + 3, -1] == 1.0  # the candidate's token shows it


def test_a_masked_action_is_a_costly_no_op(env):
    env.reset(seed=3)
    env.step(tool_action("inventory_check"))
    _, reward, terminated, truncated, info = env.step(tool_action("inventory_check"))
    assert reward == pytest.approx(-env.config.tool_cost) and not terminated and not truncated
    assert info["invalid_actions"] == 1 and info["tool_calls"] == 1
    env.step(FIRST_ITEM)
    utility = env.stats["utility"]
    env.step(FIRST_ITEM)
    assert env.stats["utility"] == utility, "recommending twice pays nothing twice"
    with pytest.raises(ValueError):
        env.step(env.num_actions)


def test_finish_is_always_allowed_and_masks_match_the_space():
    env = make_env(tool_failure_rate=0.3)
    policy = random_policy(seed=0)
    for seed in range(40):
        _, _, _, _, _, observations = run_episode(env, policy, seed)
        for observation in observations:
            assert observation["action_mask"][FINISH] == 1
            assert env.observation_space.contains(observation)
    env.close()


# --- tools feed the observation --------------------------------------------------------------


def test_inventory_check_reveals_stock_of_every_candidate(env):
    observation, _ = env.reset(seed=4)
    before = observation["observations"]
    for field in KNOWN_FIELDS:
        assert not env.known(field).any(), f"{field} known before any tool call"
    observation, reward, terminated, truncated, info = env.step(tool_action("inventory_check"))
    after = observation["observations"]
    assert not np.array_equal(before[1:], after[1:])  # candidate tokens changed
    np.testing.assert_array_equal(env.known("in_stock"), (env.candidates["stock"].to_numpy() > 0).astype(float))
    assert env.known("quantity")[env.candidates["stock"].to_numpy() > 0].min() > 0
    # only the inventory fields were revealed
    for field in set(KNOWN_FIELDS) - {"in_stock", "quantity"}:
        assert not env.known(field).any(), field
    assert reward == pytest.approx(-env.config.tool_cost)
    assert not terminated and not truncated
    assert info["tool_calls"] == 1 and info["calls_by_tool"]["inventory_check"] == 1


def test_each_tool_reveals_its_fields(env):
    revealed = {
        "price_comparison": {"price_ratio", "within_budget"},
        "inventory_check": {"in_stock", "quantity"},
        "review_analysis": {"rating", "confidence"},
        "trend_analysis": {"trend", "direction"},
        "budget_optimizer": {"price_ratio", "within_budget", "value_score"},
    }
    assert set(revealed) == set(GIFT_TOOL_NAMES)
    for name, fields in revealed.items():
        env.reset(seed=5)
        env.step(tool_action(name))
        for field in fields - {"direction"}:  # direction is 0 for "stable" items
            assert env.known(field).any(), f"{name} did not reveal {field}"
        for field in set(KNOWN_FIELDS) - fields:
            assert not env.known(field).any(), f"{name} revealed {field}"
    env.reset(seed=5)
    env.step(tool_action("review_analysis"))
    np.testing.assert_allclose(env.known("rating"), (env.candidates["rating"].to_numpy() - 1) / 4, atol=1e-6)


def test_failing_tool_never_raises_costs_and_stays_allowed():
    env = make_env(tool_failure_rate=1.0, max_steps=6)
    observation, _ = env.reset(seed=6)
    action = tool_action("price_comparison")
    for attempt in range(1, 4):
        observation, reward, terminated, truncated, info = env.step(action)
        assert reward == pytest.approx(-env.config.tool_cost)
        assert observation["action_mask"][action] == 1  # may be retried
        assert info["tool_failures"] == attempt and info["tool_calls"] == attempt
        assert not env.known("price_ratio").any()  # nothing revealed
        assert not terminated and not truncated
    env.close()


# --- rewards -------------------------------------------------------------------------------


@pytest.mark.parametrize("failure_rate", [0.02, 0.5])
def test_episode_return_and_utility_are_bounded(failure_rate):
    env = make_env(tool_failure_rate=failure_rate)
    policy = random_policy(seed=1)
    lower = -env.config.max_steps * env.config.tool_cost
    returns = []
    for seed in range(150):
        total, info, _, _, steps, _ = run_episode(env, policy, seed)
        assert lower - 1e-9 <= total <= 1.0 + 1e-9
        assert 0.0 <= info["utility"] <= 1.0 + 1e-9
        assert total == pytest.approx(info["utility"] - info["tool_cost"])
        assert steps <= env.config.max_steps
        returns.append(total)
    assert min(returns) < 0 < max(returns)  # the random policy really explores both ends
    env.close()


def test_oracle_scores_exactly_one_every_episode(env):
    for seed in range(60):
        total, info, terminated, truncated, steps, _ = run_episode(env, oracle_policy, seed)
        assert total == pytest.approx(1.0, abs=1e-9)
        assert info["tool_calls"] == 0
        assert terminated and not truncated and steps == env.config.max_recommendations


# --- episode ends ------------------------------------------------------------------------------


def test_episode_ends_after_max_recommendations():
    env = make_env(max_recommendations=2, **RELIABLE)
    env.reset(seed=7)
    _, _, terminated, truncated, info = env.step(FIRST_ITEM)
    assert not terminated and not truncated
    _, _, terminated, truncated, info = env.step(FIRST_ITEM + 1)
    assert terminated and not truncated and info["recommended"] == 2


def test_finish_ends_the_episode_with_no_reward(env):
    env.reset(seed=8)
    _, reward, terminated, truncated, _ = env.step(FINISH)
    assert terminated and not truncated and reward == 0.0


def test_episode_is_truncated_at_max_steps():
    env = make_env(max_steps=4, **RELIABLE)
    env.reset(seed=9)
    for action in range(FIRST_TOOL, FIRST_TOOL + 3):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated and not truncated
    _, _, terminated, truncated, _ = env.step(FIRST_TOOL + 3)
    assert truncated and not terminated


def test_failing_tools_cannot_loop_forever():
    env = make_env(tool_failure_rate=1.0)
    env.reset(seed=10)
    for step in range(1, env.config.max_steps + 1):
        _, _, terminated, truncated, info = env.step(FIRST_TOOL)
        if step < env.config.max_steps:
            assert not truncated
    assert truncated and not terminated and info["tool_failures"] == env.config.max_steps


def test_last_recommendation_on_the_last_step_terminates_not_truncates():
    env = make_env(max_steps=3, max_recommendations=3, **RELIABLE)
    env.reset(seed=11)
    for i in range(3):
        _, _, terminated, truncated, _ = env.step(FIRST_ITEM + i)
    assert terminated and not truncated


# --- determinism -------------------------------------------------------------------------------


def _trajectory(env, seed, actions):
    observation, _ = env.reset(seed=seed)
    frames, rewards = [observation["observations"]], []
    for action in actions:
        observation, reward, *_ = env.step(action)
        frames.append(observation["observations"])
        rewards.append(reward)
    return np.stack(frames), rewards, list(env.candidates.index)


ACTIONS = [tool_action("inventory_check"), tool_action("budget_optimizer"), FIRST_ITEM + 2, FIRST_ITEM + 5]


def test_same_seed_and_actions_give_identical_episodes():
    # two fresh envs with the default (unreliable) tools
    a, b = make_env(), make_env()
    frames_a, rewards_a, cands_a = _trajectory(a, 21, ACTIONS)
    frames_b, rewards_b, cands_b = _trajectory(b, 21, ACTIONS)
    np.testing.assert_array_equal(frames_a, frames_b)
    assert rewards_a == rewards_b and cands_a == cands_b
    # replaying the seed on the same env (reliable tools)
    env = make_env(**RELIABLE)
    first = _trajectory(env, 22, ACTIONS)
    env.reset(seed=99)
    second = _trajectory(env, 22, ACTIONS)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1:] == second[1:]


def test_replaying_a_seed_on_the_same_env_with_unreliable_tools_is_identical():
    env = make_env(tool_failure_rate=0.3)
    tools = list(range(FIRST_TOOL, FIRST_TOOL + NUM_TOOLS))
    for seed in range(10):
        first = _trajectory(env, seed, tools)
        second = _trajectory(env, seed, tools)
        np.testing.assert_array_equal(first[0], second[0])


def test_different_seeds_give_different_candidates(env):
    seen = set()
    for seed in range(10):
        env.reset(seed=seed)
        seen.add((int(env.user["user_id"]), tuple(env.candidates.index)))
    assert len(seen) == 10


def test_rllib_env_context_gives_each_runner_and_slot_its_own_stream():
    from ray.rllib.env.env_context import EnvContext

    def first_episodes(worker_index, vector_index, n=5):
        env = GiftRecommendationEnv(EnvContext({"seed": 0}, worker_index=worker_index, vector_index=vector_index))
        episodes = []
        for _ in range(n):
            env.reset()  # no seed: the runner's own stream
            episodes.append((int(env.user["user_id"]), tuple(env.candidates.index)))
        env.close()
        return episodes

    w1v0 = first_episodes(1, 0)
    assert first_episodes(1, 0) == w1v0  # reproducible per runner
    assert first_episodes(2, 0) != w1v0
    assert first_episodes(1, 1) != w1v0


# --- baselines on held-out users: tool use is worth its cost ------------------------------------------


@pytest.fixture(scope="module")
def baseline_scores():
    from recursa.gift.evaluate import evaluate_policy

    config = GiftEnvConfig()
    policies = {name: make(0) for name, make in BASELINES.items()}
    policies["expert"] = expert_policy
    return {name: evaluate_policy(config, policy, users=100, seed=1234) for name, policy in policies.items()}


def test_baselines_registry_is_complete():
    assert set(BASELINES) == {"random", "no_tools", "all_tools_greedy", "oracle"}
    assert BASELINES["no_tools"](0) is no_tools_policy
    assert BASELINES["all_tools_greedy"](0) is all_tools_greedy_policy


def test_oracle_is_one_on_held_out_users(baseline_scores):
    oracle = baseline_scores["oracle"]
    assert oracle["mean_reward"] == pytest.approx(1.0, abs=1e-9)
    assert oracle["tool_calls_per_episode"] == 0


def test_tools_are_worth_their_cost(baseline_scores):
    mean = {name: s["mean_reward"] for name, s in baseline_scores.items()}
    assert mean["no_tools"] < mean["all_tools_greedy"] - 0.15, mean
    assert mean["random"] < mean["no_tools"], mean
    assert mean["all_tools_greedy"] < mean["expert"] < mean["oracle"] + 1e-9, mean
    assert baseline_scores["no_tools"]["tool_calls_per_episode"] == 0
    assert baseline_scores["all_tools_greedy"]["tool_calls_per_episode"] >= NUM_TOOLS


def test_evaluation_uses_held_out_users_only(monkeypatch):
    from recursa.gift import evaluate

    splits = []
    real = evaluate.GiftRecommendationEnv

    def spy(config):
        splits.append(config["split"])
        return real(config)

    monkeypatch.setattr(evaluate, "GiftRecommendationEnv", spy)
    evaluate.evaluate_policy(GiftEnvConfig(split="train"), oracle_policy, users=2, seed=0)
    assert splits == ["test"]
