"""The saved form of a tokenizer: a directory with ``tokenizer.json`` and the kind's own files.

Files are written atomically; the config is checked when read (format, version, special tokens,
kind). Apart from the tokenizers because both kinds write the same config and `load_tokenizer`
reads it to tell which kind to load.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from recursa.fc.tokenizer.base import SPECIAL_TOKENS

CONFIG_FILE = "tokenizer.json"
FORMAT_NAME = "recursa.tokenizer"
FORMAT_VERSION = 1


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_config(directory: Path, kind: str, vocab_size: int, extra: dict[str, Any]) -> None:
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "vocab_size": vocab_size,
        "special_tokens": list(SPECIAL_TOKENS),
        **extra,
    }
    _write_atomic(directory / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode("utf-8"))


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer in {directory}: {path} does not exist")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not a recursa tokenizer file (no format {FORMAT_NAME!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {config.get('format_version')!r} is not supported "
            f"(expected {FORMAT_VERSION})"
        )
    if config.get("special_tokens") != list(SPECIAL_TOKENS):
        raise ValueError(f"{path}: special_tokens differ from this version's SPECIAL_TOKENS")
    return config


def _check_kind(config: dict[str, Any], kind: str, directory: Path) -> None:
    if config.get("kind") != kind:
        raise ValueError(
            f"{directory / CONFIG_FILE}: holds a {config.get('kind')!r} tokenizer, not {kind!r}; "
            "use load_tokenizer() to load whichever kind was saved"
        )
