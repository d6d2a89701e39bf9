"""The `recursa` command: thin wrappers over the library, grouped by what they act on.

Invalid configs and paths exit 2 with one line naming the field; no tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console

from recursa.config import (
    ConfigError,
    TrainFCConfig,
    TrainGiftConfig,
    TrainLLMConfig,
    TuneFCConfig,
    TuneGiftConfig,
    load_config,
    parse_config,
)

if TYPE_CHECKING:
    from recursa.data.trace_store import TraceStore
    from recursa.hardware import Config

app = typer.Typer(
    help="Train small tool-using agents with RL on Ray, and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate and convert datasets.", no_args_is_help=True)
train_app = typer.Typer(help="Train policies.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate trained policies.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
infer_app = typer.Typer(help="Run trained models on new inputs.", no_args_is_help=True)
export_app = typer.Typer(help="Export trained models for serving (int8 quantization, merged LoRA, ONNX).",
                         no_args_is_help=True)
llm_app = typer.Typer(help="Causal language models with LoRA adapters.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(infer_app, name="infer")
app.add_typer(export_app, name="export")
app.add_typer(llm_app, name="llm")
traces_app = typer.Typer(help="Import, label, inspect and export agent traces.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")
tune_app = typer.Typer(help="Hyperparameter search on Ray Tune: PBT of the gift policy, ASHA of the tool caller.",
                       no_args_is_help=True)
app.add_typer(tune_app, name="tune")
jobs_app = typer.Typer(help="Manage Ray jobs on a cluster (see `recursa submit`).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

# Piped output (CI logs, `make demo | tee`) gets a table wide enough to read.
console = Console() if sys.stdout.isatty() else Console(width=120)


@data_app.command("gift")
def data_gift(
    out: Path = typer.Option(..., "--out", help="Directory for catalog.parquet and users_{train,test}.parquet."),
    items: int = typer.Option(600, min=50, help="Catalog size."),
    users: int = typer.Option(2000, min=20, help="Number of users (20% held out for test)."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same data."),
) -> None:
    """Generate the synthetic gift catalog and train/test users as Parquet."""
    from recursa.data.gift import generate_gift_data, write_gift_data

    paths = write_gift_data(generate_gift_data(items, users, seed=seed), out)
    for name, path in paths.items():
        console.print(f"{name:8s} {path}")


@train_app.command("gift")
def train_gift(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (jobs/configs/gift_ppo.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its latest checkpoint."),
) -> None:
    """Train the TRM gift policy with PPO on RLlib env runners (BC warm start optional)."""
    settings = load_config(config, TrainGiftConfig)
    from recursa.rl.train_gift import train_gift as run
    from recursa.runtime import init_ray

    init_ray()
    result = run(_sized_for_cluster(settings), resume=resume)
    console.print(f"run: {result.run_dir}\ncheckpoint: {result.checkpoint}\nenv steps: {result.env_steps}")


@eval_app.command("gift")
def eval_gift(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A checkpoint, its module directory, or a run directory."),
    config: Optional[Path] = typer.Option(None, "--config", help="The run's config (default: next to the checkpoint)."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the held-out episodes."),
    users: int = typer.Option(400, "--users", min=1, help="Held-out users (one episode each)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Evaluate a policy on held-out users beside the random, no-tools, greedy and oracle baselines."""
    if not checkpoint.exists():
        raise ConfigError(f"checkpoint: path does not exist: {checkpoint}")
    settings = load_config(config or _run_config_near(checkpoint), TrainGiftConfig)
    from recursa.rl.evaluate import evaluate_with_baselines, load_policy_module, module_policy
    from recursa.rl.report import print_results

    module = load_policy_module(checkpoint)
    results = evaluate_with_baselines(settings.env, module_policy(module), users, seed)
    print_results(results, console)
    if out:
        out.write_text(json.dumps(results, indent=2))


@data_app.command("fc")
def data_fc(
    out: Path = typer.Option(..., "--out", help="Output file (.parquet or .jsonl)."),
    examples: int = typer.Option(100_000, "--examples", min=1, help="Number of examples."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same examples."),
) -> None:
    """Generate function-calling training examples."""
    from recursa.data.fc.generator import generate_to_file

    console.print(f"wrote {generate_to_file(examples, seed, out)}")


@data_app.command("convert")
def data_convert(
    source: Path = typer.Argument(..., help="Input file (xLAM or ms-swift JSON)."),
    fmt: str = typer.Option(..., "--format", help="xlam or swift."),
    out: Path = typer.Option(..., "--out", help="Output file (.parquet or .jsonl)."),
) -> None:
    """Convert xLAM or ms-swift function-calling data to recursa's schema."""
    from recursa.data.fc.formats import read_swift_report, read_xlam_report
    from recursa.data.fc.store import write_examples

    readers = {"xlam": read_xlam_report, "swift": read_swift_report}
    if fmt not in readers:
        raise ConfigError(f"format: must be one of {', '.join(readers)}, got {fmt!r}")
    if not source.is_file():
        raise ConfigError(f"source: file not found: {source}")
    report = readers[fmt](source)
    write_examples(report.examples, out)
    console.print(f"wrote {len(report.examples)} examples to {out} ({len(report.skipped)} skipped)")


@train_app.command("fc")
def train_fc(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (jobs/configs/fc_small.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint."),
) -> None:
    """Train the tool-calling TRM with deep supervision on Ray Train."""
    settings = load_config(config, TrainFCConfig)
    from recursa.fc.train import train_fc as run
    from recursa.runtime import init_ray

    init_ray(log_to_driver=True)  # the workers' progress bars and epoch metrics
    console.print(f"model: {run(_sized_for_cluster(settings), resume=resume)}")


@train_app.command("llm")
def train_llm(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (jobs/configs/llm_*.yaml)."),
    method: Optional[str] = typer.Option(None, "--method", help="sft, kto or grpo (overrides the config's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint."),
) -> None:
    """Train a LoRA adapter by reward-weighted SFT, KTO (TRL) or online GRPO, on Ray Train."""
    settings = load_config(config, TrainLLMConfig)
    if method is not None:
        settings = parse_config({**settings.model_dump(exclude_unset=True), "method": method}, TrainLLMConfig)
    from recursa.rl.llm_train import train_llm as run
    from recursa.runtime import init_ray

    init_ray(log_to_driver=True)
    adapter = run(_sized_for_cluster(settings), resume=resume)
    evaluation = json.loads((adapter.parent / "report.json").read_text())["eval"]
    console.print(f"adapter: {adapter}")
    console.print({k: v for k, v in evaluation.items() if k != "sample_errors"})


@train_app.command("fc-rl")
def train_fc_rl(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="The supervised model directory to start from."),
    out: Path = typer.Option(..., "--out", help="Where to write the fine-tuned model directory."),
    iterations: int = typer.Option(20, "--iterations", min=1, help="PPO iterations (256 episodes each)."),
    lr: float = typer.Option(1e-5, "--lr", min=0.0, help="PPO learning rate."),
    entropy_coeff: float = typer.Option(0.0, "--entropy-coeff", min=0.0,
                                        help="Weight of the entropy bonus (entropy of the greedy call's choices)."),
) -> None:
    """Fine-tune the tool-calling TRM with PPO, rewarded by executing its calls."""
    model_dir = _fc_model_dir(checkpoint)
    from recursa.rl.fc_ppo import finetune_fc
    from recursa.runtime import init_ray

    init_ray()
    console.print(json.dumps(finetune_fc(model_dir, out, iterations=iterations, lr=lr, entropy_coeff=entropy_coeff), indent=2))


@eval_app.command("llm")
def eval_llm(
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="A LoRA adapter (default: the base alone)."),
    base: Optional[str] = typer.Option(None, "--base", help="Base model (default: the one the adapter records)."),
    env: str = typer.Option("math", "--env", help="Action environment: math, or package.module:EnvClass."),
    episodes: int = typer.Option(200, "--episodes", min=1, help="Held-out problems."),
    seed: int = typer.Option(10_000, "--seed", help="Problem seed (keep it apart from training seeds)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the report as JSON here."),
    traces: Optional[str] = typer.Option(None, "--traces", help="Also store every episode as a trace here "
                                         "(a SQLite path or postgresql:// URL)."),
) -> None:
    """Accuracy, mean reward, format-error rate and sample errors of an LLM agent on held-out problems."""
    from recursa.config import LLMModelSettings
    from recursa.envs.actions import resolve_action_env
    from recursa.models.llm import adapter_base, load_causal_lm
    from recursa.rl.llm_eval import held_out_episodes, summarize

    if adapter is None and base is None:
        raise ConfigError("adapter: give --adapter, --base, or both")
    try:
        env_class = resolve_action_env(env)
    except ValueError as error:
        raise ConfigError(f"env: {error}") from None
    model, tokenizer = load_causal_lm(LLMModelSettings(path=base or adapter_base(adapter)), adapter=adapter,
                                      trainable=False)
    episodes_played = held_out_episodes(model, tokenizer, env_class, episodes, seed)
    if traces is not None:
        with _trace_store(traces) as store:
            store.add_many([t.to_trace(agent_type=f"llm-{env_class.domain}") for t in episodes_played])
    report = summarize(episodes_played)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    console.print(report)


@eval_app.command("bfcl")
def eval_bfcl(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A model directory (runs/<name>/model) or its run."),
    categories: Optional[str] = typer.Option(None, "--categories", help="Comma-separated BFCL categories."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many examples per category."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the JSON report here."),
) -> None:
    """Score a tool-calling TRM on BFCL with BFCL's AST rules."""
    model_dir = _fc_model_dir(checkpoint)
    from recursa.fc.artifact import load_fc_model
    from recursa.fc.bfcl import EVAL_CATEGORIES, evaluate_bfcl, print_bfcl

    chosen = tuple(c.strip() for c in categories.split(",")) if categories else EVAL_CATEGORIES
    unknown = sorted(set(chosen) - set(EVAL_CATEGORIES))
    if unknown:
        raise ConfigError(f"categories: unknown {', '.join(unknown)}; choose from {', '.join(EVAL_CATEGORIES)}")
    model, featurizer = load_fc_model(model_dir)
    report = evaluate_bfcl(model, featurizer, chosen, limit)
    print_bfcl(report, console)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))


@eval_app.command("calibrate-fc")
def calibrate_fc(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A model directory (runs/<name>/model) or its run."),
    categories: str = typer.Option("live_simple,live_multiple,live_irrelevance", "--categories",
                                   help="BFCL development categories to calibrate on (never the non-live test)."),
) -> None:
    """Calibrate the call / no-call decision on BFCL's live categories; saved in the model."""
    model_dir = _fc_model_dir(checkpoint)
    from recursa.data.fc.formats import read_bfcl
    from recursa.fc.artifact import load_fc_model, set_no_call_bias
    from recursa.fc.bfcl import LIVE_CATEGORIES
    from recursa.fc.calibrate import calibrate_no_call

    chosen = [c.strip() for c in categories.split(",")]
    if not set(chosen) <= set(LIVE_CATEGORIES):
        raise ConfigError(f"categories: calibrate on live categories only ({', '.join(LIVE_CATEGORIES)})")
    model, featurizer = load_fc_model(model_dir)
    examples = [e for category in chosen for e in read_bfcl(category)]
    result = calibrate_no_call(model, featurizer, examples)
    set_no_call_bias(model_dir, result["no_call_bias"])
    console.print(json.dumps(result, indent=2))


@infer_app.command("fc")
def infer_fc(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A model directory (runs/<name>/model) or its run."),
    tools: Optional[Path] = typer.Option(None, "--tools", help="JSON list of function schemas (OpenAI style)."),
    query: Optional[str] = typer.Option(None, "--query", help="The user's request."),
    interactive: bool = typer.Option(False, "--interactive", help="Read queries from the terminal."),
    batch: Optional[Path] = typer.Option(None, "--batch", help="JSONL of {query, tools} (or FCExample) lines."),
) -> None:
    """Print the function calls the model makes, as JSON."""
    model_dir = _fc_model_dir(checkpoint)
    from recursa.fc.infer import run_batch, run_interactive, run_one

    if batch is not None:
        if not batch.is_file():
            raise ConfigError(f"batch: file not found: {batch}")
        run_batch(model_dir, batch)
        return
    if tools is None or not tools.is_file():
        raise ConfigError(f"tools: a JSON file of function schemas is required (got {tools})")
    if interactive:
        run_interactive(model_dir, tools)
    elif query:
        run_one(model_dir, tools, query)
    else:
        raise ConfigError("query: give --query, --interactive or --batch")


@export_app.command("trm")
def export_trm(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A gift policy or tool-calling model directory, or its run."),
    out: Path = typer.Option(..., "--out", help="Directory for the exported model and export_report.json."),
    quantize: str = typer.Option("int8", "--quantize", help="Quantization: int8 (fp32 is kept for comparison)."),
    users: int = typer.Option(400, "--users", min=1, help="Held-out users to compare gift policies on."),
    examples: int = typer.Option(500, "--examples", min=1, help="Held-out generated examples for the tool caller."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the held-out comparison."),
) -> None:
    """Quantize a TRM to int8 (gift policy: ONNX Runtime; tool caller: torchao), report what it costs."""
    if quantize != "int8":
        raise ConfigError(f"quantize: only int8 is supported, got {quantize!r}")
    from recursa.rl.policy_io import is_policy_dir

    policy_dir = next((p for p in (checkpoint, checkpoint / "policy") if is_policy_dir(p)), None)
    if policy_dir is not None:
        from recursa.export.gift import export_gift_policy, gift_export_report

        export_gift_policy(policy_dir, out)
        report = gift_export_report(policy_dir, out, users, seed)
    else:
        from recursa.export.fc_int8 import export_fc_int8, fc_export_report

        report = fc_export_report(export_fc_int8(_fc_model_dir(checkpoint), out), examples, seed)
    console.print(json.dumps(report, indent=2))


@export_app.command("llm")
def export_llm(
    adapter: Path = typer.Option(..., "--adapter", help="A saved LoRA adapter directory."),
    out: Path = typer.Option(..., "--out", help="Output directory (export_report.json is written there too)."),
    fmt: str = typer.Option("merged", "--format", help="merged (safetensors, HF layout), adapter, or onnx."),
    base: Optional[str] = typer.Option(None, "--base", help="Base model (default: the one the adapter records)."),
) -> None:
    """Merge a LoRA adapter into its base, export it alone, or export the merged model to ONNX."""
    from recursa.export.llm import export_adapter, export_onnx, merge_adapter

    if fmt not in ("merged", "adapter", "onnx"):
        raise ConfigError(f"format: must be one of merged, adapter, onnx, got {fmt!r}")
    if fmt == "adapter":
        export_adapter(adapter, out, base)
    else:
        merge_adapter(adapter, out, base)
    if fmt == "onnx":
        export_onnx(out, out / "model.onnx")
    console.print((out / "export_report.json").read_text())


@llm_app.command("demo")
def llm_demo(
    out: Path = typer.Option(Path("runs/llm-demo"), "--out", help="Demo directory (replaced if it exists)."),
    sft_config: Path = typer.Option(Path("jobs/configs/llm_sft.yaml"), "--sft-config", help="SFT stage config."),
    grpo_config: Path = typer.Option(Path("jobs/configs/llm_grpo.yaml"), "--grpo-config", help="GRPO stage config."),
) -> None:
    """A tiny LM learns the math environment: evaluate, SFT on expert episodes, GRPO; report.json."""
    import shutil

    from rich.table import Table

    from recursa.rl.llm_demo import run_llm_demo
    from recursa.runtime import init_ray

    for path in (sft_config, grpo_config):
        load_config(path, TrainLLMConfig)
    shutil.rmtree(out, ignore_errors=True)
    init_ray()
    report = run_llm_demo(out, sft_config, grpo_config)
    table = Table("stage", "success rate", "mean reward", "format errors",
                  title=f"math environment, {report['eval_episodes']} held-out problems")
    for stage in ("before", "after_sft", "after_grpo"):
        row = report[stage]
        table.add_row(stage, f"{row['success_rate']:.3f}", f"{row['mean_reward']:.2f}", f"{row['format_error_rate']:.3f}")
    console.print(table)
    console.print(f"{out / 'report.json'} ({report['wall_seconds']:.0f} s)")


@llm_app.command("init-tiny")
def llm_init_tiny(
    out: Path = typer.Option(..., "--out", help="Directory for the model and tokenizer (Hugging Face layout)."),
    corpus: Optional[Path] = typer.Option(None, "--corpus",
                                          help="Text to train the tokenizer on (default: generated agent text)."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed and corpus give the same model."),
    vocab_size: int = typer.Option(2048, "--vocab-size", min=259,
                                   help="Largest vocabulary (at least the 256 bytes and 3 special tokens)."),
    hidden_size: int = typer.Option(128, "--hidden-size", min=8,
                                    help="Hidden size (a multiple of 8: 4 heads of even size)."),
    layers: int = typer.Option(2, "--layers", min=1, help="Transformer layers."),
) -> None:
    """Create a tiny randomly initialised Llama and its tokenizer, for tests and offline demos."""
    if corpus is not None and not corpus.is_file():
        raise ConfigError(f"corpus: file not found: {corpus}")
    if hidden_size % 8:
        raise ConfigError(f"hidden-size: must be a multiple of 8 (4 heads of even size), got {hidden_size}")
    from recursa.models.tiny_llm import create_tiny_llm, default_corpus

    lines = corpus.read_text().splitlines() if corpus else default_corpus(seed=seed)
    create_tiny_llm(out, lines, vocab_size=vocab_size, hidden_size=hidden_size, num_layers=layers, seed=seed)
    console.print(f"wrote {out}")


@tune_app.command("gift")
def tune_gift(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (jobs/configs/gift_pbt.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Restore the interrupted run; finished trials stay done."),
) -> None:
    """Population-based training of the gift policy's PPO hyperparameters and TRM depth, beside the default."""
    settings = load_config(config, TuneGiftConfig)
    from recursa.tune.gift_pbt import tune_gift as run

    _run_search(run, settings, resume)


@tune_app.command("fc")
def tune_fc(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (jobs/configs/fc_asha.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Restore the interrupted run; finished trials stay done."),
) -> None:
    """ASHA over the tool-calling TRM's size, learning rate, depth and supervision steps; Ray Train trials."""
    settings = load_config(config, TuneFCConfig)
    from recursa.tune.fc_asha import tune_fc as run

    _run_search(run, settings, resume)


@tune_app.command("report")
def tune_report(run: Path = typer.Argument(..., help="A tune run directory (runs/<name>).")) -> None:
    """Print the leaderboard of a tune run, finished or still going, and its tune_report.json if written."""
    _print_leaderboard(run)
    if (run / "tune_report.json").is_file():
        console.print((run / "tune_report.json").read_text())


def _run_search(run, settings: TuneGiftConfig | TuneFCConfig, resume: bool) -> None:
    """Run a search on the cluster in RAY_ADDRESS (or a local Ray), then print its leaderboard and report."""
    from recursa.runtime import init_ray

    init_ray()
    report = run(settings, resume=resume)
    _print_leaderboard(Path(settings.runs_dir) / settings.name)
    console.print(json.dumps(report, indent=2))


def _print_leaderboard(run: Path) -> None:
    from recursa.tune.report import load_leaderboard, print_leaderboard

    print_leaderboard(load_leaderboard(run), console, title=f"{run}")


@app.command("serve")
def serve_config(
    config: Path = typer.Option(..., "--config", help="A Ray Serve config file (serve/recsys.yaml)."),
    mode: str = typer.Option("default", "--mode",
                             help="Serve's request path on a local Ray: default (Serve's HTTP proxy), throughput "
                                  "(RAY_SERVE_THROUGHPUT_OPTIMIZED) or haproxy (HAProxy in front of the replicas; "
                                  "binds every interface). A cluster sets these at `ray start`."),
) -> None:
    """Run the applications of a Serve config on the cluster in RAY_ADDRESS, or on a local Ray."""
    from recursa.serving.launch import run_serve_config

    run_serve_config(config, mode)


ADDRESS_OPTION = typer.Option("http://127.0.0.1:8265", "--address", envvar="RAY_ADDRESS",
                              help="The cluster's job server: the dashboard address of its head node.")


@app.command("submit")
def submit(
    spec: Path = typer.Argument(..., help="A job spec (jobs/<name>.yaml)."),
    address: str = ADDRESS_OPTION,
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once submitted instead of streaming the logs."),
) -> None:
    """Submit a job spec to a Ray cluster with its auth token; stream the logs, exit 0 only if it succeeds."""
    from ray.job_submission import JobStatus

    from recursa.jobs import follow, job_server, load_job_spec
    from recursa.jobs import submit as submit_job

    job, working_dir = load_job_spec(spec)
    with job_server(address) as client:
        job_id = submit_job(client, job, working_dir)
        console.print(f"submitted {job_id} to {address}")
        if no_wait:
            return
        status = follow(client, job_id, _write_log)
    console.print(f"{job_id}: {status.value}")
    if status != JobStatus.SUCCEEDED:
        raise typer.Exit(1)


@jobs_app.command("list")
def jobs_list(address: str = ADDRESS_OPTION) -> None:
    """The cluster's jobs, newest first."""
    from rich.table import Table

    from recursa.jobs import job_server

    with job_server(address) as client:
        jobs = sorted(client.list_jobs(), key=lambda job: job.start_time or 0, reverse=True)
    table = Table("submission id", "status", "started", "entrypoint", title=f"Ray jobs at {address}")
    for job in jobs:
        started = datetime.fromtimestamp(job.start_time / 1000).strftime("%Y-%m-%d %H:%M:%S") if job.start_time else "-"
        table.add_row(job.submission_id or job.job_id or "-", job.status.value, started, job.entrypoint)
    console.print(table)


@jobs_app.command("status")
def jobs_status(job_id: str = typer.Argument(..., help="The submission id."), address: str = ADDRESS_OPTION) -> None:
    """A job's status, and the cluster's message about it."""
    from recursa.jobs import job_server

    with job_server(address) as client:
        info = client.get_job_info(job_id)
    console.print(f"{job_id}: {info.status.value}" + (f" ({info.message})" if info.message else ""))


@jobs_app.command("logs")
def jobs_logs(
    job_id: str = typer.Argument(..., help="The submission id."),
    address: str = ADDRESS_OPTION,
    follow_logs: bool = typer.Option(False, "--follow", help="Keep streaming until the job ends."),
) -> None:
    """A job's logs (driver stdout and stderr)."""
    from recursa.jobs import follow, job_server

    with job_server(address) as client:
        if follow_logs:
            follow(client, job_id, _write_log)
        else:
            _write_log(client.get_job_logs(job_id))


@jobs_app.command("stop")
def jobs_stop(job_id: str = typer.Argument(..., help="The submission id."), address: str = ADDRESS_OPTION) -> None:
    """Ask the cluster to stop a running job."""
    from recursa.jobs import job_server

    with job_server(address) as client:
        stopped = client.stop_job(job_id)
    console.print(f"{job_id}: {'stopping' if stopped else 'not running'}")


def _write_log(text: str) -> None:
    """Job output verbatim (no rich markup), as it arrives."""
    sys.stdout.write(text)
    sys.stdout.flush()


@app.command("doctor")
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
    cluster: bool = typer.Option(False, "--cluster", help="Profile the Ray cluster in RAY_ADDRESS, not this machine."),
) -> None:
    """Detect CPUs, memory and GPUs, and print the defaults recursa uses there (configs override each)."""
    from recursa.hardware import HardwareProfile, cluster_hardware, detect_hardware, profile_for

    if cluster:
        import ray

        try:
            ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=False)
        except ConnectionError as error:
            raise ConfigError(f"cluster: no running Ray cluster to attach to ({error})") from None
    profile = profile_for(*(cluster_hardware() if cluster else detect_hardware()))
    if as_json:
        print(profile.model_dump_json(indent=2))
        return
    from rich.table import Table

    table = Table("setting", "value", "set in config", title="recursa doctor: " + ("this Ray cluster" if cluster
                                                                                  else "this machine"))
    for name, field in HardwareProfile.model_fields.items():
        table.add_row(name, str(getattr(profile, name)), field.description)
    console.print(table)


DB_OPTION_HELP = "Trace store: a SQLite file or a postgresql://user:password@host:port/db URL."


@traces_app.command("import")
def traces_import(
    source: Path = typer.Argument(..., help="JSON lines of traces (exported records or ExecutionTrace JSON)."),
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
) -> None:
    """Add the traces of a JSONL file to the store; ids already stored are skipped."""
    if not source.is_file():
        raise ConfigError(f"source: file not found: {source}")
    from recursa.data.trace_export import read_jsonl

    with _trace_store(db) as store:
        try:
            added = store.add_many(read_jsonl(source))
        except ValueError as error:
            raise ConfigError(f"source: {error}") from None
        console.print(f"imported {added} new traces into {store.url}")


@traces_app.command("export")
def traces_export(
    out: Path = typer.Option(..., "--out", help="Output file: .jsonl or .parquet (one row per trace)."),
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
    agent_type: Optional[str] = typer.Option(None, "--agent-type", help="Only this agent type."),
    min_reward: Optional[float] = typer.Option(None, "--min-reward", help="Only traces rewarded at least this."),
    labelled: bool = typer.Option(False, "--labelled", help="Only labelled traces."),
    with_feedback: bool = typer.Option(False, "--with-feedback", help="Only traces with user feedback."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many traces, oldest first."),
    since: Optional[str] = typer.Option(None, "--since", help="Created at or after this ISO 8601 time (UTC if no zone)."),
    until: Optional[str] = typer.Option(None, "--until", help="Created before this ISO 8601 time (UTC if no zone)."),
) -> None:
    """Export traces as a dataset file that `datasets.load_dataset` reads."""
    _check_dataset_path(out)
    filters = dict(agent_type=agent_type, min_reward=min_reward, labelled_only=labelled,
                   with_feedback_only=with_feedback, limit=limit,
                   since=_iso_time("since", since), until=_iso_time("until", until))
    with _trace_store(db) as store:
        write = store.export_jsonl if out.suffix == ".jsonl" else store.export_parquet
        console.print(f"wrote {write(out, **filters)} traces to {out}")


@traces_app.command("stats")
def traces_stats(db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP)) -> None:
    """Counts, labels, rewards, tokens and cost, per agent type."""
    from rich.table import Table

    with _trace_store(db) as store:
        stats = store.stats()
    table = Table("agent type", "traces", "labelled", "good", "bad", "feedback", "mean reward",
                  "tokens in", "tokens out", "cost", title=f"traces in {store.url}")
    rows = [*stats["by_agent_type"].items(), ("total", stats["total"])]
    for name, row in rows:
        mean = "-" if row["mean_reward"] is None else f"{row['mean_reward']:.3f}"
        table.add_row(name, *(str(row[key]) for key in ("traces", "labelled", "good", "bad", "with_feedback")),
                      mean, str(row["tokens_in"]), str(row["tokens_out"]), f"{row['cost']:.4f}")
    console.print(table)


@traces_app.command("label")
def traces_label(
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
    agent_type: Optional[str] = typer.Option(None, "--agent-type", help="Only this agent type."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many traces."),
) -> None:
    """Label unlabelled traces good or bad in the terminal, with optional feedback; saved as you go."""
    from recursa.data.trace_labeller import label_interactively

    with _trace_store(db) as store:
        counts = label_interactively(store, console, agent_type=agent_type, limit=limit)
    console.print(f"good {counts['good']}, bad {counts['bad']}, skipped {counts['skipped']}")


@traces_app.command("dataset")
def traces_dataset(
    out: Path = typer.Option(..., "--out", help="KTO records (prompt, completion, label): .jsonl or .parquet."),
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
    agent_type: Optional[str] = typer.Option(None, "--agent-type", help="Only this agent type."),
    threshold: float = typer.Option(0.5, "--threshold", help="Unlabelled traces are good when the reward "
                                    "engine scores them at least this (hand labels always win)."),
    labelled_only: bool = typer.Option(False, "--labelled", help="Only hand-labelled traces."),
) -> None:
    """Build a KTO training file from stored traces (`data.records_path` of a kto config)."""
    from recursa.data.llm_datasets import trace_records, write_records
    from recursa.rewards.engine import RewardEngine

    _check_dataset_path(out)
    with _trace_store(db) as store:
        stored = store.query(agent_type=agent_type, labelled_only=labelled_only)
    engine = RewardEngine.default()
    records = trace_records(stored, labels=[engine.binary_label(t, threshold) for t in stored])
    write_records(records, out)
    good = sum(r["label"] for r in records)
    console.print(f"{out}: {len(records)} records ({good} good, {len(records) - good} bad)")


def _check_dataset_path(out: Path) -> None:
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"out: must end in .jsonl or .parquet, got {out.name!r}")


def _trace_store(db: str) -> TraceStore:
    """Open the trace store; a bad URL or an unreachable database is a ConfigError."""
    from sqlalchemy.exc import OperationalError

    from recursa.data.trace_store import TraceStore

    try:
        return TraceStore(db)
    except ValueError as error:
        raise ConfigError(f"db: {error}") from None
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0]
        raise ConfigError(f"db: cannot open the trace store: {reason}") from None


def _iso_time(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{field}: not an ISO 8601 date or time: {value!r}") from None


def _fc_model_dir(checkpoint: Path) -> Path:
    for candidate in (checkpoint, checkpoint / "model"):
        if (candidate / "model.safetensors").is_file():
            return candidate
    raise ConfigError(f"checkpoint: no tool-calling model (model.safetensors) at {checkpoint}")


@app.command("quickstart")
def quickstart(
    config: Optional[Path] = typer.Option(None, "--config", help="Override the quickstart config (YAML)."),
) -> None:
    """Everything at laptop scale: data, BC + PPO on Ray, held-out evaluation, results table."""
    settings = load_config(config, TrainGiftConfig) if config else None
    from recursa.rl.quickstart import QUICKSTART, run_quickstart
    from recursa.runtime import init_ray

    settings = settings or QUICKSTART
    init_ray()
    run_quickstart(settings, console)


def _sized_for_cluster(settings: Config) -> Config:
    """Fill the fields the config left unset from the hardware profile of the Ray cluster in use."""
    from recursa.hardware import cluster_hardware, profile_for, with_profile

    return with_profile(settings, profile_for(*cluster_hardware()))


def _run_config_near(checkpoint: Path) -> Path | None:
    for parent in [checkpoint, *checkpoint.resolve().parents][:6]:
        if (parent / "config.yaml").is_file():
            return parent / "config.yaml"
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    from recursa.tune import TuneInterrupted

    try:
        app(args=argv, standalone_mode=True)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except TuneInterrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
