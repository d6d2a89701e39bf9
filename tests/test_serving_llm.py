"""The LLM server: a tiny causal LM with LoRA adapters multiplexed on it and a merged export,
called over HTTP by the official openai client; tool calls parsed from the model's text in both
chat formats (recursa's tool-calling format, parallel calls included, and the action transcript);
every kind of bad input; the API key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import openai
import pytest
import requests

from recursa.llm.chat import chat_transcript, parse_tool_call
from recursa.llm.chat_formats import CHAT_FORMATS
from recursa.llm.export import merge_adapter
from recursa.llm.models import load_tokenizer
from recursa.llm.tool_calls import render_prompt
from recursa.serving.chat_tools import InvalidRequest, offered_functions
from recursa.serving.schemas import ChatMessage, ToolDefinition
from serving_models import fitted_lora_adapter, free_port

BASE_MODEL, CALLER, CHATTER, MERGED = "tiny-base", "caller", "chatter", "caller-merged"
PARALLEL, GARBLED = "parallel", "garbled"  # adapters of the tool-calling format
KEY = "s3cret-llm-key"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}
STOCK = {"type": "function", "function": {
    "name": "get_stock", "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}}}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
CALL_TEXT = ' get_weather({"city": "Paris"})'
CHAT_TEXT = " It is sunny in Paris."
TWO_CITIES = [{"role": "user", "content": "Weather in Paris and Rome?"}]
PARALLEL_TEXT = ('<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
                 '{"name": "get_weather", "arguments": {"city": "Rome"}}]</tool_call>')
GARBLED_TEXT = '<tool_call>[{"name": '


def _functions(tools):
    return offered_functions([ToolDefinition.model_validate(t) for t in tools])


PROMPT = chat_transcript([ChatMessage.model_validate(m) for m in QUESTION], _functions([WEATHER]))


# ------------------------------------------------------------------ the text convention, without a server
def test_transcript_is_the_agent_transcript_with_tool_history():
    messages = [*QUESTION, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    text = chat_transcript([ChatMessage.model_validate(m) for m in messages], _functions([WEATHER, STOCK]))
    assert text == ("What is the weather in Paris?\nActions: get_weather, get_stock\n"
                    'Action: get_weather({"city": "Paris"})\nObservation: sunny\nAction:')
    assert PROMPT.endswith("\nActions: get_weather\nAction:")
    assert chat_transcript([ChatMessage.model_validate(m) for m in QUESTION], []) == "What is the weather in Paris?\n"


@pytest.mark.parametrize("text, expected", [
    (CALL_TEXT + "\nObservation: ...", {"city": "Paris"}),
    ('\n{"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}', {"city": "Oslo", "days": 2}),
    ('{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}', {"city": "Rome"}),
    ("get_weather({})", None),  # a required key missing
    ('get_weather({"city": "Paris", "days": "two"})', None),  # a wrong type
    ('get_weather({"city": "Paris", "path": "/etc"})', None),  # a key the schema does not list
    ('delete_files({"city": "Paris"})', None),  # not an offered tool
    ("It is sunny.\n" + CALL_TEXT, None),  # only the first line counts
])
def test_tool_calls_are_read_from_the_first_line_and_checked_against_the_schema(text, expected):
    call = parse_tool_call(text, _functions([WEATHER]))
    assert (None if call is None else call.arguments) == expected


def test_streamed_text_is_released_only_when_later_tokens_cannot_change_it():
    from recursa.llm.generation import Generation
    from recursa.llm.stream import ChoiceText

    def text_of(decode, max_new_tokens=32, stop=()):
        return ChoiceText(decode, 0, Generation(prompt_ids=(1,), adapter=None, max_new_tokens=max_new_tokens, stop=stop))

    text = text_of(lambda tokens: "".join(map(chr, tokens)), stop=("END",))
    assert [text.add(ord(c)) for c in "abEN"] == ["a", "b", "", ""]  # "EN" may begin the stop string
    assert text.add(ord("x")) == "ENx" and text.add(ord("E")) == ""
    assert [text.add(ord(c)) for c in "ND!"] == ["", "", ""] and text.ended and text.sent == "abENx"
    assert text.finish("abENx") == ""
    partial = text_of(lambda tokens: "caf" + "\ufffd" * (len(tokens) == 1) + "\u00e9" * (len(tokens) == 2))
    assert partial.add(1) == "caf" and partial.add(2) == "\u00e9"  # half a character is held back
    assert partial.add(0) == "" and partial.ended
    short = text_of(lambda tokens: "".join(map(chr, tokens)), max_new_tokens=2)
    assert [short.add(ord(c)) for c in "abc"] == ["a", "b", ""], "a longer row in its batch goes on"


TOOL_CALLS, ACTIONS = CHAT_FORMATS["tool_calls"], CHAT_FORMATS["actions"]


@pytest.mark.parametrize("text, names", [
    (PARALLEL_TEXT, ["get_weather", "get_weather"]),
    ('\n<tool_call>[{"name": "get_stock", "arguments": {"ticker": "ACME"}}]</tool_call>', ["get_stock"]),
    ('<tool_call>[{"name": "delete_files", "arguments": {}}]</tool_call>', []),  # not an offered tool
    ('<tool_call>[{"name": "get_weather", "arguments": {"city": 7}}]</tool_call>', []),  # a wrong type
    (PARALLEL_TEXT.replace('"Rome"}', '"Rome", "path": "/etc"}'), []),  # one call of two does not fit
    (GARBLED_TEXT, []),  # malformed
    ("Let me check. " + PARALLEL_TEXT, []),  # calls begin the answer
    ("It is sunny.", []),
])
def test_tool_calls_format_answers_with_all_calls_when_every_one_fits(text, names):
    functions = _functions([WEATHER, STOCK])
    assert [c.name for c in TOOL_CALLS.answer(text, functions)] == names
    assert TOOL_CALLS.answer(text, []) == [], "no tools offered (tool_choice none)"


@pytest.mark.parametrize("chat_format, text, may_call", [
    (TOOL_CALLS, "", True), (TOOL_CALLS, " <tool_", True), (TOOL_CALLS, GARBLED_TEXT, True),
    (TOOL_CALLS, "<b>", False), (TOOL_CALLS, "It is", False),
    (ACTIONS, "get_weather(", True), (ACTIONS, CALL_TEXT + "\nmore", True), (ACTIONS, "It is sunny.\n", False),
])
def test_streaming_holds_back_text_only_while_it_may_still_be_calls(chat_format, text, may_call):
    assert chat_format.may_call(text, _functions([WEATHER])) is may_call
    assert not chat_format.may_call(text, []), "nothing is held when no tools are offered"


def test_tool_calls_format_prompts_with_the_shared_renderer_and_checks_earlier_calls(tiny_llm):
    tokenizer = load_tokenizer(tiny_llm)
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    history = [*TWO_CITIES, {"role": "assistant", "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    functions = _functions([WEATHER])
    prompt = TOOL_CALLS.prompt(tokenizer, [ChatMessage.model_validate(m) for m in history], functions)
    assert prompt == render_prompt(tokenizer, history, functions)
    assert 'get_weather", "arguments": {"city": "Paris"}}]</tool_call>\nuser: Function result: sunny\n' in prompt
    call["function"]["arguments"] = "{not json"
    with pytest.raises(InvalidRequest, match="arguments must be a JSON object"):
        TOOL_CALLS.prompt(tokenizer, [ChatMessage.model_validate(m) for m in history], functions)


def test_a_batch_of_streamed_requests_shares_one_generate_call_per_group():
    import asyncio

    from recursa.llm.generation import Generation
    from recursa.llm.serve_core import Generated
    from recursa.llm.stream import Finished, StreamJob, batch_steps
    from recursa.serving.schemas import Usage

    class ScriptedCore:  # each row of a call decodes 10 + row, then 20 + row
        calls: ClassVar[list[int]] = []  # read on the class after the run

        def generate_rows(self, rows, feed, end):
            self.calls.append(len(rows))
            for step in (10, 20):
                feed([step + row for row in range(len(rows))])
            end()
            return [Generated(text=f"row {row}", finish_reason="length", usage=Usage(
                prompt_tokens=1, completion_tokens=2, total_tokens=3)) for row in range(len(rows))]

    def job(adapter, n):
        return StreamJob(Generation(prompt_ids=(1,), adapter=adapter, max_new_tokens=2), n)

    async def collect():
        return [items async for items in batch_steps(ScriptedCore(), [job("a", 2), job("b", 1), job("a", 1)])]

    steps = asyncio.run(collect())
    assert ScriptedCore.calls == [3, 1], "adapter a's three rows in one call, then b's"
    assert steps[0] == [[10, 11], [], [12]] and steps[1] == [[20, 21], [], [22]]
    assert isinstance(steps[2][0], Finished) and [g.text for g in steps[2][0].generated] == ["row 0", "row 1"]
    assert steps[2][1] == [] and [g.text for g in steps[2][2].generated] == ["row 2"]
    assert steps[3] == [StopIteration, [10], StopIteration] and steps[4][1] == [20]
    assert isinstance(steps[5][1], Finished) and len(steps) == 6


# ------------------------------------------------------------------ artifacts: two adapters, one merged
@pytest.fixture(scope="module")
def artifacts(tiny_llm, tmp_path_factory):
    root = tmp_path_factory.mktemp("llm_serving")
    caller = fitted_lora_adapter(tiny_llm, CALL_TEXT, root / "caller", PROMPT)
    chatter = fitted_lora_adapter(tiny_llm, CHAT_TEXT, root / "chatter", PROMPT)
    merge_adapter(caller, root / "merged")
    # The tool-calling format's prompt, rendered as the server renders it.
    tool_prompt = render_prompt(load_tokenizer(tiny_llm), TWO_CITIES, _functions([WEATHER, STOCK]))
    return {"base": tiny_llm, "caller": caller, "chatter": chatter, "merged": root / "merged",
            PARALLEL: fitted_lora_adapter(tiny_llm, PARALLEL_TEXT, root / PARALLEL, tool_prompt),
            GARBLED: fitted_lora_adapter(tiny_llm, GARBLED_TEXT, root / GARBLED, tool_prompt)}


@pytest.fixture(scope="module")
def base_url(ray_session, artifacts):
    from ray import serve

    from recursa.llm.serve import LLMServer

    port = free_port()
    small = {"ray_actor_options": {"num_cpus": 0.1}}
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    # One adapter loaded at a time: alternating between them exercises multiplexing's eviction.
    serve.run(LLMServer.options(**small).bind({
        "model": str(artifacts["base"]), "model_name": BASE_MODEL, "chat_format": "actions",
        "max_adapters_per_replica": 1,
        "adapters": {CALLER: str(artifacts["caller"]), CHATTER: str(artifacts["chatter"])},
        "max_new_tokens": 24, "max_messages": 4, "max_tools": 2, "max_body_bytes": 16 * 1024}),
        name="llm", route_prefix="/")
    serve.run(LLMServer.options(**small).bind({"model": str(artifacts["merged"]), "model_name": MERGED,
                                               "max_new_tokens": 24, "api_key": KEY}),
              name="merged", route_prefix="/merged")
    serve.run(LLMServer.options(**small).bind({  # the tiny model's 512 positions: a 423-token prompt, 80 new
        "model": str(artifacts["base"]), "model_name": BASE_MODEL, "chat_format": "tool_calls",
        "adapters": {name: str(artifacts[name]) for name in (PARALLEL, GARBLED)}, "max_new_tokens": 80}),
        name="tools", route_prefix="/tools")
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


@pytest.fixture()
def client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture()
def tools_client(base_url):
    """The application serving adapters of recursa's tool-calling format."""
    return openai.OpenAI(base_url=f"{base_url}/tools/v1", api_key="unused", max_retries=0, timeout=60)


def _complete(client, model: str, **options) -> str:
    return client.completions.create(model=model, prompt=PROMPT, **options).choices[0].text


# ------------------------------------------------------------------ over HTTP, with the openai client
def test_chat_with_tools_returns_parsed_tool_calls(client):
    reply = client.chat.completions.create(model=CALLER, messages=QUESTION, tools=[WEATHER])
    (call,) = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.content is None
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0


def test_chat_gets_a_message_when_the_output_is_no_call(client):
    reply = client.chat.completions.create(model=CHATTER, messages=QUESTION, tools=[WEATHER])
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content == CHAT_TEXT.strip() and reply.choices[0].finish_reason == "stop"
    plain = client.chat.completions.create(model=BASE_MODEL, messages=QUESTION, max_tokens=5)
    assert plain.choices[0].message.tool_calls is None and plain.usage.completion_tokens <= 5


def test_adapters_are_chosen_by_model_and_answer_differently(client):
    for _ in range(2):  # alternating evicts one adapter and loads the other each time
        assert _complete(client, CALLER) == CALL_TEXT
        assert _complete(client, CHATTER) == CHAT_TEXT
    assert _complete(client, BASE_MODEL) not in (CALL_TEXT, CHAT_TEXT)


def test_merged_export_answers_like_base_plus_adapter(client, base_url):
    merged = openai.OpenAI(base_url=f"{base_url}/merged/v1", api_key=KEY, max_retries=0, timeout=60)
    assert _complete(merged, MERGED) == _complete(client, CALLER) == CALL_TEXT


def test_max_tokens_stop_and_seed_are_honoured(client):
    short = client.completions.create(model=CALLER, prompt=PROMPT, max_tokens=2)
    assert short.usage.completion_tokens == 2 and short.choices[0].finish_reason == "length"
    stopped = client.completions.create(model=CALLER, prompt=PROMPT, stop=["("])
    assert stopped.choices[0].text == " get_weather" and stopped.choices[0].finish_reason == "stop"
    sampled = [_complete(client, BASE_MODEL, temperature=1.0, seed=7, max_tokens=8) for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_n_choices_are_sampled_in_one_request(client):
    sampled = client.completions.create(model=BASE_MODEL, prompt=PROMPT, n=3, temperature=1.0, max_tokens=8, seed=3)
    assert [c.index for c in sampled.choices] == [0, 1, 2] and len({c.text for c in sampled.choices}) > 1
    greedy = client.completions.create(model=BASE_MODEL, prompt=PROMPT, n=2, max_tokens=8)
    assert greedy.choices[0].text == greedy.choices[1].text
    assert greedy.usage.completion_tokens == 2 * client.completions.create(
        model=BASE_MODEL, prompt=PROMPT, max_tokens=8).usage.completion_tokens
    chat = client.chat.completions.create(model=CALLER, messages=QUESTION, tools=[WEATHER], n=2)
    assert [c.message.tool_calls[0].function.name for c in chat.choices] == ["get_weather"] * 2


def test_streamed_completion_arrives_token_by_token_with_the_same_text(client):
    chunks = list(client.completions.create(model=CALLER, prompt=PROMPT, stream=True,
                                            stream_options={"include_usage": True}))
    pieces = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(pieces) == CALL_TEXT and len([p for p in pieces if p]) > 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    whole = client.completions.create(model=CALLER, prompt=PROMPT)
    assert chunks[-1].usage == whole.usage and not chunks[-1].choices
    stopped = client.completions.create(model=CALLER, prompt=PROMPT, stop=["("], stream=True)
    assert "".join(c.choices[0].text for c in stopped) == " get_weather"
    two = list(client.completions.create(model=CALLER, prompt=PROMPT, n=2, stream=True))
    for index in (0, 1):
        assert "".join(c.choices[0].text for c in two if c.choices[0].index == index) == CALL_TEXT


def test_streamed_chat_sends_messages_in_pieces_and_tool_calls_whole(client):
    chunks = list(client.chat.completions.create(model=BASE_MODEL, messages=QUESTION, max_tokens=8, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    whole = client.chat.completions.create(model=BASE_MODEL, messages=QUESTION, max_tokens=8)
    assert content.strip() == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices[0].delta.content]) > 1
    called = list(client.chat.completions.create(model=CALLER, messages=QUESTION, tools=[WEATHER], stream=True))
    (call,) = [call for c in called for call in c.choices[0].delta.tool_calls or []]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert called[-1].choices[0].finish_reason == "tool_calls"
    said = list(client.chat.completions.create(model=CHATTER, messages=QUESTION, tools=[WEATHER], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in said) == CHAT_TEXT.strip()


def _cities(tool_calls) -> list[tuple[str, dict]]:
    return [(call.function.name, json.loads(call.function.arguments)) for call in tool_calls]


PARIS_AND_ROME = [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]


def test_tool_calls_format_returns_parallel_calls(tools_client):
    reply = tools_client.chat.completions.create(model=PARALLEL, messages=TWO_CITIES, tools=[WEATHER, STOCK])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert _cities(choice.message.tool_calls) == PARIS_AND_ROME
    assert len({call.id for call in choice.message.tool_calls}) == 2
    assert {call.type for call in choice.message.tool_calls} == {"function"}


def test_tool_calls_format_streams_calls_whole_at_the_end(tools_client):
    with tools_client.chat.completions.stream(model=PARALLEL, messages=TWO_CITIES, tools=[WEATHER, STOCK]) as events:
        chunks = [event.chunk for event in events if event.type == "chunk"]
        final = events.get_final_completion()
    assert not any(c.choices[0].delta.content for c in chunks if c.choices), "held back, never sent as text"
    assert [d.index for c in chunks for d in c.choices[0].delta.tool_calls or []] == [0, 1]
    assert final.choices[0].finish_reason == "tool_calls" and _cities(final.choices[0].message.tool_calls) == \
        PARIS_AND_ROME
    assert len({call.id for call in final.choices[0].message.tool_calls}) == 2


def test_tool_calls_format_answers_malformed_output_as_a_message(tools_client):
    reply = tools_client.chat.completions.create(model=GARBLED, messages=TWO_CITIES, tools=[WEATHER, STOCK])
    assert reply.choices[0].message.tool_calls is None and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == GARBLED_TEXT.strip()
    streamed = list(tools_client.chat.completions.create(model=GARBLED, messages=TWO_CITIES, tools=[WEATHER, STOCK],
                                                         stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed).strip() == GARBLED_TEXT.strip()
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_tool_choice_limits_the_calls_the_answer_may_make(tools_client):
    for tool_choice in ("none", {"type": "function", "function": {"name": "get_stock"}}):
        reply = tools_client.chat.completions.create(model=PARALLEL, messages=TWO_CITIES, tools=[WEATHER, STOCK],
                                                     tool_choice=tool_choice)
        assert not any(c.function.name == "get_weather" for c in reply.choices[0].message.tool_calls or [])


def test_tool_calls_format_rejects_earlier_calls_whose_arguments_are_not_json(base_url):
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{not json"}}
    body = {"model": PARALLEL, "tools": [WEATHER], "messages": [*TWO_CITIES, {"role": "assistant", "tool_calls": [call]},
                                                                {"role": "tool", "tool_call_id": "c1", "content": "x"}]}
    response = requests.post(f"{base_url}/tools/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 422 and "JSON object" in response.json()["error"]["message"]


def test_models_lists_the_model_and_each_adapter(client):
    assert [m.id for m in client.models.list().data] == [BASE_MODEL, CALLER, CHATTER]


def test_docs_are_served(base_url):
    assert requests.get(f"{base_url}/docs", timeout=10).status_code == 200
    paths = requests.get(f"{base_url}/openapi.json", timeout=10).json()["paths"]
    assert {"/v1/completions", "/v1/chat/completions", "/v1/models"} <= set(paths)


# ------------------------------------------------------------------ bad input
def _chat(**fields) -> bytes:
    return json.dumps({"model": CALLER, "messages": QUESTION, **fields}).encode()


@pytest.mark.parametrize("path, body, status, words", [
    ("chat/completions", b'{"model": "caller", "messages": [', 400, "malformed JSON"),
    ("completions", b'{"model": "caller", "prompt": ', 400, "malformed JSON"),
    ("chat/completions", _chat(messages="hello"), 422, "messages"),
    ("completions", json.dumps({"model": CALLER}).encode(), 422, "prompt"),
    ("chat/completions", _chat(temperature=-1), 422, "temperature"),
    ("chat/completions", _chat(model="/etc/passwd"), 404, "does not exist"),
    ("completions", json.dumps({"model": "../caller", "prompt": "x"}).encode(), 404, "does not exist"),
    ("chat/completions", _chat(messages=QUESTION * 5), 422, "at most 4 messages"),
    ("chat/completions", _chat(tools=[WEATHER, STOCK, {**STOCK, "function": {**STOCK["function"], "name": "x"}}]),
     422, "at most 2 tools"),
    ("chat/completions", _chat(tools=[WEATHER, WEATHER]), 422, "unique"),
    ("completions", json.dumps({"model": CALLER, "prompt": "x", "max_tokens": 1000}).encode(), 422, "at most 24"),
    ("completions", json.dumps({"model": CALLER, "prompt": "x", "n": 9}).encode(), 422, "n: "),
    ("chat/completions", _chat(stream="sometimes"), 422, "stream"),
    ("completions", json.dumps({"model": CALLER, "prompt": "x " * 1500}).encode(), 422, "tokens"),
    ("completions", json.dumps({"model": CALLER, "prompt": "x" * 20_000}).encode(), 413, "bytes"),
])
def test_bad_requests_get_json_4xx_and_the_server_stays_up(client, base_url, path, body, status, words):
    response = requests.post(f"{base_url}/v1/{path}", data=body, headers={"Content-Type": "application/json"},
                             timeout=60)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert _complete(client, CALLER) == CALL_TEXT


def test_openai_client_raises_readable_errors(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4", messages=QUESTION)
    with pytest.raises(openai.UnprocessableEntityError, match="max_tokens"):
        client.completions.create(model=CALLER, prompt="x", max_tokens=100)


def test_api_key_guards_every_route(base_url):
    for method, path in [("post", "/v1/completions"), ("get", "/v1/models"), ("get", "/docs")]:
        response = getattr(requests, method)(f"{base_url}/merged{path}", json={"model": MERGED, "prompt": "x"},
                                             timeout=10)
        assert response.status_code == 401 and "API key" in response.json()["error"]["message"]
    wrong = openai.OpenAI(base_url=f"{base_url}/merged/v1", api_key="wrong", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    right = openai.OpenAI(base_url=f"{base_url}/merged/v1", api_key=KEY, max_retries=0, timeout=60)
    assert [m.id for m in right.models.list().data] == [MERGED]


def test_serve_config_is_checked_with_the_field_named(tmp_path):
    from recursa.cli.serve import check_serve_config
    from recursa.core.config import ConfigError

    config = check_serve_config(Path("serve/llm.yaml"))
    assert config.applications[0].import_path == "recursa.llm.serve:app"
    bad = tmp_path / "llm.yaml"
    bad.write_text(Path("serve/llm.yaml").read_text().replace("model_name: recursa-llm", "model_name: math-sft"))
    with pytest.raises(ConfigError, match=r"applications\.llm\.args\.adapters: .*already the model_name"):
        check_serve_config(bad)


def test_the_tool_calling_serve_config_is_checked_and_names_the_run_that_makes_its_model(monkeypatch, tmp_path):
    from recursa.cli.serve import check_model_dirs, check_serve_config
    from recursa.core.config import ConfigError

    config = check_serve_config(Path("serve/llm_tools.yaml").resolve())
    assert config.applications[0].args["chat_format"] == "tool_calls"
    monkeypatch.chdir(tmp_path)  # nothing has been trained here
    with pytest.raises(ConfigError, match=r"args\.model: .* not found at runs/llm-bfcl/grpo/reference; .*make llm-bfcl"):
        check_model_dirs(config)
