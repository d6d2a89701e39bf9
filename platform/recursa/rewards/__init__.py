"""Reward functions and the engine that combines them."""
