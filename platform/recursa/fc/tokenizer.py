"""Tokenizers: a trained SentencePiece model and a character-level one, behind one protocol.

Both tokenizers share the same special tokens with the same ids (``SPECIAL_TOKENS``: ``<pad>`` is
0, ``<unk>`` is 1, ``<bos>`` 2, ... ``<sep>`` 12). Every special token except ``<pad>`` and
``<unk>`` is matched in text, so ``"<query>find flights<sep>"`` encodes ``<query>`` and ``<sep>``
as single ids. (The flip side: a user query that literally contains ``<sep>`` gets the special id;
escape such text before encoding if that matters.)

``encode_with_offsets`` returns, for each token, the ``[start, end)`` span of characters of the
input it came from. The spans tile the input: the first starts at 0, each starts where the previous
ended, the last ends at ``len(text)``. So the text of tokens ``i..j`` is always
``text[offsets[i][0]:offsets[j][1]]``, which is how argument values are copied out of a query.
A character that SentencePiece spells with several byte tokens (byte fallback, for characters not
in its vocabulary) belongs to the token holding its last byte; the tokens before it get empty
spans.

Typical use::

    tok = SentencePieceTokenizer.train(corpus, vocab_size=8192)
    tok.save("runs/x/tokenizer")
    tok = load_tokenizer("runs/x/tokenizer")
    ids, offsets = tok.encode_with_offsets("weather in Zürich tomorrow")
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import string
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import sentencepiece as spm

__all__ = [
    "SPECIAL_TOKENS",
    "CharTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "load_tokenizer",
]

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

CONFIG_FILE = "tokenizer.json"
SENTENCEPIECE_MODEL_FILE = "tokenizer.model"
FORMAT_NAME = "recursa.tokenizer"
FORMAT_VERSION = 1
# Longest training text, in UTF-8 bytes (SentencePiece's default of 4192 would silently drop
# prompts that carry function schemas).
MAX_SENTENCE_BYTES = 1 << 16

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Newer sentencepiece releases return offsets directly; older ones through an immutable proto.
_HAS_OFFSET_MAPPING = hasattr(spm.SentencePieceProcessor, "encode_as_offset_mapping")


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


# ----------------------------------------------------------------------------- helpers


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


# ----------------------------------------------------------------------------- SentencePiece


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


# ----------------------------------------------------------------------------- characters

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


# ----------------------------------------------------------------------------- loading

_KINDS: dict[str, type[SentencePieceTokenizer] | type[CharTokenizer]] = {
    SentencePieceTokenizer.kind: SentencePieceTokenizer,
    CharTokenizer.kind: CharTokenizer,
}


def load_tokenizer(directory: str | os.PathLike[str]) -> Tokenizer:
    """Load the tokenizer saved in ``directory``, whichever kind it is."""
    directory = Path(directory)
    kind = _read_config(directory).get("kind")
    if kind not in _KINDS:
        raise ValueError(
            f"{directory / CONFIG_FILE}: unknown tokenizer kind {kind!r}; "
            f"known kinds: {', '.join(sorted(_KINDS))}"
        )
    return _KINDS[kind].load(directory)
