"""The LLM server's llama_cpp engine on GGUF exports of a tiny Llama: the answers of the
transformers engine (greedy tokens, batches, `n`, seeds), and the OpenAI routes over HTTP with the
official client (tool calls, streaming, a second model by id). A corrupt or missing GGUF is refused
before anything is served. The llama.cpp tests run where llama-cpp-python is installed (`make llama-cpp`)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import openai
import pytest
import yaml

from recursa.core.config import ConfigError
from recursa.llm.config import LLMServeArgs
from recursa.llm.export import export_gguf, export_lora_gguf
from recursa.llm.generation import Generation
from recursa.llm.models import load_tokenizer, merge_into_base
from recursa.llm.serve_core import LLMCore
from recursa.llm.tool_calls import render_prompt
from recursa.serving.chat_tools import offered_functions
from recursa.serving.schemas import ToolDefinition
from serving_models import fitted_lora_adapter, free_port

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed (make llama-cpp)")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                          "required": ["city"]}}}
TWO_CITIES = [{"role": "user", "content": "Weather in Paris and Rome?"}]
PARALLEL_TEXT = ('<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
                 '{"name": "get_weather", "arguments": {"city": "Rome"}}]</tool_call>')
CALLER, CALLER_LORA, BASE = "caller", "caller-lora", "tiny-base"
OTHER_PROMPTS = ["Solve for x: 3x + 7 = 16\nAction:", "Observation: x = 3", "What is the weather in Oslo?"]


@pytest.fixture(scope="module")
def models(tiny_llm, tmp_path_factory) -> dict[str, Path]:
    """The tiny Llama and an adapter fitted to answer TWO_CITIES with two calls: merged, both as f16
    GGUF, and the adapter alone as a GGUF LoRA."""
    root = tmp_path_factory.mktemp("llama_cpp_serving")
    functions = offered_functions([ToolDefinition.model_validate(WEATHER)])
    prompt = render_prompt(load_tokenizer(tiny_llm), TWO_CITIES, functions)
    adapter = fitted_lora_adapter(tiny_llm, PARALLEL_TEXT, root / "adapter", prompt)
    merge_into_base(adapter, root / "merged")
    export_gguf(root / "caller", "f16", adapter=adapter, verify=False)
    export_gguf(root / "base", "f16", model=str(tiny_llm), verify=False)
    export_lora_gguf(adapter, root / "lora")
    return {"merged": root / "merged", "caller": root / "caller" / "model.gguf", "base": root / "base" / "model.gguf",
            "lora": root / "lora" / "adapter.gguf"}


def _core(model: Path, **args) -> LLMCore:
    return LLMCore(LLMServeArgs(model=str(model), chat_format="tool_calls", max_new_tokens=80, **args))


def _rows(core: LLMCore, prompts: list[str], **settings) -> list[Generation]:
    return [Generation(prompt_ids=tuple(core.tokenizer(p)["input_ids"]), adapter=None, max_new_tokens=80, **settings)
            for p in prompts]


@needs_llama_cpp
def test_llama_cpp_answers_like_transformers_and_batches_like_one_at_a_time(models):
    llama = _core(models["caller"], engine="llama_cpp", llama_cpp={"max_sequences": 2, "threads": 1})
    torch_engine = _core(models["merged"])
    tool_prompt = render_prompt(llama.tokenizer, TWO_CITIES, offered_functions([ToolDefinition.model_validate(WEATHER)]))
    prompts = [tool_prompt, *OTHER_PROMPTS, tool_prompt]  # three chunks of two; one prompt twice
    batched = llama.generate(_rows(llama, prompts))
    assert batched[0].text == batched[-1].text == PARALLEL_TEXT == torch_engine.generate(_rows(torch_engine, prompts[:1]))[0].text
    assert batched[0].finish_reason == "stop" and batched[0].usage.prompt_tokens == len(llama.tokenizer(tool_prompt)["input_ids"])
    alone = [llama.generate(_rows(llama, [p]))[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert [g.usage for g in batched] == [g.usage for g in alone]


@needs_llama_cpp
def test_a_gguf_lora_is_applied_to_the_base_for_its_own_rows_only(models):
    llama = _core(models["base"], engine="llama_cpp", adapters={CALLER_LORA: str(models["lora"])}, llama_cpp={"threads": 1})
    tool_prompt = render_prompt(llama.tokenizer, TWO_CITIES, offered_functions([ToolDefinition.model_validate(WEATHER)]))
    (row,) = _rows(llama, [tool_prompt])
    with_lora = Generation(**{**row.__dict__, "adapter": CALLER_LORA})
    alone = llama.generate([row])[0].text
    assert alone != PARALLEL_TEXT
    for _ in range(2):  # the adapter goes on and off the base model's context
        assert llama.generate([with_lora])[0].text == PARALLEL_TEXT
        assert llama.generate([row])[0].text == alone
    llama.engine.evict(CALLER_LORA)
    assert llama.generate([with_lora])[0].text == PARALLEL_TEXT, "an evicted adapter loads again when asked for"


@needs_llama_cpp
def test_llama_cpp_samples_each_choice_with_its_own_seeded_draw(models):
    llama = _core(models["base"], engine="llama_cpp", llama_cpp={"threads": 1})
    rows = _rows(llama, OTHER_PROMPTS[:1] * 3, temperature=1.0, seed=5)
    first, again = [g.text for g in llama.generate(rows)], [g.text for g in llama.generate(rows)]
    assert first == again and len(set(first)) > 1


@needs_llama_cpp
def test_llama_cpp_threads_are_the_cpus_ray_gave_the_replica(ray_session):
    from recursa.llm.llama_cpp_engine import replica_cpus

    @ray_session.remote(num_cpus=0.5)
    class Replica:
        def threads(self) -> int:
            return replica_cpus()

    assert ray_session.get(Replica.remote().threads.remote()) == 1  # half a CPU, rounded up
    assert replica_cpus() == os.cpu_count(), "outside a replica: the machine's"


@needs_llama_cpp
def test_a_corrupt_gguf_stops_the_replica_with_its_path(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ConfigError, match=f"model: llama.cpp cannot load {bad}"):
        _core(bad, engine="llama_cpp")
    with pytest.raises(ConfigError, match="engine llama_cpp runs GGUF files"):
        _core(tmp_path, engine="llama_cpp")


@pytest.mark.parametrize("name, message", [
    ("garbage.gguf", "GGUF model at {path} is not a readable GGUF file (GGUF magic invalid)"),
    ("missing.gguf", "GGUF model not found at {path}"),
])
def test_serve_refuses_a_corrupt_or_missing_gguf_before_it_starts(name, message, recursa_cli, tmp_path):
    (tmp_path / "garbage.gguf").write_bytes(b"not a gguf at all")
    path = tmp_path / name
    config = {"applications": [{"name": "llm", "import_path": "recursa.llm.serve:app", "route_prefix": "/",
                                "args": {"engine": "llama_cpp", "model": str(path)}}]}
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(config))
    code, err = recursa_cli(["serve", "--config", tmp_path / "serve.yaml"])
    assert code == 2 and err.count("\n") == 1
    assert f"applications.llm.args.model: {message.format(path=path)}; create it with" in err


def test_the_llama_cpp_serve_config_is_checked_and_names_the_export_that_makes_its_file(monkeypatch, tmp_path):
    from recursa.cli.serve import check_model_dirs, check_serve_config

    config = check_serve_config(Path("serve/llm_gguf.yaml").resolve())
    assert config.applications[0].args["engine"] == "llama_cpp"
    monkeypatch.chdir(tmp_path)  # nothing has been exported here
    with pytest.raises(ConfigError, match=r"args\.model: GGUF model not found at runs/llm-gguf/model\.gguf; create it "
                                          r"with `recursa export llm --adapter ADAPTER --format gguf --quant q8_0 "
                                          r"--out runs/llm-gguf`"):
        check_model_dirs(config)


@pytest.fixture(scope="module")
def client(ray_session, models):
    from ray import serve

    from recursa.llm.serve import LLMServer

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(LLMServer.options(ray_actor_options={"num_cpus": 0.1}).bind({
        "engine": "llama_cpp", "model": str(models["base"]), "model_name": BASE, "chat_format": "tool_calls",
        "adapters": {CALLER: str(models["caller"]), CALLER_LORA: str(models["lora"])}, "max_adapters_per_replica": 1,
        "max_new_tokens": 80}),
        name="llama-cpp", route_prefix="/")
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=60)
    serve.shutdown()  # the next module's Serve starts on a port of its own


@needs_llama_cpp
def test_openai_client_gets_tool_calls_from_the_llama_cpp_engine(client):
    assert {m.id for m in client.models.list().data} == {BASE, CALLER, CALLER_LORA}
    for model in (CALLER, CALLER_LORA, CALLER):  # one served id loaded at a time: each evicts the other
        reply = client.chat.completions.create(model=model, messages=TWO_CITIES, tools=[WEATHER], n=2)
        for choice in reply.choices:
            assert choice.finish_reason == "tool_calls"
            assert [json.loads(c.function.arguments) for c in choice.message.tool_calls] == [{"city": "Paris"},
                                                                                             {"city": "Rome"}]
    streamed = list(client.chat.completions.create(model=CALLER, messages=TWO_CITIES, tools=[WEATHER], stream=True))
    calls = [call for chunk in streamed for call in chunk.choices[0].delta.tool_calls or []]
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    assert streamed[-1].choices[0].finish_reason == "tool_calls"


@needs_llama_cpp
def test_streamed_completion_from_llama_cpp_is_the_whole_completion_in_pieces(client):
    whole = client.completions.create(model=BASE, prompt=OTHER_PROMPTS[0], max_tokens=12)
    chunks = list(client.completions.create(model=BASE, prompt=OTHER_PROMPTS[0], max_tokens=12, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert len([c for c in chunks if c.choices[0].text]) > 2
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")


PARIS = [{"role": "user", "content": "What is the weather in Paris?"}]
PARIS_CALL = '<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>'


@pytest.mark.slow
@needs_llama_cpp
def test_smollm2_round_trip_adapter_merged_q8_0_served_by_llama_cpp_calls_like_transformers(ray_session, tmp_path):
    """SmolLM2-135M-Instruct with a LoRA adapter -> merged -> q8_0 GGUF -> `engine: llama_cpp` on
    Serve: the openai client gets the tool call the transformers engine gives on the merged model."""
    from ray import serve

    from recursa.llm.serve import LLMServer

    functions = offered_functions([ToolDefinition.model_validate(WEATHER)])
    prompt = render_prompt(load_tokenizer("smollm2-135m-instruct"), PARIS, functions)
    adapter = fitted_lora_adapter("smollm2-135m-instruct", PARIS_CALL, tmp_path / "adapter", prompt, steps=30, lr=2e-3)
    merge_into_base(adapter, tmp_path / "merged")
    export_gguf(tmp_path / "gguf", "q8_0", adapter=adapter, verify=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    answers = {}
    try:
        for engine, model in (("transformers", tmp_path / "merged"), ("llama_cpp", tmp_path / "gguf" / "model.gguf")):
            serve.run(LLMServer.options(ray_actor_options={"num_cpus": 0.5}).bind(
                {"engine": engine, "model": str(model), "model_name": "smollm2-weather", "max_new_tokens": 48}),
                name=engine, route_prefix=f"/{engine}")
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/{engine}/v1", api_key="unused", max_retries=0,
                                   timeout=120)
            reply = client.chat.completions.create(model="smollm2-weather", messages=PARIS, tools=[WEATHER])
            answers[engine] = [(c.function.name, json.loads(c.function.arguments))
                               for c in reply.choices[0].message.tool_calls or []]
            serve.delete(engine)
    finally:
        serve.shutdown()
    assert answers["llama_cpp"] == answers["transformers"] == [("get_weather", {"city": "Paris"})]
