"""The tiny LLM, LoRA adapters through PEFT, and their exports (merged, adapter alone, ONNX).

Everything runs offline on the tiny model, created once for the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import onnxruntime as ort
import pytest
import torch
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from recursa.llm.config import LLMModelSettings, LoRASettings
from recursa.llm.export import export_adapter, export_onnx, merge_adapter
from recursa.llm.models import count_parameters, load_causal_lm, save_adapter
from recursa.llm.tiny import create_tiny_llm, default_corpus

SENTENCE = "Action: subtract_terms(7)"
PROBE = ["Solve for x: 3x + 7 = 16", "Observation: x = 3"]
LORA = LoRASettings(r=4, alpha=8, dropout=0.0)


@pytest.fixture(scope="session")
def tiny(tiny_llm) -> Path:
    return tiny_llm


def _train(model, tokenizer, steps: int = 5) -> list[float]:
    """A few AdamW steps on one sentence; the losses."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = tokenizer([SENTENCE], return_tensors="pt")
    losses = []
    for _ in range(steps):
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def _logits(model, tokenizer, texts=PROBE) -> torch.Tensor:
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model.eval()(**batch).logits[batch["attention_mask"].bool()]


@pytest.fixture(scope="module")
def adapter(tiny, tmp_path_factory) -> Path:
    """A LoRA adapter trained a few steps (so it is not the identity: LoRA's B starts at zero)."""
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny), lora=LORA))
    _train(model, tokenizer)
    return save_adapter(model, tokenizer, tmp_path_factory.mktemp("adapter") / "adapter")


@pytest.fixture(scope="module")
def adapted_logits(tiny, adapter) -> torch.Tensor:
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny)), adapter=adapter, trainable=False)
    return _logits(model, tokenizer)


@pytest.fixture(scope="module")
def merged(adapter, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "merged"
    merge_adapter(adapter, out)
    return out


def test_tiny_model_loads_with_auto_classes_and_generates(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert 300_000 < sum(p.numel() for p in model.parameters()) < 2_000_000
    assert tokenizer.padding_side == "left"
    assert (model.config.pad_token_id, model.config.eos_token_id) == (tokenizer.pad_token_id, tokenizer.eos_token_id)
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight  # tied

    batch = tokenizer(["Solve for x: 2x = 4", "Thought:"], return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 6)


def test_tokenizer_splits_digits_and_round_trips(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    tokens = tokenizer.tokenize("Action: subtract_terms(127)\nObservation: 3x = -45.5")
    with_digits = [t for t in tokens if any(c.isdigit() for c in t)]
    assert [t for t in with_digits if len(t) != 1] == []
    assert "".join(with_digits) == "1273455"

    for text in ("Solve for x: 3x + 7 = 16", '{"name": "divide_by", "arguments": {"value": 12}}',
                 "Zürich, 東京 and 🙂\n\ttabs  and  spaces"):
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_same_seed_gives_the_same_model(tmp_path):
    corpus = default_corpus(300)
    first, again, other = (create_tiny_llm(tmp_path / name, corpus, hidden_size=32, seed=seed)
                           for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    for name in ("model.safetensors", "tokenizer.json"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    assert (first / "tokenizer.json").read_bytes() == (other / "tokenizer.json").read_bytes()
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()


def _wrapped_modules(model) -> set[str]:
    """Names (q_proj, ...) of the modules holding trainable LoRA weights."""
    return {name.split(".lora_")[0].rsplit(".", 1)[-1] for name, p in model.named_parameters() if p.requires_grad}


def test_lora_trains_only_the_adapter_at_the_configured_rank_and_targets(tiny):
    lora = LoRASettings(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    model, _ = load_causal_lm(LLMModelSettings(path=str(tiny), lora=lora))
    config = model.config
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert _wrapped_modules(model) == {"q_proj", "v_proj"}
    assert all(p.shape[0] == 4 for name, p in trainable.items() if "lora_A" in name)
    # q and v are hidden x hidden (as many key/value heads as heads): r * (in + out) each
    expected = config.num_hidden_layers * 2 * 4 * 2 * config.hidden_size
    base_parameters = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny).parameters())
    assert count_parameters(model) == (expected, base_parameters + expected)


def test_all_linear_wraps_every_projection_but_not_the_output_head(tiny):
    model, _ = load_causal_lm(LLMModelSettings(path=str(tiny), lora=LORA))
    assert _wrapped_modules(model) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_a_few_steps_change_the_adapter_output(tiny):
    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny), lora=LORA))
    base = AutoModelForCausalLM.from_pretrained(tiny)
    before = _logits(model, tokenizer)
    assert torch.equal(before, _logits(base, tokenizer))  # a new adapter starts as the identity
    losses = _train(model.train(), tokenizer)
    assert losses[-1] < losses[0]
    assert (_logits(model, tokenizer) - before).abs().max() > 1e-2


def test_saved_adapter_names_its_base_by_absolute_path(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny.parent)
    model, tokenizer = load_causal_lm(LLMModelSettings(path=tiny.name, lora=LORA))
    out = save_adapter(model, tokenizer, tmp_path / "adapter")
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny.resolve())


def test_saved_adapter_loads_in_a_fresh_process_elsewhere(adapter, adapted_logits, tmp_path):
    script = (
        "import json, sys, torch\n"
        "from recursa.llm.config import LLMModelSettings\n"
        "from recursa.llm.models import adapter_base, load_causal_lm\n"
        "from pathlib import Path\n"
        "adapter = Path(sys.argv[1])\n"
        "model, tok = load_causal_lm(LLMModelSettings(path=adapter_base(adapter)), adapter=adapter, trainable=False)\n"
        f"batch = tok({PROBE!r}, return_tensors='pt', padding=True)\n"
        "with torch.no_grad():\n"
        "    logits = model(**batch).logits[batch['attention_mask'].bool()]\n"
        "print(json.dumps(logits.tolist()))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(Path(__file__).parents[1] / "platform"))
    result = subprocess.run([sys.executable, "-c", script, str(adapter)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    logits = torch.tensor(json.loads(result.stdout.strip().splitlines()[-1]))
    torch.testing.assert_close(logits, adapted_logits)


def test_merged_model_loads_without_peft_and_matches_base_plus_adapter(tiny, merged, adapted_logits):
    model = AutoModelForCausalLM.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert not isinstance(model, PeftModel)
    with safe_open(merged / "model.safetensors", "pt") as weights:
        assert not [name for name in weights.keys() if "lora" in name]  # noqa: SIM118 - no __iter__
    assert (merged / "generation_config.json").is_file()

    torch.testing.assert_close(_logits(model, tokenizer), adapted_logits, atol=1e-5, rtol=1e-5)
    base_logits = _logits(AutoModelForCausalLM.from_pretrained(tiny), tokenizer)
    assert (adapted_logits - base_logits).abs().max() > 1e-2  # the adapter did something to merge

    report = json.loads((merged / "export_report.json").read_text())["merged"]
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert report["bytes"] == (merged / "model.safetensors").stat().st_size


def test_adapter_export_is_the_adapter_alone_and_loads_on_its_base(tiny, adapter, adapted_logits, tmp_path):
    out = tmp_path / "export"
    report = export_adapter(adapter, out)
    assert {p.name for p in out.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                                               "tokenizer_config.json", "README.md", "export_report.json",
                                               "artifact.json"}
    assert report["rank"] == LORA.r and "q_proj" in report["target_modules"]
    assert "rank 4" in (out / "README.md").read_text()

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), out)
    assert report["parameters"] == sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    torch.testing.assert_close(_logits(model, AutoTokenizer.from_pretrained(out)), adapted_logits)


def test_onnx_export_matches_torch_logits_on_new_shapes(merged, tmp_path):
    path = tmp_path / "model.onnx"
    report = export_onnx(merged, path)
    assert report["max_abs_diff"] < 1e-4
    assert report["bytes"] > (merged / "model.safetensors").stat().st_size // 2

    tokenizer = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for texts in (["x"], ["Solve for x: 12x - 5 = 31", "Action: divide_by(12)", "Thought: now divide"]):
        batch = tokenizer(texts, return_tensors="np", padding=True)
        got = session.run(["logits"], {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})[0]
        real = batch["attention_mask"].astype(bool)
        np.testing.assert_allclose(got[real], _logits(model, tokenizer, texts).numpy(), atol=1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error is for machines without a GPU")
def test_4bit_without_a_gpu_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match=r"model\.load_in_4bit: needs bitsandbytes and a CUDA GPU"):
        load_causal_lm(LLMModelSettings(path=str(tiny), load_in_4bit=True))


def test_cli_init_tiny(tmp_path, recursa_cli):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(default_corpus(200)))
    out = tmp_path / "tiny"
    assert recursa_cli(["llm", "init-tiny", "--out", out, "--corpus", corpus, "--hidden-size", "32", "--layers", "1",
                        "--vocab-size", "300", "--seed", "3"])[0] == 0
    model = AutoModelForCausalLM.from_pretrained(out)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (32, 1)
    assert len(AutoTokenizer.from_pretrained(out)) <= 300


def test_cli_export_llm_onnx_writes_the_merged_model_and_the_graph(adapter, tmp_path, recursa_cli):
    out = tmp_path / "onnx"
    assert recursa_cli(["export", "llm", "--adapter", adapter, "--out", out, "--format", "onnx"])[0] == 0
    AutoModelForCausalLM.from_pretrained(out)
    assert (out / "model.onnx").is_file()
    report = json.loads((out / "export_report.json").read_text())
    assert set(report) == {"merged", "onnx"} and report["onnx"]["max_abs_diff"] < 1e-4


@pytest.mark.parametrize(("args", "field"), [
    (["export", "llm", "--adapter", "/does/not/exist", "--out", "{tmp}/x"], "adapter:"),
    (["export", "llm", "--adapter", "{adapter}", "--out", "{tmp}/x", "--format", "tflite"], "format:"),
    (["export", "llm", "--adapter", "{adapter}", "--out", "{tmp}/x", "--base", "/no/such/model"], "model.path:"),
    (["llm", "init-tiny", "--out", "{tmp}/t", "--corpus", "/no/corpus.txt"], "corpus:"),
    (["llm", "init-tiny", "--out", "{tmp}/t", "--hidden-size", "36"], "hidden-size:"),
])
def test_cli_bad_inputs_exit_2_with_one_line(args, field, adapter, tmp_path, recursa_cli):
    code, err = recursa_cli([a.format(tmp=tmp_path, adapter=adapter) for a in args])
    assert code == 2
    err = err.strip()
    assert err.startswith(f"error: {field}") and "\n" not in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "t").exists()
