"""Tool-calling TRM: training throughput, inference latency, and accuracy against recursion depth.

Three measurements in one run, on generated data (BFCL is never touched here):

- ``throughput``: training samples per second (one deep-supervision step: forward from the
  carry, loss, backward, AdamW step) at batch 32, for the presets tiny and small (the trunk
  sizes of seed 002's table) and the ``fc_bfcl`` configuration;
- ``latency``: p50 and p99 of one request (batch of 1, greedy decoding) for the same models;
- ``depth``: dev accuracy after the same number of steps for several (T, n) at equal
  parameters, including T=1, n=1 (no recursion), which shows what recursion buys.

Run:  .venv/bin/python bench/fc_model.py [--quick] [--steps 400] [--parts throughput,depth] [--out FILE]
Writes JSON (default runs/bench/fc_model.json) and prints tables. A full run takes about
15 minutes on 2 cores; --quick about 2.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from recursa.core.trm import TRMConfig, count_parameters
from recursa.fc.artifact import predict_calls
from recursa.fc.data.generator import corpus_text, generate_examples
from recursa.fc.evaluate import evaluate_dev
from recursa.fc.features import Featurizer, collate
from recursa.fc.model import FunctionCallingTRM, fc_loss
from recursa.fc.tokenizer import SentencePieceTokenizer
from recursa.fc.train import length_buckets

BFCL_CONFIG = TRMConfig(hidden_size=128, num_layers=2, num_heads=4, T=2, n=2)
DEPTHS = ((1, 1), (1, 3), (2, 2), (3, 2))


def train_steps(model: FunctionCallingTRM, features: list, steps: int, batch_size: int, seed: int) -> float:
    """Train for `steps` single-supervision steps; return samples per second."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    batches = length_buckets(features, batch_size, random.Random(seed))
    while len(batches) < steps:
        batches += batches
    model.train()
    seen, started = 0, time.perf_counter()
    for indices in batches[:steps]:
        batch = collate([features[i] for i in indices])
        loss, _ = fc_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        seen += len(indices)
    model.eval()
    return seen / (time.perf_counter() - started)


def latency_ms(model: FunctionCallingTRM, featurizer: Featurizer, examples: list, requests: int) -> dict:
    """p50 and p99 milliseconds of one greedy request (featurize, forward, decode)."""
    times = []
    for example in examples[:requests]:
        started = time.perf_counter()
        predict_calls(model, featurizer, [example], batch_size=1)
        times.append(1000 * (time.perf_counter() - started))
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny numbers, a smoke run")
    parser.add_argument("--steps", type=int, default=400, help="training steps per depth setting")
    parser.add_argument("--examples", type=int, default=20_000, help="generated training examples")
    parser.add_argument("--parts", default="throughput,depth", help="comma-separated: throughput, depth")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/fc_model.json"))
    args = parser.parse_args()
    steps, examples, dev_size, timed = (20, 2_000, 100, 3) if args.quick else (args.steps, args.examples, 500, 10)
    torch.manual_seed(0)
    console = Console()

    train = generate_examples(examples, seed=0)
    dev = generate_examples(dev_size, seed=1_000_003)
    tokenizer = SentencePieceTokenizer.train(corpus_text(train), vocab_size=4096)
    featurizer = Featurizer(tokenizer)
    features = [featurizer.encode(e) for e in train]

    parts = set(args.parts.split(","))
    sized = {"tiny": TRMConfig(preset="tiny"), "small": TRMConfig(preset="small"), "fc_bfcl": BFCL_CONFIG}
    throughput = {}
    for name, config in sized.items() if "throughput" in parts else ():
        model = FunctionCallingTRM(config, tokenizer.vocab_size)
        throughput[name] = {
            "params": count_parameters(model), "T": config.T, "n": config.n,
            "train_samples_per_s": train_steps(model, features, timed, 32, seed=0),
            **latency_ms(model, featurizer, dev, 5 if args.quick else 50),
        }

    depth = []
    for T, n in DEPTHS if "depth" in parts else ():
        config = TRMConfig(hidden_size=96, num_layers=2, num_heads=4, T=T, n=n)
        model = FunctionCallingTRM(config, tokenizer.vocab_size)
        torch.manual_seed(0)
        speed = train_steps(model, features, steps, 64, seed=0)
        depth.append({"T": T, "n": n, "params": count_parameters(model), "steps": steps,
                      "train_samples_per_s": speed, **evaluate_dev(model, featurizer, dev)})

    report = {"settings": {"examples": examples, "dev": dev_size, "steps": steps, "threads": torch.get_num_threads()},
              "throughput": throughput, "depth": depth}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))

    table = Table(title="Throughput and latency")
    for column in ("model", "params", "T, n", "train samples/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for name, row in throughput.items():
        table.add_row(name, f"{row['params']:,}", f"{row['T']}, {row['n']}", f"{row['train_samples_per_s']:.0f}",
                      f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}")
    console.print(table)
    table = Table(title=f"Accuracy against recursion depth ({steps} steps, equal parameters)")
    for column in ("T, n", "params", "samples/s", "function acc", "exact match", "AST acc"):
        table.add_column(column, justify="right")
    for row in depth:
        table.add_row(f"{row['T']}, {row['n']}", f"{row['params']:,}", f"{row['train_samples_per_s']:.0f}",
                      f"{row['function_accuracy']:.3f}", f"{row['exact_match']:.3f}", f"{row['ast_accuracy']:.3f}")
    console.print(table)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
