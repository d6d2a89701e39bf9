"""Function calling as a one-step RL environment, rewarded by executing the call.

An episode is one example: the observation is the example's slot sequence (padded to fixed
sizes, see `recursa.fc.features`), the action is the whole decision as a MultiDiscrete vector:
which function (or none), then for every parameter slot its mode, the first and last query
token of its copied span, and its enum value. The env builds the call from the action and pays
0.5 for passing BFCL's AST rules plus 0.5 times the execution reward.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from recursa.data.fc.generator import generate_examples
from recursa.data.fc.schema import FCExample, FunctionCall
from recursa.fc.decode import copy_type, set_path, whole_words
from recursa.fc.features import (ENUM, FALSE, GENERATE, MODES, SLOT_FIELDS, SPAN, TRUE, FCLimits, Featurizer,
                                 Features)
from recursa.fc.values import convert
from recursa.models.tokenizer import load_tokenizer
from recursa.rewards.fc_ast import score_example
from recursa.rewards.fc_execution import execution_reward



def slot_count(limits: FCLimits) -> int:
    """Slots in a padded sequence: CLS, query tokens, functions, parameters, enum values."""
    return 1 + limits.max_query_tokens + limits.max_functions + limits.max_params + limits.max_enum_values


def action_sizes(limits: FCLimits) -> list[int]:
    """MultiDiscrete sizes: function choice, then per parameter: mode, span start, span end, enum."""
    p, lq = limits.max_params, limits.max_query_tokens
    return [1 + limits.max_functions] + [len(MODES)] * p + [lq] * p + [lq] * p + [limits.max_enum_values] * p


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
    """One example's slots padded to the fixed sizes of `observation_space` (enum owner is p + 1)."""
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
    out["mode_allowed"] = pad(features.mode_allowed.astype(np.int64), limits.max_params, (len(MODES),))
    out["mode_allowed"][:, GENERATE] = 0  # the action carries no generated text
    return out


def call_from_action(action: np.ndarray, features: Features, limits: FCLimits) -> list[FunctionCall]:
    """The call an action describes (no call for choice 0 or an out-of-range function)."""
    p_max, lq = limits.max_params, limits.max_query_tokens
    choice = int(action[0])
    if choice == 0 or choice > len(features.functions):
        return []
    modes, starts, ends, enums = (action[1 + i * p_max: 1 + (i + 1) * p_max] for i in range(4))
    arguments: dict[str, Any] = {}
    for p, param in enumerate(features.params):
        if param.function != choice - 1:
            continue
        value = _value(int(modes[p]), int(starts[p]), int(ends[p]), int(enums[p]), p, features)
        if value is not None:
            set_path(arguments, param.path, value)
    return [FunctionCall(name=features.functions[choice - 1].name, arguments=arguments)]


def _value(mode: int, start: int, end: int, enum: int, p: int, features: Features) -> Any:
    if mode == TRUE:
        return True
    if mode == FALSE:
        return False
    if mode == ENUM:
        owned = enum < len(features.enum_values) and features.enum_param[enum] == p
        return features.enum_values[enum] if owned else None
    if mode == SPAN and start < features.num_query:
        end = min(max(start, end), features.num_query - 1)
        a, b = whole_words(features.query, features.query_offsets[start][0], features.query_offsets[end][1])
        spec = features.params[p].spec
        value = convert(features.query[a:b], copy_type(spec))
        return [value] if spec.type == "array" and value is not None else value
    return None


class FunctionCallingEnv(gym.Env):
    """One generated example per episode; reward = 0.5 AST validity + 0.5 execution reward."""

    metadata = {"render_modes": []}

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
        self.action_space = gym.spaces.MultiDiscrete(action_sizes(self.limits))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        index = (options or {}).get("index")
        self.example = self.examples[int(self._rng.integers(len(self.examples))) if index is None else index]
        self.features = self.featurizer.encode(self.example, with_targets=False)
        self.observation = encode_observation(self.features, self.limits)
        return self.observation, {"id": self.example.id}

    def step(self, action):
        calls = call_from_action(np.asarray(action), self.features, self.limits)
        ast = score_example(calls, self.example).valid
        executed = execution_reward(calls, self.example)
        reward = 0.5 * float(ast) + 0.5 * executed
        return self.observation, reward, True, False, {"ast": float(ast), "execution": executed}
