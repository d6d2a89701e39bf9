"""Gift recommendation as a service: a user profile in, items and the tool calls made out.

The exported policy drives the same environment it was trained in: the observation encoding,
the action mask and the tool calls (run through the environment's ToolRegistry on the server)
are the training code's own, so serving cannot drift from training. Hidden preferences are
unknown at serving time and only ever affect the reward, which is not reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recursa.gift.config import MAX_CANDIDATES, MIN_CANDIDATES
from recursa.gift.data import CATEGORIES
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.onnx_policy import Carry, OnnxPolicy, Precision
from recursa.gift.schemas import RecommendedItem, RecommendRequest, RecommendResponse, ToolCallRecord


class InvalidRequest(ValueError):
    """A request the recommender cannot serve (unknown items, no feasible candidates)."""


class GiftRecommenderCore:
    """Runs one greedy episode per request, the episodes of a batch in lockstep; environments
    are pooled and reused."""

    def __init__(self, export_dir: str | Path, precision: Precision = "int8", name: str = "gift-trm",
                 halting_threshold: float | None = None):
        self.policy = OnnxPolicy(export_dir, precision, halting_threshold=halting_threshold)
        # The service answers from the test split's catalog and never fakes upstream failures.
        self.env_config = self.policy.env_config.model_copy(update={"split": "test", "tool_failure_rate": 0.0})
        self.name = name
        self._idle: list[GiftRecommendationEnv] = []
        self._sample_env = self._take_env()

    def recommend(self, requests: list[RecommendRequest]) -> list[RecommendResponse | InvalidRequest]:
        """Run the policy for each request's user: one forward pass per step for all the
        episodes still running. A request that cannot be served gets its InvalidRequest."""
        envs = [self._take_env() for _ in requests]
        try:
            # Every request either fails its reset or plays its episode to the end.
            results: dict[int, RecommendResponse | InvalidRequest] = {}
            observations: dict[int, dict[str, np.ndarray]] = {}
            for i, (env, request) in enumerate(zip(envs, requests)):
                try:
                    observations[i] = self._reset(env, request)
                except InvalidRequest as error:
                    results[i] = error
            steps = dict.fromkeys(observations, 0)
            carries: dict[int, Carry | None] = dict.fromkeys(observations)
            while observations:
                running = list(observations)
                actions, next_carries = self.policy.step([observations[i] for i in running], [carries[i] for i in running])
                carries.update(zip(running, next_carries))
                for i, action in zip(running, actions):
                    observation, _, terminated, truncated, _ = envs[i].step(action)
                    steps[i] += 1
                    if terminated or truncated:
                        del observations[i]
                        results[i] = self._response(envs[i], steps[i])
                    else:
                        observations[i] = observation
            return [results[i] for i in range(len(requests))]
        finally:
            self._idle.extend(envs)

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
            try:
                env.items.positions(item_ids)
            except KeyError as error:
                raise InvalidRequest(f"item_ids: {error.args[0]}") from None
            low = max(MIN_CANDIDATES, self.env_config.max_recommendations)
            if len(set(item_ids)) != len(item_ids) or not low <= len(item_ids) <= MAX_CANDIDATES:
                raise InvalidRequest(f"item_ids: give {low} to {MAX_CANDIDATES} distinct items")
        try:
            return env.reset(seed=request.seed, options={"user": request.user.model_dump(), "item_ids": item_ids})[0]
        except RuntimeError as error:  # no candidate set with enough feasible items
            raise InvalidRequest(f"user: {error}") from None

    def _response(self, env: GiftRecommendationEnv, steps: int) -> RecommendResponse:
        chosen = env.candidate_items.take(np.flatnonzero(env.recommended))
        items = [RecommendedItem(item_id=item_id, name=name, category=CATEGORIES[category], list_price=price)
                 for item_id, name, category, price in zip(chosen.ids.tolist(), chosen.name.tolist(),
                                                           chosen.category.tolist(), chosen.price.tolist())]
        calls = [ToolCallRecord(name=result.tool, arguments=arguments, ok=result.ok, error=result.error)
                 for arguments, result in env.tool_log]
        return RecommendResponse(recommendations=items, tool_calls=calls, steps=steps, model=self.name,
                                 candidates=env.candidate_items.ids.tolist())
