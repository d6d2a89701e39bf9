"""The tool-calling TRM's configs: data, tokenizer, trunk, training, PPO by execution, ASHA and the tool
caller's Serve args."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from recursa.core.config import (
    RunnerSettings,
    SearchRange,
    StrictModel,
    TrialScheduling,
    WorkerSettings,
    included_config,
    positive_choices,
)
from recursa.core.hardware import HardwareProfile, workers_for
from recursa.core.trm import TRMConfig
from recursa.serving.config import ServeBatching


class ToolCallerServeArgs(StrictModel):
    """`args` of the OpenAI-compatible tool caller application (serve/tool_caller.yaml)."""

    model_dir: str  # a tool-calling model directory, or `recursa export trm`'s int8 export of one
    precision: Literal["fp32", "int8"] = "fp32"
    model_name: str = "recursa-trm-fc"
    api_key: str | None = None
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    batching: ServeBatching = ServeBatching()


class FCDataSettings(StrictModel):
    """Generated training and dev data for the tool-calling TRM."""

    train_examples: int = Field(100_000, ge=10)
    dev_examples: int = Field(2_000, ge=10)
    seed: int = 0
    train_path: str | None = None  # Parquet/JSONL of FCExamples instead of generating (xLAM, ms-swift, ...)
    # Parquet/JSONL of FCExamples added to the training data, e.g. `recursa llm distill-fc`'s labels.parquet.
    extra_paths: list[str] = []


class TokenizerSettings(StrictModel):
    """SentencePiece trained on the training corpus, characters (tests, tiny runs), or a pretrained
    LM's tokenizer read through that LM's input embedding (frozen, plus a trained update of rank
    `embedding_rank`; 0 keeps it as it is)."""

    kind: Literal["sentencepiece", "char", "pretrained"] = "sentencepiece"
    vocab_size: int = Field(8192, ge=64)  # sentencepiece: the pieces to learn
    model: str = "smollm2-135m-instruct"  # pretrained: a model name, .gguf file, directory or hub id
    embedding_rank: int = Field(8, ge=0)


class ToolCallerTrunk(TRMConfig):
    """The tool caller's trunk: the TRM trunk config, 128 wide unless set, and attention only."""

    hidden_size: int = Field(128, ge=8)

    @field_validator("mixer")
    @classmethod
    def _attention_only(cls, mixer: str) -> str:
        if mixer != "attention":
            raise ValueError("the tool caller needs the attention mixer: the number of slots varies from "
                             "example to example, and the mlp mixer mixes a fixed number of positions")
        return mixer


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


class TrainFCConfig(StrictModel):
    """`recursa train fc`: supervised training of the tool-calling TRM on Ray Train."""

    name: str = "fc_small"
    runs_dir: str = "runs"
    seed: int = 0
    data: FCDataSettings = FCDataSettings()
    tokenizer: TokenizerSettings = TokenizerSettings()
    model: ToolCallerTrunk = ToolCallerTrunk()
    training: FCTrainingSettings = FCTrainingSettings()
    workers: WorkerSettings = WorkerSettings()

    def profile_update(self, profile: HardwareProfile) -> dict[str, BaseModel]:
        """Ray Train workers."""
        return {"workers": workers_for(self.workers, profile)}


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

    _check_choices = field_validator("hidden_size", "T", "n", "n_sup")(positive_choices)


class TuneFCConfig(StrictModel):
    """`recursa tune fc`: ASHA over the tool-calling TRM, each trial a Ray Train run of `base` with its sample.

    `base` is a `recursa train fc` config, inline or the path of its YAML (relative to this one); it runs
    under this search's name and directory. Left out, it is a laptop-sized one.
    """

    name: str = "fc_asha"
    runs_dir: str = "runs"
    seed: int = 0  # the search's sampling; each trial trains with base.seed
    base: TrainFCConfig = TrainFCConfig(
        data=FCDataSettings(train_examples=5_000, dev_examples=300),
        tokenizer=TokenizerSettings(vocab_size=2048),
        training=FCTrainingSettings(epochs=4, warmup_steps=20),
        workers=WorkerSettings(cpus_per_worker=1.0),  # each trial's Ray Train workers
    )
    asha: ASHASettings = ASHASettings()
    search: FCSearchSpace = FCSearchSpace()
    trials: TrialScheduling = TrialScheduling()

    @field_validator("base", mode="before")
    @classmethod
    def _base_from_file(cls, value: Any, info: ValidationInfo) -> Any:
        return included_config(value, TrainFCConfig, info)

    def train_config(self) -> TrainFCConfig:
        """The base training config, under this search's name and run directory."""
        return self.base.model_copy(update={"name": self.name, "runs_dir": self.runs_dir})


class FCRLPPOSettings(StrictModel):
    """PPO by execution: one-step episodes, so no discounting (gamma = lambda = 1)."""

    lr: float = Field(1e-5, gt=0.0)
    entropy_coeff: float = Field(0.0, ge=0.0)  # weight of the entropy of the call's choices
    train_batch_size: int = Field(256, ge=8)  # episodes (one step each) per iteration
    minibatch_size: int = Field(64, ge=8)
    num_epochs: int = Field(2, ge=1)
    grad_clip: float = Field(1.0, gt=0.0)


class FCRLDataSettings(StrictModel):
    """Generated examples: rollouts, and the held-out set scored before and after."""

    examples: int = Field(4000, ge=1)
    held_out: int = Field(300, ge=1)


class TrainFCRLConfig(StrictModel):
    """`recursa train fc-rl`: PPO by execution from a supervised tool caller.

    The run is runs/<name>/: config.yaml, RLlib checkpoints (what `--resume` continues from),
    rl_report.json, and the fine-tuned model directory (`out`, runs/<name>/model unless set).
    """

    name: str = "fc_rl"
    runs_dir: str = "runs"
    seed: int = 0
    checkpoint: str = "runs/fc_small/model"  # the supervised model directory PPO starts from
    out: str | None = None  # where the fine-tuned model directory goes
    iterations: int = Field(20, ge=1)
    checkpoint_every: int = Field(5, ge=1)
    data: FCRLDataSettings = FCRLDataSettings()
    ppo: FCRLPPOSettings = FCRLPPOSettings()
    runners: RunnerSettings = RunnerSettings(num_env_runners=1, num_cpus_per_env_runner=1.0)

    @model_validator(mode="after")
    def _minibatch_fits(self) -> TrainFCRLConfig:
        if self.ppo.minibatch_size > self.ppo.train_batch_size:
            raise ValueError("ppo.minibatch_size must not exceed ppo.train_batch_size")
        return self
