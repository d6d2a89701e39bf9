"""Function calling as a one-step RL environment, rewarded by executing the calls.

An episode is one example: the observation is the example's slot sequence (padded to fixed
sizes, see `recursa.fc.features`); the action is every choice the supervised model's decoding
makes, as one flat MultiDiscrete vector laid out by `ActionLayout`: the pointer (no call or the
function called first), the calls of every function, and per (parameter, call index) its mode,
its enum value, the B/I/O tag of every query token and a shortlist of fallback tokens.
`recursa.fc.decode.calls_from_choices` turns it into calls exactly as it turns the model's argmax
choices into calls, so the greedy policy decodes like the supervised model. Modes that choices
cannot express (generated text) are masked out of the observation. The reward is 0.5 for passing
BFCL's AST rules plus 0.5 times the execution reward; each example's gold calls run once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from recursa.fc.ast_reward import score_example
from recursa.fc.data.generator import generate_examples
from recursa.fc.data.schema import FCExample
from recursa.fc.decode import FALLBACK_CANDIDATES, CallChoices, calls_from_choices, choosable_modes
from recursa.fc.execution_reward import ExecutionScorer
from recursa.fc.features import MODES, SLOT_FIELDS, FCLimits, Features, Featurizer
from recursa.fc.tokenizer import load_tokenizer


def slot_count(limits: FCLimits) -> int:
    """Slots in a padded sequence: CLS, query tokens, functions, parameters, enum values."""
    return 1 + limits.max_query_tokens + limits.max_functions + limits.max_params + limits.max_enum_values


@dataclass(frozen=True)
class Block:
    """Part of the flat action: `shape` choices among `categories`; with `picks` > 1 each choice is
    a ranked shortlist of that many distinct categories."""

    name: str
    shape: tuple[int, ...]
    categories: int
    picks: int = 1

    @property
    def action_shape(self) -> tuple[int, ...]:
        return self.shape + ((self.picks,) if self.picks > 1 else ())


@dataclass(frozen=True)
class ActionLayout:
    """The flat action's blocks, in order; their names are the fields of `CallChoices`."""

    blocks: tuple[Block, ...]

    @classmethod
    def for_limits(cls, limits: FCLimits) -> ActionLayout:
        """Pointer, counts, then per (parameter, call index): mode, enum value, tags, fallback."""
        f, p, k, lq = limits.max_functions, limits.max_params, limits.max_calls, limits.max_query_tokens
        return cls((
            Block("pointer", (), 1 + f),
            Block("counts", (f,), k + 1),
            Block("modes", (p, k), len(MODES)),
            Block("enum", (p, k), limits.max_enum_values),
            Block("tags", (p, k, lq), 3),
            Block("fallback", (p, k), lq, FALLBACK_CANDIDATES),
        ))

    def block(self, name: str) -> Block:
        """The block called `name`."""
        return next(b for b in self.blocks if b.name == name)

    def sizes(self) -> list[int]:
        """MultiDiscrete sizes: every entry of every block, in order."""
        return [b.categories for b in self.blocks for _ in range(math.prod(b.action_shape))]

    def split(self, action):
        """A flat action [..., n] (numpy or torch) as {block name: [..., *action_shape]}."""
        parts, start = {}, 0
        for b in self.blocks:
            size = math.prod(b.action_shape)
            parts[b.name] = action[..., start:start + size].reshape(tuple(action.shape[:-1]) + b.action_shape)
            start += size
        return parts


def observation_space(limits: FCLimits) -> gym.spaces.Dict:
    """Fixed-size arrays for one example."""
    s, big = slot_count(limits), np.iinfo(np.int32).max

    def ints(*shape: int) -> gym.spaces.Box:
        return gym.spaces.Box(0, big, shape, np.int64)

    def flags(*shape: int) -> gym.spaces.Box:
        return gym.spaces.Box(0, 1, shape, np.int64)

    return gym.spaces.Dict({
        "name_pieces": ints(s, limits.max_name_pieces), "desc_pieces": ints(s, limits.max_desc_pieces),
        **{name: ints(s) for name in SLOT_FIELDS[2:]},
        "slot_mask": flags(s), "query_mask": flags(limits.max_query_tokens),
        "function_slots": ints(limits.max_functions), "function_mask": flags(limits.max_functions),
        "param_slots": ints(limits.max_params), "param_mask": flags(limits.max_params),
        "enum_slots": ints(limits.max_enum_values), "enum_owner": ints(limits.max_enum_values),
        "mode_allowed": flags(limits.max_params, len(MODES)),
    })


def encode_observation(features: Features, limits: FCLimits) -> dict[str, np.ndarray]:
    """One example's slots padded to the fixed sizes of `observation_space` (enum owner is p + 1);
    only modes that choices can express are allowed."""
    s = slot_count(limits)
    out: dict[str, np.ndarray] = {}
    for name in SLOT_FIELDS:
        value = getattr(features, name)
        padded = np.zeros((s, *value.shape[1:]), dtype=np.int64)
        padded[: len(value)] = value
        out[name] = padded

    def pad(values: np.ndarray, size: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        padded = np.zeros((size, *shape), dtype=np.int64)
        padded[: len(values)] = values
        return padded

    def mask(count: int, size: int) -> np.ndarray:
        return (np.arange(size) < count).astype(np.int64)

    out["slot_mask"] = mask(len(features.role), s)
    out["query_mask"] = mask(features.num_query, limits.max_query_tokens)
    out["function_slots"] = pad(features.function_slots, limits.max_functions)
    out["function_mask"] = mask(len(features.function_slots), limits.max_functions)
    out["param_slots"] = pad(features.param_slots, limits.max_params)
    out["param_mask"] = mask(len(features.param_slots), limits.max_params)
    out["enum_slots"] = pad(features.enum_slots, limits.max_enum_values)
    out["enum_owner"] = pad(features.enum_param + 1, limits.max_enum_values)
    allowed = features.mode_allowed & choosable_modes()
    out["mode_allowed"] = pad(allowed.astype(np.int64), limits.max_params, (len(MODES),))
    return out


class FunctionCallingEnv(gym.Env):
    """One generated example per episode; reward = 0.5 AST validity + 0.5 execution reward."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: dict | None = None):
        # RLlib passes an EnvContext: every env runner and vector slot samples its own examples.
        stream = [getattr(config, "worker_index", 0), getattr(config, "vector_index", 0)]
        config = dict(config or {})
        self.limits = FCLimits()
        self.featurizer = Featurizer(load_tokenizer(config["tokenizer_dir"]), self.limits)
        seed = int(config.get("seed", 0))
        self.examples: list[FCExample] = generate_examples(int(config.get("examples", 2000)), seed=seed)
        self._rng = np.random.default_rng([seed, *stream])
        self.observation_space = observation_space(self.limits)
        self.layout = ActionLayout.for_limits(self.limits)
        self.action_space = gym.spaces.MultiDiscrete(self.layout.sizes())
        self._scorers: dict[int, ExecutionScorer] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        index = (options or {}).get("index")
        self.index = int(self._rng.integers(len(self.examples))) if index is None else int(index)
        self.example = self.examples[self.index]
        self.features = self.featurizer.encode(self.example, with_targets=False)
        self.observation = encode_observation(self.features, self.limits)
        return self.observation, {"id": self.example.id}

    def step(self, action):
        calls = calls_from_choices(CallChoices(**self.layout.split(np.asarray(action))), self.features)
        ast = score_example(calls, self.example).valid
        executed = self._scorer().reward(calls)
        reward = 0.5 * float(ast) + 0.5 * executed
        return self.observation, reward, True, False, {"ast": float(ast), "execution": executed}

    def _scorer(self) -> ExecutionScorer:
        """The current example's execution scorer, built on its first episode."""
        if self.index not in self._scorers:
            self._scorers[self.index] = ExecutionScorer(self.example)
        return self._scorers[self.index]
