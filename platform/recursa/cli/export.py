"""`recursa export`: TRMs to int8, LoRA adapters merged, alone, as ONNX, or as GGUF for llama.cpp and Ollama."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from recursa.cli.app import console, export_app
from recursa.core.artifact import open_artifact
from recursa.core.config import ConfigError


@export_app.command("trm")
def export_trm(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A gift policy or tool-calling model directory, or its run."),
    out: Path = typer.Option(..., "--out", help="Directory for the exported model and export_report.json."),
    quantize: str = typer.Option("int8", "--quantize", help="Quantization: int8 (fp32 is kept for comparison)."),
    users: int = typer.Option(400, "--users", min=1, help="Held-out users to compare gift policies on."),
    examples: int = typer.Option(500, "--examples", min=1, help="Held-out generated examples for the tool caller."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the held-out comparison."),
) -> None:
    """Quantize a TRM to int8 (gift policy: ONNX Runtime; tool caller: torchao), report what it costs."""
    if quantize != "int8":
        raise ConfigError(f"quantize: only int8 is supported, got {quantize!r}")
    artifact = open_artifact(checkpoint, expect=("gift-policy", "fc-model"))
    if artifact.kind == "gift-policy":
        from recursa.gift.export import export_gift_policy, gift_export_report

        export_gift_policy(artifact.path, out)
        report = gift_export_report(artifact.path, out, users, seed)
    else:
        from recursa.fc.export import export_fc_int8, fc_export_report

        report = fc_export_report(export_fc_int8(artifact.path, out), examples, seed)
    console.print(json.dumps(report, indent=2))


@export_app.command("llm")
def export_llm(
    adapter: Path | None = typer.Option(None, "--adapter", help="A saved LoRA adapter directory."),
    model: str | None = typer.Option(None, "--model", help="gguf/ollama without an adapter: any model.path "
                                     "(directory, .gguf file, hub id, or a name such as smollm2-135m-instruct)."),
    out: Path = typer.Option(..., "--out", help="Output directory (export_report.json is written there too)."),
    fmt: str = typer.Option("merged", "--format", help="merged (safetensors, HF layout), adapter, onnx, gguf, "
                            "ollama (gguf and a Modelfile), or gguf-lora (the adapter alone, for llama.cpp to "
                            "apply to its base's GGUF)."),
    quant: str = typer.Option("q8_0", "--quant", help="gguf/ollama: f16, q8_0 or q4_0."),
    base: str | None = typer.Option(None, "--base", help="Base model (default: the one the adapter records)."),
) -> None:
    """Merge a LoRA adapter into its base, export it alone, or export the merged model to ONNX or GGUF/Ollama."""
    from recursa.llm.export import export_adapter, export_gguf, export_lora_gguf, export_onnx, merge_adapter

    formats = ("merged", "adapter", "onnx", "gguf", "ollama", "gguf-lora")
    if fmt not in formats:
        raise ConfigError(f"format: must be one of {', '.join(formats)}, got {fmt!r}")
    if (adapter is None) == (model is None):
        raise ConfigError("adapter: give --adapter DIR, or --model M with --format gguf or ollama")
    if fmt in ("gguf", "ollama"):
        export_gguf(out, quant, adapter=adapter, model=model, base=base, ollama=fmt == "ollama")
    elif adapter is None:
        raise ConfigError("adapter: --format merged, adapter, onnx and gguf-lora need --adapter DIR")
    elif fmt == "gguf-lora":
        export_lora_gguf(adapter, out, base)
    elif fmt == "adapter":
        export_adapter(adapter, out, base)
    else:
        merge_adapter(adapter, out, base)
    if fmt == "onnx":
        export_onnx(out, out / "model.onnx")
    console.print((out / "export_report.json").read_text())
