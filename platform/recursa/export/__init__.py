"""Exported models: the gift policy as ONNX (fp32 and int8), the tool caller in int8, LoRA LLMs merged or as ONNX."""
