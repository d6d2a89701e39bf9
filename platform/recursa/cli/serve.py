"""`recursa serve --config`: check a Serve config's recursa applications and the model directories
they name, deploy it, and exit with one line if an application fails to deploy.

Ray's own `serve run <config>` keeps blocking after an application has failed to deploy (Serve
gives up on a replica constructor after three tries, `serve run` never looks), so a missing model
shows up as a wall of replica tracebacks and a command that never returns. Here a model directory
is checked before Ray starts, and the applications' status is watched until they run.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Literal, NamedTuple

import typer
import yaml
from pydantic import BaseModel, ValidationError
from ray.serve.schema import ServeDeploySchema

from recursa.cli.app import app
from recursa.core.config import ConfigError, describe_validation_error, parse_config
from recursa.core.sources import NAMED_MODELS
from recursa.fc.config import ToolCallerServeArgs
from recursa.gift.config import RecommenderServeArgs
from recursa.llm.config import LLMServeArgs

# Serve's request paths, chosen by environment variables that every Ray process must see at start:
# - default: Serve's Python HTTP proxy forwards each request to a replica;
# - throughput: RAY_SERVE_THROUGHPUT_OPTIMIZED (user code on the replica's event loop, gRPC from
#   the proxy to replicas, buffered request logs);
# - haproxy: HAProxy on the HTTP port forwards to each replica's own HTTP server. Serve then binds
#   replica ports and HAProxy's stats and metrics on every interface, whatever `http_options.host`.
SERVE_MODES = {
    "default": {},
    "throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
    "haproxy": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"},
}


class ServeMode(str, Enum):
    """`--mode`: one of SERVE_MODES."""

    default = "default"
    throughput = "throughput"
    haproxy = "haproxy"


BUILDERS: dict[str, type[BaseModel]] = {
    "recursa.gift.serve:app": RecommenderServeArgs,
    "recursa.fc.serve:app": ToolCallerServeArgs,
    "recursa.llm.serve:app": LLMServeArgs,
}
POLL_S = 1.0


def check_serve_config(path: Path) -> ServeDeploySchema:
    """Validate the file as a Serve config and each recursa application's `args`; ConfigError if not."""
    if not path.is_file():
        raise ConfigError(f"config: file not found: {path}")
    try:
        config = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    for application in config.applications:
        if application.import_path in BUILDERS:
            try:
                parse_config(application.args or {}, BUILDERS[application.import_path])
            except ConfigError as error:
                raise ConfigError(f"applications.{application.name}.args.{error}") from None
    return config


# Files that recursa.fc.export and PEFT (recursa.llm.models) write, named here instead of imported:
# importing those modules loads torchao and peft, which takes seconds and prints on stderr.
# tests/test_cli_errors.py checks that the names agree.
FC_INT8_WEIGHTS = "model.int8.safetensors"
LORA_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
HF_MODEL_CONFIG = "config.json"


class ModelDir(NamedTuple):
    """A model directory (or GGUF file) an application's args name, and what must be in it."""

    field: str  # where the args name it, e.g. "export_dir" or "adapters.math-sft"
    path: str
    what: str  # what belongs there, for the error message
    files: tuple[str, ...]  # what the application's loader reads there
    command: str  # the command that creates it
    kind: Literal["directory", "gguf"] = "directory"


def model_dirs(args: BaseModel) -> list[ModelDir]:
    """The model directories a recursa application reads, each with the command that writes it."""
    if isinstance(args, RecommenderServeArgs):
        from recursa.gift.onnx_policy import SETTINGS, onnx_file

        return [ModelDir("export_dir", args.export_dir, "exported gift policy", (SETTINGS, onnx_file(args.precision)),
                         f"`recursa export trm --checkpoint runs/quickstart/policy --out {args.export_dir}`")]
    if isinstance(args, ToolCallerServeArgs):
        from recursa.fc.artifact import SETTINGS, TOKENIZER_DIR, WEIGHTS

        files = (SETTINGS, WEIGHTS, TOKENIZER_DIR, *((FC_INT8_WEIGHTS,) if args.precision == "int8" else ()))
        return [ModelDir("model_dir", args.model_dir, "tool-calling TRM", files,
                         f"`recursa export trm --checkpoint runs/bfcl/model --out {args.model_dir}`")]
    if isinstance(args, LLMServeArgs) and args.engine == "llama_cpp":
        served = {} if args.model.lower() in NAMED_MODELS else {"model": args.model}
        served |= {f"adapters.{name}": path for name, path in args.adapters.items()}
        return [ModelDir(field, path, "GGUF model", (),
                         f"`recursa export llm --adapter ADAPTER --format gguf --quant q8_0 --out {Path(path).parent}`",
                         "gguf") for field, path in served.items()]
    if isinstance(args, LLMServeArgs):
        dirs = [] if _is_hub_id(args.model) else [
            ModelDir("model", args.model, "causal LM (Hugging Face layout)", (HF_MODEL_CONFIG,),
                     f"{_llm_run(args.model)}, or `recursa export llm --format merged --adapter ADAPTER --out {args.model}`")]
        return dirs + [
            ModelDir(f"adapters.{name}", directory, "LoRA adapter", LORA_ADAPTER_FILES,
                     f"{_llm_run(directory)}, or `recursa train llm --config jobs/configs/llm_sft.yaml`")
            for name, directory in args.adapters.items()]
    return []


# The runs of `recursa llm`'s pipelines, by the directory each writes its models in.
LLM_RUNS = {"runs/llm-bfcl": "`recursa llm bfcl --out runs/llm-bfcl` (`make llm-bfcl`)",
            "runs/llm-demo": "`recursa llm demo --out runs/llm-demo`"}


def _llm_run(path: str) -> str:
    """The pipeline run that writes the model at `path` (the math demo's, unless it is the BFCL one's)."""
    return next((command for run, command in LLM_RUNS.items() if Path(path).is_relative_to(run)),
                LLM_RUNS["runs/llm-demo"])


def _is_hub_id(model: str) -> bool:
    """Whether `model` names a hub repository rather than a local directory: it does not exist
    here, has the hub's form (`name` or `namespace/name`), and its namespace is not a local directory."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if Path(model).exists() or model.startswith((".", "/")):
        return False
    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return "/" not in model or not Path(model.split("/")[0]).is_dir()


def check_model_dir(model: ModelDir) -> str | None:
    """What is wrong with a model directory (None: nothing). Checks that the files its loader reads
    are there; the loaders' own errors (a corrupt file) surface when the application deploys."""
    path = Path(model.path)
    if model.kind == "gguf":
        return _gguf_problem(model)
    if not path.is_dir():
        return f"{model.what} not found at {model.path}"
    missing = [name for name in model.files if not (path / name).exists()]
    if missing:
        return f"{model.what} at {model.path} is incomplete: no {', '.join(missing)}"
    return None


def _gguf_problem(model: ModelDir) -> str | None:
    """What is wrong with a GGUF file: missing, or not one the `gguf` package can read (a corrupt
    or truncated file), so that it never reaches a replica's restart loop."""
    import gguf

    if not Path(model.path).is_file():
        return f"{model.what} not found at {model.path}"
    try:
        gguf.GGUFReader(model.path)
    except (ValueError, OSError, IndexError, KeyError) as error:
        return f"{model.what} at {model.path} is not a readable GGUF file ({str(error).splitlines()[0]})"
    return None


def check_model_dirs(config: ServeDeploySchema) -> dict[str, list[ModelDir]]:
    """The model directories of each recursa application, checked: ConfigError naming the first
    one missing or incomplete, its path and the command that creates it. Relative paths resolve
    against the current directory, where the replicas of a local Ray resolve them too."""
    found = {}
    for application in config.applications:
        if application.import_path not in BUILDERS:
            continue
        found[application.name] = model_dirs(parse_config(application.args or {}, BUILDERS[application.import_path]))
        for model in found[application.name]:
            problem = check_model_dir(model)
            if problem:
                raise ConfigError(f"applications.{application.name}.args.{model.field}: {problem}; "
                                  f"create it with {model.command}")
    return found


def run_serve_config(path: Path, mode: ServeMode = ServeMode.default) -> None:
    """Check the config and its model directories, deploy it on the Ray in RAY_ADDRESS (else a
    local one, in `mode`), and serve until interrupted; exit 1 with one line if an application
    fails to deploy."""
    config = check_serve_config(path)
    models = check_model_dirs(config)
    # Read by the Ray processes a local start launches (Serve's controller and proxies). Token
    # authentication: ray.init turns it on for a Ray it starts; a cluster's clients set RAY_AUTH_MODE.
    os.environ.update(SERVE_MODES[mode.value])
    import ray
    from ray import serve

    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    context = ray.init(address=os.environ.get("RAY_ADDRESS"), namespace="serve", log_to_driver=False,
                       logging_level=logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, `docker stop`: stop as on Ctrl-C
    logs = Path(context.address_info["session_dir"]) / "logs" / "serve"
    names = [application.name for application in config.applications]
    _deploy(config)
    try:
        failed = _wait_until_running(names)
        if failed:
            name, error = failed
            made_by = "; ".join(model.command for model in models.get(name, []))
            print(f"error: applications.{name}: failed to deploy: {error} (replica logs: {logs})"
                  + (f"; its model comes from {made_by}" if made_by else ""), file=sys.stderr)
            raise typer.Exit(1)
        for application in config.applications:
            url = f"http://{config.http_options.host}:{config.http_options.port}{application.route_prefix or '/'}"
            print(f"{application.name}: {url} (API docs: {url.rstrip('/')}/docs)", flush=True)
        print(f"serving {path} until Ctrl-C; replica logs: {logs}", flush=True)
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:  # on a cluster, leave no application of this config behind
        for name in names:
            serve.delete(name)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _deploy(config: ServeDeploySchema) -> None:
    """Start Serve with the config's proxy and HTTP options and deploy its applications.

    Ray Serve has no public call that deploys a config file; these are the two that Ray's
    `serve run` makes (ray pinned at 2.60.0 in pyproject.toml).
    """
    from ray.exceptions import RayTaskError
    from ray.serve._private.api import serve_start

    try:
        client = serve_start(http_options=config.http_options.model_dump(), proxy_location=config.proxy_location,
                             grpc_options=config.grpc_options.model_dump(),
                             controller_options=config.controller_options)
    except RayTaskError as error:  # e.g. the HTTP port is taken
        raise ConfigError(f"http_options: Serve did not start: {_last_line(str(error))}") from None
    client.deploy_apps(config)


def _wait_until_running(names: list[str]) -> tuple[str, str] | None:
    """Wait until every application runs (None), or until one fails to deploy: then its name and
    the error that failed it. Serve marks a deployment failed once its replicas' constructor has
    failed three times in a row (min(3 x replicas, max_constructor_retry_count) in Serve 2.60)."""
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    while True:
        applications = serve.status().applications
        statuses = {name: applications[name] for name in names if name in applications}
        for name, status in statuses.items():
            if status.status == ApplicationStatus.DEPLOY_FAILED:
                messages = [d.message for d in status.deployments.values() if d.message] or [status.message]
                return name, _last_line(messages[0])
        if len(statuses) == len(names) and all(s.status == ApplicationStatus.RUNNING for s in statuses.values()):
            return None
        time.sleep(POLL_S)


def _last_line(message: str) -> str:
    """The exception line at the end of Serve's message (a replica's traceback)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


@app.command("serve")
def serve_config(
    config: Path = typer.Option(..., "--config", help="A Ray Serve config file (serve/gift.yaml)."),
    mode: ServeMode = typer.Option(ServeMode.default, "--mode",
                                   help="Serve's request path on a local Ray: default (Serve's HTTP proxy), throughput "
                                        "(RAY_SERVE_THROUGHPUT_OPTIMIZED) or haproxy (HAProxy in front of the replicas; "
                                        "binds every interface). A cluster sets these at `ray start`."),
) -> None:
    """Check a Serve config and the models it names, then serve its applications on the cluster in
    RAY_ADDRESS or on a local Ray until Ctrl-C; exit 1 if one fails to deploy."""
    run_serve_config(config, mode)
