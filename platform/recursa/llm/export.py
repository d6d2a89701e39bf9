"""Export a LoRA adapter: merged into its base (Hugging Face layout), alone, merged as ONNX,
merged as GGUF (for llama.cpp, and for Ollama with a Modelfile), or alone as a GGUF LoRA that
llama.cpp applies to its base model's GGUF.

Every export adds its section ("merged", "adapter", "onnx", "gguf", "ollama", "gguf_lora") to
``export_report.json`` in its output directory: file sizes in bytes, parameter counts and, for
ONNX and GGUF, how far the exported model's outputs are from torch's.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from transformers import AutoConfig

from recursa.core.artifact import write_artifact
from recursa.core.config import ConfigError
from recursa.core.sources import portable_name, resolve_model
from recursa.llm.config import LLMModelSettings
from recursa.llm.gguf_check import chat_prompts, llama_cpp_agreement, llama_cpp_available, transformers_readback
from recursa.llm.gguf_export import check_architecture, check_quant, write_gguf
from recursa.llm.gguf_lora import write_lora_gguf
from recursa.llm.models import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    adapter_base,
    count_parameters,
    has_tokenizer,
    load_causal_lm,
    load_tokenizer,
    merge_into_base,
    pretrained_causal_lm,
)
from recursa.llm.ollama import write_modelfile

REPORT = "export_report.json"
ONNX_TOLERANCE = 1e-3
# Texts of unequal lengths, so the check pads a batch and uses shapes other than the traced ones.
CHECK_TEXTS = ("Solve for x: 3x + 7 = 16", "Action: subtract_terms(7)\nObservation: 3x = 9", "Thought: done.")


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> dict:
    """Merge the adapter into its base (float32) and save a plain model: safetensors, tokenizer, generation config.

    `base` defaults to the base recorded in the adapter. The result loads with
    ``AutoModelForCausalLM.from_pretrained(out_dir)``, without PEFT.
    """
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    merged = merge_into_base(adapter_dir, out_dir, base)
    _, parameters = count_parameters(merged)
    return _add_to_report(out_dir, "merged", {
        "base": base or adapter_base(adapter_dir),
        "adapter": str(adapter_dir.resolve()),
        "parameters": parameters,
        "bytes": _size(out_dir.glob("*.safetensors")),
    })


def export_adapter(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> dict:
    """Copy the adapter alone (config, safetensors weights, tokenizer) with a short model card.

    The exported config names `base` if given, else the adapter's own base (absolute if local).
    """
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    config = json.loads(_adapter_file(adapter_dir, ADAPTER_CONFIG).read_text())
    config["base_model_name_or_path"] = portable_name(base or config["base_model_name_or_path"])
    weights = _adapter_file(adapter_dir, ADAPTER_WEIGHTS)
    tokenizer = load_tokenizer(adapter_dir if has_tokenizer(adapter_dir) else config["base_model_name_or_path"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2))
    shutil.copyfile(weights, out_dir / ADAPTER_WEIGHTS)
    tokenizer.save_pretrained(out_dir)
    with safe_open(weights, "pt") as tensors:
        parameters = sum(math.prod(tensors.get_slice(name).get_shape()) for name in tensors.keys())  # noqa: SIM118  (safe_open is not iterable)
    (out_dir / "README.md").write_text(_model_card(config, parameters))
    write_artifact(out_dir, "lora-adapter", "recursa.llm.export.export_adapter", source=str(adapter_dir.resolve()))
    return _add_to_report(out_dir, "adapter", {
        "base": config["base_model_name_or_path"],
        "rank": config["r"],
        "alpha": config["lora_alpha"],
        "target_modules": _target_names(config),
        "parameters": parameters,
        "bytes": _size([out_dir / ADAPTER_WEIGHTS]),
    })


def export_onnx(merged_dir: str | Path, out_path: str | Path) -> dict:
    """Export a (merged) causal LM to ONNX: input_ids, attention_mask -> logits, dynamic batch and length.

    No KV cache. ONNX Runtime's logits are checked against torch's on a padded batch; the largest
    difference over the real (unpadded) positions is reported and must be under ``ONNX_TOLERANCE``.
    """
    merged_dir, out_path = Path(merged_dir), Path(out_path)
    model = pretrained_causal_lm(merged_dir, dtype=torch.float32)
    tokenizer = load_tokenizer(merged_dir)
    logits = _LogitsOnly(model).eval()
    example = tokenizer(["Solve for x: 2x = 4"], return_tensors="pt")
    axes = {0: "batch", 1: "sequence"}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        logits, (example["input_ids"], example["attention_mask"]), str(out_path), dynamo=True,
        input_names=["input_ids", "attention_mask"], output_names=["logits"],
        dynamic_shapes={"input_ids": axes, "attention_mask": axes}, verbose=False,
    )
    max_abs_diff = _onnx_max_abs_diff(out_path, logits, tokenizer(list(CHECK_TEXTS), return_tensors="pt", padding=True))
    if max_abs_diff > ONNX_TOLERANCE:
        raise RuntimeError(f"ONNX logits differ from torch by {max_abs_diff:.2e} (tolerance {ONNX_TOLERANCE})")
    _, parameters = count_parameters(model)
    return _add_to_report(out_path.parent, "onnx", {
        "file": out_path.name,
        "parameters": parameters,
        "bytes": _size(out_path.parent.glob(out_path.name + "*")),  # the graph and its external weights
        "max_abs_diff": max_abs_diff,
        "tolerance": ONNX_TOLERANCE,
    })


def export_gguf(out_dir: str | Path, quant: str, *, adapter: str | Path | None = None, model: str | None = None,
                base: str | None = None, ollama: bool = False, verify: bool = True) -> dict:
    """Merge `adapter` into its base (or take `model` as it is) and write ``model.gguf`` in `out_dir`.

    With `verify`, the file is compared with the merged float32 model: transformers reads it back
    (for f16 its logits must be within ``GGUF_F16_TOLERANCE``), and llama.cpp, where llama-cpp-python
    is installed, runs it (see `recursa.llm.gguf_check`). With `ollama`, a Modelfile and the
    hosting profile of this machine are written beside it.
    """
    out_dir = Path(out_dir)
    check_quant(quant)
    source = resolve_model(model if model is not None else base or adapter_base(str(adapter)))
    check_architecture(AutoConfig.from_pretrained(source.location, **source.options).to_dict())
    with tempfile.TemporaryDirectory(prefix="recursa-gguf-") as work:
        merged_dir = Path(work) / "merged"
        merged = merge_into_base(adapter, merged_dir, base) if adapter is not None else _save_model(model, merged_dir)
        path = write_gguf(merged_dir, out_dir / "model.gguf", quant)
        tokenizer = load_tokenizer(merged_dir)
        section: dict = {
            "file": path.name, "quant": quant, "source": str(adapter or model), "bytes": path.stat().st_size,
            "merged_float32_bytes": _size(merged_dir.glob("*.safetensors")),
        }
        if verify:
            section |= _verify_gguf(path, merged.eval(), tokenizer, quant)
        if ollama:
            _add_to_report(out_dir, "ollama", write_modelfile(out_dir, tokenizer, merged.config.to_dict()))
    write_artifact(out_dir, "llm-gguf", "recursa.llm.export.export_gguf", source=section["source"], quant=quant)
    return _add_to_report(out_dir, "gguf", section)


def export_lora_gguf(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> dict:
    """Write the adapter as ``adapter.gguf``, a GGUF LoRA for its base model's GGUF (`write_lora_gguf`)."""
    out_dir = Path(out_dir)
    _adapter_file(Path(adapter_dir), ADAPTER_WEIGHTS)
    path = write_lora_gguf(adapter_dir, out_dir / "adapter.gguf", base)
    config = json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text())
    return _add_to_report(out_dir, "gguf_lora", {
        "file": path.name, "base": portable_name(base or config["base_model_name_or_path"]),
        "rank": config["r"], "alpha": config["lora_alpha"], "bytes": path.stat().st_size})


GGUF_F16_TOLERANCE = 0.01  # of the largest |logit|: f16 weights round to about 3 significant digits


def _verify_gguf(path: Path, merged: torch.nn.Module, tokenizer, quant: str) -> dict:
    prompts = chat_prompts(tokenizer)
    readback = transformers_readback(path, merged, tokenizer, prompts)
    if quant == "f16" and readback > GGUF_F16_TOLERANCE:
        raise RuntimeError(f"GGUF logits read back by transformers differ by {readback:.2e} of the largest logit "
                           f"(tolerance {GGUF_F16_TOLERANCE})")
    checks: dict = {"transformers_readback_rel_diff": readback}
    checks["llama_cpp"] = llama_cpp_agreement(path, merged, tokenizer, prompts) if llama_cpp_available() \
        else "not installed"
    return checks


def _save_model(name: str | None, out_dir: Path) -> torch.nn.Module:
    """Save the model `name` (any `model.path`) in float32 Hugging Face layout, as a merge would."""
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(name)), trainable=False)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return model


class _LogitsOnly(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def _onnx_max_abs_diff(path: Path, logits: torch.nn.Module, batch) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: batch[name].numpy() for name in ("input_ids", "attention_mask")}
    got = session.run(["logits"], feed)[0]
    with torch.no_grad():
        expected = logits(batch["input_ids"], batch["attention_mask"]).numpy()
    real = batch["attention_mask"].numpy().astype(bool)  # padded positions attend to nothing; ignore them
    return float(np.abs(got - expected)[real].max())


def _adapter_file(adapter_dir: Path, name: str) -> Path:
    path = adapter_dir / name
    if not path.is_file():
        raise ConfigError(f"adapter: no {name} in {adapter_dir}")
    return path


def _size(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths)


def _add_to_report(out_dir: Path, section: str, values: dict) -> dict:
    path = out_dir / REPORT
    report = json.loads(path.read_text()) if path.is_file() else {}
    report[section] = values
    path.write_text(json.dumps(report, indent=2))
    return values


def _target_names(config: dict) -> list[str]:
    """The wrapped module names (``q_proj``, ...), without the layer paths that "all-linear" expands to."""
    targets = config["target_modules"]
    return [targets] if isinstance(targets, str) else sorted({name.rsplit(".", 1)[-1] for name in targets})


def _model_card(config: dict, parameters: int) -> str:
    return (
        "# LoRA adapter\n\n"
        f"A PEFT LoRA adapter for `{config['base_model_name_or_path']}`, exported by recursa.\n\n"
        f"- rank {config['r']}, alpha {config['lora_alpha']}, {parameters:,} parameters\n"
        f"- target modules: {', '.join(_target_names(config))}\n\n"
        "Load it with `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), this_dir)`,\n"
        "or merge it with `recursa export llm --adapter this_dir --out DIR --format merged`.\n"
    )
