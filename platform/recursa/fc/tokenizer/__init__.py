"""Tokenizers: a trained SentencePiece model, a character-level one and a pretrained LM's, behind one protocol.

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

The package: `base` holds the special tokens and the protocol, `subword` the SentencePiece
tokenizer, `char` the character one, `files` the directory format both save to; this module is
the public face and loads whichever kind a directory holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from recursa.fc.tokenizer.base import SPECIAL_IDS, SPECIAL_TOKENS, Tokenizer
from recursa.fc.tokenizer.char import CharTokenizer
from recursa.fc.tokenizer.files import CONFIG_FILE, _read_config
from recursa.fc.tokenizer.pretrained import PretrainedTokenizer
from recursa.fc.tokenizer.subword import SentencePieceTokenizer

__all__ = [
    "SPECIAL_IDS",
    "SPECIAL_TOKENS",
    "CharTokenizer",
    "PretrainedTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "load_tokenizer",
]

_KINDS: dict[str, type[SentencePieceTokenizer] | type[CharTokenizer] | type[PretrainedTokenizer]] = {
    SentencePieceTokenizer.kind: SentencePieceTokenizer,
    CharTokenizer.kind: CharTokenizer,
    PretrainedTokenizer.kind: PretrainedTokenizer,
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
