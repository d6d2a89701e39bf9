"""The LoRA LLM configs: model, LoRA, data, SFT / KTO / GRPO settings and the LLM server's Serve args."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from recursa.core.config import StrictModel, WorkerSettings
from recursa.core.hardware import HardwareProfile, fill_unset, workers_for
from recursa.serving.config import ServeBatching


class LlamaCppSettings(StrictModel):
    """How the llama_cpp engine runs its GGUF files."""

    threads: int | None = Field(None, ge=1)  # None: the CPUs Ray gave the replica (ray_actor_options.num_cpus)
    max_sequences: int = Field(8, ge=1, le=64)  # rows decoded together; a larger batch runs in turns
    batch_tokens: int = Field(512, ge=16)  # prompt tokens per llama_decode call while prefilling


class LLMServeArgs(StrictModel):
    """`args` of the OpenAI-compatible LLM application (serve/llm.yaml): one base model per replica,
    LoRA adapters multiplexed on top of it, each served under its own model id."""

    # "transformers": PyTorch with PEFT adapters on one copy of the weights; "llama_cpp": llama.cpp
    # runs GGUF files (`model` and every adapter entry a GGUF, e.g. `recursa export llm --format gguf`).
    engine: Literal["transformers", "llama_cpp"] = "transformers"
    llama_cpp: LlamaCppSettings = LlamaCppSettings()
    # A merged model (`recursa export llm --format merged`) or the base the adapters were trained on;
    # with engine llama_cpp a GGUF file, or a named model that is one (smollm2-135m-instruct).
    model: str
    model_name: str = "recursa-llm"  # the id the model itself is served under
    # How chats become prompts and answers become tool calls. "tool_calls": recursa's tool-calling
    # format, what `recursa train llm` with env function_calling and `make llm-bfcl` train;
    # "actions": the action agents' transcript, for the math demo.
    chat_format: Literal["tool_calls", "actions"] = "tool_calls"
    # served id -> adapter directory; with engine llama_cpp, a merged model's GGUF file
    adapters: dict[str, str] = Field(default_factory=dict)
    max_adapters_per_replica: int = Field(4, ge=1)  # `@serve.multiplexed` keeps this many loaded (LRU)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # engine transformers
    max_new_tokens: int = Field(64, ge=1, le=4096)  # a request's `max_tokens`: its default and upper bound
    max_prompt_tokens: int | None = Field(None, ge=16)  # None: what the model's context leaves after max_new_tokens
    max_messages: int = Field(32, ge=1, le=64)  # at most the schema's cap (64)
    max_tools: int = Field(16, ge=1, le=16)  # at most the schema's cap (16)
    api_key: str | None = None  # else the RECURSA_API_KEY environment variable, else no key
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    batching: ServeBatching = ServeBatching(max_batch_size=8, batch_wait_timeout_s=0.01)
    # A/B routing of decision agents (recursa.decisions.serving): a routed name, e.g. FILER -> {served
    # id (model_name or an adapter): weight}. A request for the name is answered by one served id, the
    # same for the same `user`, named in the response's `model`; with `decisions_db` (a SQLite path or
    # postgresql:// URL) each answer is recorded there with that id.
    routes: dict[str, dict[str, float]] = Field(default_factory=dict)
    decisions_db: str | None = None

    @model_validator(mode="after")
    def _routes_name_served_ids(self) -> LLMServeArgs:
        served = {self.model_name, *self.adapters}
        for name, weights in self.routes.items():
            if name in served:
                raise ValueError(f"routes: {name!r} is already a served id")
            unknown = sorted(set(weights) - served)
            if unknown:
                raise ValueError(f"routes.{name}: {', '.join(unknown)} not served (model_name or adapters)")
            if not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
                raise ValueError(f"routes.{name}: weights must be non-negative, not all 0")
        return self

    @field_validator("adapters")
    @classmethod
    def _served_ids_are_distinct(cls, adapters: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if info.data.get("model_name") in adapters:
            raise ValueError(f"{info.data['model_name']!r} is already the model_name")
        return adapters


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

    # A registered action environment, or "package.module:EnvClass"; None: train on `records_path` only,
    # with no held-out episodes after training (a decision agent is evaluated on its test file instead).
    env: str | None = "math"
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
    # Torch threads of the learner (None: as many as its CPUs). Rollouts and learning take turns, so
    # on a small machine the learner may use the rollout actors' cores while they wait.
    learner_threads: int | None = Field(None, ge=1)
    eval_every: int = Field(5, ge=1)
    env_reward_weight: float = Field(1.0, ge=0.0)
    rewards: dict[str, float] = Field(default_factory=dict)  # reward engine functions by weight


class TrainLLMConfig(StrictModel):
    """`recursa train llm`: LoRA training of a causal LM by reward-weighted SFT, KTO or GRPO."""

    name: str = "llm"
    runs_dir: str = "runs"
    seed: int = 0
    # grpo plays episodes of `data.env`; offline_grpo trains on groups already generated and rewarded
    # (`data.records_path` with prompt, completions, rewards).
    method: Literal["sft", "kto", "grpo", "offline_grpo"] = "sft"
    model: LLMModelSettings = LLMModelSettings()
    init_adapter: str | None = None  # start from this adapter (e.g. GRPO after SFT)
    # KTO and GRPO (online or offline) from an init adapter. "init_adapter": it is merged into the base, which becomes the
    # reference policy, and a new adapter trains on top. "base": the init adapter trains on, and the
    # bare base (the adapter switched off) is the reference.
    reference: Literal["init_adapter", "base"] = "init_adapter"
    data: LLMDataSettings = LLMDataSettings()
    training: LLMTrainingSettings = LLMTrainingSettings()
    kto: KTOSettings = KTOSettings()
    grpo: GRPOSettings = GRPOSettings()
    workers: WorkerSettings = WorkerSettings(cpus_per_worker=1.0)

    def profile_update(self, profile: HardwareProfile) -> dict[str, BaseModel]:
        """Ray Train workers and the batch size."""
        return {"workers": workers_for(self.workers, profile),
                "training": fill_unset(self.training, batch_size=profile.llm_batch_size)}
