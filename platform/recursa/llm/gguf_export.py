"""Write a Llama-family causal LM (Llama, SmolLM, Qwen2) as one GGUF file for llama.cpp and Ollama.

``write_gguf(model_dir, path, quant)`` reads a Hugging Face model directory (the merged model:
config, safetensors, tokenizer) and writes the hyperparameters, the BPE tokenizer (tokens, token
types, merges, special token ids), the chat template and every weight under llama.cpp's tensor
names, through the `gguf` package's writer, name maps and quantizers.

Quantization: ``f16``, ``q8_0`` and ``q4_0``; norms and biases stay float32 as llama.cpp keeps
them. Q4_K_M cannot be written here: gguf's Python quantizers implement ``Q4_K`` (and ``Q6_K``,
which Q4_K_M mixes in) for reading only (``quantize_blocks`` raises NotImplementedError in
gguf 0.19); llama.cpp's own ``llama-quantize`` turns an f16 export into Q4_K_M.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType, LlamaFileType
from safetensors import safe_open
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from recursa.core.config import ConfigError

# By model_type, which every config has (one read from a GGUF file names no architecture class);
# SmolLM and SmolLM2 are Llamas.
ARCHITECTURES = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}


@dataclass(frozen=True)
class Quant:
    """How a quantization stores 2-D weights, and the file type it declares."""

    weights: GGMLQuantizationType
    file_type: LlamaFileType


QUANTS = {
    "f16": Quant(GGMLQuantizationType.F16, LlamaFileType.MOSTLY_F16),
    "q8_0": Quant(GGMLQuantizationType.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q4_0": Quant(GGMLQuantizationType.Q4_0, LlamaFileType.MOSTLY_Q4_0),
}


def check_quant(quant: str) -> Quant:
    """The quantization named `quant`; a ConfigError naming `quant` otherwise."""
    if quant not in QUANTS:
        raise ConfigError(f"quant: must be one of {', '.join(QUANTS)}, got {quant!r} "
                          "(Q4_K_M: quantize an f16 export with llama.cpp's llama-quantize)")
    return QUANTS[quant]


def check_architecture(config: dict) -> gguf.MODEL_ARCH:
    """The GGUF architecture of a model config; a ConfigError naming the architecture if unsupported."""
    arch = ARCHITECTURES.get(config.get("model_type", ""))
    if arch is None:
        name = (config.get("architectures") or [config.get("model_type")])[0]
        raise ConfigError(f"model: architecture {name} cannot be exported to GGUF "
                          f"(supported: {', '.join(ARCHITECTURES)} models)")
    rope = _rope(config)
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ConfigError(f"model: rope scaling {rope} cannot be exported to GGUF (only unscaled rope)")
    return arch


def _rope(config: dict) -> dict:
    """The rope settings, where transformers 5 writes them (rope_parameters) or older versions did."""
    return config.get("rope_parameters") or {"rope_theta": config.get("rope_theta", 10000.0),
                                             **(config.get("rope_scaling") or {})}


def write_gguf(model_dir: str | Path, path: str | Path, quant: str) -> Path:
    """Write the model in `model_dir` (Hugging Face layout) as a GGUF file at `path`."""
    model_dir, path = Path(model_dir), Path(path)
    config = json.loads((model_dir / "config.json").read_text())
    arch, kind = check_architecture(config), check_quant(quant)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(model_dir.name)
    _add_hyperparameters(writer, config, kind)
    _add_tokenizer(writer, tokenizer, config)
    for name, data, dtype in _tensors(model_dir, config, arch, kind):
        writer.add_tensor(name, data, raw_dtype=dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_hyperparameters(writer: gguf.GGUFWriter, config: dict, kind: Quant) -> None:
    heads = config["num_attention_heads"]
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_rope_dimension_count(config.get("head_dim") or config["hidden_size"] // heads)
    writer.add_rope_freq_base(float(_rope(config).get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(kind.file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


# llama.cpp splits text into words with a fixed regex per "pre-tokenizer" name before BPE; the name
# must describe what the Hugging Face tokenizer does, or llama.cpp tokenizes differently.
# (llama.cpp's converter recognises tokenizers by hashing their output on a probe text; we read the
# tokenizer.json structure instead, which covers the tokenizers recursa trains and loads.)
_BYTE_LEVEL = {"type": "ByteLevel", "use_regex": True}
_QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def _pre_tokenizer_name(pre: dict | None) -> str:
    steps = pre.get("pretokenizers", [pre]) if pre else []
    shape = [{k: step.get(k) for k in ("type", "use_regex", "individual_digits") if k in step} for step in steps]
    if shape == [_BYTE_LEVEL]:
        return "gpt-2"  # GPT-2's regex alone (SmolLM2 as transformers reads it back from its GGUF)
    if shape == [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]:
        return "smollm"  # GPT-2's regex after splitting every digit (SmolLM, the tiny model)
    if len(steps) == 2 and steps[0].get("type") == "Split" and steps[0].get("pattern", {}).get("Regex") == _QWEN2_SPLIT:
        return "qwen2"
    raise ConfigError(f"tokenizer: pre-tokenizer {json.dumps(pre)[:120]} has no llama.cpp equivalent here "
                      "(supported: GPT-2 byte level, SmolLM digits + byte level, Qwen2)")


def _add_tokenizer(writer: gguf.GGUFWriter, tokenizer: PreTrainedTokenizerBase, config: dict) -> None:
    """Tokens by id (ids the embedding has but the tokenizer lacks become unused padding), their
    types, the merges, special ids, whether a BOS is prepended, and the chat template."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE":
        raise ConfigError(f"tokenizer: {spec['model']['type']} tokenizers cannot be exported to GGUF (only BPE)")
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    added = {t["id"]: t for t in spec["added_tokens"]}
    size = max(config["vocab_size"], len(by_id))
    tokens, types = [], []
    for i in range(size):
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        if i not in by_id:
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            types.append(gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer_name(spec.get("pre_tokenizer")))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    for token_id, add in ((tokenizer.bos_token_id, writer.add_bos_token_id),
                          (tokenizer.eos_token_id, writer.add_eos_token_id),
                          (tokenizer.pad_token_id, writer.add_pad_token_id),
                          (tokenizer.unk_token_id, writer.add_unk_token_id)):
        if token_id is not None:
            add(token_id)
    # Whether the tokenizer prepends BOS, as it behaves (a post-processor or a config flag may do it).
    ids = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(bool(ids) and ids[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(bool(ids) and ids[-1] == tokenizer.eos_token_id and len(ids) > 1)
    if isinstance(tokenizer.chat_template, str):
        writer.add_chat_template(tokenizer.chat_template)


def _tensors(model_dir: Path, config: dict, arch: gguf.MODEL_ARCH, kind: Quant):
    """(GGUF name, array, GGML type) for every weight, Q and K rows reordered for llama.cpp's rope."""
    names = gguf.get_tensor_name_map(arch, config["num_hidden_layers"])
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    tied = config.get("tie_word_embeddings", False)
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(file, "pt") as weights:
            for hf_name in weights.keys():  # noqa: SIM118  (safe_open is not iterable)
                if tied and hf_name == "lm_head.weight":
                    continue  # llama.cpp reads a missing output.weight as the tied token embedding
                name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise ConfigError(f"model: tensor {hf_name} has no GGUF name for {arch.name}")
                data = weights.get_tensor(hf_name).to(torch.float32)
                if arch == gguf.MODEL_ARCH.LLAMA and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
                    data = rope_halves_to_pairs(data, heads if "q_proj" in hf_name else kv_heads)
                yield name, *_stored(name, data.numpy(), kind, output=name.startswith("output.") or
                                     (tied and name.startswith("token_embd.")))


def rope_halves_to_pairs(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Reorder a Q or K projection's rows from Hugging Face's rope layout to llama.cpp's.

    Hugging Face's Llama rotates dimension i with dimension i + d/2 of each head ("rotate_half");
    llama.cpp's LLAMA architecture rotates neighbours 2i and 2i+1. Moving row i to 2i and row
    i + d/2 to 2i+1 in every head makes the two compute the same attention. (Qwen2 runs in llama.cpp
    with the NeoX rope, which is the halves layout: its rows stay as they are.)
    """
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


def _stored(name: str, data: np.ndarray, kind: Quant, output: bool) -> tuple[np.ndarray, GGMLQuantizationType]:
    """A tensor as the quantization stores it.

    Vectors (norms, biases) stay float32. In q4_0 the output projection (or the tied embedding that
    serves as one) is kept at Q8_0: llama.cpp's quantizer keeps it at 6 bits or more too, since
    every logit goes through it, and gguf cannot write Q6_K. Rows that do not split into the
    quantization's blocks fall back to f16.
    """
    if data.ndim < 2:
        return data.astype(np.float32), GGMLQuantizationType.F32
    target = GGMLQuantizationType.Q8_0 if output and kind.weights == GGMLQuantizationType.Q4_0 else kind.weights
    block, _ = gguf.GGML_QUANT_SIZES[target]
    if data.shape[-1] % block:
        target = GGMLQuantizationType.F16
    return gguf.quants.quantize(data, target), target
