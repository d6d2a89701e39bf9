"""Gift recommendation with five tools, as a gymnasium environment.

One episode is one user and K candidate items. The agent sees the user's profile and each
candidate's category and interest match; price, stock, reviews and trend are revealed only by
calling tools, whose results are written into the observation. It then recommends items and
is paid their utility under the user's hidden preferences, normalised so the best possible
set scores 1, minus a small cost per tool call.

Observation: ``{"observations": float32[K + 1, TOKEN_DIM], "action_mask": float32[A]}``.
Token 0 describes the user and the episode so far; token 1 + i describes candidate i.
Actions: 0 = finish, 1..5 = call a gift tool on all candidates, 6 + i = recommend candidate i.
With `per_item_tools` (the hard preset, gift.focus) a call asks one tool about one candidate:
0 = finish, then per candidate i the 1 + J actions 1 + i(1 + J) = recommend candidate i and
1 + i(1 + J) + 1 + j = call tool j on candidate i (A = 1 + K(1 + J)); answered calls are masked.
With a `tool_budget`, every tool action is masked once that many calls were made.
K is the config's `num_candidates`, or per episode the number of `item_ids` given to `reset`
(serving); the spaces describe the config's K.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, TypedDict

import gymnasium as gym
import numpy as np
import pandas as pd

from recursa.gift.config import MAX_CANDIDATES, GiftEnvConfig
from recursa.gift.data import (
    CATEGORIES,
    OCCASIONS,
    PREFERENCES,
    RELATIONSHIPS,
    TAGS_BY_CATEGORY,
    GiftData,
    generate_gift_data,
    read_gift_data,
)
from recursa.gift.focus import (
    HIDDEN_MATCH_FLOOR,
    MATCH_FLOOR,
    ActionLayout,
    action_layout,
    noisy,
    peer_view,
    with_hidden_preferences,
)
from recursa.gift.observation import DEFAULT_LAYOUT, TokenLayout
from recursa.gift.tools import CONFIDENT_REVIEW_COUNT, unreliable
from recursa.gift.toolset import resolve_gift_tools
from recursa.tools import ToolRegistry, ToolResult

FINISH = 0
FIRST_TOOL = 1
# With the five built-in tools (the default `env.tools`); an environment's own are attributes.
NUM_TOOLS = len(DEFAULT_LAYOUT.tools)
FIRST_ITEM = FIRST_TOOL + NUM_TOOLS
NUM_GLOBAL_ACTIONS = FIRST_ITEM  # finish + tools: read from the profile token
TOKEN_DIM = DEFAULT_LAYOUT.token_dim
KNOWN_FIELDS = DEFAULT_LAYOUT.fields

_ALL_TAGS = tuple(sorted({tag for tags in TAGS_BY_CATEGORY.values() for tag in tags}))


@dataclasses.dataclass(frozen=True)
class CatalogArrays:
    """The catalog columns an episode reads, as arrays in catalog order.

    Episodes are sampled and scored with numpy on these rather than on the DataFrame: pandas
    indexing cost about 2 ms per reset, most of a served request (bench/serve_load.py).
    """

    ids: np.ndarray
    name: np.ndarray
    category: np.ndarray  # index into CATEGORIES
    price: np.ndarray
    best_price: np.ndarray
    quality: np.ndarray  # rating scaled to [0, 1], discounted when reviews are few
    trend: np.ndarray
    in_stock: np.ndarray
    tag_bits: np.ndarray  # bit i set when the item carries _ALL_TAGS[i]

    @classmethod
    def from_catalog(cls, catalog: pd.DataFrame) -> CatalogArrays:
        """Arrays of a catalog DataFrame indexed by item id."""
        return cls(
            ids=catalog.index.to_numpy(dtype=np.int64),
            name=catalog["name"].to_numpy(dtype=object),
            category=np.array([CATEGORIES.index(c) for c in catalog["category"]]),
            price=catalog["price"].to_numpy(dtype=float),
            best_price=np.array([min(prices) for prices in catalog["retailer_prices"]], dtype=float),
            quality=(catalog["rating"].to_numpy(dtype=float) - 1.0) / 4.0 * np.minimum(  # as review_analysis rates it
                1.0, np.log1p(catalog["review_count"].to_numpy(dtype=float)) / np.log1p(CONFIDENT_REVIEW_COUNT)),
            trend=catalog["trend"].to_numpy(dtype=float),
            in_stock=catalog["stock"].to_numpy() > 0,
            tag_bits=np.array([_tag_mask(tags) for tags in catalog["tags"]], dtype=np.int64),
        )

    def take(self, positions: np.ndarray) -> CatalogArrays:
        """The rows at `positions`, in that order."""
        return CatalogArrays(**{f.name: getattr(self, f.name)[positions] for f in dataclasses.fields(self)})

    def positions(self, item_ids) -> np.ndarray:
        """Row positions of item ids (KeyError naming the unknown ones)."""
        lookup = self._position_of
        unknown = sorted({int(i) for i in item_ids} - lookup.keys())
        if unknown:
            raise KeyError(f"unknown items {unknown[:5]}")
        return np.array([lookup[int(i)] for i in item_ids], dtype=np.intp)

    @functools.cached_property
    def _position_of(self) -> dict[int, int]:
        return {int(item): pos for pos, item in enumerate(self.ids)}


def _tag_mask(tags) -> int:
    """A bit set of tags (bit i for _ALL_TAGS[i]); unknown tags are ignored."""
    return sum(1 << _ALL_TAGS.index(tag) for tag in set(tags) if tag in _ALL_TAGS)


_DATA_CACHE: dict[tuple, tuple[GiftData, CatalogArrays]] = {}


def load_env_data(config: GiftEnvConfig) -> tuple[GiftData, CatalogArrays]:
    """Catalog and users for an env config (generated from its seed, or read from data_dir),
    with the catalog's arrays."""
    key = (config.data_dir, config.num_items, config.num_users, config.data_seed)
    if key not in _DATA_CACHE:
        if config.data_dir:
            data = read_gift_data(config.data_dir)
        else:
            data = generate_gift_data(config.num_items, config.num_users, seed=config.data_seed)
        _DATA_CACHE[key] = data, CatalogArrays.from_catalog(data.catalog)
    return _DATA_CACHE[key]


def interest_categories(user: dict) -> np.ndarray:
    """Whether each of CATEGORIES is one of the user's interests (a lookup table by category index)."""
    interests = set(user["interests"])
    return np.array([c in interests for c in CATEGORIES])


def interest_match(user: dict, items: CatalogArrays) -> np.ndarray:
    """1 for an interest category, 0.5 for a shared interest tag, else 0.15 (visible to the agent)."""
    in_category = interest_categories(user)[items.category]
    shares_tag = (items.tag_bits & _tag_mask(user["interest_tags"])) != 0
    return np.where(in_category, 1.0, np.where(shares_tag, 0.5, 0.15))


def gift_utility(user: dict, items: CatalogArrays, match_floor: float = MATCH_FLOOR) -> np.ndarray:
    """True utility of each item for the user: zero if out of stock or over budget."""
    value = np.clip(1.0 - items.best_price / user["budget"], 0.0, 1.0)
    taste = user["w_quality"] * items.quality + user["w_trend"] * items.trend + user["w_value"] * value
    feasible = items.in_stock & (items.best_price <= user["budget"])
    return np.where(feasible, interest_match(user, items) * (match_floor + (1.0 - match_floor) * taste), 0.0)


def served_user(profile: dict[str, Any]) -> dict[str, Any]:
    """A user from a visible profile alone (serving): hidden preferences weigh quality, trend
    and value equally, which matters only for the reward, never for the observation."""
    neutral = dict.fromkeys(PREFERENCES, 1.0 / len(PREFERENCES))
    return {"user_id": -1, "interest_tags": [], **neutral, **profile}


def gift_spaces(num_candidates: int, token_dim: int = TOKEN_DIM, num_global_actions: int = NUM_GLOBAL_ACTIONS,
                actions_per_item: int = 1) -> tuple[gym.spaces.Dict, gym.spaces.Discrete]:
    """Observation and action spaces for K candidates (the policy needs them without an env)."""
    num_actions = ActionLayout(num_global_actions, actions_per_item).num_actions(num_candidates)
    observation_space = gym.spaces.Dict({
        "observations": gym.spaces.Box(-5.0, 5.0, (num_candidates + 1, token_dim), np.float32),
        "action_mask": gym.spaces.Box(0.0, 1.0, (num_actions,), np.float32),
    })
    return observation_space, gym.spaces.Discrete(num_actions)


class EpisodeStats(TypedDict):
    """What the episode has earned and spent so far; `info` reports it after every step."""

    utility: float
    tool_cost: float
    tool_calls: int
    tool_failures: int
    invalid_actions: int
    calls_by_tool: dict[str, int]


class GiftRecommendationEnv(gym.Env):
    """Recommend gifts to one user per episode, calling tools to learn about the candidates."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: dict | None = None):
        self.config = GiftEnvConfig(**dict(config or {}))
        data, self.items = load_env_data(self.config)
        self.catalog = data.catalog
        self.users = data.split(self.config.split).to_dict("records")
        # RLlib passes an EnvContext: give every env runner and vector slot its own stream.
        self._stream = [self.config.seed, getattr(config, "worker_index", 0), getattr(config, "vector_index", 0)]
        self._rng = np.random.default_rng(self._stream)
        self._tool_rng = np.random.default_rng([*self._stream, 1])
        self._noise_rng = np.random.default_rng([*self._stream, 2])
        self.tools = resolve_gift_tools(self.config.tools)
        self.tool_names = tuple(t.name for t in self.tools)
        self.layout = TokenLayout.of_env(self.config)
        self.actions = action_layout(self.config)
        self.first_item = self.actions.num_global_actions
        self.match_floor = HIDDEN_MATCH_FLOOR if self.config.hidden_preferences else MATCH_FLOOR
        self.registry = ToolRegistry(timeout_s=self.config.tool_timeout_s)
        for gift_tool in self.tools:
            # All tools fail from one generator (reseeded in place by reset). No result cache
            # inside the env: episodes stay independent and replayable by seed.
            built = unreliable(gift_tool.build(self.catalog), self.config.tool_failure_rate, self._tool_rng)
            self.registry.register(dataclasses.replace(built, name=gift_tool.name, cacheable=False))
        self.observation_space, self.action_space = gift_spaces(
            self.config.num_candidates, self.layout.token_dim, self.first_item, self.actions.actions_per_item)

    # ----------------------------------------------------------------- episode
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            # Reseed in place: the gift tools hold a reference to the tool generator.
            self._rng.bit_generator.state = np.random.default_rng([seed, *self._stream[1:]]).bit_generator.state
            self._tool_rng.bit_generator.state = np.random.default_rng([seed, *self._stream[1:], 1]).bit_generator.state
            self._noise_rng = np.random.default_rng([seed, *self._stream[1:], 2])
        options = options or {}
        if "user" in options:
            self.user = served_user(options["user"])
        else:
            index = options.get("user_index")
            if index is None:
                index = int(self._rng.integers(len(self.users)))
            self.user = self.users[int(index) % len(self.users)]
            if self.config.hidden_preferences:
                self.user = with_hidden_preferences(self.user, self.config.data_seed)
        if options.get("item_ids") is not None:
            if not self.config.max_recommendations <= len(options["item_ids"]) <= MAX_CANDIDATES:
                raise ValueError(f"item_ids: give {self.config.max_recommendations} to {MAX_CANDIDATES} items")
            self.candidate_items = self.items.take(self.items.positions(options["item_ids"]))
            self.utilities = gift_utility(self.user, self.candidate_items, self.match_floor)
        else:
            self.candidate_items, self.utilities = self._sample_candidates()
        # Guarded: a served user's candidates may hold no feasible item (the reward is then 0).
        self.best_total = max(float(np.sort(self.utilities)[::-1][: self.config.max_recommendations].sum()), 1e-9)
        self.match = interest_match(self.user, self.candidate_items)
        self.tokens = self._initial_tokens()
        self.answered = np.zeros((len(self.candidate_items.ids), len(self.tools)), dtype=bool)  # [item, tool]
        self.recommended = np.zeros(len(self.candidate_items.ids), dtype=bool)
        self.steps = 0
        self.tool_log: list[tuple[dict[str, Any], ToolResult]] = []  # (arguments, result) per call
        self.stats: EpisodeStats = {"utility": 0.0, "tool_cost": 0.0, "tool_calls": 0, "tool_failures": 0,
                                    "invalid_actions": 0, "calls_by_tool": dict.fromkeys(self.tool_names, 0)}
        return self._observation(), self._info()

    def step(self, action: int):
        action = int(action)
        if not 0 <= action < self.num_actions:
            raise ValueError(f"action {action} is outside Discrete({self.num_actions})")
        self.steps += 1
        reward, done = 0.0, False
        if not self.action_mask()[action]:
            # Masked actions come from samplers that ignore the mask (e.g. random exploration):
            # a wasted step that costs like a tool call and changes nothing else.
            self.stats["invalid_actions"] += 1
            reward = -self.config.tool_cost
        elif action == FINISH:
            done = True
        elif action < self.first_item:
            reward = self._call_tool(action - FIRST_TOOL)
        else:
            item, slot = divmod(action - self.first_item, self.actions.actions_per_item)
            if slot:
                reward = self._call_tool(slot - 1, item)
            else:
                reward = self._recommend(item)
                done = int(self.recommended.sum()) >= self.config.max_recommendations
        truncated = not done and self.steps >= self.config.max_steps
        self._write_profile_token()
        return self._observation(), reward, done, truncated, self._info()

    @property
    def num_actions(self) -> int:
        """Finish, the tools and the actions of every candidate of this episode."""
        return self.actions.num_actions(len(self.recommended))

    @property
    def tool_done(self) -> np.ndarray:
        """Per tool, whether it has answered for every candidate."""
        return np.asarray(self.answered.all(axis=0))

    def tool_action(self, tool_index: int, item: int | None = None) -> int:
        """The action calling a tool (on candidate `item` with per-item tools, else on all)."""
        if item is None:
            return FIRST_TOOL + tool_index
        return self.first_item + item * self.actions.actions_per_item + 1 + tool_index

    def recommend_action(self, item: int) -> int:
        """The action recommending candidate `item`."""
        return self.first_item + item * self.actions.actions_per_item

    def action_mask(self) -> np.ndarray:
        """1 for allowed actions: finish, tools not yet answered while the budget lasts, items not
        yet recommended."""
        mask = np.ones(self.num_actions, dtype=np.float32)
        budget_left = self.config.tool_budget is None or self.stats["tool_calls"] < self.config.tool_budget
        per_item = mask[self.first_item:].reshape(len(self.recommended), self.actions.actions_per_item)
        per_item[:, 0] = ~self.recommended
        if self.config.per_item_tools:
            per_item[:, 1:] = ~self.answered & budget_left
        else:
            mask[FIRST_TOOL:self.first_item] = ~self.tool_done & budget_left
        return mask

    # ----------------------------------------------------------------- internals
    @property
    def candidates(self) -> pd.DataFrame:
        """The episode's candidate items as catalog rows, in observation order."""
        return self.catalog.loc[self.candidate_items.ids]

    def _sample_candidates(self) -> tuple[CatalogArrays, np.ndarray]:
        """K items priced around the budget, half from the user's interests, with M feasible ones."""
        k, m = self.config.num_candidates, self.config.max_recommendations
        items, budget = self.items, self.user["budget"]
        near_budget = np.flatnonzero((items.price >= 0.3 * budget) & (items.price <= 2.0 * budget))
        pool = near_budget if len(near_budget) >= 2 * k else np.arange(len(items.ids))
        interesting = items.ids[pool[interest_categories(self.user)[items.category[pool]]]]
        for _ in range(50):
            n_interest = min(len(interesting), k // 2)
            picks = list(self._rng.choice(interesting, size=n_interest, replace=False)) if n_interest else []
            taken = np.zeros(len(items.ids), dtype=bool)
            taken[items.positions(picks)] = True
            rest = np.sort(items.ids[pool[~taken[pool]]])  # the pool's other items, by id
            picks += list(self._rng.choice(rest, size=k - n_interest, replace=False))
            candidates = items.take(items.positions(self._rng.permutation(picks)))
            utilities = gift_utility(self.user, candidates, self.match_floor)
            if int((utilities > 0).sum()) >= m:
                return candidates, utilities
        raise RuntimeError(f"no candidate set with {m} feasible items for user {self.user['user_id']}")

    def _initial_tokens(self) -> np.ndarray:
        k, layout = len(self.candidate_items.ids), self.layout
        tokens = np.zeros((k + 1, layout.token_dim), dtype=np.float32)
        tokens[0, 0] = 1.0
        profile = tokens[0, 1:layout.candidate]
        profile[0] = np.log(self.user["budget"]) / np.log(300.0)
        profile[1] = self.user["age"] / 80.0
        profile[2 + OCCASIONS.index(self.user["occasion"])] = 1.0
        profile[2 + len(OCCASIONS) + RELATIONSHIPS.index(self.user["relationship"])] = 1.0
        rows = np.arange(1, k + 1)
        tokens[rows, layout.candidate + self.candidate_items.category] = 1.0
        match_slot = np.where(self.match == 1.0, 0, np.where(self.match == 0.5, 1, 2))
        tokens[rows, layout.candidate + len(CATEGORIES) + match_slot] = 1.0
        return tokens

    def _write_profile_token(self) -> None:
        layout = self.layout
        self.tokens[0, layout.tool_done:layout.tool_failed] = self.answered.mean(axis=0)
        if self.config.tool_budget is not None:  # the layout has a budget slot
            self.tokens[0, layout.budget_spent] = self.stats["tool_calls"] / self.config.tool_budget
        self.tokens[0, layout.candidate - 2] = self.recommended.sum() / self.config.max_recommendations
        self.tokens[0, layout.candidate - 1] = self.steps / self.config.max_steps

    def _call_tool(self, tool_index: int, item: int | None = None) -> float:
        """Call a tool on every candidate, or on candidate `item` only."""
        gift_tool = self.tools[tool_index]
        items = np.arange(len(self.recommended)) if item is None else np.array([item])
        item_ids = self.candidate_items.ids[items].tolist()
        arguments: dict[str, Any] = {"item_ids": item_ids, **gift_tool.arguments(self.user)}
        result = self.registry.call(gift_tool.name, arguments)
        self.tool_log.append((arguments, result))
        self.stats["tool_calls"] += 1
        self.stats["calls_by_tool"][gift_tool.name] += 1
        self.stats["tool_cost"] += self.config.tool_cost
        self.tokens[0, self.layout.tool_failed + tool_index] = 0.0 if result.ok else 1.0
        if result.ok:
            self.answered[items, tool_index] = True
            self._encode_tool_result(tool_index, items, result.output)
        else:
            self.stats["tool_failures"] += 1
        return -self.config.tool_cost

    def _encode_tool_result(self, tool_index: int, items: np.ndarray, output: dict) -> None:
        """Write a tool's per-item output into the tokens of the candidates it was asked about
        (as reviews and trends tell this user, and blurred by the tools' noise, if any)."""
        gift_tool, layout = self.tools[tool_index], self.layout
        for i in items.tolist():
            token = self.tokens[1 + i]
            token[layout.revealed + tool_index] = 1.0
            values = gift_tool.encode(output[int(self.candidate_items.ids[i])], self.user)
            if self.config.hidden_preferences:
                values = peer_view(values, self.user)
            if self.config.tool_noise:
                values = noisy(values, self.config.tool_noise, self._noise_rng)
            for field, value in values.items():
                token[layout.value(field)] = value

    def known(self, field: str) -> np.ndarray:
        """What the agent knows of one field for every candidate (0 where not revealed, and for a
        field none of the environment's tools writes)."""
        if field not in self.layout.fields:
            return np.zeros(len(self.recommended), dtype=np.float32)
        return self.tokens[1:, self.layout.value(field)].copy()

    def _recommend(self, index: int) -> float:
        self.recommended[index] = True
        self.tokens[1 + index, -1] = 1.0
        gain = float(self.utilities[index]) / self.best_total
        self.stats["utility"] += gain
        return gain

    def _observation(self) -> dict[str, np.ndarray]:
        return {"observations": self.tokens.copy(), "action_mask": self.action_mask()}

    def _info(self) -> dict[str, Any]:
        return {
            "utility": self.stats["utility"],
            "tool_cost": self.stats["tool_cost"],
            "tool_calls": self.stats["tool_calls"],
            "tool_failures": self.stats["tool_failures"],
            "invalid_actions": self.stats["invalid_actions"],
            "calls_by_tool": dict(self.stats["calls_by_tool"]),
            "recommended": int(self.recommended.sum()),
        }

    def close(self) -> None:
        self.registry.close()


GIFT_ENV_ID = "recursa/GiftRecommendation-v0"
if GIFT_ENV_ID not in gym.registry:
    gym.register(id=GIFT_ENV_ID, entry_point=GiftRecommendationEnv)
