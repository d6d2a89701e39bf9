"""A trained tool caller as plain files: safetensors weights, JSON settings, the tokenizer."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from recursa.core.artifact import write_artifact
from recursa.core.config import ConfigError
from recursa.core.trm import TRMConfig
from recursa.fc.data.schema import FCExample
from recursa.fc.decode import decode_calls
from recursa.fc.embedding import PretrainedEmbeddingSpec
from recursa.fc.features import FCLimits, Features, Featurizer, collate
from recursa.fc.model import FCOutput, FunctionCallingTRM
from recursa.fc.tokenizer import Tokenizer, load_tokenizer
from recursa.tools.schema import FunctionCall

WEIGHTS = "model.safetensors"
SETTINGS = "model.json"
TOKENIZER_DIR = "tokenizer"


def save_fc_model(model: FunctionCallingTRM, tokenizer: Tokenizer, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write weights, settings and tokenizer to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, out / WEIGHTS)
    settings = {
        "trm": model.config.model_dump(),
        "limits": dataclasses.asdict(model.limits),
        "vocab_size": model.vocab_size,
        "embedding": model.embedding.to_dict() if model.embedding else None,
        "params": model.parameter_count(),
        "no_call_bias": model.no_call_bias,
        **(extra or {}),
    }
    (out / SETTINGS).write_text(json.dumps(settings, indent=2))
    tokenizer.save(out / TOKENIZER_DIR)
    write_artifact(out, "fc-model", "recursa.fc.artifact.save_fc_model")
    return out


def load_fc_model(path: str | Path) -> tuple[FunctionCallingTRM, Featurizer]:
    """The model (eval mode) and a featurizer with its tokenizer and limits."""
    path = Path(path)
    settings = json.loads((path / SETTINGS).read_text())
    limits = FCLimits(**settings["limits"])
    model = FunctionCallingTRM(TRMConfig(**settings["trm"]), settings["vocab_size"], limits,
                               embedding_spec(settings))
    model.load_state_dict(load_file(path / WEIGHTS))
    model.no_call_bias = float(settings.get("no_call_bias", 0.0))
    model.eval()
    tokenizer = load_tokenizer(path / TOKENIZER_DIR)
    if tokenizer.vocab_size != model.vocab_size:
        raise ConfigError(f"checkpoint: the tokenizer in {path / TOKENIZER_DIR} has {tokenizer.vocab_size} ids but the "
                          f"model's embedding {model.vocab_size}: they do not belong together")
    return model, Featurizer(tokenizer, limits)


def embedding_spec(settings: dict) -> PretrainedEmbeddingSpec | None:
    """The pretrained-embedding spec a model's settings record (None: pieces trained here)."""
    spec = settings.get("embedding")
    return PretrainedEmbeddingSpec(**spec) if spec else None


def set_no_call_bias(path: str | Path, bias: float) -> None:
    """Record a calibrated no-call bias in a saved model's settings."""
    settings_path = Path(path) / SETTINGS
    settings = json.loads(settings_path.read_text())
    settings["no_call_bias"] = float(bias)
    settings_path.write_text(json.dumps(settings, indent=2))


def batched_outputs(model: FunctionCallingTRM, featurizer: Featurizer, examples: list[FCExample],
                    batch_size: int = 64) -> Iterator[tuple[list[Features], FCOutput]]:
    """The model's outputs (no gradients, no targets) batch by batch, with the encoded inputs."""
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            features = [featurizer.encode(e, with_targets=False) for e in examples[start:start + batch_size]]
            yield features, model(collate(features))


def predict_calls(model: FunctionCallingTRM, featurizer: Featurizer, examples: list[FCExample],
                  batch_size: int = 64) -> list[list[FunctionCall]]:
    """Greedy calls for each example (no targets needed)."""
    predictions: list[list[FunctionCall]] = []
    for features, output in batched_outputs(model, featurizer, examples, batch_size):
        predictions += decode_calls(output, features, featurizer.tokenizer)
    return predictions
