"""Tools: registry guarantees (validation, cache, timeout, limits, stats) and the gift tools."""

import math
import threading
import time
from typing import Annotated

import pandas as pd
import pytest
from pydantic import Field

from recursa.gift.tools import GIFT_TOOL_NAMES, gift_tools
from recursa.tools import Tool, ToolRegistry, tool


@tool
def add(a: int, b: int = 0) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture
def registry():
    with ToolRegistry(timeout_s=1.0) as reg:
        reg.register(add)
        yield reg


def _counting_tool(name="count"):
    """A tool that records how many times its function really ran."""
    runs = []

    def count(x: int) -> int:
        runs.append(x)
        return x

    return tool(count, name=name), runs


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"a": "seven"}, "a: Input should be a valid integer"),
        ({"b": 1}, "a: Field required"),
        ({"a": 1, "c": 2}, "c: Extra inputs are not permitted"),
        ({"a": 1.5}, "a: Input should be a valid integer"),
        ("not json", "invalid arguments"),
        (None, "Input should be a valid dictionary"),
    ],
)
def test_invalid_arguments_give_an_error_result(registry, arguments, fragment):
    result = registry.call("add", arguments)
    assert not result.ok and result.output is None
    assert result.error.startswith("invalid arguments: ")
    assert fragment in result.error
    assert registry.stats()["add"]["failures"] == 1


def test_unknown_tool_gives_an_error_naming_the_available_tools(registry):
    result = registry.call("subtract", {"a": 1})
    assert not result.ok
    assert "unknown tool 'subtract'" in result.error and "add" in result.error
    assert "subtract" not in registry.stats()


def test_arguments_are_coerced_and_may_be_a_json_string(registry):
    assert registry.call("add", {"a": "2", "b": 3}).output == 5
    assert registry.call("add", '{"a": 4}').output == 4


# --- schema and user tools ---------------------------------------------------------------


def _title_annotations(node):
    """Every `"title": "<text>"` in a JSON schema (a property named title is not one)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                yield value
            yield from _title_annotations(value)
    elif isinstance(node, list):
        for item in node:
            yield from _title_annotations(item)


def test_openai_schema_shape_without_title_noise():
    @tool
    def search(title: str, limit: Annotated[int, Field(ge=1, description="Max hits.")] = 5):
        """Search books by title."""
        return []

    schema = search.openai_schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "search"
    assert function["description"] == "Search books by title."
    params = function["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["title"]
    assert params["additionalProperties"] is False
    assert params["properties"]["title"] == {"type": "string"}  # a property named title stays
    assert params["properties"]["limit"] == {
        "type": "integer", "minimum": 1, "default": 5, "description": "Max hits."
    }
    assert list(_title_annotations(params)) == []
    assert list(params["properties"]) == ["title", "limit"]


def test_registry_lists_schemas_in_registration_order(registry):
    registry.register(_counting_tool()[0])
    assert registry.names == ("add", "count")
    assert [s["function"]["name"] for s in registry.openai_schemas()] == ["add", "count"]


def test_user_tool_in_a_couple_of_lines(registry):
    @registry.register
    def greet(name: str, excited: bool = False) -> str:
        """Greet someone."""
        return f"Hello, {name}{'!' if excited else '.'}"

    assert isinstance(greet, Tool) and registry.get("greet") is greet
    assert registry.call("greet", {"name": "Ada", "excited": True}).output == "Hello, Ada!"
    assert greet(name="Bob") == "Hello, Bob."  # the decorated function stays callable


def test_decorator_options_and_bad_definitions():
    named = tool(name="plus", description="Sum.")(add.fn)
    assert (named.name, named.description) == ("plus", "Sum.")
    with pytest.raises(ValueError, match="already registered"), ToolRegistry() as reg:
        reg.register(add)
        reg.register(add)
    with pytest.raises(ValueError, match="tool name"):
        tool(add.fn, name="has space")
    with pytest.raises(TypeError, match=r"\*args"):
        tool(lambda *xs: sum(xs), name="total")
    with pytest.raises(KeyError, match="no tool named"):
        ToolRegistry().get("missing")


# --- execution failures ------------------------------------------------------------------


def test_exception_inside_a_tool_becomes_a_failure(registry):
    @registry.register
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    result = registry.call("divide", {"a": 1, "b": 0})
    assert not result.ok
    assert result.error == "ZeroDivisionError: float division by zero"
    stats = registry.stats()["divide"]
    assert (stats["calls"], stats["successes"], stats["failures"]) == (1, 0, 1)
    assert registry.call("divide", {"a": 1, "b": 4}).output == 0.25


def test_slow_tool_times_out_quickly_and_is_counted():
    release = threading.Event()

    def wait(seconds: float) -> str:
        release.wait(seconds)
        return "done"

    with ToolRegistry(timeout_s=0.1) as reg:
        reg.register(wait)
        start = time.perf_counter()
        result = reg.call("wait", {"seconds": 5})
        elapsed = time.perf_counter() - start
        release.set()
    assert not result.ok and result.error == "timed out after 0.1s"
    assert 0.1 <= elapsed < 0.5
    stats = reg.stats()["wait"]
    assert (stats["timeouts"], stats["failures"], stats["successes"]) == (1, 1, 0)


def test_full_registry_rejects_calls_until_a_slot_frees():
    release = threading.Event()

    def block() -> str:
        release.wait(5)
        return "done"

    with ToolRegistry(timeout_s=0.1, max_concurrency=1) as reg:
        reg.register(tool(block, cacheable=False))
        assert reg.call("block", {}).error == "timed out after 0.1s"  # still holds its slot
        busy = reg.call("block", {})
        assert not busy.ok and busy.error == "busy: 1 calls in flight"
        assert busy.latency_s < 0.5
        release.set()
        assert reg.call("block", {}).output == "done"


def test_at_most_max_concurrency_tools_run_at_once():
    lock, running, peak = threading.Lock(), [0], [0]

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.03)
        with lock:
            running[0] -= 1
        return i

    with ToolRegistry(timeout_s=2.0, max_concurrency=2) as reg:
        reg.register(work)
        results = [None] * 6
        threads = [
            threading.Thread(target=lambda i=i: results.__setitem__(i, reg.call("work", {"i": i})))
            for i in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [r.output for r in results] == list(range(6))
    assert peak[0] == 2


def test_closed_registry_returns_an_error_result():
    reg = ToolRegistry()
    reg.register(add)
    reg.close()
    result = reg.call("add", {"a": 1})
    assert not result.ok and result.error == "registry is closed"


# --- cache -------------------------------------------------------------------------------


def test_cache_hits_ignore_argument_order_and_coercion():
    counted, runs = _counting_tool()
    with ToolRegistry() as reg:
        reg.register(counted)
        reg.register(tool(_pair, name="pair"))
        first = reg.call("pair", {"a": 1, "b": 2})
        same = [reg.call("pair", {"b": 2, "a": 1}), reg.call("pair", {"a": "1", "b": 2.0})]
        assert not first.cached and all(r.cached and r.output == 3 for r in same)
        assert reg.call("count", {"x": 1}).output == reg.call("count", {"x": 1}).output == 1
        assert runs == [1]
        stats = reg.stats()
    assert (stats["pair"]["calls"], stats["pair"]["cache_hits"]) == (3, 2)
    assert (stats["count"]["calls"], stats["count"]["cache_hits"]) == (2, 1)


def _pair(a: int, b: int) -> int:
    return a + b


def test_cache_entries_expire_after_the_ttl():
    counted, runs = _counting_tool()
    with ToolRegistry(cache_ttl_s=0.05) as reg:
        reg.register(counted)
        reg.call("count", {"x": 1})
        assert reg.call("count", {"x": 1}).cached
        time.sleep(0.08)
        assert not reg.call("count", {"x": 1}).cached
    assert runs == [1, 1]


def test_cache_evicts_the_least_recently_used_entry():
    counted, runs = _counting_tool()
    with ToolRegistry(cache_size=2) as reg:
        reg.register(counted)
        for x in (1, 2, 1, 3):  # touching 1 makes 2 the least recently used
            reg.call("count", {"x": x})
        assert reg.call("count", {"x": 1}).cached
        assert not reg.call("count", {"x": 2}).cached
    assert runs == [1, 2, 3, 2]


def test_failures_and_uncacheable_tools_are_not_cached():
    calls = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return x

    counted, runs = _counting_tool()
    with ToolRegistry() as reg:
        reg.register(flaky)
        reg.register(Tool(counted.name, "", counted.args_model, counted.fn, cacheable=False))
        assert not reg.call("flaky", {"x": 1}).ok
        assert reg.call("flaky", {"x": 1}).ok
        assert reg.call("flaky", {"x": 1}).cached
        for _ in range(3):
            assert not reg.call("count", {"x": 1}).cached
    assert runs == [1, 1, 1]


# --- stats -------------------------------------------------------------------------------


def test_stats_count_calls_and_summarise_latency():
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    with ToolRegistry() as reg:
        reg.register(nap)
        reg.call("nap", {"seconds": 0.04})
        for i in range(20):  # 3 distinct short naps run, the other 17 calls are hits
            reg.call("nap", {"seconds": 0.001 * (1 + i % 3)})
        reg.call("nap", {"seconds": -1})  # a failure: ValueError from time.sleep
        stats = reg.stats()["nap"]
    assert stats["calls"] == 22
    assert stats["cache_hits"] == 17
    assert (stats["successes"], stats["failures"], stats["timeouts"]) == (21, 1, 0)
    assert 0.04 / 22 < stats["mean_latency_s"] < 0.04
    assert 0.002 < stats["p95_latency_s"] < 0.04  # between the short naps and the long one


def test_stats_list_idle_tools_with_zero_latency(registry):
    assert registry.stats() == {
        "add": {
            "calls": 0, "cache_hits": 0, "successes": 0, "failures": 0, "timeouts": 0,
            "mean_latency_s": 0.0, "p95_latency_s": 0.0,
        }
    }


# --- gift tools --------------------------------------------------------------------------


@pytest.fixture
def catalog():
    return pd.DataFrame(
        {
            "name": ["mug", "scarf", "lamp"],
            "category": ["kitchen", "fashion", "home"],
            "tags": [["coffee"], ["winter", "wool"], []],
            "price": [12.0, 30.0, 80.0],
            "retailer_prices": [[11.0, 12.5, 10.5], [29.0, 27.0, 31.0], [85.0, 79.0, 90.0]],
            "rating": [4.5, 3.8, 2.9],
            "review_count": [500, 0, 9],
            "stock": [4, 0, 1],
            "trend": [0.9, 0.4, 0.1],
            "trend_delta": [0.5, 0.2, -0.3],
        },
        index=pd.Index([7, 3, 42], name="item_id"),
    )


@pytest.fixture
def gift_registry(catalog):
    with ToolRegistry() as reg:
        for t in gift_tools(catalog):
            reg.register(t)
        yield reg


def _output(reg, name, **arguments):
    result = reg.call(name, arguments)
    assert result.ok, result.error
    return result.output


def test_gift_tools_are_registered_in_order_with_schemas(gift_registry):
    assert gift_registry.names == GIFT_TOOL_NAMES
    budget = gift_registry.get("budget_optimizer").openai_schema()["function"]["parameters"]
    assert budget["required"] == ["item_ids", "budget"]
    assert budget["properties"]["item_ids"]["maxItems"] == 32


def test_price_comparison(gift_registry):
    assert _output(gift_registry, "price_comparison", item_ids=[7, 3, 42]) == {
        7: {"best_price": 10.5, "retailer": "quickbuy", "list_price": 12.0},
        3: {"best_price": 27.0, "retailer": "bazaar", "list_price": 30.0},
        42: {"best_price": 79.0, "retailer": "bazaar", "list_price": 80.0},
    }


def test_inventory_check(gift_registry):
    assert _output(gift_registry, "inventory_check", item_ids=[3, 7]) == {
        3: {"in_stock": False, "quantity": 0},
        7: {"in_stock": True, "quantity": 4},
    }


def test_review_analysis(gift_registry):
    out = _output(gift_registry, "review_analysis", item_ids=[7, 3, 42])
    assert out[7] == {"rating": 4.5, "review_count": 500, "confidence": 1.0}
    assert out[3] == {"rating": 3.8, "review_count": 0, "confidence": 0.0}
    assert out[42]["confidence"] == pytest.approx(math.log(10) / math.log(501))


def test_trend_analysis(gift_registry):
    assert _output(gift_registry, "trend_analysis", item_ids=[7, 3, 42]) == {
        7: {"trend": 0.9, "direction": "rising"},
        3: {"trend": 0.4, "direction": "stable"},  # +0.2 is on the threshold: stable
        42: {"trend": 0.1, "direction": "falling"},
    }


def test_budget_optimizer(gift_registry):
    out = _output(gift_registry, "budget_optimizer", item_ids=[7, 3, 42], budget=30)
    assert out[7] == {"best_price": 10.5, "within_budget": True, "value_score": pytest.approx(0.65)}
    assert out[3] == {"best_price": 27.0, "within_budget": True, "value_score": pytest.approx(0.1)}
    assert out[42] == {"best_price": 79.0, "within_budget": False, "value_score": 0.0}


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"item_ids": [7, 99, 5]}, "ValueError: unknown item ids: [5, 99]"),
        ({"item_ids": []}, "at least 1 item"),
        ({"item_ids": list(range(33))}, "at most 32 items"),
        ({"item_ids": [7], "budget": 0}, "greater than 0"),
    ],
)
def test_gift_tools_reject_bad_requests(gift_registry, arguments, fragment):
    name = "budget_optimizer" if "budget" in arguments else "price_comparison"
    result = gift_registry.call(name, arguments)
    assert not result.ok and fragment in result.error


def test_gift_tools_fail_like_an_unreliable_api(catalog):
    with ToolRegistry() as reg:
        for t in gift_tools(catalog, failure_rate=1.0):
            reg.register(t)
        for name in GIFT_TOOL_NAMES:
            result = reg.call(name, {"item_ids": [7], "budget": 20.0} if name == "budget_optimizer"
                              else {"item_ids": [7]})
            assert not result.ok
            assert result.error == f"RuntimeError: upstream {name} service unavailable"


def test_partial_failure_rate_is_reproducible_from_the_seed(catalog):
    def pattern(seed):
        check = gift_tools(catalog, failure_rate=0.5, seed=seed)[1]
        outcomes = []
        for _ in range(40):
            try:
                check(item_ids=[7])
                outcomes.append(True)
            except RuntimeError:
                outcomes.append(False)
        return outcomes

    first = pattern(seed=1)
    assert first == pattern(seed=1) != pattern(seed=2)
    assert 5 < sum(first) < 35


def test_gift_tools_reject_a_malformed_catalog(catalog):
    with pytest.raises(ValueError, match="missing columns"):
        gift_tools(catalog.drop(columns="stock"))
    with pytest.raises(ValueError, match="3 prices"):
        gift_tools(catalog.assign(retailer_prices=[[1.0, 2.0]] * 3))
    with pytest.raises(ValueError, match="failure_rate"):
        gift_tools(catalog, failure_rate=1.5)
