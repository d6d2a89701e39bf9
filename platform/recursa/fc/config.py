"""The tool-calling TRM's configs: data, tokenizer, trunk, training, ASHA and the tool caller's Serve args."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from recursa.core.config import SearchRange, StrictModel, TrialScheduling, WorkerSettings, positive_choices
from recursa.core.hardware import HardwareProfile, workers_for
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
