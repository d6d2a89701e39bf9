"""Tool-calling TRM: what the inputs, the recursion depth and deep supervision buy, and what it costs.

Measurements in one run, on generated training data (BFCL's non-live categories are scored and
reported, never used to choose anything; choices read the live categories):

- ``throughput`` (not run by default): training samples per second (one supervision step) at
  batch 32 and the p50/p99 latency of one request (batch 1, greedy), for the tiny and small
  presets' trunks and ``fc_bfcl``'s, on the ``--depth-inputs``;
- ``inputs``: a SentencePiece model trained here against SmolLM2's tokenizer and input embedding
  (frozen plus a rank-8 update), the same trunk trained for the same wall-clock time;
- ``depth``: (T, n) in {(1,1), (1,3), (2,2), (3,2)} at equal parameters and equal batches, with deep
  supervision (``--n-sup`` steps per batch, Q-halting) on the chosen inputs;
- ``llm``: serving latency of the TRM against the fine-tuned SmolLM2 tool caller on the same BFCL
  live queries, one request at a time (needs ``--llm-adapter``).

Every trained model is calibrated on the live categories (as ``make bfcl`` does) and scored on
BFCL (``--bfcl-limit`` examples per category) and on generated dev examples.

Run:  PYTHONPATH=platform .venv/bin/python bench/fc_model.py [--quick] [--parts throughput,inputs,depth,llm]
      [--seconds 600] [--batches 300] [--n-sup 1,3] [--llm-adapter runs/llm-bfcl/sft/adapter] [--out FILE]
Writes JSON (default runs/bench/fc_model.json) and prints tables.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from recursa.core.training import adamw_with_warmup
from recursa.core.trm import TRMConfig
from recursa.fc.artifact import predict_calls
from recursa.fc.bfcl import EVAL_CATEGORIES, sample_examples, score_bfcl
from recursa.fc.calibrate import calibrate_no_call
from recursa.fc.config import FCTrainingSettings, TrainFCConfig
from recursa.fc.data.formats import read_bfcl
from recursa.fc.data.generator import corpus_text, generate_examples
from recursa.fc.evaluate import evaluate_dev
from recursa.fc.features import Featurizer, collate
from recursa.fc.model import FunctionCallingTRM, LossWeights
from recursa.fc.tokenizer import SentencePieceTokenizer, Tokenizer
from recursa.fc.train import PRETRAINED_EMBEDDING, build_model, deep_supervision, length_buckets, pretrained_inputs

DEPTHS = ((1, 1), (1, 3), (2, 2), (3, 2))
CALIBRATION = ("live_simple", "live_multiple", "live_irrelevance")
PRETRAINED = "smollm2-135m-instruct"


class Inputs:
    """A tokenizer and the featurized training data, and how to build a model reading them."""

    def __init__(self, kind: str, train: list, run_dir: Path) -> None:
        self.kind, self.run_dir = kind, run_dir
        self.tokenizer: Tokenizer = (pretrained_inputs(PRETRAINED, run_dir / PRETRAINED_EMBEDDING)
                                     if kind == "pretrained" else
                                     SentencePieceTokenizer.train(corpus_text(train), vocab_size=8192))
        self.featurizer = Featurizer(self.tokenizer)
        self.features = [self.featurizer.encode(e) for e in train]

    def model(self, trunk: TRMConfig) -> FunctionCallingTRM:
        tokenizer = {"kind": "pretrained", "model": PRETRAINED} if self.kind == "pretrained" else {}
        config = TrainFCConfig(model=trunk.model_dump(), tokenizer=tokenizer)
        return build_model(config, self.run_dir, self.tokenizer)


def train(model: FunctionCallingTRM, features: list, n_sup: int, batches: int | None = None,
          seconds: float | None = None, seed: int = 0) -> dict:
    """Deep-supervision training for `batches` batches of 64 or `seconds` of this process's CPU time.

    CPU time rather than wall-clock time, so that other work on the machine does not decide how
    much training a row gets (Ray's workers and other jobs share these cores).
    """
    settings = FCTrainingSettings(n_sup=n_sup, lr=1e-3)
    planned = batches or 10_000
    optimizer, scheduler = adamw_with_warmup(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, betas=(0.9, 0.95),
        warmup_steps=100, total_steps=planned * n_sup, decay="cosine" if batches else "constant")
    order = length_buckets(features, 64, random.Random(seed))
    model.train()
    done, steps, started, cpu_started = 0, 0, time.perf_counter(), time.process_time()
    while (batches is None or done < batches) and (seconds is None or time.process_time() - cpu_started < seconds):
        batch = collate([features[i] for i in order[done % len(order)]])
        steps += len(deep_supervision(model, batch, settings, optimizer, scheduler, LossWeights(), nullcontext))
        done += 1
    model.eval()
    cpu = time.process_time() - cpu_started
    return {"batches": done, "supervision_steps": steps, "cpu_seconds": cpu, "seconds": time.perf_counter() - started,
            "samples_per_cpu_s": 64 * done / cpu}


def scores(model: FunctionCallingTRM, featurizer: Featurizer, dev: list, limit: int) -> dict:
    """Calibrated on the live categories, then dev and BFCL figures."""
    calibration = [e for c in CALIBRATION for e in sample_examples(read_bfcl(c), limit)]
    model.no_call_bias = calibrate_no_call(model, featurizer, calibration)["no_call_bias"]
    report, _ = score_bfcl(lambda examples: predict_calls(model, featurizer, examples), EVAL_CATEGORIES, limit)
    return {"params": model.parameter_count(), "dev": evaluate_dev(model, featurizer, dev),
            "non_live_ast": report["non_live_ast"], "live_ast": report["live_ast"],
            "irrelevance": report["irrelevance"], "no_call_bias": model.no_call_bias,
            "categories": {c: row["accuracy"] for c, row in report["categories"].items()}}


def trm_answer(model: FunctionCallingTRM, featurizer: Featurizer):
    return lambda examples: predict_calls(model, featurizer, examples)


def latency_ms(answer, examples: list) -> dict:
    """p50 and p99 milliseconds of one request at a time."""
    times = []
    for example in examples:
        started = time.perf_counter()
        answer([example])
        times.append(1000 * (time.perf_counter() - started))
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)), "requests": len(times)}


def llm_latency(adapter: str, examples: list) -> dict:
    from recursa.llm.bfcl import LLMToolCaller
    from recursa.llm.config import LLMModelSettings
    from recursa.llm.models import count_parameters, load_causal_lm

    model, tokenizer = load_causal_lm(LLMModelSettings(path=PRETRAINED), adapter=adapter, trainable=False)
    caller = LLMToolCaller(model, tokenizer, batch_size=1)
    return {"params": count_parameters(model)[1], **latency_ms(caller, examples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny numbers, a smoke run")
    parser.add_argument("--parts", default="inputs,depth,llm",
                        help="comma-separated: throughput, inputs, depth, llm")
    parser.add_argument("--examples", type=int, default=20_000, help="generated training examples")
    parser.add_argument("--seconds", type=float, default=600.0, help="CPU seconds of training for each inputs row")
    parser.add_argument("--batches", type=int, default=300, help="batches of 64 for each depth row")
    parser.add_argument("--n-sup", default="1,3", help="supervision steps per batch in the depth rows (a list)")
    parser.add_argument("--rows", default=None,
                        help="depth rows as TxNxN_sup, comma-separated (default: every depth at every --n-sup)")
    parser.add_argument("--depth-inputs", choices=("pretrained", "sentencepiece"), default="pretrained")
    parser.add_argument("--bfcl-limit", type=int, default=100, help="BFCL examples per category")
    parser.add_argument("--llm-adapter", default=None, help="the fine-tuned SmolLM2 adapter, for the llm part")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/fc_model.json"))
    args = parser.parse_args()
    if args.quick:
        args.examples, args.seconds, args.batches, args.bfcl_limit = 1_000, 10.0, 5, 10
    parts = set(args.parts.split(","))
    trunk = TRMConfig(hidden_size=128, num_layers=2, num_heads=4, T=2, n=2)
    console = Console()
    train_set = generate_examples(args.examples, seed=0)
    dev = generate_examples(100 if args.quick else 500, seed=1_000_003)
    report: dict = {"settings": {k: v for k, v in vars(args).items() if k != "out"} | {"threads": torch.get_num_threads()}}

    with tempfile.TemporaryDirectory() as tmp:
        kinds = ("sentencepiece", "pretrained") if "inputs" in parts else (args.depth_inputs,)
        throughput_examples = sample_examples(read_bfcl("live_simple"), 5 if args.quick else 50)
        inputs = {kind: Inputs(kind, train_set, Path(tmp)) for kind in kinds}
        if "throughput" in parts:
            data = inputs[args.depth_inputs]
            report["throughput"] = {}
            sized = {"tiny": TRMConfig(preset="tiny"), "small": TRMConfig(preset="small"), "fc_bfcl": trunk}
            for name, config in sized.items():
                model = data.model(config)
                speed = train(model, data.features, n_sup=1, batches=3 if args.quick else 10)["samples_per_cpu_s"]
                report["throughput"][name] = {"params": model.parameter_count(), "T": config.T, "n": config.n,
                                              "samples_per_cpu_s": speed,
                                              **latency_ms(trm_answer(model, data.featurizer), throughput_examples)}
        if "inputs" in parts:
            report["inputs"] = {}
            for kind, data in inputs.items():
                torch.manual_seed(0)
                model = data.model(trunk)
                row = train(model, data.features, n_sup=2, seconds=args.seconds)
                report["inputs"][kind] = row | scores(model, data.featurizer, dev, args.bfcl_limit)
                console.print(f"inputs {kind}: {json.dumps(report['inputs'][kind])}")
        if "depth" in parts:
            data = inputs[args.depth_inputs]
            report["depth"] = []
            rows = ([tuple(int(k) for k in row.split("x")) for row in args.rows.split(",")] if args.rows else
                    [(T, n, n_sup) for T, n in DEPTHS for n_sup in (int(k) for k in args.n_sup.split(","))])
            for T, n, n_sup in rows:
                torch.manual_seed(0)
                model = data.model(trunk.model_copy(update={"T": T, "n": n}))
                row = {"T": T, "n": n, "n_sup": n_sup,
                       **train(model, data.features, n_sup=n_sup, batches=args.batches)}
                row |= scores(model, data.featurizer, dev, args.bfcl_limit)
                row["latency"] = latency_ms(trm_answer(model, data.featurizer),
                                            sample_examples(read_bfcl("live_simple"), 20 if args.quick else 100))
                report["depth"].append(row)
                console.print(f"depth {T},{n} n_sup {n_sup}: {json.dumps(row)}")
        if "llm" in parts and args.llm_adapter:
            queries = sample_examples(read_bfcl("live_simple"), 5 if args.quick else 30)
            data = inputs[args.depth_inputs]
            model = data.model(trunk)
            report["llm"] = {"trm": {"params": model.parameter_count(),
                                     **latency_ms(trm_answer(model, data.featurizer), queries)},
                             "smollm2_lora": llm_latency(args.llm_adapter, queries)}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_tables(console, report)
    console.print(f"wrote {args.out}")


def print_tables(console: Console, report: dict) -> None:
    columns = ("params", "batches", "CPU s", "dev AST", "live AST", "irrelevance", "non-live AST")

    def cells(row: dict) -> list[str]:
        return [f"{row['params']:,}", str(row["batches"]), f"{row['cpu_seconds']:.0f}", f"{row['dev']['ast_accuracy']:.3f}",
                f"{row['live_ast']:.3f}", f"{row['irrelevance']:.3f}", f"{row['non_live_ast']:.3f}"]

    if "throughput" in report:
        table = Table(title="Throughput and latency")
        for column in ("trunk", "params", "T, n", "samples/CPU-s", "p50 ms", "p99 ms"):
            table.add_column(column, justify="right")
        for name, row in report["throughput"].items():
            table.add_row(name, f"{row['params']:,}", f"{row['T']}, {row['n']}", f"{row['samples_per_cpu_s']:.0f}",
                          f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}")
        console.print(table)
    if "inputs" in report:
        table = Table(title="Inputs at equal training time (CPU seconds; T=2, n=2, N_sup=2)")
        for column in ("inputs", *columns):
            table.add_column(column, justify="right")
        for kind, row in report["inputs"].items():
            table.add_row(kind, *cells(row))
        console.print(table)
    if "depth" in report:
        table = Table(title="Recursion depth and deep supervision at equal parameters and batches")
        for column in ("T, n", "N_sup", *columns, "p50 ms"):
            table.add_column(column, justify="right")
        for row in report["depth"]:
            table.add_row(f"{row['T']}, {row['n']}", str(row["n_sup"]), *cells(row), f"{row['latency']['p50_ms']:.1f}")
        console.print(table)
    if "llm" in report:
        table = Table(title="One request at a time, BFCL live_simple queries")
        for column in ("model", "params", "p50 ms", "p99 ms"):
            table.add_column(column, justify="right")
        for name, row in report["llm"].items():
            table.add_row(name, f"{row['params']:,}", f"{row['p50_ms']:.0f}", f"{row['p99_ms']:.0f}")
        console.print(table)


if __name__ == "__main__":
    main()
