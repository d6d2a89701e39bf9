"""The hard gift preset's environment options (gift.focus): per-item tool calls, the tool budget,
noisy tools and hidden preferences; the default episodes unchanged by them; the policy's per-item
head; and how far the heuristics stay from the oracle on the hard preset."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from ray.rllib.core.columns import Columns

from recursa.gift.config import TrainGiftConfig
from recursa.gift.data import PREFERENCES
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.evaluate import evaluate_policy
from recursa.gift.focus import action_layout
from recursa.gift.module import TRMPolicyModule
from recursa.gift.policies import BASELINES, expert_policy
from recursa.gift.ppo import trm_model_config
from recursa.gift.quickstart import HARD_ENV

PER_ITEM = {"per_item_tools": True, "tool_failure_rate": 0.0, "num_candidates": 6}


def tool(env: GiftRecommendationEnv, name: str) -> int:
    return env.tool_names.index(name)


def revealed_rows(env: GiftRecommendationEnv) -> np.ndarray:
    """Per candidate, the "revealed by tool" flags."""
    layout = env.layout
    return env.tokens[1:, layout.revealed:layout.revealed + len(env.tools)]


def play(env, policy, seed):
    observation, _ = env.reset(seed=seed)
    observations, rewards, done = [observation], [], False
    while not done:
        observation, reward, terminated, truncated, info = env.step(policy(env, observation))
        observations.append(observation)
        rewards.append(reward)
        done = terminated or truncated
    return observations, rewards, info


# --- per-item tool calls ---------------------------------------------------------------------


def test_the_hard_env_passes_the_gymnasium_checker_and_its_actions_are_laid_out_per_item():
    env = GiftRecommendationEnv(HARD_ENV.model_dump())
    check_env(env, skip_render_check=True)
    k, j = HARD_ENV.num_candidates, len(HARD_ENV.tools)
    assert env.action_space.n == 1 + k * (1 + j)
    assert env.recommend_action(2) == 1 + 2 * (1 + j) and env.tool_action(4, 2) == 1 + 2 * (1 + j) + 1 + 4
    env.close()


def test_a_per_item_call_asks_only_that_item_and_reveals_only_its_fields():
    env = GiftRecommendationEnv(PER_ITEM)
    env.reset(seed=3)
    before = env.tokens.copy()
    _, reward, *_ = env.step(env.tool_action(tool(env, "inventory_check"), 4))
    arguments, result = env.tool_log[-1]
    assert arguments["item_ids"] == [int(env.candidate_items.ids[4])] and result.ok
    changed_rows = np.flatnonzero((env.tokens[1:] != before[1:]).any(axis=1))
    assert changed_rows.tolist() == [4]
    assert revealed_rows(env)[4].tolist() == [name == "inventory_check" for name in env.tool_names]
    assert env.known("in_stock")[4] == float(env.candidate_items.in_stock[4])
    assert reward == pytest.approx(-env.config.tool_cost)
    mask = env.action_mask()
    assert mask[env.tool_action(tool(env, "inventory_check"), 4)] == 0  # answered
    assert mask[env.tool_action(tool(env, "inventory_check"), 3)] == 1  # another item: still open
    assert mask[env.recommend_action(4)] == 1
    assert env.tokens[0, env.layout.tool_done + tool(env, "inventory_check")] == pytest.approx(1 / 6)
    env.close()


def test_the_budget_masks_every_tool_once_spent_and_the_profile_shows_it():
    env = GiftRecommendationEnv({**PER_ITEM, "tool_budget": 2})
    observation, _ = env.reset(seed=0)
    for item in (0, 1):
        assert observation["action_mask"][env.tool_action(0, item)] == 1
        observation, *_ = env.step(env.tool_action(0, item))
    assert env.tokens[0, env.layout.budget_spent] == 1.0
    tools = [env.tool_action(t, i) for i in range(6) for t in range(len(env.tools))]
    assert observation["action_mask"][tools].sum() == 0
    assert observation["action_mask"][[env.recommend_action(i) for i in range(6)]].all()
    env.close()


def test_the_budget_masks_all_candidate_tools_too():
    env = GiftRecommendationEnv({"tool_failure_rate": 0.0, "tool_budget": 1})
    observation, _ = env.reset(seed=0)
    observation, *_ = env.step(env.tool_action(0))
    assert observation["action_mask"][1:env.first_item].sum() == 0
    env.close()


# --- noise and hidden preferences ------------------------------------------------------------


def test_noise_blurs_the_revealed_numbers_but_not_the_flags():
    answers = {}
    for noise in (0.0, 0.2):
        env = GiftRecommendationEnv({"tool_failure_rate": 0.0, "tool_noise": noise})
        env.reset(seed=5)
        for name in ("review_analysis", "budget_optimizer", "inventory_check"):
            env.step(env.tool_action(tool(env, name)))
        answers[noise] = {field: env.known(field) for field in ("rating", "value_score", "within_budget", "in_stock")}
        env.close()
    exact, blurred = answers[0.0], answers[0.2]
    for field in ("rating", "value_score"):
        error = blurred[field] - exact[field]
        assert np.all(error != 0) and 0.02 < error.std() < 0.6, field
    for field in ("within_budget", "in_stock"):
        assert np.array_equal(blurred[field], exact[field]), field


def test_hidden_preferences_are_apart_from_the_profile_and_shown_by_reviews_and_trends():
    visible = GiftRecommendationEnv({"tool_failure_rate": 0.0})
    hidden = GiftRecommendationEnv({"tool_failure_rate": 0.0, "hidden_preferences": True})
    by_occasion: dict[str, dict[str, list[float]]] = {"visible": {}, "hidden": {}}
    for index in range(300):
        for name, env in (("visible", visible), ("hidden", hidden)):
            env.reset(seed=index, options={"user_index": index})
            by_occasion[name].setdefault(env.user["occasion"], []).append(env.user["w_value"])
    # The occasion predicts how much a user weighs value, unless the preferences are hidden.
    gap = {name: np.mean(weights["thank_you"]) - np.mean(weights["anniversary"]) for name, weights in by_occasion.items()}
    assert gap["visible"] > 0.4 and abs(gap["hidden"]) < 0.15, gap

    for env in (visible, hidden):
        env.reset(seed=7, options={"user_index": 7})
        for name in ("review_analysis", "trend_analysis"):
            env.step(env.tool_action(tool(env, name)))
    assert visible.user["occasion"] == hidden.user["occasion"]
    assert {p: visible.user[p] for p in PREFERENCES} != {p: hidden.user[p] for p in PREFERENCES}
    for field, weight in (("rating", "w_quality"), ("trend", "w_trend")):
        np.testing.assert_allclose(hidden.known(field), visible.known(field) * 3.0 * hidden.user[weight], rtol=1e-5)
    visible.close()
    hidden.close()


# --- the default environment is untouched ----------------------------------------------------

# sha256 of the default environment's observations, masks and rewards under the baselines and the
# expert over 40 seeds, recorded before the hard options existed.
DEFAULT_EPISODES_SHA256 = "3a36bfa9e698a1bf661201aaf1d07231120395d50154b2025d4a6a2945f0598e"


def test_default_episodes_are_unchanged_seed_for_seed():
    digest = hashlib.sha256()
    env = GiftRecommendationEnv({})
    policies = {name: make(7) for name, make in BASELINES.items()} | {"expert": expert_policy}
    for policy in policies.values():
        for seed in range(40):
            observation, _ = env.reset(seed=seed)
            done = False
            while not done:
                digest.update(observation["observations"].tobytes())
                digest.update(observation["action_mask"].tobytes())
                observation, reward, terminated, truncated, _ = env.step(policy(env, observation))
                digest.update(np.float64(reward).tobytes())
                done = terminated or truncated
            digest.update(observation["observations"].tobytes())
    env.close()
    assert digest.hexdigest() == DEFAULT_EPISODES_SHA256


# --- the policy's per-item head --------------------------------------------------------------


def test_the_policy_emits_one_logit_per_item_action_at_any_number_of_candidates():
    config = TrainGiftConfig(env=HARD_ENV)
    actions = action_layout(HARD_ENV)
    model_config = trm_model_config(config)
    assert (model_config["num_global_actions"], model_config["actions_per_item"]) == (1, 1 + len(HARD_ENV.tools))
    trained_at = GiftRecommendationEnv(HARD_ENV.model_dump())
    module = TRMPolicyModule(observation_space=trained_at.observation_space, action_space=trained_at.action_space,
                             model_config=model_config)
    trained_at.close()
    for k in (24, 7):  # trained at 24 candidates, acting at 7
        env = GiftRecommendationEnv(HARD_ENV.model_copy(update={"num_candidates": k}).model_dump())
        observation, _ = env.reset(seed=1)
        env.step(env.tool_action(0, 0))
        observation = env._observation()
        batch = {Columns.OBS: {key: torch.from_numpy(value)[None] for key, value in observation.items()}}
        logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]
        assert logits.shape == (actions.num_actions(k),)
        assert (logits > -1e30).tolist() == observation["action_mask"].astype(bool).tolist()
        env.close()


# --- the preset is hard ----------------------------------------------------------------------


def test_on_the_hard_preset_heuristics_stay_far_from_the_oracle_and_the_expert_does_not():
    users, seed = 60, 1234
    reward = {name: evaluate_policy(HARD_ENV, make(seed), users, seed)["mean_reward"]
              for name, make in BASELINES.items()}
    reward["expert"] = evaluate_policy(HARD_ENV, expert_policy, users, seed)["mean_reward"]
    share = {name: value / reward["oracle"] for name, value in reward.items()}
    assert max(share["all_tools_greedy"], share["no_tools"]) <= 0.80, share
    assert share["random"] < 0.4, share
    assert share["expert"] >= 0.88, share
