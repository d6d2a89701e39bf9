"""Bounded load test of the LLM deployment (OpenAI completions, LoRA adapters) on 127.0.0.1.

A causal LM with two LoRA adapters multiplexed on it, behind `LLMServer` on Ray Serve, each
scenario for a fixed time at a fixed concurrency, greedy decoding of `--max-tokens` tokens:
  - the model alone, in-process (the core's `generate`, one request at a time, no HTTP);
  - one adapter at concurrency 1, 4 and 8 (requests/s, completion tokens/s, p50 and p99 latency);
  - batching off (max_batch_size 1) at concurrency 8;
  - two adapters in turn at concurrency 8 (each batch is grouped by adapter);
  - streaming at concurrency 4: time to the first token against the whole answer.
By default the model is a tiny random Llama made here with two fresh adapters (`--model` and
`--adapter` take real ones), so the figures measure the serving machinery more than the model.

    python bench/serve_llm_load.py --out bench/results/serve_llm_load.json
    python bench/serve_llm_load.py --quick --out /tmp/serve_llm_load_quick.json
"""

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from serve_load import measure

PORT = 8792
PROMPTS = ["Solve for x: 3x + 7 = 16\nAction:", "Solve for x: 12 - x = 5\nAction:",
           "What is the weather in Paris?\nActions: get_weather\nAction:", "Thought: I should add 4 to both sides.\n"]


def completion_body(adapter_of, max_tokens: int):
    """Request bodies for /v1/completions, the prompt and adapter varying with the request number."""
    return lambda i: {"model": adapter_of(i), "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens}


def make_model(root: Path) -> tuple[str, dict[str, str]]:
    """A tiny random Llama and two fresh LoRA adapters on it (different initial weights)."""
    import torch

    from recursa.llm.config import LLMModelSettings, LoRASettings
    from recursa.llm.models import load_causal_lm, save_adapter
    from recursa.llm.tiny import create_tiny_llm, default_corpus

    base = create_tiny_llm(root / "base", default_corpus(), seed=0)
    adapters = {}
    for seed, name in enumerate(("first", "second")):
        torch.manual_seed(seed)
        model, tokenizer = load_causal_lm(LLMModelSettings(path=str(base), lora=LoRASettings(r=8)))
        with torch.no_grad():  # PEFT starts B at zero; nonzero weights make the adapter do work
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.normal_(0, 0.02)
        adapters[name] = str(save_adapter(model, tokenizer, root / name))
    return str(base), adapters


def in_process(model: str, adapters: dict[str, str], max_tokens: int, seconds: float) -> dict:
    """Requests and tokens per second of the core's generate, one request at a time."""
    from recursa.llm.config import LLMServeArgs
    from recursa.llm.serve_core import LLMCore
    from recursa.serving.schemas import CompletionRequest

    core = LLMCore(LLMServeArgs(model=model, adapters=adapters, max_new_tokens=max_tokens))
    first = next(iter(adapters))
    body = completion_body(lambda i: first, max_tokens)
    count, tokens, began = 0, 0, time.perf_counter()
    while time.perf_counter() < began + seconds:
        (generated,) = core.generate([core.completion_input(CompletionRequest.model_validate(body(count)))])
        count, tokens = count + 1, tokens + generated.usage.completion_tokens
    elapsed = time.perf_counter() - began
    return {"rps": round(count / elapsed, 1), "tokens_per_s": round(tokens / elapsed, 1)}


def _has_text(event: bytes) -> bool:
    return any(choice.get("text") for choice in json.loads(event[len(b"data: "):])["choices"])


async def _stream_load(url: str, concurrency: int, seconds: float, body_of) -> dict:
    """Streamed requests back to back: time to the first text chunk and to [DONE]."""
    first, whole, errors = [], [], 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def client(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                start, seen = time.perf_counter(), None
                async with session.post(url, json={**body_of(i), "stream": True}) as response:
                    errors += response.status != 200
                    async for line in response.content:
                        if seen is None and line.startswith(b"data: {") and _has_text(line):
                            seen = time.perf_counter() - start
                whole.append(time.perf_counter() - start)
                first.append(seen if seen is not None else whole[-1])
                i += concurrency

        await asyncio.gather(*(client(k) for k in range(concurrency)))
    first_ms, whole_ms = np.asarray(first) * 1000, np.asarray(whole) * 1000
    return {"concurrency": concurrency, "requests": len(whole), "errors": errors,
            "first_token_p50_ms": round(float(np.percentile(first_ms, 50)), 2),
            "whole_answer_p50_ms": round(float(np.percentile(whole_ms, 50)), 2)}


def serve_scenarios(model: str, adapters: dict[str, str], max_tokens: int, seconds: float) -> dict:
    import ray
    from ray import serve

    from recursa.llm.serve import LLMServer

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    url = f"http://127.0.0.1:{PORT}/v1/completions"
    first, second = list(adapters)[:2]

    def server(max_batch_size: int = 8):
        args = {"model": model, "adapters": adapters, "max_new_tokens": max_tokens,
                "batching": {"max_batch_size": max_batch_size, "batch_wait_timeout_s": 0.01}}
        return LLMServer.options(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=32).bind(args)

    one_adapter = completion_body(lambda i: first, max_tokens)
    results: dict = {}
    try:
        serve.run(server(max_batch_size=1), name="llm", route_prefix="/")
        results["unbatched_c8"] = measure(url, 8, seconds, one_adapter, count_tokens=True)
        serve.run(server(), name="llm", route_prefix="/")
        results["levels"] = [measure(url, c, seconds, one_adapter, count_tokens=True) for c in (1, 4, 8)]
        results["two_adapters_c8"] = measure(url, 8, seconds, completion_body(lambda i: (first, second)[i % 2],
                                                                              max_tokens), count_tokens=True)
        results["streamed_c4"] = asyncio.run(_stream_load(url, 4, seconds, one_adapter))
        for name, value in results.items():
            print(name, value, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="base model directory (default: a tiny random Llama made here)")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR",
                        help="a LoRA adapter of --model, twice for the two-adapter scenario")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring time per scenario")
    parser.add_argument("--quick", action="store_true", help="3 s per scenario: a smoke run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as scratch:
        if args.model:
            model, adapters = args.model, dict(a.split("=", 1) for a in args.adapter)
            if len(adapters) < 2:
                parser.error("--model needs two --adapter NAME=DIR")
        else:
            model, adapters = make_model(Path(scratch))
        results: dict = {"seconds_per_scenario": seconds, "max_tokens": args.max_tokens, "cpus": os.cpu_count(),
                         "loadavg_start": os.getloadavg(), "model": args.model or "tiny random Llama (made here)"}
        results["in_process"] = in_process(model, adapters, args.max_tokens, seconds)
        results |= serve_scenarios(model, adapters, args.max_tokens, seconds)
    c8 = results["levels"][2]
    results |= {
        "batched_over_unbatched_c8": round(c8["tokens_per_s"] / results["unbatched_c8"]["tokens_per_s"], 3),
        "two_adapters_over_one_c8": round(results["two_adapters_c8"]["tokens_per_s"] / c8["tokens_per_s"], 3),
        "endpoint_c1_over_in_process": round(results["levels"][0]["rps"] / results["in_process"]["rps"], 3),
        "errors_on_valid": sum(r["errors"] for r in [*results["levels"], results["unbatched_c8"],
                                                      results["two_adapters_c8"], results["streamed_c4"]]),
        "loadavg_end": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, (dict, list))}, indent=2))


if __name__ == "__main__":
    main()
