"""The character tokenizer: one id per character, for tests and tiny runs.

Apart from the SentencePiece tokenizer because it needs no model file and no training library;
its vocabulary is a character list saved in the config itself.
"""

from __future__ import annotations

import os
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from recursa.fc.tokenizer.base import (
    MATCHED_SPECIAL_TOKENS,
    PAD_ID,
    SPECIAL_IDS,
    SPECIAL_TOKENS,
    UNK_ID,
    UNK_SURFACE,
    _check_ids,
    _check_text,
    _SpecialIds,
)
from recursa.fc.tokenizer.files import CONFIG_FILE, _check_kind, _read_config, _write_config

# Printable ASCII plus tab and newline.
DEFAULT_CHARS: str = string.ascii_letters + string.digits + string.punctuation + " \t\n"

_SPECIALS_ALTERNATION = "|".join(
    re.escape(token) for token in sorted(MATCHED_SPECIAL_TOKENS, key=len, reverse=True)
)
_CHAR_TOKEN = re.compile(f"{_SPECIALS_ALTERNATION}|.", re.DOTALL)
_SPECIAL_TOKEN = re.compile(_SPECIALS_ALTERNATION)


def _is_vocabulary_char(char: str) -> bool:
    """Whether a corpus character joins the vocabulary: not a control code, bar tab/CR/LF."""
    return unicodedata.category(char) not in ("Cc", "Cs") or char in "\t\n\r"


class CharTokenizer(_SpecialIds):
    """One id per character: the special tokens, then a fixed character set; others are ``<unk>``.

    For tests and tiny runs. Offsets are exact (one character, or one special token, per token).
    """

    kind: ClassVar[str] = "char"

    def __init__(self, chars: Iterable[str] = DEFAULT_CHARS) -> None:
        """A tokenizer over ``chars`` (single characters; duplicates ignored, order kept)."""
        vocabulary: dict[str, int] = {}
        for char in chars:
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"chars must be single characters, got {char!r}")
            vocabulary.setdefault(char, len(SPECIAL_TOKENS) + len(vocabulary))
        self._chars = tuple(vocabulary)
        self._char_ids = vocabulary
        self._id_to_text = list(SPECIAL_TOKENS) + list(self._chars)
        self._id_to_text[PAD_ID] = ""
        self._id_to_text[UNK_ID] = UNK_SURFACE

    @classmethod
    def train(
        cls, texts: Iterable[str], *, min_count: int = 1, max_chars: int | None = None
    ) -> CharTokenizer:
        """A tokenizer over the characters seen in ``texts``, except control characters.

        Keeps characters seen at least ``min_count`` times, at most ``max_chars`` of the most
        frequent ones; special tokens in the texts are not counted as characters.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, not a single string")
        counts: Counter[str] = Counter()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
            counts.update(_SPECIAL_TOKEN.sub("", text))
        kept = [
            (char, n) for char, n in counts.items() if n >= min_count and _is_vocabulary_char(char)
        ]
        kept.sort(key=lambda item: (-item[1], item[0]))
        if max_chars is not None:
            kept = kept[:max_chars]
        return cls(sorted(char for char, _ in kept))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> CharTokenizer:
        """Read a tokenizer written by ``save``."""
        directory = Path(directory)
        config = _read_config(directory)
        _check_kind(config, cls.kind, directory)
        chars = config.get("chars")
        if not isinstance(chars, list):
            raise ValueError(f"{directory / CONFIG_FILE}: 'chars' must be a list of characters")
        tokenizer = cls(chars)
        if tokenizer.vocab_size != config.get("vocab_size"):
            raise ValueError(
                f"{directory / CONFIG_FILE}: {len(chars)} chars make a vocabulary of "
                f"{tokenizer.vocab_size}, but vocab_size says {config.get('vocab_size')!r}"
            )
        return tokenizer

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``tokenizer.json`` (which holds the character list) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _write_config(directory, self.kind, self.vocab_size, {"chars": list(self._chars)})

    @property
    def vocab_size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self._chars)

    @property
    def chars(self) -> tuple[str, ...]:
        """The characters of the vocabulary, in id order (first id ``len(SPECIAL_TOKENS)``)."""
        return self._chars

    def _token_id(self, token: str) -> int:
        if len(token) == 1:
            return self._char_ids.get(token, UNK_ID)
        return SPECIAL_IDS[token]

    def encode(self, text: str) -> list[int]:
        text = _check_text(text)
        return [self._token_id(token) for token in _CHAR_TOKEN.findall(text)]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        text = _check_text(text)
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for match in _CHAR_TOKEN.finditer(text):
            ids.append(self._token_id(match.group()))
            offsets.append(match.span())
        return ids, offsets

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self._id_to_text[i] for i in _check_ids(ids, self.vocab_size))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"
