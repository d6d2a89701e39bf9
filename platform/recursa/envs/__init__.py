"""Gymnasium environments with tools. `gymnasium.make(GIFT_ENV_ID, config={...})` builds the gift env."""

import gymnasium as gym

GIFT_ENV_ID = "recursa/GiftRecommendation-v0"

if GIFT_ENV_ID not in gym.registry:
    gym.register(id=GIFT_ENV_ID, entry_point="recursa.envs.gift:GiftRecommendationEnv")
