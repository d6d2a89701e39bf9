"""`recursa traces autolabel`: the learned reward labels the unlabelled traces it is confident about,
correctly, and leaves the others to people."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recursa.cli import app
from recursa.traces.store import TraceStore
from test_rewards_learned import make_traces


def test_confident_traces_are_labelled_and_the_rest_left(tmp_path, recursa_cli):
    db = str(tmp_path / "traces.db")
    unlabelled = make_traces(20, seed=1)
    truth = {trace.trace_id: trace.label for trace in unlabelled}
    with TraceStore(db) as store:
        store.add_many(make_traces(40, seed=0))
        store.add_many([trace.model_copy(update={"label": None}) for trace in unlabelled])
    model = tmp_path / "learned"
    code, err = recursa_cli(["traces", "autolabel", "--db", db, "--model", model])
    assert code == 2 and "model: no learned reward" in err
    out = tmp_path / "labels.jsonl"
    result = CliRunner().invoke(app, ["traces", "autolabel", "--db", db, "--model", str(model), "--fit",
                                      "--confidence", "0.8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    labels = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(labels) >= 15 and all(label["label"] == truth[label["trace_id"]] for label in labels)
    with TraceStore(db) as store:
        assert len(store.unlabelled()) == 20 - len(labels)
        assert all(store.get(label["trace_id"]).label == label["label"] for label in labels)
    # Nothing is that certain: every trace is left to people, and the saved model is reused.
    strict = CliRunner().invoke(app, ["traces", "autolabel", "--db", db, "--model", str(model),
                                      "--confidence", "0.999999"])
    assert f"labelled 0 good and 0 bad; {20 - len(labels)} left for people" in strict.output
