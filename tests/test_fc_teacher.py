"""Distillation labels from the LLM tool caller (`recursa llm distill-fc`): only examples where the
teacher agrees with the gold calls reach training, paraphrases must keep the query's values, and the
report counts what happened. The teacher here is a fake; the paraphraser's adapter switch runs on
the tiny Llama."""

from __future__ import annotations

import json

import pytest
import torch

from recursa.fc.data.schema import FCExample
from recursa.fc.data.store import read_examples
from recursa.llm.fc_teacher import BaseModelParaphraser, clean_paraphrase, distill, keeps_values
from recursa.llm.tool_calls import ParsedAnswer
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

FLIGHT = FunctionSpec(name="get_flight_status", description="Status of a flight.",
                      parameters=[ParamSpec(name="flight_number", type="string", description="Flight number.")])
AREA = FunctionSpec(name="circle_area", description="Area of a circle.",
                    parameters=[ParamSpec(name="radius", type="float", description="Radius.")])
SUBTITLES = FunctionSpec(name="get_subtitles", description="Subtitles of a movie.",
                         parameters=[ParamSpec(name="title", type="string", description="Movie title."),
                                     ParamSpec(name="language", type="string", description="Language code.")])


def example(id: str, query: str, calls: list[FunctionCall], functions: list[FunctionSpec] | None = None,
            category: str = "simple") -> FCExample:
    return FCExample(id=id, query=query, functions=functions or [FLIGHT, AREA], calls=calls, category=category)


def flight(number: str) -> FunctionCall:
    return FunctionCall(name="get_flight_status", arguments={"flight_number": number})


def area(radius: float) -> FunctionCall:
    return FunctionCall(name="circle_area", arguments={"radius": radius})


class FakeTeacher:
    """Answers from a table of query -> (calls, malformed); unknown queries get no call."""

    def __init__(self, table: dict[str, tuple[list[FunctionCall], bool]]) -> None:
        self.table, self.answers, self.seen = table, {}, []

    def __call__(self, examples: list[FCExample]) -> list[list[FunctionCall]]:
        out = []
        for e in examples:
            calls, malformed = self.table.get(e.query, ([], False))
            self.answers[e.id] = ParsedAnswer(calls, "", "bad JSON" if malformed else None)
            self.seen.append(e.id)
            out.append(calls)
        return out


EXAMPLES = [
    example("a", "Track flight QF985 please.", [flight("QF985")]),
    example("b", "What is the area of a circle with radius 42.8 cm?", [area(42.8)]),
    example("c", "Track flight TK39.", [flight("TK39")]),
    example("d", "Describe a lazy Sunday.", [], category="irrelevance"),
    example("e", "Hello there.", [], category="irrelevance"),
]
TEACHER = {
    "Track flight QF985 please.": ([flight("qf985")], False),  # BFCL's string normalisation: agrees
    "What is the area of a circle with radius 42.8 cm?": ([area(42.0)], False),  # a wrong value
    "Track flight TK39.": ([flight("TK39"), flight("TK39")], False),  # one call too many
    "Describe a lazy Sunday.": ([], False),  # no call, as expected
    "Hello there.": ([], True),  # malformed: never agrees, even with no call expected
    # paraphrases
    "Please look up how flight QF985 is doing.": ([flight("QF985")], False),
    "Could you check on flight TK39 for me?": ([flight("TK93")], False),
}


def test_only_agreements_reach_training_and_disagreements_are_written_with_both_answers(tmp_path):
    report = distill(FakeTeacher(TEACHER), None, EXAMPLES, 0, tmp_path, batch=2)
    kept = read_examples(tmp_path / "labels.parquet")
    assert sorted(e.id for e in kept) == ["a", "d"]
    assert {e.source for e in kept} == {"teacher"}
    assert next(e for e in kept if e.id == "a").calls == [flight("QF985")], "training keeps the gold spelling"
    records = {r["id"]: r for r in map(json.loads, (tmp_path / "disagreements.jsonl").read_text().splitlines())}
    assert set(records) == {"b", "c", "e"}
    assert records["b"]["gold_calls"] == [{"name": "circle_area", "arguments": {"radius": 42.8}}]
    assert records["b"]["teacher_calls"] == [{"name": "circle_area", "arguments": {"radius": 42.0}}]
    assert records["b"]["query"] == EXAMPLES[1].query and records["b"]["source"] == "generated"
    assert records["e"]["malformed"] and not records["b"]["malformed"]
    generated = report["sources"]["generated"]
    assert (generated["labelled"], generated["agreed"], generated["disagreed"], generated["malformed"]) == (5, 2, 3, 1)
    assert report["agreement_rate"] == pytest.approx(0.4) and report["kept"] == 2
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_a_paraphrase_must_keep_every_value_the_query_wrote_verbatim():
    original = EXAMPLES[1]  # radius 42.8 written as "42.8"
    assert keeps_values(original, "Compute the area for a circle whose radius is 42.8 centimetres.")
    assert not keeps_values(original, "Compute the area for a circle whose radius is 42 centimetres.")
    assert not keeps_values(original, "Compute the area for a circle whose radius is 142.8 cm.")
    assert not keeps_values(EXAMPLES[0], "Track that flight please.")
    assert not keeps_values(EXAMPLES[0], "Track flight QF9851 please.")
    # A gold value the query never spelled out ("no" for Norwegian) is not asked of the paraphrase,
    # and is not found inside another word ("know").
    movie = example("m", "Subtitles of A Quiet Harbor in Norwegian, let me know.",
                    [FunctionCall(name="get_subtitles", arguments={"title": "A Quiet Harbor", "language": "no"})],
                    functions=[SUBTITLES])
    assert keeps_values(movie, "I want Norwegian subtitles for A Quiet Harbor.")
    assert not keeps_values(movie, "I want Norwegian subtitles for a quiet harbor, you know.")
    assert keeps_values(EXAMPLES[3], "Tell me about a slow Sunday.")  # no call, nothing to keep


def test_paraphrases_are_filtered_then_kept_only_where_the_teacher_agrees_with_the_original_gold(tmp_path):
    rewrites = {
        EXAMPLES[0].query: "Please look up how flight QF985 is doing.",  # kept, teacher agrees
        EXAMPLES[1].query: "How big is a circle of radius forty-two point eight?",  # lost 42.8
        EXAMPLES[2].query: "Could you check on flight TK39 for me?",  # teacher disagrees
        EXAMPLES[3].query: "  describe a LAZY sunday.",  # unchanged
    }
    teacher = FakeTeacher(TEACHER)
    report = distill(teacher, lambda queries: [rewrites[q] for q in queries], EXAMPLES, 4, tmp_path, batch=3)
    assert "b-para" not in teacher.seen, "a paraphrase that lost a value is never labelled"
    kept = read_examples(tmp_path / "labels.parquet")
    paraphrases = [e for e in kept if e.source == "paraphrase"]
    assert [(e.id, e.query, e.calls) for e in paraphrases] == [
        ("a-para", "Please look up how flight QF985 is doing.", [flight("QF985")])]
    records = [json.loads(line) for line in (tmp_path / "disagreements.jsonl").read_text().splitlines()]
    para = next(r for r in records if r["source"] == "paraphrase")
    assert para["id"] == "c-para" and para["original_query"] == "Track flight TK39."
    assert para["teacher_calls"] == [{"name": "get_flight_status", "arguments": {"flight_number": "TK93"}}]
    row = report["sources"]["paraphrase"]
    assert row == {"labelled": 2, "agreed": 1, "disagreed": 1, "malformed": 0, "agreement_rate": 0.5,
                   "requested": 4, "rejected_lost_value": 1, "rejected_unchanged": 1}
    assert report["labelled"] == 7 and report["agreed"] == 3 and report["kept"] == 3


def test_more_paraphrases_than_examples_is_a_config_error(tmp_path):
    from recursa.core.config import ConfigError

    with pytest.raises(ConfigError, match="paraphrases"):
        distill(FakeTeacher(TEACHER), lambda q: q, EXAMPLES, 6, tmp_path)


def test_the_paraphrase_is_the_first_line_without_label_or_quotes():
    assert clean_paraphrase('Rewritten request: "Check flight QF985."\nSure!') == "Check flight QF985."
    assert clean_paraphrase("\n  Check flight QF985, please.  ") == "Check flight QF985, please."
    assert clean_paraphrase('Rewrite the request in other words: "Track flight TK39."') == "Track flight TK39."


def test_paraphrases_come_from_the_base_model_with_the_adapter_disabled(tiny_llm):
    from peft import get_peft_model

    from recursa.llm.config import LLMModelSettings, LoRASettings
    from recursa.llm.models import load_causal_lm, lora_config

    base, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny_llm)), trainable=False)
    queries = ["Track flight QF985 please.", "What is the area of a circle with radius 42.8 cm?"]
    plain = BaseModelParaphraser(base, tokenizer, max_new_tokens=12)(queries)
    tuned = get_peft_model(base, lora_config(LoRASettings(r=4, alpha=8, dropout=0.0)))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, weight in tuned.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 1.0)  # an adapter that changes every answer
    tuned.eval()
    assert BaseModelParaphraser(tuned, tokenizer, max_new_tokens=12)(queries) == plain
    enabled = BaseModelParaphraser(tuned, tokenizer, max_new_tokens=12)
    raw = enabled.agent.complete([enabled.prompt(q) for q in queries])
    assert [clean_paraphrase(text) for text in raw] != plain, "the adapter does change the answers"


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir()], ids=["missing", "no-adapter-config"])
def test_a_missing_teacher_adapter_exits_2_naming_it(recursa_cli, tmp_path, make):
    adapter = tmp_path / "adapter"
    make(adapter)
    code, stderr = recursa_cli(["llm", "distill-fc", "--adapter", adapter, "--examples", 2, "--out", tmp_path / "o"])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "adapter" in lines[0] and str(adapter) in lines[0], stderr
    assert not (tmp_path / "o").exists()
