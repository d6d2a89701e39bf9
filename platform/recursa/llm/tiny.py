"""A tiny randomly initialised causal LM with a locally trained tokenizer, for tests and offline demos.

``create_tiny_llm(out_dir, default_corpus())`` writes a directory in the Hugging Face layout that
``AutoTokenizer.from_pretrained`` and ``AutoModelForCausalLM.from_pretrained`` load like any hub
model: a byte-level BPE tokenizer (nothing is ever unknown; every digit is its own token, so
``subtract_terms(17)`` spells 17 as ``1``, ``7``) and a small Llama with tied embeddings.
The same corpus and seed give the same files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from recursa.core.artifact import write_artifact

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


def create_tiny_llm(
    out_dir: str | Path,
    corpus: Iterable[str],
    *,
    vocab_size: int = 2048,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    max_positions: int = 512,
    seed: int = 0,
) -> Path:
    """Train a tokenizer on `corpus`, build a random Llama around it, save both in `out_dir`.

    `vocab_size` is an upper bound: a small corpus runs out of merges sooner.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(corpus, vocab_size, max_positions)
    tokenizer.save_pretrained(out_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=3 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        # Embeddings of norm about 1 (Llama's default std 0.02 gives 0.23 at this width): with tied
        # output embeddings that bounds the logits, and a LoRA adapter, which cannot rescale them,
        # could never make the model confident.
        initializer_range=hidden_size ** -0.5,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        max_new_tokens=64,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    write_artifact(out_dir, "llm-base", "recursa.llm.tiny.create_tiny_llm", seed=seed)
    return out_dir


def train_tokenizer(corpus: Iterable[str], vocab_size: int, max_length: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with single-digit tokens; it prepends ``<s>`` to every text."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, bos_token=BOS, eos_token=EOS, padding_side="left",
        model_max_length=max_length,
    )


TOOLS = ("add_terms", "subtract_terms", "divide_by", "multiply_by", "check_solution", "calculator")
NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca",
         "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tariq")
THINGS = ("apples", "books", "coins", "marbles", "stickers", "pencils", "cookies", "tickets", "stamps", "oranges",
          "bottles", "flowers", "cards", "eggs", "shells")
PLACES = ("school", "market", "library", "garden", "museum", "bakery", "station", "park")


def default_corpus(num_lines: int = 4000, seed: int = 0) -> list[str]:
    """Plausible agent text: equations and word problems, Thought/Action/Observation lines, tool-call JSON."""
    rng = random.Random(seed)
    writers = (_equation, _word_problem, _thought, _action, _observation, _tool_call_json)
    return [rng.choice(writers)(rng) for _ in range(num_lines)]


def _equation(rng: random.Random) -> str:
    a, x, b = rng.randint(2, 12), rng.randint(-20, 20), rng.randint(-50, 50)
    sign = "+" if b >= 0 else "-"
    return f"Solve for x: {a}x {sign} {abs(b)} = {a * x + b}"


def _word_problem(rng: random.Random) -> str:
    name, friend = rng.sample(NAMES, 2)
    thing, place = rng.choice(THINGS), rng.choice(PLACES)
    have, more, each = rng.randint(2, 40), rng.randint(1, 30), rng.randint(2, 9)
    return rng.choice((
        f"{name} has {have} {thing} and buys {more} more at the {place}. How many {thing} does {name} have now?",
        f"{name} shares {have * each} {thing} equally among {each} friends. How many does each friend get?",
        f"{name} had {have + more} {thing} and gave {more} to {friend}. How many {thing} are left?",
        f"A box holds {each} {thing}. {name} fills {have} boxes for the {place}. How many {thing} is that?",
        f"{friend} walks {have} minutes to the {place} and {more} minutes back. How long is the walk in total?",
        f"Twice a number plus {more} is {2 * have + more}. What is the number?",
    ))


def _thought(rng: random.Random) -> str:
    n = rng.randint(1, 60)
    return rng.choice((
        f"Thought: I should subtract {n} from both sides.",
        f"Thought: Dividing both sides by {n} isolates x.",
        "Thought: The equation is solved; I will check the answer.",
        f"Thought: The total is {n}, so I can answer now.",
    ))


def _action(rng: random.Random) -> str:
    return f"Action: {rng.choice(TOOLS)}({rng.randint(-30, 99)})"


def _observation(rng: random.Random) -> str:
    a, b = rng.randint(2, 12), rng.randint(-60, 60)
    return rng.choice((
        f"Observation: {a}x = {b}",
        f"Observation: x = {b}",
        f"Observation: correct, x = {b} satisfies the equation",
        "Observation: error: cannot divide by 0",
    ))


def _tool_call_json(rng: random.Random) -> str:
    call = {"name": rng.choice(TOOLS), "arguments": {"value": rng.randint(-30, 99)}}
    return json.dumps(call)
