"""A/B serving in the LLM Serve app: an agent type's requests split across versions, each user kept
on one version, the version named in every response and recorded with each served decision."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from recursa.core.config import ConfigError, parse_config
from recursa.decisions.serving import RoutedServing
from recursa.decisions.source import open_engine
from recursa.llm.config import LLMServeArgs
from serving_models import free_port


def test_routes_must_name_served_versions():
    args = {"model": "m", "model_name": "base", "adapters": {"tuned": "/a"}}
    assert parse_config({**args, "routes": {"FILER": {"base": 1, "tuned": 2}}}, LLMServeArgs).routes
    with pytest.raises(ConfigError, match=r"routes.FILER: v9 not served"):
        parse_config({**args, "routes": {"FILER": {"base": 1, "v9": 1}}}, LLMServeArgs)
    with pytest.raises(ConfigError, match=r"routes: 'tuned' is already a served id"):
        parse_config({**args, "routes": {"tuned": {"base": 1}}}, LLMServeArgs)
    with pytest.raises(ConfigError, match=r"routes.FILER: weights"):
        parse_config({**args, "routes": {"FILER": {"base": 0}}}, LLMServeArgs)


def test_routed_serving_records_each_answer_with_its_version(tmp_path):
    db = str(tmp_path / "served.db")
    routing = RoutedServing({"FILER": {"base": 1, "tuned": 1}}, db)
    assert routing.version("base", "u1") is None  # not a routed name: served as asked
    version = routing.version("FILER", "u1")
    assert all(routing.version("FILER", "u1") == version for _ in range(5))
    routing.record("FILER", version, "prompt", ["a", "b"], "u1")
    assert routing.served is not None and routing.served.counts("FILER") == {version: 2}


@pytest.mark.slow
def test_the_llm_app_splits_an_agent_types_requests_and_records_them(ray_session, tiny_llm, tmp_path):
    import openai
    from ray import serve

    from recursa.llm.config import LLMModelSettings
    from recursa.llm.models import load_causal_lm, save_adapter
    from recursa.llm.serve import LLMServer

    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny_llm)))
    adapter = save_adapter(model, tokenizer, tmp_path / "tuned")
    db = str(tmp_path / "app.db")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(LLMServer.options(ray_actor_options={"num_cpus": 0.1}).bind({
            "model": str(tiny_llm), "model_name": "filer-base", "adapters": {"filer-v1": str(adapter)},
            "chat_format": "actions", "max_new_tokens": 4,
            "routes": {"FILER": {"filer-base": 1, "filer-v1": 1}}, "decisions_db": db}),
            name="decisions-ab", route_prefix="/ab")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/ab/v1", api_key="unused", max_retries=0, timeout=60)
        answered = {}
        for i in range(24):
            user = f"user{i % 8}"
            response = client.completions.create(model="FILER", prompt="File: invoice_1.pdf\nDecision:", user=user)
            assert answered.setdefault(user, response.model) == response.model  # sticky per user
        chat = client.chat.completions.create(model="FILER", messages=[{"role": "user", "content": "a.pdf"}],
                                              user="user0")
        assert chat.model == answered["user0"]
        assert client.completions.create(model="filer-v1", prompt="x").model == "filer-v1"  # a version by name
    finally:
        serve.shutdown()
    assert set(answered.values()) == {"filer-base", "filer-v1"}
    engine = open_engine(db)
    table = sa.Table("recursa_served_decisions", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.user_id, table.c.version_id, table.c.agent_type)).all()
    assert len(rows) == 25 and {row.agent_type for row in rows} == {"FILER"}
    assert all(answered[row.user_id] == row.version_id for row in rows)
    assert Counter(row.version_id for row in rows) == Counter([*(answered[f"user{i % 8}"] for i in range(24)),
                                                               answered["user0"]])
