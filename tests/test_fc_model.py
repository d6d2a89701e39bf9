"""The tool-calling TRM: value alignment, features and targets, heads, generation, decoding, a tiny overfit."""

from __future__ import annotations

import pytest
import torch

from fc_fitting import fit_until_correct
from recursa.core.trm import TRMConfig
from recursa.fc.ast_reward import score_example
from recursa.fc.data.schema import FCExample
from recursa.fc.decode import decode_calls, segments
from recursa.fc.features import (
    ABSENT,
    ENUM,
    GENERATE,
    IGNORE,
    MODES,
    QUERY,
    SPAN,
    TAG_B,
    TAG_I,
    TAG_O,
    TRUE,
    Featurizer,
    collate,
)
from recursa.fc.model import FunctionCallingTRM, fc_loss
from recursa.fc.tokenizer import CharTokenizer
from recursa.fc.values import convert, locate_value, number_mentions, parse_number
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

WEATHER = FunctionSpec(name="get_weather", description="Weather for a city", parameters=[
    ParamSpec(name="city", type="string"),
    ParamSpec(name="days", type="integer", required=False, default=1),
    ParamSpec(name="unit", type="string", enum=["celsius", "fahrenheit"], required=False),
    ParamSpec(name="alerts", type="boolean", required=False),
    ParamSpec(name="tags", type="array", items=ParamSpec(name="items", type="string"), required=False),
    ParamSpec(name="loc", type="object", required=False, properties=[
        ParamSpec(name="lat", type="float"), ParamSpec(name="lon", type="float")]),
])
FLIGHT = FunctionSpec(name="book_flight", description="Book a flight", parameters=[
    ParamSpec(name="date", type="string", description="Departure date as YYYY-MM-DD")])
STOCK = FunctionSpec(name="get_stock", description="Stock price", parameters=[ParamSpec(name="ticker")])
EXAMPLES = [
    FCExample(id="1", query="Weather in Paris for three days in celsius with alerts, tags rain and wind, at 48.8 and 2.35",
              functions=[STOCK, WEATHER],
              calls=[FunctionCall(name="get_weather", arguments={
                  "city": "Paris", "days": 3, "unit": "celsius", "alerts": True, "tags": ["rain", "wind"],
                  "loc": {"lat": 48.8, "lon": 2.35}})]),
    FCExample(id="2", query="Weather in Rome and in Oslo", functions=[WEATHER, STOCK],
              calls=[FunctionCall(name="get_weather", arguments={"city": "Rome"}),
                     FunctionCall(name="get_weather", arguments={"city": "Oslo"})]),
    FCExample(id="3", query="Tell me a joke", functions=[WEATHER, STOCK], calls=[]),
    FCExample(id="4", query="Book a flight on March fifth", functions=[FLIGHT, STOCK],
              calls=[FunctionCall(name="book_flight", arguments={"date": "2025-03-05"})]),
]


@pytest.fixture(scope="module")
def featurizer() -> Featurizer:
    texts = [e.query for e in EXAMPLES] + ["get weather stock ticker city days unit alerts tags loc lat lon celsius",
                                           "Lima 2025-03-05 YYYY-MM-DD"]
    return Featurizer(CharTokenizer.train(texts))


def test_numbers_in_digits_and_words():
    assert parse_number("1,200") == 1200 and parse_number("twenty five") == 25 and parse_number("Paris") is None
    mentions = dict((value, "x Weather for three days, 2.5 kg and 1,200 m"[a:b]) for (a, b), value in
                    number_mentions("x Weather for three days, 2.5 kg and 1,200 m"))
    assert mentions == {3.0: "three", 2.5: "2.5", 1200.0: "1,200"}
    assert convert("three", "integer") == 3 and convert("2.5", "integer") is None and convert("2.5", "float") == 2.5


def test_locate_value_prefers_exact_case_and_skips_taken_spans():
    text = "from Paris to paris"
    first = locate_value(text, "paris")
    assert text[first[0]:first[1]] == "paris"
    assert locate_value(text, "Paris") == (5, 10)
    assert locate_value(text, "Paris", taken={(5, 10)}) == (14, 19)
    assert locate_value(text, True) is None
    assert locate_value("flights from Paris", "FR") is None, "never inside a word"
    assert locate_value("ship to CA today", "ca") == (8, 10)


def test_targets_follow_the_gold_calls(featurizer):
    features = featurizer.encode(EXAMPLES[0])
    assert features.aligned
    names = [".".join(p.path) for p in features.params]
    assert names[:2] == ["ticker", "city"] and "loc.lat" in names and "loc.lon" in names
    targets = features.targets
    assert int(targets["pointer"]) == 2  # 0 = no call, 1 = get_stock, 2 = get_weather
    assert targets["counts"].tolist() == [0, 1]
    modes = {name: int(targets["modes"][i, 0]) for i, name in enumerate(names)}
    assert modes == {"ticker": IGNORE, "city": SPAN, "days": SPAN, "unit": ENUM, "alerts": TRUE,
                     "tags": SPAN, "loc.lat": SPAN, "loc.lon": SPAN}
    tags = targets["tags"][names.index("tags"), 0]
    assert (tags == TAG_B).sum() == 2, "an array's elements are separate segments"
    city = targets["tags"][names.index("city"), 0]
    copied = [i for i in range(len(city)) if city[i] in (TAG_B, TAG_I)]
    a, b = features.query_offsets[copied[0]][0], features.query_offsets[copied[-1]][1]
    assert features.query[a:b] == "Paris"
    weather_slot, stock_slot = features.function_slots[1], features.function_slots[0]
    assert features.match[weather_slot] > features.match[stock_slot], "the query names the weather function"
    parallel = featurizer.encode(EXAMPLES[1]).targets
    assert parallel["counts"].tolist() == [2, 0] and int(parallel["modes"][1, 0]) == ABSENT


def test_unfindable_string_is_generated_and_unfindable_number_ignored(featurizer):
    lima = EXAMPLES[1].model_copy(update={"calls": [FunctionCall(name="get_weather", arguments={"city": "Lima"})]})
    features = featurizer.encode(lima)
    assert features.aligned and int(features.targets["modes"][0, 0]) == GENERATE
    pieces = features.targets["generate"][0, 0]
    assert featurizer.tokenizer.decode(pieces[pieces > 0][:-1].tolist()) == "Lima"
    assert pieces[pieces > 0][-1] == featurizer.eos_id
    week = EXAMPLES[1].model_copy(update={"calls": [FunctionCall(name="get_weather", arguments={
        "city": "Rome", "days": 7})]})
    features = featurizer.encode(week)
    assert not features.aligned and int(features.targets["modes"][1, 0]) == IGNORE
    allowed = {".".join(p.path): bool(features.mode_allowed[i, GENERATE]) for i, p in enumerate(features.params)}
    assert allowed["city"] and not allowed["unit"] and not allowed["days"], "only free-form strings are generated"


def test_heads_shapes_and_masks(featurizer):
    batch = collate([featurizer.encode(e) for e in EXAMPLES])
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=1, n=1), featurizer.tokenizer.vocab_size)
    out = model(batch)
    b, f = batch["function_slots"].shape
    p = batch["param_slots"].shape[1]
    assert out.pointer.shape == (b, 1 + f) and out.counts.shape == (b, f, 5)
    assert out.modes.shape == (b, p, 4, len(MODES)) and out.tags.shape[:3] == (b, p, 4)
    city = 0  # in example 2, the first param (city) of get_weather has no enum: all enum logits masked
    assert (out.enum[1, city] < -1e3).all()
    loss, parts = fc_loss(out, batch)
    assert torch.isfinite(loss) and parts["correct"].shape == (b,)


def test_padding_does_not_change_an_example(featurizer):
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=2, n=1), featurizer.tokenizer.vocab_size)
    alone = collate([featurizer.encode(EXAMPLES[2])])
    padded = collate([featurizer.encode(EXAMPLES[2]), featurizer.encode(EXAMPLES[0])])
    with torch.no_grad():
        a, b = model(alone), model(padded)
    assert torch.allclose(a.pointer[0], b.pointer[0, : a.pointer.shape[1]], atol=1e-5)


def test_no_call_calibration_never_lowers_balanced_accuracy(featurizer):
    from recursa.fc.calibrate import BIASES, calibrate_no_call

    torch.manual_seed(1)
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=1, n=1), featurizer.tokenizer.vocab_size)
    result = calibrate_no_call(model, featurizer, EXAMPLES)
    assert result["no_call_bias"] in BIASES
    assert result["balanced_accuracy_after"] >= result["balanced_accuracy_before"]
    model.no_call_bias = 100.0  # no call is never chosen
    features = [featurizer.encode(e, with_targets=False) for e in EXAMPLES]
    with torch.no_grad():
        assert all(decode_calls(model(collate(features)), features, featurizer.tokenizer))


def test_decoding_does_not_copy_one_span_into_two_arguments(featurizer):
    example = FCExample(id="t", query="base 10 and height 5", functions=[FunctionSpec(name="area", parameters=[
        ParamSpec(name="base", type="integer"), ParamSpec(name="height", type="integer")])])
    features = featurizer.encode(example, with_targets=False)
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=1, n=1), featurizer.tokenizer.vocab_size)
    with torch.no_grad():
        output = model(collate([features]))
    token = {example.query[a:b]: i for i, (a, b) in enumerate(features.query_offsets)}
    output.pointer[:] = torch.tensor([[-9.0, 9.0]])
    output.counts[:] = torch.tensor([0.0, 9.0, 0.0, 0.0, 0.0])  # one call
    output.modes[:] = -9.0
    output.modes[..., 1] = 9.0  # span mode for both parameters
    output.tags[:] = torch.tensor([9.0, 0.0, 0.0])  # every token O ...
    output.tags[0, 0, 0, token["1"]] = torch.tensor([0.0, 9.0, 0.0])  # ... but base tags "10" (B I)
    output.tags[0, 0, 0, token["0"]] = torch.tensor([0.0, 0.0, 9.0])
    output.tags[0, 1, 0, token["1"]] = torch.tensor([0.0, 9.0, 0.0])  # height tags "1" only: base goes first
    output.tags[0, 1, 0, token["5"]] = torch.tensor([4.0, 3.0, 0.0])  # and leans towards "5", below O
    (call,) = decode_calls(output, [features], featurizer.tokenizer)[0]
    assert call.arguments["base"] == 10, "the parameter that tags more tokens claims them"
    assert call.arguments.get("height") == 5, "the required height falls back to its likeliest free number"


def test_segments_from_tags():
    assert segments([TAG_O, TAG_B, TAG_I, TAG_O, TAG_I, TAG_B]) == [(1, 2), (4, 4), (5, 5)]


@pytest.mark.slow
def test_tiny_model_learns_to_call_with_typed_and_generated_arguments(featurizer):
    torch.manual_seed(0)
    batch = collate([featurizer.encode(e) for e in EXAMPLES])
    model = FunctionCallingTRM(TRMConfig(hidden_size=64, num_heads=4, T=2, n=2), featurizer.tokenizer.vocab_size)
    assert fit_until_correct(model, batch, steps=1000, lr=1e-3), "a tiny model fits its examples"
    model.eval()
    features = [featurizer.encode(e, with_targets=False) for e in EXAMPLES]
    with torch.no_grad():
        predictions = decode_calls(model(collate(features)), features, featurizer.tokenizer)
    assert [score_example(p, e).valid for p, e in zip(predictions, EXAMPLES)] == [True] * len(EXAMPLES)
    assert predictions[0][0].arguments["days"] == 3 and predictions[0][0].arguments["alerts"] is True
    assert predictions[3][0].arguments == {"date": "2025-03-05"}, "a value not in the query is generated"


def test_piece_dropout_hides_query_words_but_keeps_targets(featurizer):
    from recursa.fc.train import drop_pieces

    torch.manual_seed(0)
    batch = collate([featurizer.encode(e) for e in EXAMPLES])
    unk = featurizer.tokenizer.unk_id
    dropped = drop_pieces(batch, 0.5, unk)
    query = batch["role"] == QUERY
    hidden = (dropped["name_pieces"][..., 0] == unk) & (batch["name_pieces"][..., 0] != unk)
    assert hidden.any() and not (hidden & ~query).any(), "only query pieces become <unk>"
    assert (dropped["desc_pieces"] == 0).sum() > (batch["desc_pieces"] == 0).sum()
    assert torch.equal(dropped["tags"], batch["tags"]) and drop_pieces(batch, 0.0, unk) is batch
