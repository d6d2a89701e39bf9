"""Gift recommendation as a service: a user profile in, items and the tool calls made out.

The exported policy drives the same environment it was trained in: the observation encoding,
the action mask and the tool calls (run through the environment's ToolRegistry on the server)
are the training code's own, so serving cannot drift from training. Hidden preferences are
unknown at serving time and only ever affect the reward, which is not reported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from recursa.envs.gift import GiftRecommendationEnv
from recursa.export.onnx_policy import OnnxPolicy, Precision
from recursa.serving.schemas import RecommendedItem, RecommendRequest, RecommendResponse, ToolCallRecord

Decide = Callable[[dict[str, np.ndarray]], Awaitable[int]]


class InvalidRequest(ValueError):
    """A request the recommender cannot serve (unknown items, no feasible candidates)."""


class GiftRecommenderCore:
    """Runs one greedy episode per request; environments are pooled and reused."""

    def __init__(self, export_dir: str | Path, precision: Precision = "int8", name: str = "gift-trm"):
        self.policy = OnnxPolicy(export_dir, precision)
        # The service answers from the test split's catalog and never fakes upstream failures.
        self.env_config = self.policy.env_config.model_copy(update={"split": "test", "tool_failure_rate": 0.0})
        self.name = name
        self._idle: list[GiftRecommendationEnv] = []
        self._sample_env = self._take_env()

    async def recommend(self, request: RecommendRequest, decide: Decide) -> RecommendResponse:
        """Run the policy for one user; `decide` maps an observation to an action."""
        env = self._take_env()
        try:
            observation = self._reset(env, request)
            done, steps = False, 0
            while not done:
                observation, _, terminated, truncated, _ = env.step(await decide(observation))
                done, steps = terminated or truncated, steps + 1
            return self._response(env, steps)
        finally:
            self._idle.append(env)

    def decide_now(self, observations: list[dict[str, np.ndarray]]) -> list[int]:
        """Greedy actions for a batch of observations."""
        return self.policy.act(observations)

    def healthy(self) -> bool:
        """Whether the model answers with a legal action on a real observation."""
        observation = self._sample_env.reset(seed=0, options={"user_index": 0})[0]
        action = self.policy.act([observation])[0]
        return bool(observation["action_mask"][action] > 0)

    def close(self) -> None:
        """Stop every environment's tool registry."""
        for env in [*self._idle, self._sample_env]:
            env.close()

    def _take_env(self) -> GiftRecommendationEnv:
        return self._idle.pop() if self._idle else GiftRecommendationEnv(self.env_config.model_dump())

    def _reset(self, env: GiftRecommendationEnv, request: RecommendRequest) -> dict[str, np.ndarray]:
        item_ids = request.item_ids
        if item_ids is not None:
            unknown = sorted(set(item_ids) - set(env.catalog.index))
            if unknown:
                raise InvalidRequest(f"item_ids: unknown items {unknown[:5]}")
            if len(set(item_ids)) != self.env_config.num_candidates:
                raise InvalidRequest(f"item_ids: give exactly {self.env_config.num_candidates} distinct items")
        try:
            return env.reset(seed=request.seed, options={"user": request.user.model_dump(), "item_ids": item_ids})[0]
        except RuntimeError as error:  # no candidate set with enough feasible items
            raise InvalidRequest(f"user: {error}") from None

    def _response(self, env: GiftRecommendationEnv, steps: int) -> RecommendResponse:
        chosen = env.candidates[env.recommended]
        items = [RecommendedItem(item_id=int(item_id), name=row["name"], category=row["category"],
                                 list_price=float(row["price"])) for item_id, row in chosen.iterrows()]
        calls = [ToolCallRecord(name=result.tool, arguments=arguments, ok=result.ok, error=result.error)
                 for arguments, result in env.tool_log]
        return RecommendResponse(recommendations=items, tool_calls=calls, steps=steps, model=self.name,
                                 candidates=[int(i) for i in env.candidates.index])
