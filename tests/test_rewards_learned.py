"""The learned reward: it learns a labelling from traces, and survives a save and load."""

from __future__ import annotations

import random

import pytest

from recursa.traces.learned import LearnedReward
from recursa.traces.models import ExecutionTrace, ToolCallTrace

GOOD_WORDS = ["found", "booked", "here", "is", "your", "confirmed", "gift"]
BAD_WORDS = ["sorry", "error", "could", "not", "failed", "unknown", "retry"]


def make_traces(n: int, seed: int) -> list[ExecutionTrace]:
    rng = random.Random(seed)
    traces = []
    for i in range(n):
        good = i % 2 == 0
        words = rng.sample(GOOD_WORDS if good else BAD_WORDS, 4) + rng.sample(["today", "please", "ok"], 1)
        traces.append(ExecutionTrace(
            query=rng.choice(["find a gift", "book a table", "what is the weather"]),
            final_response=" ".join(words), label=good,
            tool_calls=[ToolCallTrace(name=rng.choice(["search", "book"]), success=good)]))
    return traces


def test_learns_a_separable_labelling_and_generalises():
    reward = LearnedReward().fit(make_traces(40, seed=0))
    held_out = make_traces(20, seed=1)
    assert all(reward.score(t).passed == t.label for t in held_out)
    assert all(0.0 <= reward.score(t).score <= 1.0 for t in held_out)


def test_save_and_load_give_the_same_scores(tmp_path):
    reward = LearnedReward(weight=0.7, buckets=256).fit(make_traces(20, seed=0))
    reward.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = LearnedReward.load(tmp_path)
    assert loaded.weight == 0.7
    for t in make_traces(6, seed=2):
        assert loaded.score(t).score == pytest.approx(reward.score(t).score)


def test_needs_training_and_both_labels():
    with pytest.raises(RuntimeError, match="not trained"):
        LearnedReward().score(make_traces(1, seed=0)[0])
    only_good = [t for t in make_traces(6, seed=0) if t.label]
    with pytest.raises(ValueError, match="both"):
        LearnedReward().fit(only_good)
