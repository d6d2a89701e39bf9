"""Causal LMs with LoRA adapters as action agents: loading, the tiny offline model, action
environments and the math demo, training records, SFT / KTO / GRPO on Ray Train with rollout
actors, evaluation, export (merged, adapter, ONNX) and the OpenAI-compatible server."""
