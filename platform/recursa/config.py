"""Pydantic models for every YAML config, and the one loader.

Every knob has a default that works on a 2-core laptop. Unknown keys are errors. A bad value
raises `ConfigError` whose message is one line naming the field; the CLI exits 2 with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator


class ConfigError(ValueError):
    """A config (or a path it names) is invalid; the message names the field."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GiftEnvConfig(StrictModel):
    """The gift recommendation environment."""

    data_dir: str | None = None  # read Parquet from here instead of generating from data_seed
    num_items: int = Field(600, ge=50)
    num_users: int = Field(2000, ge=20)
    data_seed: int = 0
    split: Literal["train", "test"] = "train"
    num_candidates: int = Field(8, ge=2, le=32)
    max_recommendations: int = Field(3, ge=1)
    max_steps: int = Field(12, ge=1)
    tool_cost: float = Field(0.015, ge=0.0, le=1.0)
    tool_failure_rate: float = Field(0.02, ge=0.0, le=1.0)
    tool_timeout_s: float = Field(2.0, gt=0.0)
    seed: int = 0

    @model_validator(mode="after")
    def _recommendations_fit(self) -> "GiftEnvConfig":
        if self.max_recommendations > self.num_candidates:
            raise ValueError("max_recommendations must not exceed num_candidates")
        return self


class TRMPolicyConfig(StrictModel):
    """The TRM used as a policy: a small trunk, fixed recursion depth."""

    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    mixer: Literal["attention", "mlp"] = "attention"
    T: int = Field(2, ge=1)
    n: int = Field(2, ge=1)


class PPOSettings(StrictModel):
    """PPO hyperparameters (RLlib new API stack names)."""

    lr: float = Field(5e-4, gt=0.0)
    gamma: float = Field(0.99, gt=0.0, le=1.0)
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0)
    clip_param: float = Field(0.2, gt=0.0)
    entropy_coeff: float = Field(0.01, ge=0.0)
    vf_loss_coeff: float = Field(0.5, ge=0.0)
    grad_clip: float = Field(0.5, gt=0.0)
    train_batch_size: int = Field(2000, ge=32)
    minibatch_size: int = Field(250, ge=8)
    num_epochs: int = Field(4, ge=1)


class BCSettings(StrictModel):
    """Behaviour-cloning warm start from expert episodes, before PPO."""

    enabled: bool = True
    episodes: int = Field(3000, ge=10)
    epochs: int = Field(6, ge=1)
    lr: float = Field(2e-3, gt=0.0)
    batch_size: int = Field(256, ge=8)


class RunnerSettings(StrictModel):
    """How rollouts are spread over RLlib env runners."""

    num_env_runners: int = Field(2, ge=0)
    num_envs_per_env_runner: int = Field(4, ge=1)
    num_cpus_per_env_runner: float = Field(0.5, gt=0.0)


class EvalSettings(StrictModel):
    """Held-out evaluation."""

    users: int = Field(400, ge=1)
    seed: int = 1234


class TrainGiftConfig(StrictModel):
    """`recursa train gift`: PPO on the gift environment with a TRM policy."""

    name: str = "gift_ppo"
    runs_dir: str = "runs"
    iterations: int = Field(30, ge=1)
    time_budget_s: float | None = Field(None, gt=0.0)  # stop PPO early when exceeded
    checkpoint_every: int = Field(5, ge=1)
    seed: int = 0
    env: GiftEnvConfig = GiftEnvConfig()
    model: TRMPolicyConfig = TRMPolicyConfig()
    ppo: PPOSettings = PPOSettings()
    bc: BCSettings = BCSettings()
    runners: RunnerSettings = RunnerSettings()
    eval: EvalSettings = EvalSettings()

    @model_validator(mode="after")
    def _minibatch_fits(self) -> "TrainGiftConfig":
        if self.ppo.minibatch_size > self.ppo.train_batch_size:
            raise ValueError("ppo.minibatch_size must not exceed ppo.train_batch_size")
        return self


class ServeBatching(StrictModel):
    """`@serve.batch` settings of a model deployment (max_batch_size 1 turns batching off)."""

    max_batch_size: int = Field(16, ge=1, le=256)
    batch_wait_timeout_s: float = Field(0.002, ge=0.0, le=1.0)


class RecommenderServeArgs(StrictModel):
    """`args` of the gift recommender application in a Serve config (serve/recsys.yaml)."""

    export_dir: str  # what `recursa export trm` wrote for a gift policy
    precision: Literal["fp32", "int8"] = "int8"
    model_name: str = "gift-trm"
    api_key: str | None = None  # else the RECURSA_API_KEY environment variable, else no key
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    batching: ServeBatching = ServeBatching()


class ToolCallerServeArgs(StrictModel):
    """`args` of the OpenAI-compatible tool caller application (serve/tool_caller.yaml)."""

    model_dir: str  # a tool-calling model directory, or `recursa export trm`'s int8 export of one
    precision: Literal["fp32", "int8"] = "fp32"
    model_name: str = "recursa-trm-fc"
    api_key: str | None = None
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    batching: ServeBatching = ServeBatching()


class LLMServeArgs(StrictModel):
    """`args` of the OpenAI-compatible LLM application (serve/llm.yaml): one base model per replica,
    LoRA adapters multiplexed on top of it, each served under its own model id."""

    model: str  # a merged model (`recursa export llm --format merged`) or the base the adapters were trained on
    model_name: str = "recursa-llm"  # the id the model itself is served under
    adapters: dict[str, str] = Field(default_factory=dict)  # served id -> adapter directory
    max_adapters_per_replica: int = Field(4, ge=1)  # `@serve.multiplexed` keeps this many loaded (LRU)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_new_tokens: int = Field(64, ge=1, le=4096)  # a request's `max_tokens`: its default and upper bound
    max_prompt_tokens: int | None = Field(None, ge=16)  # None: what the model's context leaves after max_new_tokens
    max_messages: int = Field(32, ge=1, le=64)  # at most the schema's cap (64)
    max_tools: int = Field(16, ge=1, le=16)  # at most the schema's cap (16)
    api_key: str | None = None  # else the RECURSA_API_KEY environment variable, else no key
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    batching: ServeBatching = ServeBatching(max_batch_size=8, batch_wait_timeout_s=0.01)

    @field_validator("adapters")
    @classmethod
    def _served_ids_are_distinct(cls, adapters: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if info.data.get("model_name") in adapters:
            raise ValueError(f"{info.data['model_name']!r} is already the model_name")
        return adapters


Model = TypeVar("Model", bound=BaseModel)


def describe_validation_error(error: ValidationError) -> str:
    """One line: the first failing field's dotted path and the reason."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "config"
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = "unknown key"
    return f"{field}: {reason}"


def parse_config(data: dict, model: type[Model]) -> Model:
    """Validate a mapping against a config model, raising ConfigError with one line."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def load_config(path: str | Path | None, model: type[Model]) -> Model:
    """Load and validate a YAML config; None gives the defaults."""
    if path is None:
        return model()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config: not valid YAML: {error}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError("config: top level must be a mapping")
    return parse_config(data, model)


def dump_config(config: BaseModel, path: str | Path) -> None:
    """Write a config as resolved (all defaults filled in) to YAML."""
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


class FCDataSettings(StrictModel):
    """Generated training and dev data for the tool-calling TRM."""

    train_examples: int = Field(100_000, ge=10)
    dev_examples: int = Field(2_000, ge=10)
    seed: int = 0
    train_path: str | None = None  # Parquet/JSONL of FCExamples instead of generating (xLAM, ms-swift, ...)


class TokenizerSettings(StrictModel):
    """SentencePiece trained on the training corpus, or characters (tests, tiny runs)."""

    kind: Literal["sentencepiece", "char"] = "sentencepiece"
    vocab_size: int = Field(8192, ge=64)


class FCModelSettings(StrictModel):
    """The TRM trunk of the tool caller; `preset` (tiny, small, base, large) overrides the sizes."""

    preset: Literal["tiny", "small", "base", "large"] | None = None
    hidden_size: int = Field(128, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    mixer: Literal["attention"] = "attention"  # slots vary in number; the mlp mixer needs fixed length
    T: int = Field(2, ge=1)
    n: int = Field(2, ge=1)


class FCTrainingSettings(StrictModel):
    """Optimisation: AdamW, warmup + cosine, clipping, deep supervision, EMA."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.1, ge=0.0)
    warmup_steps: int = Field(200, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0)
    grad_clip: float = Field(1.0, gt=0.0)
    n_sup: int = Field(2, ge=1)  # deep-supervision steps per batch
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)
    bf16: bool = False
    loss_tool: float = Field(1.0, ge=0.0)
    loss_q: float = Field(0.5, ge=0.0)
    loss_arguments: float = Field(2.0, ge=0.0)
    # Share of query pieces replaced by <unk> and of schema description pieces dropped, per batch:
    # teaches the model to copy and decide from context when a word is unknown.
    piece_dropout: float = Field(0.0, ge=0.0, lt=1.0)


class WorkerSettings(StrictModel):
    """Ray Train workers (DDP); GPUs when present and asked for."""

    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(2.0, gt=0.0)


class TrainFCConfig(StrictModel):
    """`recursa train fc`: supervised training of the tool-calling TRM on Ray Train."""

    name: str = "fc_small"
    runs_dir: str = "runs"
    seed: int = 0
    data: FCDataSettings = FCDataSettings()
    tokenizer: TokenizerSettings = TokenizerSettings()
    model: FCModelSettings = FCModelSettings()
    training: FCTrainingSettings = FCTrainingSettings()
    workers: WorkerSettings = WorkerSettings()


class SearchRange(StrictModel):
    """A hyperparameter sampled per trial: uniform in [low, high], log-uniform with `log: true`."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "SearchRange":
        if not self.low < self.high:
            raise ValueError("low must be below high")
        if self.log and self.low <= 0:
            raise ValueError("log: low must be positive")
        return self


class TrialResources(StrictModel):
    """What each PPO trial's driver and learner take from the cluster (its env runners come on top)."""

    cpus: float = Field(1.0, gt=0.0)
    gpus: float = Field(0.0, ge=0.0)  # for the learner; asking for GPUs on a cluster without them is an error


class TrialScheduling(StrictModel):
    """How Tune trials share the cluster and survive failures."""

    max_concurrent_trials: int | None = Field(None, ge=1)  # default: as many as the cluster fits
    max_failures: int = Field(2, ge=0)  # a failed trial restarts from its latest checkpoint this often


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


def _positive_choices(values: list[int]) -> list[int]:
    if not values or min(values) < 1:
        raise ValueError("give at least one positive integer")
    return values


class PPOSearchSpace(StrictModel):
    """Where PBT samples and perturbs PPO's hyperparameters; the TRM depth (T, n) is chosen per trial."""

    lr: SearchRange = SearchRange(low=1e-4, high=2e-3, log=True)
    entropy_coeff: SearchRange = SearchRange(low=0.0, high=0.03)
    clip_param: SearchRange = SearchRange(low=0.1, high=0.3)
    gamma: SearchRange = SearchRange(low=0.95, high=0.999)
    gae_lambda: SearchRange = SearchRange(low=0.9, high=1.0)
    T: list[int] = [1, 2, 3]
    n: list[int] = [1, 2, 3]

    _check_choices = field_validator("T", "n")(_positive_choices)


class TuneGiftConfig(StrictModel):
    """`recursa tune gift`: PBT over PPO hyperparameters and TRM depth; the base config is the default."""

    name: str = "gift_pbt"
    runs_dir: str = "runs"
    seed: int = 0
    env_steps_per_trial: int = Field(40_000, ge=100)  # every trial and the default run stop here
    compare_default: bool = True  # also train the base config alone to the same budget
    env: GiftEnvConfig = GiftEnvConfig()
    model: TRMPolicyConfig = TRMPolicyConfig()
    ppo: PPOSettings = PPOSettings()
    bc: BCSettings = BCSettings()
    runners: RunnerSettings = RunnerSettings(num_env_runners=0)
    eval: EvalSettings = EvalSettings()
    pbt: PBTSettings = PBTSettings()
    search: PPOSearchSpace = PPOSearchSpace()
    resources: TrialResources = TrialResources()
    trials: TrialScheduling = TrialScheduling()

    def train_config(self) -> TrainGiftConfig:
        """The base (default) training config every trial starts from."""
        return TrainGiftConfig(name=self.name, runs_dir=self.runs_dir, seed=self.seed, env=self.env,
                               model=self.model, ppo=self.ppo, bc=self.bc, runners=self.runners, eval=self.eval)


class ASHASettings(StrictModel):
    """Asynchronous successive halving over epochs: weak trials stop after `grace_period` epochs."""

    num_samples: int = Field(8, ge=1)
    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)
    metric: Literal["exact_match", "ast_accuracy", "function_accuracy", "execution_reward"] = "exact_match"


class FCSearchSpace(StrictModel):
    """Where ASHA samples the tool-calling TRM's size, learning rate, depth and supervision steps."""

    hidden_size: list[int] = [64, 128]
    lr: SearchRange = SearchRange(low=3e-4, high=3e-3, log=True)
    T: list[int] = [1, 2, 3]
    n: list[int] = [1, 2, 3]
    n_sup: list[int] = [1, 2, 4]

    _check_choices = field_validator("hidden_size", "T", "n", "n_sup")(_positive_choices)


class TuneFCConfig(StrictModel):
    """`recursa tune fc`: ASHA over the tool-calling TRM, each trial a Ray Train run of the base config."""

    name: str = "fc_asha"
    runs_dir: str = "runs"
    seed: int = 0
    data: FCDataSettings = FCDataSettings(train_examples=5_000, dev_examples=300)
    tokenizer: TokenizerSettings = TokenizerSettings(vocab_size=2048)
    model: FCModelSettings = FCModelSettings()
    training: FCTrainingSettings = FCTrainingSettings(epochs=4, warmup_steps=20)
    workers: WorkerSettings = WorkerSettings(cpus_per_worker=1.0)  # each trial's Ray Train workers
    asha: ASHASettings = ASHASettings()
    search: FCSearchSpace = FCSearchSpace()
    trials: TrialScheduling = TrialScheduling()

    def train_config(self) -> TrainFCConfig:
        """The base training config each trial overrides."""
        return TrainFCConfig(name=self.name, runs_dir=self.runs_dir, seed=self.seed, data=self.data,
                             tokenizer=self.tokenizer, model=self.model, training=self.training,
                             workers=self.workers)


class LoRASettings(StrictModel):
    """PEFT LoRA adapter: rank, scaling, dropout and the modules it wraps."""

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    # Modules trained in full beside the adapter (PEFT's modules_to_save), e.g. ["norm"]: a randomly
    # initialised base needs its norms trained to sharpen its output distribution.
    modules_to_save: list[str] = Field(default_factory=list)


class LLMModelSettings(StrictModel):
    """A Hugging Face causal LM (a local directory, or a hub id where the hub is reachable)."""

    path: str = "runs/tiny-llm"
    lora: LoRASettings = LoRASettings()
    load_in_4bit: bool = False  # needs bitsandbytes and a CUDA GPU
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False


class LLMDataSettings(StrictModel):
    """Where training examples come from: an action environment's expert, or a records file."""

    env: str = "math"  # a registered action environment, or "package.module:EnvClass"
    expert_episodes: int = Field(256, ge=1)  # sft/kto: episodes of the environment's expert agent
    expert_noise: float = Field(0.0, ge=0.0, le=1.0)  # share of the expert's actions replaced at random
    records_path: str | None = None  # sft/kto records (JSONL/Parquet) instead of expert episodes
    eval_episodes: int = Field(200, ge=1)  # held-out problems scored after training
    seed: int = 0
    eval_seed: int = 10_000


class LLMTrainingSettings(StrictModel):
    """The optimiser of the LoRA parameters."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(2e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    grad_clip: float = Field(1.0, gt=0.0)
    max_length: int = Field(256, ge=16)
    min_reward: float | None = None  # sft: leave out trajectories whose return is below this


class KTOSettings(StrictModel):
    """TRL's KTO: the preference temperature and the weights of good and bad examples."""

    beta: float = Field(0.1, gt=0.0)
    desirable_weight: float = Field(1.0, gt=0.0)
    undesirable_weight: float = Field(1.0, gt=0.0)


class GRPOSettings(StrictModel):
    """Online GRPO: groups of episodes per problem, rolled out by Ray actors."""

    iterations: int = Field(20, ge=1)
    problems_per_iteration: int = Field(16, ge=1)
    group_size: int = Field(8, ge=2)
    temperature: float = Field(1.0, gt=0.0)
    max_new_tokens: int = Field(16, ge=1)
    clip: float = Field(0.2, gt=0.0)
    kl_coeff: float = Field(0.04, ge=0.0)
    update_epochs: int = Field(1, ge=1)
    rollout_actors: int = Field(2, ge=1)
    cpus_per_actor: float = Field(0.5, gt=0.0)
    eval_every: int = Field(5, ge=1)
    env_reward_weight: float = Field(1.0, ge=0.0)
    rewards: dict[str, float] = Field(default_factory=dict)  # reward engine functions by weight


class TrainLLMConfig(StrictModel):
    """`recursa train llm`: LoRA training of a causal LM by reward-weighted SFT, KTO or GRPO."""

    name: str = "llm"
    runs_dir: str = "runs"
    seed: int = 0
    method: Literal["sft", "kto", "grpo"] = "sft"
    model: LLMModelSettings = LLMModelSettings()
    init_adapter: str | None = None  # start from this adapter (e.g. GRPO after SFT)
    # KTO and GRPO from an init adapter. "init_adapter": it is merged into the base, which becomes the
    # reference policy, and a new adapter trains on top. "base": the init adapter trains on, and the
    # bare base (the adapter switched off) is the reference.
    reference: Literal["init_adapter", "base"] = "init_adapter"
    data: LLMDataSettings = LLMDataSettings()
    training: LLMTrainingSettings = LLMTrainingSettings()
    kto: KTOSettings = KTOSettings()
    grpo: GRPOSettings = GRPOSettings()
    workers: WorkerSettings = WorkerSettings(cpus_per_worker=1.0)


class JobRuntimeEnv(StrictModel):
    """The `runtime_env` of a Ray job: the directory uploaded as its working dir, and its environment."""

    working_dir: str = "."  # relative paths resolve against the directory `recursa submit` runs in
    # Left out of the upload: run outputs, environments, caches and large data.
    excludes: list[str] = Field(default_factory=lambda: [
        ".git", ".venv/", "runs/", "data/", "bench/results/", "**/__pycache__/", "*.egg-info/",
    ])
    env_vars: dict[str, str] = Field(default_factory=dict)
    pip: list[str] | None = None  # packages installed for the job, on top of the cluster's


class JobSpec(StrictModel):
    """A Ray job spec (`jobs/<name>.yaml`), submitted by `recursa submit`."""

    entrypoint: str = Field(min_length=1)  # e.g. "python jobs/train_gift.py --config jobs/configs/gift_ppo.yaml"
    runtime_env: JobRuntimeEnv = JobRuntimeEnv()
    entrypoint_num_cpus: float | None = Field(None, ge=0.0)
    entrypoint_num_gpus: float | None = Field(None, ge=0.0)
    entrypoint_memory: int | None = Field(None, ge=0)  # bytes
    metadata: dict[str, str] = Field(default_factory=dict)
    submission_id: str | None = None  # Ray picks one when unset; a used id is refused by the cluster
