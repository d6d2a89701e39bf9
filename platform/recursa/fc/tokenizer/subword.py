"""The SentencePiece tokenizer: a subword model trained for lossless text and exact offsets.

Apart from the character tokenizer because it is the one that depends on the sentencepiece
library and carries the byte-to-character offset conversion and the training-corpus sampling.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import sentencepiece as spm

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

SENTENCEPIECE_MODEL_FILE = "tokenizer.model"
# Longest training text, in UTF-8 bytes (SentencePiece's default of 4192 would silently drop
# prompts that carry function schemas).
MAX_SENTENCE_BYTES = 1 << 16
# Newer sentencepiece releases return offsets directly; older ones through an immutable proto.
_HAS_OFFSET_MAPPING = hasattr(spm.SentencePieceProcessor, "encode_as_offset_mapping")


def _byte_to_char_spans(
    text: str, byte_spans: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Convert ``[begin, end)`` UTF-8 byte spans over ``text`` to character spans.

    A span starts at the character containing its first byte and ends after the character
    containing its last byte; an empty span sits at the character containing its position.
    """
    if not byte_spans:
        return []
    if text.isascii():  # one byte per character
        return [(int(b), int(e)) for b, e in byte_spans]
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    widths = 1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    # char_of_byte[b]: index of the character that byte b belongs to; one past the end -> len(text)
    char_of_byte = np.append(np.repeat(np.arange(len(text)), widths), len(text))
    spans = np.asarray(byte_spans, dtype=np.int64).reshape(-1, 2)
    begin, end = spans[:, 0], spans[:, 1]
    starts = char_of_byte[begin]
    ends = np.where(end > begin, char_of_byte[np.maximum(end - 1, 0)] + 1, starts)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _reservoir_sample(texts: Iterable[str], size: int, rng: random.Random) -> list[str]:
    """A uniform sample of at most ``size`` non-empty texts, in one pass (algorithm R)."""
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, not a single string")
    sample: list[str] = []
    seen = 0
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if not text:
            continue
        seen += 1
        if len(sample) < size:
            sample.append(_check_text(text))
        else:
            slot = rng.randrange(seen)
            if slot < size:
                sample[slot] = _check_text(text)
    if not sample:
        raise ValueError("texts is empty: nothing to train a tokenizer on")
    return sample


class SentencePieceTokenizer(_SpecialIds):
    """A SentencePiece model (unigram or BPE) trained with ``train`` for lossless round trips.

    Training fixes the options that make offsets and decoding exact: identity normalization, no
    whitespace collapsing, no dummy prefix space, and byte fallback (no text is ever ``<unk>``).
    Digits are always split into single-digit tokens.

    Caveat: U+2581 (``▁``) is SentencePiece's own marker for a space, so a literal ``▁`` in the
    input decodes as a space. Offsets still point at the original ``▁``, so values copied by
    offsets are exact.
    """

    kind: ClassVar[str] = "sentencepiece"

    def __init__(self, model_proto: bytes) -> None:
        """Wrap a serialized SentencePiece model that was trained by ``train``."""
        self._model_proto = bytes(model_proto)
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=self._model_proto)
        except RuntimeError as e:
            raise ValueError(f"not a model trained by SentencePieceTokenizer.train: {e}") from e
        self._vocab_size = int(self._sp.get_piece_size())
        self._validate()

    def _validate(self) -> None:
        problems = [
            f"{token!r} has id {self._sp.piece_to_id(token)}, expected {i}"
            for i, token in enumerate(SPECIAL_TOKENS)
            if self._sp.piece_to_id(token) != i
        ]
        if self._sp.pad_id() != PAD_ID or self._sp.unk_id() != UNK_ID:
            ids = f"{self._sp.pad_id()}/{self._sp.unk_id()}"
            problems.append(f"pad/unk ids are {ids}, expected {PAD_ID}/{UNK_ID}")
        if not self._sp.is_byte(self._sp.piece_to_id("<0x00>")):
            problems.append("byte fallback is off")
        if problems:
            raise ValueError(
                "not a model trained by SentencePieceTokenizer.train: " + "; ".join(problems)
            )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8192,
        model_type: str = "unigram",
        *,
        seed: int = 0,
        max_sentences: int = 300_000,
        character_coverage: float = 0.9995,
        num_threads: int = 2,
        verbose: bool = False,
    ) -> SentencePieceTokenizer:
        """Train a new model on ``texts`` (one sentence or short document each), in memory.

        ``vocab_size`` counts everything: the 13 special tokens, 256 byte-fallback pieces, every
        character kept by ``character_coverage`` and the learned pieces; SentencePiece raises if
        the corpus is too small to fill it. If there are more than ``max_sentences`` texts, a
        uniform sample of that many, drawn with ``seed``, is used. Texts longer than
        ``MAX_SENTENCE_BYTES`` UTF-8 bytes are skipped. The same texts and arguments always give
        the same model.
        """
        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}")
        minimum = len(SPECIAL_TOKENS) + 256 + 1
        if vocab_size < minimum:
            raise ValueError(
                f"vocab_size must be at least {minimum} (special tokens, 256 byte-fallback pieces "
                f"and the corpus characters), got {vocab_size}"
            )
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")

        # Sample here rather than in SentencePiece, whose sampler ignores any seed we pass.
        sample = _reservoir_sample(texts, max_sentences, random.Random(seed))
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample),
            model_writer=model,
            model_type=model_type,
            vocab_size=vocab_size,
            hard_vocab_limit=False,  # vocab_size is an upper bound: a small corpus gets fewer pieces
            character_coverage=character_coverage,
            # Lossless text <-> pieces, so offsets index the raw input and decode is exact.
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            byte_fallback=True,
            split_digits=True,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            # <bos>/<eos> are user-defined like the other specials, so they are matched in text
            # and keep the ids of SPECIAL_TOKENS.
            bos_id=-1,
            eos_id=-1,
            user_defined_symbols=list(MATCHED_SPECIAL_TOKENS),
            unk_surface=UNK_SURFACE,
            input_sentence_size=max_sentences,  # already sampled; a guard, never binding
            max_sentence_length=MAX_SENTENCE_BYTES,
            shuffle_input_sentence=True,
            num_threads=num_threads,
            minloglevel=0 if verbose else 2,
        )
        return cls(model.getvalue())

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SentencePieceTokenizer:
        """Read a tokenizer written by ``save``."""
        directory = Path(directory)
        config = _read_config(directory)
        _check_kind(config, cls.kind, directory)
        model_file = config.get("model_file", SENTENCEPIECE_MODEL_FILE)
        if not isinstance(model_file, str) or Path(model_file).name != model_file:
            raise ValueError(
                f"{directory / CONFIG_FILE}: model_file must be a file name in the same "
                f"directory, got {model_file!r}"
            )
        model_path = directory / model_file
        if not model_path.is_file():
            raise FileNotFoundError(f"tokenizer model {model_path} does not exist")
        tokenizer = cls(model_path.read_bytes())
        if tokenizer.vocab_size != config.get("vocab_size"):
            raise ValueError(
                f"{model_path}: vocabulary of {tokenizer.vocab_size}, but {CONFIG_FILE} says "
                f"{config.get('vocab_size')!r}"
            )
        return tokenizer

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``tokenizer.model`` and ``tokenizer.json`` to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(directory / SENTENCEPIECE_MODEL_FILE, self._model_proto)
        _write_config(
            directory, self.kind, self.vocab_size, {"model_file": SENTENCEPIECE_MODEL_FILE}
        )

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def model_proto(self) -> bytes:
        """The serialized SentencePiece model."""
        return self._model_proto

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(_check_text(text)))

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        text = _check_text(text)
        ids, byte_spans = self._encode_byte_spans(text)
        return ids, _byte_to_char_spans(text, byte_spans)

    def _encode_byte_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and UTF-8 byte spans of each piece, as reported by SentencePiece."""
        if _HAS_OFFSET_MAPPING:
            mapping = self._sp.encode(text, out_type="offset_mapping", return_bytes=True)
            return list(mapping["ids"]), list(mapping["offsets"])
        # Older sentencepiece releases: the same byte offsets, as the pieces' begin/end fields.
        proto = self._sp.encode_as_immutable_proto(text)  # type: ignore[attr-defined]
        pieces = list(proto.pieces)
        return [p.id for p in pieces], [(p.begin, p.end) for p in pieces]

    def decode(self, ids: Iterable[int]) -> str:
        return self._sp.decode(_check_ids(ids, self._vocab_size))

    def id_to_piece(self, token_id: int) -> str:
        """The vocabulary entry of ``token_id`` (``▁`` marks a space, ``<0xNN>`` a byte)."""
        return self._sp.id_to_piece(_check_ids([token_id], self._vocab_size)[0])

    def __getstate__(self) -> dict[str, Any]:
        return {"model_proto": self._model_proto}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model_proto"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"
