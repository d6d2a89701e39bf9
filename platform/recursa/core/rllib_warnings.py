"""Keeps RLlib's one false deprecation warning out of our output.

Ray 2.60's `RLModule.__init__` builds the deprecated `RLModuleConfig` itself (for old custom modules),
so constructing any RLModule with the current arguments (observation_space, action_space,
inference_only, model_config) logs "`RLModule(config=[RLModuleConfig object])` has been deprecated"
once per process (ray-project/ray#51630). Really passing `config=` raises in this Ray, so the message
can only be the false one; every other deprecation warning still shows.
"""

from __future__ import annotations

import logging

_FALSE_WARNING = "`RLModule(config=[RLModuleConfig object])` has been deprecated"


class _DropFalseRLModuleConfigWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _FALSE_WARNING not in record.getMessage()


def drop_false_rlmodule_config_warning() -> None:
    """Filter the false warning from Ray's deprecation logger in this process (idempotent)."""
    logger = logging.getLogger("ray._common.deprecation")
    if not any(isinstance(f, _DropFalseRLModuleConfigWarning) for f in logger.filters):
        logger.addFilter(_DropFalseRLModuleConfigWarning())
