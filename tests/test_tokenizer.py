"""Tokenizers: lossless round trips, offsets that copy spans out of a query, specials, save/load."""

from __future__ import annotations

import itertools
import json
import pickle
import random

import numpy as np
import pytest

from recursa.fc.tokenizer import (
    SPECIAL_TOKENS,
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    load_tokenizer,
    subword,
)

WORDS = [
    "book", "a", "flight", "from", "to", "the", "hotel", "in", "for", "two", "people", "tomorrow", "weather", "what",
    "is", "find", "me", "cheap", "restaurants", "near", "show", "my", "orders", "cancel", "order", "number", "price",
    "of", "stock", "convert", "euros", "dollars", "café", "Zürich", "São", "Paulo", "naïve", "crème", "brûlée",
    "Kraków", "résumé"
]
CITIES = ("Paris", "London", "Tokyo", "New York", "Zürich", "São Paulo", "Kraków", "Montréal")
FUNCTIONS = ("book_flight", "get_weather", "find_restaurants", "convert_currency", "cancel_order")

ASCII_TEXTS = [
    "Book a flight from Paris to London for 2 people on 2024-05-17.",
    "What is the weather in New York tomorrow?",
    "  leading, trailing   and  repeated spaces  ",
    "tabs\tand\nnew lines\r\nand {\"json\": [1, 2.5, null]}",
    "<query>cancel order 12345<sep><function>cancel_order<param>order_id<type>integer<nocall>",
    "literal <pad> and <unk> are just text; <Query> is not a special token",
    "",
    "x",
]
NON_ASCII_TEXTS = [
    "Réserve une table au café à Zürich pour 4 personnes",
    "São Paulo → Kraków, 3× crème brûlée, naïve résumé",  # noqa: RUF001 - non-ASCII on purpose
    "emoji 😀🚀 and a family 👩‍👩‍👧 and flags 🇫🇷",
    "日本語のテキスト、東京まで 2 枚",
    "combining e\u0301 vs precomposed é, Greek Ωμέγα, Cyrillic Москва",
    "<query>météo à Montréal 🌧️<sep>",
]
# Characters that no corpus here contains: SentencePiece must fall back to bytes.
UNSEEN = "\U0001f916 \u2603 \u0915\u093f \x00 \x07 \ue000"


def make_corpus(n: int = 3000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    corpus = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.6:
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
            words.insert(rng.randrange(len(words) + 1), str(rng.randint(0, 99999)))
            sentence = " ".join(words)
            corpus.append(sentence[0].upper() + sentence[1:] + rng.choice(".?!"))
        elif kind < 0.85:
            corpus.append(
                f"<query>{rng.choice(WORDS)} in {rng.choice(CITIES)} on 2024-0{rng.randint(1, 9)}-"
                f"{rng.randint(10, 28)}<sep><function>{rng.choice(FUNCTIONS)}<param>city"
                f"<type>string<value>{rng.choice(CITIES)}<sep>"
            )
        else:
            corpus.append(
                json.dumps({"name": rng.choice(FUNCTIONS), "arguments": {"n": rng.randint(0, 500)}},
                           indent=2)
            )
    return corpus


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return make_corpus()


@pytest.fixture(scope="module")
def sp_tok(corpus) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(corpus, vocab_size=450, seed=0)


@pytest.fixture(scope="module")
def char_tok(corpus) -> CharTokenizer:
    return CharTokenizer.train(corpus + ASCII_TEXTS + NON_ASCII_TEXTS)


@pytest.fixture(params=["sentencepiece", "char"])
def tok(request, sp_tok, char_tok) -> Tokenizer:
    return sp_tok if request.param == "sentencepiece" else char_tok


def whole_char_slices(offsets: list[tuple[int, int]]):
    """Every (i, j) such that tokens i..j start and end on character boundaries.

    With byte fallback, the leading bytes of a character have empty spans; a slice that ends on
    one, or starts right after one, cuts a character in half.
    """
    n = len(offsets)
    boundary = [k == 0 or offsets[k - 1][0] < offsets[k - 1][1] for k in range(n + 1)]
    return [(i, j) for i in range(n) for j in range(i, n) if boundary[i] and boundary[j + 1]]


def test_both_satisfy_the_protocol_and_share_special_ids(sp_tok, char_tok):
    expected = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for tok in (sp_tok, char_tok):
        assert isinstance(tok, Tokenizer)
        assert tok.pad_id == 0 and tok.unk_id == 1
        assert tok.special_ids == expected
    assert sp_tok.vocab_size == 450
    assert char_tok.vocab_size == len(SPECIAL_TOKENS) + len(char_tok.chars)


def test_special_tokens_encode_as_single_ids(tok):
    for token in SPECIAL_TOKENS[2:]:
        assert tok.encode(token) == [tok.special_ids[token]]
    text = "<query>weather in Paris<sep><function>get_weather<param>city<value>Paris<eos>"
    ids, offsets = tok.encode_with_offsets(text)
    for token in ("<query>", "<sep>", "<function>", "<param>", "<value>", "<eos>"):
        i = ids.index(tok.special_ids[token])
        assert text[offsets[i][0]:offsets[i][1]] == token
    # <pad> and <unk> are never matched in text; they stay plain characters.
    assert tok.encode("<pad>") != [tok.pad_id] and tok.encode("<unk>") != [tok.unk_id]


@pytest.mark.parametrize("text", ASCII_TEXTS + NON_ASCII_TEXTS)
def test_sentencepiece_round_trip_is_exact(sp_tok, text):
    ids = sp_tok.encode(text)
    assert sp_tok.decode(ids) == text
    assert sp_tok.unk_id not in ids  # byte fallback: nothing is unknown


@pytest.mark.parametrize("text", ASCII_TEXTS + NON_ASCII_TEXTS)
def test_char_round_trip_is_exact_for_known_characters(char_tok, text):
    assert char_tok.decode(char_tok.encode(text)) == text


@pytest.mark.parametrize("text", ASCII_TEXTS + NON_ASCII_TEXTS + [UNSEEN])
def test_offsets_tile_the_text(tok, text):
    ids, offsets = tok.encode_with_offsets(text)
    assert ids == tok.encode(text)
    assert len(offsets) == len(ids)
    if text:
        assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    for (_, end), (start, _) in itertools.pairwise(offsets):
        assert end == start
    assert all(start <= end for start, end in offsets)


@pytest.mark.parametrize("text", ASCII_TEXTS + NON_ASCII_TEXTS)
def test_offsets_recover_every_token_and_every_span(tok, text):
    ids, offsets = tok.encode_with_offsets(text)
    for i, j in whole_char_slices(offsets):
        assert tok.decode(ids[i:j + 1]) == text[offsets[i][0]:offsets[j][1]], (i, j)


def test_offsets_copy_an_argument_value_out_of_a_query(tok):
    query = "Book a table at Café Brûlé in Zürich for 12 people 🎉"
    _, offsets = tok.encode_with_offsets(query)
    start, end = query.index("Café Brûlé"), query.index(" in Zürich")
    first = next(i for i, (s, e) in enumerate(offsets) if s <= start < e)
    last = next(i for i, (s, e) in enumerate(offsets) if s < end <= e)
    value = query[offsets[first][0]:offsets[last][1]]
    assert value.strip() == "Café Brûlé"


def test_byte_fallback_character_belongs_to_its_last_byte(sp_tok):
    text = "a\U0001f916b"  # a robot face: not in the training corpus, 4 UTF-8 bytes
    ids, offsets = sp_tok.encode_with_offsets(text)
    assert sp_tok.decode(ids) == text
    robot = [k for k, (s, e) in enumerate(offsets) if s == 1 and ids[k] not in sp_tok.encode("ab")]
    assert len(robot) == 4  # spelled as 4 byte tokens
    assert [offsets[k] for k in robot] == [(1, 1), (1, 1), (1, 1), (1, 2)]


def test_byte_spans_convert_to_character_spans():
    # bytes: a=0..1, é=1..3, 😀=3..7 (as 4 byte tokens), b=7..8
    byte_spans = [(0, 1), (1, 3), (3, 3), (3, 3), (3, 3), (3, 7), (7, 8)]
    char_spans = subword._byte_to_char_spans("aé😀b", byte_spans)
    assert char_spans == [(0, 1), (1, 2), (2, 2), (2, 2), (2, 2), (2, 3), (3, 4)]


def test_offsets_agree_with_the_immutable_proto_api(sp_tok, monkeypatch):
    """The path used by sentencepiece releases without ``return_type='offset_mapping'``."""
    texts = ASCII_TEXTS + NON_ASCII_TEXTS + [UNSEEN]
    expected = [sp_tok.encode_with_offsets(text) for text in texts]
    processor = sp_tok._sp
    if not hasattr(processor, "encode_as_immutable_proto"):
        pytest.importorskip("google.protobuf")

        class ImmutableProtoProcessor:  # the same begin/end fields, from the protobuf API
            def encode_as_immutable_proto(self, text):
                return processor.encode(text, out_type="proto")

        monkeypatch.setattr(sp_tok, "_sp", ImmutableProtoProcessor())
    monkeypatch.setattr(subword, "_HAS_OFFSET_MAPPING", False)
    assert [sp_tok.encode_with_offsets(text) for text in texts] == expected


def test_digits_are_split(tok):
    text = "call 5551234 at 10:45, order #00917"
    _, offsets = tok.encode_with_offsets(text)
    for start, end in offsets:
        piece = text[start:end]
        if any(c.isdigit() for c in piece):
            assert len(piece.strip()) == 1, piece


def test_unknown_characters_never_crash(sp_tok, char_tok):
    for text in (UNSEEN, "lone surrogate \ud800 here", "\u2581 is SentencePiece's space marker"):
        for tok in (sp_tok, char_tok):
            ids, offsets = tok.encode_with_offsets(text)
            assert len(ids) == len(offsets) and offsets[-1][1] == len(text)
            assert all(0 <= i < tok.vocab_size for i in ids)
            assert isinstance(tok.decode(ids), str)
    assert sp_tok.decode(sp_tok.encode(UNSEEN)) == UNSEEN
    ids, offsets = char_tok.encode_with_offsets("a\U0001f916b")
    assert ids[1] == char_tok.unk_id and offsets[1] == (1, 2)  # still copyable by offsets
    assert char_tok.decode(ids) == "a\u2047b"


def test_decode_accepts_arrays_and_rejects_out_of_range_ids(tok):
    ids = tok.encode("Paris 2024")
    assert tok.decode(np.asarray(ids, dtype=np.int64)) == "Paris 2024"
    assert tok.decode([tok.pad_id, *ids, tok.pad_id]) == "Paris 2024"
    for bad in (tok.vocab_size, -1):
        with pytest.raises(ValueError, match="out of range"):
            tok.decode([bad])
    with pytest.raises(TypeError):
        tok.encode(b"bytes")  # type: ignore[arg-type]


def test_save_and_load_give_identical_encodings(tok, tmp_path):
    tok.save(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert config["kind"] == tok.kind and config["vocab_size"] == tok.vocab_size
    loaded = load_tokenizer(tmp_path / "tok")
    assert type(loaded) is type(tok) and loaded.vocab_size == tok.vocab_size
    for text in ASCII_TEXTS + NON_ASCII_TEXTS + [UNSEEN]:
        assert loaded.encode_with_offsets(text) == tok.encode_with_offsets(text)
    other = CharTokenizer if isinstance(tok, SentencePieceTokenizer) else SentencePieceTokenizer
    with pytest.raises(ValueError, match="load_tokenizer"):
        other.load(tmp_path / "tok")


def test_load_reports_missing_or_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"kind": "char"}')
    with pytest.raises(ValueError, match="not a recursa tokenizer"):
        load_tokenizer(tmp_path)


def test_long_texts_are_not_dropped_from_training(corpus):
    # One long document (> 4192 bytes, SentencePiece's default limit) repeating a word seen
    # nowhere else: only if it is trained on does the word get longer pieces.
    word = "schema_parameter_description"
    long_text = " ".join([word] * 400)
    without = SentencePieceTokenizer.train(corpus[:500], vocab_size=450)
    with_long = SentencePieceTokenizer.train([*corpus[:500], long_text], vocab_size=450)
    assert len(with_long.encode(word)) < len(without.encode(word))


def test_sentencepiece_tokenizer_pickles(sp_tok):
    clone = pickle.loads(pickle.dumps(sp_tok))
    assert clone.model_proto == sp_tok.model_proto
    assert clone.encode(NON_ASCII_TEXTS[0]) == sp_tok.encode(NON_ASCII_TEXTS[0])


def test_training_is_deterministic_and_validates_arguments(corpus, sp_tok):
    again = SentencePieceTokenizer.train(corpus, vocab_size=450, seed=0)
    assert again.model_proto == sp_tok.model_proto
    # With more texts than max_sentences, the seed picks the sample.
    sampled = [
        SentencePieceTokenizer.train(corpus, vocab_size=450, seed=seed, max_sentences=1000)
        for seed in (0, 0, 1)
    ]
    assert sampled[0].model_proto == sampled[1].model_proto != sampled[2].model_proto
    with pytest.raises(ValueError, match="empty"):
        SentencePieceTokenizer.train(["", ""])
    with pytest.raises(ValueError, match="vocab_size"):
        SentencePieceTokenizer.train(corpus, vocab_size=100)
    with pytest.raises(ValueError, match="model_type"):
        SentencePieceTokenizer.train(corpus, model_type="word")
    with pytest.raises(ValueError, match="not a model trained"):
        SentencePieceTokenizer(b"not a model")


def test_bpe_model_has_the_same_guarantees(corpus):
    bpe = SentencePieceTokenizer.train(corpus, vocab_size=450, model_type="bpe")
    for text in ASCII_TEXTS + NON_ASCII_TEXTS:
        ids, offsets = bpe.encode_with_offsets(text)
        assert bpe.decode(ids) == text
        assert "".join(text[s:e] for s, e in offsets) == text
    assert bpe.encode("<nocall>") == [bpe.special_ids["<nocall>"]]


def test_char_tokenizer_vocabulary():
    trained = CharTokenizer.train(["ab<query>", "ba\x07c"], min_count=1)
    assert trained.chars == ("a", "b", "c")  # specials and control characters are not chars
    assert CharTokenizer.train(["aab"], min_count=2).chars == ("a",)
    assert CharTokenizer.train(["aaabbc"], max_chars=2).chars == ("a", "b")
    default = CharTokenizer()
    assert default.encode("Hi!") == [len(SPECIAL_TOKENS) + default.chars.index(c) for c in "Hi!"]
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer(["ab"])
