"""Self-describing model directories: every saved or exported model writes `artifact.json`.

The file says what the directory is (its kind), which layout version it follows, which files it
holds and what produced it. Commands open a model with `open_artifact(path, expect=...)` instead of
guessing from file names, so a wrong or missing directory is one line naming the path, what was
expected and the command that makes one.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recursa import __version__
from recursa.core.config import ConfigError, describe_validation_error

ARTIFACT_FILE = "artifact.json"
FORMAT_VERSION = 1
# A run directory (runs/<name>/) holds its model in one of these; the first with artifact.json wins.
RUN_MODEL_DIRS = ("policy", "model", "adapter")
# The command that makes each kind, for the error a user sees when it is missing.
CREATED_BY = {
    "gift-policy": "recursa train gift",
    "gift-export": "recursa export trm --checkpoint runs/<gift run>",
    "fc-model": "recursa train fc",
    "fc-int8": "recursa export trm --checkpoint runs/<fc run>",
    "lora-adapter": "recursa train llm",
    "llm-merged": "recursa export llm --adapter <adapter> --format merged",
    "llm-gguf": "recursa export llm --adapter <adapter> --format gguf",
    "llm-base": "recursa llm init-tiny",
}


class Producer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recursa: str
    by: str


class Artifact(BaseModel):
    """The contents of artifact.json; writers may add their own keys (kept as extra fields)."""

    # Extra keys are allowed so each product can record what it needs without a core change.
    model_config = ConfigDict(extra="allow")

    kind: str
    format_version: int
    files: list[str]
    producer: Producer
    created: datetime
    path: Path = Field(default_factory=Path, exclude=True)  # where it was read or written; not stored


def write_artifact(directory: str | Path, kind: str, producer: str, **extra) -> Artifact:
    """Describe `directory` (every file in it, recursively) in its artifact.json; call it last."""
    directory = Path(directory)
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                   if p.is_file() and p.name != ARTIFACT_FILE)
    artifact = Artifact(kind=kind, format_version=FORMAT_VERSION, files=files,
                        producer=Producer(recursa=__version__, by=producer),
                        created=datetime.now(timezone.utc), path=directory, **extra)
    (directory / ARTIFACT_FILE).write_text(artifact.model_dump_json(indent=2) + "\n")
    return artifact


def read_artifact(path: str | Path) -> Artifact:
    """The artifact.json of a model directory; a missing or malformed file is a ConfigError."""
    path = Path(path)
    file = path / ARTIFACT_FILE
    if not file.is_file():
        raise ConfigError(f"{path}: no {ARTIFACT_FILE}")
    try:
        artifact = Artifact.model_validate(json.loads(file.read_text()))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{file}: not valid JSON ({error})") from None
    except ValidationError as error:
        raise ConfigError(f"{file}: {describe_validation_error(error)}") from None
    artifact.path = path
    return artifact


def open_artifact(path: str | Path, expect: str | tuple[str, ...]) -> Artifact:
    """The artifact at `path` (a model directory, or a run directory holding one), of a kind in `expect`.

    The rule for run directories: a directory without artifact.json is read as a run, and its model
    is the first of policy/, model/, adapter/ that has one.
    """
    path = Path(path)
    kinds = (expect,) if isinstance(expect, str) else tuple(expect)
    if not path.exists():
        raise ConfigError(_expected(path, kinds, "nothing (no such path)"))
    directory = next((d for d in (path, *(path / name for name in RUN_MODEL_DIRS))
                      if (d / ARTIFACT_FILE).is_file()), None)
    if directory is None:
        found = "a directory without one" if path.is_dir() else "a file"
        raise ConfigError(_expected(path, kinds, found))
    artifact = read_artifact(directory)
    if artifact.kind not in kinds:
        raise ConfigError(_expected(directory, kinds, f"a {artifact.kind}"))
    return artifact


def _expected(path: Path, kinds: tuple[str, ...], found: str) -> str:
    commands = " or ".join(f"`{CREATED_BY.get(kind, 'recursa --help')}`" for kind in kinds)
    return f"{path}: expected a {' or '.join(kinds)} ({ARTIFACT_FILE}), found {found}; create one with {commands}"
