"""Hugging Face causal LMs with PEFT LoRA adapters: load, wrap, save.

``load_causal_lm(settings)`` loads the base model named by ``settings.path`` (a local directory,
a hub id where the hub is reachable, a `.gguf` file, or a model name: see `recursa.core.sources`)
and wraps it in a new LoRA adapter, or in a saved one with ``adapter=DIR``. ``save_adapter`` writes
the adapter with its tokenizer, naming its base so that it loads from any working directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, PreTrainedModel, PreTrainedTokenizerBase

from recursa.core.artifact import write_artifact
from recursa.core.config import ConfigError
from recursa.core.sources import ModelSource, portable_name, resolve_model
from recursa.llm.config import LLMModelSettings, LoRASettings

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a model (any `model.path`), with a pad token (the eos token if it had none)."""
    source = resolve_model(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **source.options)
    except (OSError, ValueError) as error:
        raise ConfigError(f"model.path: no tokenizer at {source} ({_first_line(error)})") from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ConfigError(f"model.path: the tokenizer of {source} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    settings: LLMModelSettings, *, adapter: str | Path | None = None, trainable: bool = True,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model of `settings` with a LoRA adapter, and its tokenizer.

    With `adapter`, the saved adapter in that directory is loaded; otherwise a new one is made from
    ``settings.lora``. With ``trainable=False`` the model is in eval mode with nothing to train, and
    without `adapter` it is the base model alone.
    """
    if adapter is not None:
        _adapter_config(adapter)
    model = _load_base(settings)
    model.name_or_path = portable_name(settings.path)  # what a new adapter records as its base
    tokenizer = load_tokenizer(adapter if adapter is not None and has_tokenizer(adapter) else settings.path)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if settings.load_in_4bit and trainable:
        model = prepare_model_for_kbit_training(model)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    elif trainable:
        model = get_peft_model(model, lora_config(settings.lora))
    return (model.train() if trainable else model.eval()), tokenizer


def lora_config(lora: LoRASettings) -> LoraConfig:
    """The PEFT config of a LoRA adapter for a causal LM."""
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        modules_to_save=lora.modules_to_save or None,
    )


def save_adapter(model: PeftModel, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path) -> Path:
    """Write the adapter (config and safetensors weights) and the tokenizer to `out_dir`."""
    out_dir = Path(out_dir)
    for config in model.peft_config.values():
        config.base_model_name_or_path = portable_name(config.base_model_name_or_path)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    write_artifact(out_dir, "lora-adapter", "recursa.llm.models.save_adapter")
    return out_dir


def merge_into_base(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> PreTrainedModel:
    """Merge a saved adapter into its base (or `base`) and save the plain model and tokenizer to `out_dir`."""
    settings = LLMModelSettings(path=base or adapter_base(adapter_dir))
    model, tokenizer = load_causal_lm(settings, adapter=adapter_dir, trainable=False)
    merged = model.merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    write_artifact(out_dir, "llm-merged", "recursa.llm.models.merge_into_base",
                   source=str(Path(adapter_dir).resolve()), base=settings.path)
    return merged


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model a saved adapter names in its config."""
    return json.loads(_adapter_config(adapter_dir).read_text())["base_model_name_or_path"]


def has_tokenizer(path: str | Path) -> bool:
    """Whether a directory holds a saved tokenizer."""
    return any((Path(path) / name).is_file() for name in TOKENIZER_FILES)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _adapter_config(adapter_dir: str | Path) -> Path:
    path = Path(adapter_dir) / ADAPTER_CONFIG
    if not path.is_file():
        raise ConfigError(f"adapter: no LoRA adapter ({ADAPTER_CONFIG}) at {adapter_dir}")
    return path


def pretrained_causal_lm(location: str | Path, **options) -> PreTrainedModel:
    """``AutoModelForCausalLM.from_pretrained`` without hub kernels.

    With the `kernels` package installed, transformers would swap layers for kernels fetched from
    the Hugging Face hub (a download at run time) and re-kernelise on every train()/eval() switch.
    """
    return AutoModelForCausalLM.from_pretrained(location, use_kernels=False, **options)


def _load_base(settings: LLMModelSettings) -> PreTrainedModel:
    source: ModelSource = resolve_model(settings.path)
    dtype = getattr(torch, settings.dtype)
    options: dict = {"dtype": dtype, "trust_remote_code": settings.trust_remote_code, **source.options}
    if source.gguf_file:
        # De-quantised in full to `dtype`: a plain model that LoRA trains on and that saves and merges
        # (transformers' packed GGUF weights are neither trainable nor serialisable).
        options["quantization_config"] = GgufConfig(dequantize=True)
    if settings.load_in_4bit:
        options |= _four_bit_options(dtype)
    try:
        return pretrained_causal_lm(source.location, **options)
    except (OSError, ValueError) as error:
        raise ConfigError(f"model.path: cannot load a causal LM from {source} ({_first_line(error)})") from None


def _four_bit_options(compute_dtype: torch.dtype) -> dict:
    if not _can_load_4bit():
        raise ConfigError("model.load_in_4bit: needs bitsandbytes and a CUDA GPU (pip install 'recursa[gpu]')")
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )
    return {"quantization_config": quantization, "device_map": "auto"}


def _can_load_4bit() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
