"""Serving end to end: int8 exports against fp32, both deployments over HTTP with the official
openai client, every kind of bad input, the API key, and autoscaling (slow)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import openai
import pytest
import requests

from recursa.fc.artifact import WEIGHTS, load_fc_model, predict_calls
from recursa.fc.export import INT8_WEIGHTS, export_fc_int8, load_fc_int8
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.export import export_gift_policy
from recursa.gift.onnx_policy import OnnxPolicy, onnx_file
from serving_models import EXAMPLES, GIFT_ENV, fitted_tool_caller, scripted_gift_policy

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
MODEL = "trm-test"
KEY = "s3cret-test-key"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "get_stock", "description": "Stock price of a company",
        "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}}}]
USER = {"budget": 80.0, "age": 35, "occasion": "birthday", "relationship": "friend", "interests": ["books", "music"]}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    tool_caller = export_fc_int8(fitted_tool_caller(root / "fc"), root / "fc_int8")
    export_gift_policy(scripted_gift_policy(root / "gift"), root / "gift_export")
    return {"tool_caller": tool_caller, "gift": root / "gift_export"}


def test_gift_int8_export_agrees_with_fp32_and_is_smaller(models):
    fp32, int8 = OnnxPolicy(models["gift"], "fp32"), OnnxPolicy(models["gift"], "int8")
    env = GiftRecommendationEnv(GIFT_ENV.model_dump())
    observations = [env.reset(seed=i, options={"user_index": i})[0] for i in range(64)]
    assert fp32.act(observations) == int8.act(observations)
    tokens = np.stack([o["observations"] for o in observations])
    masks = np.stack([o["action_mask"] for o in observations])
    assert np.abs(fp32.logits(tokens, masks) - int8.logits(tokens, masks)).max() < 0.5
    assert (models["gift"] / onnx_file("int8")).stat().st_size < (models["gift"] / onnx_file("fp32")).stat().st_size


def test_tool_caller_int8_agrees_with_fp32_and_is_smaller(models):
    fp32, featurizer = load_fc_model(models["tool_caller"])
    int8, _ = load_fc_int8(models["tool_caller"])
    assert predict_calls(int8, featurizer, EXAMPLES) == predict_calls(fp32, featurizer, EXAMPLES)
    assert predict_calls(int8, featurizer, EXAMPLES) == [e.calls for e in EXAMPLES]
    linear_bytes = (models["tool_caller"] / INT8_WEIGHTS).stat().st_size
    assert linear_bytes < (models["tool_caller"] / WEIGHTS).stat().st_size


def test_recommender_batch_runs_each_episode_as_if_alone(models):
    from recursa.gift.schemas import RecommendRequest
    from recursa.gift.serve_core import GiftRecommenderCore, InvalidRequest

    core = GiftRecommenderCore(models["gift"])
    users = [dict(USER, budget=budget, interests=interests)
             for budget, interests in [(80.0, ["books"]), (150.0, ["kitchen", "home"]), (30.0, ["toys"])]]
    requests_ = [RecommendRequest(user=user, seed=seed) for seed, user in enumerate(users)]
    unknown_items = RecommendRequest(user=USER, item_ids=[10**9] * 8)
    alone = [core.recommend([request])[0] for request in requests_]
    together = core.recommend([requests_[0], unknown_items, *requests_[1:]])
    assert isinstance(together[1], InvalidRequest) and "unknown items" in str(together[1])
    assert [r.model_dump() for r in together[:1] + together[2:]] == [r.model_dump() for r in alone]
    assert len({tuple(r.candidates) for r in alone}) == 3, "three users, three candidate sets"


def test_recommender_serves_any_number_of_candidates_in_one_batch(models):
    from recursa.gift.schemas import RecommendRequest
    from recursa.gift.serve_core import GiftRecommenderCore

    core = GiftRecommenderCore(models["gift"])  # trained and exported at 8 candidates
    catalog = core._sample_env.items.ids.tolist()
    requests_ = [RecommendRequest(user=USER, item_ids=catalog[:k]) for k in (4, 32, 8)]
    together = core.recommend(requests_)
    for request, response in zip(requests_, together):
        assert response.candidates == request.item_ids
        assert len(response.recommendations) == 3 and {r.item_id for r in response.recommendations} <= set(request.item_ids)
        assert response.model_dump() == core.recommend([request])[0].model_dump()


@pytest.fixture(scope="module")
def server(ray_session, models):
    from ray import serve

    from recursa.fc.serve import ToolCaller
    from recursa.gift.serve import GiftRecommender

    small = {"ray_actor_options": {"num_cpus": 0.1}}
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    serve.run(ToolCaller.options(**small).bind({"model_dir": str(models["tool_caller"]), "precision": "int8",
                                                 "model_name": MODEL}), name="tools", route_prefix="/")
    serve.run(GiftRecommender.options(**small).bind({"export_dir": str(models["gift"]), "max_body_bytes": 4096}),
              name="gift", route_prefix="/gift")
    serve.run(GiftRecommender.options(**small).bind({"export_dir": str(models["gift"]), "api_key": KEY}),
              name="secure", route_prefix="/secure")
    yield serve
    serve.shutdown()


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=f"{BASE}/v1", api_key="unused", max_retries=0, timeout=30)


def test_openai_client_gets_tool_calls(client):
    reply = client.chat.completions.create(
        model=MODEL, tools=TOOLS, messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    (call,) = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_openai_client_gets_a_message_when_no_function_fits(client):
    reply = client.chat.completions.create(
        model=MODEL, tools=TOOLS, messages=[{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "Tell me a joke"}])
    assert reply.choices[0].message.tool_calls is None and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content
    plain = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}])
    assert plain.choices[0].message.content and plain.choices[0].message.tool_calls is None


def test_openai_client_streams_the_tool_calls_of_n_choices(client):
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    chunks = list(client.chat.completions.create(model=MODEL, tools=TOOLS, messages=question, n=2, stream=True))
    for index in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices[0].index == index]
        assert mine[0].delta.role == "assistant" and mine[-1].finish_reason == "tool_calls"
        (call,) = [call for c in mine for call in c.delta.tool_calls or []]
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    whole = client.chat.completions.create(model=MODEL, tools=TOOLS, messages=question, n=2)
    assert [c.index for c in whole.choices] == [0, 1] and whole.choices[0].message == whole.choices[1].message


def test_openai_client_lists_the_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_recommender_runs_the_policy_and_its_tools_on_the_server(server):
    response = requests.post(f"{BASE}/gift/recommend", json={"user": USER, "seed": 3}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["name"] for c in body["tool_calls"]] == ["inventory_check", "budget_optimizer"]
    assert all(c["ok"] for c in body["tool_calls"])
    assert body["tool_calls"][1]["arguments"]["budget"] == USER["budget"]
    assert sorted(body["tool_calls"][0]["arguments"]["item_ids"]) == sorted(body["candidates"])
    assert len(body["recommendations"]) == GIFT_ENV.max_recommendations
    assert {item["item_id"] for item in body["recommendations"]} <= set(body["candidates"])
    again = requests.post(f"{BASE}/gift/recommend", json={"user": USER, "seed": 3}, timeout=30).json()
    assert again["candidates"] == body["candidates"], "a seed makes the answer repeatable"


def test_docs_are_served(server):
    assert requests.get(f"{BASE}/docs", timeout=10).status_code == 200
    assert "/v1/chat/completions" in requests.get(f"{BASE}/openapi.json", timeout=10).json()["paths"]
    assert "/recommend" in requests.get(f"{BASE}/gift/openapi.json", timeout=10).json()["paths"]


def _error(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


@pytest.mark.parametrize("body, status, words", [
    (b'{"model": "trm-test", "messages": [', 400, "malformed JSON"),
    (b'{"model": "trm-test", "messages": "hello"}', 422, "messages"),
    (json.dumps({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}).encode(), 422, "role"),
    (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x"}] * 65}).encode(), 422, "messages"),
    (json.dumps({"model": MODEL, "tools": TOOLS * 9, "messages": [{"role": "user", "content": "x"}]}).encode(),
     422, "tools"),
    (json.dumps({"model": MODEL, "tools": [{"type": "function", "function": {"name": "rm -rf /"}}],
                 "messages": [{"role": "user", "content": "x"}]}).encode(), 422, "name"),
    (json.dumps({"model": "/etc/passwd", "messages": [{"role": "user", "content": "x"}]}).encode(), 404, "does not"),
    (json.dumps({"model": MODEL, "n": 9, "messages": [{"role": "user", "content": "x"}]}).encode(), 422, "n: "),
    (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * 300_000}]}).encode(), 413, "bytes"),
])
def test_bad_chat_requests_get_json_4xx_and_the_server_stays_up(client, body, status, words):
    response = requests.post(f"{BASE}/v1/chat/completions", data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    assert words in _error(response, status)
    reply = client.chat.completions.create(
        model=MODEL, tools=TOOLS, messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert reply.choices[0].message.tool_calls


def test_unknown_model_raises_in_the_openai_client(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("body, status, words", [
    ({"user": {**USER, "budget": -5}}, 422, "budget"),
    ({"user": {**USER, "interests": ["dragons"]}}, 422, "interests"),
    ({"user": USER, "item_ids": [10**9] * 8}, 422, "unknown items"),
    ({"user": USER, "item_ids": [1, 2]}, 422, "4 to 32 distinct items"),
    ({"user": USER, "item_ids": list(range(33))}, 422, "4 to 32 distinct items"),
    ({"user": USER, "extra": 1}, 422, "extra"),
    ({"user": USER, "seed": 1, "pad": "x" * 5000}, 413, "bytes"),
])
def test_bad_recommend_requests_get_json_4xx(server, body, status, words):
    assert words in _error(requests.post(f"{BASE}/gift/recommend", json=body, timeout=30), status)
    assert requests.post(f"{BASE}/gift/recommend", json={"user": USER}, timeout=30).status_code == 200


def test_api_key_guards_every_route(server):
    for method, path in [("post", "/secure/recommend"), ("get", "/secure/docs"), ("get", "/secure/openapi.json")]:
        assert "API key" in _error(getattr(requests, method)(f"{BASE}{path}", json={"user": USER}, timeout=10), 401)
    wrong = {"Authorization": "Bearer wrong"}
    _error(requests.post(f"{BASE}/secure/recommend", json={"user": USER}, headers=wrong, timeout=10), 401)
    right = {"Authorization": f"Bearer {KEY}"}
    assert requests.post(f"{BASE}/secure/recommend", json={"user": USER}, headers=right, timeout=30).status_code == 200


@pytest.mark.slow
def test_autoscaling_goes_up_under_load_and_back_down(server, models):
    from recursa.fc.serve import ToolCaller

    app = ToolCaller.options(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=4, autoscaling_config={
        "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1, "metrics_interval_s": 0.5,
        "look_back_period_s": 2, "upscale_delay_s": 1, "downscale_delay_s": 3})
    server.run(app.bind({"model_dir": str(models["tool_caller"]), "model_name": "scaled"}),
               name="scaled", route_prefix="/scaled")

    def replicas() -> int:
        status = server.status().applications["scaled"].deployments["ToolCaller"]
        return sum(n for state, n in status.replica_states.items() if state == "RUNNING")

    body = {"model": "scaled", "tools": TOOLS, "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            requests.post(f"{BASE}/scaled/v1/chat/completions", json=body, timeout=30)

    workers = [threading.Thread(target=load) for _ in range(8)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 60
        while replicas() < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert replicas() == 2, "scaled up under load"
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    deadline = time.monotonic() + 60
    while replicas() > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert replicas() == 1, "scaled back down when idle"
    server.delete("scaled")
