"""GGUF and Ollama exports of a LoRA-adapted tiny Llama: what llama.cpp, transformers and Ollama read.

The exports run once per module (f16 and q8_0 of the tiny model with a trained adapter merged);
the llama.cpp checks run where llama-cpp-python is installed (`pip install 'recursa[gguf]'`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gguf
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from gotemplate import render
from recursa.core.config import ConfigError
from recursa.core.hardware import Hardware
from recursa.llm.config import LLMModelSettings, LoRASettings
from recursa.llm.export import export_gguf
from recursa.llm.gguf_export import rope_halves_to_pairs
from recursa.llm.models import load_causal_lm, merge_into_base, save_adapter
from recursa.llm.ollama import go_template, hosting_profile, turn_format
from recursa.llm.tool_calls import render_prompt
from recursa.tools.schema import FunctionSpec, ParamSpec, function_to_json_schema

PROBE = ["Solve for x: 3x + 7 = 16", "Observation: x = 3"]
CHATML = ("{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nBe brief.<|im_end|>\n"
          "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
WEATHER = FunctionSpec(name="get_weather", description="The weather in a city.",
                       parameters=[ParamSpec(name="city", description="A city."),
                                   ParamSpec(name="days", type="integer", required=False)])


@pytest.fixture(scope="module")
def adapter(tiny_llm, tmp_path_factory) -> Path:
    """A LoRA adapter trained a few steps, so that merging it changes the model."""
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny_llm), lora=LoRASettings(r=4, alpha=8, dropout=0.0)))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = tokenizer(["Action: subtract_terms(7)"], return_tensors="pt")
    for _ in range(5):
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return save_adapter(model, tokenizer, tmp_path_factory.mktemp("adapter") / "adapter")


@pytest.fixture(scope="module")
def merged(adapter, tmp_path_factory):
    return merge_into_base(adapter, tmp_path_factory.mktemp("merged") / "merged").eval()


@pytest.fixture(scope="module", params=["f16", "q8_0"])
def export(request, adapter, tmp_path_factory) -> tuple[str, Path, dict]:
    out = tmp_path_factory.mktemp(request.param) / "export"
    return request.param, out, export_gguf(out, request.param, adapter=adapter)


def _logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(PROBE, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits[batch["attention_mask"].bool()]


def test_gguf_holds_llama_cpp_tensor_names_and_the_tokenizer(export, tiny_llm):
    quant, out, _ = export
    reader = gguf.GGUFReader(out / "model.gguf")
    tensors = {t.name: t.tensor_type for t in reader.tensors}
    per_block = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_norm", "ffn_norm"}
    assert set(tensors) == {"token_embd.weight", "output_norm.weight"} | {f"blk.{i}.{n}.weight" for i in (0, 1)
                                                                          for n in per_block}  # tied: no output
    weights = gguf.GGMLQuantizationType.F16 if quant == "f16" else gguf.GGMLQuantizationType.Q8_0
    assert tensors["blk.0.attn_q.weight"] == weights and tensors["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    fields = reader.fields
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == len(tokenizer)
    assert bytes(tokens.parts[tokens.data[tokenizer.eos_token_id]]).decode() == tokenizer.eos_token
    assert fields["tokenizer.ggml.eos_token_id"].parts[-1][0] == tokenizer.eos_token_id
    assert bool(fields["tokenizer.ggml.add_bos_token"].parts[-1][0])  # the tiny tokenizer prepends <s>
    assert len(fields["tokenizer.ggml.merges"].data) > 100


def test_transformers_reads_the_gguf_back_with_the_merged_logits(export, merged, tiny_llm):
    quant, out, report = export
    back = AutoModelForCausalLM.from_pretrained(out, gguf_file="model.gguf", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    expected = _logits(merged, tokenizer)
    error = (_logits(back, tokenizer) - expected).abs().max().item() / expected.abs().max().item()
    assert error < (0.01 if quant == "f16" else 0.05)
    assert report["transformers_readback_rel_diff"] == pytest.approx(error, abs=0.01)
    assert report["bytes"] == (out / "model.gguf").stat().st_size < report["merged_float32_bytes"]


def test_llama_cpp_runs_the_gguf_with_the_merged_models_tokens_and_likelihoods(export):
    """The tiny model is random: its next-token distributions are nearly flat (mean log-likelihood
    about -3.8), so q8_0's rounding flips many greedy choices (measured: 66% identical tokens) while
    the likelihoods stay close (gap 0.024 nats); f16 must agree token for token."""
    pytest.importorskip("llama_cpp")
    quant, _, report = export
    llama = report["llama_cpp"]
    assert llama["prompts"] == 20
    assert llama["tokenizer_agreement"] == 1.0
    if quant == "f16":
        assert llama["token_agreement"] >= 0.9 and llama["loglik_gap"] < 0.01
    else:
        assert llama["loglik_gap"] < 0.1


def test_without_llama_cpp_the_report_says_so(adapter, tmp_path, monkeypatch):
    monkeypatch.setattr("recursa.llm.export.llama_cpp_available", lambda: False)
    report = export_gguf(tmp_path / "out", "q4_0", adapter=adapter)
    assert report["llama_cpp"] == "not installed"
    assert json.loads((tmp_path / "out" / "export_report.json").read_text())["gguf"]["quant"] == "q4_0"


def test_q_and_k_rows_move_from_rope_halves_to_pairs():
    """Per head of 4 dims, HF's pairs (0, 2) and (1, 3) become llama.cpp's neighbours (0, 1), (2, 3)."""
    rows = torch.arange(8.0).reshape(8, 1)  # 2 heads
    assert rope_halves_to_pairs(rows, heads=2).flatten().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_an_adapter_exports_as_a_gguf_lora_whose_product_is_the_merged_change(adapter, merged, tiny_llm, tmp_path,
                                                                             recursa_cli):
    code, _ = recursa_cli(["export", "llm", "--adapter", adapter, "--format", "gguf-lora", "--out", tmp_path])
    assert code == 0 and json.loads((tmp_path / "export_report.json").read_text())["gguf_lora"]["alpha"] == 8
    reader = gguf.GGUFReader(tmp_path / "adapter.gguf")
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("adapter.type").contents() == "lora" and reader.get_field("adapter.lora.alpha").contents() == 8
    tensors = {t.name: t for t in reader.tensors}
    per_block = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    assert set(tensors) == {f"blk.{i}.{n}.weight.lora_{part}" for i in (0, 1) for n in per_block for part in "ab"}
    base = AutoModelForCausalLM.from_pretrained(tiny_llm)
    heads = base.config.num_key_value_heads
    for hf_name, name in (("k_proj", "attn_k"), ("v_proj", "attn_v")):
        a = torch.from_numpy(tensors[f"blk.1.{name}.weight.lora_a"].data.copy())
        b = torch.from_numpy(tensors[f"blk.1.{name}.weight.lora_b"].data.copy())
        change = (getattr(merged.model.layers[1].self_attn, hf_name).weight
                  - getattr(base.model.layers[1].self_attn, hf_name).weight).detach()
        expected = rope_halves_to_pairs(change, heads) if hf_name == "k_proj" else change
        assert torch.allclose(8 / 4 * b @ a, expected, atol=1e-6), f"{name}: llama.cpp adds alpha / rank x B A"


def _ollama_view(messages: list[dict], functions: list[FunctionSpec]) -> dict:
    """What Ollama hands a TEMPLATE: system messages joined in .System, every message in .Messages."""
    return {
        "System": "\n\n".join(m["content"] for m in messages if m["role"] == "system"),
        "Tools": [{"Type": "function", "Function": function_to_json_schema(f)} for f in functions],
        "Messages": [{"Role": m["role"], "Content": m.get("content") or "",
                      "ToolCalls": [{"Function": {"Name": c["function"]["name"], "Arguments": c["function"]["arguments"]}}
                                    for c in m.get("tool_calls", [])]} for m in messages],
    }


CHATS = [
    ([{"role": "user", "content": "Hi there"}], []),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Weather in Paris?"}], [WEATHER]),
    ([{"role": "user", "content": "Weather in Oslo for 2 days?"},
      {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather",
                                                                          "arguments": {"city": "Oslo", "days": 2}}}]},
      {"role": "tool", "content": '{"forecast": "snow"}'}, {"role": "user", "content": "Thanks"}], [WEATHER]),
    ([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "x2?"}], []),
]


@pytest.mark.parametrize("template", [None, CHATML], ids=["no-template", "chatml"])
def test_modelfile_template_renders_the_chats_as_served(template, tiny_llm, adapter, tmp_path, recursa_cli):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_llm, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if template:
        tokenizer.chat_template = template
        tokenizer.save_pretrained(model_dir)
    out = tmp_path / "ollama"
    assert recursa_cli(["export", "llm", "--model", model_dir, "--format", "ollama", "--quant", "q8_0", "--out", out])[0] == 0
    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./model.gguf\n" in modelfile and (out / "model.gguf").is_file()
    go = re.search(r'TEMPLATE """(.*?)"""', modelfile, re.DOTALL).group(1)
    assert go == go_template(turn_format(tokenizer))
    for messages, functions in CHATS:
        expected = render_prompt(tokenizer, messages, functions)
        # Ollama writes a call's arguments compact (Go's JSON); recursa's history has json.dumps spacing.
        expected = expected.replace('{"city": "Oslo", "days": 2}', '{"city":"Oslo","days":2}')
        assert render(go, _ollama_view(messages, functions)) == expected
    stops = re.findall(r"PARAMETER stop (.*)", modelfile)
    assert ('"<|im_end|>"' in stops) if template else ('"\\nuser:"' in stops and '"</s>"' in stops)
    hosting = json.loads((out / "hosting.json").read_text())
    assert f"PARAMETER num_ctx {hosting['num_ctx']}\n" in modelfile and hosting["num_ctx"] <= 512  # tiny's context


def test_a_template_with_per_role_layouts_is_refused(tiny_llm):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
                               "{% else %}{{ m['content'] }}</s>{% endif %}{% endfor %}")
    with pytest.raises(ConfigError, match=r"^chat template:"):
        turn_format(tokenizer)


def test_hosting_profile_follows_the_machine():
    assert hosting_profile(Hardware(cpus=16, memory_gb=64, gpus=0), 8192).__dict__ == {
        "num_parallel": 4, "num_ctx": 4096, "num_thread": 14, "flash_attention": False}
    assert hosting_profile(Hardware(cpus=2, memory_gb=8, gpus=0), 8192).__dict__ == {
        "num_parallel": 1, "num_ctx": 2048, "num_thread": 2, "flash_attention": False}
    assert hosting_profile(Hardware(cpus=8, memory_gb=32, gpus=1), 2048).flash_attention


@pytest.fixture(scope="module")
def gpt2_dir(tiny_llm, tmp_path_factory) -> Path:
    """A model of an architecture the GGUF export does not support, with the tiny tokenizer."""
    out = tmp_path_factory.mktemp("gpt2") / "gpt2"
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def orphan_adapter(adapter, tmp_path_factory) -> Path:
    """The adapter, naming a base that does not exist."""
    out = tmp_path_factory.mktemp("orphan") / "adapter"
    shutil.copytree(adapter, out)
    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": "/no/such/base"}))
    return out


@pytest.mark.parametrize(("args", "message"), [
    (["--adapter", "{adapter}", "--format", "gguf", "--quant", "q4_k_m"], "quant: must be one of f16, q8_0, q4_0"),
    (["--model", "{gpt2}", "--format", "gguf"], "model: architecture GPT2LMHeadModel"),
    (["--adapter", "{orphan}", "--format", "ollama"], "model.path: not found: /no/such/base"),
    (["--model", "{gpt2}", "--adapter", "{adapter}", "--format", "gguf"], "adapter: give --adapter DIR, or --model"),
    (["--model", "{gpt2}", "--format", "gguf-lora"], "adapter: --format merged, adapter, onnx and gguf-lora need"),
])
def test_cli_bad_gguf_inputs_exit_2_with_one_line(args, message, adapter, gpt2_dir, orphan_adapter, tmp_path,
                                                  recursa_cli):
    paths = {"adapter": adapter, "gpt2": gpt2_dir, "orphan": orphan_adapter}
    code, err = recursa_cli(["export", "llm", "--out", tmp_path / "x", *(a.format(**paths) for a in args)])
    assert code == 2
    assert err.strip().startswith(f"error: {message}") and "\n" not in err.strip()
    assert not (tmp_path / "x").exists()
