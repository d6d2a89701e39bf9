"""The tool caller reading text through a pretrained LM's tokenizer and input embedding."""

from __future__ import annotations

import itertools
from contextlib import nullcontext

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from recursa.core.config import ConfigError
from recursa.core.trm import TRMConfig, count_parameters
from recursa.fc.artifact import load_fc_model, predict_calls, save_fc_model
from recursa.fc.config import FCTrainingSettings, TrainFCConfig
from recursa.fc.data.generator import generate_examples
from recursa.fc.embedding import PretrainedEmbeddingSpec, PretrainedPieces
from recursa.fc.features import Featurizer, collate
from recursa.fc.model import FunctionCallingTRM, LossWeights
from recursa.fc.tokenizer import SPECIAL_IDS, CharTokenizer, PretrainedTokenizer, load_tokenizer
from recursa.fc.tokenizer.pretrained import SHIFT
from recursa.fc.train import PRETRAINED_EMBEDDING, build_model, deep_supervision, pretrained_inputs


@pytest.fixture(scope="module")
def lm_tokenizer(tiny_llm) -> PretrainedTokenizer:
    return PretrainedTokenizer.from_model(str(tiny_llm), source=str(tiny_llm))


def test_offsets_tile_the_text_and_spans_copy_values(lm_tokenizer):
    text = "Book 2 seats to Zürich on 2024-05-01, please"
    ids, spans = lm_tokenizer.encode_with_offsets(text)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans)), "each span starts where the last ended"
    assert all(SHIFT <= i < lm_tokenizer.vocab_size for i in ids), "text never yields recursa's specials"
    assert lm_tokenizer.decode(ids) == text
    start = text.index("Zürich")
    covering = [k for k, (s, e) in enumerate(spans) if s < start + len("Zürich") and e > start]
    assert text[spans[covering[0]][0]:spans[covering[-1]][1]].strip() == "Zürich"


def test_recursa_specials_are_matched_and_the_lm_control_tokens_are_text(lm_tokenizer):
    ids, spans = lm_tokenizer.encode_with_offsets("<query>hi</s><sep>")
    assert ids[0] == SPECIAL_IDS["<query>"] and ids[-1] == SPECIAL_IDS["<sep>"]
    assert spans[0] == (0, 7) and spans[-1] == (13, 18)
    assert all(i >= SHIFT for i in ids[1:-1]), "the LM's </s> typed in text is plain text"
    assert lm_tokenizer.decode([0, *ids, 0]) == "<query>hi</s><sep>"


def test_saved_tokenizer_loads_as_the_same_tokenizer(lm_tokenizer, tmp_path):
    lm_tokenizer.save(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert isinstance(loaded, PretrainedTokenizer) and loaded.vocab_size == lm_tokenizer.vocab_size
    text = "weather in Paris tomorrow"
    assert loaded.encode_with_offsets(text) == lm_tokenizer.encode_with_offsets(text)


def _pieces(lm_vocab: int = 50, dim: int = 12, rank: int = 3) -> PretrainedPieces:
    torch.manual_seed(0)
    pieces = PretrainedPieces(PretrainedEmbeddingSpec("lm", lm_vocab, dim, rank), hidden=8)
    pieces.load_pretrained(torch.randn(lm_vocab, dim) * 0.05)
    torch.nn.init.normal_(pieces.lora_a)  # a trained update, so it shows in every path
    return pieces


def test_bags_rows_and_the_output_table_agree():
    pieces = _pieces()
    ids = torch.tensor([[0, 5, SHIFT + 3, SHIFT + 49], [SHIFT, 0, 0, 0]])
    rows = pieces(ids)
    expected = (rows * (ids != 0)[..., None]).sum(1)
    torch.testing.assert_close(pieces.bag(ids), expected)
    with torch.no_grad():
        torch.testing.assert_close(pieces.table()[ids[0]], rows[0].detach())


def test_the_lm_matrix_is_frozen_counted_and_saved(tmp_path):
    pieces = _pieces()
    assert "frozen" not in dict(pieces.named_parameters()) and "frozen" in pieces.state_dict()
    pieces.bag(torch.tensor([[SHIFT + 1, SHIFT + 2]])).sum().backward()
    assert pieces.lora_a.grad is not None and pieces.project.weight.grad is not None
    assert pieces.frozen.grad is None

    spec = pieces.spec
    model = FunctionCallingTRM(TRMConfig(hidden_size=8, num_heads=2, T=1, n=1), SHIFT + spec.lm_vocab_size,
                               embedding=spec)
    assert model.parameter_count() == count_parameters(model) + spec.lm_vocab_size * spec.dim
    with pytest.raises(ValueError, match="rows"):
        FunctionCallingTRM(TRMConfig(hidden_size=8, num_heads=2, T=1, n=1), 1000, embedding=spec)


def test_a_model_trains_saves_and_answers_through_the_lm_embedding(tiny_llm, tmp_path):
    config = TrainFCConfig.model_validate({"tokenizer": {"kind": "pretrained", "model": str(tiny_llm)},
                                           "model": {"hidden_size": 32, "num_heads": 4, "T": 1, "n": 1}})
    tokenizer = pretrained_inputs(str(tiny_llm), tmp_path / PRETRAINED_EMBEDDING)
    model = build_model(config, tmp_path, tokenizer)
    lm = AutoModelForCausalLM.from_pretrained(str(tiny_llm))
    torch.testing.assert_close(load_file(tmp_path / PRETRAINED_EMBEDDING)["embedding"],
                               lm.get_input_embeddings().weight.detach())
    featurizer = Featurizer(tokenizer)
    examples = generate_examples(32, seed=3)
    batch = collate([featurizer.encode(e) for e in examples])
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=3e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    frozen_before = model.pieces.frozen.clone()
    losses = [deep_supervision(model, batch, FCTrainingSettings(n_sup=1), optimizer, scheduler, LossWeights(),
                               nullcontext)[0][0]
              for _ in range(25)]
    assert losses[-1] < 0.7 * losses[0], losses
    assert torch.equal(model.pieces.frozen, frozen_before), "the LM's matrix never moves"

    model.eval()
    before = predict_calls(model, featurizer, examples[:8])
    save_fc_model(model, tokenizer, tmp_path / "model")
    loaded, loaded_featurizer = load_fc_model(tmp_path / "model")
    assert loaded.embedding == model.embedding and loaded.parameter_count() == model.parameter_count()
    assert predict_calls(loaded, loaded_featurizer, examples[:8]) == before

    CharTokenizer.train(["another tokenizer"]).save(tmp_path / "model" / "tokenizer")
    with pytest.raises(ConfigError, match=r"^checkpoint: the tokenizer in .* do not belong together"):
        load_fc_model(tmp_path / "model")


def test_an_embedding_with_fewer_rows_than_the_tokenizer_has_tokens_is_refused(tiny_llm, tmp_path):
    lm = AutoModelForCausalLM.from_pretrained(str(tiny_llm))
    lm.resize_token_embeddings(lm.get_input_embeddings().weight.shape[0] - 7)
    other = tmp_path / "other"
    lm.save_pretrained(other)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (other / name).write_bytes((tiny_llm / name).read_bytes())
    with pytest.raises(ConfigError, match=r"^tokenizer\.model: .* do not belong together"):
        pretrained_inputs(str(other), tmp_path / PRETRAINED_EMBEDDING)


def test_an_unknown_pretrained_model_exits_2_before_ray_starts(run_main, tmp_path):
    (tmp_path / "fc.yaml").write_text("tokenizer:\n  kind: pretrained\n  model: smollm9-1b\n")
    code, stderr = run_main(["train", "fc", "--config", "fc.yaml"])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: tokenizer.model: unknown model name"), stderr
