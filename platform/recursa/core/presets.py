"""Named TRM sizes, from the laptop quickstart (tiny) to large: `TRMConfig(preset=...)` starts from one.

Approximate sizes of ``TRMTokenModel`` with the preset vocabulary: tiny ~2.5M, small ~34M,
base ~98M, large ~320M parameters. All use the official recursion depth (T=3, n=6).
"""

from __future__ import annotations

from typing import Literal

PresetName = Literal["tiny", "small", "base", "large"]
PRESET_VOCAB_SIZE = 8192

PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 128, "num_layers": 2, "num_heads": 4, "seq_len": 32, "T": 3, "n": 6},
    "small": {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "seq_len": 128, "T": 3, "n": 6},
    "base": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "seq_len": 256, "T": 3, "n": 6},
    "large": {"hidden_size": 1024, "num_layers": 24, "num_heads": 16, "seq_len": 512, "T": 3, "n": 6},
}
