"""The tool-calling TRM: generated data and public formats (xLAM, ms-swift, BFCL), tokenizer,
features, model, decoding, training on Ray Train, PPO by execution, AST and execution rewards,
BFCL scoring, int8 export, the OpenAI-compatible server and ASHA."""
