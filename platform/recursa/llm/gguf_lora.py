"""Write a PEFT LoRA adapter as a GGUF LoRA file, which llama.cpp applies at run time to its base
model's GGUF (any quantization of it): one copy of the base weights serves every adapter.

llama.cpp reads an adapter file by its metadata (`general.type` "adapter", `adapter.type` "lora",
`adapter.lora.alpha`) and its tensors, named after the base tensors they change with `.lora_a`
(rank x inputs) and `.lora_b` (outputs x rank); it adds alpha / rank x B A, as PEFT does. Q and K
projections are stored in llama.cpp's rope layout (`rope_halves_to_pairs`), so their B rows move
the same way; A acts on the input and stays.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gguf
import torch
from safetensors import safe_open
from transformers import AutoConfig

from recursa.core.config import ConfigError
from recursa.core.sources import resolve_model
from recursa.llm.gguf_export import check_architecture, rope_halves_to_pairs
from recursa.llm.models import ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapter_base

LORA_WEIGHT = re.compile(r"base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight")


def write_lora_gguf(adapter_dir: str | Path, path: str | Path, base: str | None = None) -> Path:
    """Write the adapter in `adapter_dir` for the base it records (or `base`) as a GGUF LoRA at `path`."""
    adapter_dir, path = Path(adapter_dir), Path(path)
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    for option in ("use_rslora", "use_dora", "modules_to_save"):
        if config.get(option):
            raise ConfigError(f"adapter: {option} in {adapter_dir} has no GGUF LoRA equivalent; "
                              "export the merged model with --format gguf")
    source = resolve_model(base or adapter_base(adapter_dir))
    model = AutoConfig.from_pretrained(source.location, **source.options).to_dict()
    arch = check_architecture(model)
    names = gguf.get_tensor_name_map(arch, model["num_hidden_layers"])
    heads = {"q_proj": model["num_attention_heads"],
             "k_proj": model.get("num_key_value_heads") or model["num_attention_heads"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    with safe_open(adapter_dir / ADAPTER_WEIGHTS, "pt") as weights:
        for key in weights.keys():  # noqa: SIM118  (safe_open is not iterable)
            match = LORA_WEIGHT.fullmatch(key)
            name = match and names.get_name(f"{match['module']}.weight", try_suffixes=(".weight",))
            if not match or not name:
                raise ConfigError(f"adapter: tensor {key} is not a LoRA weight of a {arch.name} layer llama.cpp knows")
            data = weights.get_tensor(key).to(torch.float32)
            projection = match["module"].rsplit(".", 1)[-1]
            if match["part"] == "B" and arch == gguf.MODEL_ARCH.LLAMA and projection in heads:
                data = rope_halves_to_pairs(data, heads[projection])
            writer.add_tensor(f"{name}.lora_{match['part'].lower()}", data.numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def is_lora_gguf(path: str | Path) -> bool:
    """Whether a GGUF file is an adapter (`general.type` "adapter") rather than a model."""
    field = gguf.GGUFReader(path).get_field(gguf.Keys.General.TYPE)
    return field is not None and field.contents() == gguf.GGUFType.ADAPTER
