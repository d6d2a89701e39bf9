"""The `recursa` command: bad configs and paths exit 2 with one line naming the field, no
traceback, before Ray starts; so does a Serve config whose model directory is missing, naming the
path and the command that creates it; `--help` works on every command.

Each error command imports torch and RLlib first (about 3 s of CPU a process, and side by side on
2 cores they are slower, not faster), so the installed console script runs once per command
(`train gift`, `eval gift`) in one module fixture, and further error variants go through
`recursa.cli.main` in this process, the function the console script calls, with Ray's start
replaced by a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECURSA = Path(sys.executable).parent / "recursa"
TIMEOUT_S = 120
SERVE_CONFIGS = {"gift": ("runs/gift_export", "recursa export trm --checkpoint runs/quickstart/policy"),
                 "tool_caller": ("runs/fc_export", "recursa export trm --checkpoint runs/bfcl/model"),
                 "llm": ("runs/llm-demo/tiny-llm", "recursa llm demo --out runs/llm-demo")}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "unknown_key.yaml").write_text("ppo:\n  lrr: 0.1\n")
    shutil.copytree(REPO / "serve", root / "serve")  # as shipped; nothing has been trained here
    return root


def _env(ray_tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Never touch the Ray cluster running on this machine: an unreachable address, and a private
    # temp dir that a (wrongly) started local Ray instance would write its session into.
    env["RAY_ADDRESS"] = "127.0.0.1:1"
    env["RAY_TMPDIR"] = str(ray_tmp)
    env["COLUMNS"] = "200"
    return env


ERROR_CASES = {
    "unknown_key": ["train", "gift", "--config", "unknown_key.yaml"],
    "missing_checkpoint": ["eval", "gift", "--checkpoint", "/does/not/exist"],
    "missing_model": ["serve", "--config", "serve/gift.yaml"],
}


class Outcome:
    def __init__(self, returncode: int, stdout: str, stderr: str, ray_tmp: Path):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.ray_files = sorted(p.name for p in ray_tmp.iterdir())


@pytest.fixture(scope="module")
def outcomes(workdir) -> dict[str, Outcome]:
    """Run every error case once, each with its own Ray temp dir."""
    results = {}
    for name, args in ERROR_CASES.items():
        ray_tmp = workdir / f"ray_{name}"
        ray_tmp.mkdir()
        proc = subprocess.run(
            [str(RECURSA), *args], cwd=workdir, env=_env(ray_tmp),
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )
        results[name] = Outcome(proc.returncode, proc.stdout, proc.stderr, ray_tmp)
    return results


def assert_one_line_error(outcome: Outcome, field: str) -> str:
    assert outcome.returncode == 2, (outcome.returncode, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr and "Traceback" not in outcome.stdout
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert field in lines[0], lines[0]
    # validated before Ray: no local Ray session was created
    assert outcome.ray_files == [], outcome.ray_files
    return lines[0]


def test_unknown_key_exits_2_naming_the_field(outcomes):
    line = assert_one_line_error(outcomes["unknown_key"], "ppo.lrr")
    assert "unknown key" in line


def test_missing_checkpoint_exits_2_naming_the_path_and_what_it_expected(outcomes):
    line = assert_one_line_error(outcomes["missing_checkpoint"], "/does/not/exist: expected a gift-policy")
    assert "`recursa train gift`" in line


def test_serving_a_model_not_exported_yet_exits_2_naming_the_path_and_the_command(outcomes):
    line = assert_one_line_error(outcomes["missing_model"], "applications.gift.args.export_dir")
    assert "not found at runs/gift_export" in line
    assert "`recursa export trm --checkpoint runs/quickstart/policy --out runs/gift_export`" in line


# --- the same path in-process: recursa.cli.main is the console script's entry point ------------


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("runners:\n  num_env_runners: -1\n", "runners.num_env_runners"),
        ("ppo:\n  lr: -1\n", "ppo.lr"),
        ("env:\n  split: val\n", "env.split"),
        ("env:\n  num_candidates: 4\n  max_recommendations: 5\n", "max_recommendations"),
    ],
    ids=["runners", "lr", "split", "recommendations"],
)
def test_bad_value_exits_2_naming_the_field(run_main, tmp_path, yaml_text, field):
    (tmp_path / "bad.yaml").write_text(yaml_text)
    code, stderr = run_main(["train", "gift", "--config", "bad.yaml"])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], stderr
    assert "Traceback" not in stderr


def test_missing_config_file_exits_2(run_main):
    code, stderr = run_main(["train", "gift", "--config", "missing.yaml"])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.yaml" in lines[0] and "not found" in lines[0], stderr


def test_quickstart_with_bad_config_exits_2(run_main, tmp_path):
    (tmp_path / "bad.yaml").write_text("ppo:\n  lrr: 1\n")
    code, stderr = run_main(["quickstart", "--config", "bad.yaml"])
    assert code == 2 and stderr.strip() == "error: ppo.lrr: unknown key"


def test_quickstart_with_an_unknown_preset_exits_2_naming_the_presets(run_main):
    code, stderr = run_main(["quickstart", "--preset", "nightmare"])
    assert code == 2 and "--preset" in stderr and all(p in stderr for p in ("default", "hard")), stderr


def test_serve_with_an_unknown_mode_exits_2(run_main):
    code, stderr = run_main(["serve", "--config", "serve/gift.yaml", "--mode", "fast"])
    assert code == 2 and "--mode" in stderr and all(m in stderr for m in ("default", "throughput", "haproxy")), stderr


@pytest.mark.parametrize("name", list(SERVE_CONFIGS))
def test_each_shipped_serve_config_names_its_missing_model_and_the_command_that_makes_it(run_main, tmp_path, name):
    shutil.copytree(REPO / "serve", tmp_path / "serve")
    code, stderr = run_main(["serve", "--config", f"serve/{name}.yaml"])
    path, command = SERVE_CONFIGS[name]
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert f"not found at {path};" in lines[0] and f"`{command}" in lines[0], lines[0]


def _touch(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("{}")
    return directory


def test_an_incomplete_model_dir_is_named_with_the_file_it_lacks(run_main, tmp_path):
    shutil.copytree(REPO / "serve", tmp_path / "serve")
    _touch(tmp_path / "runs" / "gift_export", "policy.json", "policy.fp32.onnx")  # int8 is what gift.yaml serves
    code, stderr = run_main(["serve", "--config", "serve/gift.yaml"])
    assert code == 2 and "exported gift policy at runs/gift_export is incomplete: no policy.int8.onnx" in stderr, stderr


def test_model_dirs_with_their_files_pass_and_hub_models_are_left_to_the_hub(monkeypatch, tmp_path):
    import yaml

    from recursa.cli.serve import check_model_dirs, check_serve_config

    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "serve", tmp_path / "serve")
    _touch(tmp_path / "runs" / "llm-demo" / "tiny-llm", "config.json")
    _touch(tmp_path / "runs" / "llm-demo" / "sft" / "adapter", "adapter_config.json", "adapter_model.safetensors")
    dirs = check_model_dirs(check_serve_config(Path("serve/llm.yaml")))
    assert [(m.field, m.path) for m in dirs["llm"]] == [("model", "runs/llm-demo/tiny-llm"),
                                                       ("adapters.math-sft", "runs/llm-demo/sft/adapter")]
    config = yaml.safe_load(Path("serve/llm.yaml").read_text())
    config["applications"][0]["args"]["model"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    Path("hub.yaml").write_text(yaml.safe_dump(config))
    assert [m.field for m in check_model_dirs(check_serve_config(Path("hub.yaml")))["llm"]] == ["adapters.math-sft"]


def test_the_file_names_checked_are_those_the_exporters_write():
    from recursa.cli import serve
    from recursa.fc.export import INT8_WEIGHTS
    from recursa.llm.models import ADAPTER_CONFIG, ADAPTER_WEIGHTS

    assert serve.FC_INT8_WEIGHTS == INT8_WEIGHTS
    assert serve.LORA_ADAPTER_FILES == (ADAPTER_CONFIG, ADAPTER_WEIGHTS)


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [[], ["train", "gift"], ["eval", "gift"], ["data", "gift"], ["quickstart"]],
    ids=["recursa", "train-gift", "eval-gift", "data-gift", "quickstart"],
)
def test_help_works(args, tmp_path):
    result = subprocess.run(
        [str(RECURSA), *args, "--help"], cwd=tmp_path, env=_env(tmp_path),
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "Traceback" not in result.stderr
    if args:
        assert " ".join(args) in result.stdout  # the usage line names the command
    if args == ["data", "gift"]:
        assert "--out" in result.stdout
    if args == ["eval", "gift"]:
        assert "--checkpoint" in result.stdout
    if not args:
        for command in ("train", "eval", "data", "quickstart"):
            assert command in result.stdout
