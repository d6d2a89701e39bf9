"""A trained gift policy as plain files: weights in safetensors, settings in JSON (no pickle).

RLlib's own checkpoints pickle their state; they are for resuming training. What evaluation,
export and serving load is this directory: `policy.safetensors` and `policy.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from recursa.core.artifact import write_artifact
from recursa.gift.config import GiftEnvConfig
from recursa.gift.env import TOKEN_DIM, gift_spaces
from recursa.gift.module import TRMPolicyModule

WEIGHTS = "policy.safetensors"
SETTINGS = "policy.json"


def save_policy(module: TRMPolicyModule, env_config: GiftEnvConfig, out_dir: str | Path,
                halting_threshold: float | None = None) -> Path:
    """Write the module's weights and what is needed to rebuild it; return the directory.
    `halting_threshold`: where its fitted Q head stops recursion (gift.halting), if it has one."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.detach().contiguous() for name, tensor in module.state_dict().items()}, out / WEIGHTS)
    trm = module.trm_config.model_dump(exclude={"seq_len"})
    settings = {
        "module": type(module).__name__,
        "model_config": {**trm, "num_global_actions": module.num_global_actions,
                         "actions_per_item": module.actions_per_item, "recursion": module.recursion},
        "token_dim": module.token_dim,
        "halting_threshold": halting_threshold,
        "env": env_config.model_dump(mode="json"),
    }
    (out / SETTINGS).write_text(json.dumps(settings, indent=2))
    write_artifact(out, "gift-policy", "recursa.gift.policy_io.save_policy")
    return out


def is_policy_dir(path: str | Path) -> bool:
    """Whether `path` holds a saved policy."""
    return (Path(path) / WEIGHTS).is_file() and (Path(path) / SETTINGS).is_file()


def load_policy(path: str | Path) -> tuple[TRMPolicyModule, GiftEnvConfig]:
    """Rebuild a saved policy (in eval mode) and the env config it was trained on."""
    path = Path(path)
    settings = json.loads((path / SETTINGS).read_text())
    env_config = GiftEnvConfig(**settings["env"])
    model_config = settings["model_config"]
    observation_space, action_space = gift_spaces(env_config.num_candidates, settings.get("token_dim", TOKEN_DIM),
                                                  model_config["num_global_actions"],
                                                  model_config.get("actions_per_item", 1))
    module = TRMPolicyModule(
        observation_space=observation_space, action_space=action_space, model_config=model_config
    )
    module.load_state_dict(load_file(path / WEIGHTS))
    module.eval()
    return module, env_config


def saved_halting_threshold(path: str | Path) -> float | None:
    """The threshold a saved policy's fitted Q head stops recursion at, if it has one."""
    return json.loads((Path(path) / SETTINGS).read_text()).get("halting_threshold")
