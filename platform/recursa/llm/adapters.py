"""Several LoRA adapters on one base model in memory, switched per batch.

PEFT keeps every loaded adapter beside the one copy of the base weights (`PeftModel.load_adapter`)
and runs whichever `set_adapter` chose; `disable_adapter()` runs the base alone. Adapters load on
demand and are unloaded when Serve's multiplexing evicts them. Eviction is deferred until the next
adapter has loaded, because PEFT cannot load an adapter into a PeftModel left with none.

A lock makes switching and generating one step: generation runs in a worker thread, loading in
another, and Serve calls the eviction hook from a third.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from peft import PeftModel
from transformers import PreTrainedModel

from recursa.core.config import ConfigError
from recursa.llm.models import ADAPTER_CONFIG, ADAPTER_WEIGHTS


class LoRAAdapters:
    """The base model and the configured adapters (served id -> directory) that may run on it."""

    def __init__(self, base: PreTrainedModel, directories: Mapping[str, str]):
        for name, directory in directories.items():
            missing = [f for f in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (Path(directory) / f).is_file()]
            if missing:
                raise ConfigError(f"adapters.{name}: no {', '.join(missing)} in {directory}")
        self.model: PreTrainedModel | PeftModel = base
        self.directories = dict(directories)
        self._evicted: set[str] = set()
        self._lock = threading.Lock()

    def loaded(self) -> list[str]:
        """The adapters in memory now, evicted ones waiting to be unloaded included."""
        return list(self.model.peft_config) if isinstance(self.model, PeftModel) else []

    def load(self, name: str) -> None:
        """Bring a configured adapter into memory (a no-op when it is there)."""
        with self._lock:
            self._load(name)

    def evict(self, name: str) -> None:
        """Unload the adapter once another one has loaded."""
        with self._lock:
            self._evicted.add(name)

    @contextmanager
    def active(self, name: str | None) -> Iterator[PreTrainedModel | PeftModel]:
        """The model running adapter `name` (None: the base alone), held for the duration."""
        with self._lock:
            if name is None:
                if isinstance(self.model, PeftModel):
                    with self.model.disable_adapter():
                        yield self.model
                else:
                    yield self.model
                return
            self._load(name)
            self.model.set_adapter(name)
            yield self.model

    def _load(self, name: str) -> None:
        self._evicted.discard(name)
        if name in self.loaded():
            return
        directory = self.directories[name]
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(directory, adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, directory, adapter_name=name)
        self.model.eval()
        for evicted in self._evicted & set(self.loaded()):
            self.model.delete_adapter(evicted)
        self._evicted.clear()
