"""A decision agent on a hand-made test file: the four figures exactly, bad lines named by number
(skipped only with --skip-bad), and the base model beside the adapter on the same file."""

from __future__ import annotations

import json

import pytest

from recursa.decisions.evaluate import DecisionExample, read_test_file, score_outputs
from recursa.decisions.formats import FORMATS, FilerFormat, resolve_format
from recursa.traces.components import ComponentRewardCalculator

FOLDERS = ["Finance/Invoices", "Finance/Taxes", "Music"]
STATE = {"file": {"name": "invoice_7.pdf"}, "folders": FOLDERS}


def write_lines(path, lines: list) -> None:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def test_the_four_figures_on_a_hand_made_file():
    truth = {"folder": "Finance/Invoices"}
    examples = [DecisionExample(1, STATE, truth), DecisionExample(2, STATE, truth), DecisionExample(3, STATE, truth),
                DecisionExample(4, STATE, None)]
    outputs = [' {"folder": "Finance/Invoices"}',  # right: every component 1 -> reward 1
               ' {"folder": "Finance/Taxes"}\nmore text',  # sibling: immediate 0, delayed -1, strategic 1
               " the Music folder",  # malformed: every component -1 -> reward 0
               ' {"folder": "Music"}']  # no ground truth: counts for format errors only
    figures = score_outputs(examples, outputs, FORMATS["FILER"], ComponentRewardCalculator("FILER"))
    sibling = (0.5 * 0 + 0.3 * -1 + 0.2 * 1 + 1) / 2
    assert figures["examples"] == 4 and figures["with_ground_truth"] == 3
    assert figures["accuracy"] == pytest.approx(1 / 3)
    assert figures["mean_reward"] == pytest.approx((1 + sibling + 0) / 3)
    assert figures["format_error_rate"] == pytest.approx(1 / 4)
    assert [(e["line"], e["error"]) for e in figures["sample_errors"]] == [
        (2, "wrong decision"), (3, "not a JSON decision: 'the Music folder'")]


def test_bad_lines_are_named_by_number_and_skipped_only_when_asked(tmp_path):
    path = tmp_path / "test.jsonl"
    write_lines(path, [{"state": STATE, "ground_truth": {"folder": "Music"}}, "", "{not json",
                       {"ground_truth": {}}, {"state": STATE}])
    with pytest.raises(ValueError, match=r"test.jsonl:3: not JSON"):
        read_test_file(path)
    examples, skipped = read_test_file(path, skip_bad=True)
    assert [e.line for e in examples] == [1, 5] and examples[1].truth is None
    assert [reason.split(": ", 1)[0].rsplit(":", 1)[1] for reason in skipped] == ["3", "4"]


def test_users_add_formats_by_import_path():
    assert isinstance(resolve_format("filer"), FilerFormat)
    custom = resolve_format("ARCHIVIST", {"ARCHIVIST": "recursa.decisions.formats:FilerFormat"})
    assert isinstance(custom, FilerFormat)
    with pytest.raises(ValueError, match="unknown agent type 'ARCHIVIST'"):
        resolve_format("ARCHIVIST")
    with pytest.raises(ValueError, match="not a DecisionFormat"):
        resolve_format("FILER", {"FILER": "json:dumps"})


def test_eval_llm_reports_base_and_adapter_on_a_test_file(tiny_llm, tmp_path, recursa_cli):
    from recursa.llm.config import LLMModelSettings
    from recursa.llm.models import load_causal_lm, save_adapter

    model, tokenizer = load_causal_lm(LLMModelSettings(path=str(tiny_llm)))
    adapter = save_adapter(model, tokenizer, tmp_path / "adapter")
    test_file = tmp_path / "test.jsonl"
    write_lines(test_file, [{"state": STATE, "ground_truth": {"folder": "Music"}}, "oops",
                            {"state": STATE, "ground_truth": {"folder": "Finance/Invoices"}}])
    command = ["eval", "llm", "--adapter", adapter, "--test-data", test_file, "--agent-type", "FILER",
               "--max-new-tokens", "4"]
    code, err = recursa_cli(command)
    assert code == 2 and "test-data:" in err and "test.jsonl:2: not JSON" in err
    code, err = recursa_cli([*command[:6], "--agent-type", "ARCHIVIST"])
    assert code == 2 and "agent-type: unknown agent type 'ARCHIVIST'" in err
    out = tmp_path / "report.json"
    code, _ = recursa_cli([*command, "--skip-bad", "--out", out])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["agent_type"] == "FILER" and len(report["skipped"]) == 1
    # A fresh LoRA adapter starts as the identity: the base and the "fine-tuned" model agree.
    for side in ("base", "fine_tuned"):
        assert report[side]["examples"] == 2 and report[side]["format_error_rate"] == 1.0
        assert report[side]["accuracy"] == 0.0 and report[side]["mean_reward"] == 0.0
    assert report["base"]["sample_errors"] == report["fine_tuned"]["sample_errors"]
