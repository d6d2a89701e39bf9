"""The gift product's configs: environment, TRM policy, PPO, BC, PBT and the recommender's Serve args."""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recursa.core.config import (
    RunnerSettings,
    SearchRange,
    StrictModel,
    TrialScheduling,
    included_config,
    positive_choices,
)
from recursa.core.hardware import HardwareProfile, fill_unset
from recursa.core.trm import TRMConfig
from recursa.gift.tools import GIFT_TOOL_NAMES
from recursa.gift.toolset import resolve_gift_tools
from recursa.serving.config import ServeBatching

# How the policy's TRM recursion meets the environment's steps (gift.module).
Recursion = Literal["per_step", "across_steps"]

# The candidate counts a policy acts on, whatever K it was trained with (the candidates are a set).
MIN_CANDIDATES, MAX_CANDIDATES = 4, 32


class GiftEnvConfig(StrictModel):
    """The gift recommendation environment."""

    data_dir: str | None = None  # read Parquet from here instead of generating from data_seed
    num_items: int = Field(600, ge=50)
    num_users: int = Field(2000, ge=20)
    data_seed: int = 0
    split: Literal["train", "test"] = "train"
    num_candidates: int = Field(8, ge=MIN_CANDIDATES, le=MAX_CANDIDATES)
    max_recommendations: int = Field(3, ge=1)
    max_steps: int = Field(12, ge=1)
    tool_cost: float = Field(0.015, ge=0.0, le=1.0)
    tool_failure_rate: float = Field(0.02, ge=0.0, le=1.0)
    tool_timeout_s: float = Field(2.0, gt=0.0)
    # The agent's tools: built-in names or import paths of GiftTools ("package.module:NAME").
    tools: list[str] = Field(default_factory=lambda: list(GIFT_TOOL_NAMES), min_length=1)
    seed: int = 0
    # The hard preset's options (gift.focus), all off by default. per_item_tools: each call asks one
    # tool about one candidate ("focus on item i") instead of about all of them.
    per_item_tools: bool = False
    tool_budget: int | None = Field(None, ge=1)  # at most this many tool calls per episode
    tool_noise: float = Field(0.0, ge=0.0, le=1.0)  # std of Gaussian noise on revealed numbers
    # Preferences drawn apart from the profile, weighing more in the utility, and shown only by
    # what reviews and trends say about each item (see gift.focus).
    hidden_preferences: bool = False

    @field_validator("tools")
    @classmethod
    def _tools_resolve(cls, tools: list[str]) -> list[str]:
        resolve_gift_tools(tools)
        return tools

    @model_validator(mode="after")
    def _recommendations_fit(self) -> GiftEnvConfig:
        if self.max_recommendations > self.num_candidates:
            raise ValueError("max_recommendations must not exceed num_candidates")
        return self


# RLlib's schedule format: [[env_steps, value], ...], interpolated linearly between the points.
Schedule = list[tuple[NonNegativeInt, NonNegativeFloat]]


class PPOSettings(StrictModel):
    """PPO hyperparameters (RLlib new API stack names)."""

    lr: float = Field(5e-4, gt=0.0)
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    clip_param: float = Field(0.2, gt=0.0)
    entropy_coeff: NonNegativeFloat | Schedule = 0.01
    vf_loss_coeff: float = Field(0.5, ge=0.0)
    grad_clip: float = Field(0.5, gt=0.0)
    train_batch_size: int = Field(2000, ge=32)
    minibatch_size: int = Field(250, ge=8)
    num_epochs: int = Field(4, ge=1)
    # Keep the policy's entropy under this target (gift.ppo_learner; None: off), adapting an entropy
    # penalty's weight by `entropy_target_rate` per iteration and unit of entropy over the target.
    entropy_target: NonNegativeFloat | Schedule | None = None
    entropy_target_rate: float = Field(0.2, gt=0.0)
    # KL(reference || policy) after the warm start (gift.ppo_learner), its weight decaying linearly to
    # 0 by `bc_kl_until` env steps (0: off). The reference is the BC policy, or with `bc_kl_ema` a
    # moving average of the policy's weights starting there. Both hold the clone's tool use
    # (held-out 0.945-0.949 of the oracle; bench/gift_rl_after_bc.py), so they are off by default.
    bc_kl_coeff: float = Field(0.0, ge=0.0)
    bc_kl_until: int = Field(160_000, ge=1)
    bc_kl_ema: float = Field(0.0, ge=0.0, le=1.0)


class BCSettings(StrictModel):
    """Behaviour-cloning warm start from expert episodes, before PPO."""

    enabled: bool = True
    episodes: int = Field(3000, ge=10)
    epochs: int = Field(6, ge=1)
    lr: float = Field(2e-3, gt=0.0)
    batch_size: int = Field(256, ge=8)
    # Episodes of the cloned policy, sampled, whose returns the value head is refitted to before PPO
    # (0: keep the value fitted on the expert's returns).
    value_warmup_episodes: int = Field(0, ge=0)


class EvalSettings(StrictModel):
    """Held-out evaluation: of the final policy, and of the greedy policy every `every` PPO
    iterations during training (on the first `users_during_training` users; off when unset)."""

    users: int = Field(400, ge=1)
    seed: int = 1234
    every: int | None = Field(None, ge=1)
    users_during_training: int = Field(100, ge=1)


class HaltingSettings(StrictModel):
    """The Q head's fit after training (gift.halting) and the threshold evaluation and serving use."""

    episodes: int = Field(300, ge=1)  # greedy episodes on training users whose observations it fits on
    # Stop once sigmoid(q) reaches this; 0.6 kept 99.5% of the quickstart's reward with 34% fewer cycles.
    threshold: float = Field(0.6, gt=0.0, lt=1.0)


class WandbSettings(StrictModel):
    """Weights & Biases logging through Ray's integration (`ray.air.integrations.wandb`), off unless
    `project` is set; needs `pip install wandb`, and `wandb login` (or WANDB_API_KEY) unless the
    environment sets WANDB_MODE=offline."""

    project: str | None = None
    group: str | None = None

    @field_validator("project")
    @classmethod
    def _wandb_installed(cls, project: str | None) -> str | None:
        if project is not None and importlib.util.find_spec("wandb") is None:
            raise ValueError("W&B logging needs the wandb package: pip install wandb")
        return project


class TrainGiftConfig(StrictModel):
    """`recursa train gift`: PPO on the gift environment with a TRM policy."""

    name: str = "gift_ppo"
    runs_dir: str = "runs"
    iterations: int = Field(30, ge=1)
    time_budget_s: float | None = Field(None, gt=0.0)  # stop PPO early when exceeded
    checkpoint_every: int = Field(5, ge=1)
    seed: int = 0
    env: GiftEnvConfig = GiftEnvConfig()
    model: TRMConfig = TRMConfig()  # the policy's trunk; its sequence is the observation's tokens
    # per_step: every step recurses model.T cycles from the learned start; across_steps: (y, z) is the
    # policy's recurrent state and each step runs model.T cycles from the last step's (gift.module).
    recursion: Recursion = "per_step"
    ppo: PPOSettings = PPOSettings()
    bc: BCSettings = BCSettings()
    runners: RunnerSettings = RunnerSettings()
    eval: EvalSettings = EvalSettings()
    halting: HaltingSettings = HaltingSettings()
    wandb: WandbSettings = WandbSettings()

    @field_validator("model")
    @classmethod
    def _attention_over_candidates(cls, model: TRMConfig) -> TRMConfig:
        if model.mixer != "attention":
            raise ValueError("mixer must be attention for the gift policy: its candidates are a set of any size")
        return model

    @model_validator(mode="after")
    def _minibatch_fits(self) -> TrainGiftConfig:
        if self.ppo.minibatch_size > self.ppo.train_batch_size:
            raise ValueError("ppo.minibatch_size must not exceed ppo.train_batch_size")
        return self

    def profile_update(self, profile: HardwareProfile) -> dict[str, BaseModel]:
        """Env runners and, unless the YAML set either, the PPO batch sizes (they are a pair)."""
        update: dict[str, BaseModel] = {"runners": fill_unset(
            self.runners, num_env_runners=profile.env_runners, num_envs_per_env_runner=profile.envs_per_env_runner,
            num_cpus_per_env_runner=profile.cpus_per_env_runner)}
        if not {"train_batch_size", "minibatch_size"} & self.ppo.model_fields_set:
            update["ppo"] = fill_unset(self.ppo, train_batch_size=profile.train_batch_size,
                                       minibatch_size=profile.minibatch_size)
        return update


class RecommenderServeArgs(StrictModel):
    """`args` of the gift recommender application in a Serve config (serve/gift.yaml)."""

    export_dir: str  # what `recursa export trm` wrote for a gift policy
    precision: Literal["fp32", "int8"] = "int8"
    # Stop recursion once the Q head says the answer settled: None for the policy's own threshold, 0 for off.
    halting_threshold: float | None = Field(None, ge=0.0, lt=1.0)
    model_name: str = "gift-trm"
    api_key: str | None = None  # else the RECURSA_API_KEY environment variable, else no key
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    batching: ServeBatching = ServeBatching()


class TrialResources(StrictModel):
    """What each PPO trial's driver and learner take from the cluster (its env runners come on top)."""

    cpus: float = Field(1.0, gt=0.0)
    gpus: float = Field(0.0, ge=0.0)  # for the learner; asking for GPUs on a cluster without them is an error


class PBTSettings(StrictModel):
    """Population-based training: how often the population exploits and explores.

    Trials checkpoint every `perturbation_interval` iterations, the checkpoints PBT clones from; each
    keeps its last `keep_checkpoints`, so a donor that runs ahead still has the one being cloned.
    """

    population: int = Field(4, ge=2)
    perturbation_interval: int = Field(4, ge=1)  # training iterations between perturbations
    quantile_fraction: float = Field(0.25, gt=0.0, le=0.5)
    resample_probability: float = Field(0.25, ge=0.0, le=1.0)
    keep_checkpoints: int = Field(5, ge=3)


class PPOSearchSpace(StrictModel):
    """Where PBT samples and perturbs PPO's hyperparameters; the TRM depth (T, n) is chosen per trial."""

    lr: SearchRange = SearchRange(low=1e-4, high=2e-3, log=True)
    entropy_coeff: SearchRange = SearchRange(low=0.0, high=0.03)
    clip_param: SearchRange = SearchRange(low=0.1, high=0.3)
    gamma: SearchRange = SearchRange(low=0.95, high=0.999)
    gae_lambda: SearchRange = SearchRange(low=0.9, high=1.0)
    T: list[int] = [1, 2, 3]
    n: list[int] = [1, 2, 3]

    _check_choices = field_validator("T", "n")(positive_choices)


class TuneGiftConfig(StrictModel):
    """`recursa tune gift`: PBT over PPO hyperparameters and TRM depth, every trial starting from `base`.

    `base` is a `recursa train gift` config, inline or the path of its YAML (relative to this one); it
    runs under this search's name and directory, and `env_steps_per_trial` replaces its iterations.
    """

    name: str = "gift_pbt"
    runs_dir: str = "runs"
    seed: int = 0  # the search's sampling; each trial trains with base.seed
    base: TrainGiftConfig = TrainGiftConfig(runners=RunnerSettings(num_env_runners=0))
    env_steps_per_trial: int = Field(40_000, ge=100)  # every trial and the default run stop here
    compare_default: bool = True  # also train the base config alone to the same budget
    pbt: PBTSettings = PBTSettings()
    search: PPOSearchSpace = PPOSearchSpace()
    resources: TrialResources = TrialResources()
    trials: TrialScheduling = TrialScheduling()

    @field_validator("base", mode="before")
    @classmethod
    def _base_from_file(cls, value: Any, info: ValidationInfo) -> Any:
        return included_config(value, TrainGiftConfig, info)

    def train_config(self) -> TrainGiftConfig:
        """The base training config, under this search's name and run directory."""
        return self.base.model_copy(update={"name": self.name, "runs_dir": self.runs_dir})
