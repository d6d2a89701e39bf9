"""Word-overlap features: what a query shares with the schema, for any vocabulary."""

from __future__ import annotations

from recursa.fc.overlap import (
    FUNCTION_BASE,
    NUM_MATCH_IDS,
    PARAM_BASE,
    QUERY_BASE,
    content_words,
    query_match_ids,
    schema_match_id,
    share_bucket,
    word_spans,
)


def test_content_words_split_identifiers_and_drop_stopwords():
    assert content_words("getStockPrices_v2") == {"stock", "price", "v", "2"}
    assert content_words("the price of a stock") == {"price", "stock"}


def test_share_buckets():
    query = {"triangle", "area", "base"}
    assert [share_bucket(words, query) for words in ({"volume"}, {"area", "x", "y"}, {"area", "cube"},
                                                     {"triangle", "area"}, set())] == [0, 1, 2, 3, 0]


def test_query_tokens_know_whether_their_word_names_a_parameter_or_function():
    text = "area of a triangle with base 10"
    offsets = [(0, 4), (5, 7), (8, 9), (10, 18), (19, 23), (24, 28), (29, 31)]
    ids = query_match_ids(word_spans(text), offsets, param_words={"base"}, function_words={"triangle", "area"})
    in_function, in_param = QUERY_BASE + 2, QUERY_BASE + 1
    assert ids == [in_function, QUERY_BASE, QUERY_BASE, in_function, QUERY_BASE, in_param, QUERY_BASE]


def test_schema_ids_stay_in_their_ranges():
    query = {"triangle", "area"}
    function = schema_match_id(FUNCTION_BASE, "calc_triangle_area", "Area of a triangle", query)
    param = schema_match_id(PARAM_BASE, "height", "Height of the triangle", query)
    assert FUNCTION_BASE < function < PARAM_BASE <= param < NUM_MATCH_IDS
    assert function == FUNCTION_BASE + 2 + 4 * 3 and param == PARAM_BASE + 0 + 4 * 2
