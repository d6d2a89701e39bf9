"""Tiny models for the serving tests, made here (never downloaded): a fitted tool caller, a
hand-set gift policy and LoRA adapters fitted to one answer, saved the way users' models are."""

from __future__ import annotations

import socket
from pathlib import Path

import torch

from fc_fitting import fit_until_correct
from recursa.core.trm import TRMConfig
from recursa.fc.artifact import save_fc_model
from recursa.fc.data.schema import FCExample
from recursa.fc.features import Featurizer, collate
from recursa.fc.model import FunctionCallingTRM
from recursa.fc.tokenizer import CharTokenizer
from recursa.gift.config import GiftEnvConfig
from recursa.gift.env import FINISH, FIRST_TOOL, NUM_GLOBAL_ACTIONS, gift_spaces
from recursa.gift.module import TRMPolicyModule
from recursa.gift.policy_io import save_policy
from recursa.gift.tools import GIFT_TOOL_NAMES
from recursa.llm.config import LLMModelSettings, LoRASettings
from recursa.llm.models import load_causal_lm, save_adapter
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

WEATHER = FunctionSpec(name="get_weather", description="Current weather in a city",
                       parameters=[ParamSpec(name="city", type="string", description="City name")])
STOCK = FunctionSpec(name="get_stock", description="Stock price of a company",
                     parameters=[ParamSpec(name="ticker", type="string")])
EXAMPLES = [
    FCExample(id="1", query="What is the weather in Paris?", functions=[WEATHER, STOCK],
              calls=[FunctionCall(name="get_weather", arguments={"city": "Paris"})]),
    FCExample(id="2", query="Stock price of ACME please", functions=[STOCK, WEATHER],
              calls=[FunctionCall(name="get_stock", arguments={"ticker": "ACME"})]),
    FCExample(id="3", query="Tell me a joke", functions=[WEATHER, STOCK], calls=[]),
]
GIFT_ENV = GiftEnvConfig(num_items=120, num_users=40)


def fitted_tool_caller(out_dir: Path) -> Path:
    """A hidden-32 tool caller fitted to EXAMPLES, saved with save_fc_model."""
    torch.manual_seed(0)
    texts = [e.query for e in EXAMPLES] + ["get weather stock city ticker name price company current"]
    featurizer = Featurizer(CharTokenizer.train(texts))
    batch = collate([featurizer.encode(e) for e in EXAMPLES])
    model = FunctionCallingTRM(TRMConfig(hidden_size=32, num_heads=4, T=1, n=1), featurizer.tokenizer.vocab_size)
    assert fit_until_correct(model, batch, steps=400, lr=3e-3), "the tiny tool caller fits its three examples"
    return save_fc_model(model.eval(), featurizer.tokenizer, out_dir)


def scripted_gift_policy(out_dir: Path) -> Path:
    """A tiny TRM policy whose biases make it check stock and budget, then recommend: its
    behaviour is known, so the tests can check what the server did."""
    observation_space, action_space = gift_spaces(GIFT_ENV.num_candidates)
    torch.manual_seed(0)
    module = TRMPolicyModule(observation_space=observation_space, action_space=action_space, model_config={
        "hidden_size": 16, "num_layers": 1, "num_heads": 2, "T": 1, "n": 1, "num_global_actions": NUM_GLOBAL_ACTIONS})
    with torch.no_grad():
        bias = torch.full((NUM_GLOBAL_ACTIONS,), -20.0)
        bias[FINISH] = -40.0
        for tool, preference in (("inventory_check", 20.0), ("budget_optimizer", 10.0)):
            bias[FIRST_TOOL + GIFT_TOOL_NAMES.index(tool)] = preference
        module.global_head.bias.copy_(bias)
    return save_policy(module, GIFT_ENV, out_dir)


def fitted_lora_adapter(base: str | Path, target: str, out_dir: Path, prompt: str, steps: int = 40,
                        lr: float = 1e-2) -> Path:
    """A LoRA adapter on `base` fitted in a few AdamW steps to answer `prompt` with `target`."""
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(base), lora=LoRASettings(r=8, alpha=16, dropout=0.0)))
    batch = tokenizer([prompt + target + tokenizer.eos_token], return_tensors="pt")
    labels = batch["input_ids"].clone()
    labels[:, :len(tokenizer(prompt)["input_ids"])] = -100
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return save_adapter(model, tokenizer, out_dir)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
