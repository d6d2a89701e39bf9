"""What both tokenizers share: the special tokens and their ids, the protocol, input checks.

Apart from the two tokenizers because both build on it: they take their ids, special-token
properties and input checks from here, so they agree by construction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

SPECIAL_TOKENS: tuple[str, ...] = (
    "<pad>",
    "<unk>",
    "<bos>",
    "<eos>",
    "<cls>",
    "<query>",
    "<function>",
    "<param>",
    "<type>",
    "<enum>",
    "<value>",
    "<nocall>",
    "<sep>",
)
PAD_ID = 0
UNK_ID = 1
SPECIAL_IDS: dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
# Special tokens that are recognised inside text (``<pad>`` and ``<unk>`` are never typed).
MATCHED_SPECIAL_TOKENS: tuple[str, ...] = SPECIAL_TOKENS[2:]
# What decode() writes for ``<unk>`` (U+2047 DOUBLE QUESTION MARK, SentencePiece's usual choice).
UNK_SURFACE = "\u2047"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@runtime_checkable
class Tokenizer(Protocol):
    """What the rest of recursa needs from a tokenizer."""

    @property
    def vocab_size(self) -> int:
        """Number of ids; every id is in ``range(vocab_size)``."""
        ...

    @property
    def pad_id(self) -> int:
        """Id of ``<pad>`` (always 0)."""
        ...

    @property
    def unk_id(self) -> int:
        """Id of ``<unk>`` (always 1)."""
        ...

    @property
    def special_ids(self) -> dict[str, int]:
        """Id of each of ``SPECIAL_TOKENS``."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        ...

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of ``text`` and each token's ``[start, end)`` character span in ``text``."""
        ...

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; ``<pad>`` decodes to nothing."""
        ...

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the tokenizer to ``directory`` (created if missing), for ``load_tokenizer``."""
        ...


def _check_text(text: Any) -> str:
    """``text`` itself, with lone surrogates (not encodable as UTF-8) replaced by U+FFFD.

    The replacement keeps the length, so character offsets still index the original string.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text


def _check_ids(ids: Iterable[int], vocab_size: int) -> list[int]:
    """``ids`` as a list of Python ints (accepts numpy arrays and tensors), range-checked."""
    checked = [int(i) for i in ids]
    for i in checked:
        if not 0 <= i < vocab_size:
            raise ValueError(f"token id {i} is out of range for a vocabulary of {vocab_size}")
    return checked


class _SpecialIds:
    """The special-token ids both tokenizers share."""

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def unk_id(self) -> int:
        return UNK_ID

    @property
    def special_ids(self) -> dict[str, int]:
        return dict(SPECIAL_IDS)
