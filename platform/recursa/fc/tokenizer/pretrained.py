"""A pretrained LM's tokenizer, so the tool caller can read text through that LM's input embedding.

The LM's ids sit after recursa's special tokens: id ``len(SPECIAL_TOKENS) + k`` is the LM's token
``k``, so ``<pad>`` stays 0, ``<unk>`` 1, and the rows of the LM's embedding matrix line up with
ids by one fixed shift. The LM's own special tokens are never produced from text (the user's text
is not a chat template), and recursa's are matched in text as with the other tokenizers.

Encoding runs the Hugging Face `tokenizers` library on the LM's ``tokenizer.json``; the first
load (`from_model`) goes through transformers, which also reads tokenizers stored in GGUF files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from tokenizers import Tokenizer as HFTokenizer

from recursa.fc.tokenizer.base import (
    MATCHED_SPECIAL_TOKENS,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    UNK_SURFACE,
    _check_ids,
    _check_text,
    _SpecialIds,
)
from recursa.fc.tokenizer.files import CONFIG_FILE, _check_kind, _read_config, _write_atomic, _write_config

HF_TOKENIZER_FILE = "pretrained_tokenizer.json"
SHIFT = len(SPECIAL_TOKENS)  # recursa id = LM id + SHIFT
_MATCHED = re.compile("|".join(re.escape(token) for token in MATCHED_SPECIAL_TOKENS))


class PretrainedTokenizer(_SpecialIds):
    """An LM's tokenizer behind recursa's protocol; ``source`` names the LM (for its embedding)."""

    kind: ClassVar[str] = "pretrained"

    def __init__(self, serialized: str, source: str) -> None:
        self._serialized, self.source = serialized, source
        self._hf = HFTokenizer.from_str(serialized)
        self._hf.encode_special_tokens = True  # "<|im_start|>" typed by a user is text, not a control token
        self.lm_vocab_size = int(self._hf.get_vocab_size(with_added_tokens=True))

    @classmethod
    def from_model(cls, location: str, gguf_file: str | None = None, source: str | None = None) -> PretrainedTokenizer:
        """The tokenizer of the LM at ``location`` (a directory or hub id; ``gguf_file`` inside it)."""
        from transformers import AutoTokenizer

        options = {"gguf_file": gguf_file} if gguf_file else {}
        lm_tokenizer = AutoTokenizer.from_pretrained(location, **options)
        backend = getattr(lm_tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(f"{location}: the tokenizer has no fast (tokenizers) backend to read offsets from")
        return cls(backend.to_str(), source or location)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> PretrainedTokenizer:
        """Read a tokenizer written by ``save``."""
        directory = Path(directory)
        config = _read_config(directory)
        _check_kind(config, cls.kind, directory)
        path = directory / HF_TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file {path} does not exist")
        tokenizer = cls(path.read_text(encoding="utf-8"), str(config.get("source", "")))
        if tokenizer.vocab_size != config.get("vocab_size"):
            raise ValueError(f"{path}: vocabulary of {tokenizer.vocab_size}, but {CONFIG_FILE} says "
                             f"{config.get('vocab_size')!r}")
        return tokenizer

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the LM's ``tokenizer.json`` (as ``pretrained_tokenizer.json``) and recursa's config."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(directory / HF_TOKENIZER_FILE, self._serialized.encode("utf-8"))
        _write_config(directory, self.kind, self.vocab_size, {"source": self.source})

    @property
    def vocab_size(self) -> int:
        return SHIFT + self.lm_vocab_size

    def encode(self, text: str) -> list[int]:
        return self.encode_with_offsets(text)[0]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        text = _check_text(text)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        position = 0
        for special in _MATCHED.finditer(text):
            self._encode_plain(text, position, special.start(), ids, spans)
            ids.append(SPECIAL_TOKENS.index(special.group()))
            spans.append((special.start(), special.end()))
            position = special.end()
        self._encode_plain(text, position, len(text), ids, spans)
        return ids, spans

    def _encode_plain(self, text: str, start: int, end: int, ids: list[int], spans: list[tuple[int, int]]) -> None:
        """Append the LM's tokens of ``text[start:end]``, with spans made to tile it.

        Byte-level tokens of one character report overlapping spans; the character belongs to
        the first of them and the others get empty spans.
        """
        if start == end:
            return
        encoding = self._hf.encode(text[start:end], add_special_tokens=False)
        previous = start
        for k, (token, (_, token_end)) in enumerate(zip(encoding.ids, encoding.offsets, strict=True)):
            stop = end if k == len(encoding.ids) - 1 else max(previous, start + token_end)
            ids.append(SHIFT + token)
            spans.append((previous, stop))
            previous = stop

    def decode(self, ids: Iterable[int]) -> str:
        parts: list[str] = []
        pending: list[int] = []
        for i in _check_ids(ids, self.vocab_size):
            if i >= SHIFT:
                pending.append(i - SHIFT)
                continue
            if pending:
                parts.append(self._hf.decode(pending, skip_special_tokens=False))
                pending = []
            if i != PAD_ID:
                parts.append(UNK_SURFACE if i == UNK_ID else SPECIAL_TOKENS[i])
        if pending:
            parts.append(self._hf.decode(pending, skip_special_tokens=False))
        return "".join(parts)

    def __getstate__(self) -> dict[str, Any]:
        return {"serialized": self._serialized, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["serialized"], state["source"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source!r}, vocab_size={self.vocab_size})"
