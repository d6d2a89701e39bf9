"""Function-calling format readers (xLAM, ms-swift, BFCL), JSON-schema conversion and storage."""

from __future__ import annotations

import json

import pytest

from recursa.fc.data.formats import (
    BFCL_CATEGORIES,
    read_bfcl,
    read_swift,
    read_swift_report,
    read_xlam,
    read_xlam_report,
)
from recursa.fc.data.schema import FCExample
from recursa.fc.data.store import read_examples, write_examples
from recursa.tools.schema import (
    FunctionCall,
    FunctionSpec,
    ParamSpec,
    function_from_json_schema,
    function_to_json_schema,
)

XLAM_TOOLS = [
    {
        "name": "stats",
        "description": "Statistics of numbers.",
        "parameters": {
            "numbers": {"type": "List[int]", "description": "The numbers."},
            "precision": {"type": "int, optional", "description": "Digits.", "default": 2},
            "options": {"type": "Dict[str, Any]", "description": "Extra options."},
            "ratio": {"type": "float"},
            "verbose": {"type": "bool, optional", "description": "Talk more.", "default": False},
            "pairs": {"type": "List[Tuple[int, int]]", "description": "Pairs."},
            "type": {"type": "str", "description": "A parameter called type.", "default": "mean"},
        },
    },
    {"name": "ping", "description": "Check the service.", "parameters": {}},
]


def xlam_record(id_: int, query: str, answers: list[dict], tools: list[dict] = XLAM_TOOLS) -> dict:
    return {"id": id_, "query": query, "tools": json.dumps(tools), "answers": json.dumps(answers)}


@pytest.fixture
def xlam_file(tmp_path):
    records = [
        xlam_record(1, "Mean of 1, 2 and 3", [{"name": "stats", "arguments": {"numbers": [1, 2, 3]}}]),
        {"id": 2, "query": "broken", "tools": "[{not json", "answers": "[]"},
        xlam_record(3, "Ping twice", [{"name": "ping", "arguments": {}}] * 2),
    ]
    path = tmp_path / "xlam.json"
    path.write_text(json.dumps(records))
    return path


def test_xlam_maps_python_types(xlam_file):
    stats = read_xlam(xlam_file)[0].functions[0]
    numbers, precision, options = stats.param("numbers"), stats.param("precision"), stats.param("options")
    assert (numbers.type, numbers.items.type, numbers.required) == ("array", "integer", True)
    assert (precision.type, precision.required, precision.default) == ("integer", False, 2)
    assert (options.type, options.required) == ("object", True)
    assert stats.param("ratio").type == "float" and stats.param("ratio").description == ""
    assert (stats.param("verbose").type, stats.param("verbose").default) == ("boolean", False)
    pairs = stats.param("pairs")
    assert (pairs.type, pairs.items.type, pairs.items.items.type) == ("array", "array", "integer")
    assert (stats.param("type").type, stats.param("type").default) == ("string", "mean")


def test_xlam_skips_and_reports_bad_json(xlam_file):
    report = read_xlam_report(xlam_file)
    assert [e.id for e in report.examples] == ["1", "3"]
    assert len(report.skipped) == 1 and "record 1" in report.skipped[0]
    first, last = report.examples
    assert first.calls == [FunctionCall(name="stats", arguments={"numbers": [1, 2, 3]})]
    assert len(last.calls) == 2 and first.source == "xlam"


def test_xlam_accepts_json_schema_type_names():
    tools = [{"name": "f", "parameters": {
        "a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "list"},
        "d": {"type": "array", "items": {"type": "number"}}, "e": {"type": "dict"},
        "f": {"type": "object"}, "g": {"type": "Any"}, "h": {"type": "mystery"},
    }}]
    fn = read_xlam([xlam_record(0, "q", [], tools)])[0].functions[0]
    assert [p.type for p in fn.parameters] == [
        "string", "integer", "array", "array", "object", "object", "any", "any"]
    assert fn.param("d").items.type == "float"


SWIFT_RECORD = {
    "tools": json.dumps([
        {"type": "function", "function": {
            "name": "get_weather", "description": "Weather in a city.",
            "parameters": {"type": "object",
                           "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 1}},
                           "required": ["city"]}}},
        {"name": "convert", "description": "Convert units.",
         "parameters": {"value": {"type": "float"}, "unit": {"type": "str, optional", "default": "C"}}},
    ]),
    "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "tool_call", "content": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
        {"role": "tool_call",
         "content": json.dumps({"name": "get_weather", "arguments": json.dumps({"city": "Rome", "days": 2})})},
        {"role": "tool_response", "content": "sunny"},
        {"role": "assistant", "content": "Sunny in both."},
    ],
}


def test_swift_reads_openai_tools_and_string_arguments(tmp_path):
    path = tmp_path / "swift.json"
    path.write_text(json.dumps([SWIFT_RECORD]))
    (example,) = read_swift(path)
    assert example.query == "Weather in Paris and Rome?" and example.source == "swift"
    weather, convert = example.functions
    assert weather.param("city").required and not weather.param("days").required
    assert (convert.param("value").type, convert.param("unit").required) == ("float", False)
    assert example.calls == [
        FunctionCall(name="get_weather", arguments={"city": "Paris"}),
        FunctionCall(name="get_weather", arguments={"city": "Rome", "days": 2}),
    ]


def test_swift_skips_records_without_user_or_valid_tools():
    no_user = {**SWIFT_RECORD, "messages": SWIFT_RECORD["messages"][:1]}
    bad_tools = {**SWIFT_RECORD, "tools": "not json"}
    report = read_swift_report([SWIFT_RECORD, no_user, bad_tools])
    assert len(report.examples) == 1 and len(report.skipped) == 2


def test_json_schema_round_trip():
    schema = {
        "name": "book",
        "description": "Book a table.",
        "parameters": {
            "type": "object",
            "properties": {
                "guests": {"type": "integer", "description": "How many."},
                "time": {"type": "string", "enum": ["lunch", "dinner"], "default": "dinner"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "contact": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                "extra": {"description": "Anything."},
                "score": {"type": "number"},
            },
            "required": ["guests", "contact"],
        },
    }
    fn = function_from_json_schema({"type": "function", "function": schema})
    assert function_to_json_schema(fn) == schema
    assert function_from_json_schema(function_to_json_schema(fn)) == fn
    assert [p.type for p in fn.parameters] == ["integer", "string", "array", "object", "any", "float"]


def test_bfcl_dict_type_and_nested_properties():
    fn = function_from_json_schema({"name": "f", "parameters": {"type": "dict", "required": ["prefs"], "properties": {
        "prefs": {"type": "dict", "properties": {"size": {"type": "string", "default": "M"},
                                                  "milk": {"type": "string"}}},
        "point": {"type": "tuple", "items": {"type": "float"}},
    }}})
    prefs = fn.param("prefs")
    assert prefs.type == "object" and prefs.required and not fn.param("point").required
    assert [(p.name, p.required) for p in prefs.properties] == [("size", False), ("milk", True)]
    assert (fn.param("point").type, fn.param("point").items.type) == ("array", "float")


@pytest.fixture(scope="module")
def bfcl():
    pytest.importorskip("bfcl_eval")
    return {category: read_bfcl(category) for category in BFCL_CATEGORIES}


def test_bfcl_every_category_loads(bfcl):
    for category, examples in bfcl.items():
        assert examples, category
        assert all(e.source == "bfcl" and e.category == category and e.query for e in examples)
        if category != "live_irrelevance":  # a few live_irrelevance records offer no function
            assert all(e.functions for e in examples), category


def test_bfcl_calls_and_possible_answers(bfcl):
    for category in ("parallel", "parallel_multiple", "live_parallel", "live_parallel_multiple"):
        assert all(len(e.calls) > 1 for e in bfcl[category]), category
    for category in ("irrelevance", "live_irrelevance"):
        assert all(e.calls == [] and e.possible_answers == [] for e in bfcl[category]), category
    first = bfcl["simple_python"][0]
    assert first.possible_answers == [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]
    assert first.calls == [FunctionCall(name="calculate_triangle_area", arguments={"base": 10, "height": 5, "unit": "units"})]
    for examples in bfcl.values():
        for e in examples:
            assert len(e.calls) == len(e.possible_answers)
            offered = {f.name for f in e.functions}
            assert all(call.name in offered for call in e.calls), e.id


def test_bfcl_nested_dicts(bfcl):
    example = next(e for e in bfcl["live_multiple"] if e.id == "live_multiple_0-0-0")
    prefs = next(f for f in example.functions if f.name == "ChaDri.change_drink").param("new_preferences")
    assert prefs.type == "object" and {p.name for p in prefs.properties} >= {"size", "milk_type"}
    assert next(p for p in prefs.properties if p.name == "size").enum == ["small", "medium", "large"]
    # nested acceptable values {key: [values]} become one concrete dict
    assert example.calls[0].arguments["new_preferences"]["milk_type"] == "coconut"


def test_bfcl_functions_round_trip_through_json_schema(bfcl):
    for examples in bfcl.values():
        for fn in {f.name: f for e in examples for f in e.functions}.values():
            assert function_from_json_schema(function_to_json_schema(fn)) == fn, fn.name


def test_bfcl_rejects_unknown_category():
    with pytest.raises(ValueError, match="unknown BFCL category 'simple_rust'"):
        read_bfcl("simple_rust")


def test_bfcl_without_package_says_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps bfcl-eval"):
        read_bfcl("simple_python")


STORE_EXAMPLES = [
    FCExample(
        id="a", query="Mean of 1 and 2.5 — ünïcode",
        functions=[FunctionSpec(name="mean", description="Mean.", parameters=[
            ParamSpec(name="xs", type="array", items=ParamSpec(name="items", type="float")),
            ParamSpec(name="opts", type="object", required=False, default={"round": 2},
                      properties=[ParamSpec(name="round", type="integer", enum=[0, 1, 2])]),
        ])],
        calls=[FunctionCall(name="mean", arguments={"xs": [1, 2.5], "opts": {"round": None}})],
        possible_answers=[{"mean": {"xs": [[1, 2.5]], "opts": ["", {"round": [2]}]}}],
        source="bfcl", category="simple_python",
    ),
    FCExample(id="b", query="Nothing fits", functions=[FunctionSpec(name="noop")]),
]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_store_round_trip(tmp_path, suffix):
    path = write_examples(STORE_EXAMPLES, tmp_path / "sub" / f"fc{suffix}")
    assert read_examples(path) == STORE_EXAMPLES


def test_store_round_trips_bfcl(tmp_path, bfcl):
    examples = bfcl["live_multiple"][:50] + bfcl["irrelevance"][:5]
    assert read_examples(write_examples(examples, tmp_path / "bfcl.parquet")) == examples


def test_store_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="unsupported suffix"):
        write_examples(STORE_EXAMPLES, tmp_path / "fc.csv")
