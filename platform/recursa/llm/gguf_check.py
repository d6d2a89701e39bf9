"""How far a GGUF export is from the model it was made from, measured by llama.cpp and transformers.

`llama_cpp_agreement` runs the file in llama.cpp (llama-cpp-python, an optional extra) and the
merged model in transformers on the same prompts: the served chat prompts of `QUESTIONS`, greedy.
`transformers_readback` loads the file back with transformers and compares logits.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from recursa.core.hardware import detect_hardware
from recursa.llm.models import pretrained_causal_lm
from recursa.llm.tool_calls import render_prompt

NEW_TOKENS = 16
QUESTIONS = (
    "Solve for x: 3x + 7 = 16", "What is 12 times 7?", "Name three colours of the rainbow.",
    "Write a haiku about the sea.", "What is the capital of France?", "How many legs does a spider have?",
    "Ana has 12 apples and buys 5 more. How many apples does Ana have now?", "Translate 'good morning' to Spanish.",
    "Give me a synonym for happy.", "What does a thermometer measure?", "Explain photosynthesis in one sentence.",
    "List two uses of a hammer.", "Is 17 a prime number?", "What comes after Tuesday?",
    "Suggest a gift for a friend who likes hiking.", "Summarise: the meeting moved from Monday to Friday.",
    "Solve for x: 5x - 10 = 15", "Why is the sky blue?", "Convert 3 kilometres to metres.",
    "Write a short greeting for a birthday card.",
)


def chat_prompts(tokenizer) -> list[list[int]]:
    """The token ids of each question as the served model sees it (its chat template, no tools)."""
    texts = [render_prompt(tokenizer, [{"role": "user", "content": q}], []) for q in QUESTIONS]
    return [tokenizer(t, add_special_tokens=not _has_bos(tokenizer, t))["input_ids"] for t in texts]


def _has_bos(tokenizer, text: str) -> bool:
    """Whether a rendered chat already starts with BOS (a template that writes it itself)."""
    return tokenizer.bos_token is not None and text.startswith(tokenizer.bos_token)


def llama_cpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def llama_cpp_agreement(gguf_path: str | Path, model, tokenizer, prompts: list[list[int]] | None = None) -> dict:
    """Greedy tokens and log-likelihoods of llama.cpp on the GGUF file against transformers on `model`.

    - ``token_agreement``: each side continues every prompt greedily for ``NEW_TOKENS`` tokens (no
      stop at EOS); the share of positions where the two tokens are identical.
    - ``prompts_identical``: the share of prompts whose whole continuation is identical.
    - ``loglik_gap``: both score the transformers greedy continuation by teacher forcing; the mean,
      over every continuation token, of |log p_llama.cpp(token) - log p_transformers(token)| (nats).
    - ``tokenizer_agreement``: the share of prompt texts llama.cpp's own tokenizer (from the GGUF
      metadata) turns into the same ids as the Hugging Face tokenizer. The comparisons above feed both
      the Hugging Face ids, so they measure the weights alone.
    """
    from llama_cpp import Llama, __version__

    prompts = prompts or chat_prompts(tokenizer)
    longest = max(len(p) for p in prompts) + NEW_TOKENS
    llm = Llama(model_path=str(gguf_path), n_ctx=longest, n_batch=longest, n_threads=detect_hardware().cpus,
                logits_all=True, verbose=False)
    same_tokens, same_prompts = 0, 0
    gaps: list[float] = []
    llama_ll: list[float] = []
    hf_ll: list[float] = []
    for ids in prompts:
        expected = _transformers_greedy(model, ids)
        got = _llama_greedy(llm, ids)
        matches = sum(a == b for a, b in zip(expected, got))
        same_tokens += matches
        same_prompts += matches == NEW_TOKENS
        ours, theirs = _llama_logprobs(llm, ids, expected), _transformers_logprobs(model, ids, expected)
        gaps.extend(np.abs(ours - theirs))
        llama_ll.extend(ours)
        hf_ll.extend(theirs)
    texts = [tokenizer.decode(ids) for ids in prompts]
    same_ids = sum(llm.tokenize(t.encode(), add_bos=False, special=True) == ids for t, ids in zip(texts, prompts))
    return {
        "llama_cpp": __version__,
        "prompts": len(prompts),
        "new_tokens": NEW_TOKENS,
        "token_agreement": same_tokens / (NEW_TOKENS * len(prompts)),
        "prompts_identical": same_prompts / len(prompts),
        "loglik_gap": float(np.mean(gaps)),
        "mean_loglik_llama_cpp": float(np.mean(llama_ll)),
        "mean_loglik_transformers": float(np.mean(hf_ll)),
        "tokenizer_agreement": same_ids / len(prompts),
    }


def transformers_readback(gguf_path: str | Path, model, tokenizer, prompts: list[list[int]] | None = None) -> float:
    """The largest |logit| difference between transformers' reading of the GGUF file and `model`,
    over every position of the prompts, relative to the largest |logit| of `model`."""
    gguf_path = Path(gguf_path)
    back = pretrained_causal_lm(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32).eval()
    worst, scale = 0.0, 0.0
    with torch.no_grad():
        for ids in (prompts or chat_prompts(tokenizer))[:5]:
            batch = torch.tensor([ids])
            expected = model(input_ids=batch).logits
            worst = max(worst, (back(input_ids=batch).logits - expected).abs().max().item())
            scale = max(scale, expected.abs().max().item())
    return worst / scale if scale else math.inf


def _transformers_greedy(model, ids: list[int]) -> list[int]:
    """Greedy tokens by a full forward pass per token: no KV cache, whose API changes between
    transformers versions; prompts are short."""
    tokens: list[int] = []
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            tokens.append(int(model(input_ids=torch.tensor([ids + tokens])).logits[0, -1].argmax()))
    return tokens


def _llama_greedy(llm, ids: list[int]) -> list[int]:
    llm.reset()
    llm.eval(ids)
    tokens: list[int] = []
    for _ in range(NEW_TOKENS):
        tokens.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval(tokens[-1:])
    return tokens


def _llama_logprobs(llm, ids: list[int], continuation: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(ids + continuation)
    logits = torch.from_numpy(np.array(llm.scores[len(ids) - 1:len(ids) + len(continuation) - 1], dtype=np.float32))
    return _picked(torch.log_softmax(logits, -1), continuation)


def _transformers_logprobs(model, ids: list[int], continuation: list[int]) -> np.ndarray:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids + continuation])).logits[0, len(ids) - 1:-1]
    return _picked(torch.log_softmax(logits.float(), -1), continuation)


def _picked(logprobs: torch.Tensor, tokens: list[int]) -> np.ndarray:
    return logprobs[torch.arange(len(tokens)), torch.tensor(tokens)].numpy()
