"""`recursa serve --config`: check a Serve config's recursa applications, then hand it to `serve run`."""

from __future__ import annotations

import os
import shutil
import sys
from enum import Enum
from pathlib import Path

import typer
import yaml
from pydantic import ValidationError
from ray.serve.schema import ServeDeploySchema

from recursa.cli.app import app
from recursa.core.config import ConfigError, describe_validation_error, parse_config
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
ServeMode = Enum("ServeMode", {name: name for name in SERVE_MODES}, type=str)
BUILDERS = {
    "recursa.gift.serve:app": RecommenderServeArgs,
    "recursa.fc.serve:app": ToolCallerServeArgs,
    "recursa.llm.serve:app": LLMServeArgs,
}


def check_serve_config(path: Path) -> ServeDeploySchema:
    """Validate the file as a Serve config and each recursa application's `args`; ConfigError if not."""
    if not path.is_file():
        raise ConfigError(f"config: file not found: {path}")
    try:
        config = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    for app in config.applications:
        if app.import_path in BUILDERS:
            try:
                parse_config(app.args or {}, BUILDERS[app.import_path])
            except ConfigError as error:
                raise ConfigError(f"applications.{app.name}.args.{error}") from None
    return config


def run_serve_config(path: Path, mode: ServeMode = ServeMode.default) -> None:
    """Replace this process with `serve run <config>` (token auth on, as Ray's CLIs need), the
    local Ray it starts in one of SERVE_MODES."""
    check_serve_config(path)
    serve_cli = shutil.which("serve", path=str(Path(sys.executable).parent)) or shutil.which("serve")
    if serve_cli is None:
        raise ConfigError("serve: Ray Serve's `serve` command is not installed")
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token"), **SERVE_MODES[mode.value]}
    os.execve(serve_cli, [serve_cli, "run", str(path)], env)


@app.command("serve")
def serve_config(
    config: Path = typer.Option(..., "--config", help="A Ray Serve config file (serve/gift.yaml)."),
    mode: ServeMode = typer.Option(ServeMode.default, "--mode",
                                   help="Serve's request path on a local Ray: default (Serve's HTTP proxy), throughput "
                                        "(RAY_SERVE_THROUGHPUT_OPTIMIZED) or haproxy (HAProxy in front of the replicas; "
                                        "binds every interface). A cluster sets these at `ray start`."),
) -> None:
    """Run the applications of a Serve config on the cluster in RAY_ADDRESS, or on a local Ray."""
    run_serve_config(config, mode)
