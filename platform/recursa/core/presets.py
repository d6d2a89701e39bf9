"""Named TRM sizes, from the laptop quickstart (tiny) to large.

Approximate sizes of ``TRMTokenModel`` with the preset vocabulary: tiny ~2.5M, small ~34M,
base ~98M, large ~320M parameters. All use the official recursion depth (T=3, n=6).
"""

from __future__ import annotations

import torch

from recursa.core.trm import TRMConfig, TRMTokenModel, count_parameters

PRESET_VOCAB_SIZE = 8192

PRESETS: dict[str, TRMConfig] = {
    "tiny": TRMConfig(hidden_size=128, num_layers=2, num_heads=4, seq_len=32, T=3, n=6),
    "small": TRMConfig(hidden_size=512, num_layers=8, num_heads=8, seq_len=128, T=3, n=6),
    "base": TRMConfig(hidden_size=768, num_layers=12, num_heads=12, seq_len=256, T=3, n=6),
    "large": TRMConfig(hidden_size=1024, num_layers=24, num_heads=16, seq_len=512, T=3, n=6),
}


def get_preset(name: str) -> TRMConfig:
    """The config of the preset called ``name``."""
    if name not in PRESETS:
        raise ValueError(f"unknown TRM preset {name!r}; valid names: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_parameter_counts() -> dict[str, int]:
    """Parameter count of each preset's ``TRMTokenModel``, built on the meta device (no memory)."""
    with torch.device("meta"):
        return {
            name: count_parameters(TRMTokenModel(config, PRESET_VOCAB_SIZE))
            for name, config in PRESETS.items()
        }
