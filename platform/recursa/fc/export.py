"""The tool-calling TRM in int8 with torchao: weight-only int8 linear layers, saved as safetensors.

The tool caller's forward pass takes variable-length slot sequences, gathers and a greedy
decoding loop, which ONNX export does not capture; torchao quantizes the PyTorch module in
place instead. The export directory is the fp32 model as `save_fc_model` writes it (kept for
comparison and as the module skeleton) plus `model.int8.safetensors`, which holds the int8
weights and their scales (torchao's safetensors format: tensors plus JSON metadata, no pickle).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict, unflatten_tensor_state_dict
from torchao.quantization import Int8WeightOnlyConfig, quantize_

from recursa.core.artifact import write_artifact
from recursa.fc.artifact import WEIGHTS, load_fc_model

INT8_WEIGHTS = "model.int8.safetensors"
# torchao's format names tensors "<module>.<attribute>": top-level parameters get a prefix.
_PREFIX = "model."


def quantize_module(model: torch.nn.Module) -> torch.nn.Module:
    """Replace the weights of every nn.Linear with int8 (per-channel scales), in place."""
    quantize_(model, Int8WeightOnlyConfig())
    return model


def export_fc_int8(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Copy the fp32 model to `out_dir` and add its int8 weights; returns `out_dir`."""
    model_dir, out = Path(model_dir), Path(out_dir)
    if model_dir.resolve() != out.resolve():
        shutil.copytree(model_dir, out, dirs_exist_ok=True)
    model, _ = load_fc_model(out)
    quantize_module(model)
    tensors, metadata = flatten_tensor_state_dict({_PREFIX + k: v for k, v in model.state_dict().items()})
    save_file({k: v.contiguous() for k, v in tensors.items()}, out / INT8_WEIGHTS, metadata=metadata)
    write_artifact(out, "fc-int8", "recursa.fc.export.export_fc_int8", source=str(model_dir.resolve()))
    return out


def load_fc_int8(export_dir: str | Path):
    """The int8 tool caller (eval mode) and its featurizer, weights read from the int8 file."""
    export_dir = Path(export_dir)
    model, featurizer = load_fc_model(export_dir)
    quantize_module(model)
    with safe_open(export_dir / INT8_WEIGHTS, framework="pt") as stored:
        metadata = stored.metadata()
        tensors = {key: stored.get_tensor(key) for key in stored.keys()}  # noqa: SIM118  (safe_open is not iterable)
    state, leftover = unflatten_tensor_state_dict(tensors, metadata)
    if leftover:
        raise ValueError(f"{INT8_WEIGHTS}: unexpected tensors {sorted(leftover)[:3]}")
    model.load_state_dict({k.removeprefix(_PREFIX): v for k, v in state.items()}, assign=True)
    return model.eval(), featurizer


def fc_export_report(export_dir: str | Path, examples: int, seed: int) -> dict:
    """AST accuracy of fp32 and int8 on held-out generated examples, their agreement and sizes."""
    from recursa.fc.artifact import predict_calls
    from recursa.fc.data.generator import generate_examples
    from recursa.fc.evaluate import evaluate_dev

    export_dir = Path(export_dir)
    held_out = generate_examples(examples, seed=seed)
    fp32, featurizer = load_fc_model(export_dir)
    int8, _ = load_fc_int8(export_dir)
    metrics = {"fp32": evaluate_dev(fp32, featurizer, held_out), "int8": evaluate_dev(int8, featurizer, held_out)}
    agree = sum(a == b for a, b in zip(predict_calls(fp32, featurizer, held_out),
                                       predict_calls(int8, featurizer, held_out)))
    sizes = {"fp32": (export_dir / WEIGHTS).stat().st_size, "int8": (export_dir / INT8_WEIGHTS).stat().st_size}
    report = {"model": "tool_caller", "held_out_examples": examples, "seed": seed, "metrics": metrics,
              "ast_accuracy_lost_int8": metrics["fp32"]["ast_accuracy"] - metrics["int8"]["ast_accuracy"],
              "int8_agrees_with_fp32": agree / len(held_out), "bytes": sizes,
              "int8_size_ratio": sizes["int8"] / sizes["fp32"]}
    (export_dir / "export_report.json").write_text(json.dumps(report, indent=2))
    return report
